/* Unit tests for src/lb/balance*: every algorithm's choice rules, order, shares and Maglev. */
#include "core/net.h"
#include "lb/balance.h"
#include "lb/lb_config.h"
#include "lb/lb_pool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

#define NALGO 8
#define SEC 1000000000ull

struct spec {
	const char *name;
	int64_t weight;
	bool backup;
	int64_t maxconn;
};

static struct lb_pool *
pool_scoped(const struct spec *sp, size_t n, uint64_t slow_start_ms, int scope)
{
	struct lb_server_cfg *sc = calloc(n, sizeof(*sc));
	char names[64][16];
	assert_non_null(sc);
	assert_true(n <= 64);
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "s%zu", i);
		sc[i].name = sp && sp[i].name ? (char *)sp[i].name : names[i];
		sc[i].weight = sp ? sp[i].weight : 1;
		sc[i].backup = sp && sp[i].backup;
		sc[i].maxconn = sp ? sp[i].maxconn : 0;
		sc[i].address.family = AF_INET;
		sc[i].address.u.bytes[0] = 10;
		sc[i].address.u.bytes[3] = (uint8_t)(i + 1);
		sc[i].address.port = 80;
	}
	struct lb_listener_cfg cfg = {
	    .name = "test", .slow_start_ms = slow_start_ms, .balance_scope = scope};
	cfg.servers.n = n;
	cfg.servers.items = sc;
	struct lb_pool *pool = NULL;
	assert_int_equal(lb_pool_new(&cfg, &pool), 0);
	free(sc);
	return pool;
}

static struct lb_pool *
pool_of(const struct spec *sp, size_t n, uint64_t slow_start_ms)
{
	return pool_scoped(sp, n, slow_start_ms, LB_BALANCE_SCOPE_LISTENER);
}

static struct balance *
balance_of(int algo, struct lb_pool *pool)
{
	struct balance *b = NULL;
	assert_int_equal(balance_new(algo, pool, 42, &b), 0);
	return b;
}

static struct net_addr
v4(uint32_t x)
{
	struct net_addr a = {.family = AF_INET};
	uint32_t be = htonl(x);
	memcpy(a.u.bytes, &be, 4);
	return a;
}

static struct net_addr
addr_of(const char *s)
{
	struct net_addr a;
	assert_int_equal(net_addr_parse(s, NET_PORT_OPTIONAL, &a), 0);
	return a;
}

/* picks with a source key and checks the result is a legal choice */
static struct lb_server *
pick(struct balance *b, const struct net_addr *client, uint64_t now, const uint64_t *ex)
{
	struct balance_key key = {.client = client};
	bool full = true;
	struct lb_server *s = balance_pick(b, &key, now, ex, &full);
	if (s)
		assert_false(full);
	return s;
}

static uint64_t
xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* ---- round-robin order ---- */

/* Two balancers on one pool stand for two workers taking turns: with the listener's scope the
 * order is the pool's, exact; with the worker's each repeats its own sequence. */
static void
test_rr_scope(void **state)
{
	struct spec sp[2] = {{.weight = 3}, {.weight = 1}};
	const char *want[] = {"aaba",
	                      "aaaa"}; /* smooth 3:1 is a a b a: each worker its first two */
	for (int scope = LB_BALANCE_SCOPE_LISTENER; scope <= LB_BALANCE_SCOPE_WORKER; scope++) {
		struct lb_pool *pool = pool_scoped(sp, 2, 0, scope);
		struct balance *w[2] = {balance_of(LB_BALANCE_ROUNDROBIN, pool),
		                        balance_of(LB_BALANCE_ROUNDROBIN, pool)};
		for (size_t i = 0; i < 4; i++) {
			struct lb_server *s = pick(w[i % 2], NULL, 0, NULL);
			assert_non_null(s);
			assert_int_equal('a' + s->index, want[scope][i]);
		}
		balance_free(w[0]);
		balance_free(w[1]);
		lb_pool_free(pool);
	}
}

static void
assert_rr_order(const int64_t *w, size_t n, const char *want, size_t rounds)
{
	struct spec sp[8] = {{0}};
	for (size_t i = 0; i < n; i++)
		sp[i].weight = w[i];
	struct lb_pool *pool = pool_of(sp, n, 0);
	struct balance *b = balance_of(LB_BALANCE_ROUNDROBIN, pool);
	size_t len = strlen(want);
	for (size_t r = 0; r < rounds; r++) {
		for (size_t i = 0; i < len; i++) {
			struct lb_server *s = pick(b, NULL, 0, NULL);
			assert_non_null(s);
			assert_int_equal('a' + s->index, want[i]);
		}
	}
	balance_free(b);
	lb_pool_free(pool);
}

static void
test_rr_order(void **state)
{
	assert_rr_order((int64_t[]){5, 1, 1}, 3, "aabacaa", 3);
	assert_rr_order((int64_t[]){1, 1}, 2, "ab", 5);
	assert_rr_order((int64_t[]){3, 2}, 2, "ababa", 3);
	assert_rr_order((int64_t[]){1, 1, 1}, 3, "abc", 3);
}

/* picks len servers from b and returns them as letters */
static void
rr_seq(struct balance *b, char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		struct lb_server *s = pick(b, NULL, 0, NULL);
		assert_non_null(s);
		out[i] = (char)('a' + s->index);
	}
	out[len] = 0;
}

/* A server that leaves is stepped past and the others keep their order; back, it takes its
 * old places (nginx's algorithm gave c c a c for the first case). */
static void
test_rr_leaving_server_keeps_order(void **state)
{
	struct {
		int64_t w[3];
		const char *before, *without_b, *after;
	} cases[] = {
	    {{1, 1, 1}, "ab", "cacaca", "bcabca"},
	    {{5, 1, 1}, "aab", "acaaaaac", "aaaabac"},
	    {{1, 2, 1}, "b", "acac", "bbacbbac"},
	};
	char got[16];
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct spec sp[3] = {{.weight = cases[k].w[0]},
		                     {.weight = cases[k].w[1]},
		                     {.weight = cases[k].w[2]}};
		struct lb_pool *pool = pool_of(sp, 3, 0);
		struct balance *b = balance_of(LB_BALANCE_ROUNDROBIN, pool);
		rr_seq(b, got, strlen(cases[k].before));
		assert_string_equal(got, cases[k].before);
		lb_pool_set_health(pool, &pool->servers[1], LB_HEALTH_DOWN, 0);
		rr_seq(b, got, strlen(cases[k].without_b));
		assert_string_equal(got, cases[k].without_b);
		lb_pool_set_health(pool, &pool->servers[1], LB_HEALTH_UP, 0);
		rr_seq(b, got, strlen(cases[k].after));
		assert_string_equal(got, cases[k].after);
		balance_free(b);
		lb_pool_free(pool);
	}
}

/* ---- rules every algorithm follows ---- */

static void
test_weight_zero(void **state)
{
	const struct spec sp[] = {{NULL, 1, 0, 0}, {NULL, 0, 0, 0}, {NULL, 2, 0, 0}};
	struct lb_pool *pool = pool_of(sp, 3, 0);
	for (int algo = 0; algo < NALGO; algo++) {
		struct balance *b = balance_of(algo, pool);
		for (uint32_t i = 0; i < 2000; i++) {
			struct net_addr c = v4(i * 2654435761u);
			struct lb_server *s = pick(b, &c, 0, NULL);
			assert_non_null(s);
			assert_int_not_equal(s->index, 1);
		}
		balance_free(b);
	}
	lb_pool_free(pool);
}

static void
assert_never(struct lb_pool *pool, unsigned bad_mask, uint64_t now)
{
	for (int algo = 0; algo < NALGO; algo++) {
		struct balance *b = balance_of(algo, pool);
		for (uint32_t i = 0; i < 1000; i++) {
			struct net_addr c = v4(i * 2654435761u);
			struct lb_server *s = pick(b, &c, now, NULL);
			assert_non_null(s);
			assert_false(bad_mask >> s->index & 1);
		}
		balance_free(b);
	}
}

static void
test_backup(void **state)
{
	const struct spec sp[] = {{NULL, 1, 0, 0}, {NULL, 1, 0, 0}, {NULL, 1, true, 0}};
	struct lb_pool *pool = pool_of(sp, 3, 0);
	assert_never(pool, 1u << 2, 0);
	lb_pool_set_health(pool, &pool->servers[0], LB_HEALTH_DOWN, 0);
	assert_never(pool, 1u << 0 | 1u << 2, 0);
	lb_pool_set_admin(pool, &pool->servers[1], LB_ADMIN_MAINT);
	assert_never(pool, 1u << 0 | 1u << 1, 0);
	lb_pool_set_admin(pool, &pool->servers[1], LB_ADMIN_READY);
	assert_never(pool, 1u << 0 | 1u << 2, 0);
	/* nothing usable: NULL, and not "full" */
	lb_pool_set_admin(pool, &pool->servers[1], LB_ADMIN_MAINT);
	lb_pool_set_health(pool, &pool->servers[2], LB_HEALTH_DOWN, 0);
	for (int algo = 0; algo < NALGO; algo++) {
		struct balance *b = balance_of(algo, pool);
		bool full = true;
		assert_null(balance_pick(b, NULL, 0, NULL, &full));
		assert_false(full);
		balance_free(b);
	}
	lb_pool_free(pool);
}

static void
test_drain(void **state)
{
	struct lb_pool *pool = pool_of(NULL, 4, 0);
	lb_pool_set_admin(pool, &pool->servers[2], LB_ADMIN_DRAIN);
	assert_never(pool, 1u << 2, 0);
	lb_pool_free(pool);
}

static void
test_exclude(void **state)
{
	struct lb_pool *pool = pool_of(NULL, 3, 0);
	for (int algo = 0; algo < NALGO; algo++) {
		struct balance *b = balance_of(algo, pool);
		for (uint32_t i = 0; i < 300; i++) {
			struct net_addr c = v4(i * 2654435761u);
			uint64_t ex[LB_SERVERS_MAX / 64] = {0};
			unsigned seen = 0;
			for (int t = 0; t < 3; t++) {
				struct lb_server *s = pick(b, &c, 0, ex);
				assert_non_null(s);
				assert_false(seen >> s->index & 1);
				seen |= 1u << s->index;
				ex[0] |= 1ull << s->index;
			}
			bool full = true;
			assert_null(
			    balance_pick(b, &(struct balance_key){.client = &c}, 0, ex, &full));
			assert_false(full);
		}
		balance_free(b);
	}
	lb_pool_free(pool);
}

static void
test_maxconn(void **state)
{
	const struct spec sp[] = {{NULL, 1, 0, 2}, {NULL, 1, 0, 2}, {NULL, 1, true, 0}};
	struct lb_pool *pool = pool_of(sp, 3, 0);
	atomic_store(&pool->servers[0].active, 2);
	assert_never(pool, 1u << 0 | 1u << 2, 0);
	atomic_store(&pool->servers[1].active, 5);
	for (int algo = 0; algo < NALGO; algo++) {
		struct balance *b = balance_of(algo, pool);
		for (uint32_t i = 0; i < 100; i++) {
			struct net_addr c = v4(i * 2654435761u);
			bool full = false;
			/* full primaries queue; they do not spill over to the backup */
			assert_null(
			    balance_pick(b, &(struct balance_key){.client = &c}, 0, NULL, &full));
			assert_true(full);
		}
		balance_free(b);
	}
	lb_pool_free(pool);
}

/* ---- shares ---- */

static void
count_picks(int algo, struct lb_pool *pool, size_t picks, uint64_t now, size_t *count)
{
	struct balance *b = balance_of(algo, pool);
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < picks; i++) {
		struct net_addr c = v4((uint32_t)xorshift(&x));
		struct lb_server *s = pick(b, &c, now, NULL);
		assert_non_null(s);
		count[s->index]++;
	}
	balance_free(b);
}

static void
test_shares(void **state)
{
	const struct spec sp[] = {
	    {NULL, 1, 0, 0}, {NULL, 2, 0, 0}, {NULL, 3, 0, 0}, {NULL, 4, 0, 0}};
	struct lb_pool *pool = pool_of(sp, 4, 0);
	const int algos[] = {LB_BALANCE_RANDOM, LB_BALANCE_ROUNDROBIN, LB_BALANCE_SOURCE};
	for (size_t a = 0; a < 3; a++) {
		size_t count[4] = {0};
		count_picks(algos[a], pool, 10000, 0, count);
		for (size_t i = 0; i < 4; i++) {
			double share = (double)count[i] / 10000, want = (double)(i + 1) / 10;
			if (share < want - 0.02 || share > want + 0.02)
				fail_msg("algo %d server %zu share %.3f want %.3f", algos[a], i,
				         share, want);
		}
	}
	lb_pool_free(pool);
}

static void
test_leastconn(void **state)
{
	const struct spec sp[] = {{NULL, 1, 0, 0}, {NULL, 1, 0, 0}, {NULL, 3, 0, 0}};
	struct lb_pool *pool = pool_of(sp, 3, 0);
	struct balance *b = balance_of(LB_BALANCE_LEASTCONN, pool);
	atomic_store(&pool->servers[0].active, 5);
	atomic_store(&pool->servers[1].active, 2);
	atomic_store(&pool->servers[2].active, 11); /* 12/3 = 4 > 3/1 */
	assert_int_equal(pick(b, NULL, 0, NULL)->index, 1);
	atomic_store(&pool->servers[2].active, 7); /* 8/3 < 3/1 */
	assert_int_equal(pick(b, NULL, 0, NULL)->index, 2);
	/* equal load: servers take turns */
	atomic_store(&pool->servers[0].active, 0);
	atomic_store(&pool->servers[1].active, 0);
	atomic_store(&pool->servers[2].active, 2); /* 3/3 == 1/1 */
	unsigned seen = 0;
	for (int i = 0; i < 6; i++) {
		struct lb_server *s = pick(b, NULL, 0, NULL);
		struct lb_server *t = pick(b, NULL, 0, NULL);
		assert_int_not_equal(s->index, t->index);
		seen |= 1u << s->index | 1u << t->index;
	}
	assert_int_equal(seen, 7);
	balance_free(b);
	lb_pool_free(pool);
}

/* connections that stay open spread by weight: 1000 over weights 1..4 */
static void
test_leastconn_weights(void **state)
{
	const struct spec sp[] = {
	    {NULL, 1, 0, 0}, {NULL, 2, 0, 0}, {NULL, 3, 0, 0}, {NULL, 4, 0, 0}};
	struct lb_pool *pool = pool_of(sp, 4, 0);
	struct balance *b = balance_of(LB_BALANCE_LEASTCONN, pool);
	for (int i = 0; i < 1000; i++)
		atomic_fetch_add(&pick(b, NULL, 0, NULL)->active, 1);
	for (size_t i = 0; i < 4; i++)
		assert_in_range(atomic_load(&pool->servers[i].active), 100 * (i + 1) - 1,
		                100 * (i + 1) + 1);
	balance_free(b);
	lb_pool_free(pool);
}

static void
test_slow_start(void **state)
{
	const struct spec sp[] = {{NULL, 10, 0, 0}, {NULL, 10, 0, 0}};
	struct lb_pool *pool = pool_of(sp, 2, 10000);
	struct lb_server *s1 = &pool->servers[1];
	uint64_t t0 = 100 * SEC;
	lb_pool_set_health(pool, s1, LB_HEALTH_DOWN, t0);
	lb_pool_set_health(pool, s1, LB_HEALTH_UP, t0);
	assert_int_equal(lb_server_weight(pool, s1, t0), 1);
	assert_int_equal(lb_server_weight(pool, s1, t0 + SEC), 1);
	assert_int_equal(lb_server_weight(pool, s1, t0 + 5 * SEC), 5);
	assert_int_equal(lb_server_weight(pool, s1, t0 + 20 * SEC), 10);
	const int algos[] = {LB_BALANCE_ROUNDROBIN, LB_BALANCE_RANDOM, LB_BALANCE_SOURCE};
	for (size_t a = 0; a < 3; a++) {
		size_t c1[2] = {0}, c5[2] = {0}, c20[2] = {0};
		count_picks(algos[a], pool, 11000, t0 + SEC, c1);
		count_picks(algos[a], pool, 15000, t0 + 5 * SEC, c5);
		count_picks(algos[a], pool, 10000, t0 + 20 * SEC, c20);
		/* 1:10, 5:10, then equal */
		assert_in_range(c1[1], 700, 1300);
		assert_in_range(c5[1], 4300, 5700);
		assert_in_range(c20[1], 4500, 5500);
	}
	lb_pool_free(pool);
}

/* ---- power of two choices ---- */

static void
test_random_two(void **state)
{
	struct lb_pool *pool = pool_of(NULL, 3, 0);
	atomic_store(&pool->servers[0].active, 10);
	atomic_store(&pool->servers[1].active, 10);
	size_t count[3] = {0};
	count_picks(LB_BALANCE_RANDOM_TWO, pool, 9000, 0, count);
	/* the idle server wins whenever drawn, i.e. in 2 of 3 pairs */
	assert_in_range(count[2], 5700, 6300);
	lb_pool_free(pool);

	pool = pool_of(NULL, 2, 0);
	atomic_store(&pool->servers[0].active, 3);
	atomic_store(&pool->servers[1].active, 2);
	memset(count, 0, sizeof(count));
	count_picks(LB_BALANCE_RANDOM_TWO, pool, 1000, 0, count);
	assert_int_equal(count[1], 1000);
	lb_pool_free(pool);
}

static void
test_ewma(void **state)
{
	struct lb_pool *pool = pool_of(NULL, 2, 0);
	atomic_store(&pool->servers[0].ewma_ns, 10000000);
	atomic_store(&pool->servers[1].ewma_ns, 1000000);
	size_t count[2] = {0};
	count_picks(LB_BALANCE_EWMA, pool, 1000, 0, count);
	assert_int_equal(count[1], 1000);
	/* enough load on the fast one tips the balance: 1ms * 20 > 10ms * 1 */
	atomic_store(&pool->servers[1].active, 19);
	memset(count, 0, sizeof(count));
	count_picks(LB_BALANCE_EWMA, pool, 1000, 0, count);
	assert_int_equal(count[0], 1000);
	/* an unknown server is tried while idle, not flooded while it has requests */
	atomic_store(&pool->servers[1].active, 0);
	atomic_store(&pool->servers[0].ewma_ns, 0);
	memset(count, 0, sizeof(count));
	count_picks(LB_BALANCE_EWMA, pool, 100, 0, count);
	assert_int_equal(count[0], 100);
	atomic_store(&pool->servers[0].active, 1);
	memset(count, 0, sizeof(count));
	count_picks(LB_BALANCE_EWMA, pool, 100, 0, count);
	assert_int_equal(count[1], 100);
	lb_pool_free(pool);
}

/* ---- Maglev ---- */

#define NKEYS 100000

static void
map_keys(struct balance *b, const struct net_addr *keys, unsigned *out)
{
	for (size_t i = 0; i < NKEYS; i++) {
		struct lb_server *s = pick(b, &keys[i], 0, NULL);
		assert_non_null(s);
		out[i] = s->index;
	}
}

static struct net_addr *
random_keys(void)
{
	struct net_addr *keys = calloc(NKEYS, sizeof(*keys));
	assert_non_null(keys);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < NKEYS; i++)
		keys[i] = v4((uint32_t)xorshift(&x));
	return keys;
}

static void
test_maglev_even_and_stable(void **state)
{
	struct net_addr *keys = random_keys();
	unsigned *m1 = calloc(NKEYS, sizeof(*m1)), *m2 = calloc(NKEYS, sizeof(*m2));
	struct lb_pool *pool = pool_of(NULL, 10, 0);
	struct balance *b = balance_of(LB_BALANCE_SOURCE, pool);
	map_keys(b, keys, m1);
	size_t count[10] = {0};
	for (size_t i = 0; i < NKEYS; i++)
		count[m1[i]]++;
	for (size_t i = 0; i < 10; i++)
		assert_in_range(count[i], 9000, 11000);
	/* a rebuild (version bump) and a fresh instance (restart) map every key the same */
	lb_pool_set_weight(pool, &pool->servers[3], 1);
	map_keys(b, keys, m2);
	assert_memory_equal(m1, m2, NKEYS * sizeof(*m1));
	struct balance *b2 = balance_of(LB_BALANCE_SOURCE, pool);
	map_keys(b2, keys, m2);
	assert_memory_equal(m1, m2, NKEYS * sizeof(*m1));
	balance_free(b2);
	balance_free(b);
	lb_pool_free(pool);
	free(m1);
	free(m2);
	free(keys);
}

static void
test_maglev_config_order(void **state)
{
	const char *names[] = {"alpha", "bravo", "charlie", "delta", "echo"};
	struct spec fwd[5] = {{0}}, rev[5] = {{0}};
	for (size_t i = 0; i < 5; i++) {
		fwd[i] = (struct spec){names[i], 1, 0, 0};
		rev[4 - i] = (struct spec){names[i], 1, 0, 0};
	}
	struct lb_pool *p1 = pool_of(fwd, 5, 0), *p2 = pool_of(rev, 5, 0);
	struct balance *b1 = balance_of(LB_BALANCE_SOURCE, p1);
	struct balance *b2 = balance_of(LB_BALANCE_SOURCE, p2);
	for (uint32_t i = 0; i < 5000; i++) {
		struct net_addr c = v4(i * 2654435761u);
		assert_string_equal(pick(b1, &c, 0, NULL)->name, pick(b2, &c, 0, NULL)->name);
	}
	balance_free(b1);
	balance_free(b2);
	lb_pool_free(p1);
	lb_pool_free(p2);
}

static void
test_maglev_removal(void **state)
{
	struct net_addr *keys = random_keys();
	unsigned *m1 = calloc(NKEYS, sizeof(*m1)), *m2 = calloc(NKEYS, sizeof(*m2));
	struct lb_pool *pool = pool_of(NULL, 10, 0);
	struct balance *b = balance_of(LB_BALANCE_SOURCE, pool);
	map_keys(b, keys, m1);
	lb_pool_set_health(pool, &pool->servers[4], LB_HEALTH_DOWN, 0);
	map_keys(b, keys, m2);
	size_t moved = 0, moved_kept = 0, kept = 0;
	for (size_t i = 0; i < NKEYS; i++) {
		assert_int_not_equal(m2[i], 4);
		moved += m1[i] != m2[i];
		kept += m1[i] != 4;
		moved_kept += m1[i] != 4 && m1[i] != m2[i];
	}
	print_message("maglev removal of 1/10: moved %.4f of keys, %.4f of other servers' keys\n",
	              (double)moved / NKEYS, (double)moved_kept / kept);
	assert_true(moved <= NKEYS * (0.10 + 0.05));
	assert_true(moved_kept <= kept * 0.05);
	/* back up: the original mapping returns */
	lb_pool_set_health(pool, &pool->servers[4], LB_HEALTH_UP, 0);
	map_keys(b, keys, m2);
	assert_memory_equal(m1, m2, NKEYS * sizeof(*m1));
	balance_free(b);
	lb_pool_free(pool);
	free(m1);
	free(m2);
	free(keys);
}

static void
test_maglev_weights(void **state)
{
	const struct spec sp[] = {{NULL, 1, 0, 0}, {NULL, 3, 0, 0}};
	struct lb_pool *pool = pool_of(sp, 2, 0);
	size_t count[2] = {0};
	struct balance *b = balance_of(LB_BALANCE_URI, pool);
	char uri[32];
	for (int i = 0; i < 20000; i++) {
		int len = snprintf(uri, sizeof(uri), "/item/%d", i);
		struct balance_key key = {.uri = uri, .uri_len = (size_t)len};
		bool full;
		count[balance_pick(b, &key, 0, NULL, &full)->index]++;
	}
	assert_in_range(count[1], 14000, 16000);
	balance_free(b);
	lb_pool_free(pool);
}

static void
test_hash_keys(void **state)
{
	struct lb_pool *pool = pool_of(NULL, 8, 0);
	struct balance *src = balance_of(LB_BALANCE_SOURCE, pool);
	struct balance *hdr = balance_of(LB_BALANCE_HEADER, pool);
	struct balance *uri = balance_of(LB_BALANCE_URI, pool);
	char buf[64];
	unsigned seen6 = 0, seenh = 0;
	for (int i = 0; i < 500; i++) {
		snprintf(buf, sizeof(buf), "192.0.%d.%d", i / 250, i % 250);
		struct net_addr a4 = addr_of(buf);
		snprintf(buf, sizeof(buf), "::ffff:192.0.%d.%d", i / 250, i % 250);
		struct net_addr mapped = addr_of(buf);
		snprintf(buf, sizeof(buf), "2001:db8::%x", i);
		struct net_addr a6 = addr_of(buf);
		struct lb_server *s = pick(src, &a4, 0, NULL);
		assert_ptr_equal(pick(src, &mapped, 0, NULL), s);
		assert_ptr_equal(pick(src, &a4, 0, NULL), s);
		seen6 |= 1u << pick(src, &a6, 0, NULL)->index;
		/* header absent (and uri absent): the source decides */
		assert_ptr_equal(pick(hdr, &a4, 0, NULL), s);
		assert_ptr_equal(pick(uri, &mapped, 0, NULL), s);
		int len = snprintf(buf, sizeof(buf), "session-%d", i);
		struct balance_key k = {.client = &a4, .header = buf, .header_len = (size_t)len};
		struct lb_server *h = balance_pick(hdr, &k, 0, NULL, NULL);
		k.client = &a6;
		assert_ptr_equal(balance_pick(hdr, &k, 0, NULL, NULL), h);
		seenh |= 1u << h->index;
	}
	assert_int_equal(seen6, 0xff);
	assert_int_equal(seenh, 0xff);
	balance_free(src);
	balance_free(hdr);
	balance_free(uri);
	lb_pool_free(pool);
}

static void
test_hash_probe(void **state)
{
	const struct spec sp[] = {{NULL, 1, 0, 1}, {NULL, 1, 0, 1}, {NULL, 1, 0, 1}};
	struct lb_pool *pool = pool_of(sp, 3, 0);
	struct balance *b = balance_of(LB_BALANCE_SOURCE, pool);
	for (uint32_t i = 0; i < 200; i++) {
		struct net_addr c = v4(i * 2654435761u);
		struct lb_server *s = pick(b, &c, 0, NULL);
		/* its server full: another one, the same one each time */
		atomic_store(&s->active, 1);
		struct lb_server *t = pick(b, &c, 0, NULL);
		assert_non_null(t);
		assert_ptr_not_equal(t, s);
		assert_ptr_equal(pick(b, &c, 0, NULL), t);
		atomic_store(&s->active, 0);
		assert_ptr_equal(pick(b, &c, 0, NULL), s);
	}
	balance_free(b);
	lb_pool_free(pool);
}

/* without an active check an ejected server comes back after the cooldown, also in the table */
static void
test_hash_half_open(void **state)
{
	struct lb_pool *pool = pool_of(NULL, 4, 0);
	pool->passive_errors = 1;
	pool->passive_cooldown_ns = 5 * SEC;
	struct balance *b = balance_of(LB_BALANCE_SOURCE, pool);
	struct lb_server *s2 = &pool->servers[2];
	size_t count[4] = {0};
	count_picks(LB_BALANCE_SOURCE, pool, 4000, SEC, count);
	assert_true(count[2] > 500);
	assert_int_equal(lb_pool_passive(pool, s2, false, 10 * SEC), LB_PASSIVE_EJECTED);
	for (uint32_t i = 0; i < 4000; i++) {
		struct net_addr c = v4(i * 2654435761u);
		assert_ptr_not_equal(pick(b, &c, 11 * SEC, NULL), s2);
	}
	unsigned hits = 0;
	for (uint32_t i = 0; i < 4000; i++) {
		struct net_addr c = v4(i * 2654435761u);
		hits += pick(b, &c, 16 * SEC, NULL) == s2;
	}
	assert_true(hits > 500);
	balance_free(b);
	lb_pool_free(pool);
}

static void
test_new_bad(void **state)
{
	struct lb_pool *pool = pool_of(NULL, 2, 0);
	struct balance *b = NULL;
	assert_int_equal(balance_new(99, pool, 0, &b), -EINVAL);
	assert_int_equal(balance_new(-1, pool, 0, &b), -EINVAL);
	assert_null(b);
	balance_free(NULL);
	lb_pool_free(pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rr_order),
	    cmocka_unit_test(test_rr_scope),
	    cmocka_unit_test(test_rr_leaving_server_keeps_order),
	    cmocka_unit_test(test_weight_zero),
	    cmocka_unit_test(test_backup),
	    cmocka_unit_test(test_drain),
	    cmocka_unit_test(test_exclude),
	    cmocka_unit_test(test_maxconn),
	    cmocka_unit_test(test_shares),
	    cmocka_unit_test(test_leastconn),
	    cmocka_unit_test(test_leastconn_weights),
	    cmocka_unit_test(test_slow_start),
	    cmocka_unit_test(test_random_two),
	    cmocka_unit_test(test_ewma),
	    cmocka_unit_test(test_maglev_even_and_stable),
	    cmocka_unit_test(test_maglev_config_order),
	    cmocka_unit_test(test_maglev_removal),
	    cmocka_unit_test(test_maglev_weights),
	    cmocka_unit_test(test_hash_keys),
	    cmocka_unit_test(test_hash_probe),
	    cmocka_unit_test(test_hash_half_open),
	    cmocka_unit_test(test_new_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
