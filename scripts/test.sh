#!/usr/bin/env bash
# The whole test suite, set-up included: installs what a fresh machine lacks,
# checks formatting and lints, checks that `xskdbg analyze` still builds
# without the kernel parts, then builds and runs every crate's tests with
# every feature the project ships (the polars `stats` feature included).
#
# Root, BPF, tracefs, netns, qemu-guest and Chromium tests run when they can;
# in CI (CI=true or CI=1) a missing capability fails them instead of skipping
# (the rule lives in testenv/). Each test that ran with a capability leaves a
# line in a ledger; the run ends with their count (`ran: root 23, bpf 11,
# ...`) and, in CI, fails when this machine has a capability no test used.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test

ci=0
[[ ${CI:-} == true || ${CI:-} == 1 ]] && ci=1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features xskdbg/stats -- -D warnings

# `cargo install --path . --no-default-features` must build analyze, doctor
# and the pictures without clang, bpftool or kernel BTF: it compiles cleanly
# and nothing BPF is in its tree.
cargo clippy --no-default-features -- -D warnings
if bpf=$(cargo tree -p xskdbg --no-default-features -e normal,build --prefix none |
           grep -E '^(libbpf|xskdbg-probes|xskdbg-soak|xskdbg-xsknet) '); then
  echo "test.sh: the build without default features still pulls in:" >&2
  sort -u <<<"$bpf" >&2
  exit 1
fi

ledger=$(mktemp /tmp/xskdbg-test-ledger.XXXXXX)
trap 'rm -f "$ledger"' EXIT
export XSKDBG_TEST_LEDGER=$ledger

status=0
cargo test --workspace --features xskdbg/stats --no-fail-fast "$@" || status=$?

# What this machine offers; the same rules as testenv's Cap::missing.
root=0; [[ $(id -u) -eq 0 ]] && root=1
has() {
  case $1 in
    root) ((root)) ;;
    bpf) ((root)) && [[ -e /sys/fs/bpf || -e /proc/sys/net/core/bpf_jit_enable ]] ;;
    tracefs) ((root)) && [[ -e /sys/kernel/tracing/trace || -e /sys/kernel/debug/tracing/trace ]] ;;
    netns) ((root)) && [[ -x /usr/sbin/ip || -x /sbin/ip || -x /usr/bin/ip || -x /bin/ip ]] ;;
    guest) command -v qemu-system-x86_64 >/dev/null ;;
    chromium) [[ -n ${XSKDBG_CHROMIUM:-} ]] && return 0
              for b in chromium chromium-browser google-chrome google-chrome-stable; do
                command -v "$b" >/dev/null && return 0
              done
              return 1 ;;
    2cpus) (($(nproc) >= 2)) ;;
    *) return 1 ;;
  esac
}

counts=() unused=()
for cap in root bpf tracefs netns guest chromium 2cpus; do
  n=$(awk -F'\t' -v c="$cap" '$1 == c' "$ledger" | sort -u | wc -l)
  counts+=("$cap $n")
  if ((n == 0)) && has "$cap"; then unused+=("$cap"); fi
done
line=$(IFS=,; echo "${counts[*]}" | sed 's/,/, /g')
echo "ran: $line"
if ((${#unused[@]})); then
  msg="this machine has ${unused[*]} but no test used it"
  if ((ci)); then
    echo "test.sh: CI: $msg" >&2
    ((status)) || status=1
  else
    echo "test.sh: note: $msg" >&2
  fi
fi
exit "$status"
