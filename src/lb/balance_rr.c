/*
 * Smooth weighted round-robin, nginx's algorithm: every pick raises each candidate's
 * current weight by its weight and lowers the winner's by the total, which interleaves
 * heavy servers with light ones (5,1,1 gives a a b a c a a) instead of sending bursts.
 */
#include "balance_ops.h"

static struct lb_server *
balance_rr_pick(struct balance *b, const struct balance_key *key, uint64_t now_ns,
                const uint64_t *exclude, bool *all_full)
{
	size_t n = balance_candidates(b, now_ns, exclude, all_full);
	if (n == 0)
		return NULL;
	int64_t *cw = b->cw;
	int64_t best_cw = INT64_MIN;
	unsigned best = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned idx = b->cand[i].s->index;
		int64_t c = cw[idx] += b->cand[i].w;
		/* strictly greater: the first maximum wins, as in nginx */
		if (c > best_cw) {
			best_cw = c;
			best = idx;
		}
	}
	cw[best] -= (int64_t)b->total;
	return &b->pool->servers[best];
}

const struct balance_ops balance_rr_ops = {
    .pick = balance_rr_pick,
};
