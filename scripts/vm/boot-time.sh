#!/usr/bin/env bash
# Measure how long the guest takes to boot: N runs of `true`, printing the host time from
# starting qemu to the guest's /init and the guest's own uptime at that point, with the
# host's load average (other work on a 2-core machine skews TCG timings a lot).
#   scripts/vm/boot-time.sh [N] [xskdbg-vm run options, e.g. --kernel PATH --vcpus 3]
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
n=${1:-3}
shift || true
for i in $(seq 1 "$n"); do
    out=$(mktemp -d /tmp/xskdbg-boot.XXXXXX)
    start=$(date +%s.%N)
    summary=$("$here/xskdbg-vm.sh" run --out "$out" "$@" -- true 2>&1 | tail -1)
    end=$(date +%s.%N)
    uptime_at_init=$(cat "$out/guest/boot_uptime" 2>/dev/null || echo '?')
    boot=$(sed -n 's/.*boot \([0-9.]*\) s.*/\1/p' <<<"$summary")
    printf 'run %d: qemu start -> /init %s s (host), guest uptime at /init %s s, whole command %.1f s, load %s\n' \
        "$i" "${boot:-?}" "$uptime_at_init" "$(echo "$end - $start" | bc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
    rm -rf "$out"
done
