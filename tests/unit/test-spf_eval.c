/*
 * Unit tests for src/mail/spf_eval and spf_header: check_host() over in-memory zones
 * (core/dns), the §4.6.4 limits, explanations, the HELO identity, hostile records, and the
 * Received-SPF and Authentication-Results texts.
 */
#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/spf_eval.h"
#include "mail/spf_header.h"

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

struct zrec {
	const char *owner;
	enum dns_type type; /* 0: the owner times out */
	const char *rdata;  /* TXT: the raw text */
};

static struct dns_resolver *
zone(const struct zrec *z, size_t n)
{
	struct dns_zone *zn;
	struct dns_resolver *r;
	assert_int_equal(dns_zone_new(&zn), 0);
	for (size_t i = 0; i < n; i++) {
		int e = z[i].type == 0 ? dns_zone_add_failure(zn, z[i].owner, DNS_TIMEOUT)
		        : z[i].type == DNS_T_TXT
		            ? dns_zone_add_txt(zn, z[i].owner, z[i].rdata, strlen(z[i].rdata))
		            : dns_zone_add(zn, z[i].owner, z[i].type, z[i].rdata);
		if (e != 0)
			fail_msg("zone: %s %s: %d", z[i].owner, z[i].rdata, e);
	}
	assert_int_equal(dns_resolver_from_zone(zn, &r), 0);
	return r;
}

#define ZONE(...)                                                                                  \
	({                                                                                         \
		static const struct zrec z_[] = {__VA_ARGS__};                                     \
		zone(z_, sizeof(z_) / sizeof(z_[0]));                                              \
	})

static struct spf_outcome
check(struct dns_resolver *r, const char *ip, const char *sender, const char *helo)
{
	struct spf_request req = {.sender = sender, .helo = helo, .receiver = "mx.test"};
	struct spf_outcome out;
	assert_int_equal(net_addr_parse(ip, NET_PORT_NONE, &req.ip), 0);
	assert_int_equal(spf_eval_check(r, &req, &out), 0);
	return out;
}

static void
expect(struct dns_resolver *r, const char *ip, const char *sender, enum spf_result want)
{
	struct spf_outcome o = check(r, ip, sender, "helo.test");
	if (o.result != want)
		fail_msg("%s from %s: %s, want %s (%s %s)", sender, ip, spf_result_name(o.result),
		         spf_result_name(want), o.reason ? o.reason : "", o.problem);
}

struct trace_log {
	char line[32][160];
	size_t n;
	unsigned queries;
};

static void
trace_cb(void *arg, const struct spf_trace *t)
{
	static const char *const kinds[] = {"check", "query", "record", "term", "result"};
	struct trace_log *l = arg;
	char *p = l->line[l->n];
	int k = snprintf(p, sizeof(l->line[0]), "%u %s %.*s", t->depth, kinds[t->kind], (int)t->len,
	                 t->text);
	if (t->kind == SPF_TRACE_QUERY) {
		l->queries++;
		snprintf(p + k, sizeof(l->line[0]) - (size_t)k, " %s",
		         t->answer ? dns_status_name(t->answer->status) : "not sent");
	} else if (t->kind == SPF_TRACE_TERM) {
		snprintf(p + k, sizeof(l->line[0]) - (size_t)k, " %d", t->match);
	} else if (t->kind == SPF_TRACE_RESULT) {
		snprintf(p + k, sizeof(l->line[0]) - (size_t)k, " %s", spf_result_name(t->result));
	}
	if (l->n < 31)
		l->n++;
}

/* spf --trace: every step in order, the include one level deeper, each query with its answer;
 * and the time budget also cuts the trace's queries (past it: not sent). */
static void
test_trace(void **state)
{
	struct dns_resolver *r = ZONE({"t.test", DNS_T_TXT, "v=spf1 include:i.test -all"},
	                              {"i.test", DNS_T_TXT, "v=spf1 a:h.i.test ~all"},
	                              {"h.i.test", DNS_T_A, "192.0.2.1"});
	struct trace_log log = {0};
	struct spf_request req = {.sender = "a@t.test", .trace = trace_cb, .trace_arg = &log};
	struct spf_outcome out;
	assert_int_equal(net_addr_parse("192.0.2.1", NET_PORT_NONE, &req.ip), 0);
	assert_int_equal(spf_eval_check(r, &req, &out), 0);
	assert_int_equal(out.result, SPF_PASS);
	static const char *const want[] = {
	    "0 check t.test",
	    "0 query t.test NOERROR",
	    "0 record v=spf1 include:i.test -all",
	    "1 check i.test",
	    "1 query i.test NOERROR",
	    "1 record v=spf1 a:h.i.test ~all",
	    "1 query h.i.test NOERROR",
	    "1 term a:h.i.test 1",
	    "1 result i.test pass",
	    "0 term include:i.test 1",
	    "0 result t.test pass",
	};
	assert_int_equal(log.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < log.n; i++)
		assert_string_equal(log.line[i], want[i]);
	assert_int_equal(log.queries, out.queries);
	/* the caller's deadline stands and is restored */
	dns_deadline_set(dns_monotonic_ms() + 60000);
	uint64_t outer = dns_deadline_get();
	assert_int_equal(spf_eval_check(r, &req, &out), 0);
	assert_int_equal(dns_deadline_get(), outer);
	dns_deadline_set(0);
	dns_resolver_free(r);
	(void)state;
}

static void
test_results(void **state)
{
	struct dns_resolver *r =
	    ZONE({"pass.test", DNS_T_TXT, "v=spf1 +all"}, {"fail.test", DNS_T_TXT, "v=spf1 -all"},
	         {"soft.test", DNS_T_TXT, "v=spf1 ~all"}, {"neutral.test", DNS_T_TXT, "v=spf1"},
	         {"other.test", DNS_T_TXT, "some other text"},
	         {"two.test", DNS_T_TXT, "v=spf1 -all"}, {"two.test", DNS_T_TXT, "v=spf1 +all"},
	         {"bad.test", DNS_T_TXT, "v=spf1 frobnicate"}, {"slow.test", 0, NULL},
	         {"ip.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"});
	expect(r, "192.0.2.1", "a@pass.test", SPF_PASS);
	expect(r, "192.0.2.1", "a@fail.test", SPF_FAIL);
	expect(r, "192.0.2.1", "a@soft.test", SPF_SOFTFAIL);
	expect(r, "192.0.2.1", "a@neutral.test", SPF_NEUTRAL);
	expect(r, "192.0.2.1", "a@other.test", SPF_NONE);
	expect(r, "192.0.2.1", "a@nowhere.test", SPF_NONE);
	expect(r, "192.0.2.1", "a@two.test", SPF_PERMERROR);
	expect(r, "192.0.2.1", "a@bad.test", SPF_PERMERROR);
	expect(r, "192.0.2.1", "a@slow.test", SPF_TEMPERROR);
	expect(r, "192.0.2.200", "a@ip.test", SPF_PASS);
	expect(r, "::ffff:192.0.2.200", "a@ip.test", SPF_PASS);
	expect(r, "2001:db8:1::1", "a@ip.test", SPF_PASS);
	expect(r, "198.51.100.1", "a@ip.test", SPF_FAIL);
	/* §4.3: malformed domains have no policy */
	expect(r, "192.0.2.1", "a@[192.0.2.1]", SPF_NONE);
	expect(r, "192.0.2.1", "a@single", SPF_NONE);
	expect(r, "192.0.2.1", "a@x..test", SPF_NONE);
	dns_resolver_free(r);
}

static void
test_mechanisms(void **state)
{
	struct dns_resolver *r = ZONE(
	    {"a.test", DNS_T_TXT, "v=spf1 a a:host.a.test/24 a:v6.a.test//64 -all"},
	    {"a.test", DNS_T_A, "192.0.2.1"}, {"host.a.test", DNS_T_A, "198.51.100.9"},
	    {"v6.a.test", DNS_T_AAAA, "2001:db8:1:2::1"},
	    {"mx.test", DNS_T_TXT, "v=spf1 mx mx:other.test/28 -all"},
	    {"mx.test", DNS_T_MX, "20 m2.mx.test"}, {"mx.test", DNS_T_MX, "10 m1.mx.test"},
	    {"m1.mx.test", DNS_T_A, "203.0.113.1"}, {"m2.mx.test", DNS_T_AAAA, "2001:db8::25"},
	    {"other.test", DNS_T_MX, "5 m3.other.test"}, {"m3.other.test", DNS_T_A, "203.0.113.33"},
	    {"ex.test", DNS_T_TXT, "v=spf1 exists:%{ir}.bl.ex.test -all"},
	    {"1.2.0.192.bl.ex.test", DNS_T_A, "127.0.0.2"},
	    {"inc.test", DNS_T_TXT, "v=spf1 -include:fail.inc.test include:ok.inc.test -all"},
	    {"fail.inc.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.7 -all"},
	    {"ok.inc.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.8 ~all"});
	expect(r, "192.0.2.1", "x@a.test", SPF_PASS);
	expect(r, "198.51.100.77", "x@a.test", SPF_PASS);
	expect(r, "2001:db8:1:2::99", "x@a.test", SPF_PASS);
	expect(r, "2001:db8:1:3::1", "x@a.test", SPF_FAIL);
	expect(r, "203.0.113.1", "x@mx.test", SPF_PASS);
	expect(r, "2001:db8::25", "x@mx.test", SPF_PASS);
	expect(r, "203.0.113.40", "x@mx.test", SPF_PASS);
	expect(r, "203.0.113.50", "x@mx.test", SPF_FAIL);
	expect(r, "192.0.2.1", "x@ex.test", SPF_PASS);
	expect(r, "192.0.2.2", "x@ex.test", SPF_FAIL);
	/* an included fail does not match: -include only fails what the included record passes */
	expect(r, "192.0.2.7", "x@inc.test", SPF_FAIL);
	expect(r, "192.0.2.8", "x@inc.test", SPF_PASS);
	expect(r, "192.0.2.9", "x@inc.test", SPF_FAIL);
	dns_resolver_free(r);
}

static void
test_ptr_and_p(void **state)
{
	struct dns_resolver *r =
	    ZONE({"ptr.test", DNS_T_TXT, "v=spf1 ptr -all exp=why.ptr.test"},
	         {"why.ptr.test", DNS_T_TXT, "%{p} is not allowed for %{d}"},
	         {"3.2.0.192.in-addr.arpa", DNS_T_PTR, "mail.ptr.test"},
	         {"4.2.0.192.in-addr.arpa", DNS_T_PTR, "liar.ptr.test"},
	         {"5.2.0.192.in-addr.arpa", DNS_T_PTR, "host.elsewhere.test"},
	         {"mail.ptr.test", DNS_T_A, "192.0.2.3"}, {"liar.ptr.test", DNS_T_A, "192.0.2.99"},
	         {"host.elsewhere.test", DNS_T_A, "192.0.2.5"});
	expect(r, "192.0.2.3", "x@ptr.test", SPF_PASS);
	struct spf_outcome o = check(r, "192.0.2.4", "x@ptr.test", "h.test");
	assert_int_equal(o.result, SPF_FAIL);
	assert_string_equal(o.explanation, "unknown is not allowed for ptr.test");
	o = check(r, "192.0.2.5", "x@ptr.test", "h.test");
	assert_int_equal(o.result, SPF_FAIL);
	assert_string_equal(o.explanation, "host.elsewhere.test is not allowed for ptr.test");
	dns_resolver_free(r);
}

static void
test_explanations(void **state)
{
	struct dns_resolver *r =
	    ZONE({"e.test", DNS_T_TXT, "v=spf1 -all exp=msg.e.test"},
	         {"msg.e.test", DNS_T_TXT, "%{l} from %{c} may not send for %{o} (%{v})."},
	         {"inc.e.test", DNS_T_TXT, "v=spf1 include:e.test -all exp=outer.e.test"},
	         {"outer.e.test", DNS_T_TXT, "outer"},
	         {"red.e.test", DNS_T_TXT, "v=spf1 exp=outer.e.test redirect=e.test"},
	         {"two.e.test", DNS_T_TXT, "v=spf1 -all exp=twice.e.test"},
	         {"twice.e.test", DNS_T_TXT, "one"}, {"twice.e.test", DNS_T_TXT, "two"},
	         {"bad.e.test", DNS_T_TXT, "v=spf1 -all exp=badmsg.e.test"},
	         {"badmsg.e.test", DNS_T_TXT, "The %{x}-files"});
	struct spf_outcome o = check(r, "2001:db8::1", "joe@e.test", "h.test");
	assert_int_equal(o.result, SPF_FAIL);
	assert_string_equal(o.explanation, "joe from 2001:db8::1 may not send for e.test (ip6).");
	assert_string_equal(o.mechanism, "-all");
	/* the exp= of an included record is not used; the includer's is */
	o = check(r, "192.0.2.1", "joe@inc.e.test", "h.test");
	assert_string_equal(o.explanation, "outer");
	/* redirect= drops the original exp= and uses the target's */
	o = check(r, "192.0.2.1", "joe@red.e.test", "h.test");
	assert_string_equal(o.explanation,
	                    "joe from 192.0.2.1 may not send for red.e.test (in-addr).");
	/* unusable explanations give the default */
	o = check(r, "192.0.2.1", "joe@two.e.test", "h.test");
	assert_string_equal(
	    o.explanation, "domain of two.e.test does not designate 192.0.2.1 as permitted sender");
	o = check(r, "192.0.2.1", "joe@bad.e.test", "h.test");
	assert_string_equal(
	    o.explanation, "domain of bad.e.test does not designate 192.0.2.1 as permitted sender");
	dns_resolver_free(r);
}

static void
test_lookup_limits(void **state)
{
	struct dns_resolver *r =
	    ZONE({"ten.test", DNS_T_TXT, "v=spf1 a a a a a a a a a a ip4:192.0.2.1 -all"},
	         {"eleven.test", DNS_T_TXT, "v=spf1 a a a a a a a a a a a ip4:192.0.2.1 -all"},
	         {"ten.test", DNS_T_A, "198.51.100.1"}, {"eleven.test", DNS_T_A, "198.51.100.1"},
	         {"early.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.1 a a a a a a a a a a a -all"},
	         {"loop.test", DNS_T_TXT, "v=spf1 include:loop.test"},
	         {"red.test", DNS_T_TXT, "v=spf1 redirect=red.test"},
	         {"void2.test", DNS_T_TXT, "v=spf1 a:n1.test a:n2.test ?all"},
	         {"void3.test", DNS_T_TXT, "v=spf1 a:n1.test a:n2.test a:n3.test ?all"});
	expect(r, "192.0.2.1", "x@ten.test", SPF_PASS);
	expect(r, "192.0.2.1", "x@eleven.test", SPF_PERMERROR);
	expect(r, "192.0.2.1", "x@early.test", SPF_PASS);
	expect(r, "192.0.2.1", "x@loop.test", SPF_PERMERROR);
	expect(r, "192.0.2.1", "x@red.test", SPF_PERMERROR);
	expect(r, "192.0.2.1", "x@void2.test", SPF_NEUTRAL);
	struct spf_outcome o = check(r, "192.0.2.1", "x@void3.test", "h.test");
	assert_int_equal(o.result, SPF_PERMERROR);
	assert_int_equal(o.voids, 3);
	o = check(r, "192.0.2.1", "x@eleven.test", "h.test");
	assert_int_equal(o.lookups, 11);
	assert_string_equal(o.reason, "Too many DNS lookups");
	dns_resolver_free(r);
}

/* §4.6.4: at most ten MX names are looked up; the eleventh needed is a permerror. */
static void
test_mx_limit(void **state)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	char host[64], rdata[80], ip[32];
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_add_txt(z, "mx.test", "v=spf1 mx -all", 14), 0);
	for (int i = 1; i <= 11; i++) {
		snprintf(host, sizeof(host), "m%d.mx.test", i);
		snprintf(rdata, sizeof(rdata), "%d %s", i, host);
		snprintf(ip, sizeof(ip), "192.0.2.%d", i);
		assert_int_equal(dns_zone_add(z, "mx.test", DNS_T_MX, rdata), 0);
		assert_int_equal(dns_zone_add(z, host, DNS_T_A, ip), 0);
	}
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	expect(r, "192.0.2.8", "x@mx.test", SPF_PASS);
	expect(r, "192.0.2.11", "x@mx.test", SPF_PERMERROR);
	expect(r, "192.0.2.99", "x@mx.test", SPF_PERMERROR);
	dns_resolver_free(r);
}

static void
test_dns_errors(void **state)
{
	struct dns_resolver *r =
	    ZONE({"inc.test", DNS_T_TXT, "v=spf1 include:slow.test -all"}, {"slow.test", 0, NULL},
	         {"a.test", DNS_T_TXT, "v=spf1 a:slow.test -all"},
	         {"ptr.test", DNS_T_TXT, "v=spf1 ptr ip4:192.0.2.1 -all"},
	         {"1.2.0.192.in-addr.arpa", 0, NULL},
	         {"exp.test", DNS_T_TXT, "v=spf1 -all exp=slow.test"},
	         {"none.test", DNS_T_TXT, "v=spf1 include:nothing.test -all"});
	expect(r, "192.0.2.1", "x@inc.test", SPF_TEMPERROR);
	expect(r, "192.0.2.1", "x@a.test", SPF_TEMPERROR);
	/* §5.5: a PTR lookup error is no match, not an error */
	expect(r, "192.0.2.1", "x@ptr.test", SPF_PASS);
	expect(r, "192.0.2.1", "x@exp.test", SPF_FAIL);
	expect(r, "192.0.2.1", "x@none.test", SPF_PERMERROR);
	dns_resolver_free(r);
}

static void
test_helo_identity(void **state)
{
	struct dns_resolver *r =
	    ZONE({"mail.test", DNS_T_TXT, "v=spf1 a -all"}, {"mail.test", DNS_T_A, "192.0.2.25"});
	struct spf_outcome o = check(r, "192.0.2.25", "", "mail.test");
	assert_int_equal(o.result, SPF_PASS);
	assert_int_equal(o.identity, SPF_ID_HELO);
	assert_string_equal(o.sender, "postmaster@mail.test");
	o = check(r, "192.0.2.26", NULL, "mail.test");
	assert_int_equal(o.result, SPF_FAIL);
	/* no local part: postmaster */
	o = check(r, "192.0.2.26", "@mail.test", "x.test");
	assert_int_equal(o.identity, SPF_ID_MAILFROM);
	assert_string_equal(o.sender, "postmaster@mail.test");
	dns_resolver_free(r);
}

/* Hostile records: every one ends in permerror (or a plain result), never worse. */
static void
test_hostile(void **state)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	size_t cap = 70000, n;
	char *big = malloc(cap);
	assert_int_equal(dns_zone_new(&z), 0);

	n = (size_t)snprintf(big, cap, "v=spf1");
	while (n + 16 < 5000 * 13)
		n += (size_t)snprintf(big + n, cap - n, " a:x%zu.test", n % 97);
	assert_int_equal(dns_zone_add_txt(z, "many.test", big, n), 0);

	n = (size_t)snprintf(big, cap, "v=spf1 exists:");
	while (n + 16 < 65000)
		n += (size_t)snprintf(big + n, cap - n, "%%{S}%%{lr}");
	n += (size_t)snprintf(big + n, cap - n, ".bomb.test -all");
	assert_int_equal(dns_zone_add_txt(z, "bomb.test", big, n), 0);

	assert_int_equal(dns_zone_add_txt(z, "nul.test", "v=spf1 ip4:192.0.2.1\0 -all", 26), 0);
	assert_int_equal(dns_zone_add_txt(z, "utf.test", "v=spf1 a:\xff\xfe.test -all", 21), 0);
	assert_int_equal(dns_zone_add_txt(z, "deep.test", "v=spf1 include:d1.deep.test", 27), 0);
	assert_int_equal(dns_zone_add_txt(z, "d1.deep.test", "v=spf1 include:deep.test", 24), 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);

	expect(r, "192.0.2.1", "x@many.test", SPF_PERMERROR);
	expect(r, "192.0.2.1", "x@bomb.test", SPF_FAIL);
	expect(r, "192.0.2.1", "x@nul.test", SPF_PERMERROR);
	expect(r, "192.0.2.1", "x@utf.test", SPF_PERMERROR);
	expect(r, "192.0.2.1", "x@deep.test", SPF_PERMERROR);
	dns_resolver_free(r);
	free(big);
}

static void
test_headers(void **state)
{
	struct dns_resolver *r = ZONE({"h.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.0/24 -all"},
	                              {"bad.test", DNS_T_TXT, "v=spf1 a:bad.test:8080"},
	                              {"ctl.test", DNS_T_TXT, "v=spf1 a:x\ry.test\xff -all"});
	struct spf_request req = {
	    .sender = "joe@h.test", .helo = "mx.h.test", .receiver = "rcv.test"};
	struct spf_outcome o;
	char buf[SPF_HEADER_MAX];

	assert_int_equal(net_addr_parse("192.0.2.9", NET_PORT_NONE, &req.ip), 0);
	assert_int_equal(spf_eval_check(r, &req, &o), 0);
	assert_int_equal(spf_header_received(&req, &o, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf,
	                    "Pass (rcv.test: domain of h.test designates 192.0.2.9 as "
	                    "permitted sender) client-ip=192.0.2.9; envelope-from=\"joe@h.test\"; "
	                    "helo=mx.h.test; receiver=rcv.test; mechanism=\"ip4:192.0.2.0/24\"; "
	                    "identity=mailfrom");
	assert_int_equal(spf_header_authres(&req, &o, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "spf=pass smtp.mailfrom=joe@h.test");

	req.sender = "joe@bad.test";
	assert_int_equal(spf_eval_check(r, &req, &o), 0);
	assert_int_equal(spf_header_received(&req, &o, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf,
	                    "PermError (rcv.test: permanent error in processing domain of "
	                    "bad.test: Invalid domain found (use FQDN)) client-ip=192.0.2.9; "
	                    "envelope-from=\"joe@bad.test\"; helo=mx.h.test; receiver=rcv.test; "
	                    "problem=\"bad.test:8080\"; identity=mailfrom");

	/* what header syntax cannot carry is replaced or quoted */
	req.sender = "joe@pa(ren.test";
	assert_int_equal(spf_eval_check(r, &req, &o), 0);
	assert_int_equal(spf_header_received(&req, &o, NULL, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "by domain of pa\\(ren.test)"));
	req.sender = "joe@ctl.test";
	assert_int_equal(spf_eval_check(r, &req, &o), 0);
	assert_int_equal(o.result, SPF_PERMERROR);
	assert_int_equal(spf_header_received(&req, &o, NULL, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "problem=\"a:x?y.test?\";"));

	req.sender = "";
	req.helo = "h.test";
	assert_int_equal(spf_eval_check(r, &req, &o), 0);
	assert_int_equal(spf_header_authres(&req, &o, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "spf=pass smtp.helo=h.test");
	assert_int_equal(spf_header_quote("a b\"c\\", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "\"a b\\\"c\\\\\"");
	dns_resolver_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_results),       cmocka_unit_test(test_mechanisms),
	    cmocka_unit_test(test_trace),         cmocka_unit_test(test_ptr_and_p),
	    cmocka_unit_test(test_explanations),  cmocka_unit_test(test_lookup_limits),
	    cmocka_unit_test(test_mx_limit),      cmocka_unit_test(test_dns_errors),
	    cmocka_unit_test(test_helo_identity), cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
