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
sign_option(int c, int argc, char **argv, void *opts)
{
	struct sign_opts *o = opts;
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
	    CMD_DKIM_SIGN_LONGOPTS(OPT_HEADERS),
	    {0},
	};
	int r = cmd_dkim_sign_getopt(VERB, argc, argv, longopts, sign_option, o);
	if (r != CMD_EXIT_OK)
		return r;
	if (!o->domain || !o->selector || !o->keyfile)
		return cmd_usage_error(VERB, "sign needs --domain, --selector and --key");
	return CMD_EXIT_OK;
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
signer_header(void *signer, const struct rfc5322_header *h)
{
	return dk_sign_header(signer, h);
}

static int
signer_body(void *signer, const char *data, size_t len)
{
	return dk_sign_body(signer, data, len);
}

static int
signer_finish(void *signer, const struct rfc5322_header *h, const char *eol, struct buf *fields)
{
	(void)h;
	return dk_sign_finish(signer, eol, fields);
}

static int
sign_message(const struct sign_opts *o, const struct dkim_key_private *k)
{
	static const struct cmd_dkim_signer ops = {
	    .header = signer_header, .body = signer_body, .finish = signer_finish};
	struct dk_sign *signer = NULL;
	int r = sign_new(o, k, &signer);
	if (r == CMD_EXIT_OK)
		r = cmd_dkim_sign_message(VERB, &ops, signer);
	dk_sign_free(signer);
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
verifier_create(struct dns_resolver *res, size_t max_signatures, int64_t now, void **out)
{
	const struct dk_verify_opts vo = {.max_signatures = max_signatures};
	struct dk_verify *v = NULL;
	int r = dk_verify_new(&vo, res, &v);
	(void)now; /* DomainKeys signatures carry no times */
	*out = v;
	return r;
}

CMD_DKIM_VERIFIER(verifier, dk, true, verifier_create);

int
cmd_dk(int argc, char **argv)
{
	if (argc < 2)
		return cmd_usage_error(VERB, "give a command: sign or verify");
	if (strcmp(argv[1], "sign") == 0)
		return dk_sign_cmd(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_dkim_verify(VERB, &verifier, argc - 1, argv + 1);
	return cmd_usage_error(VERB, "unknown command '%s': sign or verify", argv[1]);
}
