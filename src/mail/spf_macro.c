#include "spf_macro.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One parsed "%{...}" (or %%, %_, %-) token. */
struct macro_token {
	char letter;     /* lower case; '%', '_' or '-' for the escapes */
	bool url;        /* upper-case letter: URL-escape the result */
	bool reverse;    /* "r" transformer */
	unsigned digits; /* 0: keep every part */
	char delims[8];  /* NUL-terminated; "" means "." */
	size_t len;      /* bytes consumed from the input */
};

bool
spf_macro_is_alnum(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_delim(char c)
{
	return c && strchr(".-+,/_=", c) != NULL;
}

static bool
letter_ok(char c, enum spf_macro_kind kind)
{
	if (c && strchr("slodiphv", c))
		return true;
	/* §7.3: c, r and t are allowed in explanation text only */
	return kind == SPF_MACRO_EXP && c && strchr("crt", c);
}

static int
parse_digits(const char *s, size_t len, size_t *i, unsigned *out)
{
	bool any = false;
	unsigned v = 0;
	for (; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
		any = true;
		if (v < 100000)
			v = v * 10 + (unsigned)(s[*i] - '0');
	}
	/* "If DIGITS is specified, the value MUST be nonzero." */
	if (any && v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* s[0] == '%'. Fills t; -EINVAL for a bad macro. */
static int
parse_token(const char *s, size_t len, enum spf_macro_kind kind, struct macro_token *t)
{
	*t = (struct macro_token){.len = 2};
	if (len < 2)
		return -EINVAL;
	if (s[1] == '%' || s[1] == '_' || s[1] == '-') {
		t->letter = s[1];
		return 0;
	}
	if (s[1] != '{' || len < 4)
		return -EINVAL;
	char c = s[2];
	t->url = c >= 'A' && c <= 'Z';
	t->letter = t->url ? (char)(c - 'A' + 'a') : c;
	if (!letter_ok(t->letter, kind))
		return -EINVAL;
	size_t i = 3;
	if (parse_digits(s, len, &i, &t->digits) < 0)
		return -EINVAL;
	if (i < len && (s[i] == 'r' || s[i] == 'R')) {
		t->reverse = true;
		i++;
	}
	size_t nd = 0;
	for (; i < len && is_delim(s[i]); i++)
		if (nd < sizeof(t->delims) - 1 && !strchr(t->delims, s[i]))
			t->delims[nd++] = s[i];
	if (i >= len || s[i] != '}')
		return -EINVAL;
	t->len = i + 1;
	return 0;
}

static bool
literal_ok(unsigned char c, enum spf_macro_kind kind)
{
	if (c == ' ')
		return kind == SPF_MACRO_EXP;
	return c >= 0x21 && c <= 0x7e && c != '%';
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool
toplabel_ok(const char *s, size_t len)
{
	bool alpha = false, dash = false;
	if (len == 0 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '-')
			dash = true;
		else if (!spf_macro_is_alnum((unsigned char)s[i]))
			return false;
		else if (s[i] > '9')
			alpha = true;
	}
	return alpha || dash;
}

/* domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static bool
domain_end_ok(const char *s, size_t len, bool ends_in_macro)
{
	if (ends_in_macro)
		return true;
	if (len > 0 && s[len - 1] == '.')
		len--;
	size_t dot = len;
	while (dot > 0 && s[dot - 1] != '.')
		dot--;
	return dot > 0 && toplabel_ok(s + dot, len - dot);
}

int
spf_macro_check(const char *s, size_t len, enum spf_macro_kind kind)
{
	bool ends_in_macro = false;
	for (size_t i = 0; i < len;) {
		struct macro_token t;
		if (s[i] == '%') {
			if (parse_token(s + i, len - i, kind, &t) < 0)
				return -EINVAL;
			i += t.len;
			ends_in_macro = true;
			continue;
		}
		if (!literal_ok((unsigned char)s[i], kind))
			return -EINVAL;
		ends_in_macro = false;
		i++;
	}
	if (kind != SPF_MACRO_DOMAIN)
		return 0;
	return len > 0 && domain_end_ok(s, len, ends_in_macro) ? 0 : -EINVAL;
}

/*
 * Output under construction. A domain keeps its tail when it overflows (the left side is what
 * §7.3 truncates); an explanation keeps its head.
 */
struct sink {
	char *buf;
	size_t cap; /* usable bytes, excluding the NUL */
	size_t len;
	bool keep_tail;
	bool overflow;
};

static void
sink_put(struct sink *k, const char *p, size_t n)
{
	if (k->len + n <= k->cap) {
		memcpy(k->buf + k->len, p, n);
		k->len += n;
		return;
	}
	k->overflow = true;
	if (!k->keep_tail) {
		memcpy(k->buf + k->len, p, k->cap - k->len);
		k->len = k->cap;
		return;
	}
	if (n >= k->cap) {
		memcpy(k->buf, p + n - k->cap, k->cap);
		k->len = k->cap;
		return;
	}
	size_t drop = k->len + n - k->cap;
	memmove(k->buf, k->buf + drop, k->len - drop);
	k->len -= drop;
	memcpy(k->buf + k->len, p, n);
	k->len += n;
}

static void
put_escaped(struct sink *k, const char *p, size_t n, bool url)
{
	static const char hex[] = "0123456789ABCDEF";
	if (!url) {
		sink_put(k, p, n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (spf_macro_is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			sink_put(k, p + i, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			sink_put(k, e, 3);
		}
	}
}

/* "1.0.0.0...8.B.D.0.1.0.0.2": the nibble form of an IPv6 address. */
static void
ip_dotted(const struct net_addr *ip, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	if (ip->family != AF_INET6) {
		if (!inet_ntop(AF_INET, &ip->u.v4, out, (socklen_t)cap))
			out[0] = '\0';
		return;
	}
	size_t o = 0;
	for (size_t i = 0; i < 16 && o + 4 <= cap; i++) {
		out[o++] = hex[ip->u.bytes[i] >> 4];
		out[o++] = '.';
		out[o++] = hex[ip->u.bytes[i] & 15];
		out[o++] = '.';
	}
	out[o ? o - 1 : 0] = '\0';
}

/* The raw value of a letter; buf holds values that have to be formatted. */
static const char *
letter_value(char letter, const struct spf_macro_vars *v, char *buf, size_t cap, size_t *len)
{
	const char *s = "";
	switch (letter) {
	case 's':
		s = v->sender;
		break;
	case 'l':
		*len = v->local_len;
		return v->sender;
	case 'o':
		s = v->sender_domain;
		break;
	case 'd':
		s = v->domain;
		break;
	case 'h':
		s = v->helo;
		break;
	case 'r':
		s = v->receiver && *v->receiver ? v->receiver : "unknown";
		break;
	case 'v':
		s = v->ip->family == AF_INET6 ? "ip6" : "in-addr";
		break;
	case 'i':
		ip_dotted(v->ip, buf, cap);
		s = buf;
		break;
	case 'c':
		if (v->ip_text) {
			s = v->ip_text;
			break;
		}
		if (!inet_ntop(v->ip->family, v->ip->u.bytes, buf, (socklen_t)cap))
			buf[0] = '\0';
		s = buf;
		break;
	case 't':
		snprintf(buf, cap, "%llu", (unsigned long long)v->now);
		s = buf;
		break;
	case 'p':
		s = v->validated ? v->validated(v->arg) : "unknown";
		break;
	}
	*len = s ? strlen(s) : 0;
	return s ? s : "";
}

/* Bounds of the parts of value split on delims. */
struct parts {
	size_t n;
	uint16_t start[SPF_MACRO_VALUE_MAX + 1];
	uint16_t end[SPF_MACRO_VALUE_MAX + 1];
};

static void
split_parts(const char *s, size_t len, const char *delims, struct parts *p)
{
	const char *d = *delims ? delims : ".";
	p->n = 0;
	p->start[0] = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] && strchr(d, s[i])) {
			p->end[p->n++] = (uint16_t)i;
			p->start[p->n] = (uint16_t)(i + 1);
		}
	}
	p->end[p->n++] = (uint16_t)len;
}

/* Applies the transformers (split, reverse, keep the right-hand parts, join with dots). */
static void
put_transformed(struct sink *k, const struct macro_token *t, const char *s, size_t len)
{
	struct parts p;
	if (len > SPF_MACRO_VALUE_MAX)
		len = SPF_MACRO_VALUE_MAX;
	split_parts(s, len, t->delims, &p);
	size_t keep = t->digits && t->digits < p.n ? t->digits : p.n;
	for (size_t j = 0; j < keep; j++) {
		/* reversed, the right-hand parts are the first ones, last first */
		size_t idx = t->reverse ? keep - 1 - j : p.n - keep + j;
		if (j > 0)
			sink_put(k, ".", 1);
		put_escaped(k, s + p.start[idx], p.end[idx] - p.start[idx], t->url);
	}
}

static void
put_token(struct sink *k, const struct macro_token *t, const struct spf_macro_vars *v)
{
	char buf[80];
	size_t len;
	switch (t->letter) {
	case '%':
		sink_put(k, "%", 1);
		return;
	case '_':
		sink_put(k, " ", 1);
		return;
	case '-':
		sink_put(k, "%20", 3);
		return;
	}
	const char *s = letter_value(t->letter, v, buf, sizeof(buf), &len);
	put_transformed(k, t, s, len);
}

/* §7.3: drop whole labels from the left until at most 253 characters remain. */
static int
finish_domain(struct sink *k, char *out, size_t cap)
{
	size_t len = k->len;
	if (len > 0 && k->buf[len - 1] == '.')
		len--;
	size_t from = 0;
	if (len > SPF_MACRO_NAME_MAX - 1) {
		from = len - (SPF_MACRO_NAME_MAX - 1);
		while (from < len && k->buf[from - 1] != '.')
			from++;
		if (from >= len)
			return -ENAMETOOLONG;
	} else if (k->overflow) {
		return -ENAMETOOLONG;
	}
	if (len - from >= cap)
		return -ENAMETOOLONG;
	memmove(out, k->buf + from, len - from);
	out[len - from] = '\0';
	return 0;
}

int
spf_macro_expand(const char *s, size_t len, enum spf_macro_kind kind,
                 const struct spf_macro_vars *v, char *out, size_t cap)
{
	char work[1024];
	bool domain = kind == SPF_MACRO_DOMAIN;
	struct sink k = {.buf = domain ? work : out,
	                 .cap = domain ? sizeof(work) : cap - 1,
	                 .keep_tail = domain};

	if (cap == 0)
		return -EINVAL;
	out[0] = '\0';
	if (spf_macro_check(s, len, kind) < 0)
		return -EINVAL;
	for (size_t i = 0; i < len;) {
		size_t lit = i;
		while (lit < len && s[lit] != '%')
			lit++;
		sink_put(&k, s + i, lit - i);
		if (lit >= len)
			break;
		struct macro_token t;
		parse_token(s + lit, len - lit, kind, &t);
		put_token(&k, &t, v);
		i = lit + t.len;
	}
	if (domain)
		return finish_domain(&k, out, cap);
	out[k.len] = '\0';
	return 0;
}
