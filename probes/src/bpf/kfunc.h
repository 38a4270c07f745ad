/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Handler bodies shared by the `fentry` and `kprobe` backends: the same
 * functions of net/xdp/xsk.c the seed story probed, read through CO-RE.
 */
#ifndef XSKDBG_KFUNC_H
#define XSKDBG_KFUNC_H

#include "xskdbg.h"

#define AF_XDP_FAMILY 44

/* Set by user space before load: kernels before 6.6 keep the frame address
 * in skb_shinfo(skb)->destructor_arg of copy-mode TX skbs; later ones keep a
 * descriptor count or a pointer there. */
const volatile bool destructor_arg_is_addr = false;

/* Layout of struct xdp_buff_xsk before 6.9 (the orig_addr field). */
struct xdp_buff_xsk___old {
	struct xdp_buff xdp;
	__u64 orig_addr;
} __attribute__((preserve_access_index));

/* Layout of struct xsk_buff_pool after 6.9 (the addrs field). */
struct xsk_buff_pool___new {
	void *addrs;
} __attribute__((preserve_access_index));

/* xp_get_handle(): the descriptor address the kernel writes into RX. */
static __always_inline __u64 xskb_handle(void *xskb, struct xsk_buff_pool *pool)
{
	struct xdp_buff *xdp = xskb;
	__u64 data = (__u64)BPF_CORE_READ(xdp, data);
	__u64 hard = (__u64)BPF_CORE_READ(xdp, data_hard_start);
	__u64 offset = data - hard;
	bool unaligned = BPF_CORE_READ(pool, unaligned);
	__u32 headroom = BPF_CORE_READ(pool, headroom);
	__u64 orig;

	if (bpf_core_field_exists(struct xdp_buff_xsk___old, orig_addr)) {
		orig = BPF_CORE_READ((struct xdp_buff_xsk___old *)xskb, orig_addr);
		offset += headroom;
		if (!unaligned)
			return orig + offset;
		return orig + (offset << 48);
	}
	/* 6.9+ (6.12's include/net/xsk_buff_pool.h): the headroom is part of the
	 * offset moved into the upper bits, and taken off the base. */
	orig = data - (__u64)BPF_CORE_READ((struct xsk_buff_pool___new *)pool, addrs);
	if (!unaligned)
		return orig;
	offset += headroom;
	orig -= offset;
	return orig + (offset << 48);
}

/* Per-CPU stash between entry and return of __xsk_rcv_zc (kretprobes see
 * no arguments). Receive runs in softirq or with BH disabled: no nesting. */
struct rcv_stash {
	__u64 xs;
	__u32 slot;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rcv_stash);
} stash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} peek_stash SEC(".maps");

/* Entry of __xsk_rcv_zc(xs, xskb, len): the slot it is about to reserve is
 * rx->cached_prod (xskq_prod_reserve_desc increments it, then writes). */
static __always_inline void on_rcv_entry(void *ctx, struct xdp_sock *xs, void *xskb, __u32 len)
{
	__u32 zero = 0;
	struct rcv_stash *s;
	struct rx_state st;
	struct xsk_id id;
	__u64 addr;

	xsk_id_read(xs, &id);
	if (!xsk_pass(xs, &id))
		return;
	if (rx_state_read(xs, &st))
		return;
	addr = xskb_handle(xskb, (struct xsk_buff_pool *)id.pool);
	if (out_ring) {
		struct xskdbg_rec *r = rec_new(R_KRX, 0);

		if (r) {
			rec_sock(r, &id);
			r->addr = addr;
			r->len = len;
			r->slot = st.cached_prod;
			r->pool = id.pool;
			r->prod = st.prod;
			r->fcons = fill_cons(id.pool);
			r->has |= H_A | H_LEN | H_SLOT | H_POOL | H_PROD | H_FCONS;
			rec_send(r);
		}
	} else {
		bpf_printk("xskdbg:1 krx xs=%llx sk=%llx:%x:%x a=%llx len=%x slot=%x kpool=%llx prod=%x fcons=%x",
			   id.xs, id.cookie, id.ifindex, id.queue, addr, len, st.cached_prod, id.pool,
			   st.prod, fill_cons(id.pool));
	}
	emit_stack(ctx, "krx", id.xs);
	s = bpf_map_lookup_elem(&stash, &zero);
	if (s) {
		s->xs = id.xs;
		s->slot = st.cached_prod;
	}
}

/* Return of __xsk_rcv_zc: on success the slot's addr/len are written. */
static __always_inline void on_rcv_exit(int ret)
{
	__u32 zero = 0;
	struct rcv_stash *s = bpf_map_lookup_elem(&stash, &zero);

	if (!s || !s->xs)
		return;
	if (out_ring) {
		/* One reservation per branch: 6.1's verifier loses the reference
		 * of a record chosen by a conditional expression. */
		struct xskdbg_rec *r;

		if (ret == 0) {
			r = rec_new(R_KRXDONE, 0);
			if (r) {
				r->xs = s->xs;
				r->slot = s->slot;
				r->has = H_XS | H_SLOT;
				rec_send(r);
			}
		} else {
			r = rec_new(R_KXDPERR, K_WHY_RCV);
			if (r) {
				r->xs = s->xs;
				r->slot = s->slot;
				r->n = -ret;
				r->has = H_XS | H_SLOT | H_ERRNO;
				rec_send(r);
			}
		}
	} else if (ret == 0) {
		bpf_printk("xskdbg:1 krxdone xs=%llx slot=%x", s->xs, s->slot);
	} else {
		bpf_printk("xskdbg:1 kxdperr why=rcv xs=%llx slot=%x errno=%x", s->xs, s->slot, -ret);
	}
	s->xs = 0;
}

/* sock_def_readable(sk) is the last step of xsk_flush(): the producer was
 * stored (smp_store_release) just before. xsk_flush itself is inlined into
 * __xsk_map_flush and xsk_generic_rcv, so this is where it can be seen. */
static __always_inline void on_readable(void *ctx, struct sock *sk)
{
	struct xdp_sock *xs = (struct xdp_sock *)sk;
	struct rx_state st;
	struct xsk_id id;

	if (BPF_CORE_READ(sk, __sk_common.skc_family) != AF_XDP_FAMILY)
		return;
	xsk_id_read(xs, &id);
	if (!xsk_pass(xs, &id))
		return;
	if (rx_state_read(xs, &st))
		return;
	emit_kflush(&id, &st, K_AT_FLUSH, "flush");
	emit_stack(ctx, "kflush", id.xs);
}

static __always_inline bool pool_pass(__u64 pool)
{
	struct xskdbg_filter *f = filter_get();
	struct net_device *dev;
	__u64 cookie;
	__u32 ifindex;

	if (!f || (!f->netns_cookie && !f->ifindex))
		return true;
	dev = BPF_CORE_READ((struct xsk_buff_pool *)pool, netdev);
	ifindex = BPF_CORE_READ(dev, ifindex);
	cookie = BPF_CORE_READ(dev, nd_net.net, net_cookie);
	return dev_pass(cookie, ifindex);
}

/* xp_raw_get_data(pool, addr): a TX descriptor resolved to its data. */
static __always_inline void on_raw_get_data(__u64 pool, __u64 addr)
{
	if (!pool_pass(pool))
		return;
	if (out_ring) {
		struct xskdbg_rec *r = rec_new(R_KTX, K_AT_RAW);

		if (r) {
			r->pool = pool;
			r->addr = addr;
			r->has = H_POOL | H_A;
			rec_send(r);
		}
		return;
	}
	bpf_printk("xskdbg:1 ktx kpool=%llx a=%llx at=raw", pool, addr);
}

static __always_inline void on_peek_entry(__u64 desc)
{
	__u32 zero = 0;
	__u64 *p = bpf_map_lookup_elem(&peek_stash, &zero);

	if (p)
		*p = desc;
}

/* xsk_tx_peek_desc(pool, desc) returned true: desc holds what left TX. */
static __always_inline void on_peek_exit(__u64 pool, bool ok)
{
	__u32 zero = 0;
	__u64 *p = bpf_map_lookup_elem(&peek_stash, &zero);
	struct xdp_desc d;

	if (!p || !*p || !ok)
		return;
	if (pool_pass(pool)) {
		bpf_core_read(&d, sizeof(d), (struct xdp_desc *)*p);
		if (out_ring) {
			struct xskdbg_rec *r = rec_new(R_KTX, K_AT_PEEK);

			if (r) {
				r->pool = pool;
				r->addr = d.addr;
				r->len = d.len;
				r->has = H_POOL | H_A | H_LEN;
				rec_send(r);
			}
		} else {
			bpf_printk("xskdbg:1 ktx kpool=%llx a=%llx len=%x at=peek", pool, d.addr,
				   d.len);
		}
	}
	*p = 0;
}

static __always_inline void on_tx_completed(__u64 pool, __u32 n)
{
	if (!pool_pass(pool))
		return;
	if (out_ring) {
		struct xskdbg_rec *r = rec_new(R_KCOMP, 0);

		if (r) {
			r->pool = pool;
			r->n = n;
			r->has = H_POOL;
			rec_send(r);
		}
		return;
	}
	bpf_printk("xskdbg:1 kcomp kpool=%llx n=%x", pool, n);
}

/* Copy-mode completion: the skb destructor puts the frame on COMPLETION. */
static __always_inline void on_destruct_skb(struct sk_buff *skb)
{
	struct xdp_sock *xs = (struct xdp_sock *)BPF_CORE_READ(skb, sk);
	unsigned char *head;
	__u32 end;
	__u64 arg;
	struct xsk_id id;

	if (!xs)
		return;
	xsk_id_read(xs, &id);
	if (!xsk_pass(xs, &id))
		return;
	if (out_ring) {
		struct xskdbg_rec *r = rec_new(R_KCOMP, 0);

		if (!r)
			return;
		rec_sock(r, &id);
		r->pool = id.pool;
		r->has |= H_POOL;
		head = BPF_CORE_READ(skb, head);
		end = BPF_CORE_READ(skb, end);
		arg = (__u64)BPF_CORE_READ((struct skb_shared_info *)(head + end), destructor_arg);
		if (destructor_arg_is_addr) {
			r->n = 1;
			r->addr = arg;
			r->has |= H_A;
		} else {
			/* The descriptor count, as below. */
			r->n = (arg == 0 || arg > 64) ? 1 : (__u32)arg;
		}
		rec_send(r);
		return;
	}
	if (destructor_arg_is_addr) {
		head = BPF_CORE_READ(skb, head);
		end = BPF_CORE_READ(skb, end);
		arg = (__u64)BPF_CORE_READ((struct skb_shared_info *)(head + end), destructor_arg);
		bpf_printk("xskdbg:1 kcomp xs=%llx sk=%llx:%x:%x kpool=%llx n=1 a=%llx", id.xs,
			   id.cookie, id.ifindex, id.queue, id.pool, arg);
	} else {
		/* 6.6+: destructor_arg counts the descriptors of a multi-buffer
		 * skb (xsk_get_num_desc), all completed here at once. Kernels with
		 * 30f241fcf52a keep a pointer there instead: a value that cannot
		 * be a count (more than MAX_SKB_FRAGS + 1 descriptors) means one. */
		head = BPF_CORE_READ(skb, head);
		end = BPF_CORE_READ(skb, end);
		arg = (__u64)BPF_CORE_READ((struct skb_shared_info *)(head + end), destructor_arg);
		if (arg == 0 || arg > 64)
			arg = 1;
		bpf_printk("xskdbg:1 kcomp xs=%llx sk=%llx:%x:%x kpool=%llx n=%x", id.xs, id.cookie,
			   id.ifindex, id.queue, id.pool, (__u32)arg);
	}
}

#endif /* XSKDBG_KFUNC_H */
