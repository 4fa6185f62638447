/*
 * bench/lb/pick-bench: the cost of a round-robin pick when two threads pick from one pool at
 * once (the worst case for balance-scope listener: every pick an atomic add on one shared
 * position). Build and run from the repository root after `make`:
 *
 *   cc -O2 -I src -o build/pick-bench bench/lb/pick-bench.c build/src/lb/liblb.a \
 *      build/libcore.a -lpthread $(pkg-config --libs yaml-0.1 libsystemd libunbound liburing \
 *      openssl) -lm
 *   build/pick-bench SERVERS SCOPE      (SCOPE 0: listener, 1: worker)
 */
#include "lb/balance.h"
#include "lb/lb_config.h"
#include "lb/lb_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PICKS 2000000

static struct lb_pool *pool;

static void *
pick_thread(void *arg)
{
	struct balance *b;
	if (balance_new(LB_BALANCE_ROUNDROBIN, pool, (uintptr_t)arg, &b) < 0)
		abort();
	bool full;
	for (int i = 0; i < PICKS; i++)
		if (!balance_pick(b, NULL, 0, NULL, &full))
			abort();
	balance_free(b);
	return NULL;
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2;
	int scope = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 0;
	if (n < 1 || n > 16 || scope < 0 || scope > 1) {
		fprintf(stderr, "usage: pick-bench SERVERS(1..16) SCOPE(0 listener, 1 worker)\n");
		return 2;
	}
	struct lb_server_cfg sc[16] = {{0}};
	for (int i = 0; i < n; i++) {
		sc[i].name = "s";
		sc[i].weight = 1 + i % 3;
		sc[i].address.family = 2; /* AF_INET 10.0.0.i:80 */
		sc[i].address.u.bytes[0] = 10;
		sc[i].address.u.bytes[3] = (uint8_t)(i + 1);
		sc[i].address.port = 80;
	}
	struct lb_listener_cfg cfg = {.name = "bench", .balance_scope = scope};
	cfg.servers.n = (size_t)n;
	cfg.servers.items = sc;
	if (lb_pool_new(&cfg, &pool) < 0)
		return 1;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, pick_thread, (void *)(uintptr_t)i);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("servers=%d scope=%s: %.1f M picks/s over 2 threads, %.0f ns per pick per thread\n",
	       n, scope ? "worker" : "listener", 2.0 * PICKS / s / 1e6, s / PICKS * 1e9);
	lb_pool_free(pool);
	return 0;
}
