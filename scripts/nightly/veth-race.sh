#!/usr/bin/env bash
# Issue 7: does xskdbg catch the seed story's veth race? Runs the soak in a
# qemu guest on the eval kernel (Debian 6.1 with fa349e396e48 reverted and two
# window-widening knobs: ../shared/eval-kernel/), then the same soak on
# Debian's stock 6.1 kernel (fixed) as the control, and writes what came back
# to docs/nightly/veth-race-DATE/ (reports and summaries; the trace only
# gzipped and only if that stays under 1 MB).
#
#   scripts/nightly/veth-race.sh [--duration S] [--out DIR] [--xskdbg PATH]
#       [--kernel BZIMAGE] [--only eval|control]
#
# Defaults: --duration 120 (the soak stops at the first violation, usually
# within seconds on the eval kernel), --out docs/nightly/veth-race-DATE,
# --xskdbg target/release/xskdbg (built if missing), --kernel from
# scripts/build-eval-kernel.sh (cached; the first build takes 15-25 min).
# Expected: eval kernel -> exit 1, verdict `kernel`, a concurrent_producer
# finding on the two traffic CPUs; control -> exit 0. Script exit: 0 both as
# expected, 1 not, 2 setup error. Not part of .ci/run (too slow).
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
duration=120
out=$here/docs/nightly/veth-race-$(date -u +%Y-%m-%d)
xskdbg=
kernel=
control=1
eval=1
while (($#)); do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --xskdbg) xskdbg=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --only) case $2 in eval) control=0 ;; control) eval=0 ;; *) echo "veth-race: --only eval|control" >&2; exit 2 ;; esac; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "veth-race: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z $xskdbg ]]; then
  xskdbg=${CARGO_TARGET_DIR:-$here/target}/release/xskdbg
  if [[ ! -x $xskdbg ]]; then
    (cd "$here" && cargo build --release -p xskdbg >&2) || { echo "veth-race: cargo build failed" >&2; exit 2; }
  fi
fi
[[ -x $xskdbg ]] || { echo "veth-race: $xskdbg is not an executable" >&2; exit 2; }
if ((eval)) && [[ -z $kernel ]]; then
  kernel=$("$here/scripts/build-eval-kernel.sh") || { echo "veth-race: building the eval kernel failed" >&2; exit 2; }
fi
if ((eval)) && [[ ! -f $kernel ]]; then
  echo "veth-race: kernel $kernel not found" >&2; exit 2
fi

# The issue's command: one rx queue fed from CPUs 0 and 1 (two producers on
# one socket when the late flush lets a second poll start), the forwarder
# alone on CPU 2 poisoning every RX slot it consumed.
flags=(--vcpus 3 --queues 1 --traffic-cpus 0,1 --forwarder-cpu 2 --poison --probes auto
  --duration "$duration")
knobs='veth.race_window_us=50 xsk.reserve_delay_us=30'
work=$(mktemp -d /tmp/xskdbg-veth-race.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" || exit 2

keep() { # name run_dir rc command...
  local name=$1 d=$2 rc=$3; shift 3
  local dst=$out/$name
  rm -rf "$dst"; mkdir -p "$dst"
  for f in report.txt report.json summary.json stdout.txt stderr.txt console.log; do
    [[ -f $d/$f ]] && cp "$d/$f" "$dst/"
  done
  if [[ -f $d/trace.txt ]]; then
    gzip -9 -c "$d/trace.txt" >"$dst/trace.txt.gz"
    if (($(stat -c %s "$dst/trace.txt.gz") > 1000000)); then
      rm "$dst/trace.txt.gz"
      echo "trace.txt ($(stat -c %s "$d/trace.txt") bytes) not kept: over 1 MB gzipped" >"$dst/TRACE-NOT-KEPT"
    fi
  fi
  printf '%q ' "$@" >"$dst/command.txt"; echo >>"$dst/command.txt"
  echo "exit $rc" >>"$dst/command.txt"
}

status=0
if ((eval)); then
  echo "veth-race: eval kernel $kernel" >&2
  cmd=("$xskdbg" soak --vm --kernel "$kernel" --append "$knobs" "${flags[@]}" --out "$work/eval")
  "${cmd[@]}" >"$work/eval.out" 2>"$work/eval.err"
  rc=$?
  mkdir -p "$work/eval"; mv "$work/eval.out" "$work/eval/stdout.txt"; mv "$work/eval.err" "$work/eval/stderr.txt"
  keep eval-kernel "$work/eval" "$rc" xskdbg soak --vm --kernel "$kernel" --append "$knobs" "${flags[@]}"
  cat "$work/eval/stdout.txt"
  if [[ $rc == 1 ]] && grep -q '"kernel"' "$work/eval/summary.json" 2>/dev/null \
    && grep -q '"concurrent_producer"' "$work/eval/summary.json"; then
    echo "veth-race: eval kernel: caught (verdict kernel, concurrent_producer)" >&2
  else
    echo "veth-race: eval kernel: NOT as expected (exit $rc; see $out/eval-kernel)" >&2
    status=1
  fi
fi

if ((control)); then
  echo "veth-race: control, Debian's stock 6.1 kernel" >&2
  cmd=("$xskdbg" soak --vm --kernel debian "${flags[@]}" --out "$work/control")
  "${cmd[@]}" >"$work/control.out" 2>"$work/control.err"
  rc=$?
  mkdir -p "$work/control"; mv "$work/control.out" "$work/control/stdout.txt"; mv "$work/control.err" "$work/control/stderr.txt"
  keep control-debian "$work/control" "$rc" xskdbg soak --vm --kernel debian "${flags[@]}"
  cat "$work/control/stdout.txt"
  if [[ $rc == 0 ]]; then
    echo "veth-race: control: clean" >&2
  else
    echo "veth-race: control: NOT clean (exit $rc; see $out/control-debian)" >&2
    status=1
  fi
fi
echo "$out"
exit $status
