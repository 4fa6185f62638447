/*
 * rampart mail relaytest: tries outside recipients and the classic relay tricks against an
 * SMTP server (src/mail/mail_relaytest) and reports, per trick, whether it was accepted.
 */
#include "cmd.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "mail/mail_relaytest.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERB "mail relaytest"
#define JSON_MAX (1u << 20)
#define STEP_MS_DEFAULT 10000
#define TIME_LIMIT_MS_DEFAULT 120000
#define DURATION_MAX_MS (3600u * 1000)

enum {
	OPT_FROM = 0x100,
	OPT_TO,
	OPT_HELO,
	OPT_DOMAIN,
	OPT_NO_TLS,
	OPT_TIMEOUT,
	OPT_TIME_LIMIT,
	OPT_JSON,
};

struct relay_cli {
	struct cmd_dns_opts dns;
	struct mail_relaytest_target target;
	const char *from, *to, *helo, *domain;
	char helo_buf[MAIL_RELAYTEST_NAME_MAX];
	bool no_tls, json;
	uint64_t step_ms, limit_ms;
};

static int
set_duration(const char *opt, const char *arg, uint64_t *ms)
{
	if (cfg_parse_duration(arg, ms) < 0 || *ms == 0 || *ms > DURATION_MAX_MS)
		return cmd_usage_error(VERB, "%s '%s': not a duration up to 1h (e.g. 10s)", opt,
		                       arg);
	return 0;
}

static int
set_address(const char *opt, const char *arg, const char **out)
{
	if (!mail_relaytest_addr_valid(arg))
		return cmd_usage_error(VERB, "%s '%s': not an address (local@domain)", opt, arg);
	*out = arg;
	return 0;
}

static int
set_name(const char *opt, const char *arg, const char **out)
{
	if (!mail_relaytest_name_valid(arg))
		return cmd_usage_error(VERB, "%s '%s': not a host name", opt, arg);
	*out = arg;
	return 0;
}

static int
parse_option(struct relay_cli *o, int c, int argc, char **argv)
{
	int r = cmd_dns_option(VERB, c, optarg, &o->dns);
	if (r != 0)
		return r == 1 ? 0 : r;
	switch (c) {
	case OPT_FROM:
		return set_address("--from", optarg, &o->from);
	case OPT_TO:
		return set_address("--to", optarg, &o->to);
	case OPT_HELO:
		return set_name("--helo", optarg, &o->helo);
	case OPT_DOMAIN:
		return set_name("--domain", optarg, &o->domain);
	case OPT_NO_TLS:
		o->no_tls = true;
		return 0;
	case OPT_TIMEOUT:
		return set_duration("--timeout", optarg, &o->step_ms);
	case OPT_TIME_LIMIT:
		return set_duration("--time-limit", optarg, &o->limit_ms);
	case OPT_JSON:
		o->json = true;
		return 0;
	case 'h':
		return -1;
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

/* The machine's name when it is a full one, else the sender's domain. */
static void
default_helo(struct relay_cli *o)
{
	if (gethostname(o->helo_buf, sizeof(o->helo_buf)) == 0 &&
	    o->helo_buf[strnlen(o->helo_buf, sizeof(o->helo_buf) - 1)] == '\0' &&
	    strchr(o->helo_buf, '.') && mail_relaytest_name_valid(o->helo_buf)) {
		o->helo = o->helo_buf;
		return;
	}
	o->helo = strrchr(o->from, '@') + 1;
}

static int
parse_args(struct relay_cli *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"from", required_argument, NULL, OPT_FROM},
	    {"to", required_argument, NULL, OPT_TO},
	    {"helo", required_argument, NULL, OPT_HELO},
	    {"domain", required_argument, NULL, OPT_DOMAIN},
	    {"no-tls", no_argument, NULL, OPT_NO_TLS},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"time-limit", required_argument, NULL, OPT_TIME_LIMIT},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    CMD_DNS_LONGOPTS,
	    {0},
	};
	int c, r;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1)
		if ((r = parse_option(o, c, argc, argv)) != 0)
			return r;
	if (argc - optind != 1)
		return cmd_usage_error(VERB, argc - optind ? "give one HOST[:PORT]"
		                                           : "expected HOST[:PORT]");
	if (mail_relaytest_target_parse(argv[optind], &o->target) < 0)
		return cmd_usage_error(VERB, "'%s': not HOST, HOST:PORT, ADDRESS or [IPv6]:PORT",
		                       argv[optind]);
	if (!o->helo)
		default_helo(o);
	return 0;
}

/* ------------------------------------------------------------------ the server's addresses */

DEFINE_CLEANUP_FUNC(struct dns_resolver, dns_resolver_free)

static int
add_answer(const struct dns_answer *ans, struct net_addr *addrs, size_t *n, uint16_t port)
{
	for (size_t i = 0; ans->status == DNS_OK && i < ans->n; i++) {
		if ((ans->rr[i].type != DNS_T_A && ans->rr[i].type != DNS_T_AAAA) ||
		    *n == MAIL_RELAYTEST_ADDRS_MAX)
			continue;
		addrs[*n] = ans->rr[i].u.addr;
		addrs[(*n)++].port = port;
	}
	return ans->status == DNS_TIMEOUT || ans->status == DNS_SERVFAIL;
}

static int
lookup(struct relay_cli *o, struct net_addr *addrs, size_t *n)
{
	static const enum dns_type types[] = {DNS_T_A, DNS_T_AAAA};
	_cleanup_(dns_resolver_freep) struct dns_resolver *res = NULL;
	bool temp = false;
	int r;

	if ((r = cmd_dns_open(VERB, &o->dns, &res)) != CMD_EXIT_OK)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		struct dns_answer ans = {0};
		if (dns_query(res, o->target.host, types[i], &ans) < 0) {
			cmd_error(VERB, "%s: cannot look the name up", o->target.host);
			return CMD_EXIT_USAGE;
		}
		temp |= add_answer(&ans, addrs, n, o->target.port);
		dns_answer_free(&ans);
	}
	if (*n > 0)
		return CMD_EXIT_OK;
	if (temp) {
		cmd_error(VERB, "%s: the name could not be looked up (DNS timeout or failure)",
		          o->target.host);
		return CMD_EXIT_TEMP;
	}
	cmd_error(VERB, "%s: no such host (no A or AAAA record)", o->target.host);
	return CMD_EXIT_USAGE;
}

/* localhost is the loopback interface (RFC 6761), whatever the DNS says. */
static int
resolve(struct relay_cli *o, struct net_addr *addrs, size_t *n)
{
	*n = 0;
	if (o->target.is_addr) {
		addrs[(*n)++] = o->target.addr;
		return CMD_EXIT_OK;
	}
	if (strcmp(o->target.host, "localhost") != 0)
		return lookup(o, addrs, n);
	net_addr_parse("127.0.0.1", NET_PORT_NONE, &addrs[0]);
	net_addr_parse("::1", NET_PORT_NONE, &addrs[1]);
	addrs[0].port = addrs[1].port = o->target.port;
	*n = 2;
	return CMD_EXIT_OK;
}

/* ------------------------------------------------------------------ text report */

/* A reply on one line: its lines joined by " / ". */
static void
print_reply(const char *indent, const struct mail_relaytest_reply *r)
{
	printf("%s%d ", indent, r->code);
	for (const char *p = r->text; *p; p++)
		if (*p == '\n')
			fputs(" / ", stdout);
		else
			putchar(*p);
	puts(r->truncated ? " [...]" : "");
}

static const char *
outcome_word(const struct mail_relaytest_outcome *t)
{
	if (t->stage == MAIL_RELAYTEST_NOT_RUN)
		return "not run";
	if (!t->accepted)
		return "refused";
	return t->trick.relay ? "ACCEPTED" : "accepted";
}

static void
print_tls(const struct relay_cli *o, const struct mail_relaytest_tls *t)
{
	if (t->used)
		printf("tls: %s %s (%d bits)%s%s\n", t->version, t->cipher, t->bits,
		       t->subject[0] ? ", certificate " : "", t->subject);
	else if (!t->offered)
		puts("tls: not offered");
	else if (o->no_tls)
		puts("tls: offered, not used (--no-tls)");
	else
		printf("tls: offered, STARTTLS refused: %s\n", t->refused);
}

static void
print_text(const struct relay_cli *o, const struct mail_relaytest_result *res)
{
	char addr[NET_ADDR_STRLEN] = "";

	net_addr_format(&res->addr, true, addr, sizeof(addr));
	printf("server: %s (%s)\n", addr, o->target.host);
	print_reply("greeting: ", &res->banner);
	print_reply(res->esmtp ? "ehlo: " : "helo: ", &res->ehlo);
	print_tls(o, &res->tls);
	printf("server domain: %s\n\n", res->domain);
	for (size_t i = 0; i < res->n; i++) {
		const struct mail_relaytest_outcome *t = &res->out[i];
		printf("%-9s %-20s MAIL FROM:%s RCPT TO:%s\n", outcome_word(t), t->trick.name,
		       t->trick.mail_from, t->trick.rcpt_to);
		if (t->stage != MAIL_RELAYTEST_NOT_RUN)
			print_reply(t->stage == MAIL_RELAYTEST_AT_MAIL ? "          at MAIL FROM: "
			                                               : "          ",
			            &t->reply);
	}
}

static void
print_verdict(const struct mail_relaytest_result *res, int r)
{
	size_t relay = 0, open = mail_relaytest_open_count(res);
	const char *sep = "";

	for (size_t i = 0; i < res->n; i++)
		relay += res->out[i].trick.relay;
	if (open == 0 && r == 0) {
		printf("\nclosed: all %zu relay tricks were refused\n", relay);
		return;
	}
	if (open == 0) {
		puts("\ncould not tell: the test did not finish");
		return;
	}
	printf("\nOPEN RELAY: %zu of %zu relay tricks were accepted:", open, relay);
	for (size_t i = 0; i < res->n; i++)
		if (res->out[i].accepted && res->out[i].trick.relay) {
			printf("%s %s", sep, res->out[i].trick.name);
			sep = ",";
		}
	putchar('\n');
}

/* ------------------------------------------------------------------ JSON report */

static void
json_kv(struct buf *b, const char *key, const char *s)
{
	buf_printf(b, "\"%s\":", key);
	if (s)
		json_string(b, s);
	else
		buf_append_str(b, "null");
}

static void
json_reply(struct buf *b, const char *key, const struct mail_relaytest_reply *r)
{
	buf_printf(b, "\"%s\":{\"code\":%d,", key, r->code);
	json_kv(b, "text", r->text);
	buf_printf(b, ",\"truncated\":%s}", r->truncated ? "true" : "false");
}

static void
json_tls(struct buf *b, const struct mail_relaytest_tls *t)
{
	buf_printf(b, "\"tls\":{\"offered\":%s,\"used\":%s,", t->offered ? "true" : "false",
	           t->used ? "true" : "false");
	json_kv(b, "version", t->used ? t->version : NULL);
	buf_append_str(b, ",");
	json_kv(b, "cipher", t->used ? t->cipher : NULL);
	buf_printf(b, ",\"bits\":%d,", t->used ? t->bits : 0);
	json_kv(b, "subject", t->used && t->subject[0] ? t->subject : NULL);
	buf_append_str(b, ",");
	json_kv(b, "starttls_refused", t->refused[0] ? t->refused : NULL);
	buf_append_str(b, "}");
}

static void
json_trick(struct buf *b, const struct mail_relaytest_outcome *t)
{
	static const char *const stage[] = {"not run", "mail", "rcpt"};

	buf_append_str(b, "{");
	json_kv(b, "name", t->trick.name);
	buf_append_str(b, ",");
	json_kv(b, "description", t->trick.what);
	buf_append_str(b, ",");
	json_kv(b, "mail_from", t->trick.mail_from);
	buf_append_str(b, ",");
	json_kv(b, "rcpt_to", t->trick.rcpt_to);
	buf_printf(b, ",\"relay\":%s,\"stage\":\"%s\",\"accepted\":%s,",
	           t->trick.relay ? "true" : "false", stage[t->stage],
	           t->accepted ? "true" : "false");
	if (t->stage == MAIL_RELAYTEST_NOT_RUN)
		buf_append_str(b, "\"reply\":null}");
	else {
		json_reply(b, "reply", &t->reply);
		buf_append_str(b, "}");
	}
}

static const char *
verdict(const struct mail_relaytest_result *res, int r)
{
	if (mail_relaytest_open_count(res) > 0)
		return "open";
	return r == 0 ? "closed" : "unknown";
}

static int
print_json(const struct relay_cli *o, const struct mail_relaytest_result *res, int r)
{
	_cleanup_buf_ struct buf b = BUF_INIT(JSON_MAX);
	char addr[NET_ADDR_STRLEN] = "";

	net_addr_format(&res->addr, false, addr, sizeof(addr));
	buf_append_str(&b, "{");
	json_kv(&b, "host", o->target.host);
	buf_append_str(&b, ",");
	json_kv(&b, "address", res->addr.family ? addr : NULL);
	buf_printf(&b, ",\"port\":%u,", o->target.port);
	json_reply(&b, "greeting", &res->banner);
	buf_append_str(&b, ",");
	json_reply(&b, "ehlo", &res->ehlo);
	buf_printf(&b, ",\"esmtp\":%s,", res->esmtp ? "true" : "false");
	json_tls(&b, &res->tls);
	buf_append_str(&b, ",");
	json_kv(&b, "domain", res->n ? res->domain : NULL);
	buf_printf(&b, ",\"sessions\":%zu,\"tricks\":[", res->sessions);
	for (size_t i = 0; i < res->n; i++) {
		buf_append_str(&b, i ? "," : "");
		json_trick(&b, &res->out[i]);
	}
	buf_printf(&b, "],\"result\":\"%s\",", verdict(res, r));
	json_kv(&b, "error", r < 0 ? res->error : NULL);
	if (buf_append_str(&b, "}\n") < 0) {
		cmd_error(VERB, "the JSON report is too large");
		return -ENOBUFS;
	}
	fputs(buf_cstr(&b), stdout);
	return 0;
}

/* ------------------------------------------------------------------ the command */

static int
report(const struct relay_cli *o, const struct mail_relaytest_result *res, int r)
{
	size_t open = mail_relaytest_open_count(res);

	if (o->json && print_json(o, res, r) < 0)
		return CMD_EXIT_TEMP;
	if (!o->json && res->n > 0) {
		print_text(o, res);
		print_verdict(res, r);
	}
	fflush(stdout);
	if (r < 0)
		cmd_error(VERB, "%s%s", res->error, open ? " (stopped early; open already)" : "");
	if (open > 0)
		return CMD_EXIT_NEGATIVE;
	return r < 0 ? CMD_EXIT_TEMP : CMD_EXIT_OK;
}

static int
run(struct relay_cli *o)
{
	_cleanup_free_ struct mail_relaytest_result *res = malloc(sizeof(*res));
	struct net_addr addrs[MAIL_RELAYTEST_ADDRS_MAX];
	struct mail_relaytest_options opt = {
	    .helo = o->helo,
	    .step_ms = o->step_ms,
	    .deadline_ms = dns_monotonic_ms() + o->limit_ms,
	    .no_tls = o->no_tls,
	    .domain = o->domain,
	    .fallback = o->target.is_addr ? NULL : o->target.host,
	    .sni = o->target.is_addr ? NULL : o->target.host,
	    .from = o->from,
	    .to = o->to,
	};
	size_t n;
	int r;

	if (!res) {
		cmd_error(VERB, "out of memory");
		return CMD_EXIT_TEMP;
	}
	dns_deadline_set(opt.deadline_ms);
	if ((r = resolve(o, addrs, &n)) != CMD_EXIT_OK)
		return r;
	/* A server that closes while we write must not kill us: it is a result. */
	signal(SIGPIPE, SIG_IGN);
	r = mail_relaytest_run(addrs, n, &opt, res);
	return report(o, res, r);
}

int
cmd_mail_relaytest(int argc, char **argv)
{
	struct relay_cli o = {
	    .from = "relaytest@example.org",
	    .to = "relaytest@example.com",
	    .step_ms = STEP_MS_DEFAULT,
	    .limit_ms = TIME_LIMIT_MS_DEFAULT,
	};
	int r;

	cmd_dns_opts_init(&o.dns);
	if ((r = parse_args(&o, argc, argv)) != 0)
		return r < 0 ? cmd_print_usage("mail") : r;
	return run(&o);
}
