/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * l2fwd - a small libxdp AF_XDP layer-2 forwarder (the xdpsock "l2fwd" idea:
 * every frame received goes back out of the same interface with its MAC
 * addresses swapped), instrumented with the xskdbg recorder.
 *
 * Every ring operation is recorded through the ring-aware calls of xskdbg.h,
 * and each batch before any other ring operation on its frames:
 *
 *   FILL  reserve -> write -> xskdbg_fill_ring -> submit
 *   RX    peek -> xskdbg_rx_ring -> TX (or free list) -> poison -> release
 *   TX    reserve -> write -> xskdbg_tx_ring -> submit
 *   COMP  peek -> xskdbg_comp_ring -> free list -> release
 *
 * The program keeps its idle frames on a free list of its own and records
 * moves to and from it (xskdbg_release / xskdbg_hold), so a frame it loses
 * can be told from one it keeps.
 *
 *   l2fwd -i IFACE [-q QUEUE] [-m skb|native] [-d SECONDS] [-b BUG]
 *
 * BUG plants a mistake once 200 frames went through (for the tests and the
 * README's walk-through):
 *   fill-tx         a received frame is forwarded on TX and also put on FILL
 *   double-recycle  a completed frame is returned to the free list twice
 *   leak            a completed frame is never returned to the free list
 * and two instrumentation mistakes (the program is right, its recording is
 * not; the verdict is `instrumentation`):
 *   no-initial-record  setup's free list and initial FILL are not recorded
 *   wrap-read          RX is recorded through a pointer into the ring
 *                      (xskdbg_rx with xsk_ring_cons__rx_desc), which reads
 *                      past the ring's end when a batch wraps; a 64-entry RX
 *                      ring and batches that wait 20 ms make one wrap soon
 *
 * Lines go to the trace_marker of $XSKDBG_INSTANCE (what `xskdbg record`
 * sets) or the top-level buffer. Exit 0 after SECONDS, 1 on a setup error.
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <xdp/xsk.h>
#include "xskdbg.h" /* after <xdp/xsk.h>: its ring-aware calls take libxdp's rings */

#define NUM_FRAMES 4096
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define RING_SIZE 2048
#define BATCH 64
#define POISON 0xdeadbeefdeadbeefull
#define BUG_AFTER 200

enum bug { BUG_NONE, BUG_FILL_TX, BUG_DOUBLE_RECYCLE, BUG_LEAK, BUG_NO_INITIAL_RECORD, BUG_WRAP_READ };

struct fwd {
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fq, tx;
	struct xsk_ring_cons cq, rx;
	void *area;
	/* The program's own free list of idle frames (a stack). */
	__u64 free[NUM_FRAMES + BATCH]; /* + room for a planted double recycle */
	__u32 nfree;
	/* The recorder's handles. */
	xskdbg_recorder *rec;
	xskdbg_umem *ru;
	xskdbg_pool *rp;
	xskdbg_sock *rs;
	enum bug bug;
	int planted;
	int recording; /* 0 while setup's recording is skipped (no-initial-record) */
	__u64 rx_frames, tx_frames;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "l2fwd: %s: %s\n", what, strerror(err));
	exit(1);
}

/* Free list -> FILL: as many frames as both have room for. */
static void refill(struct fwd *f)
{
	__u32 idx, n = f->nfree < BATCH ? f->nfree : BATCH;
	if (n == 0 || xsk_ring_prod__reserve(&f->fq, n, &idx) != n)
		return;
	for (__u32 i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&f->fq, idx + i) = f->free[--f->nfree];
	if (f->recording)
		xskdbg_fill_ring(f->rp, &f->fq, idx, n);
	xsk_ring_prod__submit(&f->fq, n);
}

static void swap_macs(void *pkt)
{
	unsigned char *p = pkt, tmp[6];
	memcpy(tmp, p, 6);
	memcpy(p, p + 6, 6);
	memcpy(p + 6, tmp, 6);
}

/* RX -> TX; frames TX has no room for go back to the free list. */
static void forward(struct fwd *f)
{
	__u32 ri, ti, n;
	if (f->bug == BUG_WRAP_READ)
		usleep(20000); /* batches of several frames, so one straddles the wrap */
	n = xsk_ring_cons__peek(&f->rx, BATCH, &ri);
	if (n == 0)
		return;
	if (f->bug == BUG_WRAP_READ)
		/* The mistake: a pointer into the ring as if it were a copy. */
		xskdbg_rx(f->rs, ri, xsk_ring_cons__rx_desc(&f->rx, ri), n);
	else
		xskdbg_rx_ring(f->rs, &f->rx, ri, n);
	f->rx_frames += n;
	__u32 sent = xsk_ring_prod__reserve(&f->tx, n, &ti);
	for (__u32 i = 0; i < sent; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&f->rx, ri + i);
		swap_macs(xsk_umem__get_data(f->area, d->addr));
		*xsk_ring_prod__tx_desc(&f->tx, ti + i) = *d;
	}
	if (sent) {
		xskdbg_tx_ring(f->rs, &f->tx, ti, sent);
		xsk_ring_prod__submit(&f->tx, sent);
		f->tx_frames += sent;
	}
	if (sent < n) {
		__u64 back[BATCH];
		for (__u32 i = sent; i < n; i++)
			back[i - sent] = xsk_umem__extract_addr(xsk_ring_cons__rx_desc(&f->rx, ri + i)->addr) &
					 ~(__u64)(FRAME_SIZE - 1);
		xskdbg_release(f->ru, back, n - sent);
		memcpy(&f->free[f->nfree], back, (n - sent) * sizeof(back[0]));
		f->nfree += n - sent;
	}
	if (f->bug == BUG_FILL_TX && !f->planted && sent && f->rx_frames >= BUG_AFTER) {
		/* The bug: a frame just put on TX is also given back to FILL. */
		__u32 fi;
		if (xsk_ring_prod__reserve(&f->fq, 1, &fi) == 1) {
			__u64 a = xsk_ring_prod__tx_desc(&f->tx, ti)->addr & ~(__u64)(FRAME_SIZE - 1);
			*xsk_ring_prod__fill_addr(&f->fq, fi) = a;
			xskdbg_fill_ring(f->rp, &f->fq, fi, 1);
			xsk_ring_prod__submit(&f->fq, 1);
			f->planted = 1;
			fprintf(stderr, "l2fwd: planted fill-tx on frame 0x%llx\n", (unsigned long long)a);
		}
	}
	xskdbg_poison_rx_ring(&f->rx, ri, n, POISON);
	xsk_ring_cons__release(&f->rx, n);
	/* Copy mode sends on a syscall. */
	if (sent)
		sendto(xsk_socket__fd(f->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0);
}

/* COMPLETION -> free list. */
static void complete(struct fwd *f)
{
	__u32 ci, n = xsk_ring_cons__peek(&f->cq, BATCH, &ci);
	if (n == 0)
		return;
	xskdbg_comp_ring(f->rp, &f->cq, ci, n);
	__u64 done[BATCH + 1];
	__u32 k = 0;
	for (__u32 i = 0; i < n; i++)
		done[k++] = *xsk_ring_cons__comp_addr(&f->cq, ci + i);
	xsk_ring_cons__release(&f->cq, n);
	if (!f->planted && f->tx_frames >= BUG_AFTER) {
		if (f->bug == BUG_DOUBLE_RECYCLE) {
			/* The bug: the last frame goes back to the free list twice. */
			done[k] = done[k - 1];
			k++;
			f->planted = 1;
			fprintf(stderr, "l2fwd: planted double-recycle on frame 0x%llx\n",
				(unsigned long long)done[k - 1]);
		} else if (f->bug == BUG_LEAK) {
			/* The bug: the last frame is forgotten. */
			k--;
			f->planted = 1;
			fprintf(stderr, "l2fwd: planted leak on frame 0x%llx\n", (unsigned long long)done[k]);
		}
	}
	if (k == 0)
		return;
	xskdbg_release(f->ru, done, k);
	memcpy(&f->free[f->nfree], done, k * sizeof(done[0]));
	f->nfree += k;
}

static void setup(struct fwd *f, const char *ifname, __u32 queue, __u32 xdp_flags)
{
	int err;
	__u32 ifindex = if_nametoindex(ifname);
	if (ifindex == 0)
		die(ifname, errno);
	f->area = mmap(NULL, (size_t)NUM_FRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f->area == MAP_FAILED)
		die("mmap", errno);
	struct xsk_umem_config ucfg = {
		.fill_size = RING_SIZE,
		.comp_size = RING_SIZE,
		.frame_size = FRAME_SIZE,
		.frame_headroom = 0,
	};
	err = xsk_umem__create(&f->umem, f->area, (__u64)NUM_FRAMES * FRAME_SIZE, &f->fq, &f->cq, &ucfg);
	if (err)
		die("xsk_umem__create", -err);
	__u32 rx_size = f->bug == BUG_WRAP_READ ? 64 : RING_SIZE;
	struct xsk_socket_config scfg = {
		.rx_size = rx_size,
		.tx_size = RING_SIZE,
		.xdp_flags = xdp_flags,
		.bind_flags = XDP_COPY, /* veth has no zero-copy */
	};
	err = xsk_socket__create(&f->xsk, ifname, queue, f->umem, &f->rx, &f->tx, &scfg);
	if (err)
		die("xsk_socket__create", -err);

	/* The recorder: its handles mirror the UMEM, the pool (FILL +
	 * COMPLETION of this device queue) and the socket. */
	struct xskdbg_config rcfg = {
		.sink = XSKDBG_SINK_TRACE_MARKER,
		.instance = NULL, /* $XSKDBG_INSTANCE, else the top-level buffer */
		.policy = XSKDBG_POLICY_LOG,
	};
	struct xskdbg_key key;
	int fd = xsk_socket__fd(f->xsk);
	if (xskdbg_recorder_new(&rcfg, &f->rec) || xskdbg_sock_key(fd, ifindex, queue, &key) ||
	    xskdbg_umem_new(f->rec, (__u64)NUM_FRAMES * FRAME_SIZE, FRAME_SIZE, 0, 0, 1, POISON, &f->ru) ||
	    xskdbg_pool_new(f->ru, key.netns_cookie, key.ifindex, key.queue_id, RING_SIZE, RING_SIZE,
			    &f->rp) ||
	    xskdbg_sock_new(f->rp, key.netns_cookie, key.ifindex, key.queue_id, fd, ifname, rx_size,
			    RING_SIZE, &f->rs)) {
		fprintf(stderr, "l2fwd: recorder: %s\n", xskdbg_last_error());
		exit(1);
	}
	/* Before the first FILL: poison every RX slot, so a descriptor read
	 * from outside the ring is told apart. */
	if (xskdbg_rx_prepoison_ring(f->rs, &f->rx)) {
		fprintf(stderr, "l2fwd: recorder: %s\n", xskdbg_last_error());
		exit(1);
	}
	/* Every frame starts on the program's free list; then FILL. */
	for (__u32 i = 0; i < NUM_FRAMES; i++)
		f->free[i] = (__u64)(NUM_FRAMES - 1 - i) * FRAME_SIZE;
	f->nfree = NUM_FRAMES;
	f->recording = f->bug != BUG_NO_INITIAL_RECORD;
	if (f->recording)
		xskdbg_release(f->ru, f->free, f->nfree);
	for (int i = 0; i < RING_SIZE / BATCH; i++)
		refill(f);
	f->recording = 1;
}

int main(int argc, char **argv)
{
	static struct fwd f;
	const char *ifname = NULL;
	__u32 queue = 0, xdp_flags = XDP_FLAGS_SKB_MODE;
	double seconds = 2;
	int opt;

	while ((opt = getopt(argc, argv, "i:q:m:d:b:")) != -1) {
		switch (opt) {
		case 'i': ifname = optarg; break;
		case 'q': queue = (__u32)atoi(optarg); break;
		case 'm':
			if (strcmp(optarg, "skb") == 0)
				xdp_flags = XDP_FLAGS_SKB_MODE;
			else if (strcmp(optarg, "native") == 0)
				xdp_flags = XDP_FLAGS_DRV_MODE;
			else
				goto usage;
			break;
		case 'd': seconds = atof(optarg); break;
		case 'b':
			if (strcmp(optarg, "fill-tx") == 0)
				f.bug = BUG_FILL_TX;
			else if (strcmp(optarg, "double-recycle") == 0)
				f.bug = BUG_DOUBLE_RECYCLE;
			else if (strcmp(optarg, "leak") == 0)
				f.bug = BUG_LEAK;
			else if (strcmp(optarg, "no-initial-record") == 0)
				f.bug = BUG_NO_INITIAL_RECORD;
			else if (strcmp(optarg, "wrap-read") == 0)
				f.bug = BUG_WRAP_READ;
			else
				goto usage;
			break;
		default: goto usage;
		}
	}
	if (!ifname)
		goto usage;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	setup(&f, ifname, queue, xdp_flags);
	fprintf(stderr, "l2fwd: forwarding on %s queue %u\n", ifname, queue);

	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct pollfd pfd = { .fd = xsk_socket__fd(f.xsk), .events = POLLIN };
	while (!stop) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >= seconds)
			break;
		complete(&f);
		refill(&f);
		if (xsk_cons_nb_avail(&f.rx, 1) == 0)
			poll(&pfd, 1, 10);
		forward(&f);
	}
	printf("l2fwd: %llu frames received, %llu forwarded, %llu violation(s)%s\n",
	       (unsigned long long)f.rx_frames, (unsigned long long)f.tx_frames,
	       (unsigned long long)xskdbg_violations(f.rec), xskdbg_is_frozen(f.rec) ? ", trace frozen" : "");
	xskdbg_sock_free(f.rs);
	xskdbg_pool_free(f.rp);
	xskdbg_umem_free(f.ru);
	xskdbg_recorder_free(f.rec);
	xsk_socket__delete(f.xsk);
	xsk_umem__delete(f.umem);
	return 0;
usage:
	fprintf(stderr, "usage: l2fwd -i IFACE [-q QUEUE] [-m skb|native] [-d SECONDS] "
			"[-b fill-tx|double-recycle|leak|no-initial-record|wrap-read]\n");
	return 2;
}
