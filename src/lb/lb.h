/*
 * The load balancer as a whole, run from the main thread's event loop: worker threads that
 * proxy, health checks, the ctl socket and the stats listener. A reload builds a new
 * generation, keeps the listening sockets of addresses still configured, binds the new ones,
 * opens a moved stats listener or ctl socket, and only then hands it to the workers and closes
 * what is no longer used: a failure at any step changes nothing. Sessions in flight finish on
 * the generation they started with. A listening address that another socket holds is refused,
 * although the workers share theirs through SO_REUSEPORT.
 */
#pragma once

#include "core/ev.h"
#include "core/metrics.h"
#include "lb_config.h"

#include <sys/types.h>

struct lb;

/* cfg is copied. The servers' series are also added to metrics (the process's metrics.listen
 * endpoint) when it is not NULL; it must outlive the lb's loop turns. */
int lb_start(struct ev_loop *loop, const struct lb_cfg *cfg, struct metrics *metrics,
             struct lb **out);
/* On failure (logged) the running configuration stays whole. */
int lb_reload(struct lb *lb, const struct lb_cfg *cfg);
/* Gives the ctl socket file to uid:gid, for a process about to drop to that user. */
int lb_give_ctl(struct lb *lb, uid_t uid, gid_t gid);
/* Stops and frees everything. NULL-safe. */
void lb_stop(struct lb *lb);
