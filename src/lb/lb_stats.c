/*
 * Operator views of the pools. Each server's atomics are read once into a snapshot so one
 * row (or JSON object) is self-consistent even while workers keep counting.
 */
#include "lb_stats.h"

#include "core/cleanup.h"
#include "core/json.h"
#include "core/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A client that has not sent its request within this is dropped. */
#define LB_STATS_TIMEOUT_MS 5000

struct lb_stats_snap {
	const char *listener, *name;
	char address[NET_ADDR_STRLEN];
	int health, admin;
	uint64_t weight, effective;
	bool backup;
	uint64_t active, total, failures, responses[6], bytes_in, bytes_out, transitions;
	char check[sizeof(((struct lb_server *)0)->check_last)];
};

static uint64_t
lb_stats_load(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void
lb_stats_take(const struct lb_pool *p, struct lb_server *s, uint64_t now_ns,
              struct lb_stats_snap *out)
{
	int64_t active = atomic_load_explicit(&s->active, memory_order_relaxed);
	*out = (struct lb_stats_snap){.listener = p->listener, .name = s->name};
	if (net_addr_format(&s->addr, true, out->address, sizeof(out->address)) < 0)
		memcpy(out->address, "?", 2);
	out->health = atomic_load_explicit(&s->health, memory_order_relaxed);
	out->admin = atomic_load_explicit(&s->admin, memory_order_relaxed);
	out->weight = atomic_load_explicit(&s->weight, memory_order_relaxed);
	out->effective = lb_server_weight(p, s, now_ns);
	out->backup = s->backup;
	out->active = active > 0 ? (uint64_t)active : 0;
	out->total = lb_stats_load(&s->total);
	out->failures = lb_stats_load(&s->failures);
	for (size_t i = 0; i < ARRAY_SIZE(out->responses); i++)
		out->responses[i] = lb_stats_load(&s->responses[i]);
	out->bytes_in = lb_stats_load(&s->bytes_in);
	out->bytes_out = lb_stats_load(&s->bytes_out);
	out->transitions = lb_stats_load(&s->transitions);
	/* the checker may be rewriting it: copy bounded and terminate */
	memcpy(out->check, s->check_last, sizeof(out->check));
	out->check[sizeof(out->check) - 1] = '\0';
}

/* ---- text table ---- */

enum {
	LB_COL_LISTENER,
	LB_COL_SERVER,
	LB_COL_ADDRESS,
	LB_COL_HEALTH,
	LB_COL_ADMIN,
	LB_COL_WEIGHT,
	LB_COL_ACTIVE,
	LB_COL_TOTAL,
	LB_COL_FAILURES,
	LB_COL_5XX,
	LB_COL_CHECK,
	LB_COLS,
};

static const char *const lb_stats_headers[LB_COLS] = {
    "LISTENER", "SERVER", "ADDRESS",  "HEALTH", "ADMIN", "WEIGHT",
    "ACTIVE",   "TOTAL",  "FAILURES", "5XX",    "CHECK",
};

struct lb_stats_row {
	const char *cell[LB_COLS];
	char num[LB_COLS][24];
	struct lb_stats_snap snap;
};

static void
lb_stats_row_num(struct lb_stats_row *r, int col, uint64_t v)
{
	snprintf(r->num[col], sizeof(r->num[col]), "%" PRIu64, v);
	r->cell[col] = r->num[col];
}

/* The weight column shows the slow-start ramp as "effective/configured" while it lasts. */
static void
lb_stats_row_fill(struct lb_stats_row *r)
{
	const struct lb_stats_snap *s = &r->snap;
	r->cell[LB_COL_LISTENER] = s->listener;
	r->cell[LB_COL_SERVER] = s->name;
	r->cell[LB_COL_ADDRESS] = s->address;
	r->cell[LB_COL_HEALTH] = lb_health_name(s->health);
	r->cell[LB_COL_ADMIN] = lb_admin_name(s->admin);
	if (s->effective != s->weight)
		snprintf(r->num[LB_COL_WEIGHT], sizeof(r->num[0]), "%" PRIu64 "/%" PRIu64,
		         s->effective, s->weight);
	else
		snprintf(r->num[LB_COL_WEIGHT], sizeof(r->num[0]), "%" PRIu64, s->weight);
	r->cell[LB_COL_WEIGHT] = r->num[LB_COL_WEIGHT];
	lb_stats_row_num(r, LB_COL_ACTIVE, s->active);
	lb_stats_row_num(r, LB_COL_TOTAL, s->total);
	lb_stats_row_num(r, LB_COL_FAILURES, s->failures);
	lb_stats_row_num(r, LB_COL_5XX, s->responses[5]);
	r->cell[LB_COL_CHECK] = s->check[0] ? s->check : "-";
}

/* Cells separated by two spaces; the last one is not padded, so lines have no trailing blanks. */
static int
lb_stats_row_print(const char *const *cell, const size_t *width, struct buf *out)
{
	int r = 0;
	for (int c = 0; r >= 0 && c < LB_COLS - 1; c++)
		r = buf_printf(out, "%-*s  ", (int)width[c], cell[c]);
	if (r >= 0)
		r = buf_printf(out, "%s\n", cell[LB_COLS - 1]);
	return r;
}

static size_t
lb_stats_count(const struct lb_view *v)
{
	size_t n = 0;
	for (size_t i = 0; i < v->n; i++)
		n += v->pools[i]->n;
	return n;
}

static void
lb_stats_widths(const struct lb_stats_row *rows, size_t n, size_t *width)
{
	for (int c = 0; c < LB_COLS; c++)
		width[c] = strlen(lb_stats_headers[c]);
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < LB_COLS; c++) {
			size_t len = strlen(rows[i].cell[c]);
			width[c] = len > width[c] ? len : width[c];
		}
}

int
lb_stats_table(const struct lb_view *v, uint64_t now_ns, struct buf *out)
{
	size_t n = lb_stats_count(v), k = 0, width[LB_COLS];
	_cleanup_free_ struct lb_stats_row *rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < v->n; i++)
		for (size_t j = 0; j < v->pools[i]->n; j++, k++) {
			lb_stats_take(v->pools[i], &v->pools[i]->servers[j], now_ns, &rows[k].snap);
			lb_stats_row_fill(&rows[k]);
		}
	lb_stats_widths(rows, n, width);
	int r = lb_stats_row_print(lb_stats_headers, width, out);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = lb_stats_row_print(rows[i].cell, width, out);
	return r < 0 ? r : 0;
}

/* ---- JSON ---- */

static int
lb_stats_json_counters(const struct lb_stats_snap *s, struct buf *out)
{
	return buf_printf(out,
	                  "\"active\":%" PRIu64 ",\"total\":%" PRIu64 ",\"failures\":%" PRIu64
	                  ",\"responses\":{\"1xx\":%" PRIu64 ",\"2xx\":%" PRIu64 ",\"3xx\":%" PRIu64
	                  ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64 ",\"other\":%" PRIu64
	                  "},\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
	                  ",\"transitions\":%" PRIu64 ",\"check\":",
	                  s->active, s->total, s->failures, s->responses[1], s->responses[2],
	                  s->responses[3], s->responses[4], s->responses[5], s->responses[0],
	                  s->bytes_in, s->bytes_out, s->transitions);
}

/* One server object; "check" is null until the checker has a result. */
static int
lb_stats_json_server(const struct lb_stats_snap *s, struct buf *out)
{
	int r = buf_append_str(out, "{\"name\":");
	if (r >= 0)
		r = json_string(out, s->name);
	if (r >= 0)
		r = buf_printf(out, ",\"address\":\"%s\",\"health\":\"%s\",\"admin\":\"%s\"",
		               s->address, lb_health_name(s->health), lb_admin_name(s->admin));
	if (r >= 0)
		r = buf_printf(
		    out, ",\"weight\":%" PRIu64 ",\"effective_weight\":%" PRIu64 ",\"backup\":%s,",
		    s->weight, s->effective, s->backup ? "true" : "false");
	if (r >= 0)
		r = lb_stats_json_counters(s, out);
	if (r >= 0)
		r = s->check[0] ? json_string(out, s->check) : buf_append_str(out, "null");
	if (r >= 0)
		r = buf_append_str(out, "}");
	return r;
}

static int
lb_stats_json_pool(const struct lb_pool *p, uint64_t now_ns, struct buf *out)
{
	struct lb_stats_snap snap;
	int r = buf_append_str(out, "{\"name\":");
	if (r >= 0)
		r = json_string(out, p->listener);
	if (r >= 0)
		r = buf_append_str(out, ",\"servers\":[");
	for (size_t i = 0; r >= 0 && i < p->n; i++) {
		lb_stats_take(p, &p->servers[i], now_ns, &snap);
		r = buf_append_str(out, i ? "," : "");
		if (r >= 0)
			r = lb_stats_json_server(&snap, out);
	}
	if (r >= 0)
		r = buf_append_str(out, "]}");
	return r;
}

int
lb_stats_json(const struct lb_view *v, uint64_t now_ns, struct buf *out)
{
	int r = buf_append_str(out, "{\"listeners\":[");
	for (size_t i = 0; r >= 0 && i < v->n; i++) {
		r = buf_append_str(out, i ? "," : "");
		if (r >= 0)
			r = lb_stats_json_pool(v->pools[i], now_ns, out);
	}
	if (r >= 0)
		r = buf_append_str(out, "]}\n");
	return r < 0 ? r : 0;
}

/* ---- Prometheus ---- */

/* A family: one sample per server, or one per value of an extra label. The value is the
 * snapshot's uint64_t at field, unless get computes it. */
struct lb_stats_family {
	const char *name, *help, *type;
	const char *label;
	const char *const *values;
	size_t n_values;
	uint64_t (*get)(const struct lb_stats_snap *s, size_t i);
	size_t field;
};

#define LB_STATS_FIELD(f) NULL, offsetof(struct lb_stats_snap, f)

static uint64_t
lb_stats_get_up(const struct lb_stats_snap *s, size_t i)
{
	return s->health == LB_HEALTH_UP && s->admin == LB_ADMIN_READY;
}

static uint64_t
lb_stats_get_admin(const struct lb_stats_snap *s, size_t i)
{
	return s->admin == (int)i;
}

/* values order 1xx..5xx, other; responses[] keeps other at [0] */
static uint64_t
lb_stats_get_responses(const struct lb_stats_snap *s, size_t i)
{
	return s->responses[(i + 1) % 6];
}

static const char *const lb_stats_states[] = {"ready", "drain", "maint"};
static const char *const lb_stats_codes[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};

static const struct lb_stats_family lb_stats_families[] = {
    {"rampart_lb_server_up", "1 when the server is healthy and ready for new clients.", "gauge",
     NULL, NULL, 1, lb_stats_get_up, 0},
    {"rampart_lb_server_admin_state", "Administrative state (lb ctl): 1 for the current one.",
     "gauge", "state", lb_stats_states, ARRAY_SIZE(lb_stats_states), lb_stats_get_admin, 0},
    {"rampart_lb_server_weight", "Configured weight.", "gauge", NULL, NULL, 1,
     LB_STATS_FIELD(weight)},
    {"rampart_lb_server_effective_weight", "Weight in use, ramping up during slow start.", "gauge",
     NULL, NULL, 1, LB_STATS_FIELD(effective)},
    {"rampart_lb_server_active", "Connections or requests in flight.", "gauge", NULL, NULL, 1,
     LB_STATS_FIELD(active)},
    {"rampart_lb_server_requests_total", "Requests or connections sent to the server.", "counter",
     NULL, NULL, 1, LB_STATS_FIELD(total)},
    {"rampart_lb_server_failures_total", "Connect errors, resets and timeouts.", "counter", NULL,
     NULL, 1, LB_STATS_FIELD(failures)},
    {"rampart_lb_server_responses_total", "HTTP responses by status class.", "counter", "code",
     lb_stats_codes, ARRAY_SIZE(lb_stats_codes), lb_stats_get_responses, 0},
    {"rampart_lb_server_bytes_in_total", "Bytes received from the server.", "counter", NULL, NULL,
     1, LB_STATS_FIELD(bytes_in)},
    {"rampart_lb_server_bytes_out_total", "Bytes sent to the server.", "counter", NULL, NULL, 1,
     LB_STATS_FIELD(bytes_out)},
    {"rampart_lb_server_transitions_total", "Health changes between up and down.", "counter", NULL,
     NULL, 1, LB_STATS_FIELD(transitions)},
};

/* A label value per the exposition format: backslash, double quote and newline escaped. */
static int
lb_stats_label(struct buf *out, const char *v)
{
	int r = 0;
	for (; r >= 0 && *v; v++) {
		if (*v == '\\')
			r = buf_append_str(out, "\\\\");
		else if (*v == '"')
			r = buf_append_str(out, "\\\"");
		else if (*v == '\n')
			r = buf_append_str(out, "\\n");
		else
			r = buf_append(out, v, 1);
	}
	return r;
}

static int
lb_stats_sample(const struct lb_stats_family *f, const struct lb_stats_snap *s, size_t i,
                struct buf *out)
{
	int r = buf_printf(out, "%s{listener=\"", f->name);
	if (r >= 0)
		r = lb_stats_label(out, s->listener);
	if (r >= 0)
		r = buf_append_str(out, "\",server=\"");
	if (r >= 0)
		r = lb_stats_label(out, s->name);
	if (r >= 0 && f->label)
		r = buf_printf(out, "\",%s=\"%s", f->label, f->values[i]);
	if (r >= 0)
		r = buf_printf(out, "\"} %" PRIu64 "\n",
		               f->get ? f->get(s, i)
		                      : *(const uint64_t *)((const char *)s + f->field));
	return r;
}

static int
lb_stats_family_print(const struct lb_stats_family *f, const struct lb_view *v, uint64_t now_ns,
                      struct buf *out)
{
	struct lb_stats_snap snap;
	int r = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
	for (size_t i = 0; r >= 0 && i < v->n; i++)
		for (size_t j = 0; r >= 0 && j < v->pools[i]->n; j++) {
			lb_stats_take(v->pools[i], &v->pools[i]->servers[j], now_ns, &snap);
			for (size_t k = 0; r >= 0 && k < f->n_values; k++)
				r = lb_stats_sample(f, &snap, k, out);
		}
	return r;
}

int
lb_stats_prometheus(const struct lb_view *v, uint64_t now_ns, struct buf *out)
{
	int r = 0;
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(lb_stats_families); i++)
		r = lb_stats_family_print(&lb_stats_families[i], v, now_ns, out);
	return r < 0 ? r : 0;
}

/* ---- stats listener: core's metrics server with a /stats page ---- */

struct lb_stats_server {
	struct metrics *m;
	struct ev_loop *loop;
	lb_view_cb view;
	void *data;
};

static int
lb_stats_collect_metrics(struct buf *out, void *data)
{
	struct lb_stats_server *s = data;
	struct lb_view v = {0};
	s->view(s->data, &v);
	return lb_stats_prometheus(&v, ev_now_ns(s->loop), out);
}

static int
lb_stats_collect_json(struct buf *out, void *data)
{
	struct lb_stats_server *s = data;
	struct lb_view v = {0};
	s->view(s->data, &v);
	return lb_stats_json(&v, ev_now_ns(s->loop), out);
}

int
lb_stats_listen(struct ev_loop *loop, const struct net_addr *addr, lb_view_cb view, void *data,
                struct lb_stats_server **out)
{
	struct lb_stats_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct lb_stats_server){.loop = loop, .view = view, .data = data};
	int r = metrics_new(&s->m);
	if (r >= 0)
		r = metrics_add_collector(s->m, lb_stats_collect_metrics, s);
	if (r >= 0)
		r = metrics_add_page(s->m, "/stats", "application/json", lb_stats_collect_json, s);
	if (r >= 0)
		r = metrics_listen(s->m, loop, addr, LB_STATS_TIMEOUT_MS);
	if (r < 0) {
		lb_stats_server_free(s);
		return r;
	}
	*out = s;
	return 0;
}

int
lb_stats_local(const struct lb_stats_server *s, struct net_addr *out)
{
	return metrics_local(s->m, out);
}

void
lb_stats_server_free(struct lb_stats_server *s)
{
	if (!s)
		return;
	metrics_free(s->m);
	free(s);
}
