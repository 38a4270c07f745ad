/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * xskdbg.h - the xskdbg recorder for C (libxdp) AF_XDP applications.
 *
 * Link with libxskdbg_recorder.a (cargo build -p xskdbg-recorder) and
 * -lpthread -ldl -lm. Call the checks next to each ring operation, one batch
 * at a time; every batch becomes one line of docs/TRACE-FORMAT.md in the
 * sink, and the first violation freezes the ftrace buffer (tracing_on = 0).
 *
 * Handles are opaque; every function accepts NULL handles (and then does
 * nothing). Setup functions return 0, or -1 with the reason in
 * xskdbg_last_error(). Built without the `enabled` feature, every check is a
 * no-op (xskdbg_enabled() returns 0).
 *
 * Hand-written; tests/capi.rs checks that every function declared here is
 * exported by the library and every exported one is declared here.
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
	XSKDBG_POLICY_ABORT = 0,    /* print the violation, abort() */
	XSKDBG_POLICY_LOG = 1,      /* print the violation, continue */
	XSKDBG_POLICY_CALLBACK = 2, /* call cfg.callback, continue */
};

/* A violation; pointers are valid only during the callback. */
struct xskdbg_violation {
	const char *kind; /* "invalid_transition", "fifo_order", ... */
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
	const char *instance;   /* trace_marker: instance name, NULL = top-level buffer */
	uint32_t memory_events; /* memory sink: lines kept, 0 = 4096 */
	int policy;             /* enum xskdbg_policy */
	xskdbg_violation_cb callback;
	void *user;
	int no_freeze; /* non-zero: keep tracing after the first violation */
};

/* 1 if the checks are compiled in, 0 if every call is a no-op. */
int xskdbg_enabled(void);
/* Reason of the calling thread's last failed setup call ("" if none). */
const char *xskdbg_last_error(void);

int xskdbg_recorder_new(const struct xskdbg_config *cfg, xskdbg_recorder **out);
void xskdbg_recorder_free(xskdbg_recorder *r);

/* unaligned: XDP_UMEM_UNALIGNED_CHUNK_FLAG; poison: value written into consumed RX slots. */
int xskdbg_umem_new(const xskdbg_recorder *r, uint64_t size, uint32_t chunk_size, int unaligned,
		    uint32_t headroom, int has_poison, uint64_t poison, xskdbg_umem **out);
void xskdbg_umem_free(xskdbg_umem *u);

/* The FILL + COMPLETION pair bound to (netns cookie, ifindex, queue). */
int xskdbg_pool_new(const xskdbg_umem *u, uint64_t netns_cookie, uint32_t ifindex,
		    uint32_t queue_id, uint32_t fill_size, uint32_t comp_size, xskdbg_pool **out);
void xskdbg_pool_free(xskdbg_pool *p);

/* A socket (RX + TX); fd (or -1) gives XDP_STATISTICS; label may be NULL. */
int xskdbg_sock_new(const xskdbg_pool *p, uint64_t netns_cookie, uint32_t ifindex,
		    uint32_t queue_id, int fd, const char *label, uint32_t rx_size,
		    uint32_t tx_size, xskdbg_sock **out);
void xskdbg_sock_free(xskdbg_sock *s);

/* Ring operations: call once per batch, in ring order. */
void xskdbg_fill(const xskdbg_pool *p, const uint64_t *addrs, uint32_t n);
void xskdbg_comp(const xskdbg_pool *p, const uint64_t *addrs, uint32_t n);
void xskdbg_rx(const xskdbg_sock *s, uint32_t idx, const struct xdp_desc *descs, uint32_t n);
void xskdbg_tx(const xskdbg_sock *s, uint32_t idx, const struct xdp_desc *descs, uint32_t n);
/* The app's own free list: take frames from it / return frames to it. */
void xskdbg_hold(const xskdbg_umem *u, const uint64_t *addrs, uint32_t n);
void xskdbg_release(const xskdbg_umem *u, const uint64_t *addrs, uint32_t n);

uint64_t xskdbg_violations(const xskdbg_recorder *r);
uint64_t xskdbg_recycled(const xskdbg_recorder *r);
/* Memory sink as ftrace text; copies at most len-1 bytes + NUL, returns the full length. */
size_t xskdbg_dump(const xskdbg_recorder *r, char *buf, size_t len);

/* Write poison into RX slots first..first+n-1 of a ring of mask+1 entries
 * (after reading them, before xsk_ring_cons__release). */
void xskdbg_poison_rx(struct xdp_desc *ring, uint32_t mask, uint32_t first, uint32_t n,
		      uint64_t poison);

#ifdef __cplusplus
}
#endif

#endif /* XSKDBG_H */
