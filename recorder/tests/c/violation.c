/* A libxdp-style C application using the recorder through xskdbg.h:
 * a clean RX -> TX -> COMP -> FILL cycle, then the seed story's Fill -> Tx
 * misuse, which must be reported through the callback and the memory ring. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xskdbg.h"
#include "seq.h"

static int seen;
static char kind[64], from[16], to[16], line[4096];

static void on_violation(const struct xskdbg_violation *v, void *user)
{
	int *count = user;
	(*count)++;
	seen++;
	snprintf(kind, sizeof(kind), "%s", v->kind);
	snprintf(from, sizeof(from), "%s", v->from);
	snprintf(to, sizeof(to), "%s", v->to);
	snprintf(line, sizeof(line), "%s", v->line);
}

#define CHECK(c)                                                                   \
	do {                                                                       \
		if (!(c)) {                                                        \
			fprintf(stderr, "check failed line %d: %s (%s)\n", __LINE__, #c, \
				xskdbg_last_error());                              \
			return 1;                                                  \
		}                                                                  \
	} while (0)

int main(void)
{
	int count = 0;
	struct xskdbg_config cfg = {
		.sink = XSKDBG_SINK_MEMORY,
		.memory_events = 256,
		.policy = XSKDBG_POLICY_CALLBACK,
		.callback = on_violation,
		.user = &count,
	};
	xskdbg_recorder *rec = NULL;
	xskdbg_umem *umem = NULL;
	xskdbg_pool *pool = NULL;
	xskdbg_sock *sock = NULL;

	CHECK(xskdbg_enabled() == 1);
	/* A bad config is an error with a reason, not a crash. */
	struct xskdbg_config bad = { .sink = 42 };
	CHECK(xskdbg_recorder_new(&bad, &rec) == -1);
	CHECK(strstr(xskdbg_last_error(), "unknown sink") != NULL);

	CHECK(xskdbg_recorder_new(&cfg, &rec) == 0);
	CHECK(xskdbg_umem_new(rec, 16384ull * 2048, 2048, 0, 0, 1, 0xdeadbeefdeadbeefull, &umem) == 0);
	CHECK(xskdbg_pool_new(umem, 1, 5, 1, 2048, 2048, &pool) == 0);
	CHECK(xskdbg_sock_new(pool, 1, 5, 1, -1, "ingress q:1", 2048, 2048, &sock) == 0);

	uint64_t frames[4] = { 0x1000, 0x1800, 0x2000, 0x2800 };
	struct xdp_desc rx[4];
	for (int i = 0; i < 4; i++) {
		rx[i].addr = frames[i] + 256;
		rx[i].len = 60;
		rx[i].options = 0;
	}
	xskdbg_fill(pool, frames, 4);
	xskdbg_rx(sock, 0, rx, 4);
	xskdbg_tx(sock, 0, rx, 4);
	xskdbg_comp(pool, frames, 4);
	xskdbg_fill(pool, frames, 4);
	CHECK(xskdbg_violations(rec) == 0 && count == 0);

	/* The seed story's first panic: a frame on FILL also put on TX. */
	struct xdp_desc bad_tx = { .addr = 0x1800, .len = 60, .options = 0 };
	xskdbg_tx(sock, 4, &bad_tx, 1);
	CHECK(xskdbg_violations(rec) == 1 && count == 1);
	CHECK(strcmp(kind, "invalid_transition") == 0);
	CHECK(strcmp(from, "fill") == 0 && strcmp(to, "tx") == 0);
	/* With the default post-trigger window (a zeroed config): 8 more lines
	 * or 2000 us (0x7d0), then the freeze. */
	CHECK(strcmp(line, "xskdbg:1 violation kind=invalid_transition window=8:7d0 sk=1:5:1 "
			   "pool=1 a=1800 frame=1800 from=fill to=tx label=ingress q:1") == 0);

	/* The flight recorder holds the lines that led up to it. */
	size_t need = xskdbg_dump(rec, NULL, 0);
	char *dump = malloc(need + 1);
	CHECK(dump != NULL);
	CHECK(xskdbg_dump(rec, dump, need + 1) == need);
	strip_seq(dump);
	CHECK(strstr(dump, "tracing_mark_write: xskdbg:1 fill pool=1 n=4 a=1000,1800,2000,2800") != NULL);
	CHECK(strstr(dump, "tracing_mark_write: xskdbg:1 rx sk=1:5:1 pool=1 idx=0 n=4 d=1100:3c,") != NULL);
	CHECK(strstr(dump, line) != NULL);
	fputs(dump, stdout);
	free(dump);

	/* The poison helper writes only the consumed slots. */
	struct xdp_desc ring[4] = { { 1, 1, 0 }, { 1, 1, 0 }, { 1, 1, 0 }, { 1, 1, 0 } };
	xskdbg_poison_rx(ring, 3, 3, 2, 0xdeadbeefdeadbeefull);
	CHECK(ring[3].addr == 0xdeadbeefdeadbeefull && ring[0].addr == 0xdeadbeefdeadbeefull);
	CHECK(ring[1].addr == 1 && ring[2].addr == 1);

	/* NULL handles are ignored. */
	xskdbg_fill(NULL, frames, 4);
	CHECK(xskdbg_violations(NULL) == 0);

	xskdbg_sock_free(sock);
	xskdbg_pool_free(pool);
	xskdbg_umem_free(umem);
	xskdbg_recorder_free(rec);
	printf("c-api-ok violations=%d\n", seen);
	return 0;
}
