/*
 * rampart dns query: one lookup through src/core/dns, printed the way rampart's parts see it.
 * For operators (what will SPF/DKIM get for this name?) and for testing the real-DNS path.
 * The diagnostic options (--repeat, --pause, --deadline, --prefetch, --stats) run the query
 * several times in one process, so that tests see the answer cache and the per-thread
 * deadline of src/core/dns at work.
 */
#include "cmd.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/cleanup.h"
#include "core/json.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define VERB "dns"
/* One record in presentation form: a 64 KiB TXT is at most 4 x 65535 escaped bytes. */
#define LINE_MAX_BYTES (300u << 10)
#define JSON_MAX (128u << 20)
#define REPEAT_MAX 1000
#define PAUSE_MAX_MS 60000

enum {
	OPT_JSON = 0x2000,
	OPT_TRUST_ANCHOR,
	OPT_REPEAT,
	OPT_PAUSE,
	OPT_DEADLINE,
	OPT_PREFETCH,
	OPT_STATS,
};

/* The diagnostics: how often, and with what budget, the query runs. */
struct dns_diag {
	bool on; /* any diagnostic option: ";;" lines are printed */
	bool prefetch;
	unsigned repeat; /* 0: once */
	uint64_t pause_ms, deadline_ms;
};

struct dns_cli {
	struct cmd_dns_opts dns;
	const char *name, *type_name;
	enum dns_type type;
	bool json;
	struct dns_diag diag;
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
parse_duration(const char *opt, const char *arg, uint64_t max, uint64_t *ms)
{
	if (cfg_parse_duration(arg, ms) < 0 || *ms > max)
		return cmd_usage_error(VERB, "%s '%s': not a duration (e.g. 2s)", opt, arg);
	return 0;
}

/* 1: a diagnostic option taken; 0: not one; else an exit code. */
static int
parse_diag(struct dns_diag *d, int c, const char *arg)
{
	char *end;
	switch (c) {
	case OPT_REPEAT:
		d->repeat = (unsigned)strtoul(arg, &end, 10);
		if (*arg < '1' || *arg > '9' || *end || d->repeat > REPEAT_MAX)
			return cmd_usage_error(VERB, "--repeat '%s': not a count from 1 to %d", arg,
			                       REPEAT_MAX);
		break;
	case OPT_PAUSE:
		if (parse_duration("--pause", arg, PAUSE_MAX_MS, &d->pause_ms))
			return CMD_EXIT_USAGE;
		break;
	case OPT_DEADLINE:
		if (parse_duration("--deadline", arg, 3600 * 1000, &d->deadline_ms))
			return CMD_EXIT_USAGE;
		break;
	case OPT_PREFETCH:
		d->prefetch = true;
		break;
	case OPT_STATS:
		break;
	default:
		return 0;
	}
	d->on = true;
	return 1;
}

static int
parse_args(struct dns_cli *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    CMD_DNS_LONGOPTS,
	    {"json", no_argument, NULL, OPT_JSON},
	    {"dns-trust-anchor", required_argument, NULL, OPT_TRUST_ANCHOR},
	    {"repeat", required_argument, NULL, OPT_REPEAT},
	    {"pause", required_argument, NULL, OPT_PAUSE},
	    {"deadline", required_argument, NULL, OPT_DEADLINE},
	    {"prefetch", no_argument, NULL, OPT_PREFETCH},
	    {"stats", no_argument, NULL, OPT_STATS},
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
		if ((r = parse_diag(&o->diag, c, optarg)) == 1)
			continue;
		if (r != 0)
			return r;
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

/* Which path answered: the cache, a query in flight, the network, or the zone file. */
static const char *
diag_source(const struct dns_stats *before, const struct dns_stats *after)
{
	if (after->hits > before->hits)
		return "hit";
	if (after->joined > before->joined)
		return "joined";
	return after->misses > before->misses ? "miss" : "none";
}

static void
diag_pause(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
	                      .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Runs the query as the diagnostics ask; *a is the last answer, *after the counters. */
static int
run_queries(const struct dns_cli *o, struct dns_resolver *res, struct dns_answer *a,
            struct dns_stats *after)
{
	unsigned n = o->diag.repeat ? o->diag.repeat : 1;
	struct dns_stats before;
	int r = 0;
	if (o->diag.deadline_ms)
		dns_deadline_set(dns_monotonic_ms() + o->diag.deadline_ms);
	if (o->diag.prefetch && (r = dns_prefetch(res, o->qname, o->type)) < 0)
		return r;
	for (unsigned i = 0; i < n; i++) {
		if (i > 0) {
			dns_answer_free(a);
			if (o->diag.pause_ms)
				diag_pause(o->diag.pause_ms);
		}
		dns_resolver_stats(res, &before);
		if ((r = dns_query(res, o->qname, o->type, a)) < 0)
			return r;
		dns_resolver_stats(res, after);
		if (!o->diag.on)
			continue;
		printf(";; query %u source=%s status=%s\n", i + 1, diag_source(&before, after),
		       dns_status_name(a->status));
		if (i + 1 < n && (r = o->json ? print_json(o, a) : print_text(o, a)) < 0)
			return r;
	}
	return 0;
}

int
cmd_dns(int argc, char **argv)
{
	struct dns_cli o = {0};
	struct dns_resolver *res = NULL;
	struct dns_answer a = {0};
	struct dns_stats st = {0};
	int r = parse_args(&o, argc, argv);
	if (r != 0)
		return r;
	const char *ta = o.dns.dns.trust_anchor;
	if (ta && access(ta, R_OK) < 0)
		return cmd_usage_error(VERB, "--dns-trust-anchor '%s': %s", ta, strerror(errno));
	if ((r = cmd_dns_open(VERB, &o.dns, &res)) != 0)
		return r;
	r = run_queries(&o, res, &a, &st);
	dns_resolver_free(res);
	if (r < 0)
		dns_answer_free(&a);
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
	if (o.diag.on)
		printf(";; stats hits=%" PRIu64 " misses=%" PRIu64 " joined=%" PRIu64
		       " entries=%zu\n",
		       st.hits, st.misses, st.joined, st.entries);
	dns_answer_free(&a);
	return code;
}
