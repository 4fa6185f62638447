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

/* The CNAME links from the name asked to the one that holds the records, as dig shows them. */
struct cname_link {
	char name[DNS_NAME_MAX], target[DNS_NAME_MAX];
	uint32_t ttl;
};

struct dns_cli {
	struct cname_link chain[8];
	size_t n_chain;
	const char *owner; /* of the records: qname, or the end of the chain */
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
    {"A", DNS_T_A},         {"AAAA", DNS_T_AAAA},     {"MX", DNS_T_MX},   {"TXT", DNS_T_TXT},
    {"SPF", DNS_T_SPF},     {"PTR", DNS_T_PTR},       {"NS", DNS_T_NS},   {"SOA", DNS_T_SOA},
    {"CNAME", DNS_T_CNAME}, {"SRV", DNS_T_SRV},       {"CAA", DNS_T_CAA}, {"TLSA", DNS_T_TLSA},
    {"DS", DNS_T_DS},       {"DNSKEY", DNS_T_DNSKEY},
};

const char *
cmd_dns_type_name(enum dns_type t)
{
	for (size_t i = 0; i < ARRAY_SIZE(cli_types); i++)
		if (cli_types[i].type == t)
			return cli_types[i].name;
	return "?";
}

static int
txt_string(struct buf *b, const unsigned char *p, size_t len)
{
	int r = buf_append_str(b, "\"");
	for (size_t i = 0; r == 0 && i < len; i++) {
		if (p[i] == '"' || p[i] == '\\')
			r = buf_printf(b, "\\%c", p[i]);
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			r = buf_printf(b, "\\%03u", p[i]);
		else
			r = buf_append(b, &p[i], 1);
	}
	return r ?: buf_append_str(b, "\"");
}

/* The length of TXT string k: as received, or 255-byte pieces when that is not known. */
static size_t
txt_piece(const struct dns_bytes *t, size_t k, size_t off)
{
	if (t->nstr)
		return (unsigned char)t->data[t->len + 1 + k];
	return t->len - off < 255 ? t->len - off : 255;
}

static size_t
txt_count(const struct dns_bytes *t)
{
	return t->nstr ? t->nstr : t->len ? (t->len + 254) / 255 : 1;
}

/* TXT data as zone-file strings: printable ASCII as is, \" \\, other bytes \DDD, the
 * joined text (what SPF and DKIM read) re-split into 255-byte strings, so the line reads back
 * as a record those read the same way. JSON's "strings" has the strings as received. */
static int
txt_presentation(struct buf *b, const struct dns_bytes *t)
{
	const struct dns_bytes joined = {.data = t->data, .len = t->len};
	int r = 0;
	for (size_t k = 0, off = 0; r == 0 && k < txt_count(&joined); k++) {
		size_t n = txt_piece(&joined, k, off);
		r = (k ? buf_append_str(b, " ") : 0)
		        ?: txt_string(b, (const unsigned char *)t->data + off, n);
		off += n;
	}
	return r;
}

static int
hex(struct buf *b, const unsigned char *p, size_t len)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < len; i++)
		r = buf_printf(b, "%02X", p[i]);
	return r;
}

/* The raw types in zone-file form (RFC 4034 DS and DNSKEY, RFC 6698 TLSA, RFC 8659 CAA). */
static int
raw_presentation(struct buf *b, const struct dns_rr *rr)
{
	const unsigned char *p = (const unsigned char *)rr->u.raw.data;
	size_t len = rr->u.raw.len;
	switch (rr->type) {
	case DNS_T_DS:
		return buf_printf(b, "%u %u %u ", p[0] << 8 | p[1], p[2], p[3])
		           ?: hex(b, p + 4, len - 4);
	case DNS_T_DNSKEY:
		return buf_printf(b, "%u %u %u ", p[0] << 8 | p[1], p[2], p[3])
		           ?: json_base64(b, p + 4, len - 4);
	case DNS_T_TLSA:
		return buf_printf(b, "%u %u %u ", p[0], p[1], p[2]) ?: hex(b, p + 3, len - 3);
	default: /* CAA: flags tag "value" */
		return buf_printf(b, "%u %.*s ", p[0], (int)p[1], (const char *)p + 2)
		           ?: txt_string(b, p + 2 + p[1], len - 2 - p[1]);
	}
}

int
cmd_dns_rdata(struct buf *b, const struct dns_rr *rr)
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
		return txt_presentation(b, &rr->u.txt);
	case DNS_T_SRV:
		return buf_printf(b, "%u %u %u %s.", rr->u.srv.priority, rr->u.srv.weight,
		                  rr->u.srv.port, rr->u.srv.target);
	case DNS_T_DS:
	case DNS_T_DNSKEY:
	case DNS_T_TLSA:
	case DNS_T_CAA:
		return raw_presentation(b, rr);
	default: /* PTR, CNAME, NS; SOA: only its primary server is kept */
		return buf_printf(b, "%s.", rr->u.name);
	}
}

static int
print_text(const struct dns_cli *o, const struct dns_answer *a)
{
	_cleanup_buf_ struct buf line = BUF_INIT(LINE_MAX_BYTES);
	printf("status=%s secure=%s\n", dns_status_name(a->status), a->secure ? "yes" : "no");
	for (size_t i = 0; i < o->n_chain; i++)
		printf("%s. %u IN CNAME %s.\n", o->chain[i].name, o->chain[i].ttl,
		       o->chain[i].target);
	for (size_t i = 0; i < a->n; i++) {
		buf_reset(&line);
		int r = cmd_dns_rdata(&line, &a->rr[i]);
		if (r < 0)
			return r;
		printf("%s. %u IN %s %s\n", o->owner ? o->owner : o->qname, a->rr[i].ttl,
		       cmd_dns_type_name(a->rr[i].type), buf_cstr(&line));
	}
	return 0;
}

/* "text": the strings joined (what SPF and DKIM read), "strings": each one. */
static int
json_txt(struct buf *b, const struct dns_bytes *t)
{
	char piece[256];
	/* t->data is NUL-terminated: the joined text as is (a NUL byte inside ends it) */
	int r = buf_printf(b, ",\"length\":%zu,\"text\":", t->len) ?: json_string(b, t->data);
	r = r ?: buf_append_str(b, ",\"strings\":[");
	for (size_t k = 0, off = 0; r == 0 && k < txt_count(t); k++) {
		size_t n = txt_piece(t, k, off);
		memcpy(piece, t->data + off, n);
		piece[n] = '\0';
		r = (k ? buf_append_str(b, ",") : 0) ?: json_string(b, piece);
		off += n;
	}
	return r ?: buf_append_str(b, "]");
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
		return json_txt(b, &rr->u.txt);
	case DNS_T_SRV:
		return buf_printf(b, ",\"priority\":%u,\"weight\":%u,\"port\":%u,\"target\":",
		                  rr->u.srv.priority, rr->u.srv.weight, rr->u.srv.port)
		           ?: json_string(b, rr->u.srv.target);
	case DNS_T_DS:
	case DNS_T_DNSKEY:
	case DNS_T_TLSA:
	case DNS_T_CAA:
		return 0; /* rdata says it all */
	default:
		return buf_append_str(b, ",\"target\":") ?: json_string(b, rr->u.name);
	}
}

static int
json_record(struct buf *b, const struct dns_rr *rr)
{
	_cleanup_buf_ struct buf rdata = BUF_INIT(LINE_MAX_BYTES);
	int r = cmd_dns_rdata(&rdata, rr);
	if (r == 0)
		r = buf_printf(b, "{\"type\":\"%s\",\"ttl\":%u,\"rdata\":",
		               cmd_dns_type_name(rr->type), rr->ttl);
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
	                      cmd_dns_type_name(o->type), dns_status_name(a->status),
	                      a->secure ? "true" : "false");
	for (size_t i = 0; r == 0 && i < a->n; i++)
		r = (i ? buf_append_str(&b, ",") : 0) ?: json_record(&b, &a->rr[i]);
	r = r ?: buf_append_str(&b, "],\"owner\":") ?: json_string(&b, o->owner ? o->owner : o->qname);
	r = r ?: buf_append_str(&b, ",\"cname\":[");
	for (size_t i = 0; r == 0 && i < o->n_chain; i++) {
		r = buf_append_str(&b, i ? ",{\"name\":" : "{\"name\":")
		        ?: json_string(&b, o->chain[i].name);
		r = r ?: buf_printf(&b, ",\"ttl\":%u,\"target\":", o->chain[i].ttl) ?: json_string(&b, o->chain[i].target);
		r = r ?: buf_append_str(&b, "}");
	}
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
	                       "CNAME, NS, SOA, SRV, CAA, TLSA, DS, DNSKEY)",
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

/* The resolver follows CNAMEs silently: the links are asked for one by one (8 at most). */
static void
follow_chain(struct dns_cli *o, struct dns_resolver *res)
{
	const char *name = o->qname;
	if (o->type == DNS_T_CNAME)
		return;
	while (o->n_chain < ARRAY_SIZE(o->chain)) {
		struct dns_answer a;
		if (dns_query(res, name, DNS_T_CNAME, &a) < 0)
			return;
		if (a.status != DNS_OK || a.rr[0].type != DNS_T_CNAME) {
			dns_answer_free(&a);
			return;
		}
		struct cname_link *l = &o->chain[o->n_chain++];
		memcpy(l->name, name, strlen(name) + 1);
		memcpy(l->target, a.rr[0].u.name, sizeof(l->target));
		l->ttl = a.rr[0].ttl;
		name = o->owner = l->target;
		dns_answer_free(&a);
	}
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
	if (r == 0 && (a.status == DNS_OK || a.status == DNS_NODATA))
		follow_chain(&o, res);
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
