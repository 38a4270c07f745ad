#!/usr/bin/env bash
# Boot the guest once and print what it offers the probes: kernel, boot time, BTF, tracefs,
# bpffs, kprobes on the AF_XDP functions of the seed story, veth, bpftool's feature probe.
#   scripts/vm/guest-facts.sh [--kernel debian|PATH] [--vcpus N] [other xskdbg-vm run options]
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
out=$(mktemp -d /tmp/xskdbg-guest-facts.XXXXXX)
k=/sys/kernel/tracing/kprobe_events
"$here/xskdbg-vm.sh" run --out "$out" --timeout 300 --bin /usr/sbin/bpftool "$@" \
    --cmd 'echo "kernel: $(uname -r), $(nproc) cpus, uptime at first command $(cut -d" " -f1 /proc/uptime) s"' \
    --cmd 'ls -l /sys/kernel/btf/vmlinux; grep -E " (tracefs|bpf|debugfs) " /proc/mounts' \
    --cmd "for f in __xsk_rcv_zc xp_raw_get_data __xsk_map_flush xsk_tx_completed; do echo \"p:xskdbg_facts_\$f \$f\" >> $k && echo \"kprobe on \$f: accepted\" || echo \"kprobe on \$f: REFUSED\"; done; cat $k; echo 1 > /sys/kernel/tracing/events/kprobes/enable && echo kprobes enabled; echo 0 > /sys/kernel/tracing/events/kprobes/enable; echo > $k" \
    --cmd 'grep -w -E "xsk_flush|__xsk_rcv_zc|xp_raw_get_data|__xsk_map_flush" /sys/kernel/tracing/available_filter_functions || echo "(none of them in available_filter_functions)"' \
    --cmd '/usr/sbin/ip link add fa0 type veth peer name fa1 && /usr/sbin/ip -br link show type veth' \
    --cmd 'bpftool feature probe kernel 2>&1 | grep -E "CONFIG_(KPROBES|BPF_JIT|DEBUG_INFO_BTF|XDP_SOCKETS)|program_type (kprobe|tracing|xdp)|bpf_trace_printk|bpf_probe_read_kernel is|get_func_ip" | sort -u'
echo "results: $out"
