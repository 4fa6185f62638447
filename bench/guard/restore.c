/*
 * bench/guard/restore: how long guard's nftables loads take, in a throwaway network namespace
 * (needs root). Times guard_nft_setup, a restore of 5,000 bans (IPv4 and IPv6, mixed
 * timeouts, some permanent) into a fresh table and again over the same bans (a restart: the
 * table was kept), and a 100,000-prefix blocklist, loaded fresh and then replaced. Each load
 * is one transaction. Then a restart as the daemon makes it: the writer child started over the
 * kept table, and the 5,000 bans sent to it in chunks. Prints the median, min and max of each
 * step over --runs N (3).
 */
#include "core/cleanup.h"
#include "core/net.h"
#include "guard/guard_nft.h"
#include "guard/guard_writer.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BANS = 5000, PREFIXES = 100000, STEPS = 9, RUNS_MAX = 50 };

static const char *const step_names[STEPS] = {
    "setup (new table)",          "restore 5000 bans (fresh)",
    "setup (kept table)",         "restore 5000 bans (over kept)",
    "blocklist 100000 (fresh)",   "blocklist 100000 (replace)",
    "one ban (blocklist loaded)", "writer start (kept table)",
    "writer: restore 5000 bans"};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
make_bans(struct guard_nft_elem *v)
{
	for (int i = 0; i < BANS; i++) {
		struct net_cidr *c = &v[i].net;
		*c = (struct net_cidr){0};
		if (i % 4 == 3) {
			c->addr.family = AF_INET6;
			c->addr.u.bytes[0] = 0x20;
			c->addr.u.bytes[1] = 0x01;
			c->addr.u.bytes[2] = 0x0d;
			c->addr.u.bytes[3] = 0xb8;
			c->addr.u.bytes[6] = (uint8_t)(i >> 8);
			c->addr.u.bytes[7] = (uint8_t)i;
			c->addr.u.bytes[15] = 1;
			c->prefix = 128;
		} else {
			c->addr.family = AF_INET;
			c->addr.u.bytes[0] = (uint8_t)(11 + i % 200);
			c->addr.u.bytes[1] = (uint8_t)(i >> 8);
			c->addr.u.bytes[2] = (uint8_t)i;
			c->addr.u.bytes[3] = (uint8_t)(1 + i % 250);
			c->prefix = 32;
		}
		/* remaining times from 2 minutes to 30 days; every 10th permanent */
		v[i].timeout_ms = i % 10 == 0 ? 0 : 120000 + (uint64_t)i * 517000;
	}
}

/* Distinct, mostly non-adjacent /24s and /48s (a DROP-list-like spread), seed varies them. */
static void
make_prefixes(struct net_cidr *v, unsigned seed)
{
	for (int i = 0; i < PREFIXES; i++) {
		v[i] = (struct net_cidr){0};
		uint32_t x = (uint32_t)i * 2 + seed;
		if (i % 5 == 4) {
			v[i].addr.family = AF_INET6;
			v[i].addr.u.bytes[0] = 0x2a;
			v[i].addr.u.bytes[2] = (uint8_t)(x >> 16);
			v[i].addr.u.bytes[3] = (uint8_t)(x >> 8);
			v[i].addr.u.bytes[4] = (uint8_t)x;
			v[i].prefix = 48;
		} else {
			v[i].addr.family = AF_INET;
			v[i].addr.u.bytes[0] = (uint8_t)(1 + (x >> 16) % 200);
			v[i].addr.u.bytes[1] = (uint8_t)(x >> 8);
			v[i].addr.u.bytes[2] = (uint8_t)x;
			v[i].prefix = 24;
		}
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int
check(struct guard_nft *n, int r, const char *what)
{
	if (r < 0)
		fprintf(stderr, "restore: %s: %s (%s)\n", what, strerror(-r), guard_nft_error(n));
	return r;
}

static int
one_run(struct guard_nft_elem *bans, struct net_cidr *pfx, double t[STEPS])
{
	struct guard_nft_rate rate = {.ports = {22}, .nports = 1, .seconds = 180, .hitcount = 4};
	struct guard_nft_layout l = {
	    .rates = &rate, .nrates = 1, .v6_prefix = 64, .set_size = 65535};
	struct guard_nft *n = NULL;
	int r = guard_nft_new(&n);

	if (r < 0)
		return r;
	guard_nft_remove(n);
	double t0 = now_ms();
	r = check(n, guard_nft_setup(n, &l), "setup");
	double t1 = now_ms();
	if (r >= 0)
		r = check(n, guard_nft_ban(n, bans, BANS), "bans");
	double t2 = now_ms();
	if (r >= 0)
		r = check(n, guard_nft_setup(n, &l), "setup again");
	double t3 = now_ms();
	if (r >= 0)
		r = check(n, guard_nft_ban(n, bans, BANS), "bans again");
	double t4 = now_ms();
	make_prefixes(pfx, 0);
	double t5 = now_ms();
	if (r >= 0)
		r = check(n, guard_nft_blocklist(n, pfx, PREFIXES), "blocklist");
	double t6 = now_ms();
	make_prefixes(pfx, 1);
	double t7 = now_ms();
	if (r >= 0)
		r = check(n, guard_nft_blocklist(n, pfx, PREFIXES), "blocklist again");
	double t8 = now_ms();
	if (r >= 0)
		r = check(n, guard_nft_ban(n, bans + 1, 1), "one ban");
	double t8b = now_ms();
	guard_nft_free(n);
	/* the same restart through the writer's socket, as the daemon does it */
	struct guard_writer *w = NULL;
	double t9 = now_ms();
	if (r >= 0 && (r = guard_writer_start(&l, NULL, &w)) < 0)
		fprintf(stderr, "restore: writer: %s\n", strerror(-r));
	double t10 = now_ms();
	if (r >= 0 && (r = guard_writer_ban(w, bans, BANS)) < 0)
		fprintf(stderr, "restore: writer bans: %s (%s)\n", strerror(-r),
		        guard_writer_error(w));
	double t11 = now_ms();
	guard_writer_stop(w);
	double v[STEPS] = {t1 - t0, t2 - t1,  t3 - t2,  t4 - t3,  t6 - t5,
	                   t8 - t7, t8b - t8, t10 - t9, t11 - t10};
	memcpy(t, v, sizeof(v));
	return r;
}

int
main(int argc, char **argv)
{
	int runs = 3;

	if (argc == 3 && strcmp(argv[1], "--runs") == 0)
		runs = (int)strtol(argv[2], NULL, 10);
	if (runs < 1 || runs > RUNS_MAX || (argc != 1 && argc != 3)) {
		fprintf(stderr, "usage: bench-guard-restore [--runs 1..%d]\n", RUNS_MAX);
		return 2;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "restore: unshare(CLONE_NEWNET): %s (run as root)\n",
		        strerror(errno));
		return 1;
	}
	_cleanup_free_ struct guard_nft_elem *bans = calloc(BANS, sizeof(*bans));
	_cleanup_free_ struct net_cidr *pfx = calloc(PREFIXES, sizeof(*pfx));
	double t[RUNS_MAX][STEPS];
	if (!bans || !pfx)
		return 1;
	make_bans(bans);
	for (int i = 0; i < runs; i++)
		if (one_run(bans, pfx, t[i]) < 0)
			return 1;
	for (int s = 0; s < STEPS; s++) {
		double col[RUNS_MAX];
		for (int i = 0; i < runs; i++)
			col[i] = t[i][s];
		qsort(col, (size_t)runs, sizeof(col[0]), cmp_double);
		printf("%-32s median %8.1f ms  min %8.1f ms  max %8.1f ms  (%d runs)\n",
		       step_names[s], col[runs / 2], col[0], col[runs - 1], runs);
	}
	printf("a restart is 'setup (kept table)' + 'restore 5000 bans (over kept)'\n");
	return 0;
}
