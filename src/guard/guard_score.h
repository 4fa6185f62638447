/*
 * Per-source danger in a sliding window: each event adds its danger; a source whose danger in
 * the last window reaches the threshold is to be banned. Sources are keyed by their ban prefix
 * (an IPv6 attacker rotating through its /64 is one source). Memory is bounded: at most
 * max_sources are tracked (the least recently active one is forgotten first) and each keeps
 * its latest GUARD_SCORE_EVENTS events.
 */
#pragma once

#include "core/net.h"

#include <stddef.h>
#include <stdint.h>

#define GUARD_SCORE_EVENTS 16

struct guard_score_opts {
	uint64_t threshold;
	uint64_t window_ms;
	size_t max_sources;
};

struct guard_score;

int guard_score_new(const struct guard_score_opts *o, struct guard_score **out);
void guard_score_free(struct guard_score *s);
/* Takes new threshold and window; the sources and their events stay. */
void guard_score_set(struct guard_score *s, const struct guard_score_opts *o);

/* Adds danger for key at now: 1 when the window's sum reached the threshold (the source's
 * events are then forgotten), 0 when not, -ENOMEM. *sum gets the sum with this event. */
int guard_score_add(struct guard_score *s, const struct net_cidr *key, unsigned danger,
                    uint64_t now_ms, uint64_t *sum);
void guard_score_forget(struct guard_score *s, const struct net_cidr *key);
/* Drops the sources with nothing left in the window. */
void guard_score_expire(struct guard_score *s, uint64_t now_ms);
size_t guard_score_count(const struct guard_score *s);
