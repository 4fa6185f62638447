/*
 * Balancing algorithms. An instance belongs to one worker thread and one pool, so algorithm
 * state (round-robin position, Maglev table, random generator) needs no locking; shared
 * server state is read through the pool's atomics. Backup servers are candidates only when no
 * non-backup server is usable.
 */
#pragma once

#include "lb_pool.h"

#include <stddef.h>
#include <stdint.h>

/* What hash-based algorithms hash; NULL/0 members are absent. */
struct balance_key {
	const struct net_addr *client; /* source */
	const char *uri;               /* uri: the path, query excluded by the caller */
	size_t uri_len;
	const char *header; /* header: the named header's value */
	size_t header_len;
};

struct balance;

/* algo is enum lb_balance. */
int balance_new(int algo, struct lb_pool *pool, uint64_t seed, struct balance **out);
void balance_free(struct balance *b);

/*
 * Chooses a usable server with a free slot (lb_server_has_slot), skipping those whose bit is
 * set in exclude (servers already tried for this request; may be NULL, LB_SERVERS_MAX bits).
 * NULL when no server is usable; *all_full is set when usable servers exist but none has a
 * slot (the caller queues).
 */
struct lb_server *balance_pick(struct balance *b, const struct balance_key *key, uint64_t now_ns,
                               const uint64_t *exclude, bool *all_full);
