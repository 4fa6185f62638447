/* Unit tests for src/mail/mail_relaytest: the reply parser, escaping, HOST[:PORT], the tricks. */
#include "core/net.h"
#include "mail/mail_relaytest.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static int
parse(const char *s, struct mail_relaytest_reply *r)
{
	return mail_relaytest_reply_parse(s, strlen(s), r);
}

static void
test_reply_single_and_multi_line(void **state)
{
	struct mail_relaytest_reply r;
	const char *multi = "250-mx.example Hello\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
	(void)state;

	assert_int_equal(parse("220 mx.example ESMTP\r\n", &r), 22);
	assert_int_equal(r.code, 220);
	assert_string_equal(r.text, "mx.example ESMTP");
	assert_int_equal(r.lines, 1);
	assert_int_equal(parse(multi, &r), (int)strlen(multi));
	assert_int_equal(r.code, 250);
	assert_int_equal(r.lines, 3);
	assert_string_equal(r.text, "mx.example Hello\nPIPELINING\nSTARTTLS");
	/* bare LF, a code without text, and a reply followed by the next one */
	assert_int_equal(parse("250\n354 go on\r\n", &r), 4);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.text, "");
	assert_int_equal(parse("221-a\n221 b\n", &r), 12);
	assert_string_equal(r.text, "a\nb");
}

static void
test_reply_needs_more(void **state)
{
	struct mail_relaytest_reply r;
	(void)state;

	assert_int_equal(parse("", &r), 0);
	assert_int_equal(parse("2", &r), 0);
	assert_int_equal(parse("25", &r), 0);
	assert_int_equal(parse("250", &r), 0);
	assert_int_equal(parse("250\r", &r), 0);
	assert_int_equal(parse("250 ok", &r), 0);
	assert_int_equal(parse("250-first\r\n", &r), 0);
	assert_int_equal(parse("250-first\r\n25", &r), 0);
}

static void
test_reply_garbage(void **state)
{
	static const char *const bad[] = {
	    "HTTP/1.1 400 Bad Request\r\n",
	    "SSH-2.0-OpenSSH\r\n",
	    "H", /* recognised before the line ends */
	    "199 too low\r\n",
	    "600 too high\r\n",
	    "260 second digit\r\n",
	    "2x0 letters\r\n",
	    "25\r\n",
	    "250x\r\n",
	    "250_under\r\n",
	    "250\rX\r\n",
	    "\r\n",
	    " 250 space first\r\n",
	    "250-a\r\n251 b\r\n", /* codes differ */
	    "250-a\r\nxyz\r\n",
	};
	struct mail_relaytest_reply r;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &r) != -EBADMSG)
			fail_msg("'%s' was not refused", bad[i]);
	assert_int_equal(mail_relaytest_reply_parse("250 a\0b\r\n", 9, &r), -EBADMSG);
	assert_int_equal(mail_relaytest_reply_parse("25\0", 3, &r), -EBADMSG);
}

/* n copies of line into s (room checked by the caller). */
static void
repeat(char *s, const char *line, size_t n)
{
	size_t len = strlen(line);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * len, line, len);
	s[n * len] = '\0';
}

static void
test_reply_caps(void **state)
{
	struct mail_relaytest_reply r;
	size_t max = MAIL_RELAYTEST_LINE_MAX, lines = MAIL_RELAYTEST_REPLY_LINES;
	char *s = malloc((max + 2) * (lines + 1) + 1);
	(void)state;

	assert_non_null(s);
	/* a line of exactly the cap is fine; one byte more is not, with or without its end */
	memset(s, 'x', max + 2);
	memcpy(s, "250 ", 4);
	memcpy(s + max, "\r\n", 3);
	assert_int_equal(parse(s, &r), (int)max + 2);
	assert_int_equal(strlen(r.text), max - 4);
	assert_false(r.truncated);
	memcpy(s + max, "x\r\n", 4);
	assert_int_equal(parse(s, &r), -EMSGSIZE);
	s[max + 2] = '\0';
	assert_int_equal(parse(s, &r), -EMSGSIZE);
	/* text past its cap is cut and says so */
	memset(s, 'y', 2 * max);
	memcpy(s, "250-", 4);
	memcpy(s + max - 2, "\r\n250 ", 6);
	memcpy(s + 2 * max, "\r\n", 3);
	assert_int_equal(parse(s, &r), (int)(2 * max + 2));
	assert_true(r.truncated);
	assert_int_equal(strlen(r.text), MAIL_RELAYTEST_TEXT_MAX - 1);
	/* the count of lines */
	repeat(s, "250-x\r\n", lines - 1);
	memcpy(s + strlen(s), "250 x\r\n", 8);
	assert_int_equal(parse(s, &r), (int)(7 * lines));
	assert_int_equal(r.lines, lines);
	repeat(s, "250-x\r\n", lines);
	memcpy(s + strlen(s), "250 x\r\n", 8);
	assert_int_equal(parse(s, &r), -EMSGSIZE);
	free(s);
}

static void
test_reply_text_escaped(void **state)
{
	struct mail_relaytest_reply r;
	(void)state;

	assert_true(parse("554 \x1b[31mno\\ \x07\xff\r\n", &r) > 0);
	assert_string_equal(r.text, "\\x1b[31mno\\\\ \\x07\\xff");
	assert_false(r.truncated);
	assert_true(parse("250 a\tb\r\n", &r) > 0);
	assert_string_equal(r.text, "a\\x09b");
}

static void
test_escape(void **state)
{
	char buf[8] = "ab";
	(void)state;

	assert_true(mail_relaytest_escape(buf, sizeof(buf), "c\n", 2));
	assert_string_equal(buf, "abc\\x0a");
	/* no room for a whole escape: nothing of it is written */
	buf[0] = '\0';
	assert_false(mail_relaytest_escape(buf, sizeof(buf), "abcd\x01", 5));
	assert_string_equal(buf, "abcd");
	buf[0] = '\0';
	assert_false(mail_relaytest_escape(buf, sizeof(buf), "12345678", 8));
	assert_string_equal(buf, "1234567");
}

struct target_case {
	const char *in;
	const char *host;
	uint16_t port;
	bool is_addr;
};

static void
test_target_good(void **state)
{
	static const struct target_case good[] = {
	    {"mx.example.com", "mx.example.com", 25, false},
	    {"MX.Example.COM.", "mx.example.com", 25, false},
	    {"mx.example.com:2525", "mx.example.com", 2525, false},
	    {"localhost", "localhost", 25, false},
	    {"localhost:587", "localhost", 587, false},
	    {"127.0.0.1", "127.0.0.1", 25, true},
	    {"127.0.0.1:2525", "127.0.0.1", 2525, true},
	    {"::1", "::1", 25, true},
	    {"[::1]", "::1", 25, true},
	    {"[::1]:2525", "::1", 2525, true},
	    {"2001:db8::25", "2001:db8::25", 25, true},
	    {"[2001:db8::25]:65535", "2001:db8::25", 65535, true},
	    {"a-b.x1", "a-b.x1", 25, false},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct mail_relaytest_target t;
		if (mail_relaytest_target_parse(good[i].in, &t) != 0)
			fail_msg("'%s' was refused", good[i].in);
		assert_string_equal(t.host, good[i].host);
		assert_int_equal(t.port, good[i].port);
		assert_int_equal(t.is_addr, good[i].is_addr);
		if (t.is_addr)
			assert_int_equal(t.addr.port, good[i].port);
	}
}

static void
test_target_bad(void **state)
{
	static const char *const bad[] = {
	    "",
	    "mx.example:0",
	    "mx.example:65536",
	    "mx.example:",
	    "mx.example:x",
	    ":25",
	    "[::1",
	    "[::1]:",
	    "[::1]:0",
	    "[mx.example]:25",
	    "::1]:25",
	    "1.2.3",
	    "1.2.3.4:0",
	    "1.2.3.4:99999",
	    "256.1.1.1",
	    "mx..example",
	    ".mx.example",
	    "-mx.example",
	    "mx-.example",
	    "mx_1.example",
	    "bad host",
	    "mx.example:25:25",
	    "mx.example/25",
	    "a@b",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mail_relaytest_target t;
		if (mail_relaytest_target_parse(bad[i], &t) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	}
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	struct mail_relaytest_target t;
	assert_int_equal(mail_relaytest_target_parse(longname, &t), -EINVAL);
}

static void
test_names_and_addresses(void **state)
{
	(void)state;
	assert_true(mail_relaytest_name_valid("example.org"));
	assert_true(mail_relaytest_name_valid("localhost"));
	assert_true(mail_relaytest_name_valid("1.example"));
	assert_false(mail_relaytest_name_valid("example.123"));
	assert_false(mail_relaytest_name_valid("example."));
	assert_false(mail_relaytest_name_valid(""));
	assert_true(mail_relaytest_addr_valid("relaytest@example.org"));
	assert_true(mail_relaytest_addr_valid("a.b+c@example.org"));
	assert_false(mail_relaytest_addr_valid("relaytest"));
	assert_false(mail_relaytest_addr_valid("@example.org"));
	assert_false(mail_relaytest_addr_valid("a%b@example.org"));
	assert_false(mail_relaytest_addr_valid("a!b@example.org"));
	assert_false(mail_relaytest_addr_valid("\"a\"@example.org"));
	assert_false(mail_relaytest_addr_valid("a@b@example.org"));
	assert_false(mail_relaytest_addr_valid("a..b@example.org"));
	assert_false(mail_relaytest_addr_valid(".a@example.org"));
	assert_false(mail_relaytest_addr_valid("a b@example.org"));
	assert_false(mail_relaytest_addr_valid("a@example.org\r\nDATA"));
	assert_false(mail_relaytest_addr_valid("a@[192.0.2.1]"));
}

static void
test_literal(void **state)
{
	struct net_addr a;
	char buf[64];
	(void)state;

	assert_int_equal(net_addr_parse("192.0.2.7:25", NET_PORT_OPTIONAL, &a), 0);
	assert_int_equal(mail_relaytest_literal(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[192.0.2.7]");
	assert_int_equal(net_addr_parse("::1", NET_PORT_NONE, &a), 0);
	assert_int_equal(mail_relaytest_literal(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[IPv6:::1]");
	assert_int_equal(net_addr_parse("::ffff:192.0.2.7", NET_PORT_NONE, &a), 0);
	assert_int_equal(mail_relaytest_literal(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[192.0.2.7]");
	assert_int_equal(mail_relaytest_literal(&a, buf, 8), -ENAMETOOLONG);
}

static void
test_reply_domain(void **state)
{
	struct mail_relaytest_reply r;
	char d[MAIL_RELAYTEST_NAME_MAX];
	(void)state;

	assert_true(parse("250-MX.Example.com Hello there\r\n250 SIZE\r\n", &r) > 0);
	mail_relaytest_reply_domain(&r, d, sizeof(d));
	assert_string_equal(d, "mx.example.com");
	assert_true(parse("220\r\n", &r) > 0);
	mail_relaytest_reply_domain(&r, d, sizeof(d));
	assert_string_equal(d, "");
	assert_true(parse("220 [192.0.2.1] ESMTP\r\n", &r) > 0);
	mail_relaytest_reply_domain(&r, d, sizeof(d));
	assert_string_equal(d, "");
	assert_true(parse("220 evil\x1b.example ESMTP\r\n", &r) > 0);
	mail_relaytest_reply_domain(&r, d, sizeof(d));
	assert_string_equal(d, "");
}

static const struct {
	const char *name, *from, *rcpt;
	bool relay;
} want_tricks[] = {
    {"plain", "<me@example.org>", "<you@example.com>", true},
    {"null-sender", "<>", "<you@example.com>", true},
    {"own-domain-sender", "<me@mx.test>", "<you@example.com>", true},
    {"localhost-sender", "<me@localhost>", "<you@example.com>", true},
    {"literal-sender", "<me@[192.0.2.25]>", "<you@example.com>", true},
    {"unqualified-sender", "<me>", "<you@example.com>", true},
    {"percent", "<me@example.org>", "<you%example.com@mx.test>", true},
    {"percent-literal", "<me@example.org>", "<you%example.com@[192.0.2.25]>", true},
    {"percent-unqualified", "<me@example.org>", "<you%example.com>", true},
    {"source-route", "<me@example.org>", "<@mx.test:you@example.com>", true},
    {"source-route-bare", "<me@example.org>", "@mx.test:you@example.com", true},
    {"bang", "<me@example.org>", "<example.com!you@mx.test>", true},
    {"bang-unqualified", "<me@example.org>", "<example.com!you>", true},
    {"quoted", "<me@example.org>", "<\"you@example.com\"@mx.test>", true},
    {"quoted-percent", "<me@example.org>", "<\"you%example.com\"@mx.test>", true},
    {"quoted-unqualified", "<me@example.org>", "<\"you@example.com\">", true},
    {"double-at", "<me@example.org>", "<you@example.com@mx.test>", true},
    {"outside-literal", "<me@example.org>", "<you@[192.0.2.1]>", true},
    {"unqualified-local", "<me@example.org>", "<you>", false},
};

static void
test_tricks(void **state)
{
	struct mail_relaytest_params p = {"me@example.org", "you@example.com", "mx.test",
	                                  "[192.0.2.25]"};
	struct mail_relaytest_trick t[MAIL_RELAYTEST_TRICKS_MAX];
	size_t n = 0;
	(void)state;

	assert_int_equal(mail_relaytest_tricks(&p, t, MAIL_RELAYTEST_TRICKS_MAX, &n), 0);
	assert_int_equal(n, sizeof(want_tricks) / sizeof(want_tricks[0]));
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(t[i].name, want_tricks[i].name);
		assert_string_equal(t[i].mail_from, want_tricks[i].from);
		assert_string_equal(t[i].rcpt_to, want_tricks[i].rcpt);
		assert_int_equal(t[i].relay, want_tricks[i].relay);
		assert_non_null(t[i].what);
		/* nothing that could end the command line or smuggle another */
		assert_null(strpbrk(t[i].rcpt_to, "\r\n"));
	}
}

static void
test_tricks_bad_input(void **state)
{
	struct mail_relaytest_trick t[MAIL_RELAYTEST_TRICKS_MAX];
	struct mail_relaytest_params p = {"me@example.org", "you@example.com", "mx.test",
	                                  "[192.0.2.25]"};
	size_t n = 0;
	(void)state;

	assert_int_equal(mail_relaytest_tricks(&p, t, 3, &n), -ENOBUFS);
	p.to = "you";
	assert_int_equal(mail_relaytest_tricks(&p, t, MAIL_RELAYTEST_TRICKS_MAX, &n), -EINVAL);
	p.to = "you@example.com";
	p.from = "me@example.org\r\nDATA";
	assert_int_equal(mail_relaytest_tricks(&p, t, MAIL_RELAYTEST_TRICKS_MAX, &n), -EINVAL);
	p.from = "me@example.org";
	p.domain = "";
	assert_int_equal(mail_relaytest_tricks(&p, t, MAIL_RELAYTEST_TRICKS_MAX, &n), -EINVAL);
	p.domain = "mx.test\r\nDATA";
	assert_int_equal(mail_relaytest_tricks(&p, t, MAIL_RELAYTEST_TRICKS_MAX, &n), -EINVAL);
	assert_int_equal(n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_single_and_multi_line),
	    cmocka_unit_test(test_reply_needs_more),
	    cmocka_unit_test(test_reply_garbage),
	    cmocka_unit_test(test_reply_caps),
	    cmocka_unit_test(test_reply_text_escaped),
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_target_good),
	    cmocka_unit_test(test_target_bad),
	    cmocka_unit_test(test_names_and_addresses),
	    cmocka_unit_test(test_literal),
	    cmocka_unit_test(test_reply_domain),
	    cmocka_unit_test(test_tricks),
	    cmocka_unit_test(test_tricks_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
