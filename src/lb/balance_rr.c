/*
 * Smooth weighted round-robin, nginx's algorithm: every step raises each server's current
 * weight by its weight and lowers the winner's by the total, which interleaves heavy servers
 * with light ones (5,1,1 gives a a b a c a a) instead of sending bursts.
 *
 * The steps run over every server of the candidates' kind (primaries, or backups when no
 * primary is usable) that has a weight, whether it may take this request or not; a winner
 * that may not (down, drained, full, already tried) is stepped past. So a server that leaves
 * is skipped without disturbing the order of the others, and one that comes back takes its
 * old places again; nginx steps over the candidates only, which repeats a server when another
 * leaves (a b c with b gone after a b: c c a c).
 *
 * With balance-scope listener (the default) the current weights are the pool's, shared by
 * every worker under a mutex, so that the order is exact whichever worker took the
 * connection (HAProxy keeps one position per backend too); with worker, each balancer keeps
 * its own and the workers' sequences interleave.
 */
#include "balance_ops.h"

#include <pthread.h>

/* Steps past servers that may not take the request before settling among those that may. */
#define BALANCE_RR_MAX_STEPS 64

/* One step over the servers of one kind: the winner's index. cand holds the candidates in
 * server order with their (slow-start) weights; *is_cand says whether the winner is one. */
static unsigned
balance_rr_step(struct balance *b, int64_t *cw, size_t n, bool backup, bool *is_cand)
{
	const struct lb_pool *pool = b->pool;
	int64_t best_cw = INT64_MIN, total = 0;
	unsigned best = 0;
	size_t c = 0;
	for (size_t i = 0; i < pool->n; i++) {
		const struct lb_server *s = &pool->servers[i];
		bool cand = c < n && b->cand[c].s == s;
		unsigned w =
		    cand ? b->cand[c++].w : atomic_load_explicit(&s->weight, memory_order_relaxed);
		if (s->backup != backup || w == 0)
			continue;
		total += w;
		/* strictly greater: the first maximum wins, as in nginx */
		if ((cw[i] += w) > best_cw) {
			best_cw = cw[i];
			best = (unsigned)i;
			*is_cand = cand;
		}
	}
	cw[best] -= total;
	return best;
}

/* nginx's step over the candidates alone: for when non-candidates keep winning. */
static unsigned
balance_rr_step_cand(struct balance *b, int64_t *cw, size_t n)
{
	int64_t best_cw = INT64_MIN;
	unsigned best = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned idx = b->cand[i].s->index;
		if ((cw[idx] += b->cand[i].w) > best_cw) {
			best_cw = cw[idx];
			best = idx;
		}
	}
	cw[best] -= (int64_t)b->total;
	return best;
}

static struct lb_server *
balance_rr_pick(struct balance *b, const struct balance_key *key, uint64_t now_ns,
                const uint64_t *exclude, bool *all_full)
{
	size_t n = balance_candidates(b, now_ns, exclude, all_full);
	if (n == 0)
		return NULL;
	struct lb_pool *pool = b->pool;
	int64_t *cw = pool->rr_cw ? pool->rr_cw : b->cw;
	bool backup = b->cand[0].s->backup, is_cand = false;
	unsigned best = 0;
	if (pool->rr_cw)
		pthread_mutex_lock(&pool->rr_mu);
	for (int i = 0; i < BALANCE_RR_MAX_STEPS && !is_cand; i++)
		best = balance_rr_step(b, cw, n, backup, &is_cand);
	if (!is_cand)
		best = balance_rr_step_cand(b, cw, n);
	if (pool->rr_cw)
		pthread_mutex_unlock(&pool->rr_mu);
	return &pool->servers[best];
}

const struct balance_ops balance_rr_ops = {
    .pick = balance_rr_pick,
};
