#include "reqsrv.h"

#include "cleanup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct reqsrv_conn {
	struct reqsrv *srv;
	struct reqsrv_conn *prev, *next;
	struct ev_io io;
	struct ev_timer timer;
	char *in;
	size_t in_len;
	struct buf out;
	size_t sent;
};

struct reqsrv {
	struct ev_loop *loop;
	struct ev_io listener;
	struct reqsrv_cfg cfg;
	struct reqsrv_conn *conns;
	size_t n_conns;
};

static void
reqsrv_conn_close(struct reqsrv_conn *c)
{
	struct reqsrv *s = c->srv;
	char scratch[4096];
	/* unread input would make the kernel answer the client's next read with a reset */
	for (int i = 0; i < 16 && recv(c->io.fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; i++)
		;
	ev_timer_stop(s->loop, &c->timer);
	ev_io_close(s->loop, &c->io);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	buf_free(&c->out);
	free(c->in);
	free(c);
}

static void
reqsrv_conn_write(struct reqsrv_conn *c)
{
	bool progress = false;
	while (c->sent < c->out.len) {
		ssize_t n = send(c->io.fd, c->out.data + c->sent, c->out.len - c->sent,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* the timeout counts from the last progress: a slow but live reader of a
			 * big answer is not cut */
			if (progress)
				ev_timer_start(c->srv->loop, &c->timer,
				               EV_MSEC(c->srv->cfg.timeout_ms));
			ev_io_set(c->srv->loop, &c->io, EV_WRITE);
			return;
		}
		if (n < 0)
			break;
		c->sent += (size_t)n;
		progress = true;
	}
	reqsrv_conn_close(c);
}

static void
reqsrv_conn_answer(struct reqsrv_conn *c, size_t len, bool too_big)
{
	c->in[len] = '\0';
	c->srv->cfg.answer(c->srv->cfg.data, c->in, len, too_big, &c->out);
	ev_timer_start(c->srv->loop, &c->timer, EV_MSEC(c->srv->cfg.timeout_ms));
	reqsrv_conn_write(c);
}

static void
reqsrv_conn_read(struct reqsrv_conn *c)
{
	const struct reqsrv_cfg *cfg = &c->srv->cfg;
	for (;;) {
		size_t room = cfg->in_max - c->in_len;
		if (!room) {
			reqsrv_conn_answer(c, c->in_len, true);
			return;
		}
		ssize_t n = recv(c->io.fd, c->in + c->in_len, room, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n > 0)
			c->in_len += (size_t)n;
		size_t whole = n >= 0 ? cfg->complete(c->in, c->in_len, n == 0) : 0;
		if (whole) {
			reqsrv_conn_answer(c, whole, false);
			return;
		}
		if (n <= 0) {
			reqsrv_conn_close(c);
			return;
		}
	}
}

static void
reqsrv_conn_io(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct reqsrv_conn *c = io->data;
	if (c->out.len)
		reqsrv_conn_write(c);
	else
		reqsrv_conn_read(c);
}

static void
reqsrv_conn_timeout(struct ev_loop *loop, struct ev_timer *t)
{
	reqsrv_conn_close(t->data);
}

static int
reqsrv_conn_new(struct reqsrv *s, int fd)
{
	struct reqsrv_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->srv = s;
	c->in = malloc(s->cfg.in_max + 1);
	buf_init(&c->out, s->cfg.out_max);
	ev_io_init(&c->io, fd, EV_READ, reqsrv_conn_io, c);
	ev_timer_init(&c->timer, reqsrv_conn_timeout, c);
	int r = c->in ? ev_io_start(s->loop, &c->io) : -ENOMEM;
	if (r >= 0)
		r = ev_timer_start(s->loop, &c->timer, EV_MSEC(s->cfg.timeout_ms));
	if (r < 0) {
		ev_io_stop(s->loop, &c->io);
		free(c->in);
		free(c);
		return r;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	return 0;
}

static void
reqsrv_accept(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct reqsrv *s = io->data;
	for (;;) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0)
			return;
		if (s->n_conns >= s->cfg.conns_max || reqsrv_conn_new(s, fd) < 0)
			close(fd);
	}
}

int
reqsrv_start(struct ev_loop *loop, int listen_fd, const struct reqsrv_cfg *cfg, struct reqsrv **out)
{
	_cleanup_close_ int fd = listen_fd;
	struct reqsrv *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->cfg = *cfg;
	ev_io_init(&s->listener, fd, EV_READ, reqsrv_accept, s);
	int r = ev_io_start(loop, &s->listener);
	if (r < 0) {
		free(s);
		return r;
	}
	TAKE_FD(fd);
	*out = s;
	return 0;
}

void
reqsrv_free(struct reqsrv *s)
{
	if (!s)
		return;
	while (s->conns)
		reqsrv_conn_close(s->conns);
	ev_io_close(s->loop, &s->listener);
	free(s);
}

int
reqsrv_fd(const struct reqsrv *s)
{
	return s->listener.fd;
}
