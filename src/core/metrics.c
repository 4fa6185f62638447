#include "metrics.h"

#include "cleanup.h"
#include "reqsrv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define METRICS_VALUES_MAX 256
#define METRICS_COLLECTORS_MAX 32
/* Scrapers are few; more connections than this are refused at once. */
#define METRICS_CONNS_MAX 32
#define METRICS_PAGES_MAX 8
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_collector {
	metrics_collect_cb cb;
	void *data;
};

struct metrics_page {
	const char *path;
	const char *content_type;
	metrics_collect_cb cb;
	void *data;
};

struct metrics {
	struct metrics_value *values[METRICS_VALUES_MAX];
	size_t n_values;
	struct metrics_collector collectors[METRICS_COLLECTORS_MAX];
	size_t n_collectors;
	struct metrics_page pages[METRICS_PAGES_MAX];
	size_t n_pages;
	struct reqsrv *srv;
};

int
metrics_new(struct metrics **out)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	*out = m;
	return 0;
}

void
metrics_free(struct metrics *m)
{
	if (!m)
		return;
	reqsrv_free(m->srv);
	free(m);
}

int
metrics_register(struct metrics *m, struct metrics_value *v)
{
	if (m->n_values >= METRICS_VALUES_MAX)
		return -ENOSPC;
	m->values[m->n_values++] = v;
	return 0;
}

int
metrics_add_collector(struct metrics *m, metrics_collect_cb cb, void *data)
{
	if (m->n_collectors >= METRICS_COLLECTORS_MAX)
		return -ENOSPC;
	m->collectors[m->n_collectors++] = (struct metrics_collector){cb, data};
	return 0;
}

int
metrics_render(struct metrics *m, struct buf *out)
{
	int r = 0;
	for (size_t i = 0; r >= 0 && i < m->n_values; i++) {
		const struct metrics_value *v = m->values[i];
		r = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", v->name, v->help,
		               v->name, v->kind == METRICS_COUNTER ? "counter" : "gauge", v->name,
		               (long long)atomic_load_explicit(&v->value, memory_order_relaxed));
	}
	for (size_t i = 0; r >= 0 && i < m->n_collectors; i++)
		r = m->collectors[i].cb(out, m->collectors[i].data);
	return r < 0 ? r : 0;
}

int
metrics_add_page(struct metrics *m, const char *path, const char *content_type,
                 metrics_collect_cb cb, void *data)
{
	if (!strcmp(path, "/metrics"))
		return -EEXIST;
	for (size_t i = 0; i < m->n_pages; i++)
		if (!strcmp(m->pages[i].path, path))
			return -EEXIST;
	if (m->n_pages >= METRICS_PAGES_MAX)
		return -ENOSPC;
	m->pages[m->n_pages++] = (struct metrics_page){path, content_type, cb, data};
	return 0;
}

/* True when the request target is path itself, with or without a query string. */
static bool
metrics_target_is(const char *target, size_t len, const char *path)
{
	size_t n = strlen(path);
	return len > n && !memcmp(target, path, n) && (target[n] == ' ' || target[n] == '?');
}

/* Renders the page the target names into body; NULL when there is none. */
static const char *
metrics_render_target(struct metrics *m, const char *target, size_t len, struct buf *body, int *r)
{
	if (metrics_target_is(target, len, "/metrics")) {
		*r = metrics_render(m, body);
		return METRICS_CONTENT_TYPE;
	}
	for (size_t i = 0; i < m->n_pages; i++) {
		const struct metrics_page *p = &m->pages[i];
		if (metrics_target_is(target, len, p->path)) {
			*r = p->cb(body, p->data);
			return p->content_type;
		}
	}
	return NULL;
}

/* The status line and body for a request head; GET/HEAD of /metrics or an added page. */
static int
metrics_respond(struct metrics *m, const char *head, size_t len, struct buf *out)
{
	_cleanup_buf_ struct buf body = BUF_INIT(METRICS_BODY_MAX);
	const char *status = "200 OK";
	const char *type = METRICS_CONTENT_TYPE;
	const char *line_end = memchr(head, '\n', len);
	size_t line_len = line_end ? (size_t)(line_end - head) : len;
	bool head_only = line_len > 5 && memcmp(head, "HEAD ", 5) == 0;
	bool get = line_len > 4 && memcmp(head, "GET ", 4) == 0;
	size_t skip = head_only ? 5 : 4;
	int r = 0;

	if (!get && !head_only)
		status = "405 Method Not Allowed";
	else if (!(type = metrics_render_target(m, head + skip, line_len - skip, &body, &r)))
		status = "404 Not Found";
	else if (r < 0)
		status = "500 Internal Server Error";
	if (status[0] != '2') {
		type = METRICS_CONTENT_TYPE;
		buf_reset(&body);
		buf_printf(&body, "%s\n", status);
	}
	return buf_printf(out,
	                  "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	                  status, type, body.len, head_only ? "" : buf_cstr(&body));
}

/* A request head ends with an empty line; until then, and at EOF, there is nothing to answer. */
static size_t
metrics_head_complete(const char *in, size_t len, bool eof)
{
	const char *end = memmem(in, len, "\r\n\r\n", 4);
	if (end)
		return (size_t)(end - in) + 4;
	end = memmem(in, len, "\n\n", 2);
	return end ? (size_t)(end - in) + 2 : 0;
}

static void
metrics_answer(void *data, char *req, size_t len, bool too_big, struct buf *out)
{
	if (too_big)
		buf_append_str(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
		                    "Content-Length: 0\r\nConnection: close\r\n\r\n");
	else if (metrics_respond(data, req, len, out) < 0)
		buf_append_str(out, "HTTP/1.1 500 Internal Server Error\r\n"
		                    "Content-Length: 0\r\n\r\n");
}

int
metrics_listen(struct metrics *m, struct ev_loop *loop, const struct net_addr *addr,
               uint64_t timeout_ms)
{
	const struct reqsrv_cfg cfg = {
	    .in_max = METRICS_REQUEST_MAX,
	    .out_max = METRICS_BODY_MAX + 512,
	    .conns_max = METRICS_CONNS_MAX,
	    .timeout_ms = timeout_ms,
	    .complete = metrics_head_complete,
	    .answer = metrics_answer,
	    .data = m,
	};
	int fd = net_listen_tcp(addr, 0, 64);
	return fd < 0 ? fd : reqsrv_start(loop, fd, &cfg, &m->srv);
}

int
metrics_local(const struct metrics *m, struct net_addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (!m->srv)
		return -ENOTCONN;
	if (getsockname(reqsrv_fd(m->srv), (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	return net_addr_from_sockaddr((struct sockaddr *)&ss, len, out);
}
