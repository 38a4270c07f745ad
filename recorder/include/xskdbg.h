/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * xskdbg.h - the xskdbg recorder for C (libxdp) AF_XDP applications.
 *
 * Link with -lxskdbg_recorder (`pkg-config --cflags --libs xskdbg-recorder`
 * after recorder/install.sh; or libxskdbg_recorder.a with -lpthread -ldl -lm).
 * Call the checks next to each ring operation, one batch at a time; every
 * batch becomes one line of docs/TRACE-FORMAT.md in the sink, and the first
 * violation freezes the ftrace buffer (tracing_on = 0).
 *
 * THE ORDER OF CALLS. Record each batch before any other ring operation on
 * its frames:
 *   FILL  reserve, write the addresses, xskdbg_fill_ring, then submit;
 *   RX    peek, xskdbg_rx_ring, then use the frames (FILL, TX, free list)
 *         and release;
 *   TX    reserve, write the descriptors, xskdbg_tx_ring, then submit;
 *   COMP  peek, xskdbg_comp_ring, then reuse the frames and release.
 * Recording a batch after another ring operation on the same frames (an RX
 * batch recorded after those frames were already put on FILL) makes the
 * recorder see the moves in the wrong order and blame the wrong one. If you
 * cancel part of a peek, record only the part you keep.
 *
 * Handles are opaque; every function accepts NULL handles (and then does
 * nothing). Setup functions return 0, or -1 with the reason in
 * xskdbg_last_error(). Built without the `enabled` feature, every check is a
 * no-op (xskdbg_enabled() returns 0).
 *
 * Where lines go (XSKDBG_SINK_TRACE_MARKER): the instance in the config wins,
 * else $XSKDBG_INSTANCE (set by `xskdbg record` for the command it runs),
 * else the top-level buffer. tracefs is looked for at $XSKDBG_TRACEFS, the
 * usual places and /proc/self/mounts, and mounted (as root) where
 * `ip netns exec` hid it. Both are said on stderr.
 *
 * ABI: struct xskdbg_config only grows at its end, and a zero field always
 * means the default; the shared library's number (libxskdbg_recorder.so.N)
 * changes when the struct does, so a program built against an older header
 * fails to load instead of passing a shorter struct. Rebuild it.
 *
 * Hand-written; tests/capi.rs checks that every function declared here is
 * exported by the library (the static inline wrappers excepted), and every
 * exported one is declared here.
 */
#ifndef XSKDBG_H
#define XSKDBG_H

#include <stddef.h>
#include <stdint.h>
#include <linux/if_xdp.h> /* struct xdp_desc, XDP_PKT_CONTD */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xskdbg_recorder xskdbg_recorder;
typedef struct xskdbg_umem xskdbg_umem;
typedef struct xskdbg_pool xskdbg_pool;
typedef struct xskdbg_sock xskdbg_sock;

enum xskdbg_sink {
	XSKDBG_SINK_NULL = 0,         /* check only */
	XSKDBG_SINK_MEMORY = 1,       /* ring of the last N lines, see xskdbg_dump */
	XSKDBG_SINK_TRACE_MARKER = 2, /* trace_marker of the top-level buffer or an instance */
};

enum xskdbg_policy {
	XSKDBG_POLICY_ABORT = 0,    /* print the violation, freeze at once (no window), abort() */
	XSKDBG_POLICY_LOG = 1,      /* print the violation, continue */
	XSKDBG_POLICY_CALLBACK = 2, /* call cfg.callback, continue */
};

/* A violation; pointers are valid only during the callback. Only the first 5
 * violations of each kind are reported (line, callback, log); later ones are
 * counted, and xskdbg_recorder_free prints the counts. */
struct xskdbg_violation {
	const char *kind; /* "invalid_transition", "fifo_order", "not_recorded", ... */
	uint64_t addr;    /* raw descriptor address */
	uint64_t frame;   /* chunk base (aligned) or low 48 bits (unaligned) */
	const char *from; /* "fill", "rx", "tx", "comp", "held", "free", "unknown" */
	const char *to;
	uint64_t expected; /* FIFO head expected instead, if has_expected */
	int has_expected;
	const char *line; /* the violation line as written */
};

typedef void (*xskdbg_violation_cb)(const struct xskdbg_violation *v, void *user);

struct xskdbg_config {
	int sink;               /* enum xskdbg_sink */
	const char *instance;   /* trace_marker: instance name; NULL = $XSKDBG_INSTANCE, else top level */
	uint32_t memory_events; /* memory sink: lines kept, 0 = 4096 */
	int policy;             /* enum xskdbg_policy */
	xskdbg_violation_cb callback;
	void *user;
	int no_freeze; /* non-zero: keep tracing after the first violation */
	int rearm;     /* non-zero: turn the buffer back on if an earlier run left it frozen */
	/* The post-trigger window. After the first violation the recorder goes
	 * on writing for post_trigger_lines more lines or post_trigger_us
	 * microseconds, whichever ends first, then freezes: the decisive sign
	 * often comes a batch after an ambiguous first one. Used when
	 * post_trigger_set is non-zero; zero (a zeroed config) means the
	 * default, XSKDBG_POST_TRIGGER_LINES lines or XSKDBG_POST_TRIGGER_US us.
	 * 0 lines or 0 us freezes at the violation. $XSKDBG_POST_TRIGGER
	 * ("LINES:MICROS", what `xskdbg record --post-trigger` sets) overrides
	 * all three. The violation line says the window (window=LINES:MICROS,
	 * hex). No effect with no_freeze, nor with XSKDBG_POLICY_ABORT (the
	 * program ends at the violation, so the buffer freezes there). */
	int post_trigger_set;
	uint32_t post_trigger_lines;
	uint64_t post_trigger_us;
};

/* The default post-trigger window (cfg.post_trigger_set == 0). */
#define XSKDBG_POST_TRIGGER_LINES 8
#define XSKDBG_POST_TRIGGER_US 2000

/* What a socket key (`sk=`) is made of. */
struct xskdbg_key {
	uint64_t netns_cookie;
	uint32_t ifindex;
	uint32_t queue_id;
};

/* 1 if the checks are compiled in, 0 if every call is a no-op. */
int xskdbg_enabled(void);
/* Reason of the calling thread's last failed setup call ("" if none). */
const char *xskdbg_last_error(void);

int xskdbg_recorder_new(const struct xskdbg_config *cfg, xskdbg_recorder **out);
/* Frees the recorder and prints the counts of violations only counted. */
void xskdbg_recorder_free(xskdbg_recorder *r);

/* The key of AF_XDP socket fd (xsk_socket__fd): its network namespace cookie
 * (SO_NETNS_COOKIE, Linux 5.14+) with ifindex and queue_id. Pass its parts
 * to xskdbg_pool_new and xskdbg_sock_new. */
int xskdbg_sock_key(int fd, uint32_t ifindex, uint32_t queue_id, struct xskdbg_key *out);

/* unaligned: XDP_UMEM_UNALIGNED_CHUNK_FLAG; poison: value written into consumed RX slots. */
int xskdbg_umem_new(const xskdbg_recorder *r, uint64_t size, uint32_t chunk_size, int unaligned,
		    uint32_t headroom, int has_poison, uint64_t poison, xskdbg_umem **out);
void xskdbg_umem_free(xskdbg_umem *u);

/* The FILL + COMPLETION pair bound to (netns cookie, ifindex, queue). */
int xskdbg_pool_new(const xskdbg_umem *u, uint64_t netns_cookie, uint32_t ifindex,
		    uint32_t queue_id, uint32_t fill_size, uint32_t comp_size, xskdbg_pool **out);
void xskdbg_pool_free(xskdbg_pool *p);

/* A socket (RX + TX); fd (or -1) gives XDP_STATISTICS; label may be NULL.
 * rx_size is the RX ring's entry count: it tells a masked index apart. */
int xskdbg_sock_new(const xskdbg_pool *p, uint64_t netns_cookie, uint32_t ifindex,
		    uint32_t queue_id, int fd, const char *label, uint32_t rx_size,
		    uint32_t tx_size, xskdbg_sock **out);
void xskdbg_sock_free(xskdbg_sock *s);

/*
 * Ring operations through the ring itself (recommended). `ring` is the
 * mapped ring's entry array (libxdp: ring->ring), `mask` its size minus one
 * (ring->mask), `idx` the free-running index libxdp's reserve/peek handed
 * out (never idx & mask), n the batch. The wrap is handled here. Each call
 * records its batch before any other ring operation on its frames (see THE
 * ORDER OF CALLS above). An index that does not continue the previous batch
 * is reported as `ring_index`.
 *
 *   xskdbg_fill_masked: after writing FILL entries idx..idx+n-1, before submit.
 *   xskdbg_comp_masked: after peeking COMPLETION, before reusing the frames.
 *   xskdbg_rx_masked:   after peeking RX, before anything else on the frames;
 *                       prod is the producer index you saw (libxdp: cached_prod
 *                       after the peek): it proves you were entitled to read.
 *   xskdbg_tx_masked:   after writing TX entries, before submit.
 */
void xskdbg_fill_masked(const xskdbg_pool *p, const void *ring, uint32_t mask, uint32_t idx,
			uint32_t n);
void xskdbg_comp_masked(const xskdbg_pool *p, const void *ring, uint32_t mask, uint32_t idx,
			uint32_t n);
void xskdbg_rx_masked(const xskdbg_sock *s, const void *ring, uint32_t mask, uint32_t idx,
		      uint32_t n, uint32_t prod);
void xskdbg_tx_masked(const xskdbg_sock *s, const void *ring, uint32_t mask, uint32_t idx,
		      uint32_t n);

/*
 * Ring operations from a COPY: addrs/descs must be a contiguous array of the
 * n entries, copied out of the ring one by one with their masked index. Do
 * NOT pass a pointer into the ring (xsk_ring_cons__rx_desc(&rx, idx),
 * xsk_ring_prod__fill_addr(...)): a batch that wraps continues at slot 0 of
 * the ring, not after its end, and reading past the end records garbage
 * (`d=...,0:0,0:0`) that looks like a kernel bug. Same order rule as above.
 *   xskdbg_fill:    the app put n frames on FILL, in this order.
 *   xskdbg_comp:    the app read n frames from COMPLETION, in this order.
 *   xskdbg_rx:      the app read n descriptors from RX, the first at consumer
 *                   index idx (free-running); xskdbg_rx_prod adds the producer.
 *   xskdbg_tx:      the app put n descriptors on TX at producer index idx.
 */
void xskdbg_fill(const xskdbg_pool *p, const uint64_t *addrs, uint32_t n);
void xskdbg_comp(const xskdbg_pool *p, const uint64_t *addrs, uint32_t n);
void xskdbg_rx(const xskdbg_sock *s, uint32_t idx, const struct xdp_desc *descs, uint32_t n);
void xskdbg_rx_prod(const xskdbg_sock *s, uint32_t idx, uint32_t prod,
		    const struct xdp_desc *descs, uint32_t n);
void xskdbg_tx(const xskdbg_sock *s, uint32_t idx, const struct xdp_desc *descs, uint32_t n);
/* The app's own free list: take frames from it / return frames to it. */
void xskdbg_hold(const xskdbg_umem *u, const uint64_t *addrs, uint32_t n);
void xskdbg_release(const xskdbg_umem *u, const uint64_t *addrs, uint32_t n);

/*
 * Address arrays without casts. libxdp hands out `__u64 *` (unsigned long
 * long); <stdint.h>'s uint64_t is unsigned long on x86-64 and arm64: the same
 * 8 bytes, but distinct types, so passing one for the other is a warning in
 * GCC 12 and an error in GCC 14 (-Wincompatible-pointer-types). The calls
 * taking address arrays are therefore macros that accept a pointer to any
 * 64-bit integer type and refuse anything else at compile time: the array
 * size below goes negative unless *(addrs) is 8 bytes, and `| 0ull` only
 * compiles for integers (no cast hides a wrong pointer, no _Generic list can
 * miss a platform's spelling of __u64). `addrs` is evaluated once. Call the
 * function itself with `(xskdbg_fill)(p, a, n)`.
 */
#ifndef __cplusplus
#define XSKDBG_ADDRS(a)                                                              \
	((const uint64_t *)(const void *)(a) +                                       \
	 0 * sizeof(char[sizeof(*(a)) == sizeof(uint64_t) ? 1 : -1]) +               \
	 0 * sizeof((*(a)) | 0ull))
#define xskdbg_fill(p, addrs, n) (xskdbg_fill)((p), XSKDBG_ADDRS(addrs), (n))
#define xskdbg_comp(p, addrs, n) (xskdbg_comp)((p), XSKDBG_ADDRS(addrs), (n))
#define xskdbg_hold(u, addrs, n) (xskdbg_hold)((u), XSKDBG_ADDRS(addrs), (n))
#define xskdbg_release(u, addrs, n) (xskdbg_release)((u), XSKDBG_ADDRS(addrs), (n))
#endif

uint64_t xskdbg_violations(const xskdbg_recorder *r);
uint64_t xskdbg_recycled(const xskdbg_recorder *r);
/* 1 when the buffer is frozen: by a violation, or already at start (an
 * earlier run's violation left tracing_on at 0; then nothing this run checks
 * is written, see cfg.rearm). */
int xskdbg_is_frozen(const xskdbg_recorder *r);
/* Ends the recording: call it after the last line that belongs in the trace
 * and before turning the buffer off to read it. Later ring operations are
 * checked but not written, and no "stopped recording (tracing_on is 0)"
 * warning is printed when sockets close afterwards. */
void xskdbg_end(const xskdbg_recorder *r);
/* TX descriptors the kernel refuses to send (an address past the UMEM, a
 * packet crossing its chunk, unknown option bits): left out of the frames'
 * histories, the frame stays the application's; the kernel counts them in
 * tx_invalid_descs. */
uint64_t xskdbg_tx_rejected(const xskdbg_recorder *r);
/* Writes to the sink that failed for another reason than a frozen buffer. */
uint64_t xskdbg_sink_errors(const xskdbg_recorder *r);
/* Write an `audit` line per UMEM: the frames the application holds (taken
 * from RX or COMPLETION, or from its free list, and not returned), oldest
 * first, and since when, so the analyzer judges a leak even when the buffer
 * wrapped (frame_leak/audit). Also written when a UMEM is freed. Call it
 * periodically and before freezing and reading the trace; returns how many
 * frames the application holds. */
uint64_t xskdbg_audit(const xskdbg_recorder *r);
/* Memory sink as ftrace text; copies at most len-1 bytes + NUL, returns the full length. */
size_t xskdbg_dump(const xskdbg_recorder *r, char *buf, size_t len);

/* Write poison into RX slots first..first+n-1 of a ring of mask+1 entries
 * (after reading and recording them, before xsk_ring_cons__release). */
void xskdbg_poison_rx(struct xdp_desc *ring, uint32_t mask, uint32_t first, uint32_t n,
		      uint64_t poison);
/* Before the first FILL of the socket's pool: write the UMEM's poison value
 * into every RX slot (ring: the descriptor array, mask+1 entries) and say so
 * in the trace, so an all-zero descriptor read later is known to come from
 * outside the ring (`read_outside_ring`). 0, or -1 with the reason. */
int xskdbg_rx_prepoison_masked(const xskdbg_sock *s, void *ring, uint32_t mask);

/*
 * The same calls on libxdp's ring structs, for programs that include
 * <xdp/xsk.h> (or libbpf's older <bpf/xsk.h>) BEFORE this header. Programs
 * with their own ring structs call the _masked functions above instead
 * (define XSKDBG_NO_XSK_RINGS to leave these out).
 */
#if (defined(__LIBBPF_XSK_H) || defined(__LIBXDP_XSK_H) || defined(__XSK_H)) &&               \
	!defined(XSKDBG_NO_XSK_RINGS)
#define XSKDBG_HAVE_XSK_RINGS 1

/* After writing FILL entries idx..idx+n-1 (xsk_ring_prod__reserve), before
 * xsk_ring_prod__submit. */
static inline void xskdbg_fill_ring(const xskdbg_pool *p, const struct xsk_ring_prod *fq,
				    uint32_t idx, uint32_t n)
{
	xskdbg_fill_masked(p, fq->ring, fq->mask, idx, n);
}

/* After xsk_ring_cons__peek on COMPLETION, before reusing the frames. */
static inline void xskdbg_comp_ring(const xskdbg_pool *p, const struct xsk_ring_cons *cq,
				    uint32_t idx, uint32_t n)
{
	xskdbg_comp_masked(p, cq->ring, cq->mask, idx, n);
}

/* After xsk_ring_cons__peek on RX, before any other ring operation on the
 * frames; passes the producer the peek saw (rx->cached_prod). */
static inline void xskdbg_rx_ring(const xskdbg_sock *s, const struct xsk_ring_cons *rx,
				  uint32_t idx, uint32_t n)
{
	xskdbg_rx_masked(s, rx->ring, rx->mask, idx, n, rx->cached_prod);
}

/* After writing TX entries idx..idx+n-1, before xsk_ring_prod__submit. */
static inline void xskdbg_tx_ring(const xskdbg_sock *s, const struct xsk_ring_prod *tx,
				  uint32_t idx, uint32_t n)
{
	xskdbg_tx_masked(s, tx->ring, tx->mask, idx, n);
}

/* After recording the RX batch, before xsk_ring_cons__release. */
static inline void xskdbg_poison_rx_ring(const struct xsk_ring_cons *rx, uint32_t idx, uint32_t n,
					 uint64_t poison)
{
	xskdbg_poison_rx((struct xdp_desc *)rx->ring, rx->mask, idx, n, poison);
}

/* Right after xsk_socket__create, before the first FILL. */
static inline int xskdbg_rx_prepoison_ring(const xskdbg_sock *s, const struct xsk_ring_cons *rx)
{
	return xskdbg_rx_prepoison_masked(s, rx->ring, rx->mask);
}
#endif

#ifdef __cplusplus
}
#endif

#endif /* XSKDBG_H */
