/*
 * Smooth weighted round-robin, nginx's algorithm: every step raises each server's current
 * weight by its weight and lowers the winner's by the total, which interleaves heavy servers
 * with light ones (5,1,1 gives a a b a c a a) instead of sending bursts.
 *
 * The steps depend on the weights alone, so each balancer writes them out once as a turn
 * order over every weighted server of a kind (primaries, backups), one period long, and a
 * pick takes the next turn: with balance-scope listener (the default) from a position every
 * worker of the listener shares, one atomic add, so the order is exact whichever worker took
 * the connection (HAProxy keeps one position per backend too) and no worker ever waits for
 * another (a mutex held by a preempted thread stalled the others for a time slice); with
 * worker, from a position of its own.
 *
 * A turn whose server may not take the request (down, drained, full, already tried) is
 * stepped past, so a server that leaves is skipped without disturbing the order of the
 * others, and one that comes back takes its old places; nginx steps over the candidates
 * only, which repeats a server when another leaves (a b c with b gone after a b: c c a c).
 * A server in slow start takes its turn with the chance its ramped weight has of its full
 * weight. Weights whose order would be too long to write out fall back to nginx's steps over
 * the candidates, per worker.
 */
#include "balance_ops.h"

#include <errno.h>
#include <stdlib.h>

/* Turns stepped past before settling among the candidates; the longest order kept, and the
 * most work (turns x servers) spent writing one. */
#define BALANCE_RR_MAX_STEPS 64
#define BALANCE_RR_SEQ_MAX 65535u
#define BALANCE_RR_BUILD_MAX (1u << 22)

struct balance_rr {
	uint64_t version; /* pool->version the orders were written at */
	bool built;
	uint16_t *seq[2]; /* server indexes in turn order: [0] primaries, [1] backups */
	unsigned len[2];  /* 0: none kept (no weighted server, or too long) */
	unsigned *w;      /* each server's weight then */
	int64_t *cw;      /* scratch for writing an order */
	uint64_t *mark;   /* == stamp: a candidate of the current pick */
	unsigned *wcur;   /* a candidate's current (slow-start) weight */
	uint64_t stamp;
	_Atomic uint64_t pos[2]; /* the position with balance-scope worker */
};

static unsigned
balance_rr_gcd(unsigned a, unsigned b)
{
	while (b) {
		unsigned t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* One period of smooth weighted round-robin over the weighted servers of one kind. */
static int
balance_rr_write(struct balance *b, bool backup)
{
	struct balance_rr *rr = b->rr;
	const struct lb_pool *pool = b->pool;
	unsigned g = 0, n = 0;
	uint64_t total = 0;
	for (size_t i = 0; i < pool->n; i++)
		if (pool->servers[i].backup == backup && rr->w[i]) {
			g = balance_rr_gcd(rr->w[i], g);
			n++;
		}
	for (size_t i = 0; g && i < pool->n; i++)
		if (pool->servers[i].backup == backup)
			total += rr->w[i] / g;
	rr->len[backup] = 0;
	if (!total || total > BALANCE_RR_SEQ_MAX || total * n > BALANCE_RR_BUILD_MAX)
		return 0;
	uint16_t *seq = realloc(rr->seq[backup], total * sizeof(*seq));
	if (!seq)
		return -ENOMEM;
	rr->seq[backup] = seq;
	for (size_t i = 0; i < pool->n; i++)
		rr->cw[i] = 0;
	for (uint64_t t = 0; t < total; t++) {
		int64_t best_cw = INT64_MIN;
		size_t best = 0;
		for (size_t i = 0; i < pool->n; i++) {
			if (pool->servers[i].backup != backup || !rr->w[i])
				continue;
			/* strictly greater: the first maximum wins, as in nginx */
			if ((rr->cw[i] += rr->w[i] / g) > best_cw) {
				best_cw = rr->cw[i];
				best = i;
			}
		}
		rr->cw[best] -= (int64_t)total;
		seq[t] = (uint16_t)best;
	}
	rr->len[backup] = (unsigned)total;
	return 0;
}

/* Writes the orders again when a weight changed since (pool->version tells of a change). */
static void
balance_rr_refresh(struct balance *b)
{
	struct balance_rr *rr = b->rr;
	uint64_t v = atomic_load_explicit(&b->pool->version, memory_order_acquire);
	if (rr->built && v == rr->version)
		return;
	bool same = rr->built;
	for (size_t i = 0; i < b->pool->n; i++) {
		unsigned w =
		    atomic_load_explicit(&b->pool->servers[i].weight, memory_order_relaxed);
		same &= rr->w[i] == w;
		rr->w[i] = w;
	}
	rr->version = v;
	rr->built = true;
	/* a failed allocation leaves no order: candidates-only steps until the next change */
	if (!same && balance_rr_write(b, false) < 0)
		rr->len[0] = 0;
	if (!same && balance_rr_write(b, true) < 0)
		rr->len[1] = 0;
}

/* nginx's step over the candidates alone, per worker: for orders not kept. */
static unsigned
balance_rr_step_cand(struct balance *b, size_t n)
{
	int64_t best_cw = INT64_MIN;
	unsigned best = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned idx = b->cand[i].s->index;
		if ((b->cw[idx] += b->cand[i].w) > best_cw) {
			best_cw = b->cw[idx];
			best = idx;
		}
	}
	b->cw[best] -= (int64_t)b->total;
	return best;
}

/* The next turn that a candidate takes, or -1 after BALANCE_RR_MAX_STEPS turns. */
static int
balance_rr_turn(struct balance *b, bool backup)
{
	struct balance_rr *rr = b->rr;
	_Atomic uint64_t *pos = b->pool->rr_shared ? &b->pool->rr_pos[backup] : &rr->pos[backup];
	for (int i = 0; i < BALANCE_RR_MAX_STEPS; i++) {
		uint64_t p = atomic_fetch_add_explicit(pos, 1, memory_order_relaxed);
		unsigned idx = rr->seq[backup][p % rr->len[backup]];
		if (rr->mark[idx] != rr->stamp)
			continue;
		if (rr->wcur[idx] < rr->w[idx] &&
		    (balance_random_next(b) >> 32) % rr->w[idx] >= rr->wcur[idx])
			continue; /* slow start: this turn declined */
		return (int)idx;
	}
	return -1;
}

static struct lb_server *
balance_rr_pick(struct balance *b, const struct balance_key *key, uint64_t now_ns,
                const uint64_t *exclude, bool *all_full)
{
	size_t n = balance_candidates(b, now_ns, exclude, all_full);
	if (n == 0)
		return NULL;
	struct balance_rr *rr = b->rr;
	bool backup = b->cand[0].s->backup;
	balance_rr_refresh(b);
	int idx = -1;
	if (rr->len[backup]) {
		rr->stamp++;
		for (size_t i = 0; i < n; i++) {
			rr->mark[b->cand[i].s->index] = rr->stamp;
			rr->wcur[b->cand[i].s->index] = b->cand[i].w;
		}
		idx = balance_rr_turn(b, backup);
	}
	if (idx < 0)
		idx = (int)balance_rr_step_cand(b, n);
	return &b->pool->servers[idx];
}

static int
balance_rr_init(struct balance *b)
{
	size_t n = b->pool->n;
	struct balance_rr *rr = calloc(1, sizeof(*rr));
	if (!rr)
		return -ENOMEM;
	b->rr = rr;
	rr->w = calloc(n, sizeof(*rr->w));
	rr->cw = calloc(n, sizeof(*rr->cw));
	rr->mark = calloc(n, sizeof(*rr->mark));
	rr->wcur = calloc(n, sizeof(*rr->wcur));
	return rr->w && rr->cw && rr->mark && rr->wcur ? 0 : -ENOMEM;
}

static void
balance_rr_fini(struct balance *b)
{
	struct balance_rr *rr = b->rr;
	if (!rr)
		return;
	free(rr->seq[0]);
	free(rr->seq[1]);
	free(rr->w);
	free(rr->cw);
	free(rr->mark);
	free(rr->wcur);
	free(rr);
	b->rr = NULL;
}

const struct balance_ops balance_rr_ops = {
    .init = balance_rr_init,
    .fini = balance_rr_fini,
    .pick = balance_rr_pick,
};
