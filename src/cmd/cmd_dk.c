/* rampart dk sign|verify: DomainKeys (RFC 4870) through src/mail/dk_*; shares cmd_dkim_*. */
#include "cmd.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "mail/dk_sign.h"
#include "mail/dk_verify.h"
#include "mail/dkim_key.h"
#include "mail/rfc5322.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define VERB "dk"

enum {
	OPT_HEADERS = 0x100,
};

struct sign_opts {
	const char *domain, *selector, *keyfile;
	enum dkim_canon canon;
	char **headers;
};

static int
sign_option(int c, int argc, char **argv, struct sign_opts *o)
{
	switch (c) {
	case 'd':
		o->domain = optarg;
		return 0;
	case 's':
		o->selector = optarg;
		return 0;
	case 'k':
		o->keyfile = optarg;
		return 0;
	case 'c':
		if (strcmp(optarg, "nofws") != 0 && strcmp(optarg, "simple") != 0)
			return cmd_usage_error(VERB, "--canon '%s': nofws or simple", optarg);
		o->canon = optarg[0] == 'n' ? DK_CANON_NOFWS : DK_CANON_SIMPLE;
		return 0;
	case OPT_HEADERS:
		cmd_dkim_free_names(o->headers);
		o->headers = NULL;
		return cmd_dkim_split_names(VERB, "--headers", optarg, &o->headers);
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

static int
sign_args(int argc, char **argv, struct sign_opts *o)
{
	static const struct option longopts[] = {
	    {"domain", required_argument, NULL, 'd'},
	    {"selector", required_argument, NULL, 's'},
	    {"key", required_argument, NULL, 'k'},
	    {"canon", required_argument, NULL, 'c'},
	    {"headers", required_argument, NULL, OPT_HEADERS},
	    {0},
	};
	int c, r;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:d:s:k:c:", longopts, NULL)) != -1)
		if ((r = sign_option(c, argc, argv, o)) != 0)
			return r;
	if (optind < argc)
		return cmd_usage_error(VERB, "unexpected argument '%s'", argv[optind]);
	if (!o->domain || !o->selector || !o->keyfile)
		return cmd_usage_error(VERB, "sign needs --domain, --selector and --key");
	return CMD_EXIT_OK;
}

struct sign_run {
	struct dk_sign *signer;
	struct cmd_dkim_spool spool;
};

static int
sign_raw(void *ctx, const char *data, size_t len)
{
	return cmd_dkim_spool_raw(&((struct sign_run *)ctx)->spool, data, len);
}

static int
sign_header(void *ctx, const struct rfc5322_header *h)
{
	return dk_sign_header(((struct sign_run *)ctx)->signer, h);
}

static int
sign_body(void *ctx, const char *data, size_t len)
{
	return dk_sign_body(((struct sign_run *)ctx)->signer, data, len);
}

static int
sign_new(const struct sign_opts *o, const struct dkim_key_private *k, struct dk_sign **out)
{
	const struct dk_sign_opts so = {
	    .domain = o->domain,
	    .selector = o->selector,
	    .key = k,
	    .canon = o->canon,
	    .headers = (const char *const *)o->headers,
	};
	if (k->type != DKIM_KEY_RSA)
		return cmd_usage_error(VERB, "%s: DomainKeys signs with RSA keys only", o->keyfile);
	int r = dk_sign_new(&so, out);
	if (r == -EINVAL)
		return cmd_usage_error(VERB, "'%s' or '%s': not a domain name", o->domain,
		                       o->selector);
	if (r < 0) {
		cmd_error(VERB, "cannot sign: %s", strerror(-r));
		return CMD_EXIT_USAGE;
	}
	return CMD_EXIT_OK;
}

static int
sign_message(const struct sign_opts *o, const struct dkim_key_private *k)
{
	struct sign_run run = {0};
	struct rfc5322_header h;
	_cleanup_buf_ struct buf field = BUF_INIT(1u << 20);
	const struct rfc5322_read_ops ops = {
	    .raw = sign_raw, .header = sign_header, .body = sign_body};
	rfc5322_header_init(&h, 0, 0);
	int r = sign_new(o, k, &run.signer);
	if (r == CMD_EXIT_OK)
		r = cmd_dkim_spool_open(VERB, &run.spool);
	if (r == CMD_EXIT_OK)
		r = cmd_dkim_read_message(VERB, &h, &ops, &run);
	if (r == CMD_EXIT_OK && h.n == 0) {
		cmd_error(VERB, "the input has no header fields: not a message");
		r = CMD_EXIT_USAGE;
	}
	if (r == CMD_EXIT_OK && dk_sign_finish(run.signer, h.lf_only ? "\n" : "\r\n", &field) < 0) {
		cmd_error(VERB, "signing failed");
		r = CMD_EXIT_TEMP;
	}
	if (r == CMD_EXIT_OK)
		r = cmd_dkim_spool_emit(VERB, &run.spool, &field);
	cmd_dkim_spool_close(&run.spool);
	dk_sign_free(run.signer);
	rfc5322_header_free(&h);
	return r;
}

static int
dk_sign_cmd(int argc, char **argv)
{
	struct sign_opts o = {.canon = DK_CANON_NOFWS};
	_cleanup_(dkim_key_private_clear) struct dkim_key_private k = {0};
	int r = sign_args(argc, argv, &o);
	if (r == CMD_EXIT_OK)
		r = cmd_dkim_load_key(VERB, o.keyfile, &k);
	if (r == CMD_EXIT_OK)
		r = sign_message(&o, &k);
	cmd_dkim_free_names(o.headers);
	return r;
}

static int
verify_header(void *ctx, const struct rfc5322_header *h)
{
	return dk_verify_header(ctx, h);
}

static int
verify_body(void *ctx, const char *data, size_t len)
{
	return dk_verify_body(ctx, data, len);
}

static int
print_results(const struct dk_verify *v, bool json)
{
	size_t n = dk_verify_count(v);
	_cleanup_free_ const struct dkim_sig_result **list = calloc(n + 1, sizeof(*list));
	if (!list) {
		cmd_error(VERB, "out of memory");
		return CMD_EXIT_TEMP;
	}
	for (size_t i = 0; i < n; i++)
		list[i] = dk_verify_result(v, i);
	return cmd_dkim_print_results(VERB, list, n, dk_verify_ignored(v), json, true);
}

static int
verify_message(struct dns_resolver *res, const struct dk_verify_opts *vo, bool json)
{
	struct dk_verify *v = NULL;
	struct rfc5322_header h;
	const struct rfc5322_read_ops ops = {.header = verify_header, .body = verify_body};
	rfc5322_header_init(&h, 0, 0);
	int r = dk_verify_new(vo, res, &v) < 0 ? CMD_EXIT_TEMP : CMD_EXIT_OK;
	if (r == CMD_EXIT_OK)
		r = cmd_dkim_read_message(VERB, &h, &ops, v);
	if (r == CMD_EXIT_OK && dk_verify_finish(v) < 0) {
		cmd_error(VERB, "verification failed: out of memory or OpenSSL error");
		r = CMD_EXIT_TEMP;
	}
	if (r == CMD_EXIT_OK)
		r = print_results(v, json);
	dk_verify_free(v);
	rfc5322_header_free(&h);
	return r;
}

static int
dk_verify_cmd(int argc, char **argv)
{
	struct cmd_dns_opts dns;
	struct dk_verify_opts vo = {0};
	struct dns_resolver *res = NULL;
	bool json;
	int64_t now;
	int r = cmd_dkim_verify_args(VERB, argc, argv, &dns, &json, &vo.max_signatures, &now);
	if (r == CMD_EXIT_OK)
		r = cmd_dns_open(VERB, &dns, &res);
	if (r == CMD_EXIT_OK)
		r = verify_message(res, &vo, json);
	dns_resolver_free(res);
	return r;
}

int
cmd_dk(int argc, char **argv)
{
	if (argc < 2)
		return cmd_usage_error(VERB, "give a command: sign or verify");
	if (strcmp(argv[1], "sign") == 0)
		return dk_sign_cmd(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return dk_verify_cmd(argc - 1, argv + 1);
	return cmd_usage_error(VERB, "unknown command '%s': sign or verify", argv[1]);
}
