#!/usr/bin/env bash
# Issue 7: does xskdbg catch the seed story's veth race? Runs the soak in a
# qemu guest on the eval kernel (Debian 6.1 with fa349e396e48 reverted and two
# window-widening knobs: ../shared/eval-kernel/), then the same soak on
# Debian's stock 6.1 kernel (fixed) as the control, and writes what came back
# to docs/nightly/veth-race-DATE/ (reports and summaries; the trace only
# gzipped and only if that stays under 1 MB; a larger one goes to
# --trace-archive DIR/DATE/RUN/, default /var/cache/xskdbg/veth-race, '' for
# none, and TRACE-NOT-KEPT says where).
#
#   scripts/nightly/veth-race.sh [--duration S] [--out DIR] [--xskdbg PATH]
#       [--kernel BZIMAGE] [--only eval|control] [--probes auto|tracepoint|both]
#       [--trace-archive DIR]
#   scripts/nightly/veth-race.sh --check DIR
#
# Defaults: --duration 60 (the eval run stops at the first violation, within
# seconds; the control runs it all), --out docs/nightly/veth-race-DATE,
# --xskdbg target/release/xskdbg (built if missing), --kernel from
# scripts/build-eval-kernel.sh (cached; the first build takes 15-25 min),
# --probes auto (fentry in these guests). `tracepoint` runs what a host that
# refuses function probes can attach; `both` runs auto, then tracepoint.
# Expected with auto: eval kernel -> exit 1, the application read a poisoned
# or mismatched descriptor (recorder violation), analyzer verdict `kernel`
# with a concurrent_producer finding on the two traffic CPUs; control ->
# exit 0. With tracepoint: eval kernel -> exit 1, the poisoned/mismatched
# read; when the app read the poison, report.json's summary verdict `kernel`
# (the soak logs the producer it saw with each RX batch, so the poisoned read
# of a slot it was entitled to is the kernel's on its own,
# poisoned_descriptor/entitled-read, and proves the overlap before it,
# concurrent_producer/poisoned-read); a mismatched read without the poison
# needs a concurrent_producer finding with verdict kernel. Control -> exit 0,
# no violation, no finding (overlaps whose end is only inferred and that
# nothing bad followed are only a note), and no receive whose slot was
# already published when its redirect returned. Older runs (before the soak
# logged prod=) are checked as they were: a concurrent_producer kernel
# finding with rule published-before-redirect on the two traffic CPUs, and
# inconclusive overlaps allowed on the control. `--check DIR` only re-checks the runs kept in DIR
# (e.g. after regenerating their reports). Script exit: 0 every run as
# expected, 1 not, 2 setup error. Not part of .ci/run (too slow).
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
duration=60
out=$here/docs/nightly/veth-race-$(date -u +%Y-%m-%d)
xskdbg=
kernel=
control=1
eval=1
probes=auto
recheck=
trace_max=1000000
archive=/var/cache/xskdbg/veth-race
while (($#)); do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --xskdbg) xskdbg=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --only) case $2 in eval) control=0 ;; control) eval=0 ;; *) echo "veth-race: --only eval|control" >&2; exit 2 ;; esac; shift 2 ;;
    --probes) case $2 in auto|tracepoint|both) probes=$2 ;; *) echo "veth-race: --probes auto|tracepoint|both" >&2; exit 2 ;; esac; shift 2 ;;
    --check) recheck=$2; shift 2 ;;
    --trace-archive) archive=$2; shift 2 ;;
    -h|--help) sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "veth-race: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v python3 >/dev/null || { echo "veth-race: python3 is needed to read summary.json (scripts/setup.sh)" >&2; exit 2; }
# check KIND BACKEND RC SUMMARY: prints why the run is not as expected (and
# returns 1), or a one-line description of what it showed. Findings come from
# report.json next to SUMMARY (rules and CPUs; it is what a regenerated
# report changes), else from summary.json's analyzer_findings.
check() {
  python3 - "$@" <<'PY'
import json, os, sys
kind, backend, rc, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
try:
    s = json.load(open(path))
except (OSError, ValueError) as e:
    print(f"no summary.json ({e})"); sys.exit(1)
report = os.path.join(os.path.dirname(path), "report.json")
try:
    findings = json.load(open(report))["findings"]
    found = [(f.get("kind"), f.get("verdict"), f.get("rule"), f.get("cpus")) for f in findings]
    verdict = json.load(open(report)).get("summary", {}).get("verdict")
except (OSError, ValueError, KeyError, TypeError, AttributeError):
    found = [(k, v, None, None) for k, v in
             zip(s.get("analyzer_findings", []), s.get("analyzer_verdicts", []))]
    verdict = s.get("analyzer_verdict")
viol = s.get("recorder_violation")
cpus = s.get("kernel_rx_cpus", {})
rules = sorted({f"{r or k} ({v})" for k, v, r, _ in found})
what = (f"exit {rc}, analyzer verdict {verdict}, {len(found)} finding(s) {rules}, "
        f"recorder: {viol or 'no violation'}, kernel receives per CPU {cpus}")
problems = []
early = s.get("kernel_rx_published_before_redirect")
if backend == "tracepoint" and early is not None:
    what += f", receives whose slot was already published at their redirect: {early}"
    if kind == "control" and early:
        problems.append(f"{early} receive(s) found their slot already published on the fixed kernel")
if s.get("trace_entries_written") not in (None, s.get("trace_entries_in_buffer")):
    what += (f"; the ftrace buffer wrapped ({s.get('trace_entries_in_buffer')} of "
             f"{s.get('trace_entries_written')} entries kept)")
cp_kernel = [f for f in found if f[0] == "concurrent_producer" and f[1] == "kernel"]
# The soak records itself: `instrumentation` means its own recording is wrong.
if verdict == "instrumentation" or any(f[1] == "instrumentation" for f in found):
    problems.append("verdict instrumentation: the soak's own recording is wrong")
# Runs recorded since the soak logs the producer the app saw (`rx ... prod=`)
# are held to the new rules; older kept runs to the rules of their day.
trace_txt = os.path.join(os.path.dirname(path), "trace.txt")
trace_gz = trace_txt + ".gz"
def logs_prod():
    import gzip, re
    pat = re.compile(rb"xskdbg:1 rx .* prod=[0-9a-f]+")
    for p, op in ((trace_txt, open), (trace_gz, gzip.open)):
        if os.path.exists(p):
            with op(p, "rb") as f:
                return any(pat.search(l) for l in f)
    return s.get("probe_output") is not None  # the summary of a current soak
new_rules = logs_prod()
poisoned = bool(viol) and "kind=poisoned_descriptor" in viol
if kind == "eval":
    if rc != 1:
        problems.append(f"exit {rc}, want 1")
    if not viol or not any(k in viol for k in ("kind=poisoned_descriptor", "to=rx", "kind=fifo_order")):
        problems.append("the application read no poisoned or mismatched descriptor")
    if backend == "tracepoint" and new_rules and poisoned:
        # The poisoned read of a slot the app was entitled to is proof on
        # its own: the whole report must say kernel.
        if verdict != "kernel":
            problems.append(f"the application read the poison but the summary verdict is {verdict}, want kernel")
    else:
        # fentry: the exact flush proves the overlap; tracepoints without
        # the app's producer: only a receive that found its own slot
        # already published does.
        want = None if backend == "auto" or new_rules else "concurrent_producer/published-before-redirect"
        if not any(f[3] == [0, 1] and (want is None or f[2] == want) for f in cp_kernel):
            problems.append("no concurrent_producer finding with verdict kernel on CPUs 0,1"
                            + (f" (rule {want})" if want else ""))
else:
    if s.get("violations", 0) != 0:
        problems.append(f"{s.get('violations')} recorder violation(s) on the fixed kernel")
    if verdict == "kernel" or cp_kernel:
        problems.append("a kernel verdict on the fixed kernel")
    old_tp = backend == "tracepoint" and not new_rules
    allowed = {("concurrent_producer", "inconclusive")} if old_tp else set()
    bad = sorted({f"{r or k} ({v})" for k, v, r, _ in found if (k, v) not in allowed})
    if bad:
        problems.append(f"analyzer findings {bad}")
    if not old_tp and rc != 0:
        problems.append(f"exit {rc}, want 0")
print(what + ("" if not problems else " -- NOT as expected: " + "; ".join(problems)))
sys.exit(1 if problems else 0)
PY
}

# --check DIR: the expectations above applied to runs already kept in DIR
# (one directory per run, named as below; the exit code from command.txt).
if [[ -n $recheck ]]; then
  status=0 n=0
  for d in "$recheck"/*/; do
    d=${d%/}; name=$(basename "$d")
    case $name in
      eval-kernel*) kind=eval ;; control-*) kind=control ;; *) continue ;;
    esac
    backend=auto; [[ $name == *-tracepoint ]] && backend=tracepoint
    rc=$(sed -n 's/^exit \([0-9]*\)$/\1/p' "$d/command.txt" 2>/dev/null | tail -1)
    [[ -n $rc ]] || { echo "veth-race: $d/command.txt has no exit line" >&2; status=1; continue; }
    n=$((n + 1))
    if line=$(check "$kind" "$backend" "$rc" "$d/summary.json"); then
      echo "veth-race: $name: as expected: $line"
    else
      echo "veth-race: $name: $line"
      status=1
    fi
  done
  ((n)) || { echo "veth-race: no run directories in $recheck" >&2; exit 2; }
  exit $status
fi

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

# The issue's command: one rx queue fed from CPUs 0 and 1 (the soak paces
# generators that share a queue, so each NAPI poll completes and the next
# frame starts a poll on the CPU that sent it: two producers on one socket
# when the late flush lets a second poll start), the forwarder alone on
# CPU 2 poisoning every RX slot. 64 MiB of ftrace buffer per CPU holds a
# 60 s control run without wrapping (summary.json says if it did).
flags=(--vcpus 3 --queues 1 --traffic-cpus 0,1 --forwarder-cpu 2 --poison
  --duration "$duration" --buffer-kb 65536)
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
  # The soak writes trace.txt only when it found something (a clean control
  # has none). Over the repo's limit (a 60 s control: ~70 MB, ~6 MB gzipped)
  # it goes to the archive instead, so a newer analyzer can still be run on
  # it on this machine (the 2026-11-22 control could not be re-checked).
  if [[ -f $d/trace.txt ]]; then
    local size where
    gzip -9 -c "$d/trace.txt" >"$dst/trace.txt.gz"
    size=$(stat -c %s "$dst/trace.txt.gz")
    if ((size > trace_max)); then
      where="not archived (--trace-archive '')"
      if [[ -n $archive ]]; then
        local a=$archive/$(basename "$out")/$name
        if mkdir -p "$a" && mv -f "$dst/trace.txt.gz" "$a/trace.txt.gz.tmp" && mv -f "$a/trace.txt.gz.tmp" "$a/trace.txt.gz"; then
          where="kept outside the repo: $a/trace.txt.gz"
        else
          where="archiving to $a failed"
        fi
      fi
      rm -f "$dst/trace.txt.gz"
      echo "trace.txt ($(stat -c %s "$d/trace.txt") bytes, $size gzipped) not kept here: over $trace_max bytes gzipped; $where" >"$dst/TRACE-NOT-KEPT"
    fi
  fi
  printf '%q ' "$@" >"$dst/command.txt"; echo >>"$dst/command.txt"
  echo "exit $rc" >>"$dst/command.txt"
}

status=0
run() { # kind backend dir-name kernel-args...
  local kind=$1 backend=$2 name=$3; shift 3
  local d=$work/$name rc line
  echo "veth-race: $name ($*, --probes $backend)" >&2
  "$xskdbg" soak --vm "$@" "${flags[@]}" --probes "$backend" --out "$d" >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
  mkdir -p "$d"; mv "$work/$name.out" "$d/stdout.txt"; mv "$work/$name.err" "$d/stderr.txt"
  keep "$name" "$d" "$rc" xskdbg soak --vm "$@" "${flags[@]}" --probes "$backend"
  cat "$d/stdout.txt"
  if line=$(check "$kind" "$backend" "$rc" "$d/summary.json"); then
    echo "veth-race: $name: as expected: $line" >&2
  else
    echo "veth-race: $name: $line (see $out/$name)" >&2
    status=1
  fi
}

backends=$probes
[[ $probes == both ]] && backends='auto tracepoint'
for b in $backends; do
  suffix=; [[ $b == tracepoint ]] && suffix=-tracepoint
  if ((eval)); then run eval "$b" "eval-kernel$suffix" --kernel "$kernel" --append "$knobs"; fi
  if ((control)); then run control "$b" "control-debian$suffix" --kernel debian; fi
done
echo "$out"
exit $status
