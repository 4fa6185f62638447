/*
 * Weighted least connections: the server with the lowest (active + 1) / weight, so an idle
 * heavy server is preferred over an idle light one. Ties go round-robin from a cursor, so
 * equally loaded servers alternate instead of the first one taking every quiet-time request.
 */
#include "balance_ops.h"

static uint64_t
balance_leastconn_load(const struct lb_server *s)
{
	int64_t a = atomic_load_explicit(&s->active, memory_order_relaxed);
	return a > 0 ? (uint64_t)a + 1 : 1;
}

static struct lb_server *
balance_leastconn_pick(struct balance *b, const struct balance_key *key, uint64_t now_ns,
                       const uint64_t *exclude, bool *all_full)
{
	size_t n = balance_candidates(b, now_ns, exclude, all_full);
	if (n == 0)
		return NULL;
	size_t npool = b->pool->n, best = 0, best_dist = npool;
	uint64_t best_load = 0, best_w = 1;
	for (size_t i = 0; i < n; i++) {
		const struct balance_cand *c = &b->cand[i];
		uint64_t load = balance_leastconn_load(c->s);
		size_t idx = c->s->index;
		size_t dist = idx >= b->cursor ? idx - b->cursor : idx + npool - b->cursor;
		/* load/w < best_load/best_w, without division */
		uint64_t lhs = load * best_w, rhs = best_load * c->w;
		if (i == 0 || lhs < rhs || (lhs == rhs && dist < best_dist)) {
			best = i;
			best_dist = dist;
			best_load = load;
			best_w = c->w;
		}
	}
	struct lb_server *s = b->cand[best].s;
	b->cursor = s->index + 1 < npool ? s->index + 1 : 0;
	return s;
}

const struct balance_ops balance_leastconn_ops = {
    .pick = balance_leastconn_pick,
};
