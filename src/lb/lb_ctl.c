/*
 * The runtime control socket: one command line per connection, answered and closed. The
 * reply is built whole (capped) and written as the client takes it, so a slow reader never
 * holds up the loop that also runs the proxies. A refused command is answered "error: what",
 * a line that is no command at all "error: usage: what" (the client exits 2 for it).
 */
#include "lb_ctl.h"

#include "core/cleanup.h"
#include "core/log.h"
#include "core/reqsrv.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A client that sends nothing, or takes nothing of the reply, for this long is dropped. */
#define LB_CTL_TIMEOUT_MS 5000
/* Operators are few; more connections than this are refused at once. */
#define LB_CTL_CONNS_MAX 16
#define LB_CTL_ARGS_MAX 4
#define LB_CTL_ERR_MAX 512
#define LB_CTL_HELP                                                                                \
	"show servers [LISTENER], show json, show prometheus, disable|enable|drain "               \
	"LISTENER/SERVER, weight LISTENER/SERVER N"

struct lb_ctl {
	struct ev_loop *loop;
	struct reqsrv *srv;
	char *path;
	dev_t dev; /* the socket file we made: lb_ctl_free removes only that one */
	ino_t ino;
	lb_view_cb view;
	void *data;
};

/* A command's arguments after the verb, and where a failure is described. */
struct lb_ctl_req {
	struct lb_ctl *ctl;
	char **argv;
	size_t argc;
	char err[LB_CTL_ERR_MAX];
};

/* ---- commands ---- */

/* Copies s for an error message, non-printable bytes as '?', so the reply stays one line. */
static const char *
lb_ctl_printable(const char *s, char *dst, size_t n)
{
	size_t i = 0;
	for (; s[i] && i + 1 < n; i++)
		dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	dst[i] = '\0';
	return dst;
}

static int
lb_ctl_fail(struct lb_ctl_req *q, const char *what, const char *arg)
{
	char safe[128];
	snprintf(q->err, sizeof(q->err), "%s '%s'", what,
	         lb_ctl_printable(arg, safe, sizeof(safe)));
	return -EINVAL;
}

static int
lb_ctl_usage(struct lb_ctl_req *q, const char *usage)
{
	snprintf(q->err, sizeof(q->err), "usage: %s", usage);
	return -EINVAL;
}

static struct lb_pool *const *
lb_ctl_find_pool(const struct lb_view *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->pools[i]->listener, name))
			return &v->pools[i];
	return NULL;
}

/* "LISTENER/SERVER" (split at the first '/') to the pool and server it names. */
static int
lb_ctl_find_server(struct lb_ctl_req *q, const char *arg, struct lb_pool **pool,
                   struct lb_server **server)
{
	struct lb_view v = {0};
	char name[LB_CTL_LINE_MAX + 1];
	const char *slash = strchr(arg, '/');
	size_t len = slash ? (size_t)(slash - arg) : 0;
	if (!slash)
		return lb_ctl_fail(q, "usage: expected LISTENER/SERVER, not", arg);
	memcpy(name, arg, len);
	name[len] = '\0';
	q->ctl->view(q->ctl->data, &v);
	struct lb_pool *const *p = lb_ctl_find_pool(&v, name);
	*server = p ? lb_pool_find(*p, slash + 1) : NULL;
	if (!*server)
		return lb_ctl_fail(q, "no server", arg);
	*pool = *p;
	return 0;
}

static int
lb_ctl_show(struct lb_ctl_req *q, struct buf *out)
{
	struct lb_view v = {0};
	uint64_t now = ev_now_ns(q->ctl->loop);
	const char *what = q->argc ? q->argv[0] : "";
	q->ctl->view(q->ctl->data, &v);
	if (!strcmp(what, "servers") && q->argc == 2) {
		struct lb_pool *const *p = lb_ctl_find_pool(&v, q->argv[1]);
		if (!p)
			return lb_ctl_fail(q, "no listener", q->argv[1]);
		return lb_stats_table(&(struct lb_view){p, 1}, now, out);
	}
	if (!strcmp(what, "servers") && q->argc == 1)
		return lb_stats_table(&v, now, out);
	if (!strcmp(what, "json") && q->argc == 1)
		return lb_stats_json(&v, now, out);
	if (!strcmp(what, "prometheus") && q->argc == 1)
		return lb_stats_prometheus(&v, now, out);
	return lb_ctl_usage(q, "show servers [LISTENER] | show json | show prometheus");
}

static void
lb_ctl_log_change(const struct lb_pool *p, const struct lb_server *s, const char *field,
                  const char *value)
{
	char l[128], n[128];
	log_quote(l, sizeof(l), p->listener);
	log_quote(n, sizeof(n), s->name);
	log_info("server state changed listener=%s server=%s %s=%s by=ctl", l, n, field, value);
}

static int
lb_ctl_set_admin(struct lb_ctl_req *q, enum lb_admin a)
{
	struct lb_pool *pool;
	struct lb_server *s;
	if (q->argc != 1)
		return lb_ctl_usage(q, "disable|enable|drain LISTENER/SERVER");
	int r = lb_ctl_find_server(q, q->argv[0], &pool, &s);
	if (r < 0)
		return r;
	if (lb_pool_set_admin(pool, s, a))
		lb_ctl_log_change(pool, s, "admin", lb_admin_name(a));
	return 0;
}

static int
lb_ctl_disable(struct lb_ctl_req *q, struct buf *out)
{
	return lb_ctl_set_admin(q, LB_ADMIN_MAINT);
}

static int
lb_ctl_enable(struct lb_ctl_req *q, struct buf *out)
{
	return lb_ctl_set_admin(q, LB_ADMIN_READY);
}

static int
lb_ctl_drain(struct lb_ctl_req *q, struct buf *out)
{
	return lb_ctl_set_admin(q, LB_ADMIN_DRAIN);
}

/* Decimal 0..LB_WEIGHT_MAX, digits only. */
static bool
lb_ctl_parse_weight(const char *s, unsigned *out)
{
	unsigned v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > LB_WEIGHT_MAX)
			return false;
	}
	*out = v;
	return true;
}

static int
lb_ctl_weight(struct lb_ctl_req *q, struct buf *out)
{
	struct lb_pool *pool;
	struct lb_server *s;
	unsigned w;
	char text[16];
	if (q->argc != 2)
		return lb_ctl_usage(q, "weight LISTENER/SERVER N");
	if (!lb_ctl_parse_weight(q->argv[1], &w))
		return lb_ctl_fail(q, "weight must be 0..256, not", q->argv[1]);
	int r = lb_ctl_find_server(q, q->argv[0], &pool, &s);
	if (r < 0)
		return r;
	unsigned old = atomic_load(&s->weight);
	r = lb_pool_set_weight(pool, s, w);
	if (r < 0)
		return lb_ctl_fail(q, "weight not accepted:", q->argv[1]);
	snprintf(text, sizeof(text), "%u", w);
	if (old != w)
		lb_ctl_log_change(pool, s, "weight", text);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(struct lb_ctl_req *q, struct buf *out);
} lb_ctl_cmds[] = {
    {"show", lb_ctl_show},   {"disable", lb_ctl_disable}, {"enable", lb_ctl_enable},
    {"drain", lb_ctl_drain}, {"weight", lb_ctl_weight},
};

/* Splits line at blanks into argv; false when there are more than LB_CTL_ARGS_MAX words. */
static bool
lb_ctl_split(char *line, char **argv, size_t *argc)
{
	char *save = NULL;
	*argc = 0;
	for (char *w = strtok_r(line, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (*argc == LB_CTL_ARGS_MAX)
			return false;
		argv[(*argc)++] = w;
	}
	return true;
}

static int
lb_ctl_dispatch(struct lb_ctl_req *q, char *line, struct buf *out)
{
	char *argv[LB_CTL_ARGS_MAX];
	size_t argc;
	if (!lb_ctl_split(line, argv, &argc))
		return lb_ctl_usage(q, LB_CTL_HELP);
	if (!argc)
		return lb_ctl_usage(q, LB_CTL_HELP);
	for (size_t i = 0; i < ARRAY_SIZE(lb_ctl_cmds); i++)
		if (!strcmp(argv[0], lb_ctl_cmds[i].name)) {
			q->argv = argv + 1;
			q->argc = argc - 1;
			return lb_ctl_cmds[i].run(q, out);
		}
	char safe[128];
	snprintf(q->err, sizeof(q->err), "usage: unknown command '%s' (try: %s)",
	         lb_ctl_printable(argv[0], safe, sizeof(safe)), LB_CTL_HELP);
	return -EINVAL;
}

/* Runs one command line into out: "ok\n" and the output, or one "error: ...\n" line. */
static void
lb_ctl_exec(struct lb_ctl *ctl, char *line, struct buf *out)
{
	struct lb_ctl_req q = {.ctl = ctl};
	int r = buf_append_str(out, "ok\n");
	if (r >= 0)
		r = lb_ctl_dispatch(&q, line, out);
	if (r >= 0)
		return;
	buf_reset(out);
	if (!q.err[0])
		snprintf(q.err, sizeof(q.err), "%s",
		         r == -ENOBUFS ? "reply too large" : strerror(-r));
	buf_printf(out, "error: %s\n", q.err);
}

/* ---- requests ---- */

/* A line ends at LF, or at the end of the input without one. What came with it is handed over
 * too, so that a second command is answered rather than dropped unseen. */
static size_t
lb_ctl_line_complete(const char *in, size_t len, bool eof)
{
	return memchr(in, '\n', len) || eof ? len : 0;
}

/* Anything but blank lines after the first line. */
static bool
lb_ctl_more_lines(const char *rest, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\n", rest[i]) || !rest[i])
			return true;
	return false;
}

static void
lb_ctl_answer(void *data, char *line, size_t len, bool too_big, struct buf *out)
{
	const char *lf = memchr(line, '\n', len);
	if (lf && lb_ctl_more_lines(lf + 1, len - (size_t)(lf + 1 - line))) {
		/* nothing is run: a script must not find half of its commands done */
		buf_append_str(out, "error: usage: one command per connection (nothing was run)\n");
		return;
	}
	if (lf)
		len = (size_t)(lf - line);
	if (len && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	if (too_big || len > LB_CTL_LINE_MAX)
		buf_append_str(out, "error: line too long\n");
	else if (memchr(line, '\0', len))
		buf_append_str(out, "error: NUL byte in the command line\n");
	else
		lb_ctl_exec(data, line, out);
}

/* ---- the listening socket ---- */

static int
lb_ctl_sockaddr(const char *path, struct sockaddr_un *sa)
{
	size_t len = strlen(path);
	if (!len)
		return -EINVAL;
	if (len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

/* A socket file nobody answers on is left from a crash and removed; a live one is in use. */
static int
lb_ctl_clear_stale(const struct sockaddr_un *sa)
{
	struct stat st;
	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* a full backlog (EAGAIN) is a live server too */
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN)
		return -EADDRINUSE;
	if (errno != ECONNREFUSED && errno != ENOENT)
		return -errno;
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Binds under umask 0177 so the socket is never, even briefly, open to others. */
static int
lb_ctl_bind(const struct sockaddr_un *sa, struct stat *st)
{
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	mode_t old = umask(0177);
	int r = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int saved = errno;
	umask(old);
	if (r < 0)
		return -saved;
	if (listen(fd, 16) < 0 || lstat(sa->sun_path, st) < 0) {
		saved = errno;
		unlink(sa->sun_path);
		return -saved;
	}
	return TAKE_FD(fd);
}

int
lb_ctl_listen(struct ev_loop *loop, const char *path, lb_view_cb view, void *data,
              struct lb_ctl **out)
{
	struct sockaddr_un sa;
	struct stat st;
	int r = lb_ctl_sockaddr(path, &sa);
	if (r >= 0)
		r = lb_ctl_clear_stale(&sa);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = lb_ctl_bind(&sa, &st);
	if (fd < 0)
		return fd;
	struct lb_ctl *ctl = calloc(1, sizeof(*ctl));
	if (!ctl || !(ctl->path = strdup(path))) {
		free(ctl);
		unlink(path);
		return -ENOMEM;
	}
	*ctl = (struct lb_ctl){.loop = loop,
	                       .path = ctl->path,
	                       .dev = st.st_dev,
	                       .ino = st.st_ino,
	                       .view = view,
	                       .data = data};
	const struct reqsrv_cfg cfg = {
	    /* the line, CR and LF */
	    .in_max = LB_CTL_LINE_MAX + 2,
	    .out_max = LB_CTL_REPLY_MAX,
	    .conns_max = LB_CTL_CONNS_MAX,
	    .timeout_ms = LB_CTL_TIMEOUT_MS,
	    .complete = lb_ctl_line_complete,
	    .answer = lb_ctl_answer,
	    .data = ctl,
	};
	r = reqsrv_start(loop, TAKE_FD(fd), &cfg, &ctl->srv);
	if (r < 0) {
		lb_ctl_free(ctl);
		return r;
	}
	*out = ctl;
	return 0;
}

void
lb_ctl_free(struct lb_ctl *c)
{
	struct stat st;
	if (!c)
		return;
	reqsrv_free(c->srv);
	/* a newer instance may have replaced the file: remove only ours */
	if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	free(c->path);
	free(c);
}

int
lb_ctl_chown(struct lb_ctl *c, uid_t uid, gid_t gid)
{
	struct stat st;
	if (lstat(c->path, &st) < 0)
		return -errno;
	if (st.st_dev != c->dev || st.st_ino != c->ino)
		return -ESTALE;
	return lchown(c->path, uid, gid) < 0 ? -errno : 0;
}

/* ---- the client ---- */

/* Waits for events on fd until deadline (monotonic ns). */
static int
lb_ctl_wait(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = ev_clock_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		uint64_t ms = (deadline - now + 999999) / 1000000;
		int n = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* A unix connect fails at once with EAGAIN when the backlog is full: retry until deadline. */
static int
lb_ctl_connect(int fd, const struct sockaddr_un *sa, uint64_t deadline)
{
	for (;;) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (ev_clock_ns() >= deadline)
			return -ETIMEDOUT;
		poll(NULL, 0, 10);
	}
}

/* The server answers a too-long line before reading it all: a closed peer ends sending. */
static int
lb_ctl_send(int fd, const struct buf *req, uint64_t deadline)
{
	size_t sent = 0;
	while (sent < req->len) {
		ssize_t n =
		    send(fd, req->data + sent, req->len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			sent += (size_t)n;
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET)
			return 0;
		int r =
		    errno == EAGAIN || errno == EINTR ? lb_ctl_wait(fd, POLLOUT, deadline) : -errno;
		if (r < 0)
			return r;
	}
	return 0;
}

static int
lb_ctl_recv(int fd, struct buf *reply, uint64_t deadline)
{
	char chunk[16384];
	for (;;) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET && reply->len))
			return 0;
		int r = n > 0 ? buf_append(reply, chunk, (size_t)n) : 0;
		if (n < 0)
			r = errno == EAGAIN || errno == EINTR ? lb_ctl_wait(fd, POLLIN, deadline)
			                                      : -errno;
		if (r < 0)
			return r;
	}
}

int
lb_ctl_request(const char *path, const char *line, uint64_t timeout_ms, struct buf *out)
{
	uint64_t deadline = ev_clock_ns() + EV_MSEC(timeout_ms);
	struct sockaddr_un sa;
	_cleanup_buf_ struct buf req = BUF_INIT(strlen(line) + 2);
	_cleanup_buf_ struct buf reply = BUF_INIT(LB_CTL_REPLY_MAX);
	if (strchr(line, '\n'))
		return -EINVAL;
	int r = lb_ctl_sockaddr(path, &sa);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = lb_ctl_connect(fd, &sa, deadline);
	if (r >= 0)
		r = buf_printf(&req, "%s\n", line);
	if (r >= 0)
		r = lb_ctl_send(fd, &req, deadline);
	if (r >= 0)
		r = lb_ctl_recv(fd, &reply, deadline);
	if (r >= 0)
		r = buf_append(out, reply.data ? reply.data : "", reply.len);
	return r < 0 ? r : 0;
}
