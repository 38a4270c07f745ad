/* The post-trigger window through struct xskdbg_config: a zeroed config
 * gets the default window, a set one counts its lines after the first
 * violation and then freezes, 0/0 freezes at the violation, xskdbg_end
 * stops the lines without a freeze. Prints the
 * config's layout so tests/capi.rs can hold it against the Rust side. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xskdbg.h"

#define CHECK(c)                                                                   \
	do {                                                                       \
		if (!(c)) {                                                        \
			fprintf(stderr, "check failed line %d: %s (%s)\n", __LINE__, #c, \
				xskdbg_last_error());                              \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

static char last_line[4096];

static void on_violation(const struct xskdbg_violation *v, void *user)
{
	(void)user;
	snprintf(last_line, sizeof(last_line), "%s", v->line);
}

static xskdbg_recorder *rec;
static xskdbg_umem *umem;

static void open_rec(int set, uint32_t lines, uint64_t us)
{
	struct xskdbg_config cfg = {
		.sink = XSKDBG_SINK_MEMORY,
		.memory_events = 256,
		.policy = XSKDBG_POLICY_CALLBACK,
		.callback = on_violation,
		.post_trigger_set = set,
		.post_trigger_lines = lines,
		.post_trigger_us = us,
	};
	CHECK(xskdbg_recorder_new(&cfg, &rec) == 0);
	CHECK(xskdbg_umem_new(rec, 64ull * 2048, 2048, 0, 0, 0, 0, &umem) == 0);
}

static void close_rec(void)
{
	xskdbg_umem_free(umem);
	xskdbg_recorder_free(rec);
	umem = NULL;
	rec = NULL;
}

static void hold(uint64_t a)
{
	uint64_t addrs[1] = { a };
	xskdbg_hold(umem, addrs, 1);
}

/* The memory ring as text (the caller frees it). */
static char *dump(void)
{
	size_t need = xskdbg_dump(rec, NULL, 0);
	char *d = malloc(need + 1);
	CHECK(d != NULL);
	CHECK(xskdbg_dump(rec, d, need + 1) == need);
	return d;
}

int main(void)
{
	printf("layout size=%zu set=%zu lines=%zu us=%zu\n", sizeof(struct xskdbg_config),
	       offsetof(struct xskdbg_config, post_trigger_set),
	       offsetof(struct xskdbg_config, post_trigger_lines),
	       offsetof(struct xskdbg_config, post_trigger_us));
	CHECK(XSKDBG_POST_TRIGGER_LINES == 8 && XSKDBG_POST_TRIGGER_US == 2000);

	/* A zeroed window: the default, said on the violation line (hex). */
	open_rec(0, 0, 0);
	hold(0);
	hold(0);
	CHECK(xskdbg_violations(rec) == 1);
	CHECK(strstr(last_line, " window=8:7d0 ") != NULL);
	CHECK(xskdbg_is_frozen(rec) == 0);
	close_rec();

	/* 3 lines (the timer alone would take a minute). */
	open_rec(1, 3, 60000000);
	hold(0);
	hold(0);
	CHECK(strstr(last_line, "violation kind=duplicate_in_flight window=3:3938700 ") != NULL);
	hold(0x800);
	hold(0x1000);
	CHECK(xskdbg_is_frozen(rec) == 0);
	hold(0x1800);
	CHECK(xskdbg_is_frozen(rec) == 1);
	hold(0x2000);
	char *d = dump();
	CHECK(strstr(d, "hold seq=") != NULL);
	CHECK(strstr(d, " n=1 a=1800\n") != NULL);
	CHECK(strstr(d, " n=1 a=2000\n") == NULL);
	free(d);
	close_rec();

	/* 0/0: frozen at the violation, and the line says no window. */
	open_rec(1, 0, 0);
	hold(0);
	hold(0);
	CHECK(xskdbg_is_frozen(rec) == 1);
	CHECK(strstr(last_line, "violation kind=duplicate_in_flight ") != NULL);
	CHECK(strstr(last_line, "window=") == NULL);
	hold(0x800);
	d = dump();
	CHECK(strstr(d, " n=1 a=800\n") == NULL);
	free(d);
	close_rec();

	/* The owner's end: lines stop, and that is not a freeze. */
	open_rec(1, 0, 0);
	hold(0);
	xskdbg_end(rec);
	xskdbg_end(NULL);
	CHECK(xskdbg_is_frozen(rec) == 0);
	hold(0x800);
	d = dump();
	CHECK(strstr(d, " n=1 a=0\n") != NULL);
	CHECK(strstr(d, " n=1 a=800\n") == NULL);
	free(d);
	close_rec();

	printf("c-window-ok\n");
	return 0;
}
