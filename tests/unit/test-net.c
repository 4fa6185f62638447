/* Unit tests for src/core/net: parsing, formatting, masking, CIDR matching, sockaddr. */
#include "core/cleanup.h"
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static struct net_addr
addr_of(const char *s, unsigned mode)
{
	struct net_addr a;
	int r = net_addr_parse(s, mode, &a);
	if (r != 0)
		fail_msg("net_addr_parse(\"%s\", %u) = %d", s, mode, r);
	return a;
}

static struct net_cidr
cidr_of(const char *s)
{
	struct net_cidr c;
	int r = net_cidr_parse(s, &c);
	if (r != 0)
		fail_msg("net_cidr_parse(\"%s\") = %d", s, r);
	return c;
}

static void
assert_format(const struct net_addr *a, bool with_port, const char *want)
{
	char buf[NET_ADDR_STRLEN];
	assert_int_equal(net_addr_format(a, with_port, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

static void
assert_cidr_format(const struct net_cidr *c, const char *want)
{
	char buf[NET_CIDR_STRLEN];
	assert_int_equal(net_cidr_format(c, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

struct good_case {
	const char *in;
	unsigned mode;
	int family;
	uint16_t port;
	const char *canon; /* net_addr_format(with_port = true) */
};

static const struct good_case good_addrs[] = {
    {"1.2.3.4", NET_PORT_NONE, AF_INET, 0, "1.2.3.4"},
    {"0.0.0.0", NET_PORT_NONE, AF_INET, 0, "0.0.0.0"},
    {"255.255.255.255", NET_PORT_NONE, AF_INET, 0, "255.255.255.255"},
    {"10.0.0.1", NET_PORT_OPTIONAL, AF_INET, 0, "10.0.0.1"},
    {"1.2.3.4:80", NET_PORT_OPTIONAL, AF_INET, 80, "1.2.3.4:80"},
    {"1.2.3.4:80", NET_PORT_REQUIRED, AF_INET, 80, "1.2.3.4:80"},
    {"1.2.3.4:65535", NET_PORT_REQUIRED, AF_INET, 65535, "1.2.3.4:65535"},
    {"1.2.3.4:1", NET_PORT_REQUIRED, AF_INET, 1, "1.2.3.4:1"},
    {"1.2.3.4:0", NET_PORT_REQUIRED | NET_PORT_ZERO_OK, AF_INET, 0, "1.2.3.4"},
    {"1.2.3.4:0", NET_PORT_OPTIONAL | NET_PORT_ZERO_OK, AF_INET, 0, "1.2.3.4"},
    {"::1", NET_PORT_NONE, AF_INET6, 0, "::1"},
    {"::", NET_PORT_NONE, AF_INET6, 0, "::"},
    {"::1", NET_PORT_OPTIONAL, AF_INET6, 0, "::1"},
    {"2001:DB8::1", NET_PORT_NONE, AF_INET6, 0, "2001:db8::1"},
    {"2001:db8:0:0:0:0:0:1", NET_PORT_NONE, AF_INET6, 0, "2001:db8::1"},
    {"fe80::1", NET_PORT_NONE, AF_INET6, 0, "fe80::1"},
    {"1:2:3:4:5:6:7:8", NET_PORT_OPTIONAL, AF_INET6, 0, "1:2:3:4:5:6:7:8"},
    {"::ffff:1.2.3.4", NET_PORT_NONE, AF_INET6, 0, "::ffff:1.2.3.4"},
    {"[::1]", NET_PORT_NONE, AF_INET6, 0, "::1"},
    {"[::1]", NET_PORT_OPTIONAL, AF_INET6, 0, "::1"},
    {"[::1]:80", NET_PORT_OPTIONAL, AF_INET6, 80, "[::1]:80"},
    {"[::1]:80", NET_PORT_REQUIRED, AF_INET6, 80, "[::1]:80"},
    {"[2001:db8::5]:443", NET_PORT_REQUIRED, AF_INET6, 443, "[2001:db8::5]:443"},
    {"[::ffff:1.2.3.4]:25", NET_PORT_REQUIRED, AF_INET6, 25, "[::ffff:1.2.3.4]:25"},
    {"[::1]:0", NET_PORT_REQUIRED | NET_PORT_ZERO_OK, AF_INET6, 0, "::1"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", NET_PORT_NONE, AF_INET6, 0,
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
};

static void
test_parse_good(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(good_addrs); i++) {
		const struct good_case *t = &good_addrs[i];
		struct net_addr a = addr_of(t->in, t->mode);
		assert_int_equal(a.family, t->family);
		assert_int_equal(a.port, t->port);
		assert_format(&a, true, t->canon);
	}
}

static void
test_parse_bytes(void **state)
{
	struct net_addr a = addr_of("1.2.3.4:80", NET_PORT_REQUIRED);
	const uint8_t want4[16] = {1, 2, 3, 4};
	assert_memory_equal(a.u.bytes, want4, 16);

	a = addr_of("[2001:db8::ff]:8080", NET_PORT_REQUIRED);
	const uint8_t want6[16] = {0x20, 0x01, 0x0d, 0xb8, [14] = 0, [15] = 0xff};
	assert_memory_equal(a.u.bytes, want6, 16);
	assert_int_equal(a.port, 8080);
}

static const char *const bad_any_mode[] = {
    "",
    "1.2.3",
    "1.2.3.4.5",
    "0x1.2.3.4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "01.2.3.4",
    "1.02.3.4",
    "1.2.3.00",
    "300.1.1.1",
    "1.2.3.256",
    "1..2.3",
    "1.2.3.4.",
    "::1::",
    ":::",
    "1:2:3:4:5:6:7:8:9",
    "12345::",
    "::ffff:01.2.3.4",
    "[1.2.3.4]:80",
    "[1.2.3.4]",
    "[::1]80",
    "::1]:80",
    "[::1",
    "[::1]]",
    "[]",
    "[]:80",
    "1.2.3.4:",
    "[::1]:",
    "1.2.3.4:65536",
    "1.2.3.4:70000",
    "1.2.3.4:+80",
    "1.2.3.4:-1",
    "1.2.3.4:080",
    "1.2.3.4: 80",
    "1.2.3.4:80 ",
    "1.2.3.4:8o",
    "1.2.3.4:80:80",
    "fe80::1%eth0",
    "[fe80::1%eth0]:80",
    "localhost",
    "example.com:80",
    "1.2.3.4/24",
    "::1 ",
    "1:2",
};

static void
test_parse_bad(void **state)
{
	static const unsigned modes[] = {
	    NET_PORT_NONE,
	    NET_PORT_OPTIONAL,
	    NET_PORT_REQUIRED,
	    NET_PORT_NONE | NET_PORT_ZERO_OK,
	    NET_PORT_OPTIONAL | NET_PORT_ZERO_OK,
	    NET_PORT_REQUIRED | NET_PORT_ZERO_OK,
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad_any_mode); i++) {
		for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
			struct net_addr a = {.family = 77, .port = 9};
			int r = net_addr_parse(bad_any_mode[i], modes[m], &a);
			if (r != -EINVAL)
				fail_msg("\"%s\" mode %u: %d", bad_any_mode[i], modes[m], r);
			/* Outputs are written only on success. */
			assert_int_equal(a.family, 77);
			assert_int_equal(a.port, 9);
		}
	}
}

static void
test_parse_mode(void **state)
{
	struct net_addr a;
	assert_int_equal(net_addr_parse("1.2.3.4:80", NET_PORT_NONE, &a), -EINVAL);
	assert_int_equal(net_addr_parse("[::1]:80", NET_PORT_NONE, &a), -EINVAL);
	assert_int_equal(net_addr_parse("1.2.3.4", NET_PORT_REQUIRED, &a), -EINVAL);
	assert_int_equal(net_addr_parse("::1", NET_PORT_REQUIRED, &a), -EINVAL);
	assert_int_equal(net_addr_parse("[::1]", NET_PORT_REQUIRED, &a), -EINVAL);
	assert_int_equal(net_addr_parse("1.2.3.4:0", NET_PORT_REQUIRED, &a), -EINVAL);
	assert_int_equal(net_addr_parse("1.2.3.4:0", NET_PORT_OPTIONAL, &a), -EINVAL);
	assert_int_equal(net_addr_parse("[::1]:0", NET_PORT_OPTIONAL, &a), -EINVAL);
	assert_int_equal(net_addr_parse("1.2.3.4:0", NET_PORT_NONE | NET_PORT_ZERO_OK, &a),
	                 -EINVAL);
	/* Unknown mode bits and the unused kind 3 are refused rather than guessed at. */
	assert_int_equal(net_addr_parse("1.2.3.4", 3, &a), -EINVAL);
	assert_int_equal(net_addr_parse("1.2.3.4", 8, &a), -EINVAL);
	assert_int_equal(net_addr_parse(NULL, NET_PORT_NONE, &a), -EINVAL);
	assert_int_equal(net_addr_parse("1.2.3.4", NET_PORT_NONE, NULL), -EINVAL);
}

static void
test_bare_v6_never_port(void **state)
{
	/* "::1" would be "::" port 1 if the last colon were a port separator. */
	struct net_addr a = addr_of("::1", NET_PORT_OPTIONAL);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(a.port, 0);
	assert_int_equal(a.u.bytes[15], 1);

	a = addr_of("2001:db8::80", NET_PORT_OPTIONAL);
	assert_int_equal(a.port, 0);
	assert_int_equal(a.u.bytes[15], 0x80);
}

static void
test_parse_overlong(void **state)
{
	char s[200];
	struct net_addr a;
	struct net_cidr c;

	memset(s, '0', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	assert_int_equal(net_addr_parse(s, NET_PORT_OPTIONAL, &a), -EINVAL);
	assert_int_equal(net_cidr_parse(s, &c), -EINVAL);

	/* Input is measured with a bound: an unterminated buffer is never read past the cap. */
	_cleanup_free_ char *raw = malloc(65);
	assert_non_null(raw);
	memset(raw, '1', 65);
	assert_int_equal(net_addr_parse(raw, NET_PORT_OPTIONAL, &a), -EINVAL);
	assert_int_equal(net_cidr_parse(raw, &c), -EINVAL);
	/* The longest valid forms still fit. */
	a = addr_of("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", NET_PORT_REQUIRED);
	assert_int_equal(a.port, 65535);
	c = cidr_of("0000:0000:0000:0000:0000:0000:0000:0001/128");
	assert_int_equal(c.prefix, 128);
}

static void
test_format_nospace(void **state)
{
	struct net_addr a = addr_of("[2001:db8::1]:8080", NET_PORT_REQUIRED);
	const char *want = "[2001:db8::1]:8080";
	size_t need = strlen(want) + 1;
	char buf[64];

	for (size_t len = 0; len < need; len++) {
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(net_addr_format(&a, true, buf, len), -ENOSPC);
		for (size_t i = 0; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 'x');
	}
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(net_addr_format(&a, true, buf, need), 0);
	assert_string_equal(buf, want);
	assert_int_equal(buf[need], 'x');

	assert_format(&a, false, "2001:db8::1");
	a.family = 0;
	assert_int_equal(net_addr_format(&a, false, buf, sizeof(buf)), -EINVAL);
}

static void
test_format_max_len(void **state)
{
	/* The longest text forms fit the advertised sizes. */
	struct net_addr a =
	    addr_of("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", NET_PORT_REQUIRED);
	char buf[NET_ADDR_STRLEN];
	assert_int_equal(net_addr_format(&a, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

	a = addr_of("[::ffff:255.255.255.255]:65535", NET_PORT_REQUIRED);
	assert_int_equal(net_addr_format(&a, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[::ffff:255.255.255.255]:65535");

	struct net_cidr c = cidr_of("1111:2222:3333:4444:5555:6666:7777:8888/128");
	char cbuf[NET_CIDR_STRLEN];
	assert_int_equal(net_cidr_format(&c, cbuf, sizeof(cbuf)), 0);
	assert_string_equal(cbuf, "1111:2222:3333:4444:5555:6666:7777:8888/128");
}

static void
test_round_trip(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(good_addrs); i++) {
		struct net_addr a = addr_of(good_addrs[i].in, good_addrs[i].mode);
		char buf[NET_ADDR_STRLEN];
		assert_int_equal(net_addr_format(&a, true, buf, sizeof(buf)), 0);
		struct net_addr b = addr_of(buf, NET_PORT_OPTIONAL | NET_PORT_ZERO_OK);
		assert_true(net_addr_equal(&a, &b));
		assert_memory_equal(&a, &b, sizeof(a));
	}
}

static void
test_port_parse(void **state)
{
	static const char *const bad[] = {
	    "",   "0",  "00",   "70000", "65536", "99999999999999999999", "abc", "-5", "+5", " 5",
	    "5 ", "08", "0x50", "5.0",   "1e3",
	};
	uint16_t p = 7;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (net_port_parse(bad[i], 0, &p) != -EINVAL)
			fail_msg("port \"%s\" accepted", bad[i]);
		assert_int_equal(p, 7);
	}
	assert_int_equal(net_port_parse("00", NET_PORT_ZERO_OK, &p), -EINVAL);
	assert_int_equal(net_port_parse("08", NET_PORT_ZERO_OK, &p), -EINVAL);
	assert_int_equal(net_port_parse("1", 0, &p), 0);
	assert_int_equal(p, 1);
	assert_int_equal(net_port_parse("80", 0, &p), 0);
	assert_int_equal(p, 80);
	assert_int_equal(net_port_parse("65535", 0, &p), 0);
	assert_int_equal(p, 65535);
	assert_int_equal(net_port_parse("0", NET_PORT_ZERO_OK, &p), 0);
	assert_int_equal(p, 0);
	assert_int_equal(net_port_parse(NULL, 0, &p), -EINVAL);
	assert_int_equal(net_port_parse("80", 0, NULL), -EINVAL);
}

static void
test_normalize(void **state)
{
	struct net_addr a = addr_of("[::ffff:1.2.3.4]:80", NET_PORT_REQUIRED);
	struct net_addr v4 = addr_of("1.2.3.4:80", NET_PORT_REQUIRED);

	assert_true(net_addr_is_v4_mapped(&a));
	assert_false(net_addr_is_v4_mapped(&v4));
	assert_false(net_addr_equal(&a, &v4));
	net_addr_normalize(&a);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(a.port, 80);
	assert_true(net_addr_equal(&a, &v4));
	assert_memory_equal(&a, &v4, sizeof(a));
	assert_format(&a, true, "1.2.3.4:80");

	/* Lookalikes are left alone. */
	static const char *const not_mapped[] = {"::1.2.3.4", "::fffe:1.2.3.4", "1::ffff:1.2.3.4",
	                                         "2001:db8::1"};
	for (size_t i = 0; i < ARRAY_SIZE(not_mapped); i++) {
		struct net_addr b = addr_of(not_mapped[i], NET_PORT_NONE);
		struct net_addr before = b;
		assert_false(net_addr_is_v4_mapped(&b));
		net_addr_normalize(&b);
		assert_memory_equal(&b, &before, sizeof(b));
	}
	net_addr_normalize(&v4);
	assert_format(&v4, true, "1.2.3.4:80");
	assert_false(net_addr_is_v4_mapped(NULL));
	net_addr_normalize(NULL);
}

static void
test_equal(void **state)
{
	struct net_addr a = addr_of("10.0.0.1:80", NET_PORT_REQUIRED);
	struct net_addr b = addr_of("10.0.0.1:81", NET_PORT_REQUIRED);
	struct net_addr c = addr_of("10.0.0.1:80", NET_PORT_REQUIRED);
	struct net_addr d = addr_of("10.0.0.2:80", NET_PORT_REQUIRED);
	struct net_addr e = addr_of("[::1]:80", NET_PORT_REQUIRED);
	struct net_addr f = addr_of("[0:0::1]:80", NET_PORT_REQUIRED);

	assert_true(net_addr_equal(&a, &c));
	assert_false(net_addr_equal(&a, &b));
	assert_false(net_addr_equal(&a, &d));
	assert_false(net_addr_equal(&a, &e));
	assert_true(net_addr_equal(&e, &f));
	assert_false(net_addr_equal(&a, NULL));
}

static void
test_mask(void **state)
{
	struct net_addr a = addr_of("[2001:db8:1:2:3:4:5:6]:80", NET_PORT_REQUIRED);
	assert_int_equal(net_addr_mask(&a, 64), 0);
	assert_format(&a, true, "[2001:db8:1:2::]:80");

	a = addr_of("2001:db8:1:2:3:4:5:6", NET_PORT_NONE);
	struct net_addr full = a;
	assert_int_equal(net_addr_mask(&a, 128), 0);
	assert_memory_equal(&a, &full, sizeof(a));
	assert_int_equal(net_addr_mask(&a, 0), 0);
	assert_format(&a, false, "::");
	assert_int_equal(net_addr_mask(&a, 129), -EINVAL);

	a = addr_of("2001:db8:ffff::", NET_PORT_NONE);
	assert_int_equal(net_addr_mask(&a, 41), 0);
	assert_format(&a, false, "2001:db8:ff80::");

	a = addr_of("192.168.7.200", NET_PORT_NONE);
	assert_int_equal(net_addr_mask(&a, 24), 0);
	assert_format(&a, false, "192.168.7.0");
	assert_int_equal(net_addr_mask(&a, 33), -EINVAL);
	assert_format(&a, false, "192.168.7.0");

	a = addr_of("255.255.255.255", NET_PORT_NONE);
	assert_int_equal(net_addr_mask(&a, 20), 0);
	assert_format(&a, false, "255.255.240.0");
	assert_int_equal(net_addr_mask(&a, 32), 0);
	assert_format(&a, false, "255.255.240.0");
	assert_int_equal(net_addr_mask(&a, 0), 0);
	assert_format(&a, false, "0.0.0.0");

	a.family = 0;
	assert_int_equal(net_addr_mask(&a, 0), -EINVAL);
}

struct cidr_case {
	const char *in;
	const char *canon;
	unsigned prefix;
};

static const struct cidr_case good_cidrs[] = {
    {"10.0.0.0/8", "10.0.0.0/8", 8},
    {"10.1.2.3/8", "10.0.0.0/8", 8},
    {"192.168.1.77/24", "192.168.1.0/24", 24},
    {"1.2.3.4", "1.2.3.4/32", 32},
    {"1.2.3.4/32", "1.2.3.4/32", 32},
    {"1.2.3.4/0", "0.0.0.0/0", 0},
    {"1.2.3.4/31", "1.2.3.4/31", 31},
    {"1.2.3.5/31", "1.2.3.4/31", 31},
    {"2001:db8::/32", "2001:db8::/32", 32},
    {"2001:db8:aa::1/48", "2001:db8:aa::/48", 48},
    {"2001:db8:1:2:3:4:5:6/64", "2001:db8:1:2::/64", 64},
    {"::/0", "::/0", 0},
    {"::1", "::1/128", 128},
    {"::1/128", "::1/128", 128},
    {"::ffff:0:0/96", "::ffff:0.0.0.0/96", 96},
    {"::ffff:10.1.2.3/104", "::ffff:10.0.0.0/104", 104},
};

static void
test_cidr_good(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(good_cidrs); i++) {
		struct net_cidr c = cidr_of(good_cidrs[i].in);
		assert_int_equal(c.prefix, good_cidrs[i].prefix);
		assert_int_equal(c.addr.port, 0);
		assert_cidr_format(&c, good_cidrs[i].canon);

		char buf[NET_CIDR_STRLEN];
		assert_int_equal(net_cidr_format(&c, buf, sizeof(buf)), 0);
		struct net_cidr d = cidr_of(buf);
		assert_memory_equal(&c, &d, sizeof(c));
	}
}

static void
test_cidr_bad(void **state)
{
	static const char *const bad[] = {
	    "",           "/8",          "1.2.3.4/",           "1.2.3.4/33",    "::/129",
	    "1.2.3.4/08", "1.2.3.4/-1",  "1.2.3.4/+8",         "1.2.3.4/ 8",    "1.2.3.4/8 ",
	    "1.2.3/8",    "300.0.0.0/8", "10.0.0.0/8/8",       "10.0.0.0//8",   "::1::/64",
	    "[::1]/128",  "[::1]",       "1.2.3.4:80",         "1.2.3.4:80/32", "fe80::1%eth0/64",
	    "::/1000",    "::/00",       "1.2.3.4/4294967328", "01.2.3.4/8",    "1.2.3.4/0x8",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct net_cidr c = {.prefix = 99};
		if (net_cidr_parse(bad[i], &c) != -EINVAL)
			fail_msg("cidr \"%s\" accepted", bad[i]);
		assert_int_equal(c.prefix, 99);
	}
	assert_int_equal(net_cidr_parse(NULL, &(struct net_cidr){0}), -EINVAL);
}

static void
test_cidr_format_nospace(void **state)
{
	struct net_cidr c = cidr_of("10.0.0.0/8");
	char buf[16];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(net_cidr_format(&c, buf, 10), -ENOSPC);
	assert_int_equal(buf[0], 'x');
	assert_int_equal(net_cidr_format(&c, buf, 11), 0);
	assert_string_equal(buf, "10.0.0.0/8");
	c.prefix = 33;
	assert_int_equal(net_cidr_format(&c, buf, sizeof(buf)), -EINVAL);
}

static bool
matches(const char *cidr, const char *addr)
{
	struct net_cidr c = cidr_of(cidr);
	struct net_addr a = addr_of(addr, NET_PORT_OPTIONAL | NET_PORT_ZERO_OK);
	return net_cidr_match(&c, &a);
}

static void
test_cidr_match(void **state)
{
	assert_true(matches("10.0.0.0/8", "10.255.1.2"));
	assert_true(matches("10.0.0.0/8", "10.0.0.0"));
	assert_false(matches("10.0.0.0/8", "11.0.0.0"));
	assert_false(matches("10.0.0.0/8", "9.255.255.255"));
	assert_true(matches("192.168.1.0/24", "192.168.1.255:443"));
	assert_false(matches("192.168.1.0/24", "192.168.2.1"));
	assert_true(matches("1.2.3.4", "1.2.3.4:80"));
	assert_false(matches("1.2.3.4", "1.2.3.5"));
	assert_true(matches("1.2.3.4/31", "1.2.3.5"));
	assert_false(matches("1.2.3.4/31", "1.2.3.6"));
	assert_true(matches("0.0.0.0/0", "255.255.255.255"));
	assert_true(matches("172.16.0.0/12", "172.31.255.255"));
	assert_false(matches("172.16.0.0/12", "172.32.0.0"));

	assert_true(matches("2001:db8::/32", "[2001:db8:ffff::1]:80"));
	assert_false(matches("2001:db8::/32", "2001:db9::1"));
	assert_true(matches("2001:db8:0:1::/64", "2001:db8:0:1:ffff:ffff:ffff:ffff"));
	assert_false(matches("2001:db8:0:1::/64", "2001:db8:0:2::"));
	assert_true(matches("::1", "::1"));
	assert_false(matches("::1", "::2"));
	assert_true(matches("::/0", "2001:db8::1"));

	/* A v6 address never matches an IPv4 prefix unless it is v4-mapped. */
	assert_false(matches("0.0.0.0/0", "::1"));
	assert_false(matches("1.2.3.0/24", "::1.2.3.4"));
	assert_false(matches("10.0.0.0/8", "2001:db8::1"));
	assert_false(matches("2001:db8::/32", "10.0.0.1"));
}

static void
test_cidr_match_v4_mapped(void **state)
{
	assert_true(matches("10.0.0.0/8", "::ffff:10.1.2.3"));
	assert_true(matches("10.0.0.0/8", "[::ffff:10.1.2.3]:80"));
	assert_false(matches("10.0.0.0/8", "::ffff:11.1.2.3"));
	assert_true(matches("1.2.3.4", "::ffff:1.2.3.4"));
	assert_true(matches("0.0.0.0/0", "::ffff:0.0.0.0"));

	assert_true(matches("::ffff:0:0/96", "1.2.3.4"));
	assert_true(matches("::ffff:0:0/96", "::ffff:1.2.3.4"));
	assert_false(matches("::ffff:0:0/96", "::1.2.3.4"));
	assert_true(matches("::ffff:10.0.0.0/104", "10.9.9.9"));
	assert_false(matches("::ffff:10.0.0.0/104", "11.9.9.9"));
	assert_true(matches("::ffff:1.2.3.4/128", "1.2.3.4:80"));
	assert_false(matches("::ffff:1.2.3.4/128", "1.2.3.5"));
	assert_false(matches("::/96", "1.2.3.4"));

	struct net_cidr bad = cidr_of("10.0.0.0/8");
	struct net_addr a = addr_of("10.0.0.1", NET_PORT_NONE);
	bad.prefix = 40;
	assert_false(net_cidr_match(&bad, &a));
	a.family = 0;
	bad.prefix = 0;
	assert_false(net_cidr_match(&bad, &a));
	assert_false(net_cidr_match(NULL, &a));
}

static void
test_sockaddr_v4(void **state)
{
	struct net_addr a = addr_of("192.0.2.9:8080", NET_PORT_REQUIRED);
	struct sockaddr_storage ss;
	socklen_t len = 0;

	assert_int_equal(net_addr_to_sockaddr(&a, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	struct sockaddr_in sin;
	memcpy(&sin, &ss, sizeof(sin));
	assert_int_equal(sin.sin_family, AF_INET);
	assert_int_equal(ntohs(sin.sin_port), 8080);
	assert_int_equal(ntohl(sin.sin_addr.s_addr), 0xc0000209);

	struct net_addr b;
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, len, &b), 0);
	assert_true(net_addr_equal(&a, &b));
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, len - 1, &b), -EINVAL);
}

static void
test_sockaddr_v6(void **state)
{
	struct net_addr a = addr_of("[2001:db8::7]:53", NET_PORT_REQUIRED);
	struct sockaddr_storage ss;
	socklen_t len = 0;

	assert_int_equal(net_addr_to_sockaddr(&a, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	struct sockaddr_in6 sin6;
	memcpy(&sin6, &ss, sizeof(sin6));
	assert_int_equal(sin6.sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6.sin6_port), 53);
	assert_int_equal(sin6.sin6_scope_id, 0);
	assert_int_equal(sin6.sin6_flowinfo, 0);
	char text[INET6_ADDRSTRLEN];
	assert_non_null(inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text)));
	assert_string_equal(text, "2001:db8::7");

	struct net_addr b;
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, len, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, len - 1, &b), -EINVAL);

	/* From the kernel: a v4-mapped peer on a dual-stack socket, port 0 kept as 0. */
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "::ffff:198.51.100.1", &sin6.sin6_addr), 1);
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&sin6, sizeof(sin6), &b), 0);
	assert_true(net_addr_is_v4_mapped(&b));
	assert_int_equal(b.port, 0);
	net_addr_normalize(&b);
	assert_format(&b, true, "198.51.100.1");
}

static void
test_sockaddr_bad(void **state)
{
	struct sockaddr_storage ss = {.ss_family = AF_UNIX};
	struct net_addr a = {0};
	socklen_t len;

	assert_int_equal(net_addr_to_sockaddr(&a, &ss, &len), -EINVAL);
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, sizeof(ss), &a),
	                 -EAFNOSUPPORT);
	assert_int_equal(net_addr_from_sockaddr(NULL, sizeof(ss), &a), -EINVAL);
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, 0, &a), -EINVAL);
}

/* Port 0 picks a port; REUSEPORT lets a second socket (a second worker) share it, and
 * without it the second bind is refused. */
static void
test_listen_tcp(void **state)
{
	struct net_addr a, got;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	assert_int_equal(net_addr_parse("127.0.0.1:0", NET_PORT_REQUIRED | NET_PORT_ZERO_OK, &a),
	                 0);
	_cleanup_close_ int fd = net_listen_tcp(&a, NET_LISTEN_REUSEPORT, 16);
	assert_true(fd >= 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, sl, &got), 0);
	assert_true(got.port != 0);
	_cleanup_close_ int again = net_listen_tcp(&got, NET_LISTEN_REUSEPORT, 16);
	assert_true(again >= 0);
	_cleanup_close_ int plain = net_listen_tcp(&got, 0, 16);
	assert_int_equal(plain, -EADDRINUSE);
	struct net_addr bad = {0};
	assert_true(net_listen_tcp(&bad, 0, 16) < 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_listen_tcp),
	    cmocka_unit_test(test_parse_bytes),
	    cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_parse_mode),
	    cmocka_unit_test(test_bare_v6_never_port),
	    cmocka_unit_test(test_parse_overlong),
	    cmocka_unit_test(test_format_nospace),
	    cmocka_unit_test(test_format_max_len),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_port_parse),
	    cmocka_unit_test(test_normalize),
	    cmocka_unit_test(test_equal),
	    cmocka_unit_test(test_mask),
	    cmocka_unit_test(test_cidr_good),
	    cmocka_unit_test(test_cidr_bad),
	    cmocka_unit_test(test_cidr_format_nospace),
	    cmocka_unit_test(test_cidr_match),
	    cmocka_unit_test(test_cidr_match_v4_mapped),
	    cmocka_unit_test(test_sockaddr_v4),
	    cmocka_unit_test(test_sockaddr_v6),
	    cmocka_unit_test(test_sockaddr_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
