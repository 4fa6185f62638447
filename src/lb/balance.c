/*
 * Balancer instances: one ops table per algorithm behind balance_pick, and the candidate
 * rule they all share (usable primaries, else usable backups; minus excluded and full).
 */
#include "balance.h"

#include "balance_ops.h"
#include "lb_config.h"

#include <errno.h>
#include <stdlib.h>

static const struct balance_ops *
balance_ops_of(int algo)
{
	switch (algo) {
	case LB_BALANCE_ROUNDROBIN:
		return &balance_rr_ops;
	case LB_BALANCE_RANDOM:
		return &balance_random_ops;
	case LB_BALANCE_LEASTCONN:
		return &balance_leastconn_ops;
	case LB_BALANCE_SOURCE:
	case LB_BALANCE_URI:
	case LB_BALANCE_HEADER:
		return &balance_hash_ops;
	case LB_BALANCE_RANDOM_TWO:
		return &balance_random_two_ops;
	case LB_BALANCE_EWMA:
		return &balance_random_ewma_ops;
	default:
		return NULL;
	}
}

/* splitmix64 of the seed, so that nearby seeds (thread numbers) give unrelated streams */
static uint64_t
balance_seed(uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? z : 1;
}

int
balance_new(int algo, struct lb_pool *pool, uint64_t seed, struct balance **out)
{
	const struct balance_ops *ops = balance_ops_of(algo);
	if (!ops || !pool || pool->n == 0 || pool->n > LB_SERVERS_MAX)
		return -EINVAL;
	struct balance *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->ops = ops;
	b->pool = pool;
	b->algo = algo;
	b->rng = balance_seed(seed);
	b->cw = calloc(pool->n, sizeof(*b->cw));
	b->cand = calloc(pool->n, sizeof(*b->cand));
	int r = b->cw && b->cand ? 0 : -ENOMEM;
	if (r == 0 && ops->init)
		r = ops->init(b);
	if (r < 0) {
		balance_free(b);
		return r;
	}
	*out = b;
	return 0;
}

void
balance_free(struct balance *b)
{
	if (!b)
		return;
	if (b->ops->fini)
		b->ops->fini(b);
	free(b->cw);
	free(b->cand);
	free(b);
}

struct lb_server *
balance_pick(struct balance *b, const struct balance_key *key, uint64_t now_ns,
             const uint64_t *exclude, bool *all_full)
{
	bool full = false;
	struct lb_server *s = b->ops->pick(b, key, now_ns, exclude, &full);
	if (all_full)
		*all_full = s ? false : full;
	return s;
}

/*
 * The common case of lb_server_usable inline (ready, weighted, up): this runs for every
 * server on every request. Anything else, such as a passive ejection's half-open retry, is
 * the pool's to decide.
 */
static inline bool
balance_usable(const struct lb_pool *pool, const struct lb_server *s, unsigned weight,
               uint64_t now_ns)
{
	if (weight && atomic_load_explicit(&s->health, memory_order_relaxed) == LB_HEALTH_UP &&
	    atomic_load_explicit(&s->admin, memory_order_relaxed) == LB_ADMIN_READY)
		return true;
	return lb_server_usable(pool, s, now_ns);
}

/* One pass over the servers of one kind (backup or not); returns how many were usable. */
static size_t
balance_scan(struct balance *b, bool backup, uint64_t now_ns, const uint64_t *exclude,
             size_t *n_out, size_t *full_out)
{
	const struct lb_pool *pool = b->pool;
	size_t usable = 0, n = 0, full = 0;
	uint64_t total = 0;
	for (size_t i = 0; i < pool->n; i++) {
		struct lb_server *s = &pool->servers[i];
		unsigned w = atomic_load_explicit(&s->weight, memory_order_relaxed);
		if (s->backup != backup || !balance_usable(pool, s, w, now_ns))
			continue;
		usable++;
		if (balance_excluded(exclude, (unsigned)i))
			continue;
		if (s->maxconn && !lb_server_has_slot(s)) {
			full++;
			continue;
		}
		if (pool->slow_start_ns)
			w = lb_server_weight(pool, s, now_ns);
		b->cand[n].s = s;
		b->cand[n++].w = w;
		total += w;
	}
	b->total = total;
	*n_out = n;
	*full_out = full;
	return usable;
}

size_t
balance_candidates(struct balance *b, uint64_t now_ns, const uint64_t *exclude, bool *all_full)
{
	size_t n, full;
	if (!balance_scan(b, false, now_ns, exclude, &n, &full))
		balance_scan(b, true, now_ns, exclude, &n, &full);
	*all_full = n == 0 && full > 0;
	return n;
}

bool
balance_fits(const struct balance *b, const struct lb_server *s, uint64_t now_ns,
             const uint64_t *exclude)
{
	return !balance_excluded(exclude, s->index) && lb_server_usable(b->pool, s, now_ns) &&
	       lb_server_has_slot(s);
}
