// SPDX-License-Identifier: GPL-2.0
/* The `fentry` backend: BPF trampolines on the functions of kfunc.h. */
#include "kfunc.h"

char LICENSE[] SEC("license") = "GPL";

SEC("fentry/__xsk_rcv_zc")
int BPF_PROG(fe_rcv, struct xdp_sock *xs, void *xskb, __u32 len)
{
	on_rcv_entry(ctx, xs, xskb, len);
	return 0;
}

SEC("fexit/__xsk_rcv_zc")
int BPF_PROG(fx_rcv, struct xdp_sock *xs, void *xskb, __u32 len, int ret)
{
	on_rcv_exit(ret);
	return 0;
}

SEC("fentry/sock_def_readable")
int BPF_PROG(fe_readable, struct sock *sk)
{
	on_readable(ctx, sk);
	return 0;
}

SEC("fentry/xp_raw_get_data")
int BPF_PROG(fe_raw_get_data, struct xsk_buff_pool *pool, __u64 addr)
{
	on_raw_get_data((__u64)pool, addr);
	return 0;
}

SEC("fexit/xsk_tx_peek_desc")
int BPF_PROG(fx_peek, struct xsk_buff_pool *pool, struct xdp_desc *desc, bool ret)
{
	on_peek_entry((__u64)desc);
	on_peek_exit((__u64)pool, ret);
	return 0;
}

SEC("fentry/xsk_tx_completed")
int BPF_PROG(fe_tx_completed, struct xsk_buff_pool *pool, __u32 n)
{
	on_tx_completed((__u64)pool, n);
	return 0;
}

SEC("fentry/xsk_destruct_skb")
int BPF_PROG(fe_destruct_skb, struct sk_buff *skb)
{
	on_destruct_skb(skb);
	return 0;
}
