/*
 * rampart mail setup: the DKIM keys of a domain (made once, reused after), the DNS records to
 * publish (src/mail/mail_setup), and the rampart and Postfix configuration lines.
 */
#include "cmd.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "mail/dkim_key.h"
#include "mail/dkim_sign.h"
#include "mail/mail_setup.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERB "mail setup"
#define KEY_PEM_MAX (64 * 1024)
#define RECORD_MAX 4096
#define RECORDS_MAX (64 * 1024)
#define CONF_MAX (16 * 1024)

enum {
	OPT_IP = 0x100,
	OPT_MX,
	OPT_TYPE,
	OPT_SOFTFAIL,
	OPT_RUA,
	OPT_OUT,
};

enum { TYPE_RSA = 1, TYPE_ED25519 = 2, TYPE_BOTH = 3 };

struct setup_key {
	char selector[DNS_NAME_MAX];
	char path[PATH_MAX];
	char what[32];
	enum dkim_key_type type;
	struct buf record;
};

struct setup_opts {
	struct mail_setup s;
	char domain[DNS_NAME_MAX];
	const char *selector, *out;
	char dir[PATH_MAX];
	int type;
	struct setup_key keys[MAIL_SETUP_KEYS_MAX];
};

/* "example.com." is example.com: the names are made absolute in the output anyway. */
static int
take_name(const char *what, const char *arg, char *out, size_t size)
{
	size_t len = strlen(arg);
	if (len > 0 && arg[len - 1] == '.')
		len--;
	if (len >= size)
		return cmd_usage_error(VERB, "%s '%s': not a domain name", what, arg);
	for (size_t i = 0; i < len; i++)
		out[i] = (char)(arg[i] >= 'A' && arg[i] <= 'Z' ? arg[i] + 32 : arg[i]);
	out[len] = '\0';
	if (!mail_setup_valid_domain(out))
		return cmd_usage_error(VERB, "%s '%s': not a domain name", what, arg);
	return CMD_EXIT_OK;
}

static int
add_mx(struct setup_opts *o, const char *arg)
{
	if (o->s.n_mx == MAIL_SETUP_MX_MAX)
		return cmd_usage_error(VERB, "more than %d --mx hosts", MAIL_SETUP_MX_MAX);
	char *host = malloc(DNS_NAME_MAX);
	if (!host)
		return cmd_usage_error(VERB, "out of memory");
	o->s.mx[o->s.n_mx++] = host;
	return take_name("--mx", arg, host, DNS_NAME_MAX);
}

static int
set_type(struct setup_opts *o, const char *arg)
{
	static const char *const names[] = {NULL, "rsa", "ed25519", "both"};
	for (int t = TYPE_RSA; t <= TYPE_BOTH; t++)
		if (!strcmp(arg, names[t])) {
			o->type = t;
			return CMD_EXIT_OK;
		}
	return cmd_usage_error(VERB, "--type '%s': rsa, ed25519 or both", arg);
}

static int
setup_option(int c, int argc, char **argv, struct setup_opts *o)
{
	switch (c) {
	case 'd':
		return take_name("--domain", optarg, o->domain, sizeof(o->domain));
	case 's':
		o->selector = optarg;
		return CMD_EXIT_OK;
	case OPT_IP:
		if (o->s.n_ips == MAIL_SETUP_IPS_MAX)
			return cmd_usage_error(VERB, "more than %d --ip", MAIL_SETUP_IPS_MAX);
		if (!mail_setup_valid_ip(optarg))
			return cmd_usage_error(
			    VERB, "--ip '%s': not an IPv4 or IPv6 address or prefix", optarg);
		o->s.ips[o->s.n_ips++] = optarg;
		return CMD_EXIT_OK;
	case OPT_MX:
		return add_mx(o, optarg);
	case OPT_TYPE:
		return set_type(o, optarg);
	case OPT_SOFTFAIL:
		o->s.softfail = true;
		return CMD_EXIT_OK;
	case OPT_RUA:
		if (!mail_setup_valid_rua(optarg))
			return cmd_usage_error(VERB, "--rua '%s': not a mail address", optarg);
		o->s.rua = optarg;
		return CMD_EXIT_OK;
	case OPT_OUT:
		o->out = optarg;
		return CMD_EXIT_OK;
	case 'h':
		return -1;
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

/* The selectors: S for the RSA key (or the only one), S-ed25519 for the second of both. */
static int
setup_selectors(struct setup_opts *o)
{
	const char *sel = o->selector ? o->selector : MAIL_SETUP_SELECTOR_DEFAULT;
	o->s.n_keys = o->type == TYPE_BOTH ? 2 : 1;
	for (size_t i = 0; i < o->s.n_keys; i++) {
		struct setup_key *k = &o->keys[i];
		char full[DNS_NAME_MAX + 64];
		k->type = o->type == TYPE_ED25519 || i == 1 ? DKIM_KEY_ED25519 : DKIM_KEY_RSA;
		snprintf(k->selector, sizeof(k->selector), "%s%s", sel,
		         i == 1 ? MAIL_SETUP_ED25519_SUFFIX : "");
		snprintf(full, sizeof(full), "%s._domainkey.%s", k->selector, o->domain);
		if (!dkim_sign_valid_name(k->selector) || strlen(full) > 253)
			return cmd_usage_error(VERB, "--selector '%s': not a selector for %s", sel,
			                       o->domain);
		o->s.keys[i].selector = k->selector;
		o->s.keys[i].path = k->path;
		o->s.keys[i].what = k->what;
	}
	return CMD_EXIT_OK;
}

static int
setup_dir(struct setup_opts *o)
{
	struct stat st;
	const char *out = o->out ? o->out : ".";
	if (!realpath(out, o->dir) || stat(o->dir, &st) < 0)
		return cmd_usage_error(VERB, "--out '%s': %s", out, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return cmd_usage_error(VERB, "--out '%s': not a directory", out);
	if (access(o->dir, W_OK | X_OK) < 0)
		return cmd_usage_error(VERB, "--out '%s': not writable: %s", out, strerror(errno));
	for (size_t i = 0; i < o->s.n_keys; i++)
		if (snprintf(o->keys[i].path, sizeof(o->keys[i].path), "%s/%s.private", o->dir,
		             o->keys[i].selector) >= (int)sizeof(o->keys[i].path))
			return cmd_usage_error(VERB, "--out '%s': path too long", out);
	return CMD_EXIT_OK;
}

static int
setup_check_spf(const struct setup_opts *o)
{
	_cleanup_buf_ struct buf spf = BUF_INIT(RECORDS_MAX);
	size_t lookups = 0;
	int r = mail_setup_spf(&o->s, &spf, &lookups);
	if (r == -E2BIG)
		return cmd_usage_error(
		    VERB,
		    "the SPF record would make %zu DNS lookups; receivers allow %d "
		    "(RFC 7208 §4.6.4): give --ip addresses for some --mx hosts",
		    lookups, MAIL_SETUP_SPF_LOOKUPS_MAX);
	if (r < 0)
		return cmd_usage_error(VERB, "cannot build the SPF record: %s", strerror(-r));
	return CMD_EXIT_OK;
}

static int
setup_args(int argc, char **argv, struct setup_opts *o)
{
	static const struct option longopts[] = {
	    {"domain", required_argument, NULL, 'd'},
	    {"selector", required_argument, NULL, 's'},
	    {"ip", required_argument, NULL, OPT_IP},
	    {"mx", required_argument, NULL, OPT_MX},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"softfail", no_argument, NULL, OPT_SOFTFAIL},
	    {"rua", required_argument, NULL, OPT_RUA},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c, r;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:d:s:h", longopts, NULL)) != -1)
		if ((r = setup_option(c, argc, argv, o)) != CMD_EXIT_OK)
			return r;
	if (optind < argc)
		return cmd_usage_error(VERB, "unexpected argument '%s'", argv[optind]);
	if (!o->domain[0])
		return cmd_usage_error(VERB, "needs --domain");
	o->s.domain = o->domain;
	return setup_selectors(o) ?: setup_dir(o) ?: setup_check_spf(o);
}

/* An existing key file is used as it is, whatever it holds, as long as it is a key of the
 * type asked for: it may already be published. */
static int
key_load(const struct setup_key *k, struct dkim_key_private *pk)
{
	int r = cmd_dkim_load_key(VERB, k->path, pk);
	if (r != CMD_EXIT_OK)
		return r;
	if (pk->type != k->type) {
		cmd_error(VERB, "%s is an %s key, not %s: remove it or choose another --selector",
		          k->path, pk->type == DKIM_KEY_RSA ? "RSA" : "Ed25519",
		          k->type == DKIM_KEY_RSA ? "RSA" : "Ed25519");
		return CMD_EXIT_USAGE;
	}
	return CMD_EXIT_OK;
}

static int
key_make(const struct setup_opts *o, const struct setup_key *k, struct dkim_key_private *pk,
         bool *reused)
{
	_cleanup_buf_ struct buf pem = BUF_INIT(KEY_PEM_MAX);
	const char *name = strrchr(k->path, '/') + 1;
	if (dkim_key_private_generate(k->type, DKIM_KEY_RSA_WARN, pk) < 0 ||
	    dkim_key_private_pem(pk, &pem) < 0) {
		cmd_error(VERB, "key generation failed");
		return CMD_EXIT_TEMP;
	}
	int r = mail_setup_write_file(o->dir, name, &pem, 0600, false);
	if (r == -EEXIST) {
		/* made by someone else since we looked: theirs wins */
		dkim_key_private_clear(pk);
		*reused = true;
		return key_load(k, pk);
	}
	if (r < 0) {
		cmd_error(VERB, "%s: %s", k->path, strerror(-r));
		return CMD_EXIT_USAGE;
	}
	return CMD_EXIT_OK;
}

static int
setup_key(const struct setup_opts *o, struct setup_key *k, struct mail_setup_key *sk)
{
	_cleanup_(dkim_key_private_clear) struct dkim_key_private pk = {0};
	struct stat st;
	int r;
	sk->reused = lstat(k->path, &st) == 0;
	if (!sk->reused && errno != ENOENT) {
		cmd_error(VERB, "%s: %s", k->path, strerror(errno));
		return CMD_EXIT_USAGE;
	}
	r = sk->reused ? key_load(k, &pk) : key_make(o, k, &pk, &sk->reused);
	if (r != CMD_EXIT_OK)
		return r;
	if (pk.type == DKIM_KEY_RSA)
		snprintf(k->what, sizeof(k->what), "RSA %u-bit", pk.bits);
	else
		snprintf(k->what, sizeof(k->what), "Ed25519");
	k->record = BUF_INIT(RECORD_MAX);
	if (dkim_key_private_record(&pk, &k->record) < 0) {
		cmd_error(VERB, "%s: cannot make its DNS record", k->path);
		return CMD_EXIT_TEMP;
	}
	sk->record = buf_cstr(&k->record);
	return CMD_EXIT_OK;
}

static int
write_conf(const struct setup_opts *o, const char *name,
           int (*make)(const struct mail_setup *, struct buf *))
{
	_cleanup_buf_ struct buf text = BUF_INIT(CONF_MAX);
	int r = make(&o->s, &text);
	if (r == 0)
		r = mail_setup_write_file(o->dir, name, &text, 0644, true);
	if (r < 0)
		cmd_error(VERB, "%s/%s: %s", o->dir, name,
		          r == -EINVAL ? "the key path cannot be written in YAML" : strerror(-r));
	return r < 0 ? CMD_EXIT_USAGE : CMD_EXIT_OK;
}

static int
postfix_text(const struct mail_setup *s, struct buf *out)
{
	(void)s;
	return mail_setup_postfix(out);
}

static int
setup_run(struct setup_opts *o)
{
	_cleanup_buf_ struct buf records = BUF_INIT(RECORDS_MAX);
	int r = CMD_EXIT_OK;
	for (size_t i = 0; i < o->s.n_keys && r == CMD_EXIT_OK; i++)
		r = setup_key(o, &o->keys[i], &o->s.keys[i]);
	if (r != CMD_EXIT_OK)
		return r;
	if ((r = mail_setup_records(&o->s, &records)) < 0) {
		cmd_error(VERB, "cannot write the records: %s", strerror(-r));
		return CMD_EXIT_USAGE;
	}
	if ((r = write_conf(o, MAIL_SETUP_YAML, mail_setup_yaml)) != CMD_EXIT_OK ||
	    (r = write_conf(o, MAIL_SETUP_POSTFIX, postfix_text)) != CMD_EXIT_OK)
		return r;
	if (fwrite(records.data, 1, records.len, stdout) != records.len || fflush(stdout) != 0) {
		cmd_error(VERB, "printing the records: %s", strerror(errno));
		return CMD_EXIT_TEMP;
	}
	return CMD_EXIT_OK;
}

static void
setup_free(struct setup_opts *o)
{
	for (size_t i = 0; i < o->s.n_mx; i++)
		free((char *)o->s.mx[i]);
	for (size_t i = 0; i < MAIL_SETUP_KEYS_MAX; i++)
		buf_free(&o->keys[i].record);
}

int
cmd_mail_setup(int argc, char **argv)
{
	_cleanup_(setup_free) struct setup_opts o = {.type = TYPE_RSA};
	int r = setup_args(argc, argv, &o);
	if (r < 0)
		return cmd_print_usage("mail");
	return r != CMD_EXIT_OK ? r : setup_run(&o);
}
