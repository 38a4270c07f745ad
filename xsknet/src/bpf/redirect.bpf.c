// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Redirect every received frame to the AF_XDP socket registered for the
 * receive queue it arrived on; frames of a queue without a socket go on to
 * the kernel stack (XDP_PASS), so ARP and friends keep working.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Large enough for any veth queue count a test uses (veth caps at 4096). */
#define MAX_QUEUES 256

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

/* Per-CPU counters: [0] redirected to a socket, [1] passed to the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

SEC("xdp")
int xsk_redirect(struct xdp_md *ctx)
{
	__u32 key;
	__u64 *count;
	long action;

	action = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
	key = action == XDP_REDIRECT ? 0 : 1;
	count = bpf_map_lookup_elem(&verdicts, &key);
	if (count)
		*count += 1;
	return (int)action;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
