/* Unit tests for src/mail/senderid and senderid_pra: the RFC 4407 PRA and RFC 4406 checks. */
#include "core/dns.h"
#include "mail/senderid.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static void
pra_is(const char *msg, const char *addr, const char *header)
{
	struct senderid_pra p;
	const char *why;
	int r = senderid_pra_find(msg, strlen(msg), &p, &why);
	if (!addr) {
		if (r != -ENOENT)
			fail_msg("found a PRA %s in:\n%s", p.address, msg);
		assert_non_null(why);
		return;
	}
	if (r != 0)
		fail_msg("no PRA (%s) in:\n%s", why, msg);
	assert_string_equal(p.address, addr);
	assert_string_equal(p.header, header);
}

static void
test_pra_rules(void **state)
{
	pra_is("From: a@x.test\r\nSubject: hi\r\n\r\nbody", "a@x.test", "From");
	pra_is("From: a@x.test\nSender: s@y.test\n\n", "s@y.test", "Sender");
	pra_is("From: a@x.test\nResent-From: r@z.test\nSender: s@y.test\n\n", "r@z.test",
	       "Resent-From");
	pra_is("Resent-Sender: rs@w.test\nResent-From: r@z.test\nFrom: a@x.test\n\n", "rs@w.test",
	       "Resent-Sender");
	/* step 1: a Resent-Sender from an older block (a Received between) loses to Resent-From */
	pra_is("Resent-From: new@z.test\nReceived: by a\nResent-Sender: old@w.test\nFrom: "
	       "a@x.test\n\n",
	       "new@z.test", "Resent-From");
	pra_is("Resent-From: r@z.test\nResent-Sender: rs@w.test\nReceived: by a\n\n", "rs@w.test",
	       "Resent-Sender");
	/* empty headers do not count */
	pra_is("Resent-Sender:   \nSender:\n \nFrom: a@x.test\n\n", "a@x.test", "From");
	/* multiple Sender or From headers: no PRA */
	pra_is("Sender: s@y.test\nSender: t@y.test\nFrom: a@x.test\n\n", NULL, NULL);
	pra_is("From: a@x.test\nFrom: b@x.test\n\n", NULL, NULL);
	pra_is("Subject: nothing\n\n", NULL, NULL);
	/* headers after the body separator are body */
	pra_is("Subject: x\n\nFrom: a@x.test\n", NULL, NULL);
	/* an mbox separator line is not a header, folded values are unfolded */
	pra_is("From someone Mon Jan  1 00:00:00 2024\nFrom: \"Joe\n Q.\" <joe@x.test>\n\n",
	       "joe@x.test", "From");
	pra_is("from: A@X.test\n\n", "A@X.test", "From");
}

static void
mailbox_is(const char *value, const char *want)
{
	char out[SENDERID_ADDR_MAX];
	int r = senderid_pra_mailbox(value, strlen(value), out, sizeof(out));
	if (!want) {
		if (r == 0)
			fail_msg("'%s' gave '%s'", value, out);
		return;
	}
	if (r != 0)
		fail_msg("'%s' is not a mailbox", value);
	assert_string_equal(out, want);
}

static void
test_mailboxes(void **state)
{
	mailbox_is(" a@x.test", "a@x.test");
	mailbox_is("Joe <joe@x.test>", "joe@x.test");
	mailbox_is("\"Doe, Joe\" <joe@x.test> (comment)", "joe@x.test");
	mailbox_is("(c) joe (c) @ (c) x . test (c)", "joe@x.test");
	mailbox_is("<@relay.test,@b.test:joe@x.test>", "joe@x.test");
	mailbox_is("\"quoted local\"@x.test", "quoted local@x.test");
	mailbox_is("a@x.test,", "a@x.test");
	mailbox_is("a@x.test, b@y.test", NULL);
	mailbox_is("Joe <a@x.test>, b@y.test", NULL);
	mailbox_is("undisclosed-recipients:;", NULL);
	mailbox_is("group: a@x.test;", NULL);
	mailbox_is("joe", NULL);
	mailbox_is("joe@", NULL);
	mailbox_is("joe@[192.0.2.1]", NULL);
	mailbox_is("<joe@x.test", NULL);
	mailbox_is("a@b <joe@x.test>", NULL);
	mailbox_is("Joe (unterminated <joe@x.test>", NULL);
	mailbox_is("", NULL);
}

static struct dns_resolver *
zone(void)
{
	static const struct {
		const char *owner, *txt;
	} recs[] = {
	    {"v2.test", "spf2.0/pra ip4:192.0.2.1 -all"},
	    {"v2.test", "v=spf1 +all"},
	    {"v1.test", "v=spf1 ip4:192.0.2.2 -all"},
	    {"mfrom.test", "spf2.0/mfrom -all"},
	    {"mfrom.test", "v=spf1 ip4:192.0.2.3 -all"},
	    {"both.test", "spf2.0/mfrom,pra ip4:192.0.2.4 ~all"},
	};
	struct dns_zone *z;
	struct dns_resolver *r;
	assert_int_equal(dns_zone_new(&z), 0);
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
		assert_int_equal(
		    dns_zone_add_txt(z, recs[i].owner, recs[i].txt, strlen(recs[i].txt)), 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	return r;
}

static enum spf_result
sid(struct dns_resolver *r, const char *ip, const char *msg, const char *mfrom)
{
	struct senderid_request req = {.scope = msg ? SPF_SCOPE_PRA : SPF_SCOPE_MFROM,
	                               .message = msg,
	                               .message_len = msg ? strlen(msg) : 0,
	                               .mfrom = mfrom,
	                               .helo = "h.test"};
	struct senderid_outcome out;
	assert_int_equal(net_addr_parse(ip, NET_PORT_NONE, &req.ip), 0);
	assert_int_equal(senderid_check(r, &req, &out), 0);
	return out.spf.result;
}

static void
test_checks(void **state)
{
	struct dns_resolver *r = zone();
	assert_int_equal(sid(r, "192.0.2.1", "From: a@v2.test\n\n", NULL), SPF_PASS);
	assert_int_equal(sid(r, "192.0.2.9", "From: a@v2.test\n\n", NULL), SPF_FAIL);
	assert_int_equal(sid(r, "192.0.2.2", "From: a@v1.test\n\n", NULL), SPF_PASS);
	/* spf2.0/mfrom does not cover pra: v=spf1 is used */
	assert_int_equal(sid(r, "192.0.2.3", "From: a@mfrom.test\n\n", NULL), SPF_PASS);
	assert_int_equal(sid(r, "192.0.2.3", NULL, "a@mfrom.test"), SPF_FAIL);
	assert_int_equal(sid(r, "192.0.2.9", "Sender: a@both.test\n\n", NULL), SPF_SOFTFAIL);
	assert_int_equal(sid(r, "192.0.2.4", NULL, "a@both.test"), SPF_PASS);
	assert_int_equal(sid(r, "192.0.2.4", "From: a@x.test\nFrom: b@y.test\n\n", NULL),
	                 SPF_PERMERROR);
	assert_int_equal(sid(r, "192.0.2.4", "From: a@none.test\n\n", NULL), SPF_NONE);

	struct senderid_request req = {
	    .scope = SPF_SCOPE_PRA, .message = "Resent-From: a@v2.test\n\n", .message_len = 24};
	struct senderid_outcome out;
	char buf[256];
	assert_int_equal(net_addr_parse("192.0.2.1", NET_PORT_NONE, &req.ip), 0);
	assert_int_equal(senderid_check(r, &req, &out), 0);
	assert_int_equal(senderid_authres(&out, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "sender-id=pass header.resent-from=a@v2.test");
	dns_resolver_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pra_rules),
	    cmocka_unit_test(test_mailboxes),
	    cmocka_unit_test(test_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
