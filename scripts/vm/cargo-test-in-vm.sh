#!/usr/bin/env bash
# Build a package's test binaries on the host and run them as root inside the qemu guest
# (Debian's 6.1 cloud kernel by default: kprobes, fentry, BTF, tracefs, bpffs, veth).
#
#   scripts/vm/cargo-test-in-vm.sh -p PKG [--test NAME]... [--lib] [--features F] [--release]
#       [--kernel debian|PATH] [--vcpus N] [--append 'ARGS'] [--timeout S] [--cmd-timeout S]
#       [--out DIR] [--bin PATH[:NAME]]... [--file HOST[:GUEST]]... [--module M]... [-v]
#       [-- TEST ARGS (a name filter, --exact, --ignored, ...)]
#
# Each test binary runs as `cd PKG_DIR && BINARY --test-threads=1 TEST ARGS` (cargo test
# runs tests from the package directory), one command per binary, all in one boot. The
# package directory (without target/ and .git/) is copied into the guest at the same path
# so env!("CARGO_MANIFEST_DIR") fixtures resolve. CI is passed through to the guest.
# Exit: 0 all binaries passed, 1 a binary failed, 2 the VM could not run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

cargo_args=()
vm_args=()
test_args=()
while (($#)); do
    case "$1" in
        -p|--package|--test|--features|--bench|--example) cargo_args+=("$1" "$2"); shift 2 ;;
        --lib|--bins|--tests|--release|--all-features|--no-default-features) cargo_args+=("$1"); shift ;;
        --kernel|--modules-dir|--accel|--vcpus|--memory|--append|--timeout|--cmd-timeout|--boot-timeout|--bin|--file|--module|--env|--out|--result-disk-mb)
            vm_args+=("$1" "$2"); shift 2 ;;
        -v|--verbose) vm_args+=("$1"); shift ;;
        --) shift; test_args=("$@"); break ;;
        *) echo "cargo-test-in-vm: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
if ((${#cargo_args[@]} == 0)); then
    echo "cargo-test-in-vm: give -p PKG" >&2
    exit 2
fi

# POSIX single quotes for the guest's busybox sh.
q() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

cd "$repo"
json=$(cargo test "${cargo_args[@]}" --no-run --message-format=json-render-diagnostics) || {
    echo "cargo-test-in-vm: building the tests failed" >&2
    exit 2
}
declare -A dirs=()
cmds=()
while IFS= read -r line; do
    [[ $line == *'"reason":"compiler-artifact"'* && $line == *'"executable":"/'* ]] || continue
    exe=$(grep -o '"executable":"[^"]*"' <<<"$line" | sed 's/^"executable":"//; s/"$//')
    manifest=$(grep -o '"manifest_path":"[^"]*"' <<<"$line" | sed 's/^"manifest_path":"//; s/"$//')
    pkg_dir=$(dirname "$manifest")
    dirs[$pkg_dir]=1
    name=$(basename "$exe")
    vm_args+=(--bin "$exe")
    cmd="cd $(q "$pkg_dir") && $(q "$name") --test-threads=1"
    for a in "${test_args[@]}"; do cmd+=" $(q "$a")"; done
    cmds+=(--cmd "$cmd")
done <<<"$json"
if ((${#cmds[@]} == 0)); then
    echo "cargo-test-in-vm: cargo built no test binary for: ${cargo_args[*]}" >&2
    exit 2
fi
for d in "${!dirs[@]}"; do
    for entry in "$d"/* "$d"/.[!.]*; do
        [[ -e $entry ]] || continue
        case "$(basename "$entry")" in target|.git) continue ;; esac
        vm_args+=(--file "$entry")
    done
done
exec "$here/xskdbg-vm.sh" run "${vm_args[@]}" "${cmds[@]}"
