#include "mail_setup.h"

#include "core/cleanup.h"
#include "core/net.h"
#include "dmarc.h"
#include "milter.h"
#include "milter_config.h"
#include "spf_record.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* the longest SPF record built: 32 IPv6 prefixes and 16 host names fit */
#define SPF_TEXT_MAX 8192
#define DMARC_TEXT_MAX 1024
#define MAILTO "mailto:"

static bool
ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

bool
mail_setup_valid_domain(const char *s)
{
	size_t len = strlen(s), label = 0, labels = 1;
	if (len == 0 || len > 253)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-' || !p[1])
				return false;
			label = 0;
			labels++;
			continue;
		}
		if (!ldh(*p) || (label == 0 && *p == '-') || ++label > 63)
			return false;
	}
	/* an all-numeric top label would be an IPv4 address (RFC 3696 §2) */
	const char *top = strrchr(s, '.') + 1;
	return labels >= 2 && s[len - 1] != '-' && strspn(top, "0123456789") < strlen(top);
}

bool
mail_setup_valid_rua(const char *s)
{
	if (!strncasecmp(s, MAILTO, strlen(MAILTO)))
		s += strlen(MAILTO);
	const char *at = strrchr(s, '@');
	if (!at || at == s)
		return false;
	for (const char *p = s; p < at; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127 || strchr(",;!\"\\@", *p))
			return false;
	return mail_setup_valid_domain(at + 1);
}

/* "ip4:192.0.2.0/24", "ip6:2001:db8::1": the prefix only when it is not the whole address. */
static int
spf_ip(const char *arg, struct buf *out)
{
	struct net_cidr c;
	char host[NET_ADDR_STRLEN];
	if (net_cidr_parse(arg, &c) < 0 || c.prefix == 0)
		return -EINVAL;
	if (net_addr_is_v4_mapped(&c.addr) && c.prefix >= 96) {
		net_addr_normalize(&c.addr);
		c.prefix -= 96;
	}
	unsigned full = c.addr.family == AF_INET ? 32 : 128;
	if (net_addr_format(&c.addr, false, host, sizeof(host)) < 0)
		return -EINVAL;
	if (c.prefix == full)
		return buf_printf(out, " ip%c:%s", full == 32 ? '4' : '6', host);
	return buf_printf(out, " ip%c:%s/%u", full == 32 ? '4' : '6', host, c.prefix);
}

bool
mail_setup_valid_ip(const char *s)
{
	_cleanup_buf_ struct buf scratch = BUF_INIT(128);
	return spf_ip(s, &scratch) == 0;
}

static int
spf_text(const struct mail_setup *s, struct buf *out)
{
	int r = buf_append_str(out, "v=spf1");
	for (size_t i = 0; i < s->n_ips && r == 0; i++)
		r = spf_ip(s->ips[i], out);
	for (size_t i = 0; i < s->n_mx && r == 0; i++) {
		if (!mail_setup_valid_domain(s->mx[i]))
			return -EINVAL;
		r = strcasecmp(s->mx[i], s->domain) ? buf_printf(out, " a:%s", s->mx[i])
		                                    : buf_append_str(out, " a");
	}
	if (r == 0 && s->n_ips + s->n_mx == 0)
		r = buf_append_str(out, " mx");
	return r < 0 ? r : buf_append_str(out, s->softfail ? " ~all" : " -all");
}

int
mail_setup_spf(const struct mail_setup *s, struct buf *out, size_t *lookups)
{
	_cleanup_buf_ struct buf text = BUF_INIT(SPF_TEXT_MAX);
	_cleanup_(spf_record_freep) struct spf_record *rec = NULL;
	struct spf_error err;
	if (s->n_ips > MAIL_SETUP_IPS_MAX || s->n_mx > MAIL_SETUP_MX_MAX)
		return -EINVAL;
	int r = spf_text(s, &text);
	if (r < 0)
		return r;
	if (spf_record_parse(text.data, text.len, &rec, &err) < 0)
		return -EINVAL;
	*lookups = spf_record_dns_terms(rec);
	if (*lookups > MAIL_SETUP_SPF_LOOKUPS_MAX)
		return -E2BIG;
	return buf_append(out, text.data, text.len);
}

int
mail_setup_dmarc(const struct mail_setup *s, struct buf *out)
{
	_cleanup_buf_ struct buf text = BUF_INIT(DMARC_TEXT_MAX);
	struct dmarc_record rec;
	int r;
	if (s->rua && !mail_setup_valid_rua(s->rua))
		return -EINVAL;
	if (!s->rua)
		r = buf_printf(&text, "v=DMARC1; p=none; rua=" MAILTO "dmarc-reports@%s",
		               s->domain);
	else if (!strncasecmp(s->rua, MAILTO, strlen(MAILTO)))
		r = buf_printf(&text, "v=DMARC1; p=none; rua=" MAILTO "%s",
		               s->rua + strlen(MAILTO));
	else
		r = buf_printf(&text, "v=DMARC1; p=none; rua=" MAILTO "%s", s->rua);
	if (r < 0)
		return r;
	if (dmarc_record_parse(text.data, text.len, &rec) < 0 || rec.p_assumed || !rec.rua[0])
		return -EINVAL;
	return buf_append(out, text.data, text.len);
}

static bool
txt_safe(const char *s)
{
	for (; *s; s++)
		if (*s < ' ' || *s > '~' || *s == '"' || *s == '\\')
			return false;
	return true;
}

/* what may follow a ';' on a line: anything but control characters */
static bool
comment_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 127)
			return false;
	return true;
}

static bool
name_safe(const char *s)
{
	return *s && txt_safe(s) && !strpbrk(s, " ;()");
}

int
mail_setup_txt(const char *name, const char *text, struct buf *out)
{
	size_t len = strlen(text), nlen = strlen(name);
	if (!name_safe(name) || !txt_safe(text))
		return -EINVAL;
	int r = buf_printf(out, "%s%s IN TXT (", name, name[nlen - 1] == '.' ? "" : ".");
	if (r == 0 && len == 0)
		r = buf_append_str(out, " \"\"");
	for (size_t i = 0; i < len && r == 0; i += MAIL_SETUP_TXT_STRING_MAX) {
		size_t n =
		    len - i < MAIL_SETUP_TXT_STRING_MAX ? len - i : MAIL_SETUP_TXT_STRING_MAX;
		r = buf_printf(out, "%s\"%.*s\"", i ? "\n\t" : " ", (int)n, text + i);
	}
	return r < 0 ? r : buf_append_str(out, " )\n");
}

/* HOST is D or below it: the admin publishes its address records in the same zone. */
static bool
in_domain(const char *host, const char *domain)
{
	size_t hl = strlen(host), dl = strlen(domain);
	return !strcasecmp(host, domain) ||
	       (hl > dl && host[hl - dl - 1] == '.' && !strcasecmp(host + hl - dl, domain));
}

static int
records_spf(const struct mail_setup *s, struct buf *out)
{
	_cleanup_buf_ struct buf spf = BUF_INIT(SPF_TEXT_MAX);
	size_t lookups;
	int r = mail_setup_spf(s, &spf, &lookups);
	if (r < 0)
		return r;
	r = buf_printf(
	    out,
	    "; SPF (RFC 7208): who may send mail from @%s. ip4:/ip6: the given addresses,\n"
	    "; a:HOST the addresses of HOST, mx the domain's MX hosts; %s everyone else.\n"
	    "; It makes %zu of the %d DNS lookups a receiver allows.\n",
	    s->domain, s->softfail ? "~all softfails" : "-all fails", lookups,
	    MAIL_SETUP_SPF_LOOKUPS_MAX);
	if (r == 0 && spf.len > MAIL_SETUP_SPF_UDP_MAX)
		r = buf_printf(out,
		               "; Warning: %zu bytes may not fit a UDP answer (RFC 7208 §3.4);\n"
		               "; use prefixes instead of single addresses.\n",
		               spf.len);
	if (r == 0)
		r = mail_setup_txt(s->domain, spf.data, out);
	if (r == 0)
		r = buf_append_str(
		    out, "\n; Sender ID (RFC 4406): a v=spf1 record serves Sender ID too, as\n"
		         "; spf2.0/mfrom,pra (RFC 4406 §3.4); a spf2.0/pra record would say the "
		         "same.\n");
	return r;
}

static int
records_key(const struct mail_setup *s, const struct mail_setup_key *k, struct buf *out)
{
	char name[DNS_NAME_MAX + 16];
	if (!comment_safe(k->path) || !comment_safe(k->what))
		return -EINVAL;
	if (snprintf(name, sizeof(name), "%s._domainkey.%s", k->selector, s->domain) >=
	    (int)sizeof(name))
		return -EINVAL;
	int r =
	    buf_printf(out,
	               "\n; DKIM (RFC 6376) selector %s: %s key, %s; signatures say s=%s d=%s.\n"
	               "; Private key: %s\n",
	               k->selector, k->what, k->reused ? "reused" : "generated", k->selector,
	               s->domain, k->path);
	return r < 0 ? r : mail_setup_txt(name, k->record, out);
}

static int
records_dmarc(const struct mail_setup *s, struct buf *out)
{
	_cleanup_buf_ struct buf dmarc = BUF_INIT(DMARC_TEXT_MAX);
	char name[DNS_NAME_MAX + 16];
	int r = mail_setup_dmarc(s, &dmarc);
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "_dmarc.%s", s->domain);
	const char *rua = strstr(dmarc.data, "rua=") + 4;
	r = buf_printf(
	    out,
	    "\n; DMARC (RFC 7489): p=none only asks receivers for daily aggregate reports,\n"
	    "; sent to %s. Once the reports show all your mail passing\n"
	    "; SPF or DKIM for this domain, tighten the policy step by step:\n"
	    ";   \"v=DMARC1; p=quarantine; pct=10; rua=%s\"\n"
	    ";     (a tenth of the failing mail goes to spam), then pct=50, then no pct=;\n"
	    ";   \"v=DMARC1; p=reject; rua=%s\"\n"
	    ";     (failing mail is refused).\n",
	    rua, rua, rua);
	const char *at = strrchr(rua, '@') + 1;
	if (r == 0 && !in_domain(at, s->domain))
		r = buf_printf(out,
		               "; Unless %s is your own organisation's domain, it must agree to\n"
		               "; get the reports (RFC 7489 §7.1), with\n"
		               ";   %s._report._dmarc.%s. IN TXT \"v=DMARC1\"\n",
		               at, s->domain, at);
	return r < 0 ? r : mail_setup_txt(name, dmarc.data, out);
}

static int
records_dk(const struct mail_setup *s, struct buf *out)
{
	char name[DNS_NAME_MAX + 16];
	bool rsa = false;
	for (size_t i = 0; i < s->n_keys; i++)
		rsa |= strstr(s->keys[i].record, "k=rsa;") != NULL;
	int r =
	    buf_printf(out,
	               "\n; DomainKeys (RFC 4870, historic) policy: o=~ says some mail from the\n"
	               "; domain is signed, so unsigned mail is not suspect.\n; %s\n",
	               rsa ? "DomainKeys verifiers read the RSA key above."
	                   : "DomainKeys signs with RSA keys only: add one with --type both.");
	snprintf(name, sizeof(name), "_domainkey.%s", s->domain);
	return r < 0 ? r : mail_setup_txt(name, "o=~", out);
}

/* The --ip values that are single addresses, as A/AAAA records of host. */
static int
records_host_addresses(const struct mail_setup *s, const char *host, struct buf *out)
{
	int r = 0;
	for (size_t i = 0; i < s->n_ips && r == 0; i++) {
		struct net_cidr c;
		char text[NET_ADDR_STRLEN];
		if (net_cidr_parse(s->ips[i], &c) < 0)
			return -EINVAL;
		if (net_addr_is_v4_mapped(&c.addr) && c.prefix >= 96) {
			net_addr_normalize(&c.addr);
			c.prefix -= 96;
		}
		if (c.prefix != (c.addr.family == AF_INET ? 32u : 128u))
			continue;
		if (net_addr_format(&c.addr, false, text, sizeof(text)) < 0)
			return -EINVAL;
		r = buf_printf(out, "%s. IN %s %s\n", host, c.addr.family == AF_INET ? "A" : "AAAA",
		               text);
	}
	return r;
}

/* MX records for --mx, and the address of a single MX host inside the domain. */
static int
records_mx(const struct mail_setup *s, struct buf *out)
{
	if (s->n_mx == 0)
		return 0;
	int r = buf_printf(out,
	                   "\n; MX (RFC 5321 §5.1): where mail for @%s is delivered (keep the\n"
	                   "; records you have if they are already published).\n",
	                   s->domain);
	for (size_t i = 0; i < s->n_mx && r == 0; i++)
		r = buf_printf(out, "%s. IN MX %zu %s.\n", s->domain, 10 * (i + 1), s->mx[i]);
	if (r < 0 || s->n_mx != 1 || !in_domain(s->mx[0], s->domain) || s->n_ips == 0)
		return r;
	r = buf_append_str(out, "; The mail host's addresses (--ip):\n");
	return r < 0 ? r : records_host_addresses(s, s->mx[0], out);
}

int
mail_setup_records(const struct mail_setup *s, struct buf *out)
{
	int r = buf_printf(out,
	                   "; rampart mail setup: the records to publish in the zone of %s.\n"
	                   "; Once published, `rampart mail check --domain %s` audits them.\n\n",
	                   s->domain, s->domain);
	if (r == 0)
		r = records_spf(s, out);
	if (r == 0)
		r = records_mx(s, out);
	for (size_t i = 0; i < s->n_keys && r == 0; i++)
		r = records_key(s, &s->keys[i], out);
	if (r == 0)
		r = records_dk(s, out);
	return r < 0 ? r : records_dmarc(s, out);
}

/* A YAML double-quoted scalar: '"' and '\\' escaped, control characters refused. */
static int
yaml_quoted(const char *s, struct buf *out)
{
	if (!comment_safe(s))
		return -EINVAL;
	int r = buf_append_str(out, "\"");
	for (; *s && r == 0; s++)
		r = (*s == '"' || *s == '\\' ? buf_append_str(out, "\\") : 0)
		        ?: buf_append(out, s, 1);
	return r < 0 ? r : buf_append_str(out, "\"\n");
}

int
mail_setup_yaml(const struct mail_setup *s, struct buf *out)
{
	int r = buf_printf(
	    out,
	    "# Written by `rampart mail setup --domain %s`: the mail: section of\n"
	    "# rampart.yaml. It replaces the mail: section of /etc/rampart/rampart.yaml;\n"
	    "# then run `rampart check-config`. See rampart.yaml(5).\n"
	    "mail:\n"
	    "  milter:\n"
	    "    listen: %s\n"
	    "  # clients whose mail is signed (besides SASL-authenticated ones)\n"
	    "  internal-networks: [ 127.0.0.1/32, \"::1/128\" ]\n"
	    "  sign:\n",
	    s->domain, MILTER_LISTEN_DEFAULT);
	for (size_t i = 0; i < s->n_keys && r == 0; i++) {
		r = buf_printf(out, "    - domain: %s\n      selector: %s\n      key: ", s->domain,
		               s->keys[i].selector);
		if (r == 0)
			r = yaml_quoted(s->keys[i].path, out);
	}
	return r;
}

int
mail_setup_postfix(struct buf *out)
{
	char spec[256];
	int r = milter_postfix_spec(MILTER_LISTEN_DEFAULT, spec, sizeof(spec));
	if (r < 0)
		return r;
	return buf_printf(
	    out,
	    "# Written by `rampart mail setup`: add to /etc/postfix/main.cf (in place\n"
	    "# of any *_milters lines there), then `postfix reload`. See docs/postfix.md.\n"
	    "# accept: mail goes through unsigned while the milter is down.\n"
	    "smtpd_milters = %s\n"
	    "non_smtpd_milters = $smtpd_milters\n"
	    "milter_default_action = accept\n"
	    "milter_protocol = 6\n",
	    spec);
}

/* errno, or EIO where stdio failed without one */
static int
neg_errno(void)
{
	return errno ? -errno : -EIO;
}

static int
write_temp(FILE *f, const struct buf *data, mode_t mode)
{
	errno = 0;
	if (fchmod(fileno(f), mode) < 0 || fwrite(buf_cstr(data), 1, data->len, f) != data->len ||
	    fflush(f) != 0 || fsync(fileno(f)) < 0)
		return neg_errno();
	return 0;
}

int
mail_setup_write_file(const char *dir, const char *name, const struct buf *data, mode_t mode,
                      bool replace)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	/* mkostemp opens with O_EXCL: two runs never share a temporary file */
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		int r = -errno;
		close(fd);
		unlink(tmp);
		return r;
	}
	int r = write_temp(f, data, mode);
	if (fclose(f) != 0 && r == 0)
		r = neg_errno();
	if (r == 0 && replace && rename(tmp, path) < 0)
		r = -errno;
	/* link(2), unlike rename(2), fails when the name exists */
	if (r == 0 && !replace && link(tmp, path) < 0)
		r = -errno;
	if (r < 0 || !replace)
		unlink(tmp);
	return r;
}
