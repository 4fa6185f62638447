/* rampart spf check: evaluates a sender's SPF policy (src/mail/spf_*) and prints the result. */
#include "cmd_spf.h"

#include "cmd.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/cleanup.h"
#include "core/esc.h"
#include "core/json.h"
#include "mail/spf_header.h"
#include "mail/spf_macro.h"

#include <errno.h>
#include <stdarg.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define VERB "spf"
#define JSON_MAX (64u << 10)
/* a check makes at most some 40 queries of 256 records: the trace of one is capped */
#define TRACE_JSON_MAX (8u << 20)
#define TRACE_LINE_MAX (256u << 10)
#define TRACE_RDATA_MAX (300u << 10)
/* one --batch line: IP SENDER [HELO [RCPT-TO]] */
#define BATCH_LINE_MAX 4096
#define BATCH_SLACK 16

/* The per-line path of a batch is kept compact (instruction cache): what runs once or on
 * errors is moved out of it. */
#define COLD __attribute__((cold, noinline))
#define NOINLINE __attribute__((noinline))

enum {
	OPT_RECEIVED_SPF = CMD_SPF_OPT_NEXT,
	OPT_EXPLANATION,
	OPT_BATCH,
	OPT_RECORD,
	OPT_TRACE,
};

struct spf_cli {
	struct cmd_dns_opts dns;
	struct spf_request req;
	struct cmd_spf_print print;
	bool have_ip, have_sender, trace;
	const char *batch;  /* --batch FILE or "-" */
	const char *record; /* --record TEXT */
	char receiver[256];
};

int
cmd_spf_exit(enum spf_result r)
{
	if (r == SPF_PASS)
		return CMD_EXIT_OK;
	return r == SPF_TEMPERROR ? CMD_EXIT_TEMP : CMD_EXIT_NEGATIVE;
}

/* The text after the result word: the explanation of a fail, the cause of an error; buf
 * holds it unless it is the outcome's own explanation. */
static const char *
summary(const struct spf_request *req, const struct spf_outcome *o, char *buf, size_t len)
{
	if (o->result == SPF_FAIL)
		return o->explanation;
	if (o->result == SPF_PERMERROR || o->result == SPF_TEMPERROR)
		snprintf(buf, len, "%s%s%s", o->reason ? o->reason : "error",
		         o->problem[0] ? ": " : "", o->problem);
	else if (spf_header_comment(req, o, buf, len) < 0)
		buf[0] = '\0';
	return buf;
}

/* Bytes of the 8 in w that are below n (n <= 128), have the top bit set, or equal c1 or c2:
 * nonzero when any does (the word-at-a-time tests of "Bit Twiddling Hacks"). */
#define ONES 0x0101010101010101u
#define HIGH 0x8080808080808080u
static inline uint64_t
word_special(uint64_t w, unsigned char n, unsigned char c1, unsigned char c2)
{
	uint64_t x1 = w ^ (ONES * c1), x2 = w ^ (ONES * c2);
	return ((w - ONES * n) & ~w & HIGH) | (w & HIGH) | ((x1 - ONES) & ~x1 & HIGH) |
	       ((x2 - ONES) & ~x2 & HIGH);
}

#ifdef __SSE2__
/* Whether any of the 16 bytes at p is one word_special looks for (with n = 0x20): as signed
 * bytes, the controls and every byte from 0x80 are below 0x20. */
static inline bool
block_special(const char *p)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
	                           _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
	                                        _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
	return _mm_movemask_epi8(bad) != 0;
}
#endif

/* Whether the n bytes at s need no escape (esc.h): printable ASCII but the backslash.
 * Anything else, UTF-8 included, is left to esc to judge. Most text (addresses, senders,
 * comments) is plain and copied as it is, so this is checked 16 or 8 bytes at a time. */
static bool
text_plain(const char *s, size_t n)
{
	size_t i = 0;
#ifdef __SSE2__
	if (n >= 16) {
		for (; i + 16 < n; i += 16)
			if (block_special(s + i))
				return false;
		/* the last block overlaps the one before rather than reading past the end */
		return !block_special(s + n - 16);
	}
#endif
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, sizeof(w));
		if (word_special(w, 0x20, 0x7f, '\\'))
			return false;
	}
	for (; i < n; i++)
		if ((unsigned char)(s[i] - 0x20) >= 0x5f || s[i] == '\\')
			return false;
	return true;
}

/*
 * Text output to stdout gathered here and written in large blocks: a batch prints many short
 * lines. Flushed after each report unless a batch holds it (not on a terminal, which gets
 * each line as it is done), and before anything else writes to stdout.
 */
static struct {
	bool hold;
	size_t len;
	char buf[1u << 16];
} outbuf;

static void
out_flush(void)
{
	fwrite(outbuf.buf, 1, outbuf.len, stdout);
	outbuf.len = 0;
}

static inline void
out_put(const char *s, size_t n)
{
	if (n > sizeof(outbuf.buf) - outbuf.len) {
		out_flush();
		if (n > sizeof(outbuf.buf)) {
			fwrite(s, 1, n, stdout);
			return;
		}
	}
	memcpy(outbuf.buf + outbuf.len, s, n);
	outbuf.len += n;
}

static inline void
out_char(char c)
{
	if (outbuf.len == sizeof(outbuf.buf))
		out_flush();
	outbuf.buf[outbuf.len++] = c;
}

/* Text from elsewhere (senders, DNS text), escaped for a terminal as esc.h says. */
static void
out_text(const char *s)
{
	size_t n = strlen(s);
	if (text_plain(s, n)) {
		out_put(s, n);
		return;
	}
	out_flush();
	esc_fputs(s, stdout);
}

static void
print_text(const char *s)
{
	out_text(s);
	out_char('\n');
}

/* A --trace line on stderr (unbuffered: written at once). */
static void
fprint_text(FILE *f, const char *s)
{
	if (text_plain(s, strlen(s)))
		fputs(s, f);
	else
		esc_fputs(s, f);
	putc('\n', f);
}

/* Every string member: "key_raw" too when the bytes are not UTF-8 (json.h). */
static int
json_field(struct buf *b, const char *key, const char *value)
{
	if (!value)
		return 0;
	return buf_append_str(b, ",") ?: json_member(b, key, value);
}

static const char *
identity_name(enum spf_identity id)
{
	return id == SPF_ID_HELO ? "helo" : id == SPF_ID_PRA ? "pra" : "mailfrom";
}

static const char *const trace_kinds[] = {
    [SPF_TRACE_CHECK] = "check", [SPF_TRACE_QUERY] = "query",   [SPF_TRACE_RECORD] = "record",
    [SPF_TRACE_TERM] = "term",   [SPF_TRACE_RESULT] = "result",
};

static const char *
term_outcome(int match)
{
	return match > 0 ? "match" : match == 0 ? "no match" : "error";
}

/* A query's answer: the status, then the records in zone-file form, "; " between them. */
static int
trace_answer(struct buf *b, const struct dns_answer *a, bool json)
{
	_cleanup_buf_ struct buf rd = BUF_INIT(TRACE_RDATA_MAX);
	int r = json ? buf_printf(b, ",\"status\":\"%s\",\"records\":[",
	                          a ? dns_status_name(a->status) : "TIMEOUT")
	             : buf_printf(b, " %s", a ? dns_status_name(a->status) : "TIMEOUT (not sent)");
	for (size_t i = 0; r == 0 && a && i < a->n; i++) {
		buf_reset(&rd);
		r = cmd_dns_rdata(&rd, &a->rr[i]);
		if (r == 0 && json)
			r = (i ? buf_append_str(b, ",") : 0) ?: json_string(b, buf_cstr(&rd));
		else if (r == 0)
			r = buf_printf(b, "%s%s", i ? "; " : " ", buf_cstr(&rd));
	}
	return r ?: json ? buf_append_str(b, "]") : 0;
}

static int
trace_json(struct buf *b, const struct spf_trace *t, const char *text, size_t n)
{
	static const char *const keys[] = {"domain", "name", "record", "term", "domain"};
	int r = buf_printf(b, "%s{\"event\":\"%s\",\"depth\":%u,\"%s\":", n ? "," : "",
	                   trace_kinds[t->kind], t->depth, keys[t->kind]);
	r = r ?: json_string(b, text);
	if (t->kind == SPF_TRACE_QUERY)
		r = r ?: buf_printf(b, ",\"type\":\"%s\"", cmd_dns_type_name(t->type))
		        ?: trace_answer(b, t->answer, true);
	if (t->kind == SPF_TRACE_TERM)
		r = r ?: buf_printf(b, ",\"outcome\":\"%s\"", term_outcome(t->match));
	if (t->kind == SPF_TRACE_RESULT)
		r = r ?: buf_printf(b, ",\"result\":\"%s\"", spf_result_name(t->result));
	return r ?: buf_append_str(b, "}");
}

static int
trace_line(struct buf *b, const struct spf_trace *t, const char *text)
{
	int r = buf_printf(b, ";; %*s%s %s", (int)(2 * t->depth), "", trace_kinds[t->kind], text);
	if (t->kind == SPF_TRACE_QUERY)
		r = r ?: buf_printf(b, " %s:", cmd_dns_type_name(t->type))
		        ?: trace_answer(b, t->answer, false);
	if (t->kind == SPF_TRACE_TERM)
		r = r ?: buf_printf(b, ": %s", term_outcome(t->match));
	if (t->kind == SPF_TRACE_RESULT)
		r = r ?: buf_printf(b, ": %s", spf_result_name(t->result));
	return r;
}

void
cmd_spf_trace_cb(void *arg, const struct spf_trace *t)
{
	struct cmd_spf_trace *tr = arg;
	char text[SPF_EXPLANATION_MAX + DNS_NAME_MAX];
	size_t len = t->len < sizeof(text) ? t->len : sizeof(text) - 1;
	memcpy(text, t->text, len);
	text[len] = '\0';
	if (tr->json) {
		if (tr->err == 0)
			tr->err = trace_json(tr->out, t, text, tr->n++);
		return;
	}
	_cleanup_buf_ struct buf line = BUF_INIT(TRACE_LINE_MAX);
	/* a line too long for the cap is printed cut rather than lost */
	(void)trace_line(&line, t, text);
	fprint_text(stderr, buf_cstr(&line));
}

void
cmd_spf_trace_begin(struct cmd_spf_trace *tr)
{
	tr->n = 0;
	tr->err = 0;
	if (tr->json) {
		buf_reset(tr->out);
		tr->err = buf_append_str(tr->out, "[");
	}
}

const char *
cmd_spf_trace_end(struct cmd_spf_trace *tr)
{
	if (!tr->json)
		return NULL;
	tr->err = tr->err ?: buf_append_str(tr->out, "]");
	return tr->err ? NULL : buf_cstr(tr->out);
}

NOINLINE static int
print_json(const struct spf_outcome *o, const struct cmd_spf_print *p, const char *text,
           const char *received)
{
	_cleanup_buf_ struct buf b = BUF_INIT(JSON_MAX + TRACE_JSON_MAX);
	int r = p->batch_line ? buf_printf(&b, "{\"line\":%u,", p->batch_line)
	                      : buf_append_str(&b, "{");
	r = r ?: buf_append_str(&b, "\"result\":") ?: json_string(&b, spf_result_name(o->result));
	r = r ?: json_field(&b, "explanation", text);
	r = r ?: json_field(&b, "identity", identity_name(o->identity));
	r = r ?: json_field(&b, "domain", o->domain);
	r = r ?: json_field(&b, "client_ip", o->client_ip);
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
	if (p->trace_json)
		r = r ?: buf_printf(&b, ",\"trace\":%s", p->trace_json);
	r = r ?: buf_append_str(&b, "}\n");
	if (r < 0)
		return r;
	out_put(buf_cstr(&b), b.len);
	return 0;
}

/* The first line: "RESULT TEXT", in a batch "IP SENDER RESULT TEXT". */
static void
print_first_line(const struct spf_request *req, const struct spf_outcome *o,
                 const struct cmd_spf_print *p, const char *text)
{
	const char *result = spf_result_name(o->result);
	if (p->batch_line) {
		out_put(o->client_ip, strlen(o->client_ip));
		out_char(' ');
		out_text(req->sender && *req->sender ? req->sender : "<>");
		out_char(' ');
	}
	out_put(result, strlen(result));
	if (text[0]) {
		out_char(' ');
		out_text(text);
	}
	out_char('\n');
}

/* The optional lines after the first. */
NOINLINE static void
print_more_lines(const struct spf_request *req, const struct cmd_spf_print *p, const char *received)
{
	char line[SPF_EXPLANATION_MAX + SPF_TEXT_MAX + SPF_HEADER_MAX];
	if (p->pra_header) {
		snprintf(line, sizeof(line), "PRA: %s (%s)", p->pra_addr, p->pra_header);
		print_text(line);
	}
	if (received) {
		out_put("Received-SPF: ", 14);
		out_put(received, strlen(received));
		out_char('\n');
	}
	if (p->authres && p->authres_text) {
		snprintf(line, sizeof(line), "Authentication-Results: %s; %s", req->receiver,
		         p->authres_text);
		print_text(line);
	}
}

static void
print_lines(const struct spf_request *req, const struct spf_outcome *o,
            const struct cmd_spf_print *p, const char *text, const char *received)
{
	print_first_line(req, o, p, text);
	if (p->pra_header || received || (p->authres && p->authres_text))
		print_more_lines(req, p, received);
}

int
cmd_spf_report(const char *verb, const struct spf_request *req, const struct spf_outcome *o,
               const struct cmd_spf_print *p)
{
	char buf[SPF_EXPLANATION_MAX + SPF_TEXT_MAX], received[SPF_HEADER_MAX];
	bool have_received = p->received_spf && spf_header_received(req, o, req->receiver, received,
	                                                            sizeof(received)) == 0;
	const char *text = summary(req, o, buf, sizeof(buf));
	int r = 0;
	if (p->json) {
		r = print_json(o, p, text, have_received ? received : NULL);
		if (r < 0)
			cmd_error(verb, "cannot format the result: %s", strerror(-r));
	} else {
		print_lines(req, o, p, text, have_received ? received : NULL);
	}
	if (!outbuf.hold)
		out_flush();
	return r;
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
	return cmd_dns_parse_duration(verb, "--time-limit", arg, budget_ms);
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

/* A record that does not start with the version would be ignored as not SPF at all (§4.5). */
static int
parse_record(const char *arg, struct spf_cli *o)
{
	size_t len = strlen(arg);
	if (len < 6 || strncasecmp(arg, "v=spf1", 6) != 0 || (arg[6] && arg[6] != ' '))
		return cmd_usage_error(VERB, "--record '%s': not an SPF record (v=spf1 ...)", arg);
	if (len >= DNS_TXT_MAX)
		return cmd_usage_error(VERB, "--record: longer than %d bytes", DNS_TXT_MAX - 1);
	o->record = arg;
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
	case OPT_TRACE:
		o->trace = true;
		return 0;
	case OPT_BATCH:
		o->batch = optarg;
		return 0;
	case OPT_RECORD:
		return parse_record(optarg, o);
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

static int
check_args(int argc, char **argv, struct spf_cli *o)
{
	if (optind < argc)
		return cmd_usage_error(VERB, "unexpected argument '%s'", argv[optind]);
	if (o->batch && (o->have_ip || o->have_sender || o->req.helo))
		return cmd_usage_error(VERB, "--batch takes IP SENDER [HELO] from its lines, not "
		                             "from --ip, --sender or --helo");
	if (o->batch && o->record)
		return cmd_usage_error(VERB, "--record is for one check: not with --batch");
	if (o->batch)
		return cmd_spf_check_names(VERB, NULL, NULL, false, &o->req.receiver, o->receiver,
		                           sizeof(o->receiver));
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
	    {"batch", required_argument, NULL, OPT_BATCH},
	    {"record", required_argument, NULL, OPT_RECORD},
	    {"trace", no_argument, NULL, OPT_TRACE},
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

/* One check and its output; the exit code its result calls for. */
static int
run_check(struct dns_resolver *dns, struct spf_cli *o, struct cmd_spf_trace *tr)
{
	char authres[SPF_HEADER_MAX];
	struct spf_outcome out;
	if (tr)
		cmd_spf_trace_begin(tr);
	int r = spf_eval_check(dns, &o->req, &out);
	if (r < 0) {
		cmd_error(VERB, "cannot check: %s", strerror(-r));
		return CMD_EXIT_USAGE;
	}
	o->print.trace_json = tr ? cmd_spf_trace_end(tr) : NULL;
	if (tr && tr->json && !o->print.trace_json)
		cmd_error(VERB, "the trace is left out: %s", strerror(-tr->err));
	o->print.authres_text = NULL;
	/* printed only with these: a batch of text lines does not build it */
	if ((o->print.json || o->print.authres) &&
	    spf_header_authres(&o->req, &out, authres, sizeof(authres)) == 0)
		o->print.authres_text = authres;
	if (cmd_spf_report(VERB, &o->req, &out, &o->print) < 0)
		return CMD_EXIT_TEMP;
	return cmd_spf_exit(out.result);
}

/* --record: the sender's domain (the HELO name for a null sender) gets this TXT record. */
static int
set_record(struct dns_resolver *dns, const struct spf_cli *o)
{
	const char *at = *o->req.sender ? strrchr(o->req.sender, '@') : NULL;
	const char *domain = !*o->req.sender ? o->req.helo : at ? at + 1 : o->req.sender;
	if (!spf_eval_domain_ok(domain))
		return cmd_usage_error(VERB, "--record: '%s' is not a domain SPF can check",
		                       domain);
	int r = dns_resolver_set_txt(dns, domain, o->record, strlen(o->record));
	if (r < 0) {
		cmd_error(VERB, "--record for %s: %s", domain,
		          r == -EINVAL ? "the zone file has a CNAME there" : strerror(-r));
		return r == -EINVAL ? CMD_EXIT_USAGE : CMD_EXIT_TEMP;
	}
	return 0;
}

/* Length of the field at s: up to a blank or the line's NUL. With SSE2, 16 bytes at a time:
 * the block holding the NUL may extend 15 bytes past it, which batch_in.buf has room for. */
static size_t
field_len(const char *s)
{
#ifdef __SSE2__
	for (size_t i = 0;; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i end = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
		                                        _mm_cmpeq_epi8(v, _mm_setzero_si128())),
		                           _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')),
		                                        _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))));
		unsigned bits = (unsigned)_mm_movemask_epi8(end);
		if (bits)
			return i + (size_t)__builtin_ctz(bits);
	}
#else
	return strcspn(s, " \t\r");
#endif
}

/*
 * Fields of the line (len bytes at s) split in place at blanks, with their lengths; 5 when
 * there are more than 4; -1 when the line holds a NUL byte (the text after it would be lost).
 */
static int
split_fields(char *s, size_t len, char *f[5], size_t flen[5])
{
	const char *end = s + len;
	int n = 0;
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (!*s)
			return s < end ? -1 : n;
		if (n == 5)
			return n;
		f[n] = s;
		flen[n] = field_len(s);
		s += flen[n++];
		if (*s)
			*s++ = '\0';
	}
}

/*
 * A dotted quad exactly as net_addr_parse takes it (no leading zeros, nothing around it),
 * most lines of a mail log, without its general path (copy, port split, inet_pton); false:
 * anything else, left to net_addr_parse.
 */
static bool
parse_ipv4(const char *s, struct net_addr *ip)
{
	unsigned char b[4];
	for (size_t i = 0; i < 4; i++) {
		unsigned v = (unsigned char)s[0] - '0', k = 1;
		if (v > 9)
			return false;
		for (; k < 3 && (unsigned char)(s[k] - '0') <= 9; k++)
			v = v * 10 + (unsigned)(s[k] - '0');
		if (v > 255 || (k > 1 && s[0] == '0') || s[k] != (i < 3 ? '.' : '\0'))
			return false;
		b[i] = (unsigned char)v;
		s += k + 1;
	}
	*ip = (struct net_addr){.family = AF_INET};
	memcpy(&ip->u.v4, b, sizeof(b));
	return true;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Groups of 1..4 hex digits at s, each followed by ':' (or "::", at most once) or the end;
 * false at anything else. *gap: the group count before "::", or -1 when there is none. */
static bool
ipv6_groups(const char *s, uint16_t g[8], int *n, int *gap)
{
	*n = 0;
	*gap = -1;
	if (s[0] == ':') {
		if (s[1] != ':')
			return false;
		*gap = 0;
		s += 2;
	}
	while (*s) {
		unsigned v = 0, k = 0;
		for (; k < 4 && hex_value(s[k]) >= 0; k++)
			v = v * 16 + (unsigned)hex_value(s[k]);
		if (k == 0 || *n == 8 || (s[k] && s[k] != ':'))
			return false;
		g[(*n)++] = (uint16_t)v;
		s += k;
		if (*s && *++s == ':') {
			if (*gap >= 0)
				return false;
			*gap = *n;
			s++;
		} else if (!*s && s[-1] == ':') {
			return false;
		}
	}
	return *gap < 0 ? *n == 8 : *n < 8;
}

/*
 * An IPv6 address in the plain forms (hex groups, one "::"), as net_addr_parse takes them,
 * without its general path (copy, port split, inet_pton, whose hex digits are looked up with
 * strchr); false: anything else (an IPv4 tail included), left to net_addr_parse.
 */
static bool
parse_ipv6(const char *s, struct net_addr *ip)
{
	uint16_t g[8];
	int n, gap;
	if (!ipv6_groups(s, g, &n, &gap))
		return false;
	*ip = (struct net_addr){.family = AF_INET6};
	for (int i = 0; i < n; i++) {
		int at = gap >= 0 && i >= gap ? 8 - n + i : i;
		ip->u.bytes[2 * at] = (uint8_t)(g[i] >> 8);
		ip->u.bytes[2 * at + 1] = (uint8_t)g[i];
	}
	return true;
}

/* A bad --batch line, named by its number. Returns -EINVAL. */
COLD __attribute__((format(printf, 3, 4))) static int
bad_line(const struct spf_cli *o, unsigned no, const char *fmt, ...)
{
	char msg[BATCH_LINE_MAX + 128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cmd_error(VERB, "%s:%u: %s", o->batch, no, msg);
	return -EINVAL;
}

/* "<>" is the null reverse-path of a log line (spfquery -file has no empty field). */
static int
batch_parse(char **f, const size_t *flen, int n, unsigned no, struct spf_cli *o)
{
	if (n < 0)
		return bad_line(o, no, "a NUL byte in the line");
	if (n < 2 || n > 4)
		return bad_line(o, no, "expected IP SENDER [HELO [RCPT-TO]]");
	if (!parse_ipv4(f[0], &o->req.ip) && !parse_ipv6(f[0], &o->req.ip) &&
	    net_addr_parse(f[0], NET_PORT_NONE, &o->req.ip) < 0)
		return bad_line(o, no, "'%s': not an IPv4 or IPv6 address", f[0]);
	o->req.sender = strcmp(f[1], "<>") == 0 ? "" : f[1];
	o->req.helo = n > 2 ? f[2] : NULL;
	if (!*o->req.sender && !o->req.helo)
		return bad_line(o, no, "a null sender (<>) needs a HELO name");
	if (flen[1] >= SPF_SENDER_MAX || (n > 2 && flen[2] >= SPF_SENDER_MAX))
		return bad_line(o, no, "sender or HELO longer than %d bytes", SPF_SENDER_MAX - 1);
	return 0;
}

/* --batch input, read in large blocks; each line is NUL-terminated in place. */
struct batch_in {
	int fd, err;
	bool eof;
	size_t start, end;
	/* more than a line of BATCH_LINE_MAX, its newline and a NUL, and BATCH_SLACK bytes
	 * after the data that field_len may read */
	char buf[(1u << 16) + BATCH_SLACK];
};

/* More input after what is left: 0, or -1 with err set. At the end, eof. */
static int
batch_fill(struct batch_in *in)
{
	memmove(in->buf, in->buf + in->start, in->end - in->start);
	in->end -= in->start;
	in->start = 0;
	for (;;) {
		ssize_t n =
		    read(in->fd, in->buf + in->end, sizeof(in->buf) - BATCH_SLACK - 1 - in->end);
		if (n >= 0) {
			in->end += (size_t)n;
			in->eof = n == 0;
			return 0;
		}
		if (errno != EINTR) {
			in->err = errno;
			return -1;
		}
	}
}

/* Drops the rest of an over-long line, its newline included. */
static int
batch_skip(struct batch_in *in)
{
	for (;;) {
		char *nl = memchr(in->buf + in->start, '\n', in->end - in->start);
		in->start = nl ? (size_t)(nl + 1 - in->buf) : in->end;
		if (nl || in->eof)
			return 0;
		if (batch_fill(in) < 0)
			return -1;
	}
}

/* 1: *line is the next line (*len bytes, no newline); 2: the line was over-long and is
 * skipped; 0: the end; -1: a read error (in->err). */
static int
batch_next(struct batch_in *in, char **line, size_t *len)
{
	for (;;) {
		char *s = in->buf + in->start, *nl = memchr(s, '\n', in->end - in->start);
		size_t n = nl ? (size_t)(nl - s) : in->end - in->start;
		if (n > BATCH_LINE_MAX)
			return batch_skip(in) < 0 ? -1 : 2;
		if (nl || (in->eof && n)) {
			s[n] = '\0';
			in->start += n + (nl != NULL);
			*line = s;
			*len = n;
			return 1;
		}
		if (in->eof)
			return 0;
		if (batch_fill(in) < 0)
			return -1;
	}
}

/* One line: 0 checked or blank, 1 bad, 3 a temperror. */
static int
batch_line(char *line, size_t len, unsigned no, struct spf_cli *o, struct dns_resolver *dns,
           struct cmd_spf_trace *tr)
{
	char *f[5] = {NULL};
	size_t flen[5];
	int n = split_fields(line, len, f, flen);
	if (n == 0 || (f[0] && f[0][0] == '#'))
		return 0;
	if (batch_parse(f, flen, n, no, o) < 0)
		return 1;
	o->print.batch_line = no;
	return run_check(dns, o, tr) == CMD_EXIT_TEMP ? 3 : 0;
}

/* Exit code: 2 when a line was bad, else 3 when a check was a temperror, else 0. */
NOINLINE static int
run_batch(struct batch_in *in, struct dns_resolver *dns, struct spf_cli *o,
          struct cmd_spf_trace *tr)
{
	bool bad = false, temp = false;
	unsigned no = 0;
	char *line;
	size_t len;
	int r;
	while ((r = batch_next(in, &line, &len)) > 0) {
		no++;
		if (r == 2) {
			bad_line(o, no, "longer than %d bytes", BATCH_LINE_MAX);
			bad = true;
			continue;
		}
		r = batch_line(line, len, no, o, dns, tr);
		bad |= r == 1;
		temp |= r == 3;
	}
	if (r < 0) {
		cmd_error(VERB, "%s: %s", o->batch, strerror(in->err));
		return CMD_EXIT_TEMP;
	}
	return bad ? CMD_EXIT_USAGE : temp ? CMD_EXIT_TEMP : CMD_EXIT_OK;
}

static int
batch(struct dns_resolver *dns, struct spf_cli *o, struct cmd_spf_trace *tr)
{
	static struct batch_in in;
	outbuf.hold = !isatty(STDOUT_FILENO);
	bool std = strcmp(o->batch, "-") == 0;
	in.fd = std ? STDIN_FILENO : open(o->batch, O_RDONLY | O_CLOEXEC);
	if (in.fd < 0) {
		cmd_error(VERB, "--batch %s: %s", o->batch, strerror(errno));
		return CMD_EXIT_USAGE;
	}
	int r = run_batch(&in, dns, o, tr);
	out_flush();
	if (!std)
		close(in.fd);
	return r;
}

int
cmd_spf(int argc, char **argv)
{
	_cleanup_buf_ struct buf trace_out = BUF_INIT(TRACE_JSON_MAX);
	_cleanup_(spf_record_cache_freep) struct spf_record_cache *records = NULL;
	struct dns_resolver *dns = NULL;
	struct spf_cli o;
	int r = parse_args(argc, argv, &o);
	if (r != 0)
		return r;
	struct cmd_spf_trace tr = {.json = o.print.json, .out = &trace_out};
	if (o.trace) {
		o.req.trace = cmd_spf_trace_cb;
		o.req.trace_arg = &tr;
	}
	if ((r = cmd_dns_open(VERB, &o.dns, &dns)) != 0)
		return r;
	/* a batch parses each policy once, as the milter does; made after the zone is loaded,
	 * whose freed buffers it reuses, so that the checks' answers come from the heap's top */
	if (o.batch && spf_record_cache_new(1024, &records) == 0)
		o.req.cache = records;
	if (o.record && (r = set_record(dns, &o)) != 0) {
		dns_resolver_free(dns);
		return r;
	}
	r = o.batch ? batch(dns, &o, o.trace ? &tr : NULL)
	            : run_check(dns, &o, o.trace ? &tr : NULL);
	dns_resolver_free(dns);
	return r;
}
