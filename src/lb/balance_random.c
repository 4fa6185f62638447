/*
 * Random picks from a per-instance generator (no shared state between threads):
 * weighted random; random-two, the power of two choices (Mitzenmacher), where the less
 * loaded of two weighted-random servers wins; and ewma, the same with peak-EWMA latency
 * times load as the cost (Finagle/linkerd), so slow servers get fewer requests.
 */
#include "balance_ops.h"

/*
 * An unknown latency with requests in flight costs as much as a very slow server, so a new
 * server is probed by one request rather than flooded before its first answer.
 */
#define BALANCE_RANDOM_EWMA_PENALTY_NS 1000000000ull

/* splitmix64: small, fast, and passes BigCrush; quality beyond that buys nothing here */
uint64_t
balance_random_next(struct balance *b)
{
	uint64_t z = (b->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

size_t
balance_random_index(struct balance *b, const struct balance_cand *cand, size_t n, uint64_t total)
{
	/* multiply-shift instead of %: unbiased enough for total < 2^32 and no division */
	uint64_t r = ((balance_random_next(b) >> 32) * total) >> 32;
	for (size_t i = 0; i + 1 < n; i++) {
		if (r < cand[i].w)
			return i;
		r -= cand[i].w;
	}
	return n - 1;
}

static struct lb_server *
balance_random_pick(struct balance *b, const struct balance_key *key, uint64_t now_ns,
                    const uint64_t *exclude, bool *all_full)
{
	size_t n = balance_candidates(b, now_ns, exclude, all_full);
	if (n == 0)
		return NULL;
	return b->cand[balance_random_index(b, b->cand, n, b->total)].s;
}

/* Two distinct weighted-random candidates: the second is drawn with the first set aside. */
static size_t
balance_random_two(struct balance *b, size_t n, size_t *second)
{
	uint64_t total = b->total;
	size_t i = balance_random_index(b, b->cand, n, total);
	struct balance_cand first = b->cand[i];
	/* move the first to the end, draw from the rest, then restore the order */
	b->cand[i] = b->cand[n - 1];
	b->cand[n - 1] = first;
	size_t j = balance_random_index(b, b->cand, n - 1, total - first.w);
	b->cand[n - 1] = b->cand[i];
	b->cand[i] = first;
	*second = j == i ? n - 1 : j;
	return i;
}

static uint64_t
balance_random_active(const struct lb_server *s)
{
	int64_t a = atomic_load_explicit(&s->active, memory_order_relaxed);
	return a > 0 ? (uint64_t)a : 0;
}

/* Whether x beats y: fewer in flight, then lower (active + 1) / weight. */
static bool
balance_random_two_less(const struct balance_cand *x, const struct balance_cand *y)
{
	uint64_t ax = balance_random_active(x->s), ay = balance_random_active(y->s);
	if (ax != ay)
		return ax < ay;
	return (ax + 1) * y->w < (ay + 1) * x->w;
}

static struct lb_server *
balance_random_two_pick(struct balance *b, const struct balance_key *key, uint64_t now_ns,
                        const uint64_t *exclude, bool *all_full)
{
	size_t n = balance_candidates(b, now_ns, exclude, all_full), j;
	if (n <= 1)
		return n ? b->cand[0].s : NULL;
	size_t i = balance_random_two(b, n, &j);
	return balance_random_two_less(&b->cand[j], &b->cand[i]) ? b->cand[j].s : b->cand[i].s;
}

static double
balance_random_ewma_cost(const struct balance_cand *c)
{
	uint64_t a = balance_random_active(c->s);
	uint64_t e = atomic_load_explicit(&c->s->ewma_ns, memory_order_relaxed);
	if (e == 0 && a > 0)
		e = BALANCE_RANDOM_EWMA_PENALTY_NS;
	return ((double)e + 1) * (double)(a + 1) / c->w;
}

static struct lb_server *
balance_random_ewma_pick(struct balance *b, const struct balance_key *key, uint64_t now_ns,
                         const uint64_t *exclude, bool *all_full)
{
	size_t n = balance_candidates(b, now_ns, exclude, all_full), j;
	if (n <= 1)
		return n ? b->cand[0].s : NULL;
	size_t i = balance_random_two(b, n, &j);
	double ci = balance_random_ewma_cost(&b->cand[i]),
	       cj = balance_random_ewma_cost(&b->cand[j]);
	return cj < ci ? b->cand[j].s : b->cand[i].s;
}

const struct balance_ops balance_random_ops = {
    .pick = balance_random_pick,
};

const struct balance_ops balance_random_two_ops = {
    .pick = balance_random_two_pick,
};

const struct balance_ops balance_random_ewma_ops = {
    .pick = balance_random_ewma_pick,
};
