#include "mail_relaytest.h"

#include "core/cleanup.h"
#include "core/dns.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Input held at once: one whole reply at its caps. */
#define IN_MAX ((MAIL_RELAYTEST_LINE_MAX + 2) * MAIL_RELAYTEST_REPLY_LINES)
/* Tricks per session: servers slow down or drop a client after ten or twenty refusals
 * (Postfix's smtpd_soft_error_limit and smtpd_hard_error_limit). */
#define TRICKS_PER_SESSION 8
/* A documentation address (RFC 5737): a literal that is nobody's. */
#define OUTSIDE_LITERAL "[192.0.2.1]"

/* ------------------------------------------------------------------ text */

bool
mail_relaytest_escape(char *dst, size_t cap, const char *src, size_t len)
{
	size_t at = strnlen(dst, cap);

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)src[i];
		char tmp[5];
		size_t n;
		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			tmp[0] = (char)ch, n = 1;
		} else if (ch == '\\') {
			tmp[0] = tmp[1] = '\\', n = 2;
		} else {
			snprintf(tmp, sizeof(tmp), "\\x%02x", ch);
			n = 4;
		}
		if (at + n >= cap)
			return false;
		memcpy(dst + at, tmp, n);
		dst[at += n] = '\0';
	}
	return true;
}

/* Reply codes are 2xx to 5xx with a second digit of 0 to 5 (RFC 5321 4.2.1); judges as much
 * of a line as has arrived, so that garbage is told before its line ends. */
static bool
code_digits_ok(const char *s, size_t n)
{
	static const char lo[] = "200", hi[] = "559";
	for (size_t i = 0; i < n && i < 3; i++)
		if (s[i] < lo[i] || s[i] > hi[i])
			return false;
	return n < 4 || s[3] == ' ' || s[3] == '-' || s[3] == '\r';
}

/* "250-text", "250 text", "250": the code, whether more lines follow, the text. */
static int
reply_line(const char *s, size_t n, int *code, bool *more, const char **text, size_t *tlen)
{
	if (n < 3 || !code_digits_ok(s, n) || memchr(s, '\0', n))
		return -EBADMSG;
	if (n > 3 && s[3] != ' ' && s[3] != '-')
		return -EBADMSG;
	*code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	*more = n > 3 && s[3] == '-';
	*text = n > 3 ? s + 4 : s + 3;
	*tlen = n > 3 ? n - 4 : 0;
	return 0;
}

static void
reply_add_text(struct mail_relaytest_reply *out, const char *text, size_t len)
{
	size_t at = strlen(out->text);

	if (out->truncated)
		return;
	if (out->lines > 1) {
		if (at + 1 >= sizeof(out->text)) {
			out->truncated = true;
			return;
		}
		out->text[at++] = '\n';
		out->text[at] = '\0';
	}
	if (!mail_relaytest_escape(out->text, sizeof(out->text), text, len))
		out->truncated = true;
}

int
mail_relaytest_reply_parse(const char *data, size_t len, struct mail_relaytest_reply *out)
{
	size_t pos = 0;

	*out = (struct mail_relaytest_reply){0};
	for (;;) {
		size_t avail = len - pos, n;
		const char *line = data + pos, *nl, *text;
		bool more;
		int code, r;
		if (out->lines == MAIL_RELAYTEST_REPLY_LINES)
			return -EMSGSIZE;
		nl = memchr(line, '\n',
		            avail < MAIL_RELAYTEST_LINE_MAX + 2 ? avail
		                                                : MAIL_RELAYTEST_LINE_MAX + 2);
		if (!nl && avail > MAIL_RELAYTEST_LINE_MAX + 1)
			return -EMSGSIZE;
		if (!nl) /* an incomplete line that cannot become a reply is garbage already */
			return code_digits_ok(line, avail) && !memchr(line, '\0', avail) ? 0
			                                                                 : -EBADMSG;
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n > MAIL_RELAYTEST_LINE_MAX)
			return -EMSGSIZE;
		if ((r = reply_line(line, n, &code, &more, &text, &n)) < 0)
			return r;
		if (out->lines++ > 0 && code != out->code)
			return -EBADMSG;
		out->code = code;
		reply_add_text(out, text, n);
		pos = (size_t)(nl - data) + 1;
		if (!more)
			return (int)pos;
	}
}

/* ------------------------------------------------------------------ names and addresses */

static bool
label_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

bool
mail_relaytest_name_valid(const char *s)
{
	size_t len = strlen(s), start = 0;
	bool digits = true;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (s[i] != '.' && s[i] != '\0')
			continue;
		if (!label_ok(s + start, i - start))
			return false;
		digits = strspn(s + start, "0123456789") >= i - start;
		start = i + 1;
	}
	return !digits;
}

bool
mail_relaytest_addr_valid(const char *s)
{
	static const char special[] = "#$&'*+/=?^_`{|}~.-";
	const char *at = strrchr(s, '@');
	char domain[MAIL_RELAYTEST_NAME_MAX];

	if (!at || at == s || at - s > MAIL_RELAYTEST_LOCAL_MAX || s[0] == '.' || at[-1] == '.')
		return false;
	for (const char *p = s; p < at; p++)
		if ((!isalnum((unsigned char)*p) && !strchr(special, *p)) ||
		    (p[0] == '.' && p[1] == '.'))
			return false;
	if (snprintf(domain, sizeof(domain), "%s", at + 1) >= (int)sizeof(domain))
		return false;
	return mail_relaytest_name_valid(domain);
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* "name" or "name:port"; a bare address was tried before. */
static int
target_name(const char *s, struct mail_relaytest_target *out)
{
	const char *colon = strrchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);

	if (colon && net_port_parse(colon + 1, 0, &out->port) < 0)
		return -EINVAL;
	if (n > 0 && s[n - 1] == '.') /* a final dot is allowed */
		n--;
	if (n == 0 || n >= sizeof(out->host))
		return -EINVAL;
	memcpy(out->host, s, n);
	out->host[n] = '\0';
	if (!mail_relaytest_name_valid(out->host))
		return -EINVAL;
	lower(out->host);
	return 0;
}

int
mail_relaytest_target_parse(const char *s, struct mail_relaytest_target *out)
{
	struct mail_relaytest_target t = {.port = 25};

	if (!s || !*s || strlen(s) > 300)
		return -EINVAL;
	if (net_addr_parse(s, NET_PORT_OPTIONAL, &t.addr) == 0) {
		t.is_addr = true;
		if (t.addr.port)
			t.port = t.addr.port;
		t.addr.port = t.port;
		if (net_addr_format(&t.addr, false, t.host, sizeof(t.host)) < 0)
			return -EINVAL;
	} else if (s[0] == '[' || target_name(s, &t) < 0) {
		return -EINVAL;
	}
	*out = t;
	return 0;
}

int
mail_relaytest_literal(const struct net_addr *a, char *buf, size_t len)
{
	struct net_addr n = *a;
	char text[NET_ADDR_STRLEN];
	int r;

	net_addr_normalize(&n);
	if ((r = net_addr_format(&n, false, text, sizeof(text))) < 0)
		return r;
	r = snprintf(buf, len, "[%s%s]", n.family == AF_INET6 ? "IPv6:" : "", text);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

void
mail_relaytest_reply_domain(const struct mail_relaytest_reply *r, char *buf, size_t len)
{
	size_t n = strcspn(r->text, " \n");

	buf[0] = '\0';
	if (n == 0 || n >= len || n >= MAIL_RELAYTEST_NAME_MAX)
		return;
	memcpy(buf, r->text, n);
	buf[n] = '\0';
	if (!mail_relaytest_name_valid(buf))
		buf[0] = '\0';
	lower(buf);
}

/* ------------------------------------------------------------------ tricks */

/* $F from, $l its local part, $T to, $L its local part, $O its domain, $D the server's domain,
 * $I the server's address literal. */
static const struct {
	const char *name, *what, *from, *rcpt;
	bool relay;
} trick_table[] = {
    {"plain", "outside sender, outside recipient", "<$F>", "<$T>", true},
    {"null-sender", "null sender (as bounces use)", "<>", "<$T>", true},
    {"own-domain-sender", "sender in the server's own domain", "<$l@$D>", "<$T>", true},
    {"localhost-sender", "sender at localhost", "<$l@localhost>", "<$T>", true},
    {"literal-sender", "sender at the server's address literal", "<$l@$I>", "<$T>", true},
    {"unqualified-sender", "sender without a domain", "<$l>", "<$T>", true},
    {"percent", "percent hack", "<$F>", "<$L%$O@$D>", true},
    {"percent-literal", "percent hack at the server's address literal", "<$F>", "<$L%$O@$I>", true},
    {"percent-unqualified", "percent hack without a domain", "<$F>", "<$L%$O>", true},
    {"source-route", "source route", "<$F>", "<@$D:$T>", true},
    {"source-route-bare", "source route without angle brackets", "<$F>", "@$D:$T", true},
    {"bang", "bang path", "<$F>", "<$O!$L@$D>", true},
    {"bang-unqualified", "bang path without a domain", "<$F>", "<$O!$L>", true},
    {"quoted", "quoted local part", "<$F>", "<\"$T\"@$D>", true},
    {"quoted-percent", "quoted percent hack", "<$F>", "<\"$L%$O\"@$D>", true},
    {"quoted-unqualified", "quoted address without a domain", "<$F>", "<\"$T\">", true},
    {"double-at", "two @ signs", "<$F>", "<$T@$D>", true},
    {"outside-literal", "address literal of an outside host", "<$F>", "<$L@" OUTSIDE_LITERAL ">",
     true},
    {"unqualified-local", "local name without a domain (not a relay)", "<$F>", "<$L>", false},
};

struct trick_parts {
	const char *from, *to, *domain, *literal;
	char from_local[MAIL_RELAYTEST_LOCAL_MAX + 1], to_local[MAIL_RELAYTEST_LOCAL_MAX + 1];
	const char *to_domain;
};

static const char *
trick_token(const struct trick_parts *p, char t)
{
	switch (t) {
	case 'F':
		return p->from;
	case 'l':
		return p->from_local;
	case 'T':
		return p->to;
	case 'L':
		return p->to_local;
	case 'O':
		return p->to_domain;
	case 'D':
		return p->domain;
	case 'I':
		return p->literal;
	default:
		return NULL;
	}
}

static int
trick_expand(const struct trick_parts *p, const char *pat, char *buf, size_t len)
{
	size_t at = 0;

	for (; *pat; pat++) {
		const char *v = pat;
		size_t n = 1;
		if (*pat == '$') {
			if (!(v = trick_token(p, *++pat))) /* also a '$' at the end */
				return -EINVAL;
			n = strlen(v);
		}
		if (at + n >= len)
			return -ENAMETOOLONG;
		memcpy(buf + at, v, n);
		at += n;
	}
	buf[at] = '\0';
	return 0;
}

static int
local_part(const char *addr, char *buf, size_t len)
{
	size_t n = (size_t)(strrchr(addr, '@') - addr);
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(buf, addr, n);
	buf[n] = '\0';
	return 0;
}

int
mail_relaytest_tricks(const struct mail_relaytest_params *p, struct mail_relaytest_trick *out,
                      size_t max, size_t *n)
{
	struct trick_parts parts = {
	    .from = p->from, .to = p->to, .domain = p->domain, .literal = p->literal};
	int r;

	if (!mail_relaytest_addr_valid(p->from) || !mail_relaytest_addr_valid(p->to) ||
	    !*p->domain || !*p->literal || strpbrk(p->domain, " \t\r\n<>") ||
	    strpbrk(p->literal, " \t\r\n<>"))
		return -EINVAL;
	if (max < ARRAY_SIZE(trick_table))
		return -ENOBUFS;
	if ((r = local_part(p->from, parts.from_local, sizeof(parts.from_local))) < 0 ||
	    (r = local_part(p->to, parts.to_local, sizeof(parts.to_local))) < 0)
		return r;
	parts.to_domain = strrchr(p->to, '@') + 1;
	for (size_t i = 0; i < ARRAY_SIZE(trick_table); i++) {
		struct mail_relaytest_trick *t = &out[i];
		*t = (struct mail_relaytest_trick){.name = trick_table[i].name,
		                                   .what = trick_table[i].what,
		                                   .relay = trick_table[i].relay};
		if ((r = trick_expand(&parts, trick_table[i].from, t->mail_from,
		                      sizeof(t->mail_from))) < 0 ||
		    (r = trick_expand(&parts, trick_table[i].rcpt, t->rcpt_to,
		                      sizeof(t->rcpt_to))) < 0)
			return r;
	}
	*n = ARRAY_SIZE(trick_table);
	return 0;
}

size_t
mail_relaytest_open_count(const struct mail_relaytest_result *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += r->out[i].accepted && r->out[i].trick.relay;
	return n;
}

/* ------------------------------------------------------------------ connection */

struct conn {
	int fd;
	bool connected;
	SSL_CTX *ctx;
	SSL *ssl;
	struct net_addr addr;
	const struct mail_relaytest_options *o;
	struct mail_relaytest_result *res;
	size_t len;
	char in[IN_MAX];
};

static uint64_t
step_deadline(const struct mail_relaytest_options *o)
{
	uint64_t d = dns_monotonic_ms() + o->step_ms;
	return o->deadline_ms && o->deadline_ms < d ? o->deadline_ms : d;
}

static int
wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = dns_monotonic_ms();
		struct pollfd p = {.fd = fd, .events = events};
		int r;
		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&p, 1, deadline - now > 60000 ? 60000 : (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* Waits for what OpenSSL asked for after a call that returned ret. */
static int
ssl_wait(struct conn *c, int ret, uint64_t deadline)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(c->fd, POLLIN, deadline);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(c->fd, POLLOUT, deadline);
	case SSL_ERROR_ZERO_RETURN:
	case SSL_ERROR_SYSCALL:
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

/* Reads what has arrived (at least a byte) into c->in. */
static int
conn_read(struct conn *c, uint64_t deadline)
{
	for (;;) {
		size_t room = sizeof(c->in) - c->len, got = 0;
		ssize_t n;
		int r, ret;
		if (c->ssl) {
			if ((ret = SSL_read_ex(c->ssl, c->in + c->len, room, &got)) == 1) {
				c->len += got;
				return 0;
			}
			if ((r = ssl_wait(c, ret, deadline)) < 0)
				return r;
			continue;
		}
		if ((n = recv(c->fd, c->in + c->len, room, 0)) > 0) {
			c->len += (size_t)n;
			return 0;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if ((r = wait_fd(c->fd, POLLIN, deadline)) < 0)
			return r;
	}
}

static int
conn_write(struct conn *c, const char *data, size_t len, uint64_t deadline)
{
	while (len > 0) {
		size_t done = 0;
		ssize_t n;
		int r, ret;
		if (c->ssl) {
			if ((ret = SSL_write_ex(c->ssl, data, len, &done)) != 1 &&
			    (r = ssl_wait(c, ret, deadline)) < 0)
				return r;
		} else if ((n = send(c->fd, data, len, MSG_NOSIGNAL)) >= 0) {
			done = (size_t)n;
		} else if (errno != EAGAIN && errno != EINTR) {
			return errno == EPIPE ? -ECONNRESET : -errno;
		} else if ((r = wait_fd(c->fd, POLLOUT, deadline)) < 0) {
			return r;
		}
		data += done;
		len -= done;
	}
	return 0;
}

/* -EPROTO for text that is not SMTP (left in c->in for the message), -ENOBUFS past the caps. */
static int
conn_reply(struct conn *c, struct mail_relaytest_reply *reply, uint64_t deadline)
{
	for (;;) {
		int r = mail_relaytest_reply_parse(c->in, c->len, reply);
		if (r > 0) {
			memmove(c->in, c->in + r, c->len - (size_t)r);
			c->len -= (size_t)r;
			return 0;
		}
		if (r == -EBADMSG)
			return -EPROTO;
		if (r < 0 || c->len == sizeof(c->in))
			return -ENOBUFS;
		if ((r = conn_read(c, deadline)) < 0)
			return r;
	}
}

static int conn_command(struct conn *c, struct mail_relaytest_reply *reply, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
conn_command(struct conn *c, struct mail_relaytest_reply *reply, const char *fmt, ...)
{
	char line[MAIL_RELAYTEST_PATH_MAX + 32];
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return -ENAMETOOLONG;
	memcpy(line + n, "\r\n", 2);
	if ((r = conn_write(c, line, (size_t)n + 2, step_deadline(c->o))) < 0)
		return r;
	return conn_reply(c, reply, step_deadline(c->o));
}

static int
conn_connect(struct conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len, elen = sizeof(int);
	int r, err = 0;

	if ((r = net_addr_to_sockaddr(&c->addr, &ss, &len)) < 0)
		return r;
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&ss, len) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		if ((r = wait_fd(c->fd, POLLOUT, step_deadline(c->o))) < 0)
			return r;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			return -errno;
		if (err)
			return -err;
	}
	c->connected = true;
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->ssl) {
		if (SSL_is_init_finished(c->ssl))
			SSL_shutdown(c->ssl); /* one close_notify, no waiting for the server's */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->connected = false;
}

static void
conn_freep(struct conn **p)
{
	if (!*p)
		return;
	conn_close(*p);
	SSL_CTX_free((*p)->ctx);
	free(*p);
}

/* ------------------------------------------------------------------ failures */

static void
format_ms(uint64_t ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* "ADDR:PORT" for messages. */
static void
conn_where(const struct conn *c, char where[NET_ADDR_STRLEN])
{
	if (net_addr_format(&c->addr, true, where, NET_ADDR_STRLEN) < 0)
		where[0] = '\0';
}

static int
tls_fail(struct conn *c, const char *what)
{
	char where[NET_ADDR_STRLEN], why[256] = "unknown error";
	unsigned long err = ERR_get_error();

	if (err)
		ERR_error_string_n(err, why, sizeof(why));
	conn_where(c, where);
	if (!c->res->error[0])
		snprintf(c->res->error, sizeof(c->res->error), "%s: %s: %s (--no-tls skips TLS)",
		         where, what, why);
	return -EIO;
}

/* Records why the test stops at step (the first reason only); returns r. */
static int
fail(struct conn *c, int r, const char *step)
{
	char where[NET_ADDR_STRLEN], t[32], sample[256] = "";
	char *e = c->res->error;
	size_t cap = sizeof(c->res->error);

	if (e[0])
		return r;
	if (r == -EIO && c->ssl)
		return tls_fail(c, step);
	conn_where(c, where);
	format_ms(c->o->step_ms, t, sizeof(t));
	mail_relaytest_escape(sample, sizeof(sample), c->in, c->len < 80 ? c->len : 80);
	if (r == -ETIMEDOUT && c->o->deadline_ms && dns_monotonic_ms() >= c->o->deadline_ms)
		snprintf(e, cap, "%s: %s: the time limit ran out", where, step);
	else if (r == -ETIMEDOUT)
		snprintf(e, cap, "%s: %s: no answer within %s", where, step, t);
	else if (r == -ECONNRESET)
		snprintf(e, cap, "%s: %s: the server closed the connection", where, step);
	else if (r == -EPROTO)
		snprintf(e, cap, "%s: %s: not an SMTP reply: '%s'", where, step, sample);
	else if (r == -ENOBUFS)
		snprintf(e, cap, "%s: %s: reply too long", where, step);
	else
		snprintf(e, cap, "%s: %s: %s", where, step, strerror(-r));
	return r;
}

/* The server answered step with a refusal to go on; returns r. */
static int
refused(struct conn *c, int r, const char *step, const struct mail_relaytest_reply *reply)
{
	char where[NET_ADDR_STRLEN], text[MAIL_RELAYTEST_TEXT_MAX];

	if (c->res->error[0])
		return r;
	conn_where(c, where);
	snprintf(text, sizeof(text), "%s", reply->text);
	for (char *p = text; (p = strchr(p, '\n'));)
		*p = ' ';
	snprintf(c->res->error, sizeof(c->res->error), "%s: %s: refused: %d %.400s", where, step,
	         reply->code, text);
	return r;
}

/* ------------------------------------------------------------------ sessions */

static bool
offers_starttls(const struct mail_relaytest_reply *ehlo)
{
	/* The lines after the first name the extensions. */
	for (const char *p = strchr(ehlo->text, '\n'); p; p = strchr(p, '\n')) {
		p++;
		if (strcspn(p, " \n") == 8 && !strncasecmp(p, "STARTTLS", 8))
			return true;
	}
	return false;
}

static int
tls_handshake(struct conn *c)
{
	uint64_t deadline = step_deadline(c->o);
	int ret, r;

	ERR_clear_error();
	if (!(c->ssl = SSL_new(c->ctx)) || !SSL_set_fd(c->ssl, c->fd))
		return tls_fail(c, "TLS set-up");
	if (c->o->sni && !SSL_set_tlsext_host_name(c->ssl, c->o->sni))
		return tls_fail(c, "TLS set-up");
	while ((ret = SSL_connect(c->ssl)) != 1) {
		if ((r = ssl_wait(c, ret, deadline)) == -EIO)
			return tls_fail(c, "TLS handshake");
		if (r < 0)
			return fail(c, r, "TLS handshake");
	}
	return 0;
}

static void
tls_record(struct conn *c)
{
	struct mail_relaytest_tls *t = &c->res->tls;
	const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
	X509 *cert = SSL_get1_peer_certificate(c->ssl);

	t->used = true;
	snprintf(t->version, sizeof(t->version), "%s", SSL_get_version(c->ssl));
	snprintf(t->cipher, sizeof(t->cipher), "%s", ci ? SSL_CIPHER_get_name(ci) : "");
	t->bits = ci ? SSL_CIPHER_get_bits(ci, NULL) : 0;
	if (cert) {
		char name[256];
		if (X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof(name)))
			mail_relaytest_escape(t->subject, sizeof(t->subject), name, strlen(name));
		X509_free(cert);
	}
}

static int
session_hello(struct conn *c, struct mail_relaytest_reply *ehlo, bool *esmtp)
{
	int r = conn_command(c, ehlo, "EHLO %s", c->o->helo);

	if (r < 0)
		return fail(c, r, "EHLO");
	*esmtp = ehlo->code == 250;
	if (*esmtp)
		return 0;
	if (ehlo->code / 100 != 5)
		return refused(c, -EPROTO, "EHLO", ehlo);
	if ((r = conn_command(c, ehlo, "HELO %s", c->o->helo)) < 0)
		return fail(c, r, "HELO");
	return ehlo->code == 250 ? 0 : refused(c, -EPROTO, "HELO", ehlo);
}

/* STARTTLS, the handshake, EHLO again; a refused STARTTLS leaves the session in plain text. */
static int
session_tls(struct conn *c, bool first)
{
	struct mail_relaytest_reply reply;
	bool esmtp;
	int r;

	if ((r = conn_command(c, &reply, "STARTTLS")) < 0)
		return fail(c, r, "STARTTLS");
	if (reply.code != 220) {
		if (first)
			snprintf(c->res->tls.refused, sizeof(c->res->tls.refused), "%d %.1000s",
			         reply.code, reply.text);
		return 0;
	}
	c->len = 0; /* what came before the handshake must not count as said under TLS */
	if ((r = tls_handshake(c)) < 0)
		return r;
	if (first)
		tls_record(c);
	if ((r = session_hello(c, &reply, &esmtp)) < 0)
		return r;
	return esmtp ? 0 : refused(c, -EPROTO, "EHLO after STARTTLS", &reply);
}

static int
session_open(struct conn *c)
{
	struct mail_relaytest_result *res = c->res;
	struct mail_relaytest_reply banner, ehlo;
	bool esmtp, first = res->sessions == 0;
	int r;

	if ((r = conn_connect(c)) < 0)
		return fail(c, r, "connect");
	res->sessions++;
	if ((r = conn_reply(c, &banner, step_deadline(c->o))) < 0)
		return fail(c, r, "greeting");
	if (first)
		res->banner = banner;
	if (banner.code != 220)
		return refused(c, -EPROTO, "greeting", &banner);
	if ((r = session_hello(c, &ehlo, &esmtp)) < 0)
		return r;
	if (first) {
		res->ehlo = ehlo;
		res->esmtp = esmtp;
		res->tls.offered = esmtp && offers_starttls(&ehlo);
	}
	if (!esmtp || c->o->no_tls || !offers_starttls(&ehlo))
		return 0;
	return session_tls(c, first);
}

static void
session_quit(struct conn *c)
{
	struct mail_relaytest_reply reply;
	uint64_t deadline = dns_monotonic_ms() + 1000;

	/* Polite, but a slow goodbye must not cost a whole step. */
	if (c->fd >= 0 && step_deadline(c->o) < deadline)
		deadline = step_deadline(c->o);
	if (c->fd >= 0 && conn_write(c, "QUIT\r\n", 6, deadline) == 0)
		conn_reply(c, &reply, deadline);
	conn_close(c);
}

/* The first of addrs that accepts a connection; one that answers badly ends the test. When
 * none does, the error names why for each. */
static int
first_session(struct conn *c, const struct net_addr *addrs, size_t n)
{
	char before[sizeof(c->res->error)] = "";
	int r = -EDESTADDRREQ;
	size_t at;

	for (size_t i = 0; i < n && i < MAIL_RELAYTEST_ADDRS_MAX; i++) {
		c->addr = addrs[i];
		c->res->addr = addrs[i];
		c->res->error[0] = '\0';
		if ((r = session_open(c)) == 0 || c->connected)
			return r;
		conn_close(c);
		at = strlen(before);
		if (snprintf(before + at, sizeof(before) - at, "%s%s", at ? "; " : "",
		             c->res->error) < 0)
			before[at] = '\0';
	}
	if (r == -EDESTADDRREQ)
		snprintf(before, sizeof(before), "no address to connect to");
	memcpy(c->res->error, before, sizeof(before));
	return r;
}

/* ------------------------------------------------------------------ tricks on the wire */

/* 0: answered, the session goes on; 1: answered, the session is over; -errno: no answer. */
static int
trick_run(struct conn *c, struct mail_relaytest_outcome *out)
{
	struct mail_relaytest_reply reply, rset;
	enum mail_relaytest_stage stage = MAIL_RELAYTEST_AT_MAIL;
	int r = conn_command(c, &reply, "MAIL FROM:%s", out->trick.mail_from);

	if (r < 0)
		return fail(c, r, "MAIL FROM");
	if (reply.code == 421)
		return refused(c, -ECONNRESET, "MAIL FROM", &reply);
	if (reply.code == 250) {
		if ((r = conn_command(c, &reply, "RCPT TO:%s", out->trick.rcpt_to)) < 0)
			return fail(c, r, "RCPT TO");
		if (reply.code == 421)
			return refused(c, -ECONNRESET, "RCPT TO", &reply);
		stage = MAIL_RELAYTEST_AT_RCPT;
	}
	out->stage = stage;
	out->reply = reply;
	out->accepted = stage == MAIL_RELAYTEST_AT_RCPT && (reply.code == 250 || reply.code == 251);
	r = conn_command(c, &rset, "RSET");
	return r == 0 && rset.code == 250 ? 0 : 1;
}

static int
choose_domain(struct conn *c, char *literal, size_t len)
{
	struct mail_relaytest_result *res = c->res;
	char *d = res->domain;
	int r;

	if ((r = mail_relaytest_literal(&res->addr, literal, len)) < 0)
		return r;
	if (c->o->domain)
		snprintf(d, sizeof(res->domain), "%s", c->o->domain);
	else
		mail_relaytest_reply_domain(&res->ehlo, d, sizeof(res->domain));
	if (!d[0])
		mail_relaytest_reply_domain(&res->banner, d, sizeof(res->domain));
	if (!d[0])
		snprintf(d, sizeof(res->domain), "%s", c->o->fallback ? c->o->fallback : literal);
	return 0;
}

static int
build_tricks(struct conn *c)
{
	struct mail_relaytest_result *res = c->res;
	struct mail_relaytest_trick tricks[MAIL_RELAYTEST_TRICKS_MAX];
	char literal[MAIL_RELAYTEST_NAME_MAX];
	struct mail_relaytest_params p = {c->o->from, c->o->to, res->domain, literal};
	int r;

	if ((r = choose_domain(c, literal, sizeof(literal))) < 0 ||
	    (r = mail_relaytest_tricks(&p, tricks, ARRAY_SIZE(tricks), &res->n)) < 0) {
		snprintf(res->error, sizeof(res->error), "cannot build the tricks: %s",
		         strerror(-r));
		return r;
	}
	for (size_t i = 0; i < res->n; i++)
		res->out[i].trick = tricks[i];
	return 0;
}

/* A session closed under a trick is opened again once for it. */
static int
run_tricks(struct conn *c)
{
	struct mail_relaytest_result *res = c->res;
	size_t in_session = 0;
	bool retried = false;
	int r;

	for (size_t i = 0; i < res->n;) {
		if (c->fd < 0 && (r = session_open(c)) < 0)
			return r;
		if ((r = trick_run(c, &res->out[i])) < 0) {
			conn_close(c);
			if (r != -ECONNRESET || retried)
				return r;
			retried = true;
			res->error[0] = '\0';
			in_session = 0;
			continue;
		}
		retried = false;
		i++;
		if (r == 1 || ++in_session == TRICKS_PER_SESSION) {
			session_quit(c);
			in_session = 0;
		}
	}
	session_quit(c);
	return 0;
}

static SSL_CTX *
tls_context(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	/* Whom the server claims to be does not matter to a relay test; what it negotiates is
	 * reported. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	return ctx;
}

int
mail_relaytest_run(const struct net_addr *addrs, size_t naddrs,
                   const struct mail_relaytest_options *o, struct mail_relaytest_result *result)
{
	_cleanup_(conn_freep) struct conn *c = calloc(1, sizeof(*c));
	int r;

	memset(result, 0, sizeof(*result));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->o = o;
	c->res = result;
	if (!(c->ctx = tls_context())) {
		snprintf(result->error, sizeof(result->error), "cannot set up TLS");
		return -EIO;
	}
	if ((r = first_session(c, addrs, naddrs)) < 0 || (r = build_tricks(c)) < 0)
		return r;
	return run_tricks(c);
}
