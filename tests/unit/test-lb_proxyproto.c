/* Unit tests for src/lb/lb_proxyproto: PROXY protocol v1/v2 build, parse and refusals. */
#include "core/cleanup.h"
#include "core/net.h"
#include "lb/lb_config.h"
#include "lb/lb_proxyproto.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

#define SIG "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"

static struct net_addr
addr_of(const char *s)
{
	struct net_addr a;
	int r = net_addr_parse(s, NET_PORT_REQUIRED | NET_PORT_ZERO_OK, &a);
	if (r != 0)
		fail_msg("net_addr_parse(\"%s\") = %d", s, r);
	return a;
}

/* Parses the whole of buf, which must be one header; returns the addresses. */
static void
parse_all(const void *buf, size_t len, struct net_addr *src, struct net_addr *dst)
{
	int r = lb_proxyproto_parse(buf, len, src, dst);
	if (r < 0 || (size_t)r != len)
		fail_msg("parse of %zu bytes = %d", len, r);
}

static void
assert_bad(const void *buf, size_t len)
{
	struct net_addr s = {.family = 99}, d = {.family = 99};
	int r = lb_proxyproto_parse(buf, len, &s, &d);
	if (r != -EBADMSG)
		fail_msg("parse of %zu bytes \"%.*s\" = %d, want -EBADMSG", len, (int)len,
		         (const char *)buf, r);
	/* Outputs are written only on success. */
	assert_int_equal(s.family, 99);
	assert_int_equal(d.family, 99);
}

static void
assert_bad_str(const char *s)
{
	assert_bad(s, strlen(s));
}

/* Every strict prefix of a valid header asks for more bytes. */
static void
assert_prefixes_need_more(const uint8_t *buf, size_t len)
{
	for (size_t k = 0; k < len; k++) {
		struct net_addr s = {.family = 99}, d = {.family = 99};
		int r = lb_proxyproto_parse(buf, k, &s, &d);
		if (r != 0)
			fail_msg("prefix %zu of %zu = %d, want 0", k, len, r);
		assert_int_equal(s.family, 99);
	}
}

static void
test_build_v1_known(void **state)
{
	(void)state;
	uint8_t out[LB_PROXYPROTO_MAX];
	struct net_addr s = addr_of("1.2.3.4:1111"), d = addr_of("5.6.7.8:2222");
	static const char want4[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n";

	assert_int_equal(lb_proxyproto_build(LB_PROXY_V1, &s, &d, out, sizeof(out)),
	                 sizeof(want4) - 1);
	assert_memory_equal(out, want4, sizeof(want4) - 1);

	s = addr_of("[2001:db8::1]:65535");
	d = addr_of("[::1]:0");
	static const char want6[] = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V1, &s, &d, out, sizeof(out)),
	                 sizeof(want6) - 1);
	assert_memory_equal(out, want6, sizeof(want6) - 1);
}

static void
test_build_v2_known(void **state)
{
	(void)state;
	uint8_t out[LB_PROXYPROTO_MAX];
	struct net_addr s = addr_of("1.2.3.4:1111"), d = addr_of("5.6.7.8:2222");
	static const uint8_t want4[] = SIG "\x21\x11\x00\x0c"
	                                   "\x01\x02\x03\x04\x05\x06\x07\x08\x04\x57\x08\xae";

	assert_int_equal(lb_proxyproto_build(LB_PROXY_V2, &s, &d, out, sizeof(out)), 28);
	assert_memory_equal(out, want4, 28);

	s = addr_of("[2001:db8::1]:443");
	d = addr_of("[::2]:80");
	static const uint8_t want6[] = SIG "\x21\x21\x00\x24"
	                                   "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
	                                   "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x02"
	                                   "\x01\xbb\x00\x50";
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V2, &s, &d, out, sizeof(out)), 52);
	assert_memory_equal(out, want6, 52);
}

static void
test_build_v4_mapped_and_mixed(void **state)
{
	(void)state;
	uint8_t out[LB_PROXYPROTO_MAX];
	struct net_addr s = addr_of("[::ffff:1.2.3.4]:1111"), d = addr_of("5.6.7.8:2222");
	static const char want[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n";

	assert_int_equal(lb_proxyproto_build(LB_PROXY_V1, &s, &d, out, sizeof(out)),
	                 sizeof(want) - 1);
	assert_memory_equal(out, want, sizeof(want) - 1);
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V2, &s, &d, out, sizeof(out)), 28);
	assert_int_equal(out[13], 0x11);

	/* Mixed families: both go out as IPv6. */
	d = addr_of("[2001:db8::2]:80");
	static const char mixed[] = "PROXY TCP6 ::ffff:1.2.3.4 2001:db8::2 1111 80\r\n";
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V1, &s, &d, out, sizeof(out)),
	                 sizeof(mixed) - 1);
	assert_memory_equal(out, mixed, sizeof(mixed) - 1);
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V2, &s, &d, out, sizeof(out)), 52);
	assert_int_equal(out[13], 0x21);
}

static void
test_build_errors(void **state)
{
	(void)state;
	uint8_t out[LB_PROXYPROTO_MAX];
	struct net_addr s = addr_of("1.2.3.4:1111"), d = addr_of("5.6.7.8:2222");
	struct net_addr none = {0};

	assert_int_equal(lb_proxyproto_build(LB_PROXY_NONE, &s, &d, out, sizeof(out)), -EINVAL);
	assert_int_equal(lb_proxyproto_build(7, &s, &d, out, sizeof(out)), -EINVAL);
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V1, &none, &d, out, sizeof(out)), -EINVAL);
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V2, &s, NULL, out, sizeof(out)), -EINVAL);
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V2, &s, &d, NULL, 0), -EINVAL);

	/* One byte short: nothing written. */
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V1, &s, &d, out, 37), -ENOBUFS);
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V2, &s, &d, out, 27), -ENOBUFS);
	assert_int_equal(out[0], 0xaa);
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V1, &s, &d, out, 38), 38);
	assert_int_equal(lb_proxyproto_build(LB_PROXY_V2, &s, &d, out, 28), 28);
}

static void
check_round_trip(int version, const char *src, const char *dst)
{
	uint8_t out[LB_PROXYPROTO_MAX];
	struct net_addr s = addr_of(src), d = addr_of(dst), ps, pd;

	int n = lb_proxyproto_build(version, &s, &d, out, sizeof(out));
	assert_true(n > 0);
	parse_all(out, (size_t)n, &ps, &pd);
	assert_prefixes_need_more(out, (size_t)n);
	net_addr_normalize(&s);
	net_addr_normalize(&d);
	net_addr_normalize(&ps);
	net_addr_normalize(&pd);
	if (!net_addr_equal(&s, &ps) || !net_addr_equal(&d, &pd))
		fail_msg("round trip v%d %s -> %s changed", version, src, dst);
}

static void
test_round_trips(void **state)
{
	(void)state;
	static const char *const pairs[][2] = {
	    {"1.2.3.4:1111", "5.6.7.8:2222"},
	    {"0.0.0.0:0", "255.255.255.255:65535"},
	    {"[2001:db8::1]:443", "[2001:db8::2]:80"},
	    {"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[::]:0"},
	    {"[::ffff:10.0.0.1]:5000", "[::ffff:10.0.0.2]:80"},
	    {"[::ffff:10.0.0.1]:5000", "[2001:db8::2]:80"},
	    {"10.0.0.1:5000", "[::1]:80"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		check_round_trip(LB_PROXY_V1, pairs[i][0], pairs[i][1]);
		check_round_trip(LB_PROXY_V2, pairs[i][0], pairs[i][1]);
	}
}

static void
test_parse_v1_known(void **state)
{
	(void)state;
	struct net_addr s, d;
	static const char h4[] =
	    "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";

	/* Only the header is consumed; what follows belongs to the application. */
	assert_int_equal(lb_proxyproto_parse((const uint8_t *)h4, sizeof(h4) - 1, &s, &d), 47);
	assert_int_equal(s.family, AF_INET);
	assert_memory_equal(s.u.bytes, "\xc0\xa8\x00\x01", 4);
	assert_int_equal(s.port, 56324);
	assert_memory_equal(d.u.bytes, "\xc0\xa8\x00\x0b", 4);
	assert_int_equal(d.port, 443);

	static const char h6[] = "PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 0 65535\r\n";
	parse_all(h6, sizeof(h6) - 1, &s, &d);
	assert_int_equal(s.family, AF_INET6);
	assert_true(net_addr_is_v4_mapped(&d));
	assert_int_equal(s.port, 0);
	assert_int_equal(d.port, 65535);
}

static void
test_parse_v1_unknown(void **state)
{
	(void)state;
	struct net_addr s, d;
	static const char *const ok[] = {
	    "PROXY UNKNOWN\r\n",
	    "PROXY UNKNOWN 1.2.3.4 whatever\r\n",
	    /* The spec's worst case: exactly 107 bytes. */
	    ("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
	};

	assert_int_equal(strlen(ok[2]), 107);
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		s.family = d.family = 99;
		parse_all(ok[i], strlen(ok[i]), &s, &d);
		assert_int_equal(s.family, 0);
		assert_int_equal(d.family, 0);
		assert_prefixes_need_more((const uint8_t *)ok[i], strlen(ok[i]));
	}
}

static void
test_parse_v2_local_unspec_unix(void **state)
{
	(void)state;
	struct net_addr s = {.family = 99}, d = {.family = 99};
	static const uint8_t local[] = SIG "\x20\x00\x00\x00";
	static const uint8_t local_body[] = SIG "\x20\x11\x00\x03"
	                                        "abc";
	static const uint8_t unspec[] = SIG "\x21\x00\x00\x02"
	                                    "xy";

	parse_all(local, 16, &s, &d);
	assert_int_equal(s.family, 0);
	assert_int_equal(d.family, 0);
	/* LOCAL discards the block, whatever its family says it holds. */
	s.family = 99;
	parse_all(local_body, 19, &s, &d);
	assert_int_equal(s.family, 0);
	s.family = 99;
	parse_all(unspec, 18, &s, &d);
	assert_int_equal(s.family, 0);

	uint8_t unix_hdr[16 + 216 + 4] = SIG "\x21\x31\x00\xdc";
	memcpy(unix_hdr + 16, "/run/a.sock", 11);
	unix_hdr[16 + 216] = 0x04; /* NOOP TLV, 1 byte of value */
	unix_hdr[16 + 218] = 0x01;
	for (uint8_t fam = 0x31; fam <= 0x32; fam++) {
		unix_hdr[13] = fam;
		s.family = d.family = 99;
		parse_all(unix_hdr, sizeof(unix_hdr), &s, &d);
		assert_int_equal(s.family, 0);
		assert_int_equal(d.family, 0);
	}
	assert_prefixes_need_more(unix_hdr, sizeof(unix_hdr));
}

static void
test_parse_v2_tlvs(void **state)
{
	(void)state;
	struct net_addr s, d;
	/* IPv4, then an ALPN TLV "h2" and an empty NOOP TLV, then application bytes. */
	static const uint8_t hdr[] = SIG "\x21\x11\x00\x14"
	                                 "\x01\x02\x03\x04\x05\x06\x07\x08\x04\x57\x08\xae"
	                                 "\x01\x00\x02h2"
	                                 "\x04\x00\x00"
	                                 "\x16\x03\x01";

	assert_int_equal(lb_proxyproto_parse(hdr, sizeof(hdr) - 1, &s, &d), 36);
	assert_int_equal(s.family, AF_INET);
	assert_int_equal(s.port, 1111);
	assert_int_equal(d.port, 2222);
	assert_memory_equal(d.u.bytes, "\x05\x06\x07\x08", 4);
	assert_prefixes_need_more(hdr, 36);

	/* A TLV whose length runs past the block, and a block ending inside a TLV header. */
	static const uint8_t over[] = SIG "\x21\x11\x00\x10"
	                                  "\x01\x02\x03\x04\x05\x06\x07\x08\x04\x57\x08\xae"
	                                  "\x01\x00\x02h";
	static const uint8_t stub[] = SIG "\x21\x11\x00\x0e"
	                                  "\x01\x02\x03\x04\x05\x06\x07\x08\x04\x57\x08\xae"
	                                  "\x01\x00";
	assert_bad(over, sizeof(over) - 1);
	assert_bad(stub, sizeof(stub) - 1);
}

static void
test_parse_bad_v1(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "GET / HTTP/1.1\r\n",
	    "proxy TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n",
	    "PROXY tcp4 1.2.3.4 5.6.7.8 1111 2222\r\n",
	    "PROXY TCP5 1.2.3.4 5.6.7.8 1111 2222\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1111 65536\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 01 2222\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2222\r\n",
	    "PROXY TCP4 1.2.3.4  5.6.7.8 1111 2222\r\n",
	    "PROXY  TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222 \r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1111\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222 3333\r\n",
	    "PROXY TCP4 1.2.3 5.6.7.8 1111 2222\r\n",
	    "PROXY TCP4 1.2.3.04 5.6.7.8 1111 2222\r\n",
	    "PROXY TCP4 1.2.3.256 5.6.7.8 1111 2222\r\n",
	    "PROXY TCP4 1.2.3.4:80 5.6.7.8 1111 2222\r\n",
	    "PROXY TCP4 ::1 5.6.7.8 1111 2222\r\n",
	    "PROXY TCP6 1.2.3.4 ::1 1111 2222\r\n",
	    "PROXY TCP6 [::1] ::1 1111 2222\r\n",
	    "PROXY TCP6 fe80::1%eth0 ::1 1111 2222\r\n",
	    "PROXY TCP6 ::g ::1 1111 2222\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1111\r2222\r\n",
	    "PROXY UNKNOWNX\r\n",
	    "PROXY UNKNOWN\rX",
	    "PROXY\r\n",
	    "PROXY \r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2222\r\n",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_bad_str(bad[i]);
	/* An embedded NUL. */
	assert_bad("PROXY TCP4 1.2.3.4\0005.6.7.8 1111 2222\r\n", 38);
	assert_bad("PROXY UNKNOWN \0\r\n", 17);

	/* 107 bytes and no CRLF yet: the spec's limit is passed. */
	char longline[200];
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "PROXY UNKNOWN ", 14);
	assert_int_equal(lb_proxyproto_parse((const uint8_t *)longline, 106, &(struct net_addr){0},
	                                     &(struct net_addr){0}),
	                 0);
	assert_bad(longline, 107);
	memcpy(longline + 106, "\r\n", 2);
	assert_bad(longline, 108);
	assert_bad(longline, sizeof(longline));
}

static void
test_parse_bad_early(void **state)
{
	(void)state;
	/* Garbage is refused as soon as it differs, without waiting for the rest. */
	assert_bad_str("X");
	assert_bad_str("PROXZ");
	assert_bad_str("PROXY X");
	assert_bad_str("PROXY TCP4x");
	assert_bad_str("PROXY UNKNOWn");
	assert_bad_str("PROXY TCP4 1.2.3.4\r5");
	assert_bad("\x0D\x0A\x0D\x0A\x01", 5);
	assert_bad(SIG "\x11", 13);
	assert_bad(SIG "\x21\x13", 14);
}

static void
test_parse_bad_v2(void **state)
{
	(void)state;
	uint8_t h[64];
	static const uint8_t good[] = SIG "\x21\x11\x00\x0c"
	                                  "\x01\x02\x03\x04\x05\x06\x07\x08\x04\x57\x08\xae";
	struct net_addr s, d;

	parse_all(good, 28, &s, &d);
	assert_prefixes_need_more(good, 28);

	/* Each signature byte wrong in turn. */
	for (size_t i = 0; i < 12; i++) {
		memcpy(h, good, 28);
		h[i] ^= 0x40;
		assert_bad(h, 28);
	}
	static const uint8_t bad_vercmd[] = {0x11, 0x31, 0x01, 0x22, 0x23, 0x2f, 0xf1};
	for (size_t i = 0; i < ARRAY_SIZE(bad_vercmd); i++) {
		memcpy(h, good, 28);
		h[12] = bad_vercmd[i];
		assert_bad(h, 28);
	}
	static const uint8_t bad_fam[] = {0x01, 0x10, 0x13, 0x23, 0x33, 0x41, 0xff};
	for (size_t i = 0; i < ARRAY_SIZE(bad_fam); i++) {
		memcpy(h, good, 28);
		h[13] = bad_fam[i];
		assert_bad(h, 28);
		h[12] = 0x20; /* LOCAL ignores the family, but not a forbidden value */
		assert_bad(h, 28);
	}
	/* Length shorter than the addresses need: refused once the length is known. */
	memcpy(h, good, 28);
	h[15] = 11;
	assert_bad(h, 16);
	assert_bad(h, 28);
	memcpy(h, good, 28);
	h[13] = 0x21; /* IPv6 needs 36 */
	assert_bad(h, 28);
	h[15] = 35;
	assert_bad(h, 16);
	/* UDP is a valid header; the addresses are not TCP peers we use. */
	memcpy(h, good, 28);
	h[13] = 0x12;
	s.family = 99;
	parse_all(h, 28, &s, &d);
	assert_int_equal(s.family, 0);
}

static void
test_parse_args(void **state)
{
	(void)state;
	struct net_addr s, d;

	assert_int_equal(lb_proxyproto_parse(NULL, 0, &s, &d), 0);
	assert_int_equal(lb_proxyproto_parse(NULL, 5, &s, &d), -EINVAL);
	assert_int_equal(lb_proxyproto_parse((const uint8_t *)"P", 1, NULL, &d), -EINVAL);
	assert_int_equal(lb_proxyproto_parse((const uint8_t *)"P", 1, &s, NULL), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_v1_known),
	    cmocka_unit_test(test_build_v2_known),
	    cmocka_unit_test(test_build_v4_mapped_and_mixed),
	    cmocka_unit_test(test_build_errors),
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_parse_v1_known),
	    cmocka_unit_test(test_parse_v1_unknown),
	    cmocka_unit_test(test_parse_v2_local_unspec_unix),
	    cmocka_unit_test(test_parse_v2_tlvs),
	    cmocka_unit_test(test_parse_bad_v1),
	    cmocka_unit_test(test_parse_bad_early),
	    cmocka_unit_test(test_parse_bad_v2),
	    cmocka_unit_test(test_parse_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
