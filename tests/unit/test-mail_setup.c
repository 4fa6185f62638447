/*
 * Unit tests for src/mail/mail_setup: the SPF record built from addresses, prefixes and hosts
 * (checked by the SPF parser, lookups counted), TXT records in strings of at most 255 bytes,
 * DMARC, the refusals of what cannot be quoted, the rampart.yaml and main.cf text, and files
 * written whole without clobbering.
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "mail/mail_setup.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static void
test_valid_domain(void **state)
{
	(void)state;
	assert_true(mail_setup_valid_domain("example.com"));
	assert_true(mail_setup_valid_domain("mail-1.Example.co.uk"));
	assert_false(mail_setup_valid_domain("localhost"));
	assert_false(mail_setup_valid_domain(""));
	assert_false(mail_setup_valid_domain("example.com."));
	assert_false(mail_setup_valid_domain(".example.com"));
	assert_false(mail_setup_valid_domain("a..example.com"));
	assert_false(mail_setup_valid_domain("-a.example.com"));
	assert_false(mail_setup_valid_domain("a-.example.com"));
	assert_false(mail_setup_valid_domain("example.com-"));
	assert_false(mail_setup_valid_domain("ex ample.com"));
	assert_false(mail_setup_valid_domain("ex_ample.com"));
	assert_false(mail_setup_valid_domain("example.com\n"));
	assert_false(mail_setup_valid_domain("192.0.2.1"));
	assert_true(mail_setup_valid_domain("1.2.3.example"));
	char label[80];
	memset(label, 'a', 64);
	snprintf(label + 64, sizeof(label) - 64, ".com");
	assert_false(mail_setup_valid_domain(label));
	assert_true(mail_setup_valid_domain(label + 1)); /* 63 bytes */
}

static void
test_valid_rua_and_ip(void **state)
{
	(void)state;
	assert_true(mail_setup_valid_rua("dmarc@example.com"));
	assert_true(mail_setup_valid_rua("mailto:dmarc+x@reports.example.net"));
	assert_true(mail_setup_valid_rua("MAILTO:d@example.com"));
	assert_false(mail_setup_valid_rua("example.com"));
	assert_false(mail_setup_valid_rua("@example.com"));
	assert_false(mail_setup_valid_rua("a,b@example.com"));
	assert_false(mail_setup_valid_rua("a;p=reject@example.com"));
	assert_false(mail_setup_valid_rua("a!10m@example.com"));
	assert_false(mail_setup_valid_rua("a b@example.com"));
	assert_false(mail_setup_valid_rua("a\"@example.com"));
	assert_false(mail_setup_valid_rua("a@bad_domain"));

	assert_true(mail_setup_valid_ip("192.0.2.1"));
	assert_true(mail_setup_valid_ip("192.0.2.0/24"));
	assert_true(mail_setup_valid_ip("2001:db8::/32"));
	assert_false(mail_setup_valid_ip("0.0.0.0/0")); /* as +all */
	assert_false(mail_setup_valid_ip("::/0"));
	assert_false(mail_setup_valid_ip("192.0.2.1/33"));
	assert_false(mail_setup_valid_ip("192.0.2"));
	assert_false(mail_setup_valid_ip("mail.example.com"));
	assert_false(mail_setup_valid_ip(""));
}

static const char *
spf(struct mail_setup *s, struct buf *b, size_t *lookups)
{
	buf_reset(b);
	assert_int_equal(mail_setup_spf(s, b, lookups), 0);
	return buf_cstr(b);
}

static void
test_spf(void **state)
{
	(void)state;
	_cleanup_buf_ struct buf b = BUF_INIT(8192);
	size_t lookups = 99;
	struct mail_setup s = {.domain = "example.com"};
	assert_string_equal(spf(&s, &b, &lookups), "v=spf1 mx -all");
	assert_int_equal(lookups, 1);
	s.softfail = true;
	assert_string_equal(spf(&s, &b, &lookups), "v=spf1 mx ~all");
	s.softfail = false;

	/* host bits past the prefix are cleared; full-length prefixes are left out */
	s.ips[0] = "192.0.2.7";
	s.ips[1] = "198.51.100.77/24";
	s.ips[2] = "2001:DB8::1";
	s.ips[3] = "2001:db8:1::ff/48";
	s.ips[4] = "::ffff:203.0.113.9"; /* IPv4-mapped: receivers see IPv4 */
	s.ips[5] = "2001:db8::5/128";
	s.n_ips = 6;
	assert_string_equal(spf(&s, &b, &lookups),
	                    "v=spf1 ip4:192.0.2.7 ip4:198.51.100.0/24 ip6:2001:db8::1 "
	                    "ip6:2001:db8:1::/48 ip4:203.0.113.9 ip6:2001:db8::5 -all");
	assert_int_equal(lookups, 0);

	s.mx[0] = "mail.example.com";
	s.mx[1] = "example.com"; /* the domain itself: a */
	s.mx[2] = "out.provider.example";
	s.n_mx = 3;
	s.n_ips = 1;
	assert_string_equal(spf(&s, &b, &lookups), "v=spf1 ip4:192.0.2.7 a:mail.example.com a "
	                                           "a:out.provider.example -all");
	assert_int_equal(lookups, 3);
}

static void
test_spf_refusals(void **state)
{
	(void)state;
	_cleanup_buf_ struct buf b = BUF_INIT(8192);
	size_t lookups = 0;
	struct mail_setup s = {.domain = "example.com", .n_ips = 1, .ips = {"192.0.2.300"}};
	assert_int_equal(mail_setup_spf(&s, &b, &lookups), -EINVAL);
	s.ips[0] = "0.0.0.0/0";
	assert_int_equal(mail_setup_spf(&s, &b, &lookups), -EINVAL);
	s.n_ips = 0;
	s.n_mx = 1;
	s.mx[0] = "bad host.example";
	assert_int_equal(mail_setup_spf(&s, &b, &lookups), -EINVAL);
	s.mx[0] = "-x.example";
	assert_int_equal(mail_setup_spf(&s, &b, &lookups), -EINVAL);

	/* 10 lookups are allowed, 11 are a permerror for every receiver (RFC 7208 §4.6.4) */
	char hosts[11][32];
	for (size_t i = 0; i < 11; i++) {
		snprintf(hosts[i], sizeof(hosts[i]), "mx%zu.example.net", i);
		s.mx[i] = hosts[i];
	}
	s.n_mx = 10;
	assert_int_equal(mail_setup_spf(&s, &b, &lookups), 0);
	assert_int_equal(lookups, 10);
	buf_reset(&b);
	s.n_mx = 11;
	assert_int_equal(mail_setup_spf(&s, &b, &lookups), -E2BIG);
	assert_int_equal(lookups, 11);
	assert_int_equal(b.len, 0);
}

static void
test_txt_split(void **state)
{
	(void)state;
	_cleanup_buf_ struct buf b = BUF_INIT(8192);
	char text[601];
	for (size_t i = 0; i < 600; i++)
		text[i] = (char)('a' + i % 26);
	text[600] = '\0';

	assert_int_equal(mail_setup_txt("example.com", "v=spf1 -all", &b), 0);
	assert_string_equal(buf_cstr(&b), "example.com. IN TXT ( \"v=spf1 -all\" )\n");
	buf_reset(&b);
	assert_int_equal(mail_setup_txt("x.example.com.", "", &b), 0);
	assert_string_equal(buf_cstr(&b), "x.example.com. IN TXT ( \"\" )\n");

	/* 255 bytes: one string; 256: two; 600: 255 + 255 + 90 */
	static const size_t lens[] = {255, 256, 600};
	static const size_t strings[] = {1, 2, 3};
	for (size_t t = 0; t < 3; t++) {
		char cut[601];
		snprintf(cut, sizeof(cut), "%.*s", (int)lens[t], text);
		buf_reset(&b);
		assert_int_equal(mail_setup_txt("k._domainkey.example.com", cut, &b), 0);
		const char *p = strchr(buf_cstr(&b), '"');
		char joined[601] = "";
		size_t n = 0, at = 0;
		while (p) {
			const char *end = strchr(p + 1, '"');
			assert_non_null(end);
			assert_true(end - p - 1 <= 255);
			memcpy(joined + at, p + 1, (size_t)(end - p - 1));
			at += (size_t)(end - p - 1);
			n++;
			p = strchr(end + 1, '"');
		}
		joined[at] = '\0';
		assert_int_equal(n, strings[t]);
		assert_string_equal(joined, cut);
	}
	assert_int_equal(strncmp(buf_cstr(&b), "k._domainkey.example.com. IN TXT ( \"", 36), 0);
	assert_non_null(strstr(buf_cstr(&b), "\"\n\t\""));
}

static void
test_txt_refusals(void **state)
{
	(void)state;
	_cleanup_buf_ struct buf b = BUF_INIT(8192);
	static const char *const bad[] = {"a\"b", "a\\b", "a\nb", "a\tb", "caf\xc3\xa9", "a\x7f"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mail_setup_txt("example.com", bad[i], &b), -EINVAL);
	assert_int_equal(mail_setup_txt("", "x", &b), -EINVAL);
	assert_int_equal(mail_setup_txt("a b.example", "x", &b), -EINVAL);
	assert_int_equal(mail_setup_txt("a;b.example", "x", &b), -EINVAL);
	assert_int_equal(b.len, 0);
}

static void
test_dmarc(void **state)
{
	(void)state;
	_cleanup_buf_ struct buf b = BUF_INIT(1024);
	struct mail_setup s = {.domain = "example.com"};
	assert_int_equal(mail_setup_dmarc(&s, &b), 0);
	assert_string_equal(buf_cstr(&b), "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com");
	buf_reset(&b);
	s.rua = "postmaster@example.com";
	assert_int_equal(mail_setup_dmarc(&s, &b), 0);
	assert_string_equal(buf_cstr(&b), "v=DMARC1; p=none; rua=mailto:postmaster@example.com");
	buf_reset(&b);
	s.rua = "mailto:r@reports.example.net";
	assert_int_equal(mail_setup_dmarc(&s, &b), 0);
	assert_string_equal(buf_cstr(&b), "v=DMARC1; p=none; rua=mailto:r@reports.example.net");
	buf_reset(&b);
	s.rua = "a,mailto:b@example.com";
	assert_int_equal(mail_setup_dmarc(&s, &b), -EINVAL);
	assert_int_equal(b.len, 0);
}

static struct mail_setup
full_setup(void)
{
	return (struct mail_setup){
	    .domain = "example.com",
	    .ips = {"192.0.2.1", "2001:db8::/48"},
	    .n_ips = 2,
	    .keys = {{.selector = "s1",
	              .record = "v=DKIM1; k=rsa; p=MIIB",
	              .path = "/etc/rampart/keys/s1.private",
	              .what = "RSA 2048-bit"},
	             {.selector = "s1-ed25519",
	              .record = "v=DKIM1; k=ed25519; p=11qY",
	              .path = "/etc/rampart/keys/s1-ed25519.private",
	              .what = "Ed25519",
	              .reused = true}},
	    .n_keys = 2,
	};
}

static void
test_records(void **state)
{
	(void)state;
	_cleanup_buf_ struct buf b = BUF_INIT(65536);
	struct mail_setup s = full_setup();
	assert_int_equal(mail_setup_records(&s, &b), 0);
	const char *t = buf_cstr(&b);
	static const char *const want[] = {
	    "\nexample.com. IN TXT ( \"v=spf1 ip4:192.0.2.1 ip6:2001:db8::/48 -all\" )\n",
	    "\ns1._domainkey.example.com. IN TXT ( \"v=DKIM1; k=rsa; p=MIIB\" )\n",
	    "\ns1-ed25519._domainkey.example.com. IN TXT ( \"v=DKIM1; k=ed25519; p=11qY\" )\n",
	    "\n_domainkey.example.com. IN TXT ( \"o=~\" )\n",
	    "\n_dmarc.example.com. IN TXT ( \"v=DMARC1; p=none; "
	    "rua=mailto:dmarc-reports@example.com\" )\n",
	    "RFC 4406 §3.4",
	    "It makes 0 of the 10 DNS lookups",
	    "selector s1: RSA 2048-bit key, generated;",
	    "; Private key: /etc/rampart/keys/s1.private\n",
	    "selector s1-ed25519: Ed25519 key, reused;",
	    "p=quarantine; pct=10",
	    "DomainKeys verifiers read the RSA key above.",
	    "p=reject",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_non_null(strstr(t, want[i]));
	assert_null(strstr(t, "\"spf2.0")); /* the SPF record serves Sender ID */
	assert_null(strstr(t, "_report._dmarc"));
	/* every line is a comment, a record, a continuation or empty */
	for (const char *line = t; *line; line = strchr(line, '\n') + 1)
		assert_true(strchr(";\n\t", *line) || !strncmp(line, "s1", 2) ||
		            !strncmp(line, "example.com. ", 13) || *line == '_');

	/* reports to another domain need its consent (RFC 7489 §7.1) */
	buf_reset(&b);
	s.rua = "r@reports.example.net";
	assert_int_equal(mail_setup_records(&s, &b), 0);
	assert_non_null(strstr(buf_cstr(&b), ";   example.com._report._dmarc.reports.example.net. "
	                                     "IN TXT \"v=DMARC1\"\n"));
	buf_reset(&b);
	s.rua = "r@sub.example.com";
	assert_int_equal(mail_setup_records(&s, &b), 0);
	assert_null(strstr(buf_cstr(&b), "_report._dmarc"));

	/* DomainKeys has no Ed25519 */
	buf_reset(&b);
	s.keys[0] = s.keys[1];
	s.n_keys = 1;
	assert_int_equal(mail_setup_records(&s, &b), 0);
	assert_non_null(strstr(buf_cstr(&b), "; DomainKeys signs with RSA keys only"));

	/* a path that would end a comment line */
	buf_reset(&b);
	s.keys[0].path = "/tmp/x\n.private";
	assert_int_equal(mail_setup_records(&s, &b), -EINVAL);
}

static void
test_records_long_spf(void **state)
{
	(void)state;
	_cleanup_buf_ struct buf b = BUF_INIT(65536);
	static char ips[20][48];
	struct mail_setup s = {.domain = "example.com", .n_ips = 20};
	for (size_t i = 0; i < 20; i++) {
		snprintf(ips[i], sizeof(ips[i]), "2001:db8:%zx:1234:5678:9abc:def0:%zx", i, i + 1);
		s.ips[i] = ips[i];
	}
	assert_int_equal(mail_setup_records(&s, &b), 0);
	assert_non_null(strstr(buf_cstr(&b), "may not fit a UDP answer"));
	assert_non_null(strstr(buf_cstr(&b), "\"\n\t\""));
}

static void
test_yaml(void **state)
{
	(void)state;
	_cleanup_buf_ struct buf b = BUF_INIT(8192);
	struct mail_setup s = full_setup();
	s.keys[1].path = "/k/a \"quoted\" \\dir/s1-ed25519.private";
	assert_int_equal(mail_setup_yaml(&s, &b), 0);
	const char *t = strstr(buf_cstr(&b), "\nmail:\n");
	assert_non_null(t);
	t++;
	assert_string_equal(t,
	                    "mail:\n"
	                    "  milter:\n"
	                    "    listen: inet:8891@127.0.0.1\n"
	                    "  # clients whose mail is signed (besides SASL-authenticated ones)\n"
	                    "  internal-networks: [ 127.0.0.1/32, \"::1/128\" ]\n"
	                    "  sign:\n"
	                    "    - domain: example.com\n"
	                    "      selector: s1\n"
	                    "      key: \"/etc/rampart/keys/s1.private\"\n"
	                    "    - domain: example.com\n"
	                    "      selector: s1-ed25519\n"
	                    "      key: \"/k/a \\\"quoted\\\" \\\\dir/s1-ed25519.private\"\n");
	buf_reset(&b);
	s.keys[1].path = "/k/\x01.private";
	assert_int_equal(mail_setup_yaml(&s, &b), -EINVAL);
}

static void
test_postfix(void **state)
{
	(void)state;
	_cleanup_buf_ struct buf b = BUF_INIT(8192);
	assert_int_equal(mail_setup_postfix(&b), 0);
	const char *t = strstr(buf_cstr(&b), "\nsmtpd_milters");
	assert_non_null(t);
	assert_string_equal(t, "\nsmtpd_milters = inet:127.0.0.1:8891\n"
	                       "non_smtpd_milters = $smtpd_milters\n"
	                       "milter_default_action = accept\n"
	                       "milter_protocol = 6\n");
}

static size_t
dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.' || strlen(e->d_name) > 2;
	closedir(d);
	return n;
}

static void
test_write_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/test-mail_setup-XXXXXX", path[64];
	struct buf one = BUF_INIT(64), two = BUF_INIT(64);
	struct stat st;
	char got[16] = "";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(buf_append_str(&one, "first"), 0);
	assert_int_equal(buf_append_str(&two, "second"), 0);
	snprintf(path, sizeof(path), "%s/k.private", dir);

	assert_int_equal(mail_setup_write_file(dir, "k.private", &one, 0600, false), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* never clobbered without replace, and nothing left behind */
	assert_int_equal(mail_setup_write_file(dir, "k.private", &two, 0600, false), -EEXIST);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(got, sizeof(got), f));
	fclose(f);
	assert_string_equal(got, "first");
	assert_int_equal(dir_entries(dir), 1);

	assert_int_equal(mail_setup_write_file(dir, "k.private", &two, 0644, true), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_size, 6);
	assert_int_equal(dir_entries(dir), 1);
	assert_int_equal(mail_setup_write_file("/nonexistent-dir", "x", &one, 0600, false),
	                 -ENOENT);
	unlink(path);
	rmdir(dir);
	buf_free(&one);
	buf_free(&two);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_domain),
	    cmocka_unit_test(test_valid_rua_and_ip),
	    cmocka_unit_test(test_spf),
	    cmocka_unit_test(test_spf_refusals),
	    cmocka_unit_test(test_txt_split),
	    cmocka_unit_test(test_txt_refusals),
	    cmocka_unit_test(test_dmarc),
	    cmocka_unit_test(test_records),
	    cmocka_unit_test(test_records_long_spf),
	    cmocka_unit_test(test_yaml),
	    cmocka_unit_test(test_postfix),
	    cmocka_unit_test(test_write_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
