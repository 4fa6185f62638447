#include "lb_check.h"

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "lb_proxyproto.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

/* Enough for a status line, the head and a body substring search; the rest is not read. */
#define LB_CHECK_READ_MAX 16384
/* A request line and three fields built from config strings. */
#define LB_CHECK_REQ_MAX 8192

struct lb_check_probe {
	struct lb_check *c;
	struct lb_server *s;
	struct ev_timer timer; /* idle: the next check; in flight: the timeout */
	struct ev_io io;       /* fd -1 when idle */
	char *req;             /* http: this server's request (its Host differs) */
	size_t req_len;
	uint8_t pp[LB_PROXYPROTO_MAX]; /* PROXY header sent before the request, pp_len > 0 */
	size_t pp_len;
	size_t sent; /* of pp, then of the request */
	struct buf in;
	bool in_flight;
	bool connected;
	int seen_health; /* health at the last result: a change by someone else resets counts */
};

struct lb_check {
	struct ev_loop *loop;
	struct lb_pool *pool;
	int type;
	uint64_t interval_ns, timeout_ns;
	int rise, fall;
	unsigned jitter_pct;
	int status_min, status_max;
	uint16_t port;
	int send_proxy; /* enum lb_check_proxy */
	char *expect;   /* http: expect-body, send: expect; NULL: any */
	char *send;     /* send: decoded bytes */
	size_t send_len;
	uint64_t rng;
	size_t n;
	struct lb_check_probe probes[];
};

static void lb_check_timer_cb(struct ev_loop *loop, struct ev_timer *t);
static void lb_check_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events);

/* xorshift64*: jitter needs spread, not secrecy; seeded once from getrandom. */
static uint64_t
lb_check_rand(struct lb_check *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 2685821657736338717ull;
}

static void
lb_check_seed(struct lb_check *c)
{
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = ev_clock_ns() ^ (uint64_t)(uintptr_t)c;
	c->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

/* The interval spread by a random amount within +-jitter_pct percent. */
static uint64_t
lb_check_next_ns(struct lb_check *c)
{
	uint64_t span = c->interval_ns / 100 * c->jitter_pct;
	if (!span)
		return c->interval_ns;
	uint64_t r = lb_check_rand(c) % (2 * span + 1);
	return c->interval_ns - span + r;
}

static char
lb_check_escape(char e)
{
	switch (e) {
	case 'r':
		return '\r';
	case 'n':
		return '\n';
	case 't':
		return '\t';
	case '\\':
		return '\\';
	default:
		return 0;
	}
}

/* Decodes the escapes \r \n \t \\ of a send string; any other backslash stays as written. */
static int
lb_check_unescape(const char *s, char **out, size_t *out_len)
{
	size_t n = strlen(s), j = 0;
	char *d = malloc(n + 1);
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char e = s[i] == '\\' ? lb_check_escape(s[i + 1]) : 0;
		d[j++] = e ? e : s[i];
		i += e != 0;
	}
	d[j] = '\0';
	*out = d;
	*out_len = j;
	return 0;
}

static bool
lb_check_has_ctl(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* The request of one server; Host defaults to the address checked, port omitted if 80. */
static int
lb_check_build_request(const struct lb_check_cfg *cfg, struct lb_check_probe *p, uint16_t port)
{
	_cleanup_buf_ struct buf b = BUF_INIT(LB_CHECK_REQ_MAX);
	char host[NET_ADDR_STRLEN];
	struct net_addr a = p->s->addr;
	a.port = port;
	int r = net_addr_format(&a, port != 80, host, sizeof(host));
	if (r < 0)
		return r;
	r = buf_printf(&b,
	               "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rampart-check\r\n"
	               "Connection: close\r\n\r\n",
	               cfg->method ? cfg->method : "GET", cfg->path ? cfg->path : "/",
	               cfg->host ? cfg->host : host);
	if (r < 0)
		return r;
	p->req_len = b.len;
	p->req = buf_steal(&b);
	return p->req ? 0 : -ENOMEM;
}

/* Where this probe connects: the server, or the check port if one is set. */
static uint16_t
lb_check_port(const struct lb_check *c, const struct lb_server *s)
{
	return c->port ? c->port : s->addr.port;
}

static void
lb_check_close(struct lb_check_probe *p)
{
	if (p->io.fd >= 0) {
		ev_io_stop(p->c->loop, &p->io);
		close(p->io.fd);
		p->io.fd = -1;
	}
	buf_free(&p->in);
	p->in_flight = false;
	p->connected = false;
	p->sent = 0;
	p->pp_len = 0;
}

static void
lb_check_log_transition(struct lb_check *c, struct lb_server *s, bool up)
{
	char lis[128], srv[128], why[sizeof(s->check_last) + 8];
	log_quote(lis, sizeof(lis), c->pool->listener);
	log_quote(srv, sizeof(srv), s->name);
	if (up) {
		log_info("server up listener=%s server=%s checks=%d", lis, srv, s->check_ok);
		return;
	}
	log_quote(why, sizeof(why), s->check_last);
	log_warn("server down listener=%s server=%s reason=%s", lis, srv, why);
	uint64_t now = ev_now_ns(c->loop);
	for (size_t i = 0; i < c->pool->n; i++)
		if (lb_server_usable(c->pool, &c->pool->servers[i], now))
			return;
	if (!atomic_exchange(&c->pool->all_down_logged, 1))
		log_error("no server available listener=%s", lis);
}

/* Counts one result and applies the rise/fall rule. */
static void
lb_check_count(struct lb_check *c, struct lb_server *s, int *seen, bool ok)
{
	int health = atomic_load(&s->health);
	/* set by passive health or by hand since our last result: count anew from here */
	if (health != *seen)
		s->check_ok = s->check_fail = 0;
	if (ok) {
		s->check_fail = 0;
		s->check_ok += s->check_ok < INT_MAX;
	} else {
		s->check_ok = 0;
		s->check_fail += s->check_fail < INT_MAX;
	}
	uint64_t now = ev_now_ns(c->loop);
	if (health == LB_HEALTH_DOWN && ok && s->check_ok >= c->rise) {
		if (lb_pool_set_health(c->pool, s, LB_HEALTH_UP, now))
			lb_check_log_transition(c, s, true);
	} else if (health == LB_HEALTH_UP && !ok && s->check_fail >= c->fall) {
		if (lb_pool_set_health(c->pool, s, LB_HEALTH_DOWN, now))
			lb_check_log_transition(c, s, false);
	}
	*seen = atomic_load(&s->health);
}

/* Ends the check in flight: records why, counts it, schedules the next one. */
static void __attribute__((format(printf, 3, 4)))
lb_check_done(struct lb_check_probe *p, bool ok, const char *fmt, ...)
{
	struct lb_check *c = p->c;
	va_list ap;
	lb_check_close(p);
	va_start(ap, fmt);
	vsnprintf(p->s->check_last, sizeof(p->s->check_last), fmt, ap);
	va_end(ap);
	lb_check_count(c, p->s, &p->seen_health, ok);
	ev_timer_start(c->loop, &p->timer, lb_check_next_ns(c));
}

static void
lb_check_fail_errno(struct lb_check_probe *p, int err)
{
	switch (err) {
	case ECONNREFUSED:
		lb_check_done(p, false, "connection refused");
		break;
	case ECONNRESET:
	case EPIPE:
		lb_check_done(p, false, "connection reset");
		break;
	case ETIMEDOUT:
		lb_check_done(p, false, "timeout");
		break;
	default: {
		/* strerrordesc_np: thread-safe and never localised, unlike strerror */
		const char *what = strerrordesc_np(err);
		lb_check_done(p, false, "%s", what ? what : "socket error");
		break;
	}
	}
}

static void
lb_check_target(const struct lb_check *c, const struct lb_server *s, struct sockaddr_storage *sa)
{
	*sa = s->sa;
	if (!c->port)
		return;
	if (sa->ss_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(c->port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons(c->port);
}

/* Opens the socket and starts connecting; the timer now bounds the whole exchange. */
static void
lb_check_begin(struct lb_check_probe *p)
{
	struct lb_check *c = p->c;
	struct sockaddr_storage sa;
	lb_check_target(c, p->s, &sa);
	_cleanup_close_ int fd =
	    socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		lb_check_fail_errno(p, errno);
		return;
	}
	p->in = BUF_INIT(LB_CHECK_READ_MAX);
	p->in_flight = true;
	if (connect(fd, (struct sockaddr *)&sa, p->s->salen) < 0 && errno != EINPROGRESS) {
		lb_check_fail_errno(p, errno);
		return;
	}
	ev_io_init(&p->io, TAKE_FD(fd), EV_WRITE, lb_check_io_cb, p);
	if (ev_io_start(c->loop, &p->io) < 0)
		lb_check_done(p, false, "event loop error");
	else
		ev_timer_start(c->loop, &p->timer, c->timeout_ns);
}

static void
lb_check_timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct lb_check_probe *p = t->data;
	if (p->in_flight)
		lb_check_done(p, false, "timeout");
	else if (atomic_load(&p->s->admin) == LB_ADMIN_MAINT)
		/* not checked, but the clock keeps running for when maintenance ends */
		ev_timer_start(loop, t, lb_check_next_ns(p->c));
	else
		lb_check_begin(p);
}

/*
 * A server that wants a PROXY header on its traffic wants one on checks too, or it refuses
 * them (haproxy does the same unless the check has its own port, which may be a plain one);
 * the check's send-proxy says otherwise. It announces the check's own connection, as nothing
 * is relayed.
 */
static int
lb_check_proxy_version(const struct lb_check_probe *p)
{
	if (p->c->send_proxy != LB_CHECK_PROXY_AUTO)
		return p->c->send_proxy - 1;
	return p->c->port ? LB_PROXY_NONE : p->s->send_proxy;
}

static int
lb_check_proxy_header(struct lb_check_probe *p)
{
	int version = lb_check_proxy_version(p);
	if (version == LB_PROXY_NONE)
		return 0;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct net_addr local;
	if (getsockname(p->io.fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	int r = net_addr_from_sockaddr((struct sockaddr *)&ss, sl, &local);
	if (r < 0)
		return r;
	struct net_addr dst = p->s->addr;
	dst.port = lb_check_port(p->c, p->s);
	r = lb_proxyproto_build(version, &local, &dst, p->pp, sizeof(p->pp));
	if (r < 0)
		return r;
	p->pp_len = (size_t)r;
	return 0;
}

/* The connect finished: tcp is done; http and send go on to write. */
static void
lb_check_connected(struct lb_check_probe *p)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(p->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (!err && p->c->type != LB_CHECK_TCP)
		err = -lb_check_proxy_header(p);
	if (err)
		lb_check_fail_errno(p, err);
	else if (p->c->type == LB_CHECK_TCP)
		lb_check_done(p, true, "ok");
	else
		p->connected = true;
}

static size_t
lb_check_out(const struct lb_check_probe *p, const char **out)
{
	bool http = p->c->type == LB_CHECK_HTTP;
	*out = http ? p->req : p->c->send;
	return http ? p->req_len : p->c->send_len;
}

/* Writes what is left of the request; switches to reading once all is sent. */
static void
lb_check_write(struct lb_check_probe *p)
{
	struct lb_check *c = p->c;
	const char *out;
	size_t len = p->pp_len + lb_check_out(p, &out);
	while (p->sent < len) {
		bool pp = p->sent < p->pp_len;
		const char *from = pp ? (const char *)p->pp + p->sent : out + (p->sent - p->pp_len);
		size_t n_from = pp ? p->pp_len - p->sent : len - p->sent;
		/* MSG_MORE: the header and the request leave in one segment */
		ssize_t n = send(p->io.fd, from, n_from, MSG_NOSIGNAL | (pp ? MSG_MORE : 0));
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			lb_check_fail_errno(p, errno);
			return;
		}
		p->sent += (size_t)n;
	}
	if (c->type == LB_CHECK_SEND && !c->expect)
		lb_check_done(p, true, "ok"); /* nothing to wait for */
	else if (ev_io_set(c->loop, &p->io, EV_READ) < 0)
		lb_check_done(p, false, "event loop error");
}

/* "HTTP/1.x NNN" then a space or the line end; 0 if the line is not that. */
static int
lb_check_status(const char *d, size_t line_len)
{
	if (line_len < 12 || memcmp(d, "HTTP/1.", 7) || d[8] != ' ')
		return 0;
	int st = 0;
	for (int i = 9; i < 12; i++) {
		if (d[i] < '0' || d[i] > '9')
			return 0;
		st = st * 10 + (d[i] - '0');
	}
	bool end = line_len == 12 || d[12] == ' ' || d[12] == '\r';
	return end && st >= 100 && st <= 599 ? st : 0;
}

/*
 * Judges an http response read so far. The status decides as soon as the status line is
 * in, the body substring as soon as it is seen; final: no more will be read.
 */
static void
lb_check_http_verdict(struct lb_check_probe *p, bool final)
{
	struct lb_check *c = p->c;
	const char *d = buf_cstr(&p->in);
	const char *eol = memchr(d, '\n', p->in.len);
	if (!eol && !final)
		return;
	int st = eol ? lb_check_status(d, (size_t)(eol - d)) : 0;
	if (!st) {
		lb_check_done(p, false, p->in.len ? "bad response" : "no response");
		return;
	}
	if (st < c->status_min || st > c->status_max) {
		lb_check_done(p, false, "status %d", st);
		return;
	}
	const char *head_end = memmem(d, p->in.len, "\r\n\r\n", 4);
	size_t off = head_end ? (size_t)(head_end - d) + 4 : p->in.len;
	bool found = !c->expect || memmem(d + off, p->in.len - off, c->expect, strlen(c->expect));
	if (found)
		lb_check_done(p, true, "ok: status %d", st);
	else if (final)
		lb_check_done(p, false, "body mismatch");
}

/* Judges the bytes read so far; final: the server closed or the cap is reached. */
static void
lb_check_judge(struct lb_check_probe *p, bool final)
{
	struct lb_check *c = p->c;
	if (c->type == LB_CHECK_HTTP)
		lb_check_http_verdict(p, final);
	else if (memmem(buf_cstr(&p->in), p->in.len, c->expect, strlen(c->expect)))
		lb_check_done(p, true, "ok");
	else if (final)
		lb_check_done(p, false, p->in.len ? "expect mismatch" : "no response");
}

/* Reads what is there; the cap bounds what one check may cost. */
static void
lb_check_read(struct lb_check_probe *p)
{
	char chunk[4096];
	for (;;) {
		size_t room = p->in.max - p->in.len;
		ssize_t n =
		    room ? recv(p->io.fd, chunk, room < sizeof(chunk) ? room : sizeof(chunk), 0)
		         : 0;
		if (n < 0 && errno == EAGAIN) {
			lb_check_judge(p, false);
			return;
		}
		if (n == 0 || (n < 0 && errno == ECONNRESET && p->in.len)) {
			lb_check_judge(p, true); /* closed, cap reached, or reset after an answer */
			return;
		}
		if (n < 0 || buf_append(&p->in, chunk, (size_t)n) < 0) {
			lb_check_fail_errno(p, n < 0 ? errno : ENOMEM);
			return;
		}
	}
}

static void
lb_check_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct lb_check_probe *p = io->data;
	const char *out;
	if (!p->connected) {
		lb_check_connected(p);
		if (!p->connected)
			return;
	}
	if (p->sent < p->pp_len + lb_check_out(p, &out))
		lb_check_write(p);
	else if (events & (EV_READ | EV_ERROR))
		lb_check_read(p);
}

/* Copies what the checks need: the config may be freed or reloaded while they run. */
static int
lb_check_copy_cfg(struct lb_check *c, const struct lb_check_cfg *cfg)
{
	c->type = cfg->type;
	c->interval_ns = EV_MSEC(cfg->interval_ms ? cfg->interval_ms : 1);
	c->timeout_ns = EV_MSEC(cfg->timeout_ms ? cfg->timeout_ms : 1);
	c->rise = cfg->rise > 0 ? (int)cfg->rise : 1;
	c->fall = cfg->fall > 0 ? (int)cfg->fall : 1;
	c->jitter_pct =
	    cfg->jitter_pct > 0 && cfg->jitter_pct <= 100 ? (unsigned)cfg->jitter_pct : 0;
	c->status_min = (int)cfg->status_min;
	c->status_max = (int)cfg->status_max;
	c->port = (uint16_t)cfg->port;
	c->send_proxy = cfg->send_proxy;
	if (lb_check_has_ctl(cfg->method) || lb_check_has_ctl(cfg->path) ||
	    lb_check_has_ctl(cfg->host) || (cfg->type == LB_CHECK_SEND && !cfg->send))
		return -EINVAL;
	const char *expect = cfg->type == LB_CHECK_HTTP ? cfg->expect_body : cfg->expect;
	/* an empty expect matches anything: same as none */
	if (expect && *expect && !(c->expect = strdup(expect)))
		return -ENOMEM;
	if (cfg->type == LB_CHECK_SEND)
		return lb_check_unescape(cfg->send, &c->send, &c->send_len);
	return 0;
}

/* Each server's first check falls at a random point of the first interval. */
static int
lb_check_init_probe(struct lb_check *c, const struct lb_check_cfg *cfg, size_t i)
{
	struct lb_check_probe *p = &c->probes[i];
	p->c = c;
	p->s = &c->pool->servers[i];
	p->io.fd = -1;
	p->seen_health = atomic_load(&p->s->health);
	ev_timer_init(&p->timer, lb_check_timer_cb, p);
	if (c->type == LB_CHECK_HTTP) {
		int r = lb_check_build_request(cfg, p, lb_check_port(c, p->s));
		if (r < 0)
			return r;
	}
	return ev_timer_start(c->loop, &p->timer, lb_check_rand(c) % c->interval_ns);
}

int
lb_check_start(struct ev_loop *loop, struct lb_pool *pool, const struct lb_check_cfg *cfg,
               struct lb_check **out)
{
	*out = NULL;
	if (cfg->type == LB_CHECK_NONE)
		return 0;
	if (cfg->type < LB_CHECK_TCP || cfg->type > LB_CHECK_SEND)
		return -EINVAL;
	struct lb_check *c = calloc(1, sizeof(*c) + pool->n * sizeof(c->probes[0]));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->pool = pool;
	lb_check_seed(c);
	int r = lb_check_copy_cfg(c, cfg);
	for (size_t i = 0; r >= 0 && i < pool->n; i++) {
		c->n = i + 1; /* so lb_check_free undoes a half-made probe too */
		r = lb_check_init_probe(c, cfg, i);
	}
	if (r < 0) {
		lb_check_free(c);
		return r;
	}
	*out = c;
	return 0;
}

void
lb_check_free(struct lb_check *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		struct lb_check_probe *p = &c->probes[i];
		ev_timer_stop(c->loop, &p->timer);
		lb_check_close(p);
		free(p->req);
	}
	free(c->expect);
	free(c->send);
	free(c);
}
