/*
 * What balance.c shares with the per-algorithm files: the instance, the ops table each
 * algorithm fills, and the candidate scan every algorithm starts from.
 */
#pragma once

#include "balance.h"
#include "lb_pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A server that may take this request now, with its current (slow-start) weight. */
struct balance_cand {
	struct lb_server *s;
	unsigned w;
};

struct balance_ops {
	int (*init)(struct balance *b); /* NULL: nothing beyond the common state */
	void (*fini)(struct balance *b);
	struct lb_server *(*pick)(struct balance *b, const struct balance_key *key, uint64_t now_ns,
	                          const uint64_t *exclude, bool *all_full);
};

struct balance_hash_table;
struct balance_rr;

struct balance {
	const struct balance_ops *ops;
	struct lb_pool *pool;
	int algo;
	uint64_t rng;              /* random generator state */
	size_t cursor;             /* leastconn: where tie-breaking starts */
	int64_t *cw;               /* roundrobin: current_weight per server index */
	struct balance_cand *cand; /* scratch, pool->n entries, so picking never allocates */
	uint64_t total;            /* sum of the weights in cand after balance_candidates */
	struct balance_hash_table *hash;
	struct balance_rr *rr; /* roundrobin: its turn orders */
};

extern const struct balance_ops balance_rr_ops;
extern const struct balance_ops balance_random_ops;
extern const struct balance_ops balance_random_two_ops;
extern const struct balance_ops balance_random_ewma_ops;
extern const struct balance_ops balance_leastconn_ops;
extern const struct balance_ops balance_hash_ops;

static inline bool
balance_excluded(const uint64_t *exclude, unsigned idx)
{
	return exclude && (exclude[idx / 64] >> (idx % 64) & 1);
}

/*
 * Fills b->cand with the servers that may take the request: usable non-backup servers, or
 * usable backups when no non-backup server is usable, minus excluded and full ones.
 * Returns their count and sets b->total; when 0, *all_full tells whether usable ones exist but
 * are all full.
 */
size_t balance_candidates(struct balance *b, uint64_t now_ns, const uint64_t *exclude,
                          bool *all_full);
/* Whether s itself may take the request (the hash lookup checks its table's choice). */
bool balance_fits(const struct balance *b, const struct lb_server *s, uint64_t now_ns,
                  const uint64_t *exclude);
/* The balancer's random stream (splitmix64). */
uint64_t balance_random_next(struct balance *b);
/* A weighted-random index into cand[0..n), n > 0, total = sum of their weights. */
size_t balance_random_index(struct balance *b, const struct balance_cand *cand, size_t n,
                            uint64_t total);
