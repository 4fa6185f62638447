/*
 * HTTP/1.1 head parser and chunked-framing walker (RFC 9112); see http1.h.
 * The head parser is one left-to-right pass without state between calls. Every byte is
 * checked when it is read, so an error comes at the first byte that makes the head invalid
 * whatever follows it, and any prefix of a valid head gives 0: a head fed in pieces gives
 * 0 until it is whole, then the same answer as in one piece.
 */
#include "http1.h"

#include <limits.h>
#include <string.h>

/* Byte classes (http1_cls) */
enum {
	HTTP1_C_TCHAR = 1u << 0,  /* token */
	HTTP1_C_VALUE = 1u << 1,  /* field value, reason phrase: HTAB, SP, VCHAR, obs-text */
	HTTP1_C_TARGET = 1u << 2, /* request-target: VCHAR but '#' */
	HTTP1_C_HEX = 1u << 3,
	HTTP1_C_HOST = 1u << 4, /* Host: unreserved, sub-delims, ":[]%" */
	HTTP1_C_DIGIT = 1u << 5,
	HTTP1_C_OWS = 1u << 6, /* SP, HTAB */
};

/*
 * Class bits of every byte, and its ASCII lower case: tokens are RFC 9110 tchar, values
 * field-vchar plus SP and HTAB, Host characters RFC 3986 reg-name, IP-literal and ":".
 * A target holds no fragment ('#') and no byte outside ASCII (RFC 3986 has none): a server
 * could read either in more than one way.
 */
/* clang-format off */
static const uint8_t http1_cls[256] = {
	/* 00 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* 08 */ 0x00, 0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* 10 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* 18 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* 20 */ 0x42, 0x17, 0x06, 0x03, 0x17, 0x17, 0x17, 0x17,
	/* 28 */ 0x16, 0x16, 0x17, 0x17, 0x16, 0x17, 0x17, 0x06,
	/* 30 */ 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f,
	/* 38 */ 0x3f, 0x3f, 0x16, 0x16, 0x06, 0x16, 0x06, 0x06,
	/* 40 */ 0x06, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x17,
	/* 48 */ 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
	/* 50 */ 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
	/* 58 */ 0x17, 0x17, 0x17, 0x16, 0x06, 0x16, 0x07, 0x17,
	/* 60 */ 0x07, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x17,
	/* 68 */ 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
	/* 70 */ 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
	/* 78 */ 0x17, 0x17, 0x17, 0x06, 0x07, 0x06, 0x17, 0x00,
	/* 80 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* 88 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* 90 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* 98 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* a0 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* a8 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* b0 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* b8 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* c0 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* c8 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* d0 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* d8 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* e0 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* e8 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* f0 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
	/* f8 */ 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
};

static const uint8_t http1_lower[256] = {
	/* 00 */ 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	/* 08 */ 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	/* 10 */ 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	/* 18 */ 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
	/* 20 */ 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
	/* 28 */ 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
	/* 30 */ 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
	/* 38 */ 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
	/* 40 */ 0x40, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67,
	/* 48 */ 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
	/* 50 */ 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
	/* 58 */ 0x78, 0x79, 0x7a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
	/* 60 */ 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67,
	/* 68 */ 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
	/* 70 */ 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
	/* 78 */ 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
	/* 80 */ 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
	/* 88 */ 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
	/* 90 */ 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
	/* 98 */ 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
	/* a0 */ 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	/* a8 */ 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
	/* b0 */ 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
	/* b8 */ 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
	/* c0 */ 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
	/* c8 */ 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
	/* d0 */ 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7,
	/* d8 */ 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
	/* e0 */ 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
	/* e8 */ 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
	/* f0 */ 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
	/* f8 */ 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
};
/* clang-format on */

/* The fields the parser acts on */
enum http1_kind {
	HTTP1_K_OTHER,
	HTTP1_K_CL,
	HTTP1_K_TE,
	HTTP1_K_HOST,
	HTTP1_K_CONNECTION,
	HTTP1_K_EXPECT,
	HTTP1_K_UPGRADE,
	HTTP1_K_HOP, /* Keep-Alive, Proxy-Connection, TE, Trailer */
	HTTP1_K_XFP,
};

static const unsigned http1_kind_flags[] = {
    [HTTP1_K_CL] = HTTP1_H_CL,       [HTTP1_K_TE] = HTTP1_H_TE,
    [HTTP1_K_HOST] = HTTP1_H_HOST,   [HTTP1_K_CONNECTION] = HTTP1_H_HOP,
    [HTTP1_K_UPGRADE] = HTTP1_H_HOP, [HTTP1_K_HOP] = HTTP1_H_HOP,
    [HTTP1_K_XFP] = HTTP1_H_XFP,
};

/* Connection options */
enum {
	HTTP1_CONN_CLOSE = 1u << 0,
	HTTP1_CONN_KEEP_ALIVE = 1u << 1,
	HTTP1_CONN_UPGRADE = 1u << 2,
	HTTP1_CONN_OTHER = 1u << 3, /* names a field, which becomes hop-by-hop */
};

/* Heads longer than this are never complete: head_len must fit the int returned. */
#define HTTP1_LEN_MAX ((size_t)INT_MAX)

struct http1_ctx {
	const unsigned char *b;
	size_t len;
	struct http1_msg *m;
	bool response;
	bool cl_field, cl_set;     /* Content-Length seen; a value read */
	bool te_field, te_chunked; /* Transfer-Encoding seen; chunked in it */
	bool te_after;             /* response: a coding after chunked */
	bool upgrade_field, expect;
	unsigned conn; /* HTTP1_CONN_* */
	uint64_t cl;
};

/*
 * True when some byte of w is below lo (at most 0x80) or is DEL; in a target (!obs) also
 * when one is '#' or above 0x7f.
 */
static inline bool
http1_swar_stop(uint64_t w, uint64_t lo, bool obs)
{
	const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
	uint64_t del = w ^ (ones * 0x7f);
	uint64_t stop = ((w - ones * lo) & ~w) | ((del - ones) & ~del);
	if (!obs) {
		uint64_t hash = w ^ (ones * '#');
		stop |= w | ((hash - ones) & ~hash);
	}
	return stop & high;
}

/*
 * The end of a run of class cls (HTTP1_C_VALUE or HTTP1_C_TARGET) from i: eight bytes at a
 * time while none can end it, the rest byte by byte.
 */
static size_t
http1_scan(const unsigned char *b, size_t i, size_t len, unsigned cls, uint64_t lo)
{
	bool obs = cls != HTTP1_C_TARGET;
	for (;;) {
		uint64_t w;
		while (i + 8 <= len && (memcpy(&w, b + i, 8), !http1_swar_stop(w, lo, obs)))
			i += 8;
		size_t end = i + 8 < len ? i + 8 : len;
		while (i < end && (http1_cls[b[i]] & cls))
			i++;
		if (i < end || i == len)
			return i;
	}
}

static bool
http1_caseeq(const unsigned char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (http1_lower[a[i]] != http1_lower[(unsigned char)b[i]])
			return false;
	return true;
}

static size_t
http1_skip_ows(const unsigned char *v, size_t n, size_t i)
{
	while (i < n && (http1_cls[v[i]] & HTTP1_C_OWS))
		i++;
	return i;
}

static enum http1_kind
http1_kind(const unsigned char *s, size_t n)
{
	switch (n) {
	case 2:
		return http1_caseeq(s, "te", 2) ? HTTP1_K_HOP : HTTP1_K_OTHER;
	case 4:
		return http1_caseeq(s, "host", 4) ? HTTP1_K_HOST : HTTP1_K_OTHER;
	case 6:
		return http1_caseeq(s, "expect", 6) ? HTTP1_K_EXPECT : HTTP1_K_OTHER;
	case 7:
		if (http1_caseeq(s, "upgrade", 7))
			return HTTP1_K_UPGRADE;
		return http1_caseeq(s, "trailer", 7) ? HTTP1_K_HOP : HTTP1_K_OTHER;
	case 10:
		if (http1_caseeq(s, "connection", 10))
			return HTTP1_K_CONNECTION;
		return http1_caseeq(s, "keep-alive", 10) ? HTTP1_K_HOP : HTTP1_K_OTHER;
	case 14:
		return http1_caseeq(s, "content-length", 14) ? HTTP1_K_CL : HTTP1_K_OTHER;
	case 16:
		return http1_caseeq(s, "proxy-connection", 16) ? HTTP1_K_HOP : HTTP1_K_OTHER;
	case 17:
		if (http1_caseeq(s, "transfer-encoding", 17))
			return HTTP1_K_TE;
		return http1_caseeq(s, "x-forwarded-proto", 17) ? HTTP1_K_XFP : HTTP1_K_OTHER;
	}
	return HTTP1_K_OTHER;
}

static int
http1_method_of(const unsigned char *s, size_t n)
{
	static const struct {
		char name[8];
		size_t len;
		int method;
	} methods[] = {
	    {"GET", 3, HTTP1_GET},     {"POST", 4, HTTP1_POST},       {"HEAD", 4, HTTP1_HEAD},
	    {"PUT", 3, HTTP1_PUT},     {"DELETE", 6, HTTP1_DELETE},   {"OPTIONS", 7, HTTP1_OPTIONS},
	    {"PATCH", 5, HTTP1_PATCH}, {"CONNECT", 7, HTTP1_CONNECT}, {"TRACE", 5, HTTP1_TRACE},
	};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].len == n && memcmp(methods[i].name, s, n) == 0)
			return methods[i].method;
	return HTTP1_OTHER;
}

/* A line end at *i, CRLF or bare LF: 1 with *i past it, 0 for more bytes, or HTTP1_E400. */
static int
http1_eol(const struct http1_ctx *x, size_t *i)
{
	size_t p = *i;
	if (p == x->len)
		return 0;
	if (x->b[p] == '\n') {
		*i = p + 1;
		return 1;
	}
	if (x->b[p] != '\r')
		return HTTP1_E400;
	if (p + 1 == x->len)
		return 0;
	if (x->b[p + 1] != '\n')
		return HTTP1_E400;
	*i = p + 2;
	return 1;
}

/* Empty lines before a request line (RFC 9112 2.2). */
static int
http1_skip_empty(const struct http1_ctx *x, size_t *i)
{
	int r = 1;
	while (*i < x->len && (x->b[*i] == '\r' || x->b[*i] == '\n'))
		if ((r = http1_eol(x, i)) <= 0)
			return r;
	return *i < x->len;
}

/*
 * "HTTP/1." and a digit, checked byte by byte so that a prefix is judged as it stands.
 * HTTP/1.2 to 1.9 are read as 1.1: a higher minor version only adds to 1.1 and a recipient
 * processes such a message as the highest minor it knows (RFC 9110 2.5).
 */
static int
http1_version(const struct http1_ctx *x, size_t *i)
{
	static const char lit[] = "HTTP/x.";
	for (size_t k = 0; k < 8; k++) {
		if (*i + k == x->len)
			return 0;
		unsigned char c = x->b[*i + k];
		if (k != 5 && k != 7) {
			if (c != (unsigned char)lit[k])
				return HTTP1_E400;
			continue;
		}
		if (!(http1_cls[c] & HTTP1_C_DIGIT))
			return HTTP1_E400;
		if (k == 5 && c != '1')
			return HTTP1_E505;
	}
	x->m->minor = x->b[*i + 7] > '0';
	*i += 8;
	return 1;
}

/* A non-empty run of class cls and a SP: 1 with *i past the SP, 0, or HTTP1_E400. */
static int
http1_run_sp(const struct http1_ctx *x, size_t *i, unsigned cls)
{
	size_t s = *i, p = s;
	if (cls == HTTP1_C_TARGET)
		p = http1_scan(x->b, s, x->len, cls, 0x21);
	else
		while (p < x->len && (http1_cls[x->b[p]] & cls))
			p++;
	if (p == x->len)
		return 0;
	if (x->b[p] != ' ' || p == s)
		return HTTP1_E400;
	*i = p + 1;
	return 1;
}

/*
 * host [":" port] (RFC 3986 3.2.2, 3.2.3): an IP-literal in brackets, or a reg-name or IPv4
 * address, then digits. A prefix (!final) is judged as it stands.
 */
static int
http1_authority(const unsigned char *v, size_t n, bool final)
{
	size_t i = 0;
	if (n && v[0] == '[') {
		while (++i < n && v[i] != ']')
			if (!(http1_cls[v[i]] & HTTP1_C_HOST) || v[i] == '[')
				return HTTP1_E400;
		if (i == n)
			return final ? HTTP1_E400 : 0;
		i++;
	} else {
		while (i < n && (http1_cls[v[i]] & HTTP1_C_HOST) && v[i] != ':' && v[i] != '[' &&
		       v[i] != ']')
			i++;
	}
	if (i < n && v[i] == ':')
		while (++i < n && (http1_cls[v[i]] & HTTP1_C_DIGIT))
			;
	return i == n ? 0 : HTTP1_E400;
}

/* "http://" or "https://" in any case: its length, 0 for more bytes, or HTTP1_E400. */
static int
http1_scheme(const unsigned char *t, size_t n, bool final)
{
	static const char *const schemes[] = {"http://", "https://"};
	bool prefix = false;
	for (size_t k = 0; k < sizeof(schemes) / sizeof(schemes[0]); k++) {
		size_t len = strlen(schemes[k]);
		if (!http1_caseeq(t, schemes[k], n < len ? n : len))
			continue;
		if (n >= len)
			return (int)len;
		prefix = true;
	}
	return prefix && !final ? 0 : HTTP1_E400;
}

/*
 * An absolute-form target: an http(s) URI whose authority is a host and maybe a port (no
 * userinfo: RFC 9110 4.2.4) and whose path is empty or absolute. Its authority stands for
 * Host (RFC 9112 3.2.2), its path and query are what goes on.
 */
static int
http1_absolute(const struct http1_ctx *x, size_t off, size_t n, bool final)
{
	struct http1_msg *m = x->m;
	const unsigned char *t = x->b + off;
	int r = http1_scheme(t, n, final);
	if (r <= 0)
		return r;
	size_t a = (size_t)r, e = a;
	while (e < n && t[e] != '/')
		e++;
	bool whole = e < n || final;
	if ((e > a && t[a] == ':') || (whole && e == a))
		return HTTP1_E400; /* an http URI has a host (RFC 9110 4.2.1) */
	if ((r = http1_authority(t + a, e - a, whole)) < 0 || !whole)
		return r;
	m->absolute = true;
	m->host_off = (uint32_t)(off + a);
	m->host_len = (uint32_t)(e - a);
	m->origin_off = (uint32_t)(off + e);
	m->origin_len = (uint32_t)(n - e);
	return 0;
}

/*
 * The request-target (RFC 9112 3.2) in its n bytes there are (final: all of it):
 * origin-form, "*" for OPTIONS, an authority for CONNECT, or absolute-form. Any other (a
 * bare word, an authority for another method, another scheme) is 400: a server could take
 * it for a path, a host or nothing.
 */
static int
http1_target(const struct http1_ctx *x, size_t off, size_t n, bool final)
{
	struct http1_msg *m = x->m;
	const unsigned char *t = x->b + off;
	m->origin_off = (uint32_t)off;
	m->origin_len = (uint32_t)n;
	if (m->method == HTTP1_CONNECT)
		return http1_authority(t, n, final);
	if (n == 0 || t[0] == '/')
		return 0;
	if (t[0] == '*')
		return n == 1 && m->method == HTTP1_OPTIONS ? 0 : HTTP1_E400;
	return http1_absolute(x, off, n, final);
}

static int
http1_request_line(const struct http1_ctx *x, size_t *pos)
{
	struct http1_msg *m = x->m;
	size_t i = *pos;
	int r = http1_run_sp(x, &i, HTTP1_C_TCHAR);
	if (r <= 0)
		return r;
	m->method_off = (uint32_t)*pos;
	m->method_len = (uint32_t)(i - 1 - *pos);
	m->method = http1_method_of(x->b + *pos, m->method_len);
	m->target_off = (uint32_t)i;
	if ((r = http1_run_sp(x, &i, HTTP1_C_TARGET)) < 0)
		return r;
	size_t end = r > 0 ? i - 1 : x->len;
	int t = http1_target(x, m->target_off, end - m->target_off, r > 0);
	if (t < 0 || r == 0)
		return t;
	m->target_len = (uint32_t)(end - m->target_off);
	const unsigned char *q = memchr(x->b + m->origin_off, '?', m->origin_len);
	m->path_len = q ? (uint32_t)(q - x->b - m->origin_off) : m->origin_len;
	if ((r = http1_version(x, &i)) > 0 && (r = http1_eol(x, &i)) > 0)
		*pos = i;
	return r;
}

/* HTTP-version SP 3DIGIT [SP reason-phrase]; the SP before an empty reason may be missing. */
static int
http1_status_line(const struct http1_ctx *x, size_t *pos)
{
	size_t i = *pos;
	int r = http1_version(x, &i);
	if (r <= 0)
		return r;
	for (size_t k = 0; k < 4; k++, i++) {
		if (i == x->len)
			return 0;
		unsigned char c = x->b[i];
		if (k == 0 ? c != ' ' : !(http1_cls[c] & HTTP1_C_DIGIT))
			return HTTP1_E400;
		if (k > 0)
			x->m->status = x->m->status * 10 + (c - '0');
	}
	if (x->m->status < 100)
		return HTTP1_E400;
	if (i < x->len && x->b[i] == ' ')
		while (++i < x->len && (http1_cls[x->b[i]] & HTTP1_C_VALUE))
			;
	if ((r = http1_eol(x, &i)) > 0)
		*pos = i;
	return r;
}

/*
 * After a list element at *i: OWS then the end (1), or OWS "," OWS (0, *i at the next
 * element), else HTTP1_E400.
 */
static int
http1_list_next(const unsigned char *v, size_t n, size_t *i)
{
	size_t p = http1_skip_ows(v, n, *i);
	if (p == n)
		return 1;
	if (v[p] != ',')
		return HTTP1_E400;
	*i = http1_skip_ows(v, n, p + 1);
	return 0;
}

/*
 * Content-Length: 1*DIGIT, or a list of the same value (RFC 9110 8.6), equal to any earlier
 * one. A value still arriving (!final) is judged on what is there.
 */
static int
http1_cl(struct http1_ctx *x, const unsigned char *v, size_t n, bool final)
{
	for (size_t i = 0;;) {
		size_t s = i;
		uint64_t val = 0;
		for (; i < n && (http1_cls[v[i]] & HTTP1_C_DIGIT); i++) {
			if (i - s == 19)
				return HTTP1_E400;
			val = val * 10 + (uint64_t)(v[i] - '0');
		}
		if (i == n && !final)
			return 0;
		if (i == s || (x->cl_set && val != x->cl))
			return HTTP1_E400;
		x->cl = val;
		x->cl_set = true;
		int r = http1_list_next(v, n, &i);
		if (r != 0)
			return r < 0 ? r : 0;
	}
}

static const char *const http1_codings[] = {
    "chunked", "compress", "deflate", "gzip", "x-compress", "x-gzip",
};

/*
 * The codings known in a message: a request's body is chunked and nothing else. Another
 * coding before chunked is valid HTTP but next to never sent, and a server that looks for
 * a value of just "chunked" would read "gzip, chunked" as a message without a body: the
 * chunked bytes would be its next request.
 */
static size_t
http1_ncodings(const struct http1_ctx *x)
{
	return x->response ? sizeof(http1_codings) / sizeof(http1_codings[0]) : 1;
}

static bool
http1_coding_prefix(const struct http1_ctx *x, const unsigned char *s, size_t n)
{
	for (size_t k = 0; k < http1_ncodings(x); k++)
		if (n <= strlen(http1_codings[k]) && http1_caseeq(s, http1_codings[k], n))
			return true;
	return false;
}

/* One whole transfer coding. */
static int
http1_coding(struct http1_ctx *x, const unsigned char *s, size_t n)
{
	if (n == 7 && http1_caseeq(s, "chunked", 7)) {
		if (x->te_chunked)
			return HTTP1_E400;
		x->te_chunked = true;
		return 0;
	}
	for (size_t k = 1; k < http1_ncodings(x); k++) {
		if (n == strlen(http1_codings[k]) && http1_caseeq(s, http1_codings[k], n)) {
			x->te_after = x->te_chunked;
			return 0;
		}
	}
	return HTTP1_E501;
}

/*
 * Transfer-Encoding: a list of codings without parameters; in a request just chunked. An
 * unknown coding is 501 from its first byte that no known one has.
 */
static int
http1_te(struct http1_ctx *x, const unsigned char *v, size_t n, bool final)
{
	for (size_t i = 0;;) {
		size_t s = i;
		while (i < n && (http1_cls[v[i]] & HTTP1_C_TCHAR))
			i++;
		if (i > s && x->te_chunked && !x->response)
			return HTTP1_E400;
		if (i > s && !http1_coding_prefix(x, v + s, i - s))
			return HTTP1_E501;
		if (i == n && !final)
			return 0;
		int r = i == s ? HTTP1_E400 : http1_coding(x, v + s, i - s);
		if (r == 0)
			r = http1_list_next(v, n, &i);
		if (r != 0)
			return r < 0 ? r : 0;
	}
}

/*
 * Host: uri-host [":" port], or empty (RFC 9112 3.2). An absolute-form target's authority
 * stands instead of it.
 */
static int
http1_host(struct http1_ctx *x, const unsigned char *v, size_t n, bool final)
{
	size_t e = n; /* a value still arriving may end in OWS */
	while (e > 0 && (http1_cls[v[e - 1]] & HTTP1_C_OWS))
		e--;
	int r = http1_authority(v, e, final);
	if (r < 0)
		return r;
	if (final && !x->m->absolute) {
		x->m->host_off = (uint32_t)(v - x->b);
		x->m->host_len = (uint32_t)n;
	}
	return 0;
}

/* The next comma-separated element of v at *i without OWS; *i moves past its comma. */
static const unsigned char *
http1_list_elem(const unsigned char *v, size_t n, size_t *i, size_t *len)
{
	size_t s = http1_skip_ows(v, n, *i), e = s;
	while (e < n && v[e] != ',')
		e++;
	*i = e + 1;
	while (e > s && (http1_cls[v[e - 1]] & HTTP1_C_OWS))
		e--;
	*len = e - s;
	return v + s;
}

static unsigned
http1_conn_option(const unsigned char *s, size_t n)
{
	if (n == 5 && http1_caseeq(s, "close", 5))
		return HTTP1_CONN_CLOSE;
	if (n == 10 && http1_caseeq(s, "keep-alive", 10))
		return HTTP1_CONN_KEEP_ALIVE;
	if (n == 7 && http1_caseeq(s, "upgrade", 7))
		return HTTP1_CONN_UPGRADE;
	return n ? HTTP1_CONN_OTHER : 0;
}

static void
http1_connection(struct http1_ctx *x, const unsigned char *v, size_t n)
{
	for (size_t i = 0, len; i < n;) {
		const unsigned char *s = http1_list_elem(v, n, &i, &len);
		x->conn |= http1_conn_option(s, len);
	}
}

/* The value of a field of this kind: whole (final), or all there is of it so far. */
static int
http1_value(struct http1_ctx *x, enum http1_kind kind, size_t off, size_t n, bool final)
{
	const unsigned char *v = x->b + off;
	switch (kind) {
	case HTTP1_K_CL:
		return http1_cl(x, v, n, final);
	case HTTP1_K_TE:
		return http1_te(x, v, n, final);
	case HTTP1_K_HOST:
		return http1_host(x, v, n, final);
	case HTTP1_K_CONNECTION:
		if (final)
			http1_connection(x, v, n);
		return 0;
	case HTTP1_K_EXPECT:
		x->expect |= final && n == 12 && http1_caseeq(v, "100-continue", 12);
		return 0;
	case HTTP1_K_UPGRADE:
		x->upgrade_field |= final && n > 0;
		return 0;
	default:
		return 0;
	}
}

/* Checks on a field name alone, as soon as its colon is read. */
static int
http1_field_name(struct http1_ctx *x, enum http1_kind kind)
{
	switch (kind) {
	case HTTP1_K_CL:
		if (x->te_field)
			return HTTP1_E400;
		x->cl_field = true;
		return 0;
	case HTTP1_K_TE:
		if (x->cl_field || x->m->minor == 0)
			return HTTP1_E400;
		x->te_field = true;
		return 0;
	case HTTP1_K_HOST:
		if (x->m->has_host)
			return HTTP1_E400;
		x->m->has_host = true;
		return 0;
	default:
		return 0;
	}
}

/* The value of header h from *pos (after the colon) through its line end. */
static int
http1_field_value(struct http1_ctx *x, struct http1_header *h, enum http1_kind kind, size_t *pos)
{
	size_t v = http1_skip_ows(x->b, x->len, *pos);
	size_t i = http1_scan(x->b, v, x->len, HTTP1_C_VALUE, 0x20), e = i;
	int r = http1_eol(x, &i);
	if (r <= 0) {
		/* Before "need more" or a bad byte, what the value holds so far may be wrong. */
		int p = http1_value(x, kind, v, e - v, false);
		return p < 0 ? p : r;
	}
	while (e > v && (http1_cls[x->b[e - 1]] & HTTP1_C_OWS))
		e--;
	h->value_off = (uint32_t)v;
	h->value_len = (uint32_t)(e - v);
	*pos = i;
	r = http1_value(x, kind, v, e - v, true);
	return r < 0 ? r : 1;
}

/* One field line: 1 with *pos at the next line, 0 for more bytes, or an error. */
static int
http1_field(struct http1_ctx *x, size_t *pos)
{
	const unsigned char *b = x->b;
	size_t i = *pos, s = i;
	if (http1_cls[b[i]] & HTTP1_C_OWS)
		return HTTP1_E400; /* obs-fold, or whitespace before a name */
	if (x->m->nheaders == HTTP1_HEADERS_MAX)
		return HTTP1_E431;
	while (i < x->len && (http1_cls[b[i]] & HTTP1_C_TCHAR))
		i++;
	if (i == x->len)
		return 0;
	if (b[i] != ':' || i == s)
		return HTTP1_E400;
	enum http1_kind kind = http1_kind(b + s, i - s);
	if (x->response && (kind == HTTP1_K_HOST || kind == HTTP1_K_EXPECT))
		kind = HTTP1_K_OTHER;
	int r = http1_field_name(x, kind);
	if (r < 0)
		return r;
	struct http1_header *h = &x->m->headers[x->m->nheaders];
	*h = (struct http1_header){.name_off = (uint32_t)s,
	                           .name_len = (uint32_t)(i - s),
	                           .flags = http1_kind_flags[kind]};
	i++;
	if ((r = http1_field_value(x, h, kind, &i)) > 0) {
		x->m->nheaders++;
		*pos = i;
	}
	return r;
}

/* Field lines and the empty line ending the head. */
static int
http1_fields(struct http1_ctx *x, size_t *pos)
{
	size_t i = *pos;
	for (;;) {
		if (i == x->len)
			return 0;
		if (x->b[i] == '\r' || x->b[i] == '\n')
			break;
		int r = http1_field(x, &i);
		if (r <= 0)
			return r;
	}
	int r = http1_eol(x, &i);
	if (r > 0)
		*pos = i;
	return r;
}

/* Fields named by a Connection option become hop-by-hop, but never framing fields. */
static void
http1_mark_named(struct http1_msg *m, const unsigned char *b, const unsigned char *s, size_t n)
{
	for (size_t k = 0; k < m->nheaders; k++) {
		struct http1_header *h = &m->headers[k];
		if (h->name_len != n || !http1_caseeq(b + h->name_off, (const char *)s, n))
			continue;
		enum http1_kind kind = http1_kind(b + h->name_off, n);
		if (kind != HTTP1_K_CL && kind != HTTP1_K_TE && kind != HTTP1_K_HOST)
			h->flags |= HTTP1_H_HOP;
	}
}

static void
http1_mark_hop(struct http1_ctx *x)
{
	struct http1_msg *m = x->m;
	for (size_t k = 0; k < m->nheaders; k++) {
		const struct http1_header *h = &m->headers[k];
		if (http1_kind(x->b + h->name_off, h->name_len) != HTTP1_K_CONNECTION)
			continue;
		const unsigned char *v = x->b + h->value_off;
		for (size_t i = 0, len; i < h->value_len;) {
			const unsigned char *s = http1_list_elem(v, h->value_len, &i, &len);
			if (http1_conn_option(s, len) == HTTP1_CONN_OTHER)
				http1_mark_named(m, x->b, s, len);
		}
	}
}

static bool
http1_keep_alive(const struct http1_ctx *x)
{
	if (x->conn & HTTP1_CONN_CLOSE)
		return false;
	return x->m->minor == 1 || (x->conn & HTTP1_CONN_KEEP_ALIVE);
}

static int
http1_finish_request(struct http1_ctx *x)
{
	struct http1_msg *m = x->m;
	if (m->minor == 1 && !m->has_host)
		return HTTP1_E400;
	if (x->te_field && !x->te_chunked)
		return HTTP1_E400; /* chunked is not the final coding */
	m->body = x->te_field   ? HTTP1_BODY_CHUNKED
	          : x->cl_field ? HTTP1_BODY_LENGTH
	                        : HTTP1_BODY_NONE;
	m->content_length = x->cl;
	m->keep_alive = http1_keep_alive(x);
	m->upgrade = m->minor == 1 && (x->conn & HTTP1_CONN_UPGRADE) && x->upgrade_field;
	m->expect_continue = m->minor == 1 && x->expect;
	if (x->conn & HTTP1_CONN_OTHER)
		http1_mark_hop(x);
	return 1;
}

static int
http1_response_body(const struct http1_ctx *x, int req_method)
{
	int status = x->m->status;
	if (status < 200 || status == 204 || status == 304 || req_method == HTTP1_HEAD)
		return HTTP1_BODY_NONE;
	if (req_method == HTTP1_CONNECT && status < 300)
		return HTTP1_BODY_NONE; /* a tunnel from here on */
	if (x->te_field)
		return x->te_chunked && !x->te_after ? HTTP1_BODY_CHUNKED : HTTP1_BODY_CLOSE;
	return x->cl_field ? HTTP1_BODY_LENGTH : HTTP1_BODY_CLOSE;
}

static int
http1_finish_response(struct http1_ctx *x, int req_method)
{
	struct http1_msg *m = x->m;
	m->body = http1_response_body(x, req_method);
	m->content_length = x->cl;
	m->keep_alive = m->body != HTTP1_BODY_CLOSE && http1_keep_alive(x);
	m->upgrade = m->status == 101;
	if (x->conn & HTTP1_CONN_OTHER)
		http1_mark_hop(x);
	return 1;
}

static void
http1_ctx_init(struct http1_ctx *x, const char *buf, size_t len, struct http1_msg *m)
{
	*x = (struct http1_ctx){.b = (const unsigned char *)buf,
	                        .len = len < HTTP1_LEN_MAX ? len : HTTP1_LEN_MAX,
	                        .m = m};
	/* Everything but the header array, which nheaders = 0 empties. */
	memset(m, 0, offsetof(struct http1_msg, headers));
}

int
http1_parse_request(const char *buf, size_t len, struct http1_msg *m)
{
	struct http1_ctx x;
	size_t i = 0;
	http1_ctx_init(&x, buf, len, m);
	int r = http1_skip_empty(&x, &i);
	if (r > 0)
		r = http1_request_line(&x, &i);
	if (r > 0)
		r = http1_fields(&x, &i);
	if (r > 0)
		r = http1_finish_request(&x);
	if (r <= 0)
		return r;
	m->head_len = i;
	return (int)i;
}

int
http1_parse_response(const char *buf, size_t len, int req_method, struct http1_msg *m)
{
	struct http1_ctx x;
	size_t i = 0;
	http1_ctx_init(&x, buf, len, m);
	x.response = true;
	m->method = req_method;
	int r = http1_status_line(&x, &i);
	if (r > 0)
		r = http1_fields(&x, &i);
	if (r > 0)
		r = http1_finish_response(&x, req_method);
	if (r <= 0)
		return r;
	m->head_len = i;
	return (int)i;
}

const struct http1_header *
http1_find(const struct http1_msg *m, const char *buf, const char *name)
{
	size_t n = strlen(name);
	for (size_t k = 0; k < m->nheaders; k++) {
		const struct http1_header *h = &m->headers[k];
		if (h->name_len == n &&
		    http1_caseeq((const unsigned char *)buf + h->name_off, name, n))
			return h;
	}
	return NULL;
}

/* Chunked framing states; 0 is the start of a chunk-size line. */
enum {
	HTTP1_CK_SIZE0,   /* first hex digit of a size */
	HTTP1_CK_SIZE,    /* more hex digits */
	HTTP1_CK_BWS,     /* whitespace after the size: a ';' must follow */
	HTTP1_CK_EXT,     /* chunk extensions, up to CR */
	HTTP1_CK_SIZE_LF, /* LF ending the size line */
	HTTP1_CK_DATA,    /* remaining bytes of data */
	HTTP1_CK_DATA_CR, /* CRLF after the data */
	HTTP1_CK_DATA_LF,
	HTTP1_CK_TR_START, /* a trailer field or the final CRLF */
	HTTP1_CK_TR_NAME,
	HTTP1_CK_TR_VALUE,
	HTTP1_CK_TR_LF,
	HTTP1_CK_END_LF,
	HTTP1_CK_DONE,
	HTTP1_CK_ERROR,
};

static unsigned
http1_hex(unsigned char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(http1_lower[c] - 'a' + 10);
}

/* One byte of a chunk-size line: the next state, or -1. */
static int
http1_ck_size(struct http1_chunked *c, unsigned char ch)
{
	if (++c->line > HTTP1_CHUNK_LINE_MAX)
		return -1;
	switch (c->state) {
	case HTTP1_CK_SIZE0:
	case HTTP1_CK_SIZE:
		if (http1_cls[ch] & HTTP1_C_HEX) {
			if (c->remaining >> 56) /* 16 hex digits: 2^60 and up */
				return -1;
			c->remaining = c->remaining << 4 | http1_hex(ch);
			return HTTP1_CK_SIZE;
		}
		if (c->state == HTTP1_CK_SIZE0)
			return -1;
		if (ch == '\r')
			return HTTP1_CK_SIZE_LF;
		/* fall through */
	case HTTP1_CK_BWS:
		if (ch == ';')
			return HTTP1_CK_EXT;
		return (http1_cls[ch] & HTTP1_C_OWS) ? HTTP1_CK_BWS : -1;
	case HTTP1_CK_EXT:
		if (ch == '\r')
			return HTTP1_CK_SIZE_LF;
		return (http1_cls[ch] & HTTP1_C_VALUE) ? HTTP1_CK_EXT : -1;
	default: /* HTTP1_CK_SIZE_LF */
		if (ch != '\n')
			return -1;
		c->line = 0;
		return c->remaining ? HTTP1_CK_DATA : HTTP1_CK_TR_START;
	}
}

/* One byte of the trailer section or of the final CRLF: the next state, or -1. */
static int
http1_ck_trailer(struct http1_chunked *c, unsigned char ch)
{
	if (++c->line > HTTP1_TRAILERS_MAX)
		return -1;
	switch (c->state) {
	case HTTP1_CK_TR_START:
		if (ch == '\r')
			return HTTP1_CK_END_LF;
		return (http1_cls[ch] & HTTP1_C_TCHAR) ? HTTP1_CK_TR_NAME : -1;
	case HTTP1_CK_TR_NAME:
		if (ch == ':')
			return HTTP1_CK_TR_VALUE;
		return (http1_cls[ch] & HTTP1_C_TCHAR) ? HTTP1_CK_TR_NAME : -1;
	case HTTP1_CK_TR_VALUE:
		if (ch == '\r')
			return HTTP1_CK_TR_LF;
		return (http1_cls[ch] & HTTP1_C_VALUE) ? HTTP1_CK_TR_VALUE : -1;
	case HTTP1_CK_TR_LF:
		return ch == '\n' ? HTTP1_CK_TR_START : -1;
	default: /* HTTP1_CK_END_LF */
		return ch == '\n' ? HTTP1_CK_DONE : -1;
	}
}

static int
http1_ck_byte(struct http1_chunked *c, unsigned char ch)
{
	switch (c->state) {
	case HTTP1_CK_DATA_CR:
		return ch == '\r' ? HTTP1_CK_DATA_LF : -1;
	case HTTP1_CK_DATA_LF:
		if (ch != '\n')
			return -1;
		c->line = 0;
		return HTTP1_CK_SIZE0;
	case HTTP1_CK_SIZE0:
	case HTTP1_CK_SIZE:
	case HTTP1_CK_BWS:
	case HTTP1_CK_EXT:
	case HTTP1_CK_SIZE_LF:
		return http1_ck_size(c, ch);
	case HTTP1_CK_TR_START:
	case HTTP1_CK_TR_NAME:
	case HTTP1_CK_TR_VALUE:
	case HTTP1_CK_TR_LF:
	case HTTP1_CK_END_LF:
		return http1_ck_trailer(c, ch);
	default:
		return -1;
	}
}

ssize_t
http1_chunked_scan(struct http1_chunked *c, const char *p, size_t len, bool *done)
{
	size_t i = 0;
	while (i < len && c->state != HTTP1_CK_DONE && c->state != HTTP1_CK_ERROR) {
		if (c->state == HTTP1_CK_DATA) {
			size_t n = c->remaining < len - i ? (size_t)c->remaining : len - i;
			i += n;
			c->remaining -= n;
			if (c->remaining == 0)
				c->state = HTTP1_CK_DATA_CR;
			continue;
		}
		int s = http1_ck_byte(c, (unsigned char)p[i++]);
		c->state = s < 0 ? HTTP1_CK_ERROR : s;
	}
	*done = c->state == HTTP1_CK_DONE;
	return c->state == HTTP1_CK_ERROR ? HTTP1_E400 : (ssize_t)i;
}
