/*
 * rampart mail check: audits what a domain publishes for mail authentication
 * (src/mail/mail_check) and prints the rows as a table or one JSON object.
 */
#include "cmd.h"
#include "cmd_spf.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/esc.h"
#include "core/json.h"
#include "mail/dkim_key.h"
#include "mail/mail_check.h"
#include "mail/mail_setup.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define VERB "mail check"
#define JSON_MAX (1u << 20)
/* the whole run, as the SPF commands allow one evaluation (RFC 7208 §4.6.4) */
#define TIME_LIMIT_MS_DEFAULT 20000

enum {
	OPT_IP = 0x100,
	OPT_JSON,
	OPT_TIME_LIMIT,
};

struct check_cli {
	struct cmd_dns_opts dns;
	char domain[DNS_NAME_MAX];
	const char *selectors[MAIL_CHECK_SELECTORS_MAX];
	size_t n_selectors;
	const char *keys[MAIL_CHECK_SELECTORS_MAX];
	size_t n_keys;
	bool json, have_ip;
	struct net_addr ip;
	uint64_t limit_ms;
};

/* Lower case, without the final dot. */
static int
set_domain(struct check_cli *o, const char *arg)
{
	size_t len = strlen(arg);
	if (len > 0 && arg[len - 1] == '.')
		len--;
	if (len >= sizeof(o->domain))
		return cmd_usage_error(VERB, "--domain: longer than 253 characters");
	for (size_t i = 0; i < len; i++)
		o->domain[i] = (char)tolower((unsigned char)arg[i]);
	o->domain[len] = '\0';
	if (!mail_check_valid_domain(o->domain))
		return cmd_usage_error(VERB, "--domain '%s': not a domain name", arg);
	return 0;
}

static int
add_selector(struct check_cli *o, const char *arg)
{
	if (!mail_check_valid_selector(arg))
		return cmd_usage_error(VERB, "--selector '%s': not a selector", arg);
	if (o->n_selectors >= MAIL_CHECK_SELECTORS_MAX)
		return cmd_usage_error(VERB, "at most %d --selector options",
		                       MAIL_CHECK_SELECTORS_MAX);
	o->selectors[o->n_selectors++] = arg;
	return 0;
}

static int
parse_option(struct check_cli *o, int c, int argc, char **argv)
{
	int r = cmd_dns_option(VERB, c, optarg, &o->dns);
	if (r != 0)
		return r == 1 ? 0 : r;
	switch (c) {
	case 'd':
		return set_domain(o, optarg);
	case 's':
		return add_selector(o, optarg);
	case 'k':
		if (o->n_keys >= MAIL_CHECK_SELECTORS_MAX)
			return cmd_usage_error(VERB, "at most %d --key options",
			                       MAIL_CHECK_SELECTORS_MAX);
		o->keys[o->n_keys++] = optarg;
		return 0;
	case OPT_IP:
		return cmd_spf_parse_ip(VERB, optarg, &o->ip, &o->have_ip);
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_TIME_LIMIT:
		return cmd_spf_parse_time_limit(VERB, optarg, &o->limit_ms);
	case 'h':
		return -1;
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

static int
parse_args(int argc, char **argv, struct check_cli *o)
{
	static const struct option longopts[] = {
	    {"domain", required_argument, NULL, 'd'},
	    {"selector", required_argument, NULL, 's'},
	    {"key", required_argument, NULL, 'k'},
	    {"ip", required_argument, NULL, OPT_IP},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"time-limit", required_argument, NULL, OPT_TIME_LIMIT},
	    {"help", no_argument, NULL, 'h'},
	    CMD_DNS_LONGOPTS,
	    {0},
	};
	int c, r;
	cmd_dns_opts_init(&o->dns);
	o->limit_ms = TIME_LIMIT_MS_DEFAULT;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:d:s:k:h", longopts, NULL)) != -1)
		if ((r = parse_option(o, c, argc, argv)) != 0)
			return r;
	if (optind < argc)
		return cmd_usage_error(VERB, "unexpected argument '%s'", argv[optind]);
	if (!o->domain[0])
		return cmd_usage_error(VERB, "--domain is required");
	/* the one `rampart mail setup` uses when none is given */
	if (o->n_selectors == 0)
		o->selectors[o->n_selectors++] = MAIL_SETUP_SELECTOR_DEFAULT;
	return 0;
}

static int
load_keys(const struct check_cli *o, struct dkim_key_private *keys)
{
	for (size_t i = 0; i < o->n_keys; i++) {
		int r = cmd_dkim_load_key(VERB, o->keys[i], &keys[i]);
		if (r != CMD_EXIT_OK)
			return r;
	}
	return 0;
}

/* A field of text output: controls escaped, so a record cannot forge table lines. */
static void
put_text(const char *s)
{
	esc_fputs(s, stdout);
}

static void
print_table(const struct mail_check_report *rep)
{
	size_t w = 5;
	for (size_t i = 0; i < rep->n; i++)
		if (strlen(rep->rows[i].name) > w)
			w = strlen(rep->rows[i].name);
	printf("%-*s  %-6s  %s\n", (int)w, "CHECK", "STATUS", "REASON / FIX");
	for (size_t i = 0; i < rep->n; i++) {
		const struct mail_check_row *row = &rep->rows[i];
		printf("%-*s  %-6s  ", (int)w, row->name, mail_check_status_name(row->status));
		put_text(row->reason);
		putchar('\n');
		if (row->fix[0]) {
			printf("%-*s  %-6s  fix: ", (int)w, "", "");
			put_text(row->fix);
			putchar('\n');
		}
	}
}

static int
json_row(struct buf *b, const struct mail_check_row *row, bool first)
{
	int r =
	    buf_append_str(b, first ? "{\"check\":" : ",{\"check\":") ?: json_string(b, row->name);
	r = r ?: buf_append_str(b, ",\"status\":") ?: json_string(b, mail_check_status_name(row->status));
	r = r ?: buf_append_str(b, ",\"reason\":") ?: json_string(b, row->reason);
	r = r ?: buf_append_str(b, ",\"fix\":") ?: json_string(b, row->fix);
	return r ?: buf_append_str(b, "}");
}

static int
print_json(const char *domain, const struct mail_check_report *rep)
{
	_cleanup_buf_ struct buf b = BUF_INIT(JSON_MAX);
	size_t count[3] = {0};
	int r = buf_append_str(&b, "{\"domain\":") ?: json_string(&b, domain);
	r = r ?: buf_append_str(&b, ",\"rows\":[");
	for (size_t i = 0; r == 0 && i < rep->n; i++) {
		count[rep->rows[i].status]++;
		r = json_row(&b, &rep->rows[i], i == 0);
	}
	r = r
	        ?: buf_printf(&b, "],\"summary\":{\"ok\":%zu,\"warn\":%zu,\"fail\":%zu,\"result\":",
	                      count[0], count[1], count[2]);
	r = r
	        ?: json_string(&b, rep->dns_error[0]
	                               ? "dns-error"
	                               : mail_check_status_name(mail_check_worst(rep)));
	if (r == 0 && rep->dns_error[0])
		r = buf_append_str(&b, ",\"dns_error\":") ?: json_string(&b, rep->dns_error);
	r = r ?: buf_append_str(&b, "}}\n");
	if (r < 0)
		return r;
	fputs(buf_cstr(&b), stdout);
	return 0;
}

static int
run(struct check_cli *o, const struct dkim_key_private *keys)
{
	_cleanup_(mail_check_report_free) struct mail_check_report rep = {0};
	struct dns_resolver *dns = NULL;
	struct mail_check_input in = {.domain = o->domain,
	                              .selectors = o->selectors,
	                              .n_selectors = o->n_selectors,
	                              .have_ip = o->have_ip,
	                              .ip = o->ip,
	                              .keys = keys,
	                              .n_keys = o->n_keys};
	int r = cmd_dns_open(VERB, &o->dns, &dns);
	if (r != 0)
		return r;
	dns_deadline_set(dns_monotonic_ms() + o->limit_ms);
	in.budget_ms = o->limit_ms;
	r = mail_check_run(dns, &in, &rep);
	dns_deadline_set(0);
	dns_resolver_free(dns);
	if (r < 0 && r != -EAGAIN) {
		cmd_error(VERB, "cannot check %s: %s", o->domain, strerror(-r));
		return r == -EINVAL ? CMD_EXIT_USAGE : CMD_EXIT_TEMP;
	}
	if (!o->json)
		print_table(&rep);
	else if (print_json(o->domain, &rep) < 0) {
		cmd_error(VERB, "cannot format the report");
		return CMD_EXIT_TEMP;
	}
	fflush(stdout);
	if (r == -EAGAIN) {
		cmd_error(VERB, "%s", rep.dns_error);
		return CMD_EXIT_TEMP;
	}
	if (rep.no_domain)
		cmd_error(VERB, "%s does not exist (NXDOMAIN)", o->domain);
	return mail_check_worst(&rep) == MAIL_CHECK_FAIL ? CMD_EXIT_NEGATIVE : CMD_EXIT_OK;
}

int
cmd_mail_check(int argc, char **argv)
{
	struct dkim_key_private keys[MAIL_CHECK_SELECTORS_MAX] = {0};
	struct check_cli o = {0};
	int r = parse_args(argc, argv, &o);
	if (r == -1)
		return cmd_print_usage("mail");
	if (r == 0)
		r = load_keys(&o, keys);
	if (r == 0)
		r = run(&o, keys);
	for (size_t i = 0; i < o.n_keys; i++)
		dkim_key_private_clear(&keys[i]);
	return r;
}
