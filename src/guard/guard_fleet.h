/*
 * Bans shared across a fleet through PostgreSQL (libpq, asynchronous on the event loop): each
 * guard appends its own bans and unbans to one history table, LISTENs for its peers' rows and
 * hands them to the daemon in id order. The database is a convenience, never a dependency:
 * while it is unreachable nothing blocks, the module reconnects with backoff, and on reconnect
 * it pushes what this machine decided meanwhile (asked of the daemon by sequence number; the
 * table's UNIQUE (machine, seq) makes a second push a no-op) and catches up on its peers' rows
 * after the last id the daemon has seen.
 *
 * Schema (created and migrated by the module; rampart_guard_schema holds the version):
 *   rampart_guard_history (id bigserial, machine, seq, action 'ban'|'unban',
 *                          kind 'ban'|'permanent', prefix, reason, created_ms, expires_ms,
 *                          UNIQUE (machine, seq)); an insert trigger NOTIFYs rampart_guard.
 *   rampart_guard_bans (machine, prefix, kind, reason, created_ms, expires_ms,
 *                       PRIMARY KEY (machine, prefix)): the bans in force, kept by the same
 *                       trigger (a ban upserts, an unban deletes).
 * Every value is sent as a query parameter, never spliced into SQL text.
 */
#pragma once

#include "core/ev.h"
#include "core/net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUARD_FLEET_NAME_MAX 64
#define GUARD_FLEET_TEXT_MAX 128 /* reason; as GUARD_REASON_MAX */
#define GUARD_FLEET_PREFIX_MAX 64
#define GUARD_FLEET_QUEUE_MAX 100000
#define GUARD_FLEET_TIMEOUT_MS 5000

enum guard_fleet_action {
	GUARD_FLEET_BAN = 1,
	GUARD_FLEET_UNBAN = 2,
};

/* One row of the history as text from the database: the daemon validates it (a peer's row is
 * untrusted input: prefix and everything else are checked before anything is applied). */
struct guard_fleet_event {
	int64_t id;  /* the fleet's id (0 for an event being published) */
	int64_t seq; /* the deciding machine's own sequence number (its local history id) */
	char machine[GUARD_FLEET_NAME_MAX];
	enum guard_fleet_action action;
	bool permanent;                      /* kind 'permanent' (expires_ms 0) */
	char prefix[GUARD_FLEET_PREFIX_MAX]; /* as stored: "192.0.2.7/32", "2001:db8::/64" */
	char reason[GUARD_FLEET_TEXT_MAX];
	int64_t created_ms;
	int64_t expires_ms; /* 0: permanent */
};

struct guard_fleet_cfg {
	const char *conninfo; /* libpq connection string (TLS, passfile: as libpq offers) */
	const char *name;     /* this machine */
	size_t queue_max;     /* publish queue bound; 0: GUARD_FLEET_QUEUE_MAX */
	unsigned timeout_ms;  /* connect and per-query limit; 0: GUARD_FLEET_TIMEOUT_MS */
};

struct guard_fleet_ops {
	/* A peer's row (machine != ours), in id order; every row once per process life after
	 * last_id (the daemon persists the last id it has handled). A row whose text does not
	 * fit the fields, or whose action, kind or numbers do not parse, comes with prefix ""
	 * (never truncated): the daemon rejects and logs it. Callbacks must not free f. */
	void (*event)(const struct guard_fleet_event *e, void *data);
	/* After the rows of one fetch were handed over: the daemon applies them in one
	 * transaction (10,000 bans must not cost 10,000 nftables transactions). May be NULL. */
	void (*batch_end)(void *data);
	/* This machine's decisions with seq > after, oldest first, at most max; returns how many
	 * were written to out (0: none left). Called after each (re)connect to push the backlog. */
	size_t (*pending)(int64_t after, struct guard_fleet_event *out, size_t max, void *data);
	/* The connection came up (why NULL) or went down (why says why). */
	void (*state)(bool up, const char *why, void *data);
};

struct guard_fleet_stats {
	uint64_t received;  /* peers' rows handed to the daemon */
	uint64_t published; /* our rows written */
	uint64_t reconnects;
	uint64_t dropped; /* publishes dropped: disconnected, or a failed insert */
	uint64_t errors;  /* failed connections and queries */
	size_t queued;    /* publishes waiting */
	bool connected;   /* schema ready, backlog pushed */
};

struct guard_fleet;

/* Starts connecting (never blocks); last_id: the last peer row the daemon has handled. */
int guard_fleet_new(struct ev_loop *loop, const struct guard_fleet_cfg *cfg,
                    const struct guard_fleet_ops *ops, void *data, int64_t last_id,
                    struct guard_fleet **out);
void guard_fleet_free(struct guard_fleet *f);
/* Queues e (seq set by the caller; machine is always cfg->name) for the database; until the
 * connection is ready (connected, schema made, backlog pushed) it is dropped here and pushed
 * from ops->pending after the reconnect. 0, -EINVAL for an event without a prefix or with an
 * unknown action, or -ENOBUFS when the queue is full. */
int guard_fleet_publish(struct guard_fleet *f, const struct guard_fleet_event *e);
void guard_fleet_stats(const struct guard_fleet *f, struct guard_fleet_stats *out);

/*
 * One-shot, blocking helpers for the commands (`guard ban --fleet`, `guard list --fleet`):
 * connect, make sure the schema exists, do one thing, disconnect. err gets libpq's message.
 */
int guard_fleet_publish_once(const struct guard_fleet_cfg *cfg, const struct guard_fleet_event *e,
                             char *err, size_t errlen);
typedef int (*guard_fleet_row_cb)(const struct guard_fleet_event *e, void *data);
/* The bans in force in the fleet (rampart_guard_bans, expired ones left out), every machine. */
int guard_fleet_list_once(const struct guard_fleet_cfg *cfg, int64_t now_ms, guard_fleet_row_cb cb,
                          void *data, char *err, size_t errlen);
