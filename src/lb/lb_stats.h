/*
 * Runtime view of the balancer for operators: servers with state and counters as a text
 * table, JSON and Prometheus text, and the stats listener serving GET /stats (JSON) and
 * GET /metrics (Prometheus). The pool list is asked for on every request, so a reload that
 * replaced the pools is seen at once.
 */
#pragma once

#include "core/buf.h"
#include "core/ev.h"
#include "core/net.h"
#include "lb_pool.h"

#include <stddef.h>

struct lb_view {
	struct lb_pool *const *pools;
	size_t n;
};

/* Fills out with the pools currently running; called on the loop's thread. */
typedef void (*lb_view_cb)(void *data, struct lb_view *out);

/* One line per server: listener server address health admin weight active total failures
 * 5xx last-check, with a header line. */
int lb_stats_table(const struct lb_view *v, uint64_t now_ns, struct buf *out);
/* {"listeners":[{"name":..,"servers":[{"name":..,"address":..,"health":"up",...}]}]} */
int lb_stats_json(const struct lb_view *v, uint64_t now_ns, struct buf *out);
/* rampart_lb_server_up{listener=,server=} 1, rampart_lb_server_requests_total, ... */
int lb_stats_prometheus(const struct lb_view *v, uint64_t now_ns, struct buf *out);

struct lb_stats_server;
/* Serves the two pages on addr (port 0 picks one; see lb_stats_local). */
int lb_stats_listen(struct ev_loop *loop, const struct net_addr *addr, lb_view_cb view, void *data,
                    struct lb_stats_server **out);
int lb_stats_local(const struct lb_stats_server *s, struct net_addr *out);
void lb_stats_server_free(struct lb_stats_server *s);
