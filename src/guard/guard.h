/*
 * rampart guard: log events → per-source danger → bans in nftables (through the privileged
 * writer), kept in the store; the kernel rate rule; who is never banned.
 */
#pragma once

#include "core/dns.h"
#include "core/ev.h"
#include "core/metrics.h"
#include "guard_config.h"

#include <stddef.h>
#include <stdint.h>

struct guard;

/* Starts on loop: restores the stored bans, loads the blocklists, follows the sources. why
 * gets a reason on failure. */
int guard_start(struct ev_loop *loop, const struct guard_cfg *cfg, const struct dns_options *dns,
                struct metrics *metrics, struct guard **out, char *why, size_t whylen);
/* Applies an already validated config; on failure the running one stays whole. */
int guard_reload(struct guard *g, const struct guard_cfg *cfg, const struct dns_options *dns,
                 char *why, size_t whylen);
void guard_stop(struct guard *g);
