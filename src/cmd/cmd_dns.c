/*
 * rampart dns query: one lookup through src/core/dns, printed the way rampart's parts see it.
 * For operators (what will SPF/DKIM get for this name?) and for testing the real-DNS path.
 */
#include "cmd.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/json.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define VERB "dns"
/* One record in presentation form: a 64 KiB TXT is at most 4 x 65535 escaped bytes. */
#define LINE_MAX_BYTES (300u << 10)
#define JSON_MAX (128u << 20)

enum { OPT_JSON = 0x2000, OPT_TRUST_ANCHOR };

struct dns_cli {
	struct cmd_dns_opts dns;
	const char *name, *type_name;
	enum dns_type type;
	bool json;
	char qname[DNS_NAME_MAX]; /* name, or the reverse name of an address for PTR */
};

static const struct {
	const char *name;
	enum dns_type type;
} cli_types[] = {
    {"A", DNS_T_A},     {"AAAA", DNS_T_AAAA}, {"MX", DNS_T_MX},
    {"TXT", DNS_T_TXT}, {"SPF", DNS_T_SPF},   {"PTR", DNS_T_PTR},
    {"NS", DNS_T_NS},   {"SOA", DNS_T_SOA},   {"CNAME", DNS_T_CNAME},
};

static const char *
type_name(enum dns_type t)
{
	for (size_t i = 0; i < ARRAY_SIZE(cli_types); i++)
		if (cli_types[i].type == t)
			return cli_types[i].name;
	return "?";
}

/* TXT data as zone-file strings: printable ASCII as is, \" \\, other bytes \DDD, split
 * into 255-byte strings so the line reads back as the same record. */
static int
txt_presentation(struct buf *b, const char *data, size_t len)
{
	int r = buf_append_str(b, "\"");
	for (size_t i = 0; r == 0 && i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		if (i > 0 && i % 255 == 0)
			r = buf_append_str(b, "\" \"");
		if (r < 0)
			break;
		if (c == '"' || c == '\\')
			r = buf_printf(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			r = buf_printf(b, "\\%03u", c);
		else
			r = buf_append(b, &c, 1);
	}
	return r ?: buf_append_str(b, "\"");
}

static int
rdata_presentation(struct buf *b, const struct dns_rr *rr)
{
	char addr[NET_ADDR_STRLEN];
	switch (rr->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (net_addr_format(&rr->u.addr, false, addr, sizeof(addr)) < 0)
			return -EINVAL;
		return buf_append_str(b, addr);
	case DNS_T_MX:
		return buf_printf(b, "%u %s.", rr->u.mx.pref, rr->u.mx.host);
	case DNS_T_TXT:
	case DNS_T_SPF:
		return txt_presentation(b, rr->u.txt.data, rr->u.txt.len);
	default: /* PTR, CNAME, NS; SOA: only its primary server is kept */
		return buf_printf(b, "%s.", rr->u.name);
	}
}

static int
print_text(const struct dns_cli *o, const struct dns_answer *a)
{
	_cleanup_buf_ struct buf line = BUF_INIT(LINE_MAX_BYTES);
	printf("status=%s secure=%s\n", dns_status_name(a->status), a->secure ? "yes" : "no");
	for (size_t i = 0; i < a->n; i++) {
		buf_reset(&line);
		int r = rdata_presentation(&line, &a->rr[i]);
		if (r < 0)
			return r;
		printf("%s. %u IN %s %s\n", o->qname, a->rr[i].ttl, type_name(a->rr[i].type),
		       buf_cstr(&line));
	}
	return 0;
}

/* Typed fields beside the presentation form, so scripts need not parse it. */
static int
json_fields(struct buf *b, const struct dns_rr *rr)
{
	char addr[NET_ADDR_STRLEN];
	switch (rr->type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		if (net_addr_format(&rr->u.addr, false, addr, sizeof(addr)) < 0)
			return -EINVAL;
		return buf_append_str(b, ",\"address\":") ?: json_string(b, addr);
	case DNS_T_MX:
		return buf_printf(b, ",\"preference\":%u,\"exchange\":", rr->u.mx.pref)
		           ?: json_string(b, rr->u.mx.host);
	case DNS_T_TXT:
	case DNS_T_SPF:
		return buf_printf(b, ",\"length\":%zu", rr->u.txt.len);
	default:
		return buf_append_str(b, ",\"target\":") ?: json_string(b, rr->u.name);
	}
}

static int
json_record(struct buf *b, const struct dns_rr *rr)
{
	_cleanup_buf_ struct buf rdata = BUF_INIT(LINE_MAX_BYTES);
	int r = rdata_presentation(&rdata, rr);
	if (r == 0)
		r = buf_printf(b, "{\"type\":\"%s\",\"ttl\":%u,\"rdata\":", type_name(rr->type),
		               rr->ttl);
	return r ?: json_string(b, buf_cstr(&rdata)) ?: json_fields(b, rr)
		   ?: buf_append_str(b, "}");
}

static int
print_json(const struct dns_cli *o, const struct dns_answer *a)
{
	_cleanup_buf_ struct buf b = BUF_INIT(JSON_MAX);
	int r = buf_append_str(&b, "{\"name\":") ?: json_string(&b, o->qname);
	r = r
	        ?: buf_printf(&b, ",\"type\":\"%s\",\"status\":\"%s\",\"secure\":%s,\"records\":[",
	                      type_name(o->type), dns_status_name(a->status),
	                      a->secure ? "true" : "false");
	for (size_t i = 0; r == 0 && i < a->n; i++)
		r = (i ? buf_append_str(&b, ",") : 0) ?: json_record(&b, &a->rr[i]);
	r = r ?: buf_append_str(&b, "]}\n");
	if (r == 0)
		fputs(buf_cstr(&b), stdout);
	return r;
}

static int
parse_type(struct dns_cli *o)
{
	if (!o->type_name) {
		o->type = DNS_T_A;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cli_types); i++) {
		if (strcasecmp(o->type_name, cli_types[i].name) == 0) {
			o->type = cli_types[i].type;
			return 0;
		}
	}
	return cmd_usage_error(VERB,
	                       "unknown record type '%s' (A, AAAA, MX, TXT, SPF, PTR, "
	                       "CNAME, NS, SOA)",
	                       o->type_name);
}

/* With PTR an address may stand for its reverse name, as dig -x does. */
static int
parse_name(struct dns_cli *o)
{
	struct net_addr a;
	size_t len = strlen(o->name);
	if (o->type == DNS_T_PTR && net_addr_parse(o->name, NET_PORT_NONE, &a) == 0)
		return dns_reverse_name(&a, o->qname, sizeof(o->qname)) < 0 ? CMD_EXIT_USAGE : 0;
	if (len > 0 && o->name[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(o->qname))
		return cmd_usage_error(VERB, "'%s': not a valid domain name", o->name);
	for (size_t i = 0; i < len; i++) {
		char c = o->name[i];
		o->qname[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	o->qname[len] = '\0';
	return 0;
}

static int
parse_words(struct dns_cli *o, int argc, char **argv)
{
	if (argc == 0)
		return cmd_usage_error(VERB, "missing subcommand (query)");
	if (strcmp(argv[0], "query") != 0)
		return cmd_usage_error(VERB, "unknown subcommand '%s'", argv[0]);
	if (argc < 2)
		return cmd_usage_error(VERB, "query: missing NAME");
	if (argc > 3)
		return cmd_usage_error(VERB, "query: unexpected argument '%s'", argv[3]);
	o->name = argv[1];
	o->type_name = argc > 2 ? argv[2] : NULL;
	return parse_type(o) ?: parse_name(o);
}

static int
parse_args(struct dns_cli *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    CMD_DNS_LONGOPTS,
	    {"json", no_argument, NULL, OPT_JSON},
	    {"dns-trust-anchor", required_argument, NULL, OPT_TRUST_ANCHOR},
	    {0},
	};
	int c, r;
	cmd_dns_opts_init(&o->dns);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == OPT_JSON || c == OPT_TRUST_ANCHOR) {
			o->json |= c == OPT_JSON;
			if (c == OPT_TRUST_ANCHOR)
				o->dns.dns.trust_anchor = optarg;
			continue;
		}
		if ((r = cmd_dns_option(VERB, c, optarg, &o->dns)) == 0)
			return cmd_bad_option(VERB, argc, argv, c);
		if (r != 1)
			return r;
	}
	return parse_words(o, argc - optind, argv + optind);
}

static int
exit_code(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return CMD_EXIT_OK;
	case DNS_NODATA:
	case DNS_NXDOMAIN:
		return CMD_EXIT_NEGATIVE;
	default:
		return CMD_EXIT_TEMP;
	}
}

int
cmd_dns(int argc, char **argv)
{
	struct dns_cli o = {0};
	struct dns_resolver *res = NULL;
	struct dns_answer a = {0};
	int r = parse_args(&o, argc, argv);
	if (r != 0)
		return r;
	const char *ta = o.dns.dns.trust_anchor;
	if (ta && access(ta, R_OK) < 0)
		return cmd_usage_error(VERB, "--dns-trust-anchor '%s': %s", ta, strerror(errno));
	if ((r = cmd_dns_open(VERB, &o.dns, &res)) != 0)
		return r;
	r = dns_query(res, o.qname, o.type, &a);
	dns_resolver_free(res);
	if (r == -EINVAL)
		return cmd_usage_error(VERB, "'%s': not a valid domain name", o.name);
	if (r < 0) {
		cmd_error(VERB, "%s: %s", o.name, strerror(-r));
		return CMD_EXIT_TEMP;
	}
	r = o.json ? print_json(&o, &a) : print_text(&o, &a);
	int code = r < 0 ? CMD_EXIT_TEMP : exit_code(a.status);
	if (r < 0)
		cmd_error(VERB, "cannot print the answer: %s", strerror(-r));
	dns_answer_free(&a);
	return code;
}
