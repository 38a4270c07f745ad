// SPDX-License-Identifier: GPL-2.0
/* The `kprobe` backend: BPF programs on kprobes/kretprobes (perf_event_open)
 * at the functions of kfunc.h, for kernels without BPF trampolines. */
#include "kfunc.h"

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe/__xsk_rcv_zc")
int BPF_KPROBE(kp_rcv, struct xdp_sock *xs, void *xskb, __u32 len)
{
	on_rcv_entry(ctx, xs, xskb, len);
	return 0;
}

SEC("kretprobe/__xsk_rcv_zc")
int BPF_KRETPROBE(kr_rcv, int ret)
{
	on_rcv_exit(ret);
	return 0;
}

SEC("kprobe/sock_def_readable")
int BPF_KPROBE(kp_readable, struct sock *sk)
{
	on_readable(ctx, sk);
	return 0;
}

SEC("kprobe/xp_raw_get_data")
int BPF_KPROBE(kp_raw_get_data, struct xsk_buff_pool *pool, __u64 addr)
{
	on_raw_get_data((__u64)pool, addr);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} peek_pool SEC(".maps");

SEC("kprobe/xsk_tx_peek_desc")
int BPF_KPROBE(kp_peek, struct xsk_buff_pool *pool, struct xdp_desc *desc)
{
	__u32 zero = 0;
	__u64 *p = bpf_map_lookup_elem(&peek_pool, &zero);

	if (p)
		*p = (__u64)pool;
	on_peek_entry((__u64)desc);
	return 0;
}

/* kretprobes see no arguments: the pool comes from the entry's stash. */
SEC("kretprobe/xsk_tx_peek_desc")
int BPF_KRETPROBE(kr_peek, bool ret)
{
	__u32 zero = 0;
	__u64 *p = bpf_map_lookup_elem(&peek_pool, &zero);

	on_peek_exit(p ? *p : 0, ret);
	return 0;
}

SEC("kprobe/xsk_tx_completed")
int BPF_KPROBE(kp_tx_completed, struct xsk_buff_pool *pool, __u32 n)
{
	on_tx_completed((__u64)pool, n);
	return 0;
}

SEC("kprobe/xsk_destruct_skb")
int BPF_KPROBE(kp_destruct_skb, struct sk_buff *skb)
{
	on_destruct_skb(skb);
	return 0;
}
