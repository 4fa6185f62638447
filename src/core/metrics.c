#include "metrics.h"

#include "cleanup.h"

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

struct metrics_conn {
	struct metrics *m;
	struct metrics_conn *prev, *next;
	struct ev_io io;
	struct ev_timer timer;
	struct buf in;
	struct buf out;
	size_t sent;
};

struct metrics {
	struct metrics_value *values[METRICS_VALUES_MAX];
	size_t n_values;
	struct metrics_collector collectors[METRICS_COLLECTORS_MAX];
	size_t n_collectors;
	struct metrics_page pages[METRICS_PAGES_MAX];
	size_t n_pages;
	struct ev_loop *loop;
	struct ev_io listener;
	uint64_t timeout_ms;
	struct metrics_conn *conns;
	size_t n_conns;
};

int
metrics_new(struct metrics **out)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->listener.fd = -1;
	*out = m;
	return 0;
}

static void
metrics_conn_close(struct metrics_conn *c)
{
	struct metrics *m = c->m;
	ev_io_stop(m->loop, &c->io);
	ev_timer_stop(m->loop, &c->timer);
	close(c->io.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		m->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	m->n_conns--;
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

void
metrics_free(struct metrics *m)
{
	if (!m)
		return;
	while (m->conns)
		metrics_conn_close(m->conns);
	if (m->listener.fd >= 0) {
		ev_io_stop(m->loop, &m->listener);
		close(m->listener.fd);
	}
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

static void
metrics_conn_write(struct metrics_conn *c)
{
	while (c->sent < c->out.len) {
		ssize_t n = send(c->io.fd, c->out.data + c->sent, c->out.len - c->sent,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_set(c->m->loop, &c->io, EV_WRITE);
			return;
		}
		if (n < 0)
			break;
		c->sent += (size_t)n;
	}
	metrics_conn_close(c);
}

static bool
metrics_head_complete(const struct buf *in)
{
	return memmem(in->data, in->len, "\r\n\r\n", 4) || memmem(in->data, in->len, "\n\n", 2);
}

/* Reads what is there; once the head is complete or too big, answers. An oversized head is
 * drained first so that closing does not reset the connection under the 431. */
static void
metrics_conn_read(struct metrics_conn *c)
{
	char chunk[2048];
	bool too_big = false;
	for (;;) {
		ssize_t n = recv(c->io.fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !too_big)
			return;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			metrics_conn_close(c);
			return;
		}
		if (too_big || buf_append(&c->in, chunk, (size_t)n) < 0) {
			too_big = true;
			continue;
		}
		if (metrics_head_complete(&c->in))
			break;
	}
	if (too_big)
		buf_append_str(&c->out, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
		                        "Content-Length: 0\r\nConnection: close\r\n\r\n");
	else if (metrics_respond(c->m, c->in.data, c->in.len, &c->out) < 0)
		buf_append_str(&c->out, "HTTP/1.1 500 Internal Server Error\r\n"
		                        "Content-Length: 0\r\n\r\n");
	metrics_conn_write(c);
}

static void
metrics_conn_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct metrics_conn *c = io->data;
	if (c->out.len)
		metrics_conn_write(c);
	else
		metrics_conn_read(c);
}

static void
metrics_conn_timeout(struct ev_loop *loop, struct ev_timer *t)
{
	metrics_conn_close(t->data);
}

static int
metrics_conn_new(struct metrics *m, int fd)
{
	struct metrics_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->m = m;
	buf_init(&c->in, METRICS_REQUEST_MAX);
	buf_init(&c->out, METRICS_BODY_MAX + 512);
	ev_io_init(&c->io, fd, EV_READ, metrics_conn_io, c);
	ev_timer_init(&c->timer, metrics_conn_timeout, c);
	int r = ev_io_start(m->loop, &c->io);
	if (r >= 0)
		r = ev_timer_start(m->loop, &c->timer, EV_MSEC(m->timeout_ms));
	if (r < 0) {
		ev_io_stop(m->loop, &c->io);
		free(c);
		return r;
	}
	c->next = m->conns;
	if (m->conns)
		m->conns->prev = c;
	m->conns = c;
	m->n_conns++;
	return 0;
}

static void
metrics_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct metrics *m = io->data;
	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0)
			return;
		if (m->n_conns >= METRICS_CONNS_MAX || metrics_conn_new(m, fd) < 0)
			close(fd);
	}
}

int
metrics_listen(struct metrics *m, struct ev_loop *loop, const struct net_addr *addr,
               uint64_t timeout_ms)
{
	_cleanup_close_ int fd = net_listen_tcp(addr, 0, 64);
	if (fd < 0)
		return fd;
	m->loop = loop;
	m->timeout_ms = timeout_ms;
	ev_io_init(&m->listener, fd, EV_READ, metrics_accept, m);
	int r = ev_io_start(loop, &m->listener);
	if (r < 0)
		return r;
	TAKE_FD(fd);
	return 0;
}

int
metrics_local(const struct metrics *m, struct net_addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (m->listener.fd < 0)
		return -ENOTCONN;
	if (getsockname(m->listener.fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	return net_addr_from_sockaddr((struct sockaddr *)&ss, len, out);
}
