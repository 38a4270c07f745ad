/* The ring-aware calls on libxdp's own ring structs and inline ring
 * functions (<xdp/xsk.h>), on rings that live in this program's memory and a
 * "kernel" played by the program: batches that wrap around an 8-entry ring
 * are recorded whole with no violation; then the mistakes a new user makes
 * each name themselves: the array call given a pointer into the ring at the
 * wrap (read_outside_ring), a masked index (ring_index), the initial FILL not
 * recorded (not_recorded), each reported a few times and then only counted.
 * Also: __u64 and uint64_t address arrays without casts, xskdbg_sock_key,
 * xskdbg_is_frozen, xskdbg_sink_errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xdp/xsk.h>
#include "xskdbg.h"
#include "seq.h"

#define RING 8
#define POISON 0xdeadbeefdeadbeefull
#define FRAME 2048

#define CHECK(c)                                                                   \
	do {                                                                       \
		if (!(c)) {                                                        \
			fprintf(stderr, "check failed line %d: %s (%s)\n", __LINE__, #c, \
				xskdbg_last_error());                              \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

static int reported;
static char kinds[64][32];
static char lines[64][512];

static void on_violation(const struct xskdbg_violation *v, void *user)
{
	(void)user;
	if (reported < 64) {
		snprintf(kinds[reported], sizeof(kinds[0]), "%s", v->kind);
		snprintf(lines[reported], sizeof(lines[0]), "%s", v->line);
	}
	reported++;
}

/* One ring's memory: producer, consumer, flags, the entries, and a zeroed
 * guard after them (what a read past the ring's end finds). */
struct ring_mem {
	__u32 producer, consumer, flags;
	struct xdp_desc descs[RING];
	struct xdp_desc guard[RING];
};

static void init_prod(struct xsk_ring_prod *r, struct ring_mem *m)
{
	memset(m, 0, sizeof(*m));
	memset(r, 0, sizeof(*r));
	r->mask = RING - 1;
	r->size = RING;
	r->producer = &m->producer;
	r->consumer = &m->consumer;
	r->flags = &m->flags;
	r->ring = m->descs;
	r->cached_cons = RING; /* as xsk_socket__create sets it */
}

static void init_cons(struct xsk_ring_cons *r, struct ring_mem *m)
{
	memset(m, 0, sizeof(*m));
	memset(r, 0, sizeof(*r));
	r->mask = RING - 1;
	r->size = RING;
	r->producer = &m->producer;
	r->consumer = &m->consumer;
	r->flags = &m->flags;
	r->ring = m->descs;
}

struct rig {
	xskdbg_recorder *rec;
	xskdbg_umem *umem;
	xskdbg_pool *pool;
	xskdbg_sock *sock;
	struct ring_mem fm, rm, tm, cm;
	struct xsk_ring_prod fq, tx;
	struct xsk_ring_cons rx, cq;
};

static void rig_new(struct rig *g)
{
	struct xskdbg_config cfg = {
		.sink = XSKDBG_SINK_MEMORY,
		.memory_events = 512,
		.policy = XSKDBG_POLICY_CALLBACK,
		.callback = on_violation,
		/* No post-trigger window: each mistake below checks the state
		 * right after its violation, the freeze included. */
		.post_trigger_set = 1,
	};
	memset(g, 0, sizeof(*g));
	reported = 0;
	CHECK(xskdbg_recorder_new(&cfg, &g->rec) == 0);
	CHECK(xskdbg_umem_new(g->rec, 64 * FRAME, FRAME, 0, 0, 1, POISON, &g->umem) == 0);
	CHECK(xskdbg_pool_new(g->umem, 1, 5, 0, RING, RING, &g->pool) == 0);
	CHECK(xskdbg_sock_new(g->pool, 1, 5, 0, -1, "q0", RING, RING, &g->sock) == 0);
	init_prod(&g->fq, &g->fm);
	init_prod(&g->tx, &g->tm);
	init_cons(&g->rx, &g->rm);
	init_cons(&g->cq, &g->cm);
}

static void rig_free(struct rig *g)
{
	xskdbg_sock_free(g->sock);
	xskdbg_pool_free(g->pool);
	xskdbg_umem_free(g->umem);
	xskdbg_recorder_free(g->rec);
}

/* The app puts frames on FILL; record_it = 0 is the first mistake. */
static void app_fill(struct rig *g, const __u64 *frames, __u32 n, int record_it)
{
	__u32 idx;
	CHECK(xsk_ring_prod__reserve(&g->fq, n, &idx) == n);
	for (__u32 i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&g->fq, idx + i) = frames[i];
	if (record_it)
		xskdbg_fill_ring(g->pool, &g->fq, idx, n);
	xsk_ring_prod__submit(&g->fq, n);
}

/* The kernel takes n frames from FILL and receives into them, in order. */
static void kernel_rx(struct rig *g, __u32 n)
{
	__u64 *fill = (__u64 *)g->fm.descs;
	for (__u32 i = 0; i < n; i++) {
		__u64 a = fill[g->fm.consumer++ & (RING - 1)];
		struct xdp_desc *d = &g->rm.descs[g->rm.producer & (RING - 1)];
		d->addr = a + 256;
		d->len = 60;
		d->options = 0;
		__atomic_store_n(&g->rm.producer, g->rm.producer + 1, __ATOMIC_RELEASE);
	}
}

/* The kernel sends what is on TX and completes it. */
static void kernel_tx(struct rig *g)
{
	__u64 *comp = (__u64 *)g->cm.descs;
	while (g->tm.consumer != g->tm.producer) {
		struct xdp_desc *d = &g->tm.descs[g->tm.consumer++ & (RING - 1)];
		comp[g->cm.producer & (RING - 1)] = d->addr & ~(__u64)(FRAME - 1);
		__atomic_store_n(&g->cm.producer, g->cm.producer + 1, __ATOMIC_RELEASE);
	}
}

/* The app's forwarding loop: RX -> TX, COMPLETION -> FILL, all recorded
 * through the ring-aware calls in the order the header asks for. */
static void app_forward(struct rig *g)
{
	__u32 ri, ti, ci, fi;
	__u32 n = xsk_ring_cons__peek(&g->rx, RING, &ri);
	if (n) {
		xskdbg_rx_ring(g->sock, &g->rx, ri, n);
		CHECK(xsk_ring_prod__reserve(&g->tx, n, &ti) == n);
		for (__u32 i = 0; i < n; i++)
			*xsk_ring_prod__tx_desc(&g->tx, ti + i) = *xsk_ring_cons__rx_desc(&g->rx, ri + i);
		xskdbg_tx_ring(g->sock, &g->tx, ti, n);
		xsk_ring_prod__submit(&g->tx, n);
		xskdbg_poison_rx_ring(&g->rx, ri, n, POISON);
		xsk_ring_cons__release(&g->rx, n);
	}
	kernel_tx(g);
	n = xsk_ring_cons__peek(&g->cq, RING, &ci);
	if (n) {
		xskdbg_comp_ring(g->pool, &g->cq, ci, n);
		CHECK(xsk_ring_prod__reserve(&g->fq, n, &fi) == n);
		for (__u32 i = 0; i < n; i++)
			*xsk_ring_prod__fill_addr(&g->fq, fi + i) = *xsk_ring_cons__comp_addr(&g->cq, ci + i);
		xskdbg_fill_ring(g->pool, &g->fq, fi, n);
		xsk_ring_prod__submit(&g->fq, n);
		xsk_ring_cons__release(&g->cq, n);
	}
}

static int dump_has(struct rig *g, const char *needle)
{
	size_t need = xskdbg_dump(g->rec, NULL, 0);
	char *d = malloc(need + 1);
	CHECK(d != NULL);
	xskdbg_dump(g->rec, d, need + 1);
	strip_seq(d);
	int found = strstr(d, needle) != NULL;
	if (!found)
		fputs(d, stderr);
	free(d);
	return found;
}

int main(void)
{
	struct rig g;
	__u64 frames[6] = { 0 * FRAME, 1 * FRAME, 2 * FRAME, 3 * FRAME, 4 * FRAME, 5 * FRAME };

	/* Clean: batches of 3 on 8-entry rings wrap again and again. */
	rig_new(&g);
	CHECK(xskdbg_rx_prepoison_ring(g.sock, &g.rx) == 0);
	CHECK(g.rm.descs[5].addr == POISON);
	app_fill(&g, frames, 6, 1);
	for (int lap = 0; lap < 20; lap++) {
		kernel_rx(&g, 3);
		app_forward(&g);
	}
	CHECK(g.rm.producer == 60 && g.rm.consumer == 60);
	CHECK(xskdbg_violations(g.rec) == 0 && reported == 0);
	/* A wrapping batch is two self-contained lines, each with its idx and the producer. */
	CHECK(dump_has(&g, "xskdbg:1 rx sk=1:5:0 pool=1 idx=6 n=2 d=100:3c,900:3c prod=9"));
	CHECK(dump_has(&g, "xskdbg:1 rx sk=1:5:0 pool=1 idx=8 n=1 d=1100:3c prod=9"));
	CHECK(dump_has(&g, "xskdbg:1 rxpoison sk=1:5:0 size=8 poison=deadbeefdeadbeef"));
	/* Too late once frames are on FILL. */
	CHECK(xskdbg_rx_prepoison_ring(g.sock, &g.rx) == -1);
	CHECK(strstr(xskdbg_last_error(), "before the first FILL") != NULL);
	CHECK(xskdbg_is_frozen(g.rec) == 0 && xskdbg_sink_errors(g.rec) == 0);
	rig_free(&g);

	/* Mistake: the array call given a pointer into the ring at the wrap. */
	rig_new(&g);
	CHECK(xskdbg_rx_prepoison_ring(g.sock, &g.rx) == 0);
	app_fill(&g, frames, 6, 1);
	for (int lap = 0; lap < 2; lap++) {
		kernel_rx(&g, 3);
		app_forward(&g);
	}
	kernel_rx(&g, 3);
	{
		__u32 ri, n = xsk_ring_cons__peek(&g.rx, 3, &ri);
		CHECK(n == 3 && (ri & (RING - 1)) == 6);
		xskdbg_rx(g.sock, ri, xsk_ring_cons__rx_desc(&g.rx, ri), n);
	}
	CHECK(reported == 1 && strcmp(kinds[0], "read_outside_ring") == 0);
	CHECK(xskdbg_is_frozen(g.rec) == 1);
	rig_free(&g);

	/* Mistake: idx & mask passed where the free-running counter belongs. */
	rig_new(&g);
	for (int lap = 0; lap < 4; lap++) {
		__u64 fresh[3] = { (__u64)(3 * lap) * FRAME, (__u64)(3 * lap + 1) * FRAME,
				   (__u64)(3 * lap + 2) * FRAME };
		app_fill(&g, fresh, 3, 1);
		kernel_rx(&g, 3);
		__u32 ri, n = xsk_ring_cons__peek(&g.rx, 3, &ri);
		xskdbg_rx_masked(g.sock, g.rx.ring, g.rx.mask, ri & g.rx.mask, n, g.rx.cached_prod);
		xsk_ring_cons__release(&g.rx, n);
	}
	CHECK(reported >= 1 && strcmp(kinds[0], "ring_index") == 0);
	CHECK(strstr(lines[0], "why=back idx=1 next=9") != NULL);
	rig_free(&g);

	/* Mistake: the initial FILL not recorded; reported 5 times, then counted. */
	rig_new(&g);
	{
		__u64 many[RING];
		for (int lap = 0; lap < 4; lap++) {
			for (int i = 0; i < RING; i++)
				many[i] = (__u64)(lap * RING + i) * FRAME;
			app_fill(&g, many, RING, 0);
			kernel_rx(&g, RING);
			__u32 ri, n = xsk_ring_cons__peek(&g.rx, RING, &ri);
			xskdbg_rx_ring(g.sock, &g.rx, ri, n);
			xsk_ring_cons__release(&g.rx, n);
		}
	}
	CHECK(xskdbg_violations(g.rec) == 4 * RING);
	CHECK(reported == 5 && strcmp(kinds[0], "not_recorded") == 0 && strcmp(kinds[4], "not_recorded") == 0);
	rig_free(&g); /* prints the counts */

	/* uint64_t arrays work as well as __u64 ones, without casts. */
	rig_new(&g);
	{
		uint64_t held[2] = { 10 * FRAME, 11 * FRAME };
		__u64 back[2] = { 10 * FRAME, 11 * FRAME };
		xskdbg_hold(g.umem, held, 2);
		xskdbg_release(g.umem, back, 2);
		CHECK(xskdbg_violations(g.rec) == 0);
	}
	rig_free(&g);

	/* The socket key of any socket fd. */
	{
		struct xskdbg_key k;
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		CHECK(fd >= 0);
		CHECK(xskdbg_sock_key(fd, 7, 3, &k) == 0);
		CHECK(k.netns_cookie != 0 && k.ifindex == 7 && k.queue_id == 3);
		close(fd);
		CHECK(xskdbg_sock_key(-1, 7, 3, &k) == -1);
		CHECK(strstr(xskdbg_last_error(), "SO_NETNS_COOKIE") != NULL);
	}
	printf("c-rings-ok\n");
	return 0;
}
