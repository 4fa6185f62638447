/*
 * The load balancer as a whole, run from the main thread's event loop: worker threads that
 * proxy, health checks, the ctl socket and the stats listener. A reload builds a new
 * generation, keeps the listening sockets of addresses still configured, binds the new ones
 * (failing without any change if one cannot be bound) and hands it to the workers; sessions
 * in flight finish on the generation they started with.
 */
#pragma once

#include "core/ev.h"
#include "core/metrics.h"
#include "lb_config.h"

struct lb;

/* cfg is copied. The servers' series are also added to metrics (the process's metrics.listen
 * endpoint) when it is not NULL; it must outlive the lb's loop turns. */
int lb_start(struct ev_loop *loop, const struct lb_cfg *cfg, struct metrics *metrics,
             struct lb **out);
/* On failure the running configuration stays. */
int lb_reload(struct lb *lb, const struct lb_cfg *cfg);
/* Stops and frees everything. NULL-safe. */
void lb_stop(struct lb *lb);
