/* Unit tests for src/guard/guard_policy and guard_config: ban keys and lengths, blocklist
 * files, the never-banned list, and the guard section's checks. */
#include "guard/guard_policy.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static int
load(const char *text, struct guard_cfg *c, struct cfg_errors *errs)
{
	memset(c, 0, sizeof(*c));
	int r = cfg_load_string("t.yaml", text, strlen(text), &guard_config_schema, c, errs);
	if (getenv("TEST_VERBOSE"))
		cfg_errors_print(errs, 2);
	return r;
}

static void
test_config_minimal_form(void **state)
{
	struct guard_cfg c;
	struct cfg_errors errs = {0};
	const char *yaml = "mode: enforce\n"
	                   "rate:\n  - { port: 22, seconds: 180, hitcount: 4 }\n"
	                   "sources:\n  - { type: journal, match: sshd }\n"
	                   "  - { type: file, path: /var/log/auth.log }\n"
	                   "whitelist: [ 192.0.2.0/24 ]\n"
	                   "ban: { threshold: 30, window: 30m, time: 2m, escalate: 2.0, "
	                   "permanent-after: 5 }\n"
	                   "state: /var/lib/rampart/guard.db\n";
	assert_int_equal(load(yaml, &c, &errs), 0);
	assert_true(c.enabled);
	assert_int_equal(c.mode, GUARD_MODE_ENFORCE);
	assert_int_equal(c.rate.n, 1);
	assert_int_equal(c.sources.n, 2);
	assert_int_equal(c.ban.time_ms, 120000);
	assert_true(c.ban.escalate == 2.0);
	assert_int_equal(c.trust_ms, 24 * 3600 * 1000);
	assert_int_equal(c.ipv6_prefix, 64);
	assert_true(c.keep_table);
	cfg_free(&guard_config_schema, &c);
}

static void
expect_error(const char *yaml, const char *needle)
{
	struct guard_cfg c;
	struct cfg_errors errs = {0};
	assert_int_equal(load(yaml, &c, &errs), -EINVAL);
	bool found = false;
	for (size_t i = 0; i < errs.n; i++)
		found |= strstr(errs.v[i].msg, needle) != NULL;
	if (!found)
		fail_msg("no error containing '%s' for: %s", needle, yaml);
	cfg_errors_free(&errs);
	cfg_free(&guard_config_schema, &c);
}

static void
test_config_errors(void **state)
{
	expect_error("rate: [ { seconds: 3 } ]\n", "port");
	expect_error("rate: [ { port: 22, ports: [ 22 ] } ]\n", "port");
	expect_error("rate: [ { port: 22, hitcount: 21 } ]\n", "between");
	expect_error("rate: [ { port: 70000 } ]\n", "between");
	expect_error("sources: [ { type: file } ]\n", "path");
	expect_error("sources: [ { type: journal, path: /x } ]\n", "only for a file");
	expect_error("sources: [ { type: pipe } ]\n", "pipe");
	expect_error("ban: { escalate: fast }\n", "escalate");
	expect_error("ban: { escalate: 0.5 }\n", "escalate");
	expect_error("ban: { time: 1h, max-time: 10m }\n", "shorter");
	expect_error("mode: block\n", "block");
	expect_error("ipv6-prefix: 8\n", "between");
	expect_error("bogus: 1\n", "bogus");
}

static void
test_key(void **state)
{
	struct guard_cfg c;
	struct cfg_errors errs = {0};
	struct net_addr a;
	struct net_cidr k;
	char buf[NET_CIDR_STRLEN];
	assert_int_equal(load("ipv6-prefix: 56\n", &c, &errs), 0);
	assert_int_equal(net_addr_parse("2001:db8:1:2ff:1:2:3:4", NET_PORT_NONE, &a), 0);
	guard_key(&c, &a, &k);
	net_cidr_format(&k, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8:1:200::/56");
	assert_int_equal(net_addr_parse("192.0.2.77", NET_PORT_NONE, &a), 0);
	guard_key(&c, &a, &k);
	net_cidr_format(&k, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.77/32");
	cfg_free(&guard_config_schema, &c);
}

static void
test_ban_length(void **state)
{
	struct guard_ban_cfg b = {
	    .time_ms = 120000, .escalate = 2.0, .max_time_ms = 600000, .permanent_after = 5};
	assert_int_equal(guard_ban_length(&b, 1), 120000);
	assert_int_equal(guard_ban_length(&b, 2), 240000);
	assert_int_equal(guard_ban_length(&b, 3), 480000);
	assert_int_equal(guard_ban_length(&b, 4), 600000); /* capped */
	assert_int_equal(guard_ban_length(&b, 5), 0);      /* permanent */
	assert_int_equal(guard_ban_length(&b, 9), 0);
	b.permanent_after = 0;
	assert_int_equal(guard_ban_length(&b, 1000), 600000);
	b.escalate = 1.0;
	assert_int_equal(guard_ban_length(&b, 7), 120000);
}

static void
test_blocklist_read(void **state)
{
	char path[] = "/tmp/test-guard-blXXXXXX";
	int fd = mkstemp(path);
	const char *text = "; Spamhaus DROP List\n"
	                   "1.10.16.0/20 ; SBL256894\n"
	                   "  203.0.113.7\n"
	                   "\n"
	                   "# comment\n"
	                   "2001:db8::/32\t# v6\n"
	                   "not-an-address\n"
	                   "10.0.0.0/33\n"
	                   "198.51.100.0/24";
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct net_cidr *v = NULL;
	size_t n = 0, cap = 0, bad, bad_line;
	assert_int_equal(guard_blocklist_read(path, &v, &n, &cap, &bad, &bad_line), 0);
	assert_int_equal(n, 4);
	assert_int_equal(bad, 2);
	assert_int_equal(bad_line, 7);
	char buf[NET_CIDR_STRLEN];
	net_cidr_format(&v[1], buf, sizeof(buf));
	assert_string_equal(buf, "203.0.113.7/32");
	net_cidr_format(&v[3], buf, sizeof(buf));
	assert_string_equal(buf, "198.51.100.0/24");
	unlink(path);
	assert_int_equal(guard_blocklist_read(path, &v, &n, &cap, &bad, &bad_line), -ENOENT);
	free(v);
}

/* Loopback, the host's own addresses, CIDRs and names (from a zone file: no network). */
static void
test_allow_build(void **state)
{
	char zpath[] = "/tmp/test-guard-zoneXXXXXX";
	int fd = mkstemp(zpath);
	const char *zone = "$ORIGIN example.test.\n"
	                   "@ 300 IN SOA ns hostmaster 1 3600 600 86400 300\n"
	                   "admin 300 IN A 198.51.100.23\n"
	                   "admin 300 IN AAAA 2001:db8::23\n";
	assert_true(fd >= 0);
	assert_int_equal(write(fd, zone, strlen(zone)), (ssize_t)strlen(zone));
	close(fd);
	struct guard_cfg c;
	struct cfg_errors errs = {0};
	assert_int_equal(
	    load("whitelist: [ 192.0.2.0/24, admin.example.test, nowhere.example.test ]\n", &c,
	         &errs),
	    0);
	struct dns_options dns = {.zone_file = zpath, .no_network = true};
	struct net_cidr *allow = NULL;
	size_t n = 0;
	char unresolved[64];
	assert_int_equal(guard_allow_build(&c, &dns, &allow, &n, unresolved, sizeof(unresolved)),
	                 0);
	assert_string_equal(unresolved, "nowhere.example.test");
	const char *in[] = {"127.0.0.1",   "127.8.9.10",    "::1",
	                    "192.0.2.200", "198.51.100.23", "2001:db8::23"};
	const char *out[] = {"192.0.3.1", "198.51.100.24", "2001:db8::24", "8.8.8.8"};
	struct net_addr a;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_int_equal(net_addr_parse(in[i], NET_PORT_NONE, &a), 0);
		if (!guard_allow_match(allow, n, &a))
			fail_msg("%s should be allowed", in[i]);
	}
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		assert_int_equal(net_addr_parse(out[i], NET_PORT_NONE, &a), 0);
		if (guard_allow_match(allow, n, &a))
			fail_msg("%s should not be allowed", out[i]);
	}
	free(allow);
	unlink(zpath);
	cfg_free(&guard_config_schema, &c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_minimal_form),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_key),
	    cmocka_unit_test(test_ban_length),
	    cmocka_unit_test(test_blocklist_read),
	    cmocka_unit_test(test_allow_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
