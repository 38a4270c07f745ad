#!/usr/bin/env bash
# Run the VM test runner's CLI (vmtest/, binary `xskdbg-vm`), building it first if needed.
#   scripts/vm/xskdbg-vm.sh run --kernel debian --vcpus 2 --bin PATH -- CMD ARGS...
#   scripts/vm/xskdbg-vm.sh kernel            # fetch Debian's kernel into the cache, print paths
# Set XSKDBG_VM to a prebuilt xskdbg-vm binary to skip cargo.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -n "${XSKDBG_VM:-}" ]]; then
    exec "$XSKDBG_VM" "$@"
fi
cd "$repo"
cargo build --quiet -p xskdbg-vmtest --bin xskdbg-vm
target=${CARGO_TARGET_DIR:-$repo/target}
exec "$target/debug/xskdbg-vm" "$@"
