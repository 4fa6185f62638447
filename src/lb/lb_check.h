/*
 * Active health checks of one pool, run on one event loop (the main thread's): every
 * interval (spread by jitter) each server gets a tcp connect, an HTTP request or a send/expect
 * exchange bounded by the timeout. rise consecutive successes bring a down server up, fall
 * consecutive failures take an up server down; each transition is logged once
 * ("server down listener=L server=S reason=..."), and s->check_last says what the last check saw.
 * A server in maintenance is not checked. Servers ejected by passive health come back
 * through the same rise rule.
 */
#pragma once

#include "core/ev.h"
#include "lb_config.h"
#include "lb_pool.h"

struct lb_check;

/* cfg->type LB_CHECK_NONE: nothing to run, *out is NULL and 0 is returned. */
int lb_check_start(struct ev_loop *loop, struct lb_pool *pool, const struct lb_check_cfg *cfg,
                   struct lb_check **out);
/* Stops every probe in flight and closes its socket. NULL-safe. */
void lb_check_free(struct lb_check *c);
