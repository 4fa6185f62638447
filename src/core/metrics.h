/*
 * Prometheus text exposition: a registry of counters and gauges, collector callbacks for
 * labelled series, and a small HTTP/1.0-style server (GET /metrics, one response per
 * connection) on an event loop. Counters are atomics so worker threads may bump them.
 */
#pragma once

#include "buf.h"
#include "ev.h"
#include "net.h"

#include <stdatomic.h>
#include <stdint.h>

/* Largest exposition served; a bigger one answers 500. */
#define METRICS_BODY_MAX (1024 * 1024)
/* Longest request head read before answering 431. */
#define METRICS_REQUEST_MAX 8192

enum metrics_kind {
	METRICS_COUNTER,
	METRICS_GAUGE,
};

struct metrics_value {
	const char *name; /* rampart_<part>_<what>[_total] */
	const char *help;
	enum metrics_kind kind;
	_Atomic int64_t value;
};

/* Appends whole families ("# HELP", "# TYPE", samples) to out; returns 0 or -errno. */
typedef int (*metrics_collect_cb)(struct buf *out, void *data);

struct metrics;

int metrics_new(struct metrics **out);
/* Stops serving, closes every connection. NULL-safe. */
void metrics_free(struct metrics *m);
/* v stays owned by the caller and must outlive m. */
int metrics_register(struct metrics *m, struct metrics_value *v);
int metrics_add_collector(struct metrics *m, metrics_collect_cb cb, void *data);
/* The exposition text, as served. */
int metrics_render(struct metrics *m, struct buf *out);
/*
 * Serves another page at path ("/stats": also "/stats?query") with cb's output as the body,
 * so a part can expose a JSON view without a second HTTP server. path and content_type are
 * not copied and must outlive m. -EEXIST for "/metrics" or a path already added.
 */
int metrics_add_page(struct metrics *m, const char *path, const char *content_type,
                     metrics_collect_cb cb, void *data);

/*
 * Listens on addr (port 0 picks one; read it back with metrics_local) and serves on loop.
 * A client that has not sent a whole request within timeout_ms is disconnected.
 */
int metrics_listen(struct metrics *m, struct ev_loop *loop, const struct net_addr *addr,
                   uint64_t timeout_ms);
int metrics_local(const struct metrics *m, struct net_addr *out);

static inline void
metrics_add(struct metrics_value *v, int64_t n)
{
	atomic_fetch_add_explicit(&v->value, n, memory_order_relaxed);
}

static inline void
metrics_set(struct metrics_value *v, int64_t n)
{
	atomic_store_explicit(&v->value, n, memory_order_relaxed);
}
