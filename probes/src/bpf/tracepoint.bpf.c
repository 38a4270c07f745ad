// SPDX-License-Identifier: GPL-2.0
/*
 * The `tracepoint` backend: no function probe at all, so it loads on
 * locked-down kernels (no kprobes, fentry refused). tp_btf programs on
 *   xdp:xdp_redirect      fires right after __xsk_map_redirect() (native XDP)
 *                         or xsk_generic_rcv() (generic XDP) succeeded, i.e.
 *                         after xskq_prod_reserve_desc() bumped
 *                         rx->cached_prod and wrote the slot's addr/len;
 *   xdp:xdp_redirect_err  the same call failed (frame dropped);
 *   xdp:xdp_exception     the XDP program aborted or returned a bad action;
 *   napi:napi_poll        a NAPI poll returned: the driver's xdp_do_flush()
 *                         (xsk_flush of every socket this CPU touched) ran
 *                         before it.
 * Output: xskdbg.h (records in per-CPU rings, or bpf_trace_printk).
 * GPL because bpf_trace_printk/vprintk are GPL-only helpers.
 */
#include "xskdbg.h"

char LICENSE[] SEC("license") = "GPL";

/* Kept in sync with BPF_MAP_TYPE_XSKMAP (stable UAPI value). */
#define XSKMAP_TYPE 17

static __always_inline int on_redirect(void *ctx, const struct net_device *dev,
				       const struct bpf_prog *xdp, const void *tgt,
				       enum bpf_map_type map_type)
{
	struct xdp_sock *xs = KCAST(tgt, struct xdp_sock);
	struct rx_state st;
	struct xdp_desc d;
	struct xsk_id id;
	const char *mode;
	__u8 kind;
	__u32 slot;

	if (map_type != XSKMAP_TYPE || !xs)
		return 0;
	xsk_id_read(xs, &id);
	if (!xsk_pass(xs, &id))
		return 0;
	if (rx_state_read(xs, &st))
		return 0;
	/* The reservation for this packet is the last one made on this
	 * socket: slot = cached_prod - 1 (unmasked). */
	slot = st.cached_prod - 1;
	rx_desc_read(&st, slot, &d);
	/* Generic XDP keeps its program in dev->xdp_prog; drivers keep theirs
	 * privately. Zero-copy sockets are always driver mode. */
	if (KREAD(xs, zc)) {
		mode = "zc";
		kind = K_ZC;
	} else if ((__u64)KREAD(dev, xdp_prog) == (__u64)xdp) {
		mode = "skb";
		kind = K_SKB;
	} else {
		mode = "drv";
		kind = K_DRV;
	}
	if (out_ring) {
		struct xskdbg_rec *r = rec_new(R_KRX, kind);

		if (r) {
			rec_sock(r, &id);
			r->addr = d.addr;
			r->len = d.len;
			r->opt = d.options;
			r->slot = slot;
			r->pool = id.pool;
			r->prod = st.prod;
			r->fcons = fill_cons(id.pool);
			r->has |= H_A | H_LEN | H_SLOT | H_POOL | H_PROD | H_FCONS |
				  (d.options ? H_OPT : 0);
			rec_send(r);
		}
	} else if (d.options) {
		bpf_printk("xskdbg:1 krx xs=%llx sk=%llx:%x:%x a=%llx len=%x opt=%x slot=%x kpool=%llx prod=%x fcons=%x mode=%s",
			   id.xs, id.cookie, id.ifindex, id.queue, d.addr, d.len, d.options, slot,
			   id.pool, st.prod, fill_cons(id.pool), mode);
	} else {
		bpf_printk("xskdbg:1 krx xs=%llx sk=%llx:%x:%x a=%llx len=%x slot=%x kpool=%llx prod=%x fcons=%x mode=%s",
			   id.xs, id.cookie, id.ifindex, id.queue, d.addr, d.len, slot, id.pool,
			   st.prod, fill_cons(id.pool), mode);
	}
	emit_stack(ctx, "krx", id.xs);
	touched_add(&id, &st);
	return 0;
}

static __always_inline int on_redirect_err(const void *tgt, int err, enum bpf_map_type map_type)
{
	struct xdp_sock *xs = KCAST(tgt, struct xdp_sock);
	struct rx_state st;
	struct xsk_id id;

	if (map_type != XSKMAP_TYPE || !xs)
		return 0;
	xsk_id_read(xs, &id);
	if (!xsk_pass(xs, &id))
		return 0;
	if (rx_state_read(xs, &st))
		return 0;
	if (out_ring) {
		struct xskdbg_rec *r = rec_new(R_KXDPERR, K_WHY_REDIRECT);

		if (!r)
			return 0;
		rec_sock(r, &id);
		r->n = -err;
		r->pool = id.pool;
		r->cprod = st.cached_prod;
		r->prod = st.prod;
		r->fcons = fill_cons(id.pool);
		r->has |= H_ERRNO | H_POOL | H_CPROD | H_PROD | H_FCONS;
		rec_send(r);
		return 0;
	}
	bpf_printk("xskdbg:1 kxdperr why=redirect xs=%llx sk=%llx:%x:%x errno=%x kpool=%llx cprod=%x prod=%x fcons=%x",
		   id.xs, id.cookie, id.ifindex, id.queue, -err, id.pool, st.cached_prod, st.prod,
		   fill_cons(id.pool));
	return 0;
}

/*
 * tp_btf first; kernels before ~6.3 refuse tp_btf reads of a `void *`
 * tracepoint argument ("arg2 type UNKNOWN is not a struct"), so the same
 * bodies also exist as raw_tp programs that user space loads instead.
 */
SEC("tp_btf/xdp_redirect")
int BPF_PROG(tp_xdp_redirect, const struct net_device *dev, const struct bpf_prog *xdp,
	     const void *tgt, int err, enum bpf_map_type map_type, __u32 map_id, __u32 index)
{
	return on_redirect(ctx, dev, xdp, tgt, map_type);
}

SEC("raw_tp/xdp_redirect")
int BPF_PROG(rtp_xdp_redirect, const struct net_device *dev, const struct bpf_prog *xdp,
	     const void *tgt, int err, enum bpf_map_type map_type, __u32 map_id, __u32 index)
{
	return on_redirect(ctx, dev, xdp, tgt, map_type);
}

SEC("tp_btf/xdp_redirect_err")
int BPF_PROG(tp_xdp_redirect_err, const struct net_device *dev, const struct bpf_prog *xdp,
	     const void *tgt, int err, enum bpf_map_type map_type, __u32 map_id, __u32 index)
{
	return on_redirect_err(tgt, err, map_type);
}

SEC("raw_tp/xdp_redirect_err")
int BPF_PROG(rtp_xdp_redirect_err, const struct net_device *dev, const struct bpf_prog *xdp,
	     const void *tgt, int err, enum bpf_map_type map_type, __u32 map_id, __u32 index)
{
	return on_redirect_err(tgt, err, map_type);
}

SEC("tp_btf/xdp_exception")
int BPF_PROG(tp_xdp_exception, const struct net_device *dev, const struct bpf_prog *xdp, __u32 act)
{
	struct net *net = KREAD(dev, nd_net.net);
	__u32 ifindex = KREAD(dev, ifindex);
	__u64 cookie = KREAD(net, net_cookie);

	if (!dev_pass(cookie, ifindex))
		return 0;
	if (out_ring) {
		struct xskdbg_rec *r = rec_new(R_KXDPERR, K_WHY_EXCEPTION);

		if (!r)
			return 0;
		r->cookie = cookie;
		r->ifindex = ifindex;
		r->aux = act;
		rec_send(r);
		return 0;
	}
	bpf_printk("xskdbg:1 kxdperr why=exception dev=%llx:%x act=%x", cookie, ifindex, act);
	return 0;
}

SEC("tp_btf/napi_poll")
int BPF_PROG(tp_napi_poll, struct napi_struct *napi, int work, int budget)
{
	__u32 zero = 0;
	struct touched *t = bpf_map_lookup_elem(&touched, &zero);
	__u32 ifindex = 0;
	struct net_device *dev;

	/* Only polls that redirected into a probed socket matter. */
	if (!t || !t->n)
		return 0;
	/* tp_btf: napi is a trusted pointer, read without a helper call. */
	dev = napi->dev;
	if (dev)
		ifindex = dev->ifindex;
	poll_end(ctx, t, (__u64)napi, ifindex, work, budget);
	return 0;
}
