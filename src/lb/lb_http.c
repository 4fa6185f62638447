#include "lb_http.h"

#include "core/log.h"
#include "lb_proxyproto.h"
#include "lb_worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* The longest path field of an access log line; a longer one is cut (log_quote_mem). */
#define LB_LOG_PATH 1024

static void lb_http_error(struct lb_session *s, int code);
static void lb_http_timeout(struct lb_session *s);

static const char *
lb_http_reason(int code)
{
	switch (code) {
	case 400:
		return "Bad Request";
	case 408:
		return "Request Timeout";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

static void
lb_http_access(struct lb_session *s)
{
	if (!s->lc->access_log)
		return;
	char peer[NET_ADDR_STRLEN] = "-";
	net_addr_format(&s->peer, true, peer, sizeof(peer));
	const struct lb_bufs *b = s->b;
	uint64_t us = (ev_now_ns(lb_session_loop(s)) - s->t_req) / 1000;
	/* method and path are the client's bytes: escaped, they cannot forge a field */
	char lis[256], srv[256], method[4 * sizeof(s->method_name) + 3], path[LB_LOG_PATH];
	log_quote(lis, sizeof(lis), s->pool->listener);
	log_quote(srv, sizeof(srv), s->log_server ? s->log_server : "-");
	log_quote_mem(method, sizeof(method), *s->method_name ? s->method_name : "-",
	              *s->method_name ? strlen(s->method_name) : 1);
	if (b && s->key_uri_len)
		log_quote_mem(path, sizeof(path), b->h + s->key_uri_off, s->key_uri_len);
	else
		memcpy(path, "-", 2);
	log_info("access listener=%s client=%s server=%s method=%s path=%s status=%d bytes=%llu "
	         "ms=%llu.%03llu",
	         lis, peer, srv, method, path, s->status, (unsigned long long)s->bytes_out,
	         (unsigned long long)(us / 1000), (unsigned long long)(us % 1000));
}

struct lb_head {
	char *p;
	size_t n, cap;
	bool full;
};

static void
lb_head_put(struct lb_head *h, const void *p, size_t n)
{
	if (h->full || n > h->cap - h->n) {
		h->full = true;
		return;
	}
	memcpy(h->p + h->n, p, n);
	h->n += n;
}

static void
lb_head_str(struct lb_head *h, const char *s)
{
	lb_head_put(h, s, strlen(s));
}

static void
lb_http_put_forwarded(struct lb_session *s, struct lb_head *h)
{
	char addr[NET_ADDR_STRLEN];
	struct net_addr a = s->peer;
	a.port = 0;
	if (net_addr_format(&a, false, addr, sizeof(addr)) < 0)
		return;
	lb_head_str(h, "X-Forwarded-For: ");
	lb_head_str(h, addr);
	lb_head_str(h, "\r\nX-Forwarded-Proto: http\r\nForwarded: for=");
	/* RFC 7239 6: an IPv6 node is a quoted "[...]" */
	if (a.family == AF_INET6)
		lb_head_str(h, "\"[");
	lb_head_str(h, addr);
	if (a.family == AF_INET6)
		lb_head_str(h, "]\"");
	lb_head_str(h, ";proto=http\r\n");
}

static void
lb_head_field(struct lb_head *h, const char *src, const struct http1_header *f)
{
	lb_head_put(h, src + f->name_off, f->name_len);
	lb_head_put(h, ": ", 2);
	lb_head_put(h, src + f->value_off, f->value_len);
	lb_head_put(h, "\r\n", 2);
}

/* A request field; the one named by hash-header is remembered as the balancing key. */
static void
lb_http_put_value(struct lb_session *s, struct lb_head *h, const char *name, size_t name_len,
                  const char *value, size_t value_len)
{
	const char *want = s->lc->hash_header;
	if (want && name_len == strlen(want) && !strncasecmp(name, want, name_len)) {
		s->has_key_hdr = true;
		s->key_hdr_off = (uint32_t)(h->n + name_len + 2);
		s->key_hdr_len = (uint32_t)value_len;
	}
	lb_head_put(h, name, name_len);
	lb_head_put(h, ": ", 2);
	lb_head_put(h, value, value_len);
	lb_head_put(h, "\r\n", 2);
}

static void
lb_http_put_field(struct lb_session *s, struct lb_head *h, const char *src,
                  const struct http1_header *f)
{
	lb_http_put_value(s, h, src + f->name_off, f->name_len, src + f->value_off, f->value_len);
}

/*
 * The body's framing as one field of our own: a repeated or listed Content-Length, or a
 * Transfer-Encoding spelled another way, is not left for the server to read in its own way.
 */
static void
lb_http_put_framing(struct lb_session *s, struct lb_head *h, const struct http1_msg *m)
{
	if (m->body == HTTP1_BODY_CHUNKED) {
		lb_http_put_value(s, h, "Transfer-Encoding", 17, "chunked", 7);
		return;
	}
	char d[20];
	size_t n = sizeof(d);
	uint64_t v = m->content_length;
	do
		d[--n] = (char)('0' + v % 10);
	while ((v /= 10));
	lb_http_put_value(s, h, "Content-Length", 14, d + n, sizeof(d) - n);
}

/*
 * The request line. An absolute-form target goes on in origin-form, its authority as the
 * Host (RFC 9112 3.2.2: a server uses the target's host, not the Host field), as nginx does:
 * the server sees one host, the one the client named in its target.
 */
static void
lb_http_put_request_line(struct lb_session *s, struct lb_head *h, const char *src,
                         const struct http1_msg *m)
{
	lb_head_put(h, src + m->method_off, m->method_len);
	lb_head_put(h, " ", 1);
	s->key_uri_off = (uint32_t)h->n;
	s->key_uri_len = m->path_len;
	if (!m->origin_len) { /* "http://host" */
		lb_head_put(h, "/", 1);
		s->key_uri_len = 1;
	}
	lb_head_put(h, src + m->origin_off, m->origin_len);
	/* a 1.0 client's request stays 1.0: the server then frames its answer for it (no
	 * chunking) and needs no Host; 1.1 to 1.9 go on as 1.1 */
	lb_head_str(h, m->minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
	if (m->absolute)
		lb_http_put_value(s, h, "Host", 4, src + m->host_off, m->host_len);
}

static void
lb_http_put_fields(struct lb_session *s, struct lb_head *h, const char *src,
                   const struct http1_msg *m)
{
	bool framing = false;
	for (size_t i = 0; i < m->nheaders; i++) {
		const struct http1_header *f = &m->headers[i];
		if ((f->flags & (HTTP1_H_HOP | HTTP1_H_XFP)) ||
		    ((f->flags & HTTP1_H_HOST) && m->absolute))
			continue;
		if (!(f->flags & (HTTP1_H_CL | HTTP1_H_TE)))
			lb_http_put_field(s, h, src, f);
		else if (!framing)
			lb_http_put_framing(s, h, m);
		framing |= (f->flags & (HTTP1_H_CL | HTTP1_H_TE)) != 0;
	}
}

/* The request head as sent to the server, into b->h; -ENOBUFS if it does not fit. */
static int
lb_http_build_head(struct lb_session *s, const char *src)
{
	struct lb_bufs *b = s->b;
	const struct http1_msg *m = &b->req;
	struct lb_head h = {.p = b->h, .cap = b->csize + LB_HEAD_EXTRA};
	s->has_key_hdr = false;
	lb_http_put_request_line(s, &h, src, m);
	lb_http_put_fields(s, &h, src, m);
	const struct http1_header *up = m->upgrade ? http1_find(m, src, "upgrade") : NULL;
	if (up) {
		lb_head_str(&h, "Connection: upgrade\r\nUpgrade: ");
		lb_head_put(&h, src + up->value_off, up->value_len);
		lb_head_str(&h, "\r\n");
	}
	if (s->lc->forwarded)
		lb_http_put_forwarded(s, &h);
	lb_head_str(&h, "\r\n");
	if (h.full)
		return -ENOBUFS;
	b->h_len = h.n;
	b->h_sent = 0;
	return 0;
}

static void
lb_http_key(struct lb_session *s, struct balance_key *key)
{
	*key = (struct balance_key){.client = &s->peer};
	if (s->b) {
		key->uri = s->b->h + s->key_uri_off;
		key->uri_len = s->key_uri_len;
		if (s->has_key_hdr) {
			key->header = s->b->h + s->key_hdr_off;
			key->header_len = s->key_hdr_len;
		}
	}
}

/* Extends *end over the body bytes in [*end, limit); sets *done at the body's end. */
static int
lb_http_scan(int body, uint64_t *left, struct http1_chunked *ch, const char *base, size_t *end,
             size_t limit, bool *done)
{
	size_t avail = limit - *end;
	if (*done)
		return 0;
	if (body == HTTP1_BODY_NONE) {
		*done = true;
	} else if (body == HTTP1_BODY_LENGTH) {
		size_t take = avail < *left ? avail : (size_t)*left;
		*end += take;
		*left -= take;
		*done = *left == 0;
	} else if (body == HTTP1_BODY_CHUNKED) {
		ssize_t r = http1_chunked_scan(ch, base + *end, avail, done);
		if (r < 0)
			return (int)r;
		*end += (size_t)r;
	} else {
		*end = limit;
	}
	return 0;
}

static void
lb_http_compact_c(struct lb_bufs *b, size_t *body_end)
{
	if (!b->c_start)
		return;
	memmove(b->c, b->c + b->c_start, b->c_end - b->c_start);
	*body_end -= b->c_start;
	b->c_end -= b->c_start;
	b->c_start = 0;
}

static void
lb_http_compact_s(struct lb_bufs *b, size_t *resp_end)
{
	if (!b->s_start)
		return;
	memmove(b->s, b->s + b->s_start, b->s_end - b->s_start);
	*resp_end -= b->s_start;
	b->s_end -= b->s_start;
	b->s_start = 0;
}

static bool lb_http_assign(struct lb_session *s);

/* A parsed request head: rewrite it, frame its body, find a server. */
static bool
lb_http_request(struct lb_session *s, size_t head_len)
{
	struct lb_bufs *b = s->b;
	const struct http1_msg *m = &b->req;
	const char *src = b->c + b->c_start;
	if (m->method == HTTP1_CONNECT) {
		lb_http_error(s, 501);
		return false;
	}
	lb_session_rebase(s);
	size_t ml =
	    m->method_len < sizeof(s->method_name) ? m->method_len : sizeof(s->method_name) - 1;
	memcpy(s->method_name, src + m->method_off, ml);
	s->method_name[ml] = 0;
	s->method = m->method;
	if (s->state == LB_S_IDLE)
		s->t_req = ev_now_ns(lb_session_loop(s));
	if (lb_http_build_head(s, src) < 0) {
		lb_http_error(s, 431);
		return false;
	}
	s->req_body = m->body;
	s->req_left = m->content_length;
	s->req_chunk = (struct http1_chunked){0};
	s->req_done = m->body == HTTP1_BODY_NONE;
	s->req_sent = s->resp_started = s->resp_head = s->resp_done = s->upgrading = false;
	s->keep_client = m->keep_alive && !s->c.eof;
	s->client_minor = m->minor;
	s->status = 0;
	s->bytes_out = 0;
	s->tries = 0;
	s->last = NULL;
	memset(s->excl, 0, sizeof(s->excl));
	b->c_start += head_len;
	s->req_body_end = b->c_start;
	if (lb_http_scan(s->req_body, &s->req_left, &s->req_chunk, b->c, &s->req_body_end, b->c_end,
	                 &s->req_done) < 0) {
		lb_http_error(s, 400);
		return false;
	}
	s->state = LB_S_QUEUED;
	return lb_http_assign(s);
}

static bool
lb_http_no_server(struct lb_session *s, int r)
{
	if (r != -ENOBUFS) /* a full queue is load, not an outage */
		lb_session_log_no_server(s);
	lb_http_error(s, 503);
	return false;
}

/* The outcome of a server choice (first or retry): true when a connection is on its way. */
static bool
lb_http_assigned(struct lb_session *s, int r)
{
	if (r == -EAGAIN)
		return false;
	if (r < 0)
		return lb_http_no_server(s, r);
	s->log_server = s->srv->name;
	return true;
}

static bool
lb_http_assign(struct lb_session *s)
{
	struct balance_key key;
	lb_http_key(s, &key);
	return lb_http_assigned(s, lb_session_assign(s, &key));
}

/* The try failed before any response byte: the next server (or 503). */
static bool
lb_http_next_server(struct lb_session *s)
{
	struct balance_key key;
	lb_http_key(s, &key);
	return lb_http_assigned(s, lb_session_server_failed(s, &key));
}

/* PROXY header from a trusted peer: 1 consumed, 0 need more, -1 closed. */
static int
lb_http_proxy_header(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	struct net_addr src, dst;
	int r = lb_proxyproto_parse((const uint8_t *)b->c + b->c_start, b->c_end - b->c_start, &src,
	                            &dst);
	if (r < 0) {
		lb_session_close(s);
		return -1;
	}
	if (r == 0)
		return 0;
	if (src.family)
		s->peer = src;
	b->c_start += (size_t)r;
	s->proxy_pending = false;
	return 1;
}

/* Parses what is buffered: true when a request went on (or the session ended). */
static bool
lb_http_parse(struct lb_session *s, bool *stop)
{
	struct lb_bufs *b = s->b;
	size_t avail = b->c_end - b->c_start;
	*stop = false;
	if (!avail)
		return false;
	if (s->proxy_pending) {
		int r = lb_http_proxy_header(s);
		if (r <= 0) {
			*stop = r < 0;
			return false;
		}
		avail = b->c_end - b->c_start;
	}
	int r = avail ? http1_parse_request(b->c + b->c_start, avail, &b->req) : 0;
	if (r > 0)
		return lb_http_request(s, (size_t)r);
	if (r < 0 || avail >= s->lc->max_header) {
		lb_http_error(s, r < 0 ? -r : 431);
		*stop = true;
	}
	return false;
}

static bool
lb_http_read_head(struct lb_session *s)
{
	bool stop;
	if (lb_session_bufs(s) < 0) {
		lb_session_close(s);
		return false;
	}
	struct lb_bufs *b = s->b;
	if (lb_http_parse(s, &stop) || stop || s->closed)
		return !s->closed && !stop;
	if (!s->c.rd) {
		if (s->state == LB_S_IDLE)
			lb_session_bufs_release(s);
		return false;
	}
	size_t dummy = 0;
	if (b->c_start)
		lb_http_compact_c(b, &dummy);
	size_t cap = s->lc->max_header + 1 < b->csize ? s->lc->max_header + 1 : b->csize;
	size_t room = cap - b->c_end;
	ssize_t n = lb_side_read(&s->c, b->c + b->c_end, room);
	if (n > 0) {
		if (s->state == LB_S_IDLE) {
			s->state = LB_S_HEAD;
			s->t_req = ev_now_ns(lb_session_loop(s));
			/* not extended by later bytes: a slow head ends at request_ms (slowloris)
			 */
			lb_session_deadline(s, s->lc->timeout.request_ms);
		}
		b->c_end += (size_t)n;
		return true;
	}
	if (n == -EAGAIN) {
		if (s->state == LB_S_IDLE)
			lb_session_bufs_release(s);
		return false;
	}
	lb_session_close(s);
	return false;
}

/* Puts the PROXY header in front of the request head on a new connection. */
static void
lb_http_prepend_proxy(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	uint8_t pp[LB_PROXYPROTO_MAX];
	int n = lb_session_proxy_header(s, pp, sizeof(pp));
	if (n <= 0 || b->h_len + (size_t)n > b->csize + LB_HEAD_EXTRA)
		return;
	memmove(b->h + n, b->h, b->h_len);
	memcpy(b->h, pp, (size_t)n);
	b->h_len += (size_t)n;
	s->key_uri_off += (uint32_t)n;
	s->key_hdr_off += (uint32_t)n;
}

static bool
lb_http_connect_step(struct lb_session *s)
{
	int r = lb_session_connected(s);
	if (r == 0)
		return false;
	if (r < 0)
		return lb_http_next_server(s);
	if (!s->s->reused && s->srv->send_proxy != LB_PROXY_NONE)
		lb_http_prepend_proxy(s);
	if (s->c.ring && !s->s->sd.ring)
		lb_session_ring_server(s);
	s->state = LB_S_EXCHANGE;
	lb_session_deadline(s, s->lc->timeout.server_ms);
	return true;
}

/* More request body from the client. */
static bool
lb_http_req_in(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	if (s->req_done || !s->c.rd)
		return false;
	/* not under a send to the server: its bytes must stay where they are */
	if (b->c_end == b->csize && !lb_side_sending(&s->s->sd))
		lb_http_compact_c(b, &s->req_body_end);
	if (b->c_end == b->csize)
		return false;
	ssize_t n = lb_side_read(&s->c, b->c + b->c_end, b->csize - b->c_end);
	if (n == -EAGAIN)
		return false;
	if (n <= 0) {
		lb_session_close(s); /* the client left in the middle of its request */
		return false;
	}
	b->c_end += (size_t)n;
	if (lb_http_scan(s->req_body, &s->req_left, &s->req_chunk, b->c, &s->req_body_end, b->c_end,
	                 &s->req_done) < 0) {
		s->server_keep = false;
		lb_http_error(s, 400);
		return false;
	}
	lb_session_deadline(s, s->lc->timeout.client_ms);
	return true;
}

static bool lb_http_retry(struct lb_session *s);

/* Request head and body on to the server. */
static bool
lb_http_req_out(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	size_t head = b->h_len - b->h_sent, body = s->req_body_end - b->c_start;
	if (!s->s->sd.wr || (!head && !body) || lb_session_hold(s))
		return false;
	struct iovec iov[2] = {{b->h + b->h_sent, head}, {b->c + b->c_start, body}};
	ssize_t n = head ? lb_side_writev(&s->s->sd, iov, 2)
	                 : lb_side_write(&s->s->sd, iov[1].iov_base, body);
	if (n == -EAGAIN)
		return false;
	if (n < 0)
		return lb_http_retry(s);
	size_t h = (size_t)n < head ? (size_t)n : head;
	b->h_sent += h;
	b->c_start += (size_t)n - h;
	atomic_fetch_add_explicit(&s->srv->bytes_out, (uint64_t)n, memory_order_relaxed);
	if (b->c_start == b->c_end) {
		s->req_body_end -= b->c_start;
		b->c_start = b->c_end = 0;
	}
	s->req_sent = s->req_done && b->h_sent == b->h_len && b->c_start == s->req_body_end;
	return true;
}

static bool
lb_http_idempotent(int method)
{
	return method == HTTP1_GET || method == HTTP1_HEAD || method == HTTP1_PUT ||
	       method == HTTP1_DELETE || method == HTTP1_OPTIONS || method == HTTP1_TRACE;
}

/*
 * The server failed before any response byte: again elsewhere when safe, else 502. On a
 * pooled connection that is the server closing it as idle while the request was on its way
 * (as HAProxy and nginx, not held against the server): again on a new connection to the same
 * server, safe also when no byte of the request went out.
 */
static bool
lb_http_retry(struct lb_session *s)
{
	bool stale = s->s->reused && !s->resp_started;
	bool unsent = !s->b->h_sent && !lb_side_sending(&s->s->sd);
	bool safe = s->req_body == HTTP1_BODY_NONE && lb_http_idempotent(s->method);
	if (s->resp_started || !(safe || (stale && unsent))) {
		if (!stale)
			lb_session_passive(s, s->srv, false);
		lb_http_error(s, 502);
		return false;
	}
	s->b->h_sent = 0;
	s->state = LB_S_QUEUED;
	if (!stale)
		return lb_http_next_server(s);
	struct balance_key key;
	lb_http_key(s, &key);
	return lb_http_assigned(s, lb_session_reconnect(s, &key));
}

/*
 * The response head says whether the connection stays open; when our answer to the client
 * differs (we close after it, the server closes but we do not, an HTTP/1.0 client), the
 * head is rewritten without hop-by-hop fields and with our own Connection field. The body
 * bytes read with the head follow it; those a longer head pushes out of s wait in spill
 * (the head itself must fit in s).
 */
static int
lb_http_fix_response(struct lb_session *s, const struct http1_msg *m, size_t pos)
{
	struct lb_bufs *b = s->b;
	if (m->keep_alive == s->keep_client && s->client_minor == 1)
		return 0;
	const char *src = b->s + pos;
	char tmp[LB_BUF_SIZE + LB_SPILL];
	struct lb_head h = {.p = tmp, .cap = sizeof(tmp)};
	const char *eol = memchr(src, '\n', m->head_len);
	lb_head_put(&h, src, (size_t)(eol - src) + 1);
	for (size_t i = 0; i < m->nheaders; i++)
		if (!(m->headers[i].flags & HTTP1_H_HOP))
			lb_head_field(&h, src, &m->headers[i]);
	lb_head_str(&h, s->keep_client ? "Connection: keep-alive\r\n\r\n"
	                               : "Connection: close\r\n\r\n");
	size_t head = h.n, room = LB_BUF_SIZE - pos;
	lb_head_put(&h, src + m->head_len, b->s_end - pos - m->head_len);
	size_t keep = h.n < room ? h.n : room;
	if (h.full || head > room || h.n - keep > LB_SPILL)
		return -ENOBUFS;
	memcpy(b->s + pos, tmp, keep);
	memcpy(b->spill, tmp + keep, h.n - keep);
	b->spill_off = 0;
	b->spill_len = h.n - keep;
	b->s_end = pos + keep;
	return (int)head;
}

/* A response head was parsed at pos: counters, health, framing. */
static int
lb_http_response(struct lb_session *s, const struct http1_msg *m, size_t pos)
{
	struct lb_server *srv = s->srv;
	uint64_t now = ev_now_ns(lb_session_loop(s));
	s->resp_end = pos + m->head_len;
	if (m->status >= 100 && m->status < 200 && m->status != 101)
		return 0; /* interim (100 Continue): forwarded, the final head follows */
	s->status = m->status;
	s->resp_head = true;
	atomic_fetch_add_explicit(&srv->responses[m->status / 100 <= 5 ? m->status / 100 : 0], 1,
	                          memory_order_relaxed);
	bool bad = m->status >= 500 && s->pool->count_5xx;
	lb_session_passive(s, srv, !bad);
	lb_server_observe_latency(srv, now - s->t_req, now);
	s->resp_body = m->body;
	s->resp_left = m->content_length;
	s->resp_chunk = (struct http1_chunked){0};
	s->resp_done = false;
	/* a request that went out as HTTP/1.0 asked for no persistence: the server may close
	 * after its answer even when the answer does not say so */
	s->server_keep = m->keep_alive && m->body != HTTP1_BODY_CLOSE && s->client_minor != 0;
	if (m->body == HTTP1_BODY_CLOSE)
		s->keep_client = false;
	if (m->status != 101) {
		int n = lb_http_fix_response(s, m, pos);
		if (n < 0)
			return n;
		if (n > 0)
			s->resp_end = pos + (size_t)n;
	}
	if (m->status == 101) {
		s->upgrading = true;
		s->resp_end = s->b->s_end;
		s->resp_done = true;
		return 0;
	}
	return lb_http_scan(s->resp_body, &s->resp_left, &s->resp_chunk, s->b->s, &s->resp_end,
	                    s->b->s_end, &s->resp_done);
}

/* Parses response heads in what was read: 0 ok or waiting, -1 the session ended. */
static int
lb_http_resp_parse(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	while (!s->resp_head && s->resp_end < b->s_end) {
		struct http1_msg m;
		int r =
		    http1_parse_response(b->s + s->resp_end, b->s_end - s->resp_end, s->method, &m);
		if (r == 0 && b->s_end - b->s_start < LB_BUF_SIZE)
			return 0;
		if (r <= 0 || lb_http_response(s, &m, s->resp_end) < 0) {
			lb_session_passive(s, s->srv, false);
			lb_http_error(s, 502);
			return -1;
		}
	}
	if (s->resp_head && !s->upgrading &&
	    lb_http_scan(s->resp_body, &s->resp_left, &s->resp_chunk, b->s, &s->resp_end, b->s_end,
	                 &s->resp_done) < 0) {
		lb_session_close(s); /* bad chunking from the server: the response is cut */
		return -1;
	}
	return 0;
}

/* The server ended the connection: the end of a close-delimited body, a retry, or a cut. */
static bool
lb_http_server_eof(struct lb_session *s)
{
	if (!s->resp_started)
		return lb_http_retry(s);
	if (!s->resp_head) {
		lb_http_error(s, 502);
		return false;
	}
	if (s->resp_body == HTTP1_BODY_CLOSE || s->upgrading) {
		s->resp_done = true;
		s->server_keep = false;
		return true;
	}
	if (!s->resp_done) {
		lb_session_close(s);
		return false;
	}
	s->server_keep = false;
	return false;
}

/* Server bytes a head rewrite pushed out of s come back into its room before any new read. */
static bool
lb_http_unspill(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	size_t room = LB_BUF_SIZE - b->s_end, n = b->spill_len < room ? b->spill_len : room;
	memcpy(b->s + b->s_end, b->spill + b->spill_off, n);
	b->spill_off += n;
	b->spill_len -= n;
	b->s_end += n;
	return lb_http_resp_parse(s) == 0;
}

static bool
lb_http_resp_in(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	if ((!s->s->sd.rd && !b->spill_len) || (s->resp_done && !s->upgrading))
		return false;
	if (b->s_end == LB_BUF_SIZE && !lb_side_sending(&s->c))
		lb_http_compact_s(b, &s->resp_end);
	if (b->s_end == LB_BUF_SIZE)
		return false;
	if (b->spill_len)
		return lb_http_unspill(s);
	ssize_t n = lb_side_read(&s->s->sd, b->s + b->s_end, LB_BUF_SIZE - b->s_end);
	if (n == -EAGAIN)
		return false;
	if (n <= 0)
		return lb_http_server_eof(s);
	s->resp_started = true;
	b->s_end += (size_t)n;
	atomic_fetch_add_explicit(&s->srv->bytes_in, (uint64_t)n, memory_order_relaxed);
	lb_session_deadline(s, s->lc->timeout.server_ms);
	if (s->upgrading)
		s->resp_end = b->s_end;
	return lb_http_resp_parse(s) == 0;
}

static bool
lb_http_resp_out(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	size_t n = s->resp_end - b->s_start;
	if (!n || !s->c.wr)
		return false;
	/* The end of the last response before a close is held back (MSG_MORE) until the
	 * close, which sends it with the FIN: one segment less for both ends. */
	bool last = s->resp_done && s->resp_end == b->s_end && !s->upgrading &&
	            (!s->keep_client || !s->req_sent || s->c.eof);
	ssize_t w = lb_side_send(&s->c, b->s + b->s_start, n, last ? MSG_MORE : 0);
	if (w == -EAGAIN)
		return false;
	if (w < 0) {
		lb_session_close(s);
		return false;
	}
	b->s_start += (size_t)w;
	s->bytes_out += (uint64_t)w;
	if (b->s_start == b->s_end) {
		s->resp_end -= b->s_start;
		b->s_start = b->s_end = 0;
	}
	return true;
}

/* Lingering close: our side is shut, what the client still sends is read and dropped so
 * that a close with unread bytes does not reset the connection under the last response. */
static bool
lb_http_linger(struct lb_session *s)
{
	char sink[4096];
	if (!s->c.shut) {
		shutdown(s->c.fd, SHUT_WR);
		s->c.shut = true;
		s->state = LB_S_CLOSING;
		lb_session_deadline(s, 1000);
	}
	while (s->c.rd) {
		ssize_t n = lb_side_read(&s->c, sink, sizeof(sink));
		if (n == 0 || (n < 0 && n != -EAGAIN)) {
			lb_session_close(s);
			return false;
		}
	}
	return false;
}

/* A canned answer when nothing of a response went to the client yet, then a lingering close
 * (closing at once with unread bytes would reset the connection under the answer). */
static void
lb_http_error(struct lb_session *s, int code)
{
	const char *reason = lb_http_reason(code);
	char out[256];
	int n = snprintf(out, sizeof(out),
	                 "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
	                 "connection: close\r\n\r\n%d %s\n",
	                 code, reason, strlen(reason) + 5, code, reason);
	if (!s->bytes_out && s->c.fd >= 0 && !lb_side_sending(&s->c) && n > 0 &&
	    (size_t)n < sizeof(out)) {
		/* the linger's shutdown below sends it with the FIN, in one segment */
		int more = s->c.shut ? 0 : MSG_MORE;
		send(s->c.fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT | more);
		s->bytes_out = (uint64_t)n;
	}
	s->status = code;
	if (s->state != LB_S_IDLE)
		lb_http_access(s);
	lb_session_release_server(s, false);
	s->c.rd = true; /* see at once whether the client is gone */
	lb_http_linger(s);
}

/* The length of the empty line (CRLF or LF) p starts with, else 0. */
static size_t
lb_http_empty_line(const char *p, size_t n)
{
	if (n && p[0] == '\n')
		return 1;
	return n > 1 && p[0] == '\r' && p[1] == '\n' ? 2 : 0;
}

/* A request was logged: what the next one logs, or answers with an error, is its own. */
static void
lb_http_next_request(struct lb_session *s)
{
	s->status = 0;
	s->bytes_out = 0;
	s->method_name[0] = 0;
	s->key_uri_len = 0;
	s->log_server = NULL;
}

/* The response went out whole: pool the server connection, wait for the next request. */
static bool
lb_http_finish(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	if (s->upgrading) {
		s->state = LB_S_TUNNEL;
		lb_http_access(s);
		lb_session_deadline(s, s->lc->timeout.tunnel_ms);
		return true;
	}
	bool reuse = s->server_keep && s->req_sent && s->resp_end == b->s_end && !b->spill_len &&
	             !s->s->sd.eof;
	if (!s->req_sent)
		s->keep_client = false; /* answered before the whole body came: framing is lost */
	b->s_start = b->s_end = b->spill_len = 0;
	s->resp_end = 0;
	lb_http_access(s);
	lb_http_next_request(s);
	lb_session_release_server(s, reuse);
	if (!s->keep_client || s->c.eof) {
		/* nothing unread: a plain close sends FIN, no reset can hit the response (as
		 * nginx does); otherwise drain first */
		if (b->c_end == b->c_start && !lb_side_unread(&s->c)) {
			lb_session_close(s);
			return false;
		}
		return lb_http_linger(s);
	}
	b->h_len = b->h_sent = 0;
	/* empty lines before a request are no request yet (RFC 9112 2.2: some clients send a
	 * CRLF after a body): dropped, as the parser would skip them */
	for (size_t n; (n = lb_http_empty_line(b->c + b->c_start, b->c_end - b->c_start));)
		b->c_start += n;
	if (b->c_end == b->c_start) {
		s->state = LB_S_IDLE;
		lb_session_deadline(s, s->lc->timeout.idle_ms);
		b->c_start = b->c_end = 0;
		lb_session_bufs_release(s);
		return s->c.rd;
	}
	/* a pipelined request: its head is being read from now on, within the request timeout */
	s->state = LB_S_HEAD;
	s->t_req = ev_now_ns(lb_session_loop(s));
	lb_session_deadline(s, s->lc->timeout.request_ms);
	return true;
}

static bool
lb_http_exchange(struct lb_session *s)
{
	bool p = lb_http_req_in(s);
	if (!s->closed && s->state == LB_S_EXCHANGE)
		p |= lb_http_req_out(s);
	if (!s->closed && s->state == LB_S_EXCHANGE)
		p |= lb_http_resp_in(s);
	if (!s->closed && s->state == LB_S_EXCHANGE)
		p |= lb_http_resp_out(s);
	if (s->closed || s->state != LB_S_EXCHANGE)
		return !s->closed;
	if (s->resp_done && s->b->s_start == s->resp_end)
		return lb_http_finish(s);
	return p;
}

static bool
lb_http_tunnel(struct lb_session *s)
{
	struct lb_bufs *b = s->b;
	struct lb_pump up = {.buf = b->c, .size = b->csize, .start = &b->c_start, .end = &b->c_end};
	struct lb_pump down = {
	    .buf = b->s, .size = LB_BUF_SIZE, .start = &b->s_start, .end = &b->s_end};
	bool p = lb_session_pump(&s->c, &s->s->sd, &up);
	p |= lb_session_pump(&s->s->sd, &s->c, &down);
	if (s->c.err || s->s->sd.err || (s->c.shut && s->s->sd.shut)) {
		lb_session_close(s);
		return false;
	}
	if (p)
		lb_session_deadline(s, s->lc->timeout.tunnel_ms);
	return p;
}

static bool
lb_http_step(struct lb_session *s)
{
	switch (s->state) {
	case LB_S_IDLE:
	case LB_S_HEAD:
		return lb_http_read_head(s);
	case LB_S_QUEUED:
		return !s->queued && lb_http_assign(s);
	case LB_S_CONNECT:
		return lb_http_connect_step(s);
	case LB_S_EXCHANGE:
		return lb_http_exchange(s);
	case LB_S_TUNNEL:
		return lb_http_tunnel(s);
	default:
		return lb_http_linger(s);
	}
}

static void
lb_http_timeout(struct lb_session *s)
{
	switch (s->state) {
	case LB_S_IDLE:
	case LB_S_TUNNEL:
	case LB_S_CLOSING:
		lb_session_close(s);
		return;
	case LB_S_HEAD:
		lb_http_error(s, 408);
		return;
	case LB_S_QUEUED:
		lb_session_unqueue(s);
		lb_http_error(s, 503);
		return;
	case LB_S_CONNECT:
		if (lb_http_next_server(s))
			lb_session_run(s);
		return;
	default:
		if (!s->req_done)
			lb_http_error(s, 408);
		else if (!s->resp_started)
			lb_http_error(s, 504);
		else
			lb_session_close(s);
		return;
	}
}

/* While a request is with its server, the client is not watched: its bytes are not read
 * then (a pipelined request waits for the response) and a write tells that it left. */
static bool
lb_http_waits_client(const struct lb_session *s)
{
	switch (s->state) {
	case LB_S_QUEUED:
	case LB_S_CONNECT:
		return false;
	case LB_S_EXCHANGE:
		return (!s->req_done && !s->c.rd) ||
		       (!s->c.wr && s->b && s->resp_end > s->b->s_start);
	default:
		return true;
	}
}

void
lb_http_start(struct lb_session *s)
{
	s->step = lb_http_step;
	s->on_timeout = lb_http_timeout;
	s->waits_client = lb_http_waits_client;
	s->state = LB_S_IDLE;
	s->proxy_pending = lb_session_trusted(s);
	lb_session_deadline(s, s->lc->timeout.request_ms);
	/* with defer-accept its request is in: the first read is made now, not after a turn of
	 * the loop (a ring receive would wait for the next submission and its completion) */
	if (s->wg->w->ring)
		lb_session_ring_client(s, s->lc->defer_accept);
	s->c.rd = s->c.wr = true;
	lb_session_dispatch(s);
}
