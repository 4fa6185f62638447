#include "lb_proxyproto.h"

#include "lb_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The spec caps a v1 line at 107 bytes including the CRLF, so a receiver can stop there. */
#define LB_PP_V1_MAX 107
/* v2 fixed part: signature, version/command, family/protocol, 16-bit length. */
#define LB_PP_V2_HEAD 16
#define LB_PP_V2_SIG_LEN 12

static const uint8_t lb_pp_v2_sig[LB_PP_V2_SIG_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char lb_pp_v1_sig[] = "PROXY ";

static void
lb_pp_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
lb_pp_get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static bool
lb_pp_family_ok(int family)
{
	return family == AF_INET || family == AF_INET6;
}

/* a.b.c.d becomes ::ffff:a.b.c.d, so a mixed pair fits one IPv6 header. */
static void
lb_pp_to_v6(struct net_addr *a)
{
	uint8_t v4[4];

	memcpy(v4, a->u.bytes, sizeof(v4));
	memset(a->u.bytes, 0, sizeof(a->u.bytes));
	a->u.bytes[10] = 0xff;
	a->u.bytes[11] = 0xff;
	memcpy(a->u.bytes + 12, v4, sizeof(v4));
	a->family = AF_INET6;
}

/* Normalised copies: a v4-mapped peer is an IPv4 peer, and both must share one family. */
static int
lb_pp_prepare(const struct net_addr *src, const struct net_addr *dst, struct net_addr *s,
              struct net_addr *d)
{
	if (!src || !dst || !lb_pp_family_ok(src->family) || !lb_pp_family_ok(dst->family))
		return -EINVAL;
	*s = *src;
	*d = *dst;
	net_addr_normalize(s);
	net_addr_normalize(d);
	if (s->family != d->family)
		lb_pp_to_v6(s->family == AF_INET ? s : d);
	return 0;
}

static int
lb_pp_v1_build(const struct net_addr *s, const struct net_addr *d, uint8_t *out, size_t len)
{
	char sh[INET6_ADDRSTRLEN], dh[INET6_ADDRSTRLEN];
	char tmp[128];

	if (!inet_ntop(s->family, s->u.bytes, sh, sizeof(sh)) ||
	    !inet_ntop(d->family, d->u.bytes, dh, sizeof(dh)))
		return -EINVAL;
	int n = snprintf(tmp, sizeof(tmp), "PROXY %s %s %s %u %u\r\n",
	                 s->family == AF_INET ? "TCP4" : "TCP6", sh, dh, (unsigned)s->port,
	                 (unsigned)d->port);
	if (n < 0 || n > LB_PP_V1_MAX)
		return -EINVAL;
	if ((size_t)n > len)
		return -ENOBUFS;
	memcpy(out, tmp, (size_t)n);
	return n;
}

static int
lb_pp_v2_build(const struct net_addr *s, const struct net_addr *d, uint8_t *out, size_t len)
{
	size_t alen = s->family == AF_INET ? 4 : 16;
	size_t n = LB_PP_V2_HEAD + 2 * alen + 4;

	if (len < n)
		return -ENOBUFS;
	memcpy(out, lb_pp_v2_sig, sizeof(lb_pp_v2_sig));
	out[12] = 0x21; /* version 2, PROXY */
	out[13] = s->family == AF_INET ? 0x11 : 0x21;
	lb_pp_put16(out + 14, (uint16_t)(n - LB_PP_V2_HEAD));
	memcpy(out + 16, s->u.bytes, alen);
	memcpy(out + 16 + alen, d->u.bytes, alen);
	lb_pp_put16(out + 16 + 2 * alen, s->port);
	lb_pp_put16(out + 18 + 2 * alen, d->port);
	return (int)n;
}

int
lb_proxyproto_build(int version, const struct net_addr *src, const struct net_addr *dst,
                    uint8_t *out, size_t len)
{
	struct net_addr s, d;

	if (!out || (version != LB_PROXY_V1 && version != LB_PROXY_V2))
		return -EINVAL;
	int r = lb_pp_prepare(src, dst, &s, &d);
	if (r < 0)
		return r;
	if (version == LB_PROXY_V1)
		return lb_pp_v1_build(&s, &d, out, len);
	return lb_pp_v2_build(&s, &d, out, len);
}

/*
 * Whether n bytes without a LF can still grow into a valid line: the signature, then the
 * start of a known protocol word, and no CR except possibly the last byte (a CR must be
 * followed by LF). Refusing early spares the caller waiting for 107 bytes of garbage.
 */
static bool
lb_pp_v1_prefix_ok(const uint8_t *buf, size_t n)
{
	static const char *const protos[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};
	size_t k = n < 6 ? n : 6;

	if (memcmp(buf, lb_pp_v1_sig, k) != 0)
		return false;
	const uint8_t *cr = memchr(buf, '\r', n);
	if (cr && cr != buf + n - 1)
		return false;
	if (n <= 6)
		return true;
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		size_t m = strlen(protos[i]);
		if (memcmp(buf + 6, protos[i], n - 6 < m ? n - 6 : m) == 0)
			return true;
	}
	return false;
}

/* Exactly n non-empty fields separated by single spaces, split in place. */
static int
lb_pp_v1_split(char *s, char **f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (*s == '\0' || *s == ' ')
			return -EBADMSG;
		f[i] = s;
		char *sp = strchr(s, ' ');
		if (i + 1 == n)
			return sp ? -EBADMSG : 0;
		if (!sp)
			return -EBADMSG;
		*sp = '\0';
		s = sp + 1;
	}
	return -EBADMSG;
}

/* net_addr_parse takes "[::1]" too; the spec writes bare addresses only. */
static int
lb_pp_v1_addr(const char *tok, int family, struct net_addr *out)
{
	if (strchr(tok, '[') || net_addr_parse(tok, NET_PORT_NONE, out) < 0)
		return -EBADMSG;
	return out->family == family ? 0 : -EBADMSG;
}

/* line: the header without its CRLF, NUL-terminated. */
static int
lb_pp_v1_line(char *line, struct net_addr *src, struct net_addr *dst)
{
	struct net_addr s, d;
	char *f[4];
	int family;

	if (strncmp(line, lb_pp_v1_sig, 6) != 0)
		return -EBADMSG;
	line += 6;
	/* UNKNOWN may carry anything up to the CRLF; the receiver ignores it. */
	if (strcmp(line, "UNKNOWN") == 0 || strncmp(line, "UNKNOWN ", 8) == 0) {
		*src = (struct net_addr){0};
		*dst = (struct net_addr){0};
		return 0;
	}
	if (strncmp(line, "TCP4 ", 5) == 0)
		family = AF_INET;
	else if (strncmp(line, "TCP6 ", 5) == 0)
		family = AF_INET6;
	else
		return -EBADMSG;
	if (lb_pp_v1_split(line + 5, f, 4) < 0 || lb_pp_v1_addr(f[0], family, &s) < 0 ||
	    lb_pp_v1_addr(f[1], family, &d) < 0 ||
	    net_port_parse(f[2], NET_PORT_ZERO_OK, &s.port) < 0 ||
	    net_port_parse(f[3], NET_PORT_ZERO_OK, &d.port) < 0)
		return -EBADMSG;
	*src = s;
	*dst = d;
	return 0;
}

static int
lb_pp_v1_parse(const uint8_t *buf, size_t len, struct net_addr *src, struct net_addr *dst)
{
	size_t n = len < LB_PP_V1_MAX ? len : LB_PP_V1_MAX;
	const uint8_t *lf = memchr(buf, '\n', n);
	char line[LB_PP_V1_MAX];

	if (!lf)
		return len >= LB_PP_V1_MAX || !lb_pp_v1_prefix_ok(buf, n) ? -EBADMSG : 0;
	size_t end = (size_t)(lf - buf); /* the line without CRLF is end - 1 bytes */
	if (end == 0 || buf[end - 1] != '\r')
		return -EBADMSG;
	/* NUL would cut the string checks short; a lone CR is no part of a valid line. */
	if (memchr(buf, '\0', end - 1) || memchr(buf, '\r', end - 1))
		return -EBADMSG;
	memcpy(line, buf, end - 1);
	line[end - 1] = '\0';
	int r = lb_pp_v1_line(line, src, dst);
	return r < 0 ? r : (int)end + 1;
}

/* Bytes of the address block for a family/protocol byte; -1 for values the spec forbids. */
static int
lb_pp_v2_addrs_len(uint8_t fam)
{
	switch (fam) {
	case 0x00:
		return 0;
	case 0x11:
	case 0x12:
		return 12;
	case 0x21:
	case 0x22:
		return 36;
	case 0x31:
	case 0x32:
		return 216;
	default:
		return -1;
	}
}

/* TLVs are skipped, but each must fit: a length running past the block is a broken sender. */
static int
lb_pp_v2_tlvs_ok(const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (n < 3)
			return -EBADMSG;
		size_t vlen = lb_pp_get16(p + 1);
		if (vlen > n - 3)
			return -EBADMSG;
		p += 3 + vlen;
		n -= 3 + vlen;
	}
	return 0;
}

static void
lb_pp_v2_read(const uint8_t *p, size_t alen, int family, struct net_addr *s, struct net_addr *d)
{
	s->family = family;
	d->family = family;
	memcpy(s->u.bytes, p, alen);
	memcpy(d->u.bytes, p + alen, alen);
	s->port = lb_pp_get16(p + 2 * alen);
	d->port = lb_pp_get16(p + 2 * alen + 2);
}

/*
 * The PROXY command's address block (body bytes, already known to hold the addresses).
 * UDP and AF_UNIX are valid headers but not TCP peers we could use: s and d stay family 0,
 * so the caller keeps the real peer. UNSPEC gives the block no meaning, TLVs included.
 */
static int
lb_pp_v2_addrs(uint8_t fam, const uint8_t *p, size_t body, struct net_addr *s, struct net_addr *d)
{
	size_t need = (size_t)lb_pp_v2_addrs_len(fam);

	if (fam == 0x00)
		return 0;
	if (lb_pp_v2_tlvs_ok(p + need, body - need) < 0)
		return -EBADMSG;
	if (fam == 0x11)
		lb_pp_v2_read(p, 4, AF_INET, s, d);
	else if (fam == 0x21)
		lb_pp_v2_read(p, 16, AF_INET6, s, d);
	return 0;
}

/* Checks the fixed part as far as it is there, so garbage is refused without waiting. */
static int
lb_pp_v2_head_ok(const uint8_t *buf, size_t len)
{
	size_t k = len < LB_PP_V2_SIG_LEN ? len : LB_PP_V2_SIG_LEN;

	if (memcmp(buf, lb_pp_v2_sig, k) != 0)
		return -EBADMSG;
	/* Version 2 only; commands LOCAL (0) and PROXY (1) only. */
	if (len > 12 && ((buf[12] >> 4) != 2 || (buf[12] & 0x0f) > 1))
		return -EBADMSG;
	if (len > 13 && lb_pp_v2_addrs_len(buf[13]) < 0)
		return -EBADMSG;
	if (len >= LB_PP_V2_HEAD && (buf[12] & 0x0f) == 1 &&
	    lb_pp_get16(buf + 14) < lb_pp_v2_addrs_len(buf[13]))
		return -EBADMSG;
	return 0;
}

static int
lb_pp_v2_parse(const uint8_t *buf, size_t len, struct net_addr *src, struct net_addr *dst)
{
	struct net_addr s = {0}, d = {0};

	if (lb_pp_v2_head_ok(buf, len) < 0)
		return -EBADMSG;
	if (len < LB_PP_V2_HEAD)
		return 0;
	size_t body = lb_pp_get16(buf + 14);
	if (len < LB_PP_V2_HEAD + body)
		return 0;
	/* LOCAL: the proxy's own connection (a health check); the block is discarded. */
	if ((buf[12] & 0x0f) == 1 && lb_pp_v2_addrs(buf[13], buf + LB_PP_V2_HEAD, body, &s, &d) < 0)
		return -EBADMSG;
	*src = s;
	*dst = d;
	return (int)(LB_PP_V2_HEAD + body);
}

int
lb_proxyproto_parse(const uint8_t *buf, size_t len, struct net_addr *src, struct net_addr *dst)
{
	if ((!buf && len > 0) || !src || !dst)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (buf[0] == 'P')
		return lb_pp_v1_parse(buf, len, src, dst);
	if (buf[0] == lb_pp_v2_sig[0])
		return lb_pp_v2_parse(buf, len, src, dst);
	return -EBADMSG;
}
