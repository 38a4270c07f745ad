#!/usr/bin/env bash
# Runs 6.12's xskxceiver on this host (no guest): each test unrecorded, then under
# `xskdbg record` with the backends the host allows (tracepoint on a locked-down
# kernel), inside a private network namespace so nothing else on the host shares
# its veth pair, the probes filtered to that namespace (guest-xsk.sh, layout inns).
#
#   scripts/corpus/host-xskxceiver.sh --out DIR [--tests 'skb:0 drv:16 ...']
#       [--backends tracepoint] [--xskdbg PATH] [--test-timeout S]
#       [--instrument [--plant double|leak]]
#
# --instrument runs the instrumented build (build-xskxceiver.sh 6.12 --instrument:
# the program writes its own ring operations through the recorder), --plant one
# with a bug planted in its recycle path (docs/CORPUS.md).
#
# Needs root, iproute2, python3 (the namespace's cookie). Exit: 0 ran, 2 could not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=
tests=
backends=tracepoint
xskdbg=
test_timeout=120
build=()
while (($#)); do
  case $1 in
    --out) out=$2; shift 2 ;;
    --tests) tests=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    --xskdbg) xskdbg=$2; shift 2 ;;
    --test-timeout) test_timeout=$2; shift 2 ;;
    --instrument) build+=(--instrument); shift ;;
    --plant) build+=(--plant "$2"); shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "host-xskxceiver: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n $out ]] || { echo "host-xskxceiver: give --out DIR" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "host-xskxceiver: needs root" >&2; exit 2; }
# shellcheck source=tests.sh
. "$here/tests.sh"
[[ -n $tests ]] || tests=$(default_tests 6.12)
xsk=$("$here/build-xskxceiver.sh" 6.12 ${build[@]+"${build[@]}"}) || exit 2
if [[ -z $xskdbg ]]; then
  xskdbg=${CARGO_TARGET_DIR:-$repo/target}/release/xskdbg
  [[ -x $xskdbg ]] || (cd "$repo" && cargo build --release -p xskdbg >&2) || exit 2
fi
bin=$(mktemp -d /tmp/xskdbg-corpus-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
ln -s "$xsk" "$bin/xskxceiver"
ln -s "$(realpath "$xskdbg")" "$bin/xskdbg"
mkdir -p "$out"
for t in $tests; do
  mode=${t%%:*} num=${t#*:}
  busy=
  [[ $mode == *-busy ]] && { busy=busy; mode=${mode%-busy}; }
  name=$(test_name 6.12 "$num") || { echo "host-xskxceiver: no test $num" >&2; exit 2; }
  echo "host-xskxceiver: $mode${busy:+-busy} $num $name" >&2
  PATH=$bin:$PATH XSKDBG_OUT=$out XSK_TIMEOUT=$test_timeout XSK_TAG=c$$ \
    sh "$here/guest-xsk.sh" inns "$mode" "$num" "$name" "$backends" $busy
done
echo "$(uname -r)" >"$out/kernel"
