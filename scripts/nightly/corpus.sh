#!/usr/bin/env bash
# Nightly conformance corpus (docs/CORPUS.md): the kernel's own AF_XDP selftest,
# xskxceiver, built from Debian's linux-source-6.1 and -6.12, every test of its list
# in skb and drv mode, unrecorded and under `xskdbg record` with every backend:
#   6.1   Debian's 6.1 cloud kernel in one qemu guest   (fentry kprobe tracefs tracepoint)
#   6.12  Debian's 6.12 cloud kernel in one qemu guest  (fentry kprobe tracefs tracepoint)
#   host  this machine's kernel, 6.12's build           (tracepoint)
# and the instrumented program (6.12's build patched to call the recorder's C API):
#   host-xskdbg         every test, on this machine      (tracepoint)
#   host-xskdbg-double  a frame returned twice, planted  (tracepoint; a few tests)
#   host-xskdbg-leak    a frame leaked, planted          (tracepoint; a few tests)
#   6.12-xskdbg         every test in the 6.12 guest     (fentry kprobe tracefs tracepoint;
#                       not in the default list: another hour of TCG)
# then judges every kept trace (scripts/corpus/judge.py) into a dated table.
#
#   scripts/nightly/corpus.sh [--out ROOT] [--kernels '6.1 6.12 host host-xskdbg ...'] [--xskdbg PATH]
#       [--tests-6.1 'skb:0 ...'] [--tests-6.12 '...'] [--tests-host '...'] [--tests-plant '...']
#       [--docs DIR] [--xskx-only rx|tx] [--serial] [--all-backends]
#   scripts/nightly/corpus.sh --check DIR [--xskdbg PATH]   # re-judge kept outputs
#
# Within 90 minutes on a 2-core machine: the two guests run side by side (one
# vCPU each) and the host's runs beside them (--serial: one after the other); a
# test that fails unrecorded is recorded with the first backend only (it only has
# to fail the same way recorded; the invalid-descriptor tests fail by a 30 s
# timeout per run): --all-backends records it with all.
#
# Outputs: ROOT/corpus-DATE/{6.1,6.12,host}/RUN/... (traces, program output, record's
# notes), ROOT/corpus-DATE/table.{md,tsv}. With --docs DIR (e.g. docs/nightly) the
# table, the run's log and the traces of every row not as expected are copied to
# DIR/corpus-DATE/. Defaults: --out /var/lib/xskdbg/nightly, every kernel, every
# test, --xskdbg target/release/xskdbg (built if missing).
# --xskx-only rx|tx: the instrumented program records only its receiving (sending)
# interface's UMEM (XSKDBG_XSKX_ONLY; host runs only): one UMEM per trace.
# Exit: 0 every row as expected, 1 some row not (listed), 2 usage or setup error.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$repo/scripts/corpus
out_root=/var/lib/xskdbg/nightly
kernels="6.1 6.12 host host-xskdbg host-xskdbg-double host-xskdbg-leak"
xskdbg=
check=
docs=
serial=0
one_if_failing=1
declare -A tests=()
# The planted bugs fire at the 100th packet: tests that send thousands of them.
tests[plant]="skb:0 drv:0 skb:1 drv:1 skb:7 drv:7 skb:12 drv:12"
while (($#)); do
  case $1 in
    --out) out_root=$2; shift 2 ;;
    --kernels) kernels=$2; shift 2 ;;
    --xskdbg) xskdbg=$2; shift 2 ;;
    --tests-6.1) tests[6.1]=$2; shift 2 ;;
    --tests-6.12) tests[6.12]=$2; shift 2 ;;
    --tests-host) tests[host]=$2; shift 2 ;;
    --tests-plant) tests[plant]=$2; shift 2 ;;
    --check) check=$2; shift 2 ;;
    --docs) docs=$2; shift 2 ;;
    --xskx-only) export XSKDBG_XSKX_ONLY=$2; shift 2 ;;
    --serial) serial=1; shift ;;
    --all-backends) one_if_failing=; shift ;;
    -h|--help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "corpus: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z $xskdbg ]]; then
  xskdbg=${CARGO_TARGET_DIR:-$repo/target}/release/xskdbg
  if [[ ! -x $xskdbg ]]; then
    echo "corpus: building $xskdbg" >&2
    (cd "$repo" && cargo build --release -p xskdbg >&2) || { echo "corpus: cargo build failed" >&2; exit 2; }
  fi
fi
[[ -x $xskdbg ]] || { echo "corpus: $xskdbg is not an executable" >&2; exit 2; }

if [[ -n $check ]]; then
  exec python3 "$corpus/judge.py" --xskdbg "$xskdbg" "$check"
fi

day=$(date -u +%Y-%m-%d)
dir=$out_root/corpus-$day
mkdir -p "$dir" || exit 2
log=$dir/corpus.log
start=$SECONDS
say() { echo "corpus: $(date -u +%H:%M:%S) $*" | tee -a "$log" >&2; }
say "xskdbg $xskdbg; kernels $kernels; into $dir${XSKDBG_XSKX_ONLY:+; instrumented program records its ${XSKDBG_XSKX_ONLY} UMEM only}"
for k in $kernels; do
  case $k in
    6.1|6.12) "$corpus/build-xskxceiver.sh" "$k" >/dev/null || exit 2 ;;
    host) "$corpus/build-xskxceiver.sh" 6.12 >/dev/null || exit 2 ;;
    host-xskdbg|6.12-xskdbg) "$corpus/build-xskxceiver.sh" 6.12 --instrument >/dev/null || exit 2 ;;
    host-xskdbg-double|host-xskdbg-leak)
      "$corpus/build-xskxceiver.sh" 6.12 --instrument --plant "${k##*-}" >/dev/null || exit 2 ;;
    *) echo "corpus: unknown kernel $k (6.1, 6.12, host, host-xskdbg, host-xskdbg-double, host-xskdbg-leak, 6.12-xskdbg)" >&2; exit 2 ;;
  esac
done
# One kernel's runs.
run_kernel() {
  local k=$1 t0=$SECONDS rc=0
  rm -rf "${dir:?}/$k"
  case $k in
    6.1) "$corpus/run-xskxceiver.sh" --kernel debian --xskdbg "$xskdbg" --out "$dir/$k" \
           ${one_if_failing:+--one-backend-if-failing} ${tests[6.1]:+--tests "${tests[6.1]}"} ;;
    6.12) "$corpus/run-xskxceiver.sh" --kernel debian:6.12 --xskdbg "$xskdbg" --out "$dir/$k" \
           ${one_if_failing:+--one-backend-if-failing} ${tests[6.12]:+--tests "${tests[6.12]}"} ;;
    host) "$corpus/host-xskxceiver.sh" --xskdbg "$xskdbg" --out "$dir/$k" \
           ${tests[host]:+--tests "${tests[host]}"} 2>>"$log" ;;
    host-xskdbg) "$corpus/host-xskxceiver.sh" --instrument --xskdbg "$xskdbg" --out "$dir/$k" \
           ${tests[host]:+--tests "${tests[host]}"} 2>>"$log" ;;
    host-xskdbg-double|host-xskdbg-leak)
      "$corpus/host-xskxceiver.sh" --instrument --plant "${k##*-}" --xskdbg "$xskdbg" \
        --out "$dir/$k" --tests "${tests[plant]}" 2>>"$log" ;;
    6.12-xskdbg) "$corpus/run-xskxceiver.sh" --kernel debian:6.12 --instrument --xskdbg "$xskdbg" \
           ${one_if_failing:+--one-backend-if-failing} --out "$dir/$k" ${tests[6.12]:+--tests "${tests[6.12]}"} ;;
  esac || rc=$?
  say "$k: ran in $((SECONDS - t0)) s (exit $rc)"
}
# Lanes: each guest kernel its own (a 1-vCPU TCG guest keeps one core busy), the
# host's runs one more (mostly waiting on xskxceiver's timeouts); lanes run at once
# unless --serial. A 2-core machine runs the two guests side by side.
if ((serial)); then
  for k in $kernels; do run_kernel "$k"; done
else
  hostlane=() pids=()
  for k in $kernels; do
    case $k in
      host*) hostlane+=("$k") ;;
      *) run_kernel "$k" & pids+=($!) ;;
    esac
  done
  if ((${#hostlane[@]})); then
    ( for k in "${hostlane[@]}"; do run_kernel "$k"; done ) & pids+=($!)
  fi
  for p in "${pids[@]}"; do wait "$p"; done
fi
python3 "$corpus/judge.py" --xskdbg "$xskdbg" "$dir" | tee -a "$log"
rc=${PIPESTATUS[0]}
say "whole corpus: $((SECONDS - start)) s"
if [[ -n $docs ]]; then
  keep=$docs/corpus-$day
  mkdir -p "$keep"
  cp "$dir/table.md" "$dir/table.tsv" "$log" "$keep/"
  # The traces of the rows not as expected, to become fixtures.
  awk -F'\t' 'NR > 1 && $8 !~ /^ok/ && $2 != "(none)" { print $1 "/" $3 "/" $2 }' "$dir/table.tsv" |
    while read -r r; do
      for f in "$dir/$r".{trace.gz,stdout,stderr,report}; do
        [[ -f $f ]] && { mkdir -p "$keep/$(dirname "$r")"; cp "$f" "$keep/$(dirname "$r")/"; }
      done
    done
  say "table and the traces of unexpected rows copied to $keep"
fi
exit "$rc"
