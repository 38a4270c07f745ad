#!/usr/bin/env bash
# Runs the kernel's own AF_XDP selftest (xskxceiver, built by build-xskxceiver.sh)
# in one qemu guest of the matching Debian kernel: each test once unrecorded and
# once under `xskdbg record` per backend (guest-xsk.sh), all in one boot.
#
#   scripts/corpus/run-xskxceiver.sh --kernel debian|debian:6.12 --out DIR
#       [--tests 'skb:0 drv:16 skb-busy:3 ...'] [--backends 'fentry kprobe tracefs tracepoint']
#       [--xskdbg PATH] [--vcpus N] [--timeout S] [--test-timeout S]
#       [--instrument [--plant double|leak]]    (6.12: build-xskxceiver.sh's variants)
#       [--one-backend-if-failing]              (guest-xsk.sh's XSK_ONE_IF_FAILING)
#
# --tests: MODE[-busy]:N entries (default: every test of the kernel's list in skb and
# drv mode, see list_tests). DIR gets console.log, guest/ (the runner's files) and
# one directory per test run (copied from the guest's $XSKDBG_OUT).
# Exit: 0 the VM ran (whatever the tests did: judge.sh judges), 2 it could not run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
kernel=debian
out=
tests=
backends="fentry kprobe tracefs tracepoint"
xskdbg=
vcpus=1
timeout=
test_timeout=120
build=()
one_if_failing=
while (($#)); do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --tests) tests=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    --xskdbg) xskdbg=$2; shift 2 ;;
    --vcpus) vcpus=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --test-timeout) test_timeout=$2; shift 2 ;;
    --instrument) build+=(--instrument); shift ;;
    --plant) build+=(--plant "$2"); shift 2 ;;
    --one-backend-if-failing) one_if_failing="XSK_ONE_IF_FAILING=1 "; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-xskxceiver: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n $out ]] || { echo "run-xskxceiver: give --out DIR" >&2; exit 2; }
case $kernel in
  debian|debian:[0-9]|debian:[0-9][0-9]) series=6.1 layout=netns ;;
  debian:6.12|debian:6.12.*) series=6.12 layout=flat ;;
  *) echo "run-xskxceiver: --kernel $kernel: expected debian, debian:NN or debian:6.12" >&2; exit 2 ;;
esac
# shellcheck source=tests.sh
. "$here/tests.sh"
[[ -n $tests ]] || tests=$(default_tests "$series")
xsk=$("$here/build-xskxceiver.sh" "$series" ${build[@]+"${build[@]}"}) || exit 2
if [[ -z $xskdbg ]]; then
  xskdbg=${CARGO_TARGET_DIR:-$repo/target}/release/xskdbg
  [[ -x $xskdbg ]] || (cd "$repo" && cargo build --release -p xskdbg >&2) || exit 2
fi

cmds=()
n=0
for t in $tests; do
  mode=${t%%:*} num=${t#*:}
  busy=
  [[ $mode == *-busy ]] && { busy=busy; mode=${mode%-busy}; }
  name=$(test_name "$series" "$num") || { echo "run-xskxceiver: no test $num on $series" >&2; exit 2; }
  nb=$(wc -w <<<"$backends")
  cmds+=(--cmd "${one_if_failing}XSK_TIMEOUT=$test_timeout sh /opt/xskdbg/guest-xsk.sh $layout $mode $num $name '$backends' $busy")
  n=$((n + 1 + nb))
done
# Every run is bounded by guest-xsk.sh; the whole boot by the sum plus boot time.
timeout=${timeout:-$((300 + n * (test_timeout + 40)))}
mkdir -p "$out"
vm=(run --kernel "$kernel" --vcpus "$vcpus" --memory 2048 --timeout "$timeout"
  --cmd-timeout "$(( (test_timeout + 40) * (1 + $(wc -w <<<"$backends")) ))"
  --bin "$xsk:xskxceiver" --bin "$xskdbg:xskdbg" --file "$here/guest-xsk.sh:/opt/xskdbg/guest-xsk.sh"
  --out "$out/vm" --result-disk-mb 2048 "${cmds[@]}")
rc=0
"$repo/scripts/vm/xskdbg-vm.sh" "${vm[@]}" >"$out/vm.stdout" 2>"$out/vm.stderr" || rc=$?
cp -f "$out/vm/console.log" "$out/console.log" 2>/dev/null || true
if [[ -d $out/vm/guest/out ]]; then
  cp -a "$out/vm/guest/out/." "$out/"
fi
tail -n 3 "$out/vm.stderr" >&2
# 1 = some guest command failed (guest-xsk.sh always exits 0 unless killed): still ran.
((rc == 2)) && exit 2
exit 0
