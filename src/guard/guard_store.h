/*
 * Ban state in SQLite (WAL): one row per offender (prefix) with its ban count, the current
 * ban's expiry and reason, and a history of every ban and unban. Everything that touches the
 * database is behind this module, so that a fleet store (PostgreSQL) can replace it later.
 * Times are Unix milliseconds (wall clock: bans must keep their expiry across reboots).
 */
#pragma once

#include "core/net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUARD_REASON_MAX 128

struct guard_store;

enum guard_origin {
	GUARD_ORIGIN_AUTO = 0,   /* the scorer (log events) */
	GUARD_ORIGIN_MANUAL = 1, /* rampart guard ban */
};

#define GUARD_STORE_MACHINE_MAX 64

struct guard_ban {
	struct net_cidr net; /* the banned prefix: /32, /128, or the IPv6 ban prefix */
	int64_t created_ms;  /* when this ban started */
	int64_t expires_ms;  /* 0: permanent */
	uint32_t count;      /* bans of this prefix so far, this one included */
	enum guard_origin origin;
	char reason[GUARD_REASON_MAX]; /* NUL-terminated; any other bytes, stored as text */
	bool unban;                    /* each_history only: this entry is an unban */
	char
	    machine[GUARD_STORE_MACHINE_MAX]; /* the fleet peer that decided it; "": this machine */
	bool share;                           /* history: this machine's decision, for the fleet */
	int64_t seq; /* history: the row's id (this machine's sequence number in the fleet) */
};

/*
 * Opens or creates path (mode 0600, its parent directory 0750 if missing; WAL, busy timeout for
 * concurrent commands). -EBADMSG for a file that is not a valid store (not SQLite, corrupt,
 * foreign tables), -EPROTO for a schema newer than this build knows, else -errno.
 */
int guard_store_open(const char *path, struct guard_store **out);
void guard_store_close(struct guard_store *s);

/* Records b as the prefix's current ban (count as given) and appends it to the history. */
int guard_store_ban(struct guard_store *s, const struct guard_ban *b);
/* The same; *seq gets the history row's id. */
int guard_store_ban_seq(struct guard_store *s, const struct guard_ban *b, int64_t *seq);
/* Ends the prefix's ban and forgets its count (an admin's unban is a fresh start); 1 when it
 * was banned (active at now_ms), 0 when not. A forgotten row, even an expired one, appends a
 * manual unban entry to the history carrying the count it had. */
/* machine (a fleet peer's unban) lifts only that peer's ban; NULL or "": this machine's own
 * decision, which lifts any. share marks the history entry for the fleet; *seq (may be NULL)
 * gets its id, 0 when nothing was written. */
int guard_store_unban(struct guard_store *s, const struct net_cidr *net, int64_t now_ms,
                      const char *machine, bool share, int64_t *seq);
/* The prefix's row, expired or not (its count matters for escalation): 1 found, 0 none. */
int guard_store_get(struct guard_store *s, const struct net_cidr *net, struct guard_ban *out);

/* Calls cb for every ban active at now_ms (permanent, or expiring after now), oldest first;
 * a non-zero return from cb stops the walk and is returned. */
typedef int (*guard_store_cb)(const struct guard_ban *b, void *data);
int guard_store_each_active(struct guard_store *s, int64_t now_ms, guard_store_cb cb, void *data);
/* The prefix's history, oldest first; created_ms is when the entry was recorded. An unban
 * entry has unban set, expires_ms 0 and reason "unban". */
int guard_store_each_history(struct guard_store *s, const struct net_cidr *net, guard_store_cb cb,
                             void *data);
/* Inserts many bans in one transaction (restores, imports), each also in the history; all or
 * none. */
int guard_store_ban_many(struct guard_store *s, const struct guard_ban *v, size_t n);

/* Records that a source logged in and is trusted until until_ms; rows already over at now_ms
 * are dropped. A restart keeps the admin exempt. */
int guard_store_trust(struct guard_store *s, const struct net_addr *a, int64_t until_ms,
                      int64_t now_ms);
typedef int (*guard_store_trust_cb)(const struct net_addr *a, int64_t until_ms, void *data);
/* Every source still trusted at now_ms; a non-zero return from cb stops the walk. */
int guard_store_each_trusted(struct guard_store *s, int64_t now_ms, guard_store_trust_cb cb,
                             void *data);

/* This machine's shared history entries (bans and unbans) with id > after, oldest first, at
 * most max: what the fleet has not been told yet. */
int guard_store_each_pending(struct guard_store *s, int64_t after, size_t max, guard_store_cb cb,
                             void *data);
/* Small persistent values (the fleet's cursor): 1 and *value when set, 0 when not. */
int guard_store_kv_get(struct guard_store *s, const char *key, int64_t *value);
int guard_store_kv_set(struct guard_store *s, const char *key, int64_t value);
