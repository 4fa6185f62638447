/*
 * Unit tests for src/core/dns: the zone-file parser, zone answers, the zone-only resolver,
 * reverse names, and the libunbound path where it needs no DNS server (timeouts, zone
 * precedence). Answers from a real server are tested in tests/system/test_dns.py (knot).
 * The answer cache is tested here with the clock passed in; its use by the resolver (hits,
 * expiry, negative answers) against knot in tests/system/test_dns_cache.py.
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/dns.h"
#include "core/dns_cache.h"
#include "core/dns_zone.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static struct dns_zone *
zone_of(const char *text)
{
	struct dns_zone *z;
	_cleanup_free_ char *err = NULL;
	assert_int_equal(dns_zone_new(&z), 0);
	int r = dns_zone_load_string(z, "t.zone", text, strlen(text), &err);
	if (r != 0)
		fail_msg("load = %d:\n%s", r, err ? err : "");
	assert_null(err);
	return z;
}

static struct dns_resolver *
resolver_of(const char *text)
{
	struct dns_resolver *r;
	assert_int_equal(dns_resolver_from_zone(zone_of(text), &r), 0);
	return r;
}

/* The error text of a zone that must fail to load. */
static char *
zone_errors(const char *text, size_t len)
{
	struct dns_zone *z;
	char *err = NULL;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_load_string(z, "t.zone", text, len, &err), -EINVAL);
	assert_non_null(err);
	dns_zone_free(z);
	return err;
}

static void
assert_zone_error(const char *text, const char *want)
{
	_cleanup_free_ char *err = zone_errors(text, strlen(text));
	if (!strstr(err, want))
		fail_msg("zone:\n%s\nerrors:\n%s\nwanted: %s", text, err, want);
}

static void
query(struct dns_resolver *r, const char *name, enum dns_type type, enum dns_status want, size_t n,
      struct dns_answer *a)
{
	assert_int_equal(dns_query(r, name, type, a), 0);
	if (a->status != want || a->n != n)
		fail_msg("%s/%d: %s n=%zu, wanted %s n=%zu", name, type, dns_status_name(a->status),
		         a->n, dns_status_name(want), n);
}

static void
expect(struct dns_resolver *r, const char *name, enum dns_type type, enum dns_status want, size_t n)
{
	struct dns_answer a;
	query(r, name, type, want, n, &a);
	dns_answer_free(&a);
}

static void
expect_txt(struct dns_resolver *r, const char *name, const char *data, size_t len)
{
	struct dns_answer a;
	query(r, name, DNS_T_TXT, DNS_OK, 1, &a);
	assert_int_equal(a.rr[0].u.txt.len, len);
	assert_memory_equal(a.rr[0].u.txt.data, data, len);
	assert_int_equal(a.rr[0].u.txt.data[len], '\0');
	dns_answer_free(&a);
}

static void
expect_name(struct dns_resolver *r, const char *name, enum dns_type type, const char *target)
{
	struct dns_answer a;
	query(r, name, type, DNS_OK, 1, &a);
	assert_string_equal(type == DNS_T_MX ? a.rr[0].u.mx.host : a.rr[0].u.name, target);
	dns_answer_free(&a);
}

static uint32_t
ttl_of(struct dns_resolver *r, const char *name, enum dns_type type)
{
	struct dns_answer a;
	query(r, name, type, DNS_OK, 1, &a);
	uint32_t ttl = a.rr[0].ttl;
	dns_answer_free(&a);
	return ttl;
}

static void
test_zone_directives(void **state)
{
	struct dns_resolver *r = resolver_of("; a comment line\n"
	                                     "$ORIGIN example.com.\n"
	                                     "$TTL 1h\n"
	                                     "@\tIN\tSOA ns1 hostmaster ( 2024010101 ; serial\n"
	                                     "\t\t\t7200 3600 1209600 300 )\n"
	                                     "\t\tNS ns1\n"
	                                     "\t\tMX 10 mx1 ; omitted owner: the apex\n"
	                                     "mx1 300 IN A 192.0.2.1\n"
	                                     "mx1 IN 400 AAAA 2001:db8::1\n"
	                                     "ns1.example.com. A 192.0.2.53\n"
	                                     "$ORIGIN sub\n"
	                                     "host 60 A 192.0.2.7\n"
	                                     "\t TXT \"in sub\"\n"
	                                     "other.org. 7 PTR @\n");
	expect_name(r, "example.com", DNS_T_MX, "mx1.example.com");
	expect_name(r, "example.com", DNS_T_NS, "ns1.example.com");
	expect_name(r, "example.com", DNS_T_SOA, "ns1.example.com");
	assert_int_equal(ttl_of(r, "example.com", DNS_T_MX), 3600);
	assert_int_equal(ttl_of(r, "mx1.example.com", DNS_T_A), 300);
	assert_int_equal(ttl_of(r, "mx1.example.com", DNS_T_AAAA), 400);
	assert_int_equal(ttl_of(r, "host.sub.example.com", DNS_T_A), 60);
	expect_txt(r, "host.sub.example.com", "in sub", 6);
	expect_name(r, "other.org", DNS_T_PTR, "sub.example.com");
	expect(r, "ns1.example.com", DNS_T_A, DNS_OK, 1);
	dns_resolver_free(r);
}

static void
test_zone_ttl_rules(void **state)
{
	/* no $TTL: the last explicit TTL, else 3600; units add up */
	struct dns_resolver *r = resolver_of("a.test A 192.0.2.1\n"
	                                     "b.test 1h30m A 192.0.2.2\n"
	                                     "c.test A 192.0.2.3\n"
	                                     "d.test 1W A 192.0.2.4\n"
	                                     "e.test 2147483647 A 192.0.2.5\n");
	assert_int_equal(ttl_of(r, "a.test", DNS_T_A), 3600);
	assert_int_equal(ttl_of(r, "b.test", DNS_T_A), 5400);
	assert_int_equal(ttl_of(r, "c.test", DNS_T_A), 5400);
	assert_int_equal(ttl_of(r, "d.test", DNS_T_A), 604800);
	assert_int_equal(ttl_of(r, "e.test", DNS_T_A), 2147483647u);
	dns_resolver_free(r);
	assert_zone_error("a.test 2147483648 A 192.0.2.1\n", "t.zone:1: '2147483648': not a TTL");
	assert_zone_error("a.test 1x A 192.0.2.1\n", "not a TTL");
	assert_zone_error("$TTL h1\n", "t.zone:1: 'h1': not a TTL");
}

static void
test_zone_strings(void **state)
{
	struct dns_resolver *r = resolver_of("$ORIGIN example.com.\n"
	                                     "q TXT \"a\\\"b\\\\c\\065;d\" \" e\"\n"
	                                     "w TXT v=spf1 ip4:192.0.2.0/24 -all\n"
	                                     "nul TXT \"x\\000y\" \"\\255\"\n"
	                                     "multi TXT ( \"v=DKIM1; k=rsa; \"\n"
	                                     "  \"p=MIGf\" ; comment inside\n"
	                                     "  \"MA0G\" )\n"
	                                     "empty TXT \"\"\n"
	                                     "spf SPF \"v=spf1 -all\"\n"
	                                     "semi TXT \"a;b(c)\"\n"
	                                     "tab TXT \"a\tb\" \xc3\xa9\n");
	expect_txt(r, "q.example.com", "a\"b\\cA;d e", 10);
	expect_txt(r, "w.example.com", "v=spf1ip4:192.0.2.0/24-all", 26);
	expect_txt(r, "nul.example.com", "x\0y\xff", 4);
	expect_txt(r, "multi.example.com", "v=DKIM1; k=rsa; p=MIGfMA0G", 26);
	expect_txt(r, "empty.example.com", "", 0);
	expect_txt(r, "semi.example.com", "a;b(c)", 6);
	expect_txt(r, "tab.example.com", "a\tb\xc3\xa9", 5);
	struct dns_answer a;
	query(r, "spf.example.com", DNS_T_SPF, DNS_OK, 1, &a);
	assert_string_equal(a.rr[0].u.txt.data, "v=spf1 -all");
	dns_answer_free(&a);
	expect(r, "spf.example.com", DNS_T_TXT, DNS_NODATA, 0);
	dns_resolver_free(r);
}

static void
test_zone_string_limits(void **state)
{
	char text[1024], s[301];
	memset(s, 'a', sizeof(s) - 1);
	s[300] = '\0';
	snprintf(text, sizeof(text), "x.test TXT \"ok\"\nx.test TXT \"%s\"\n", s);
	assert_zone_error(text, "t.zone:2: string of 300 bytes: at most 255");
	snprintf(text, sizeof(text), "x.test TXT %s\n", s);
	assert_zone_error(text, "t.zone:1: string of 300 bytes");

	s[255] = '\0';
	snprintf(text, sizeof(text), "x.test TXT \"%s\" %s\n", s, s);
	struct dns_resolver *r = resolver_of(text);
	struct dns_answer a;
	query(r, "x.test", DNS_T_TXT, DNS_OK, 1, &a);
	assert_int_equal(a.rr[0].u.txt.len, 510);
	dns_answer_free(&a);
	dns_resolver_free(r);
}

static void
test_zone_errors_have_lines(void **state)
{
	static const char text[] = "$ORIGIN example.com.\n"
	                           "good A 192.0.2.1\n"
	                           "bad A 300.1.1.1\n"
	                           "\n"
	                           "x NOSUCHTYPE 1\n"
	                           "y MX 70000 mx\n"
	                           "z TXT \"unterminated\n"
	                           "after A 192.0.2.2\n"
	                           "w CH TXT \"chaos\"\n";
	_cleanup_free_ char *err = zone_errors(text, sizeof(text) - 1);
	assert_non_null(strstr(err, "t.zone:3: '300.1.1.1': not an IPv4 address\n"));
	assert_non_null(
	    strstr(err, "t.zone:5: 'NOSUCHTYPE': unknown or unsupported record type\n"));
	assert_non_null(strstr(err, "t.zone:6: '70000': not an MX preference"));
	assert_non_null(strstr(err, "t.zone:7: missing closing quote\n"));
	assert_non_null(strstr(err, "t.zone:9: class CH: only IN is supported\n"));
	assert_null(strstr(err, "t.zone:8"));
	assert_null(strstr(err, "t.zone:2"));
}

static void
test_zone_bad_entries(void **state)
{
	assert_zone_error("@ A 192.0.2.1\n", "t.zone:1: '@' without $ORIGIN");
	assert_zone_error("$INCLUDE other.zone\n", "t.zone:1: $INCLUDE: not supported");
	assert_zone_error("$GENERATE 1-2 a$ A 1.2.3.$\n", "$GENERATE: unknown directive");
	assert_zone_error("$ORIGIN a..b.\n", "'a..b.': not a valid domain name");
	assert_zone_error(" A 192.0.2.1\n", "t.zone:1: no owner name, and no previous one");
	assert_zone_error("a.test\n", "t.zone:1: missing record type");
	assert_zone_error("a.test 300 IN\n", "missing record type");
	assert_zone_error("a.test A\n", "A needs 1 field, got 0");
	assert_zone_error("a.test A 192.0.2.1 192.0.2.2\n", "A needs 1 field, got 2");
	assert_zone_error("a.test AAAA 192.0.2.1\n", "not an IPv6 address");
	assert_zone_error("a.test A ::1\n", "not an IPv4 address");
	assert_zone_error("a.test A 192.0.2.1:53\n", "not an IPv4 address");
	assert_zone_error("a.test AAAA [::1]\n", "not an IPv6 address");
	assert_zone_error("a.test TXT\n", "TXT needs at least one string");
	assert_zone_error("a.test MX 10\n", "MX needs 2 fields");
	assert_zone_error("a.test CNAME .\n", "the root name is not allowed here");
	assert_zone_error("a.test SOA ns host 1 2 3 4\n", "SOA needs 7 fields, got 6");
	assert_zone_error("a.test SOA ns host x 2 3 4 5\n", "'x': not an SOA number");
	assert_zone_error("a.test A \"192.0.2.1\"\n", "not an IPv4 address");
	assert_zone_error("\"a.test\" A 192.0.2.1\n", "quotes and escapes are not supported");
	assert_zone_error("a\\.b.test A 192.0.2.1\n", "quotes and escapes are not supported");
	assert_zone_error("a.test TXT \"bad \\1 escape\"\n", "t.zone:1: bad escape sequence");
	assert_zone_error("a.test TXT \"\\256\"\n", "bad escape sequence");
	assert_zone_error("a.test TXT ( \"x\"\n", "t.zone:1: '(' without ')'");
	assert_zone_error("a.test TXT \"x\" )\n", "t.zone:1: ')' without '('");
	assert_zone_error("a.test TXT ( ( \"x\" ) )\n", "nested '('");
	assert_zone_error("a.test TXT \"a\x01"
	                  "b\"\n",
	                  "control character 0x01");
}

static void
test_zone_bad_names(void **state)
{
	char label[80], text[700];
	memset(label, 'a', 64);
	label[64] = '\0';
	snprintf(text, sizeof(text), "%s.test A 192.0.2.1\n", label);
	assert_zone_error(text, "not a valid domain name");
	label[63] = '\0';
	/* 4 x 64 = 256 characters: over 253 */
	snprintf(text, sizeof(text), "%s.%s.%s.%s. A 192.0.2.1\n", label, label, label, label);
	assert_zone_error(text, "not a valid domain name");
	/* 3 x 64 + 61 = 253: the longest name */
	label[61] = '\0';
	char l63[64];
	memset(l63, 'b', 63);
	l63[63] = '\0';
	snprintf(text, sizeof(text), "%s.%s.%s.%s. A 192.0.2.1\n", l63, l63, l63, label);
	struct dns_resolver *r = resolver_of(text);
	snprintf(text, sizeof(text), "%s.%s.%s.%s", l63, l63, l63, label);
	expect(r, text, DNS_T_A, DNS_OK, 1);
	dns_resolver_free(r);
	/* relative names that grow past 253 with the origin */
	snprintf(text, sizeof(text), "$ORIGIN %s.%s.%s.\n%s A 192.0.2.1\n", l63, l63, l63, l63);
	assert_zone_error(text, "t.zone:2:");
}

static void
test_zone_cname_conflicts(void **state)
{
	assert_zone_error("a.test CNAME b.test\na.test A 192.0.2.1\n",
	                  "t.zone:2: a.test: a CNAME owner may hold no other records");
	assert_zone_error("a.test TXT x\na.test CNAME b.test\n", "t.zone:2: a.test: a CNAME owner");
	assert_zone_error("a.test SRV 0 0 25 b.test\na.test CNAME b.test\n", "t.zone:2:");
	assert_zone_error("a.test SOA ns h 1 2 3 4 5\na.test SOA ns h 2 2 3 4 5\n",
	                  "t.zone:2: a.test: a second SOA");
}

static void
test_zone_garbage(void **state)
{
	static const char nul[] = "a.test A 192.0.2.1\nb.test TXT \"x\0y\"\n";
	_cleanup_free_ char *e1 = zone_errors(nul, sizeof(nul) - 1);
	assert_non_null(strstr(e1, "t.zone:2: control character 0x00"));

	static const char bin[] = "\x7f\x45\x4c\x46\x02\x01\x01\x00\xff\xfe\n\x01\x02";
	_cleanup_free_ char *e2 = zone_errors(bin, sizeof(bin) - 1);
	assert_non_null(strstr(e2, "t.zone:1:"));

	assert_zone_error("this is not a zone file\n", "t.zone:1:");
	assert_zone_error("a.test A 192.0.2.1\nb.test", "t.zone:2: missing record type");
}

/* Errors are capped; a file of a million bad lines still gives a short answer. */
static void
test_zone_error_cap(void **state)
{
	struct buf text = BUF_INIT(1 << 20);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(buf_append_str(&text, "x BAD\n"), 0);
	_cleanup_free_ char *err = zone_errors(text.data, text.len);
	assert_non_null(strstr(err, "t.zone:50: "));
	assert_null(strstr(err, "t.zone:51: "));
	assert_non_null(strstr(err, "t.zone: too many errors, giving up\n"));
	buf_free(&text);
}

static void
test_zone_record_cap(void **state)
{
	struct buf text = BUF_INIT(8 << 20);
	assert_int_equal(buf_append_str(&text, "$ORIGIN test.\n"), 0);
	for (int i = 0; i < 100001; i++)
		assert_int_equal(buf_printf(&text, "h%d A 192.0.2.1\n", i), 0);
	_cleanup_free_ char *err = zone_errors(text.data, text.len);
	assert_non_null(strstr(err, "t.zone:100002: more than 100000 records"));
	buf_free(&text);
}

static void
test_zone_failed_load_changes_nothing(void **state)
{
	struct dns_zone *z = zone_of("a.test A 192.0.2.1\n");
	_cleanup_free_ char *err = NULL;
	const char *bad = "b.test A 192.0.2.2\nc.test A nope\n";
	assert_int_equal(dns_zone_load_string(z, "bad", bad, strlen(bad), &err), -EINVAL);
	assert_string_equal(err, "bad:2: 'nope': not an IPv4 address\n");
	/* a second load appends its errors */
	assert_int_equal(dns_zone_load_string(z, "bad2", "x Y\n", 4, &err), -EINVAL);
	assert_non_null(strstr(err, "bad:2: 'nope'"));
	assert_non_null(strstr(err, "bad2:1: 'Y'"));
	/* a good second load merges; one that conflicts with the first is refused whole */
	const char *more = "d.test A 192.0.2.4\n";
	assert_int_equal(dns_zone_load_string(z, "more", more, strlen(more), NULL), 0);
	const char *clash = "e.test A 192.0.2.5\na.test CNAME d.test\n";
	assert_int_equal(dns_zone_load_string(z, "clash", clash, strlen(clash), NULL), -EINVAL);

	struct dns_resolver *r;
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	expect(r, "a.test", DNS_T_A, DNS_OK, 1);
	expect(r, "b.test", DNS_T_A, DNS_NXDOMAIN, 0);
	expect(r, "d.test", DNS_T_A, DNS_OK, 1);
	expect(r, "e.test", DNS_T_A, DNS_NXDOMAIN, 0);
	dns_resolver_free(r);
}

/* Writes text to a new file named from the template path (mkstemp). */
static void
write_temp(char *path, const char *text)
{
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
query_txt(struct dns_zone *z, const char *name, const char *want)
{
	struct dns_resolver *r;
	struct dns_answer a;
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	assert_int_equal(dns_query(r, name, DNS_T_TXT, &a), 0);
	assert_int_equal(a.status, DNS_OK);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.rr[0].u.txt.data, want);
	dns_answer_free(&a);
	dns_resolver_free(r);
}

/* What opendkim-genkey writes: relative names, no $ORIGIN. An error naming the line, as
 * BIND gives, unless an origin is supplied; zones built in code keep rooting them at ".". */
static void
test_zone_file_origin(void **state)
{
	char path[] = "/tmp/test-dns-XXXXXX", want[160];
	write_temp(path, "; a comment\ns1._domainkey IN TXT ( \"v=DKIM1; p=\" )\n");
	struct dns_zone *z;
	_cleanup_free_ char *err = NULL;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_load_file(z, path, &err), -EINVAL);
	snprintf(want, sizeof(want),
	         "%s:2: 's1._domainkey': a relative name and no $ORIGIN (or --dns-origin)\n", path);
	assert_string_equal(err, want);
	assert_int_equal(dns_zone_set_origin(z, "bad..name"), -EINVAL);
	assert_int_equal(dns_zone_set_origin(z, "Example.COM."), 0);
	assert_int_equal(dns_zone_load_file(z, path, NULL), 0);
	query_txt(z, "s1._domainkey.example.com", "v=DKIM1; p=");
	unlink(path);

	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_load_string(z, "t", "a.test TXT x\n", 13, NULL), 0);
	query_txt(z, "a.test", "x");
	(void)state;
}

/* A FIFO would block the open or the read for ever; a directory is no zone either. */
static void
test_zone_file_not_regular(void **state)
{
	char dir[] = "/tmp/test-dns-XXXXXX", fifo[64];
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	struct dns_zone *z;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_load_file(z, fifo, NULL), -ENODEV);
	assert_int_equal(dns_zone_load_file(z, dir, NULL), -EISDIR);
	assert_int_equal(dns_zone_load_file(z, "/dev/null", NULL), -ENODEV);
	dns_zone_free(z);
	unlink(fifo);
	rmdir(dir);
	(void)state;
}

/* spf --record: the record given replaces the zone's TXT records at that name. */
static void
test_resolver_set_txt(void **state)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	struct dns_answer a;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_add(z, "example.org", DNS_T_TXT, "\"v=spf1 -all\""), 0);
	assert_int_equal(dns_zone_add(z, "example.org", DNS_T_TXT, "\"other\""), 0);
	assert_int_equal(dns_zone_add(z, "example.org", DNS_T_A, "192.0.2.1"), 0);
	assert_int_equal(dns_zone_add(z, "alias.example.org", DNS_T_CNAME, "example.org"), 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	assert_int_equal(dns_resolver_set_txt(r, "Example.org.", "v=spf1 +all", 11), 0);
	assert_int_equal(dns_resolver_set_txt(r, "alias.example.org", "v=spf1", 6), -EINVAL);
	assert_int_equal(dns_query(r, "example.org", DNS_T_TXT, &a), 0);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.rr[0].u.txt.data, "v=spf1 +all");
	dns_answer_free(&a);
	assert_int_equal(dns_query(r, "example.org", DNS_T_A, &a), 0);
	assert_int_equal(a.n, 1);
	dns_answer_free(&a);
	dns_resolver_free(r);
	(void)state;
}

static void
test_zone_file(void **state)
{
	char path[] = "/tmp/test-dns-XXXXXX";
	const char *text = "$ORIGIN example.com.\n@ SOA ns h 1 2 3 4 5\nwww A 192.0.2.1\nx A y\n";
	write_temp(path, text);

	struct dns_zone *z;
	_cleanup_free_ char *err = NULL;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_load_file(z, path, &err), -EINVAL);
	char want[128];
	snprintf(want, sizeof(want), "%s:4: 'y': not an IPv4 address\n", path);
	assert_string_equal(err, want);
	assert_int_equal(dns_zone_load_file(z, "/nonexistent/zone", NULL), -ENOENT);
	dns_zone_free(z);

	struct dns_resolver *r;
	struct dns_options opt = {.zone_file = "/nonexistent/zone", .no_network = true};
	assert_int_equal(dns_resolver_open(&opt, &r, NULL), -ENOENT);
	opt.zone_file = path;
	free(TAKE_PTR(err));
	assert_int_equal(dns_resolver_open(&opt, &r, &err), -EINVAL);
	assert_string_equal(err, want);
	unlink(path);
}

static void
test_answers(void **state)
{
	struct dns_resolver *r = resolver_of("$ORIGIN example.com.\n"
	                                     "@ SOA ns h 1 2 3 4 5\n"
	                                     "@ MX 10 mx\n"
	                                     "@ MX 20 mx2.other.org.\n"
	                                     "mx A 192.0.2.1\n"
	                                     "mx A 192.0.2.2\n"
	                                     "a.b.c TXT deep\n"
	                                     "outside.org. TXT \"not in an apex\"\n");
	expect(r, "example.com", DNS_T_MX, DNS_OK, 2);
	expect(r, "example.com", DNS_T_A, DNS_NODATA, 0);
	expect(r, "mx.example.com", DNS_T_A, DNS_OK, 2);
	expect(r, "mx.example.com", DNS_T_TXT, DNS_NODATA, 0);
	expect(r, "nx.example.com", DNS_T_A, DNS_NXDOMAIN, 0);
	expect(r, "x.mx.example.com", DNS_T_A, DNS_NXDOMAIN, 0);
	/* empty non-terminals exist */
	expect(r, "b.c.example.com", DNS_T_TXT, DNS_NODATA, 0);
	expect(r, "c.example.com", DNS_T_A, DNS_NODATA, 0);
	expect(r, "a.b.c.example.com", DNS_T_TXT, DNS_OK, 1);
	/* zone only: names with records but no apex answer from the zone; others do not exist */
	expect(r, "outside.org", DNS_T_TXT, DNS_OK, 1);
	expect(r, "outside.org", DNS_T_A, DNS_NODATA, 0);
	expect(r, "nowhere.net", DNS_T_A, DNS_NXDOMAIN, 0);
	/* case-insensitive, final dot optional */
	expect(r, "MX.Example.COM.", DNS_T_A, DNS_OK, 2);
	expect_txt(r, "A.B.C.EXAMPLE.COM", "deep", 4);
	dns_resolver_free(r);
}

static void
test_answer_records(void **state)
{
	struct dns_resolver *r = resolver_of("$ORIGIN example.com.\n"
	                                     "@ MX 10 MX.Example.COM.\n"
	                                     "@ MX 0 .\n"
	                                     "v4 A 192.0.2.1\n"
	                                     "v6 AAAA 2001:DB8::1\n");
	struct dns_answer a;
	query(r, "example.com", DNS_T_MX, DNS_OK, 2, &a);
	assert_int_equal(a.rr[0].type, DNS_T_MX);
	assert_int_equal(a.rr[0].u.mx.pref, 10);
	assert_string_equal(a.rr[0].u.mx.host, "mx.example.com");
	assert_int_equal(a.rr[1].u.mx.pref, 0);
	assert_string_equal(a.rr[1].u.mx.host, "");
	assert_false(a.secure);
	dns_answer_free(&a);

	char text[NET_ADDR_STRLEN];
	query(r, "v4.example.com", DNS_T_A, DNS_OK, 1, &a);
	assert_int_equal(a.rr[0].u.addr.family, AF_INET);
	assert_int_equal(net_addr_format(&a.rr[0].u.addr, false, text, sizeof(text)), 0);
	assert_string_equal(text, "192.0.2.1");
	dns_answer_free(&a);
	query(r, "v6.example.com", DNS_T_AAAA, DNS_OK, 1, &a);
	assert_int_equal(net_addr_format(&a.rr[0].u.addr, false, text, sizeof(text)), 0);
	assert_string_equal(text, "2001:db8::1");
	dns_answer_free(&a);
	dns_resolver_free(r);
}

static void
test_cname(void **state)
{
	struct dns_resolver *r = resolver_of("$ORIGIN example.com.\n"
	                                     "@ SOA ns h 1 2 3 4 5\n"
	                                     "www CNAME w2\n"
	                                     "w2 CNAME w3\n"
	                                     "w3 A 192.0.2.3\n"
	                                     "dangling CNAME gone\n"
	                                     "loop1 CNAME loop2\n"
	                                     "loop2 CNAME loop1\n"
	                                     "self CNAME self\n"
	                                     "out CNAME elsewhere.org.\n"
	                                     "c0 CNAME c1\nc1 CNAME c2\nc2 CNAME c3\nc3 CNAME c4\n"
	                                     "c4 CNAME c5\nc5 CNAME c6\nc6 CNAME c7\nc7 CNAME c8\n"
	                                     "c8 A 192.0.2.8\n"
	                                     "d0 CNAME c0\n");
	expect(r, "www.example.com", DNS_T_A, DNS_OK, 1);
	expect(r, "www.example.com", DNS_T_TXT, DNS_NODATA, 0);
	expect_name(r, "www.example.com", DNS_T_CNAME, "w2.example.com");
	expect(r, "dangling.example.com", DNS_T_A, DNS_NXDOMAIN, 0);
	expect(r, "loop1.example.com", DNS_T_A, DNS_SERVFAIL, 0);
	expect(r, "self.example.com", DNS_T_TXT, DNS_SERVFAIL, 0);
	expect(r, "out.example.com", DNS_T_A, DNS_NXDOMAIN, 0);
	/* 8 links are followed, a 9th is one too many */
	expect(r, "c0.example.com", DNS_T_A, DNS_OK, 1);
	expect(r, "d0.example.com", DNS_T_A, DNS_SERVFAIL, 0);
	dns_resolver_free(r);
}

static void
test_failures_and_api(void **state)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_add_failure(z, "slow.test", DNS_TIMEOUT), 0);
	assert_int_equal(dns_zone_add_failure(z, "Broken.Test.", DNS_SERVFAIL), 0);
	assert_int_equal(dns_zone_add_failure(z, "x.test", DNS_NXDOMAIN), -EINVAL);
	assert_int_equal(dns_zone_add(z, "to-slow.test", DNS_T_CNAME, "slow.test"), 0);
	assert_int_equal(dns_zone_add(z, "m.test", DNS_T_MX, "10 mx.m.test."), 0);
	assert_int_equal(dns_zone_add(z, "m.test", DNS_T_TXT, "\"v=spf1\" \" -all\""), 0);
	assert_int_equal(dns_zone_add(z, "m.test", DNS_T_A, "192.0.2.1"), 0);
	assert_int_equal(dns_zone_add(z, "m.test", DNS_T_A, "192.0.2.300"), -EINVAL);
	assert_int_equal(dns_zone_add(z, "m.test", DNS_T_A, "192.0.2.1\nx"), -EINVAL);
	assert_int_equal(dns_zone_add(z, "m.test", DNS_T_CNAME, "x.test"), -EINVAL);
	assert_int_equal(dns_zone_add(z, "bad..name", DNS_T_A, "192.0.2.1"), -EINVAL);
	assert_int_equal(dns_zone_add(z, "m.test", 77, "x"), -EINVAL);
	static const char raw[] = "v=DKIM1\0p=\x01\xff";
	assert_int_equal(dns_zone_add_txt(z, "raw.test", raw, sizeof(raw) - 1), 0);
	assert_int_equal(dns_zone_add_txt(z, "empty.test", "", 0), 0);
	assert_int_equal(dns_zone_add_apex(z, "apex.test"), 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);

	expect(r, "slow.test", DNS_T_A, DNS_TIMEOUT, 0);
	expect(r, "SLOW.test", DNS_T_MX, DNS_TIMEOUT, 0);
	expect(r, "broken.test", DNS_T_TXT, DNS_SERVFAIL, 0);
	expect(r, "to-slow.test", DNS_T_A, DNS_TIMEOUT, 0);
	expect_name(r, "m.test", DNS_T_MX, "mx.m.test");
	expect_txt(r, "m.test", "v=spf1 -all", 11);
	expect_txt(r, "raw.test", raw, sizeof(raw) - 1);
	expect_txt(r, "empty.test", "", 0);
	expect(r, "apex.test", DNS_T_A, DNS_NODATA, 0);
	expect(r, "x.apex.test", DNS_T_A, DNS_NXDOMAIN, 0);
	dns_resolver_free(r);
}

static void
test_txt_over_255(void **state)
{
	char big[1000];
	memset(big, 'k', sizeof(big));
	struct dns_zone *z;
	struct dns_resolver *r;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(dns_zone_add_txt(z, "big.test", big, sizeof(big)), 0);
	assert_int_equal(dns_zone_add_txt(z, "huge.test", big, DNS_TXT_MAX), -EINVAL);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	expect_txt(r, "big.test", big, sizeof(big));
	dns_resolver_free(r);
}

static void
test_answer_cap(void **state)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	char rdata[32];
	assert_int_equal(dns_zone_new(&z), 0);
	for (int i = 0; i < 300; i++) {
		snprintf(rdata, sizeof(rdata), "10.0.%d.%d", i / 256, i % 256);
		assert_int_equal(dns_zone_add(z, "many.test", DNS_T_A, rdata), 0);
	}
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	expect(r, "many.test", DNS_T_A, DNS_OK, DNS_ANSWER_MAX);
	dns_resolver_free(r);
}

static void
test_query_names(void **state)
{
	struct dns_resolver *r = resolver_of("a.test A 192.0.2.1\n");
	struct dns_answer a;
	char long_label[70];
	memset(long_label, 'x', 64);
	memcpy(long_label + 64, ".test", 6);
	const char *const bad[] = {"",        ".",        "a..test",  ".a.test",
	                           "a\ttest", "a\\.test", "a.test..", long_label};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(dns_query(r, bad[i], DNS_T_A, &a), -EINVAL);
	expect(r, "a.test.", DNS_T_A, DNS_OK, 1);
	expect(r, "_dmarc.a.test", DNS_T_TXT, DNS_NXDOMAIN, 0);
	dns_resolver_free(r);

	/* SPF macros expand to names with spaces, percents and UTF-8: DNS allows any byte */
	struct dns_zone *z;
	assert_int_equal(dns_zone_new(&z), 0);
	assert_int_equal(
	    dns_zone_add(z, "macro%percent  space%20url-space.example.com", DNS_T_A, "1.2.3.4"), 0);
	assert_int_equal(dns_zone_add(z, "J\xc3\xa9r\xc3\xb4me.example.com", DNS_T_A, "1.2.3.5"),
	                 0);
	assert_int_equal(dns_resolver_from_zone(z, &r), 0);
	expect(r, "MACRO%percent  space%20url-space.example.com", DNS_T_A, DNS_OK, 1);
	expect(r, "j\xc3\xa9r\xc3\xb4me.example.com", DNS_T_A, DNS_OK, 1);
	dns_resolver_free(r);
}

static void
assert_reverse(const char *addr, const char *want)
{
	struct net_addr a;
	char buf[DNS_NAME_MAX];
	assert_int_equal(net_addr_parse(addr, NET_PORT_NONE, &a), 0);
	assert_int_equal(dns_reverse_name(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

static void
test_reverse_name(void **state)
{
	assert_reverse("192.0.2.1", "1.2.0.192.in-addr.arpa");
	assert_reverse("10.20.255.0", "0.255.20.10.in-addr.arpa");
	assert_reverse("2001:db8::567:89ab",
	               "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	char small[10];
	struct net_addr a;
	assert_int_equal(net_addr_parse("192.0.2.1", NET_PORT_NONE, &a), 0);
	assert_int_equal(dns_reverse_name(&a, small, sizeof(small)), -ENOBUFS);
	struct net_addr none = {0};
	assert_int_equal(dns_reverse_name(&none, small, sizeof(small)), -EAFNOSUPPORT);
}

static void
test_status_names(void **state)
{
	assert_string_equal(dns_status_name(DNS_OK), "NOERROR");
	assert_string_equal(dns_status_name(DNS_NODATA), "NODATA");
	assert_string_equal(dns_status_name(DNS_NXDOMAIN), "NXDOMAIN");
	assert_string_equal(dns_status_name(DNS_TIMEOUT), "TIMEOUT");
	assert_string_equal(dns_status_name(DNS_SERVFAIL), "SERVFAIL");
}

/* A UDP socket nobody reads: a server that never answers. */
static int
silent_server(char *addr, size_t len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(addr, len, "127.0.0.1:%u", ntohs(sin.sin_port));
	return fd;
}

static void
test_network_timeout(void **state)
{
	char addr[32];
	_cleanup_close_ int fd = silent_server(addr, sizeof(addr));
	assert_true(fd >= 0); /* kept open: the server is there, silent */
	const char *servers[] = {addr, NULL};
	struct dns_options opt = {.server = servers, .timeout_ms = 300};
	struct dns_resolver *r;
	assert_int_equal(dns_resolver_open(&opt, &r, NULL), 0);
	expect(r, "example.org", DNS_T_A, DNS_TIMEOUT, 0);
	expect(r, "example.org", DNS_T_TXT, DNS_TIMEOUT, 0);
	dns_resolver_free(r);
}

static void
test_zone_precedence(void **state)
{
	char addr[32], path[] = "/tmp/test-dns-XXXXXX";
	_cleanup_close_ int fd = silent_server(addr, sizeof(addr));
	assert_true(fd >= 0); /* kept open: the server is there, silent */
	const char *text = "$ORIGIN example.com.\n@ SOA ns h 1 2 3 4 5\nwww A 192.0.2.1\n"
	                   "free.org. TXT x\nout CNAME free.org.\n";
	write_temp(path, text);

	const char *servers[] = {addr, NULL};
	struct dns_options opt = {.zone_file = path, .server = servers, .timeout_ms = 200};
	struct dns_resolver *r;
	assert_int_equal(dns_resolver_open(&opt, &r, NULL), 0);
	/* the SOA zone answers alone; names outside it and other types go to the network */
	expect(r, "www.example.com", DNS_T_A, DNS_OK, 1);
	expect(r, "nx.example.com", DNS_T_A, DNS_NXDOMAIN, 0);
	expect(r, "www.example.com", DNS_T_TXT, DNS_NODATA, 0);
	expect(r, "free.org", DNS_T_TXT, DNS_OK, 1);
	expect(r, "out.example.com", DNS_T_TXT, DNS_OK, 1);
	expect(r, "free.org", DNS_T_A, DNS_TIMEOUT, 0);
	expect(r, "out.example.com", DNS_T_A, DNS_TIMEOUT, 0);
	expect(r, "elsewhere.net", DNS_T_A, DNS_TIMEOUT, 0);
	dns_resolver_free(r);

	opt.no_network = true;
	assert_int_equal(dns_resolver_open(&opt, &r, NULL), 0);
	expect(r, "free.org", DNS_T_A, DNS_NODATA, 0);
	expect(r, "elsewhere.net", DNS_T_A, DNS_NXDOMAIN, 0);
	dns_resolver_free(r);
	unlink(path);
}

struct worker {
	struct dns_resolver *r;
	int timeouts, oks;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 3; i++) {
		struct dns_answer a;
		if (dns_query(w->r, i % 2 ? "zone.example.com" : "net.example.org", DNS_T_A, &a) ==
		    0) {
			w->timeouts += a.status == DNS_TIMEOUT;
			w->oks += a.status == DNS_OK;
		}
		dns_answer_free(&a);
	}
	return NULL;
}

/* Threads share one resolver; each gets its own answer. */
static void
test_threads(void **state)
{
	char addr[32], path[] = "/tmp/test-dns-XXXXXX";
	_cleanup_close_ int fd = silent_server(addr, sizeof(addr));
	assert_true(fd >= 0); /* kept open: the server is there, silent */
	const char *text = "zone.example.com. A 192.0.2.1\n";
	write_temp(path, text);
	const char *servers[] = {addr, NULL};
	struct dns_options opt = {.zone_file = path, .server = servers, .timeout_ms = 200};
	struct dns_resolver *r;
	assert_int_equal(dns_resolver_open(&opt, &r, NULL), 0);
	pthread_t t[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.r = r};
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].timeouts, 2);
		assert_int_equal(w[i].oks, 1);
	}
	dns_resolver_free(r);
	unlink(path);
}

/* The answer cache, its clock passed in. */

static struct dns_answer
answer_a(enum dns_status st, const char *ip, uint32_t ttl)
{
	struct dns_answer a = {.status = st};
	if (ip) {
		struct dns_rr rr = {.type = DNS_T_A, .ttl = ttl, .u.addr = {.family = AF_INET}};
		assert_int_equal(inet_pton(AF_INET, ip, rr.u.addr.u.bytes), 1);
		assert_int_equal(dns_answer_set(&a, st, &rr, 1), 0);
	}
	return a;
}

static struct dns_answer
answer_txt(const char *data, size_t len)
{
	struct dns_answer a;
	struct dns_rr rr = {.type = DNS_T_TXT, .ttl = 60, .u.txt = {(char *)data, len}};
	assert_int_equal(dns_answer_set(&a, DNS_OK, &rr, 1), 0);
	return a;
}

/* 1 and the answer's first TTL (-1 for none) when name/type is cached at now, else 0. */
static int
cached(struct dns_cache *c, const char *name, enum dns_type type, uint64_t now, long *ttl)
{
	struct dns_answer a = {0};
	int r = dns_cache_get(c, name, type, now, false, &a);
	assert_true(r == 0 || r == 1);
	*ttl = a.n ? (long)a.rr[0].ttl : -1;
	dns_answer_free(&a);
	return r;
}

static void
test_cache_ttl(void **state)
{
	struct dns_cache *c;
	struct dns_answer a = answer_a(DNS_OK, "192.0.2.1", 300);
	long ttl;
	assert_int_equal(dns_cache_new(0, 0, &c), 0);
	assert_int_equal(dns_cache_put(c, "a.example", DNS_T_A, &a, 300, 1000), 0);
	assert_int_equal(cached(c, "a.example", DNS_T_A, 1000, &ttl), 1);
	assert_int_equal(ttl, 300);
	/* what is left, rounded up: a live entry never says 0 */
	assert_int_equal(cached(c, "a.example", DNS_T_A, 1000 + 1500, &ttl), 1);
	assert_int_equal(ttl, 299);
	assert_int_equal(cached(c, "a.example", DNS_T_A, 1000 + 299999, &ttl), 1);
	assert_int_equal(ttl, 1);
	/* keys are name and type */
	assert_int_equal(cached(c, "a.example", DNS_T_AAAA, 1000, &ttl), 0);
	assert_int_equal(cached(c, "b.example", DNS_T_A, 1000, &ttl), 0);
	/* gone at the TTL, and dropped */
	assert_int_equal(cached(c, "a.example", DNS_T_A, 1000 + 300000, &ttl), 0);
	struct dns_stats st;
	dns_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	/* a day at most, whatever the TTL */
	assert_int_equal(dns_cache_put(c, "a.example", DNS_T_A, &a, UINT32_MAX, 0), 0);
	assert_int_equal(cached(c, "a.example", DNS_T_A, 86399999, &ttl), 1);
	assert_int_equal(ttl, 1);
	assert_int_equal(cached(c, "a.example", DNS_T_A, 86400000, &ttl), 0);
	dns_answer_free(&a);
	dns_cache_free(c);
}

static void
test_cache_what_is_kept(void **state)
{
	struct dns_cache *c;
	struct dns_answer ok = answer_a(DNS_OK, "192.0.2.1", 0), out = {0};
	long ttl;
	assert_int_equal(dns_cache_new(0, 0, &c), 0);
	/* TTL 0: not kept */
	assert_int_equal(dns_cache_put(c, "zero.example", DNS_T_A, &ok, 0, 0), 0);
	assert_int_equal(cached(c, "zero.example", DNS_T_A, 0, &ttl), 0);
	/* temporary errors: never kept */
	for (enum dns_status st = DNS_TIMEOUT; st <= DNS_SERVFAIL; st++) {
		struct dns_answer f = {.status = st};
		assert_int_equal(dns_cache_put(c, "fail.example", DNS_T_A, &f, 60, 0), 0);
		assert_int_equal(cached(c, "fail.example", DNS_T_A, 0, &ttl), 0);
	}
	/* negative answers: kept for their TTL, status and DNSSEC flag with them */
	struct dns_answer nx = {.status = DNS_NXDOMAIN, .secure = true};
	struct dns_answer nodata = {.status = DNS_NODATA};
	assert_int_equal(dns_cache_put(c, "nx.example", DNS_T_A, &nx, 30, 0), 0);
	assert_int_equal(dns_cache_put(c, "nodata.example", DNS_T_MX, &nodata, 30, 0), 0);
	assert_int_equal(dns_cache_get(c, "nx.example", DNS_T_A, 29999, false, &out), 1);
	assert_int_equal(out.status, DNS_NXDOMAIN);
	assert_true(out.secure);
	assert_int_equal(out.n, 0);
	assert_int_equal(dns_cache_get(c, "nodata.example", DNS_T_MX, 100, false, &out), 1);
	assert_int_equal(out.status, DNS_NODATA);
	assert_false(out.secure);
	assert_int_equal(cached(c, "nx.example", DNS_T_A, 30000, &ttl), 0);
	dns_answer_free(&ok);
	dns_cache_free(c);
}

static void
test_cache_copies(void **state)
{
	struct dns_cache *c;
	char data[] = "v=spf1 \0-all";
	struct dns_answer a = answer_txt(data, sizeof(data) - 1), out;
	assert_int_equal(dns_cache_new(0, 0, &c), 0);
	assert_int_equal(dns_cache_put(c, "t.example", DNS_T_TXT, &a, 60, 0), 0);
	a.rr[0].u.txt.data[0] = 'X'; /* the cache kept its own copy */
	dns_answer_free(&a);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(dns_cache_get(c, "t.example", DNS_T_TXT, 0, false, &out), 1);
		assert_int_equal(out.n, 1);
		assert_int_equal(out.rr[0].u.txt.len, sizeof(data) - 1);
		assert_memory_equal(out.rr[0].u.txt.data, data, sizeof(data));
		out.rr[0].u.txt.data[0] = 'Y'; /* and hands out copies */
		dns_answer_free(&out);
	}
	/* a second put for a key replaces the first */
	a = answer_txt("new", 3);
	assert_int_equal(dns_cache_put(c, "t.example", DNS_T_TXT, &a, 60, 0), 0);
	dns_answer_free(&a);
	assert_int_equal(dns_cache_get(c, "t.example", DNS_T_TXT, 0, false, &out), 1);
	assert_string_equal(out.rr[0].u.txt.data, "new");
	dns_answer_free(&out);
	struct dns_stats st;
	dns_cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes, sizeof(struct dns_rr) + 4);
	dns_cache_free(c);
}

static void
test_cache_lru(void **state)
{
	struct dns_cache *c;
	struct dns_answer a = answer_a(DNS_OK, "192.0.2.1", 60);
	long ttl;
	assert_int_equal(dns_cache_new(2, 0, &c), 0);
	assert_int_equal(dns_cache_put(c, "a.example", DNS_T_A, &a, 60, 0), 0);
	assert_int_equal(dns_cache_put(c, "b.example", DNS_T_A, &a, 60, 0), 0);
	assert_int_equal(cached(c, "a.example", DNS_T_A, 0, &ttl), 1); /* a is now the newest */
	assert_int_equal(dns_cache_put(c, "c.example", DNS_T_A, &a, 60, 0), 0);
	assert_int_equal(cached(c, "b.example", DNS_T_A, 0, &ttl), 0);
	assert_int_equal(cached(c, "a.example", DNS_T_A, 0, &ttl), 1);
	assert_int_equal(cached(c, "c.example", DNS_T_A, 0, &ttl), 1);
	struct dns_stats st;
	dns_cache_stats(c, &st);
	assert_int_equal(st.entries, 2);
	dns_answer_free(&a);
	dns_cache_free(c);
}

static void
test_cache_bytes(void **state)
{
	struct dns_cache *c;
	char data[100], name[32];
	memset(data, 'x', sizeof(data));
	const size_t one = sizeof(struct dns_rr) + sizeof(data) + 1;
	struct dns_answer a = answer_txt(data, sizeof(data));
	struct dns_answer big = answer_txt(data, sizeof(data));
	struct dns_stats st;
	long ttl;
	/* room for four answers and a half */
	assert_int_equal(dns_cache_new(100, 4 * one + one / 2, &c), 0);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "t%d.example", i);
		assert_int_equal(dns_cache_put(c, name, DNS_T_TXT, &a, 60, 0), 0);
		dns_cache_stats(c, &st);
		assert_true(st.bytes <= 4 * one + one / 2);
	}
	assert_int_equal(st.entries, 4);
	assert_int_equal(cached(c, "t1.example", DNS_T_TXT, 0, &ttl), 0);
	assert_int_equal(cached(c, "t2.example", DNS_T_TXT, 0, &ttl), 1);
	assert_int_equal(cached(c, "t5.example", DNS_T_TXT, 0, &ttl), 1);
	/* an answer over a quarter of the cap is not kept (it would flush the rest) */
	dns_answer_free(&big);
	struct dns_rr two[2] = {a.rr[0], a.rr[0]};
	assert_int_equal(dns_answer_set(&big, DNS_OK, two, 2), 0);
	assert_int_equal(dns_cache_put(c, "big.example", DNS_T_TXT, &big, 60, 0), 0);
	assert_int_equal(cached(c, "big.example", DNS_T_TXT, 0, &ttl), 0);
	assert_int_equal(cached(c, "t5.example", DNS_T_TXT, 0, &ttl), 1);
	dns_answer_free(&big);
	dns_answer_free(&a);
	dns_cache_free(c);
}

static void
test_cache_counts(void **state)
{
	struct dns_cache *c;
	struct dns_answer a = answer_a(DNS_OK, "192.0.2.1", 60), out;
	struct dns_stats st;
	assert_int_equal(dns_cache_new(0, 0, &c), 0);
	assert_int_equal(dns_cache_get(c, "a.example", DNS_T_A, 0, true, &out), 0);
	assert_int_equal(dns_cache_put(c, "a.example", DNS_T_A, &a, 60, 0), 0);
	assert_int_equal(dns_cache_get(c, "a.example", DNS_T_A, 0, true, &out), 1);
	dns_answer_free(&out);
	assert_int_equal(dns_cache_get(c, "a.example", DNS_T_A, 0, false, &out), 1);
	dns_answer_free(&out);
	dns_cache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.entries, 1);
	dns_answer_free(&a);
	dns_cache_free(c);
}

struct cache_worker {
	struct dns_cache *c;
	int id, hits;
};

static void *
cache_worker_run(void *arg)
{
	struct cache_worker *w = arg;
	struct dns_answer a = answer_txt("shared", 6), out;
	char name[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "n%d.example", (i * 7 + w->id) % 16);
		if (i % 3 == 0)
			dns_cache_put(w->c, name, DNS_T_TXT, &a, 60, (uint64_t)i);
		else if (dns_cache_get(w->c, name, DNS_T_TXT, (uint64_t)i, true, &out) == 1) {
			w->hits += out.n == 1 && strcmp(out.rr[0].u.txt.data, "shared") == 0;
			dns_answer_free(&out);
		}
	}
	dns_answer_free(&a);
	return NULL;
}

/* Threads share one small cache: every hit is whole, the counts add up, the caps hold. */
static void
test_cache_threads(void **state)
{
	struct dns_cache *c;
	pthread_t t[4];
	struct cache_worker w[4];
	struct dns_stats st;
	int hits = 0;
	assert_int_equal(dns_cache_new(8, 0, &c), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct cache_worker){.c = c, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, cache_worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		hits += w[i].hits;
	}
	dns_cache_stats(c, &st);
	assert_int_equal(st.hits, (uint64_t)hits);
	assert_int_equal(st.hits + st.misses, 4 * (2000 - 667));
	assert_true(st.entries <= 8);
	assert_true(hits > 0);
	dns_cache_free(c);
}

/* The per-thread deadline */

static void *
deadline_of_thread(void *arg)
{
	*(uint64_t *)arg = dns_deadline_get();
	return NULL;
}

static void
test_deadline_per_thread(void **state)
{
	pthread_t t;
	uint64_t other = 1;
	uint64_t now = dns_monotonic_ms();
	assert_true(now > 0);
	assert_int_equal(dns_deadline_get(), 0);
	dns_deadline_set(now + 5000);
	assert_int_equal(dns_deadline_get(), now + 5000);
	assert_int_equal(pthread_create(&t, NULL, deadline_of_thread, &other), 0);
	pthread_join(t, NULL);
	assert_int_equal(other, 0);
	dns_deadline_set(0);
	assert_int_equal(dns_deadline_get(), 0);
	assert_true(dns_monotonic_ms() >= now);
}

/* A resolver whose network is a silent server, with a query timeout far beyond the test's
 * own (60 s): only the deadline can end these queries in time. */
static struct dns_resolver *
silent_resolver(char *addr, const char *zone_path)
{
	const char *servers[] = {addr, NULL};
	struct dns_options opt = {.zone_file = zone_path, .server = servers, .timeout_ms = 120000};
	struct dns_resolver *r;
	assert_int_equal(dns_resolver_open(&opt, &r, NULL), 0);
	return r;
}

static void
test_deadline_cuts_queries(void **state)
{
	char addr[32], path[] = "/tmp/test-dns-XXXXXX";
	_cleanup_close_ int fd = silent_server(addr, sizeof(addr));
	const char *text = "zone.example.com. A 192.0.2.1\n";
	write_temp(path, text);
	struct dns_resolver *r = silent_resolver(addr, path);
	struct dns_stats st;

	dns_deadline_set(dns_monotonic_ms() + 200);
	expect(r, "net.example.org", DNS_T_A, DNS_TIMEOUT, 0);
	/* past the deadline: the zone still answers, the network is not waited for */
	expect(r, "zone.example.com", DNS_T_A, DNS_OK, 1);
	expect(r, "net.example.org", DNS_T_TXT, DNS_TIMEOUT, 0);
	assert_int_equal(dns_prefetch(r, "later.example.org", DNS_T_A), 0);
	dns_deadline_set(0);
	/* timeouts are not cached */
	dns_resolver_stats(r, &st);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.entries, 0);
	dns_resolver_free(r);
	unlink(path);
}

static void
test_prefetch(void **state)
{
	char addr[32], path[] = "/tmp/test-dns-XXXXXX";
	_cleanup_close_ int fd = silent_server(addr, sizeof(addr));
	const char *text = "zone.example.com. A 192.0.2.1\n";
	write_temp(path, text);
	struct dns_resolver *r = silent_resolver(addr, path);
	struct dns_stats st;

	assert_int_equal(dns_prefetch(r, "bad..name", DNS_T_A), -EINVAL);
	assert_int_equal(dns_prefetch(r, "zone.example.com", DNS_T_A), 0);
	assert_int_equal(dns_prefetch(r, "net.example.org", DNS_T_A), 0);
	assert_int_equal(dns_prefetch(r, "NET.example.org.", DNS_T_A), 0);  /* in flight already */
	assert_int_equal(dns_prefetch(r, "other.example.org", DNS_T_A), 0); /* nobody waits */
	dns_deadline_set(dns_monotonic_ms() + 200);
	expect(r, "net.example.org", DNS_T_A, DNS_TIMEOUT, 0);
	expect(r, "zone.example.com", DNS_T_A, DNS_OK, 1);
	dns_deadline_set(0);
	dns_resolver_stats(r, &st);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.joined, 1); /* the query waited for the prefetch */
	dns_resolver_free(r);           /* frees the query nobody waited for */
	unlink(path);

	/* a zone-only resolver has nothing to start and counts nothing */
	r = resolver_of("zone.example.com A 192.0.2.1\n");
	assert_int_equal(dns_prefetch(r, "zone.example.com", DNS_T_A), 0);
	assert_int_equal(dns_prefetch(r, "elsewhere.example", DNS_T_A), 0);
	expect(r, "zone.example.com", DNS_T_A, DNS_OK, 1);
	dns_resolver_stats(r, &st);
	assert_int_equal(st.hits + st.misses + st.joined + st.entries, 0);
	dns_resolver_free(r);
}

static int
rdata(enum dns_type type, const char *wire, size_t len, struct dns_rr *rr)
{
	return dns_rdata_parse(type, (const uint8_t *)wire, len, rr);
}

#define RDATA(type, lit, rr) rdata(type, lit, sizeof(lit) - 1, rr)

static void
test_rdata_fixed(void **state)
{
	struct dns_rr rr;
	char text[NET_ADDR_STRLEN];
	assert_int_equal(RDATA(DNS_T_A, "\xc0\x00\x02\x01", &rr), 0);
	assert_int_equal(net_addr_format(&rr.u.addr, false, text, sizeof(text)), 0);
	assert_string_equal(text, "192.0.2.1");
	assert_int_equal(RDATA(DNS_T_A, "\xc0\x00\x02", &rr), -EBADMSG);
	assert_int_equal(RDATA(DNS_T_A, "\xc0\x00\x02\x01\x00", &rr), -EBADMSG);
	assert_int_equal(RDATA(DNS_T_AAAA, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", &rr), 0);
	assert_int_equal(net_addr_format(&rr.u.addr, false, text, sizeof(text)), 0);
	assert_string_equal(text, "2001:db8::1");
	assert_int_equal(RDATA(DNS_T_AAAA, "\xc0\x00\x02\x01", &rr), -EBADMSG);
	assert_int_equal(rdata(DNS_T_A, "", 0, &rr), -EBADMSG);
	assert_int_equal(RDATA(77, "\x01\x02", &rr), -EBADMSG);
}

static void
test_rdata_names(void **state)
{
	struct dns_rr rr;
	assert_int_equal(RDATA(DNS_T_MX,
	                       "\x00\x0a\x02Mx\x07"
	                       "Example\x03"
	                       "com\x00",
	                       &rr),
	                 0);
	assert_int_equal(rr.u.mx.pref, 10);
	assert_string_equal(rr.u.mx.host, "mx.example.com");
	assert_int_equal(RDATA(DNS_T_MX, "\x00\x00\x00", &rr), 0); /* null MX */
	assert_string_equal(rr.u.mx.host, "");
	assert_int_equal(RDATA(DNS_T_MX, "\x00\x0a", &rr), -EBADMSG);
	assert_int_equal(RDATA(DNS_T_MX, "\x00\x0a\x02mx", &rr), -EBADMSG);         /* no root */
	assert_int_equal(RDATA(DNS_T_MX, "\x00\x0a\x05mx\x00", &rr), -EBADMSG);     /* overrun */
	assert_int_equal(RDATA(DNS_T_MX, "\x00\x0a\xc0\x0c", &rr), -EBADMSG);       /* pointer */
	assert_int_equal(RDATA(DNS_T_MX, "\x00\x0a\x02mx\x00\x00", &rr), -EBADMSG); /* trailer */
	assert_int_equal(RDATA(DNS_T_PTR,
	                       "\x03"
	                       "a.b\x00",
	                       &rr),
	                 -EBADMSG); /* dot */
	assert_int_equal(RDATA(DNS_T_PTR,
	                       "\x03"
	                       "a\x00"
	                       "b\x00",
	                       &rr),
	                 -EBADMSG); /* NUL */
	assert_int_equal(RDATA(DNS_T_PTR,
	                       "\x03"
	                       "a\x7f"
	                       "b\x00",
	                       &rr),
	                 -EBADMSG);
	assert_int_equal(RDATA(DNS_T_CNAME,
	                       "\x01"
	                       "a\x04test\x00",
	                       &rr),
	                 0);
	assert_string_equal(rr.u.name, "a.test");
	assert_int_equal(RDATA(DNS_T_NS, "", &rr), -EBADMSG);

	/* 253 characters fit, 255 do not */
	char wire[300];
	size_t n = 0;
	for (int i = 0; i < 4; i++) {
		size_t l = i < 3 ? 63 : 61;
		wire[n++] = (char)l;
		memset(wire + n, 'x', l);
		n += l;
	}
	wire[n++] = 0;
	assert_int_equal(rdata(DNS_T_PTR, wire, n, &rr), 0);
	assert_int_equal(strlen(rr.u.name), 253);
	wire[3 * 64] = 63;
	memset(wire + 3 * 64 + 1, 'x', 63);
	wire[4 * 64] = 0;
	assert_int_equal(rdata(DNS_T_PTR, wire, 4 * 64 + 1, &rr), -EBADMSG);
	wire[0] = 64;
	assert_int_equal(rdata(DNS_T_PTR, wire, 4 * 64 + 1, &rr), -EBADMSG);
}

/* dns query's types: SRV parsed; DS, DNSKEY, TLSA, CAA kept raw after a shape check. */
static void
test_rdata_new_types(void **state)
{
	struct dns_rr rr;
	assert_int_equal(RDATA(DNS_T_SRV,
	                       "\x00\x0a\x00\x3c\x13\xc4\x03sip\x07"
	                       "example\x00",
	                       &rr),
	                 0);
	assert_int_equal(rr.u.srv.priority, 10);
	assert_int_equal(rr.u.srv.weight, 60);
	assert_int_equal(rr.u.srv.port, 5060);
	assert_string_equal(rr.u.srv.target, "sip.example");
	assert_int_equal(RDATA(DNS_T_SRV, "\x00\x0a\x00\x3c\x13\xc4", &rr), -EBADMSG);
	assert_int_equal(RDATA(DNS_T_CAA, "\x00\x05issueca.example", &rr), 0);
	assert_int_equal(rr.u.raw.len, 17);
	free(rr.u.raw.data);
	assert_int_equal(RDATA(DNS_T_CAA, "\x00\x20issue", &rr), -EBADMSG);
	assert_int_equal(RDATA(DNS_T_DS, "\x30\x39\x0d\x02\xab", &rr), 0);
	free(rr.u.raw.data);
	assert_int_equal(RDATA(DNS_T_DS, "\x30\x39\x0d\x02", &rr), -EBADMSG);
	assert_int_equal(RDATA(DNS_T_TLSA, "\x03\x01\x01\xff", &rr), 0);
	free(rr.u.raw.data);
	assert_int_equal(RDATA(DNS_T_DNSKEY, "\x01\x01\x03\x0d", &rr), -EBADMSG);
	(void)state;
}

static void
test_rdata_txt_soa(void **state)
{
	struct dns_rr rr;
	assert_int_equal(RDATA(DNS_T_TXT, "\x07v=spf1 \x04-all", &rr), 0);
	assert_int_equal(rr.u.txt.len, 11);
	assert_string_equal(rr.u.txt.data, "v=spf1 -all");
	/* the strings' lengths, for dns query --json's "strings" */
	assert_int_equal(rr.u.txt.nstr, 2);
	assert_memory_equal(rr.u.txt.data + 12, "\x07\x04", 2);
	free(rr.u.txt.data);
	assert_int_equal(RDATA(DNS_T_SPF,
	                       "\x00\x03"
	                       "a\x00"
	                       "b",
	                       &rr),
	                 0);
	assert_int_equal(rr.u.txt.len, 3);
	assert_memory_equal(rr.u.txt.data, "a\0b", 4);
	free(rr.u.txt.data);
	assert_int_equal(RDATA(DNS_T_TXT,
	                       "\x05"
	                       "abc",
	                       &rr),
	                 -EBADMSG);
	assert_int_equal(RDATA(DNS_T_TXT,
	                       "\x03"
	                       "abc\x01",
	                       &rr),
	                 -EBADMSG);
	assert_int_equal(rdata(DNS_T_TXT, "", 0, &rr), -EBADMSG);

	static const char soa[] = "\x02ns\x04test\x00\x01h\x04test\x00"
	                          "\x00\x00\x00\x01\x00\x00\x1c\x20\x00\x00\x0e\x10"
	                          "\x00\x12\x75\x00\x00\x00\x01\x2c";
	assert_int_equal(rdata(DNS_T_SOA, soa, sizeof(soa) - 1, &rr), 0);
	assert_string_equal(rr.u.name, "ns.test");
	assert_int_equal(rdata(DNS_T_SOA, soa, sizeof(soa) - 2, &rr), -EBADMSG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_zone_directives),
	    cmocka_unit_test(test_zone_ttl_rules),
	    cmocka_unit_test(test_zone_strings),
	    cmocka_unit_test(test_zone_string_limits),
	    cmocka_unit_test(test_zone_errors_have_lines),
	    cmocka_unit_test(test_zone_bad_entries),
	    cmocka_unit_test(test_zone_bad_names),
	    cmocka_unit_test(test_zone_cname_conflicts),
	    cmocka_unit_test(test_zone_garbage),
	    cmocka_unit_test(test_zone_error_cap),
	    cmocka_unit_test(test_zone_record_cap),
	    cmocka_unit_test(test_zone_failed_load_changes_nothing),
	    cmocka_unit_test(test_zone_file),
	    cmocka_unit_test(test_zone_file_origin),
	    cmocka_unit_test(test_zone_file_not_regular),
	    cmocka_unit_test(test_resolver_set_txt),
	    cmocka_unit_test(test_answers),
	    cmocka_unit_test(test_answer_records),
	    cmocka_unit_test(test_cname),
	    cmocka_unit_test(test_failures_and_api),
	    cmocka_unit_test(test_txt_over_255),
	    cmocka_unit_test(test_answer_cap),
	    cmocka_unit_test(test_query_names),
	    cmocka_unit_test(test_reverse_name),
	    cmocka_unit_test(test_status_names),
	    cmocka_unit_test(test_rdata_fixed),
	    cmocka_unit_test(test_rdata_names),
	    cmocka_unit_test(test_rdata_txt_soa),
	    cmocka_unit_test(test_rdata_new_types),
	    cmocka_unit_test(test_network_timeout),
	    cmocka_unit_test(test_zone_precedence),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_cache_ttl),
	    cmocka_unit_test(test_cache_what_is_kept),
	    cmocka_unit_test(test_cache_copies),
	    cmocka_unit_test(test_cache_lru),
	    cmocka_unit_test(test_cache_bytes),
	    cmocka_unit_test(test_cache_counts),
	    cmocka_unit_test(test_cache_threads),
	    cmocka_unit_test(test_deadline_per_thread),
	    cmocka_unit_test(test_deadline_cuts_queries),
	    cmocka_unit_test(test_prefetch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
