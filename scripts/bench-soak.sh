#!/usr/bin/env bash
# What watching costs the soak: packets per second of `xskdbg soak` without
# the recorder (--sink off), with the recorder on trace_marker, and with the
# recorder and the kernel probes, alternating the modes round after round in
# one run (the machine's drift hits every mode alike), then the median of
# each and its ratio to the uninstrumented median.
#
#   scripts/bench-soak.sh [--rounds N] [--duration S] [--probes BACKEND] [--printk] [--bin PATH]
#                         [--vm [--kernel K]]
#
# --printk adds a fourth mode, the probes with --probe-output printk (one
# bpf_trace_printk line per event: the capture before ring buffers), to
# measure before and after in the same run. Needs root (namespaces, XDP,
# tracefs). Prints one line per run, then the table docs/PERF.md quotes.
#
# --vm runs every soak in a qemu guest (`soak --vm`, Debian's 6.1 kernel or
# --kernel K; one boot per run): under TCG absolute rates mean little, only
# the ratios within one run of this script count (e.g. --probes fentry,
# which the host refuses).
set -euo pipefail

rounds=3
duration=10
backend=tracepoint
printk=0
bin=""
vm_on=0
kernel=debian
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --probes) backend="$2"; shift 2 ;;
        --printk) printk=1; shift ;;
        --bin) bin="$2"; shift 2 ;;
        --vm) vm_on=1; shift ;;
        --kernel) kernel="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-soak: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ $(id -u) -ne 0 ]]; then
    echo "bench-soak: needs root (network namespaces, XDP, tracefs)" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
if [[ -z "$bin" ]]; then
    cargo build --release --quiet --bin xskdbg
    bin="${CARGO_TARGET_DIR:-target}/release/xskdbg"
fi

vm=()
[[ $vm_on -eq 1 ]] && vm=(--vm --kernel "$kernel")
modes=("off" "marker" "probes")
[[ $printk -eq 1 ]] && modes+=("printk")
args_of() {
    case "$1" in
        off) echo "--sink off" ;;
        marker) echo "--sink marker" ;;
        probes) echo "--sink marker --probes $backend --probe-output ring" ;;
        printk) echo "--sink marker --probes $backend --probe-output printk" ;;
    esac
}

work=$(mktemp -d /tmp/xskdbg-bench-soak.XXXXXX)
trap 'rm -rf "$work"' EXIT
declare -A results
where="kernel $(uname -r)"
[[ ${#vm[@]} -gt 0 ]] && where="in a qemu guest (${vm[*]}), host kernel $(uname -r)"
echo "bench-soak: $rounds rounds x ${#modes[@]} modes, ${duration} s each, probes $backend; $(nproc) CPUs, $where, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
    for m in "${modes[@]}"; do
        out="$work/$m-$r"
        rc=0
        # shellcheck disable=SC2046
        "$bin" soak "${vm[@]}" --duration "$duration" $(args_of "$m") --out "$out" >"$out.log" 2>&1 || rc=$?
        if [[ $rc -ne 0 ]]; then
            keep=/var/tmp/bench-soak-$m-$r-$(date +%s)
            cp -r "$out" "$keep" 2>/dev/null; cp "$out.log" "$keep/" 2>/dev/null
            echo "bench-soak: round $r, $m: soak failed or found something (exit $rc); kept in $keep:" >&2
            tail -5 "$out.log" >&2
            exit 1
        fi
        pps=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["packets_per_second"]))' "$out/summary.json")
        results[$m]+="$pps "
        echo "round $r  $(printf '%-7s' "$m") $pps packets/s  (load $(cut -d' ' -f1 /proc/loadavg))"
    done
done
python3 - "$rounds" "$backend" "${modes[@]}" <<EOF
import statistics, sys
rounds, backend, modes = sys.argv[1], sys.argv[2], sys.argv[3:]
res = {m: [int(x) for x in v.split()] for m, v in {$(for m in "${modes[@]}"; do printf '"%s": "%s", ' "$m" "${results[$m]}"; done)}.items()}
names = {"off": "recorder off (--sink off)", "marker": "recorder on trace_marker",
         "probes": f"recorder + {backend} probes (ring)", "printk": f"recorder + {backend} probes (printk)"}
base = statistics.median(res["off"])
print()
print("| mode | packets/s per round | median | vs off |")
print("|---|---|---:|---:|")
for m in modes:
    med = statistics.median(res[m])
    print(f"| {names[m]} | {' / '.join(f'{x:,}' for x in res[m])} | {med:,.0f} | {100 * med / base:.0f}% |")
EOF
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
