/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by every xskdbg probe object: the filter map, socket identity
 * (netns cookie, ifindex, queue), RX ring reads and the line prefixes of
 * docs/TRACE-FORMAT.md. Numbers print in lower-case hex without 0x.
 */
#ifndef XSKDBG_H
#define XSKDBG_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define XSKDBG_F_QUEUE 1u  /* filter.queue is set */
#define XSKDBG_F_SOCKS 2u  /* only sockets whose inode is in `socks` */

/* Mirrors `probes/src/lib.rs` `FilterCfg`; 0 means "any". */
struct xskdbg_filter {
	__u64 netns_cookie;
	__u32 ifindex;
	__u32 queue;
	__u32 flags;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xskdbg_filter);
} filter SEC(".maps");

/* Socket inodes of the process given with --pid (filled by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} socks SEC(".maps");

/* --stacks: kernel stack ids next to receive and flush lines (set by user
 * space before load; the verifier drops the code when false). */
const volatile bool want_stacks = false;

/*
 * Output. With `out_ring` (set by user space before load) every event is a
 * binary record in its CPU's ring (below), stamped with
 * bpf_ktime_get_ns(), and a drainer thread pinned to that CPU formats it
 * into the instance's trace_marker (probes/src/drain.rs): no formatting and
 * no ftrace write at event time. Without it, bpf_trace_printk lines as
 * before. docs/PROBES.md "Output" says what moved.
 */
const volatile bool out_ring = false;

/* Record kinds; mirrored by `probes/src/drain.rs` `Op`. */
#define R_KRX 1
#define R_KRXDONE 2
#define R_KFLUSH 3
#define R_KPOLL 4
#define R_KXDPERR 5
#define R_KTX 6
#define R_KCOMP 7
#define R_KSTACK 8
/* A `kpoll` and the `kflush at=poll` of the first socket the poll touched,
 * in one record (one stamp): most polls touch one socket, and a record
 * costs a reservation, a clock read and a commit. Fields: addr = napi,
 * len = the device's ifindex, n = work, aux = budget; the socket's as in
 * a kflush. */
#define R_KPOLLFLUSH 9

/* `kind` of a record: krx mode, kflush/ktx/kstack at, kxdperr why. */
#define K_DRV 1
#define K_SKB 2
#define K_ZC 3
#define K_AT_FLUSH 1
#define K_AT_POLL 2
#define K_AT_RAW 1
#define K_AT_PEEK 2
#define K_AT_KRX 1
#define K_AT_KFLUSH 2
#define K_WHY_REDIRECT 1
#define K_WHY_EXCEPTION 2
#define K_WHY_RCV 3

/* `has`: which optional fields a record carries. */
#define H_SK (1u << 0)    /* cookie, ifindex, queue (sk=) */
#define H_POOL (1u << 1)  /* kpool= */
#define H_PROD (1u << 2)
#define H_CPROD (1u << 3)
#define H_FCONS (1u << 4)
#define H_LEN (1u << 5)
#define H_OPT (1u << 6)
#define H_A (1u << 7)
#define H_SLOT (1u << 8)
#define H_XS (1u << 9)
#define H_ERRNO (1u << 10)

/* One kernel event; mirrored by `probes/src/drain.rs` `Rec` (88 bytes). */
struct xskdbg_rec {
	__u64 ts;     /* bpf_ktime_get_ns() at the event */
	__u64 xs;     /* kpoll: napi */
	__u64 cookie; /* kxdperr why=exception: the device's netns cookie */
	__u64 pool;
	__u64 addr;   /* a= */
	__u32 ifindex; /* kpoll, kxdperr exception: dev= */
	__u32 queue;
	__u32 len;
	__u32 opt;
	__u32 slot;
	__u32 prod;
	__u32 cprod;
	__u32 fcons;
	__u32 n;      /* kpoll work, kcomp n, kxdperr errno, kstack id */
	__u32 aux;    /* kpoll budget, kxdperr act */
	__u32 cpu;
	__u16 has;
	__u8 op;
	__u8 kind;
};

/*
 * The rings: per CPU, an array of XSKDBG_SLOTS records that this CPU's
 * programs fill in order and its drainer reads in order (probes/src/drain.rs
 * maps both arrays). Not BPF ring buffers: a record there costs a helper
 * call to reserve (a spinlock with interrupts off) and one to commit, about
 * 45 ns a record on the host, where this costs a few loads and stores.
 * One writer per CPU at a time: the programs run with migration off and do
 * not nest on our probe points (softirq or task context, never hard
 * interrupts); should one still interrupt another between rec_new and
 * rec_send, it finds `busy` set and its record is counted lost instead of
 * corrupting one.
 */
#define XSKDBG_SLOTS (1u << 15) /* must equal SLOTS in probes/src/drain.rs */

/* One CPU's positions (`ring_pos[cpu]`, 128 bytes; POS_BYTES, HEAD_AT,
 * LOST_AT and TAIL_AT in probes/src/drain.rs): the producer's cache line,
 * then the consumer's. */
struct xskdbg_pos {
	__u64 head; /* records committed (this CPU's programs) */
	__u64 lost; /* records refused: the ring was full, or in use */
	__u32 busy; /* a program of this CPU is filling a record */
	__u32 pad0;
	__u64 pad1[5];
	__u64 tail; /* records read (this CPU's drainer) */
	__u64 pad2[7];
};

/* max_entries: possible CPUs (ring_pos) and possible CPUs * XSKDBG_SLOTS
 * (ring_recs), set by user space, which creates both once and gives them to
 * every object it loads. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xskdbg_pos);
} ring_pos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xskdbg_rec);
} ring_recs SEC(".maps");

/* A zeroed record of kind `op` in this CPU's ring, stamped now; NULL (and
 * counted lost) when the ring is full or in use. Every record it returns
 * goes to rec_send. */
static __always_inline struct xskdbg_rec *rec_new(__u8 op, __u8 kind)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct xskdbg_pos *p = bpf_map_lookup_elem(&ring_pos, &cpu);
	struct xskdbg_rec *r;
	__u64 head;
	__u32 idx;

	if (!p)
		return NULL;
	if (p->busy) {
		p->lost += 1;
		return NULL;
	}
	p->busy = 1;
	/* Set before the head is read: a program interrupting us from here on
	 * drops its record; one that ran before is committed already. */
	asm volatile("" ::: "memory");
	head = p->head;
	if (head - *(volatile __u64 *)&p->tail >= XSKDBG_SLOTS)
		goto lost;
	idx = cpu * XSKDBG_SLOTS + (__u32)(head & (XSKDBG_SLOTS - 1));
	r = bpf_map_lookup_elem(&ring_recs, &idx);
	if (!r)
		goto lost;
	__builtin_memset(r, 0, sizeof(*r));
	r->ts = bpf_ktime_get_ns();
	r->cpu = cpu;
	r->op = op;
	r->kind = kind;
	return r;
lost:
	p->lost += 1;
	p->busy = 0;
	return NULL;
}

/* Commits a record of rec_new: the head moves past it (only this CPU's
 * programs write it, one at a time). The drainer polls: no wakeup. Its
 * drainer reads the ring from this CPU (pinned), which sees this CPU's
 * stores in program order on any architecture; from another CPU (a drainer
 * that could not be pinned) the order holds on x86 (TSO), not on arm64.
 * A plain store, not an atomic: kernels before 5.12 refuse the fetch form
 * anywhere in a program, and a locked add buys nothing on x86. */
static __always_inline void rec_send(struct xskdbg_rec *r)
{
	__u32 cpu = r->cpu;
	struct xskdbg_pos *p = bpf_map_lookup_elem(&ring_pos, &cpu);

	if (!p)
		return;
	/* The record's stores before the head's, in the program as written. */
	asm volatile("" ::: "memory");
	*(volatile __u64 *)&p->head = p->head + 1;
	p->busy = 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

/* Prints `kstack at=<at> xs= id=`: the id keys the `stacks` map, which user
 * space symbolizes into `kstackdef` lines when the recording ends. */
static __always_inline void emit_stack(void *ctx, const char *at, __u64 xs)
{
	long id;

	if (!want_stacks)
		return;
	id = bpf_get_stackid(ctx, &stacks, 0);
	if (id < 0)
		return;
	if (out_ring) {
		struct xskdbg_rec *r = rec_new(R_KSTACK, at[1] == 'r' ? K_AT_KRX : K_AT_KFLUSH);

		if (!r)
			return;
		r->xs = xs;
		r->n = (__u32)id;
		r->has = H_XS;
		rec_send(r);
		return;
	}
	bpf_printk("xskdbg:1 kstack at=%s xs=%llx id=%x", at, xs, (__u32)id);
}

/*
 * Reading kernel memory. With `direct_reads` (set by user space before load
 * where bpf_rdonly_cast exists and the programs see typed pointers: the
 * tracepoint object loaded as tp_btf) a field is a plain load, which the
 * verifier turns into one PROBE_MEM instruction (a fault reads 0);
 * otherwise bpf_probe_read_kernel(), a helper call per field (kprobes,
 * raw_tp on kernels before 6.2). A helper call costs about 30 ns on the
 * 6.18 host (its return goes through the SRSO "safe RET" thunk), a load
 * about 1 ns, and a krx read 16 fields (docs/PERF.md). The flag is
 * read-only data, so the verifier drops the branch not taken: the raw side
 * never sees a plain load, the direct side never calls the helper, and a
 * kernel without the kfunc never meets the (poisoned) call.
 *
 * KCAST gives a pointer that arrived as a number (a `void *` tracepoint
 * argument, a pointer kept in a map) its kernel type; KREAD reads one
 * field (or a path of embedded members, `nd_net.net`) of a pointer that
 * came from KCAST, from a typed program argument or from another KREAD
 * (kept in a variable: BPF_CORE_READ does not nest).
 */
const volatile bool direct_reads = false;

#define KCAST(p, type) (direct_reads ? bpf_core_cast((void *)(p), type) : (type *)(p))
#define KREAD(p, field) (direct_reads ? (p)->field : BPF_CORE_READ((p), field))

/* Identity of one AF_XDP socket: the `sk=` key of TRACE-FORMAT.md. */
struct xsk_id {
	__u64 xs;
	__u64 cookie;
	__u64 pool;
	__u32 ifindex;
	__u32 queue;
};

static __always_inline void xsk_id_read(struct xdp_sock *xs, struct xsk_id *id)
{
	struct net_device *dev = KREAD(xs, dev);
	struct net *net = KREAD(dev, nd_net.net);

	id->xs = (__u64)xs;
	id->ifindex = KREAD(dev, ifindex);
	id->cookie = KREAD(net, net_cookie);
	id->queue = KREAD(xs, queue_id);
	id->pool = (__u64)KREAD(xs, pool);
}

static __always_inline __u64 sock_inode(struct xdp_sock *xs)
{
	struct socket *sock = KREAD(xs, sk.sk_socket);
	struct socket_alloc *sa;

	if (!sock)
		return 0;
	sa = KCAST(container_of(sock, struct socket_alloc, socket), struct socket_alloc);
	return KREAD(sa, vfs_inode.i_ino);
}

static __always_inline struct xskdbg_filter *filter_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&filter, &zero);
}

/* Device-level filter (events that have no socket, e.g. xdp_exception). */
static __always_inline bool dev_pass(__u64 cookie, __u32 ifindex)
{
	struct xskdbg_filter *f = filter_get();

	if (!f)
		return true;
	if (f->netns_cookie && f->netns_cookie != cookie)
		return false;
	if (f->ifindex && f->ifindex != ifindex)
		return false;
	return true;
}

static __always_inline bool xsk_pass(struct xdp_sock *xs, const struct xsk_id *id)
{
	struct xskdbg_filter *f = filter_get();
	__u64 ino;

	if (!f)
		return true;
	if (f->netns_cookie && f->netns_cookie != id->cookie)
		return false;
	if (f->ifindex && f->ifindex != id->ifindex)
		return false;
	if ((f->flags & XSKDBG_F_QUEUE) && f->queue != id->queue)
		return false;
	if (f->flags & XSKDBG_F_SOCKS) {
		ino = sock_inode(xs);
		if (!bpf_map_lookup_elem(&socks, &ino))
			return false;
	}
	return true;
}

/* RX ring state of a socket, read at one instant. */
struct rx_state {
	__u32 cached_prod; /* kernel's private producer (reservations) */
	__u32 prod;        /* ring->producer: what user space can see */
	__u32 mask;
	__u32 pad;
	struct xdp_ring *ring;
	struct xsk_queue *rx;
};

static __always_inline int rx_state_read(struct xdp_sock *xs, struct rx_state *st)
{
	struct xsk_queue *rx = KREAD(xs, rx);
	struct xdp_ring *ring;

	if (!rx)
		return -1;
	ring = KREAD(rx, ring);
	st->rx = rx;
	st->cached_prod = KREAD(rx, cached_prod);
	st->mask = KREAD(rx, ring_mask);
	st->ring = ring;
	st->prod = KREAD(ring, producer);
	return 0;
}

/* The descriptor in RX slot `slot` (unmasked counter). */
static __always_inline void rx_desc_read(const struct rx_state *st, __u32 slot,
					 struct xdp_desc *d)
{
	struct xdp_rxtx_ring *rr = (struct xdp_rxtx_ring *)st->ring;
	__u32 idx = slot & st->mask;

	/* A typed pointer may move by a variable amount only within 2^29
	 * bytes: rings of up to 2^24 descriptors (256 MiB) are read
	 * directly, larger ones through the helper. */
	if (direct_reads && idx < (1u << 24)) {
		struct xdp_desc *p = bpf_core_cast(&rr->desc[idx], struct xdp_desc);

		d->addr = p->addr;
		d->len = p->len;
		d->options = p->options;
		return;
	}
	__builtin_memset(d, 0, sizeof(*d));
	bpf_core_read(d, sizeof(*d), &rr->desc[idx]);
}

/* Cached consumer of the pool's FILL ring: advances once per frame the
 * kernel takes from FILL (frames reused from the pool's free list do not). */
static __always_inline __u32 fill_cons(__u64 pool)
{
	struct xsk_buff_pool *p = KCAST(pool, struct xsk_buff_pool);
	struct xsk_queue *fq = KREAD(p, fq);

	return KREAD(fq, cached_cons);
}

/* Fills a record's socket identity (`xs=` and `sk=`). */
static __always_inline void rec_sock(struct xskdbg_rec *r, const struct xsk_id *id)
{
	r->xs = id->xs;
	r->cookie = id->cookie;
	r->ifindex = id->ifindex;
	r->queue = id->queue;
	r->has |= H_XS | H_SK;
}

/* `kflush xs= sk= prod= cprod= at=`: the producer as published now. */
static __always_inline void emit_kflush(const struct xsk_id *id, const struct rx_state *st,
					__u8 kind, const char *at)
{
	struct xskdbg_rec *r;

	if (!out_ring) {
		bpf_printk("xskdbg:1 kflush xs=%llx sk=%llx:%x:%x prod=%x cprod=%x at=%s",
			   id->xs, id->cookie, id->ifindex, id->queue, st->prod, st->cached_prod, at);
		return;
	}
	r = rec_new(R_KFLUSH, kind);
	if (!r)
		return;
	rec_sock(r, id);
	r->prod = st->prod;
	r->cprod = st->cached_prod;
	r->has |= H_PROD | H_CPROD;
	rec_send(r);
}

/* Per-CPU set of sockets that received since the last end of a NAPI poll:
 * the sockets whose producer the CPU's pending flush will publish. Each
 * keeps what its receive read that cannot change before the poll ends (its
 * identity, its RX queue and ring: a socket outlives the softirq that
 * redirected into it), so the flush reads only the two producers. */
#define TOUCHED_MAX 8
struct touched_sock {
	struct xsk_id id;
	__u64 rx;
	__u64 ring;
};

struct touched {
	struct touched_sock s[TOUCHED_MAX];
	__u32 n;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct touched);
} touched SEC(".maps");

static __always_inline void touched_add(const struct xsk_id *id, const struct rx_state *st)
{
	__u32 zero = 0;
	struct touched *t = bpf_map_lookup_elem(&touched, &zero);
	struct touched_sock *e;
	__u32 i, n;

	if (!t)
		return;
	n = t->n;
	for (i = 0; i < TOUCHED_MAX; i++) {
		if (i >= n)
			break;
		if (t->s[i].id.xs == id->xs)
			return;
	}
	if (n < TOUCHED_MAX) {
		e = &t->s[n & (TOUCHED_MAX - 1)];
		e->id = *id;
		e->rx = (__u64)st->rx;
		e->ring = (__u64)st->ring;
		t->n = n + 1;
	}
}

/* The end of a NAPI poll (`kpoll`) that touched sockets `t`: a `kflush
 * at=poll` for every touched socket (producer as published now), then the
 * set is emptied. With ring output the kpoll and the first kflush share one
 * record (R_KPOLLFLUSH). */
static __always_inline void poll_end(void *ctx, struct touched *t, __u64 napi, __u32 ifindex,
				     int work, int budget)
{
	struct touched_sock *e;
	struct xsk_queue *rx;
	struct xdp_ring *ring;
	struct rx_state st;
	__u32 i;

	if (!out_ring)
		bpf_printk("xskdbg:1 kpoll napi=%llx dev=%x work=%x budget=%x", napi, ifindex, work,
			   budget);
	for (i = 0; i < TOUCHED_MAX; i++) {
		if (i >= t->n)
			break;
		e = &t->s[i];
		rx = KCAST(e->rx, struct xsk_queue);
		ring = KCAST(e->ring, struct xdp_ring);
		st.cached_prod = KREAD(rx, cached_prod);
		st.prod = KREAD(ring, producer);
		if (out_ring && i == 0) {
			struct xskdbg_rec *r = rec_new(R_KPOLLFLUSH, K_AT_POLL);

			if (r) {
				rec_sock(r, &e->id);
				r->prod = st.prod;
				r->cprod = st.cached_prod;
				r->has |= H_PROD | H_CPROD;
				r->addr = napi;
				r->len = ifindex;
				r->n = work;
				r->aux = budget;
				rec_send(r);
			}
		} else {
			emit_kflush(&e->id, &st, K_AT_POLL, "poll");
		}
		emit_stack(ctx, "kflush", e->id.xs);
	}
	t->n = 0;
}

#endif /* XSKDBG_H */
