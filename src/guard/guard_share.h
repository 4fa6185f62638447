/*
 * The daemon's side of the fleet (guard.share): this machine's bans and unbans go to the
 * fleet (guard_fleet), its peers' come back, are checked like any untrusted input (address,
 * kind, machine, whitelist, trusted logins), recorded in the local store with the peer's name
 * and applied through the privileged writer in one transaction per batch. What the database
 * missed while it was down is pushed from the store's shared history on reconnect.
 */
#pragma once

#include "core/buf.h"
#include "core/ev.h"
#include "guard_config.h"
#include "guard_fleet.h"
#include "guard_store.h"
#include "guard_writer.h"

#include <stdbool.h>

/* True when a ban of net must not be applied here: it covers a whitelisted, loopback, own or
 * trusted (logged-in) address. */
typedef bool (*guard_share_exempt_fn)(const struct net_cidr *net, void *data);

struct guard_share;

/* cfg->share.enabled must be set; store and writer outlive the share. */
int guard_share_start(struct ev_loop *loop, const struct guard_cfg *cfg, struct guard_store *store,
                      struct guard_writer *writer, guard_share_exempt_fn exempt, void *data,
                      struct guard_share **out);
void guard_share_stop(struct guard_share *s);
/* This machine's name in the fleet. */
const char *guard_share_name(const struct guard_share *s);
/* Tells the fleet of a ban or unban this machine recorded (seq: its store history id). */
void guard_share_publish(struct guard_share *s, const struct guard_ban *b, bool unban, int64_t seq);
/* Prometheus series of the fleet. */
int guard_share_collect(struct buf *out, struct guard_share *s);

/*
 * What this machine's sequence numbers in the fleet start from: the state file's first use, in
 * seconds, times 2^32, plus the history id. A machine whose state file was lost and made anew
 * numbers on above everything it published before, so the fleet's UNIQUE (machine, seq) never
 * swallows a new ban.
 */
int guard_share_seq_base(struct guard_store *store, int64_t *base);
/* This machine's name in the fleet: share.name, or the host name. */
int guard_share_machine(const struct guard_cfg *cfg, char *buf, size_t len);
/* The fleet's row for a ban or unban of the store (seq: its history id), as name decided it. */
void guard_share_event(const char *name, const struct guard_ban *b, bool unban, int64_t seq,
                       struct guard_fleet_event *e);
