/* rampart spf check: evaluates a sender's SPF policy (src/mail/spf_*) and prints the result. */
#include "cmd_spf.h"

#include "cmd.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "mail/spf_header.h"
#include "mail/spf_macro.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define VERB "spf"
#define JSON_MAX (64u << 10)

enum {
	OPT_RECEIVED_SPF = CMD_SPF_OPT_NEXT,
	OPT_EXPLANATION,
};

struct spf_cli {
	struct cmd_dns_opts dns;
	struct spf_request req;
	struct cmd_spf_print print;
	bool have_ip, have_sender;
	char receiver[256];
};

int
cmd_spf_exit(enum spf_result r)
{
	if (r == SPF_PASS)
		return CMD_EXIT_OK;
	return r == SPF_TEMPERROR ? CMD_EXIT_TEMP : CMD_EXIT_NEGATIVE;
}

/* The text after the result word: the explanation of a fail, the cause of an error. */
static void
summary(const struct spf_request *req, const struct spf_outcome *o, char *buf, size_t len)
{
	if (o->result == SPF_FAIL) {
		snprintf(buf, len, "%s", o->explanation);
	} else if (o->result == SPF_PERMERROR || o->result == SPF_TEMPERROR) {
		snprintf(buf, len, "%s%s%s", o->reason ? o->reason : "error",
		         o->problem[0] ? ": " : "", o->problem);
	} else if (spf_header_comment(req, o, buf, len) < 0) {
		buf[0] = '\0';
	}
}

/* A line of text output: controls and bytes that are not UTF-8 shown as \xHH. */
static void
print_text(const char *s)
{
	while (*s) {
		unsigned char c = (unsigned char)*s;
		size_t n = json_utf8_len((const unsigned char *)s);
		if (c < 0x20 || c == 0x7f || n == 0)
			printf("\\x%02x", c);
		else
			fwrite(s, 1, n, stdout);
		s += n ? n : 1;
	}
	putchar('\n');
}

static int
json_field(struct buf *b, const char *key, const char *value)
{
	if (!value)
		return 0;
	return buf_printf(b, ",\"%s\":", key) ?: json_string(b, value);
}

static const char *
identity_name(enum spf_identity id)
{
	return id == SPF_ID_HELO ? "helo" : id == SPF_ID_PRA ? "pra" : "mailfrom";
}

static int
print_json(const struct spf_outcome *o, const struct cmd_spf_print *p, const char *text,
           const char *received)
{
	_cleanup_buf_ struct buf b = BUF_INIT(JSON_MAX);
	int r = buf_append_str(&b, "{\"result\":") ?: json_string(&b, spf_result_name(o->result));
	r = r ?: json_field(&b, "explanation", text);
	r = r ?: json_field(&b, "identity", identity_name(o->identity));
	r = r ?: json_field(&b, "domain", o->domain);
	r = r ?: json_field(&b, "sender", o->sender);
	r = r ?: json_field(&b, "pra_header", p->pra_header);
	r = r ?: json_field(&b, "mechanism", o->mechanism[0] ? o->mechanism : NULL);
	r = r ?: json_field(&b, "reason", o->reason);
	r = r ?: json_field(&b, "problem", o->problem[0] ? o->problem : NULL);
	r = r
	        ?: buf_printf(&b, ",\"lookups\":%u,\"void_lookups\":%u,\"dns_queries\":%u",
	                      o->lookups, o->voids, o->queries);
	r = r ?: json_field(&b, "received_spf", received);
	r = r ?: json_field(&b, "authentication_results", p->authres_text);
	r = r ?: buf_append_str(&b, "}\n");
	if (r < 0)
		return r;
	fputs(buf_cstr(&b), stdout);
	return 0;
}

int
cmd_spf_report(const char *verb, const struct spf_request *req, const struct spf_outcome *o,
               const struct cmd_spf_print *p)
{
	char text[SPF_EXPLANATION_MAX + SPF_TEXT_MAX], received[SPF_HEADER_MAX];
	bool have_received = p->received_spf && spf_header_received(req, o, req->receiver, received,
	                                                            sizeof(received)) == 0;
	summary(req, o, text, sizeof(text));
	if (p->json) {
		int r = print_json(o, p, text, have_received ? received : NULL);
		if (r < 0)
			cmd_error(verb, "cannot format the result: %s", strerror(-r));
		return r;
	}
	char line[sizeof(text) + SPF_HEADER_MAX];
	snprintf(line, sizeof(line), "%s%s%s", spf_result_name(o->result), text[0] ? " " : "",
	         text);
	print_text(line);
	if (p->pra_header) {
		snprintf(line, sizeof(line), "PRA: %s (%s)", p->pra_addr, p->pra_header);
		print_text(line);
	}
	if (have_received)
		printf("Received-SPF: %s\n", received);
	if (p->authres && p->authres_text) {
		snprintf(line, sizeof(line), "Authentication-Results: %s; %s", req->receiver,
		         p->authres_text);
		print_text(line);
	}
	return 0;
}

int
cmd_spf_parse_ip(const char *verb, const char *arg, struct net_addr *ip, bool *have_ip)
{
	if (net_addr_parse(arg, NET_PORT_NONE, ip) < 0)
		return cmd_usage_error(verb, "--ip '%s': not an IPv4 or IPv6 address", arg);
	*have_ip = true;
	return 0;
}

int
cmd_spf_parse_time_limit(const char *verb, const char *arg, uint64_t *budget_ms)
{
	uint64_t ms;
	if (cfg_parse_duration(arg, &ms) < 0 || ms == 0 || ms > 3600 * 1000)
		return cmd_usage_error(verb, "--time-limit '%s': not a duration (e.g. 20s)", arg);
	*budget_ms = ms;
	return 0;
}

int
cmd_spf_check_names(const char *verb, const char *sender, const char *helo, bool helo_for_empty,
                    const char **receiver, char *buf, size_t len)
{
	if (helo_for_empty && sender && !*sender && (!helo || !*helo))
		return cmd_usage_error(verb, "an empty --sender checks the HELO name: give --helo");
	if ((sender && strlen(sender) >= SPF_SENDER_MAX) ||
	    (helo && strlen(helo) >= SPF_SENDER_MAX))
		return cmd_usage_error(verb, "--sender or --helo longer than %d bytes",
		                       SPF_SENDER_MAX - 1);
	if (!*receiver) {
		if (gethostname(buf, len - 1) < 0)
			snprintf(buf, len, "unknown");
		*receiver = buf;
	}
	return 0;
}

int
cmd_spf_getopt(const char *verb, int argc, char **argv, const struct option *longopts,
               int (*fn)(int c, int argc, char **argv, void *ctx), void *ctx)
{
	int c, r;
	if (argc < 2)
		return cmd_usage_error(verb, "missing subcommand 'check'");
	if (strcmp(argv[1], "check") != 0)
		return cmd_usage_error(verb, "unknown subcommand '%s'", argv[1]);
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "+:", longopts, NULL)) != -1)
		if ((r = fn(c, argc, argv, ctx)) != 0)
			return r;
	return 0;
}

static int
parse_option(int c, int argc, char **argv, void *ctx)
{
	struct spf_cli *o = ctx;
	int r = cmd_dns_option(VERB, c, optarg, &o->dns);
	if (r != 0)
		return r == 1 ? 0 : r;
	switch (c) {
	case CMD_SPF_OPT_IP:
		return cmd_spf_parse_ip(VERB, optarg, &o->req.ip, &o->have_ip);
	case CMD_SPF_OPT_SENDER:
		o->req.sender = optarg;
		o->have_sender = true;
		return 0;
	case CMD_SPF_OPT_HELO:
		o->req.helo = optarg;
		return 0;
	case CMD_SPF_OPT_RECEIVER:
		o->req.receiver = optarg;
		return 0;
	case OPT_RECEIVED_SPF:
	case CMD_SPF_OPT_AUTHRES:
	case CMD_SPF_OPT_JSON:
		o->print.received_spf |= c == OPT_RECEIVED_SPF;
		o->print.authres |= c == CMD_SPF_OPT_AUTHRES;
		o->print.json |= c == CMD_SPF_OPT_JSON;
		return 0;
	case OPT_EXPLANATION:
		if (spf_macro_check(optarg, strlen(optarg), SPF_MACRO_EXP) < 0)
			return cmd_usage_error(VERB, "--explanation '%s': not a valid macro string",
			                       optarg);
		o->req.default_exp = optarg;
		return 0;
	case CMD_SPF_OPT_TIME_LIMIT:
		return cmd_spf_parse_time_limit(VERB, optarg, &o->req.budget_ms);
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

static int
check_args(int argc, char **argv, struct spf_cli *o)
{
	if (optind < argc)
		return cmd_usage_error(VERB, "unexpected argument '%s'", argv[optind]);
	if (!o->have_ip || !o->have_sender)
		return cmd_usage_error(VERB, "check needs --ip and --sender");
	return cmd_spf_check_names(VERB, o->req.sender, o->req.helo, true, &o->req.receiver,
	                           o->receiver, sizeof(o->receiver));
}

static int
parse_args(int argc, char **argv, struct spf_cli *o)
{
	static const struct option longopts[] = {
	    CMD_SPF_LONGOPTS,
	    {"received-spf", no_argument, NULL, OPT_RECEIVED_SPF},
	    {"explanation", required_argument, NULL, OPT_EXPLANATION},
	    CMD_DNS_LONGOPTS,
	    {0},
	};
	int r;

	*o = (struct spf_cli){.req = {.identity = SPF_ID_MAILFROM, .scope = SPF_SCOPE_SPF1}};
	cmd_dns_opts_init(&o->dns);
	if ((r = cmd_spf_getopt(VERB, argc, argv, longopts, parse_option, o)) != 0)
		return r;
	return check_args(argc, argv, o);
}

int
cmd_spf(int argc, char **argv)
{
	char authres[SPF_HEADER_MAX];
	struct dns_resolver *dns = NULL;
	struct spf_outcome out;
	struct spf_cli o;
	int r = parse_args(argc, argv, &o);

	if (r != 0)
		return r;
	if ((r = cmd_dns_open(VERB, &o.dns, &dns)) != 0)
		return r;
	r = spf_eval_check(dns, &o.req, &out);
	dns_resolver_free(dns);
	if (r < 0) {
		cmd_error(VERB, "cannot check: %s", strerror(-r));
		return CMD_EXIT_USAGE;
	}
	if (spf_header_authres(&o.req, &out, authres, sizeof(authres)) == 0)
		o.print.authres_text = authres;
	if (cmd_spf_report(VERB, &o.req, &out, &o.print) < 0)
		return CMD_EXIT_TEMP;
	return cmd_spf_exit(out.result);
}
