/*
 * rampart dkim keygen|sign|verify: the command side of src/mail/dkim_*. Also the helpers the
 * dk verb shares (cmd_dkim_*): loading keys, spooling the message being signed, printing
 * results.
 */
#include "cmd.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/cleanup.h"
#include "core/file.h"
#include "mail/dkim_key.h"
#include "mail/dkim_result.h"
#include "mail/dkim_sign.h"
#include "mail/dkim_verify.h"
#include "mail/mail_setup.h"
#include "mail/rfc5322.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERB "dkim"
/* a PEM private key of 4096 bits is 3.3 KB */
#define KEY_FILE_MAX (64 * 1024)

enum {
	OPT_HEADERS = 0x100,
	OPT_OVERSIGN,
	OPT_IDENTITY,
	OPT_LENGTH,
	OPT_EXPIRE,
	OPT_TIMESTAMP,
	OPT_JSON,
	OPT_MAX_SIGS,
	OPT_TIME,
	OPT_TYPE,
	OPT_BITS,
	OPT_OUT,
	OPT_FORCE,
	OPT_TESTING,
	OPT_SERVICE,
	OPT_NOTE,
	OPT_RELATIVE,
	OPT_TRUST_ANCHOR,
};

/* Output: everything or nothing, whatever write(2) does in pieces. */
static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
cmd_dkim_load_key(const char *verb, const char *path, struct dkim_key_private *k)
{
	_cleanup_free_ char *pem = NULL;
	size_t len = 0;
	/* file_read_path refuses a FIFO or a device: a key never comes from one that blocks */
	int r = file_read_path(path, KEY_FILE_MAX, &pem, &len);
	if (r < 0) {
		cmd_error(verb, "%s: %s", path,
		          r == -EFBIG    ? "too large for a key"
		          : r == -EINVAL ? "not a regular file (a FIFO or a device is not read)"
		                         : strerror(-r));
		return CMD_EXIT_USAGE;
	}
	r = dkim_key_private_load(pem, len, k);
	OPENSSL_cleanse(pem, len);
	if (r == -EOPNOTSUPP || r == -EINVAL) {
		cmd_error(verb, "%s: %s", path,
		          r == -EINVAL ? "not a PEM private key (or an encrypted one)"
		                       : "not an RSA or Ed25519 key");
		return CMD_EXIT_USAGE;
	}
	if (r < 0) {
		cmd_error(verb, "%s: %s", path, strerror(-r));
		return CMD_EXIT_USAGE;
	}
	if (k->type == DKIM_KEY_RSA && (k->bits < DKIM_KEY_RSA_MIN || k->bits > DKIM_KEY_RSA_MAX)) {
		cmd_error(verb, "%s: RSA key of %u bits; DKIM signs with %d to %d", path, k->bits,
		          DKIM_KEY_RSA_MIN, DKIM_KEY_RSA_MAX);
		return CMD_EXIT_USAGE;
	}
	if (k->type == DKIM_KEY_RSA && k->bits < DKIM_KEY_RSA_WARN)
		cmd_error(verb, "warning: %s: RSA key of %u bits; %d or more is recommended", path,
		          k->bits, DKIM_KEY_RSA_WARN);
	return CMD_EXIT_OK;
}

void
cmd_dkim_free_names(char **names)
{
	for (char **n = names; n && *n; n++)
		free(*n);
	free(names);
}

/* "from:to:subject" (colons, commas or spaces) into a NULL-terminated lower-case list. */
int
cmd_dkim_split_names(const char *verb, const char *opt, const char *list, char ***out)
{
	size_t n = 0, cap = strlen(list) / 2 + 2;
	char **v = calloc(cap, sizeof(*v));
	if (!v)
		return cmd_usage_error(verb, "out of memory");
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ":, \t");
		if (len > 0 && n + 1 < cap && !(v[n++] = strndup(p, len))) {
			cmd_dkim_free_names(v);
			return cmd_usage_error(verb, "out of memory");
		}
		for (char *c = len ? v[n - 1] : NULL; c && *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		p += len + (p[len] != '\0');
	}
	for (size_t i = 0; i < n; i++) {
		for (const char *c = v[i]; *c; c++) {
			if ((unsigned char)*c > 32 && (unsigned char)*c < 127)
				continue;
			cmd_dkim_free_names(v);
			return cmd_usage_error(verb, "%s: '%s' is not a list of field names", opt,
			                       list);
		}
	}
	*out = v;
	return CMD_EXIT_OK;
}

/* For file systems without O_TMPFILE: a named file, unlinked at once. */
static int
named_temp(const char *dir)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/rampart-dkim-XXXXXX", dir) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* The message being signed is written out after its signature: stdin itself when it can seek
 * back, else a copy in an unlinked temporary file (bodies can be large). */
int
cmd_dkim_spool_open(const char *verb, struct cmd_dkim_spool *s)
{
	struct stat st;
	*s = (struct cmd_dkim_spool){.fd = -1};
	if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
	    (s->start = lseek(STDIN_FILENO, 0, SEEK_CUR)) >= 0) {
		s->fd = STDIN_FILENO;
		return CMD_EXIT_OK;
	}
	const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	s->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (s->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR))
		s->fd = named_temp(dir);
	if (s->fd < 0) {
		cmd_error(verb, "cannot make a temporary file in %s: %s", dir, strerror(errno));
		return CMD_EXIT_TEMP;
	}
	s->own = true;
	return CMD_EXIT_OK;
}

int
cmd_dkim_spool_raw(struct cmd_dkim_spool *s, const char *data, size_t len)
{
	return s->own ? write_all(s->fd, data, len) : 0;
}

void
cmd_dkim_spool_close(struct cmd_dkim_spool *s)
{
	if (s->own && s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* The signature fields, then the message exactly as read. */
int
cmd_dkim_spool_emit(const char *verb, struct cmd_dkim_spool *s, const struct buf *fields)
{
	_cleanup_free_ char *chunk = malloc(RFC5322_READ_CHUNK);
	int r = chunk ? write_all(STDOUT_FILENO, fields->data, fields->len) : -ENOMEM;
	if (r == 0 && lseek(s->fd, s->start, SEEK_SET) < 0)
		r = -errno;
	while (r == 0) {
		ssize_t n = read(s->fd, chunk, RFC5322_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		r = write_all(STDOUT_FILENO, chunk, (size_t)n);
	}
	if (r < 0) {
		cmd_error(verb, "writing the signed message: %s", strerror(-r));
		return CMD_EXIT_TEMP;
	}
	return CMD_EXIT_OK;
}

int
cmd_dkim_read_message(const char *verb, struct rfc5322_header *h,
                      const struct rfc5322_read_ops *ops, void *ctx)
{
	int r = rfc5322_read_fd(STDIN_FILENO, h, ops, ctx);
	if (r == -E2BIG)
		cmd_error(verb, "the message header is over %zu bytes or %zu fields", h->max_bytes,
		          h->max_fields);
	else if (r < 0)
		cmd_error(verb, "reading the message: %s", strerror(-r));
	return r < 0 ? CMD_EXIT_USAGE : CMD_EXIT_OK;
}

/* Exit 0 when one passes, 3 when every outcome is a temporary error, else 1. */
static int
exit_code(const struct dkim_sig_result *const *res, size_t n)
{
	bool temp = n > 0;
	for (size_t i = 0; i < n; i++) {
		if (res[i]->result == DKIM_RESULT_PASS)
			return CMD_EXIT_OK;
		temp &= res[i]->result == DKIM_RESULT_TEMPERROR;
	}
	return temp ? CMD_EXIT_TEMP : CMD_EXIT_NEGATIVE;
}

int
cmd_dkim_print_results(const char *verb, const struct dkim_sig_result *const *res, size_t n,
                       size_t ignored, bool json, bool dk)
{
	_cleanup_buf_ struct buf out = BUF_INIT(16u << 20);
	struct dkim_sig_result none = {.result = DKIM_RESULT_NONE, .dk = dk};
	int r = json ? buf_append(&out, "[", 1) : 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (json)
			r = (i ? buf_append(&out, ",", 1) : 0) ?: dkim_result_json(res[i], &out);
		else
			r = dkim_result_format(res[i], &out) ?: buf_append(&out, "\n", 1);
	}
	/* no signature: the text says dkim=none, and so does the JSON */
	if (r == 0 && n == 0)
		r = json ? dkim_result_json(&none, &out)
		         : dkim_result_format(&none, &out) ?: buf_append(&out, "\n", 1);
	if (r == 0 && json)
		r = buf_append(&out, "]\n", 2);
	if (r == 0)
		r = write_all(STDOUT_FILENO, out.data, out.len);
	if (r < 0) {
		cmd_error(verb, "printing the results: %s", strerror(-r));
		return CMD_EXIT_TEMP;
	}
	if (ignored)
		cmd_error(verb, "%zu more signatures not checked (--max-signatures)", ignored);
	return exit_code(res, n);
}

int
cmd_dkim_sign_getopt(const char *verb, int argc, char **argv, const struct option *longopts,
                     int (*option)(int c, int argc, char **argv, void *o), void *o)
{
	int c, r;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:d:s:k:", longopts, NULL)) != -1) {
		/* -c is --config in every other verb: a config path must not be read as a
		 * canonicalisation, nor the other way round */
		if (c == '?' && optopt == 'c')
			return cmd_usage_error(verb, "-c is not an option of sign (elsewhere it is "
			                             "--config); write --canon");
		if ((r = option(c, argc, argv, o)) != 0)
			return r;
	}
	if (optind < argc)
		return cmd_usage_error(verb, "unexpected argument '%s'", argv[optind]);
	return CMD_EXIT_OK;
}

struct sign_run {
	const struct cmd_dkim_signer *ops;
	void *signer;
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
	const struct sign_run *run = ctx;
	return run->ops->header(run->signer, h);
}

static int
sign_body(void *ctx, const char *data, size_t len)
{
	const struct sign_run *run = ctx;
	return run->ops->body(run->signer, data, len);
}

/* Only a message is signed: header fields, From among them (RFC 5322 3.6; RFC 6376 5.4 signs
 * it). A line that is no field ("hello world", random bytes) does not count as one. */
static int
check_message(const char *verb, const struct rfc5322_header *h)
{
	if (rfc5322_header_has(h, "From"))
		return CMD_EXIT_OK;
	bool fields = false;
	for (size_t i = 0; i < h->n; i++)
		fields |= h->f[i].name_len > 0;
	cmd_error(verb, "%s",
	          fields
	              ? "the message has no From field (RFC 5322 3.6): the signature must cover it"
	              : "the input has no header fields: not a message");
	return CMD_EXIT_USAGE;
}

int
cmd_dkim_sign_message(const char *verb, const struct cmd_dkim_signer *ops, void *signer)
{
	struct sign_run run = {.ops = ops, .signer = signer};
	struct rfc5322_header h;
	_cleanup_buf_ struct buf fields = BUF_INIT(1u << 20);
	const struct rfc5322_read_ops rops = {
	    .raw = sign_raw, .header = ops->header ? sign_header : NULL, .body = sign_body};
	rfc5322_header_init(&h, 0, 0);
	int r = cmd_dkim_spool_open(verb, &run.spool);
	if (r == CMD_EXIT_OK)
		r = cmd_dkim_read_message(verb, &h, &rops, &run);
	if (r == CMD_EXIT_OK)
		r = check_message(verb, &h);
	if (r == CMD_EXIT_OK && ops->finish(signer, &h, h.lf_only ? "\n" : "\r\n", &fields) < 0) {
		cmd_error(verb, "signing failed");
		r = CMD_EXIT_TEMP;
	}
	if (r == CMD_EXIT_OK)
		r = cmd_dkim_spool_emit(verb, &run.spool, &fields);
	cmd_dkim_spool_close(&run.spool);
	rfc5322_header_free(&h);
	return r;
}

static int
print_verified(const char *verb, const struct cmd_dkim_verifier *ops, const void *v, bool json)
{
	size_t n = 0;
	while (ops->result(v, n))
		n++;
	_cleanup_free_ const struct dkim_sig_result **list = calloc(n + 1, sizeof(*list));
	if (!list) {
		cmd_error(verb, "out of memory");
		return CMD_EXIT_TEMP;
	}
	for (size_t i = 0; i < n; i++)
		list[i] = ops->result(v, i);
	return cmd_dkim_print_results(verb, list, n, ops->ignored(v), json, ops->dk);
}

static int
verify_message(const char *verb, const struct cmd_dkim_verifier *ops, void *v, bool json)
{
	struct rfc5322_header h;
	const struct rfc5322_read_ops rops = {.header = ops->header, .body = ops->body};
	rfc5322_header_init(&h, 0, 0);
	int r = cmd_dkim_read_message(verb, &h, &rops, v);
	if (r == CMD_EXIT_OK && ops->finish(v) < 0) {
		cmd_error(verb, "verification failed: out of memory or OpenSSL error");
		r = CMD_EXIT_TEMP;
	}
	if (r == CMD_EXIT_OK)
		r = print_verified(verb, ops, v, json);
	rfc5322_header_free(&h);
	return r;
}

int
cmd_dkim_verify(const char *verb, const struct cmd_dkim_verifier *ops, int argc, char **argv)
{
	struct cmd_dns_opts dns;
	struct dns_resolver *res = NULL;
	void *v = NULL;
	bool json;
	size_t max;
	int64_t now;
	int r = cmd_dkim_verify_args(verb, argc, argv, &dns, &json, &max, &now);
	if (r == CMD_EXIT_OK)
		r = cmd_dns_open(verb, &dns, &res);
	if (r == CMD_EXIT_OK && ops->create(res, max, now, &v) < 0)
		r = CMD_EXIT_TEMP;
	if (r == CMD_EXIT_OK)
		r = verify_message(verb, ops, v, json);
	if (v)
		ops->destroy(v);
	dns_resolver_free(res);
	return r;
}

/* keygen */

struct keygen_opts {
	const char *selector, *dir;
	char domain[DNS_NAME_MAX + 1];
	enum dkim_key_type type;
	unsigned bits;
	bool bits_given, force, relative;
	struct dkim_key_record_opts rec;
};

/* The domain as DNS compares it: lower case, without the one final dot of an absolute name
 * ("EXAMPLE.COM." is what a zone file says). false: not a domain name. */
static bool
normalise_domain(const char *in, char *out, size_t size)
{
	size_t len = strlen(in);
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len >= size)
		return false;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
	out[len] = '\0';
	return dkim_sign_valid_name(out);
}

/* RSA sizes as OpenSSL makes them and DKIM signs with them: whole bytes, 1024 to 4096. */
static int
parse_bits(const char *arg, unsigned *bits)
{
	int64_t n;
	if (cfg_parse_int(arg, &n) < 0 || n < DKIM_KEY_RSA_MIN || n > DKIM_KEY_RSA_MAX ||
	    n % 8 != 0)
		return cmd_usage_error(VERB,
		                       "--bits '%s': a multiple of 8 from %d to %d (e.g. 2048)",
		                       arg, DKIM_KEY_RSA_MIN, DKIM_KEY_RSA_MAX);
	*bits = (unsigned)n;
	return 0;
}

static int
keygen_record_option(int c, struct keygen_opts *o)
{
	switch (c) {
	case OPT_TESTING:
		o->rec.testing = true;
		return 0;
	case OPT_SERVICE:
		if (strcmp(optarg, "email") != 0 && strcmp(optarg, "*") != 0)
			return cmd_usage_error(VERB, "--service '%s': email or *", optarg);
		o->rec.email_only = optarg[0] == 'e';
		return 0;
	case OPT_NOTE:
		if (strlen(optarg) > DKIM_KEY_NOTE_MAX)
			return cmd_usage_error(VERB, "--note: at most %d bytes", DKIM_KEY_NOTE_MAX);
		o->rec.note = optarg;
		return 0;
	default: /* OPT_RELATIVE */
		o->relative = true;
		return 0;
	}
}

/* --domain and --selector of keygen and testkey: 1 when c was one of them, 0 when not, else
 * CMD_EXIT_USAGE (reported). */
static int
name_option(int c, char domain[DNS_NAME_MAX + 1], const char **selector)
{
	if (c == 's')
		*selector = optarg;
	else if (c != 'd')
		return 0;
	else if (!normalise_domain(optarg, domain, DNS_NAME_MAX + 1))
		return cmd_usage_error(VERB, "--domain '%s': not a domain name", optarg);
	return 1;
}

static int
keygen_option(int c, int argc, char **argv, struct keygen_opts *o)
{
	int r = name_option(c, o->domain, &o->selector);
	if (r != 0)
		return r == 1 ? 0 : r;
	switch (c) {
	case OPT_TYPE:
		if (strcmp(optarg, "rsa") != 0 && strcmp(optarg, "ed25519") != 0)
			return cmd_usage_error(VERB, "--type '%s': rsa or ed25519", optarg);
		o->type = optarg[0] == 'r' ? DKIM_KEY_RSA : DKIM_KEY_ED25519;
		return 0;
	case OPT_BITS:
		o->bits_given = true;
		return parse_bits(optarg, &o->bits);
	case OPT_OUT:
		o->dir = optarg;
		return 0;
	case OPT_FORCE:
		o->force = true;
		return 0;
	case OPT_TESTING:
	case OPT_SERVICE:
	case OPT_NOTE:
	case OPT_RELATIVE:
		return keygen_record_option(c, o);
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

static int
keygen_args(int argc, char **argv, struct keygen_opts *o)
{
	static const struct option longopts[] = {
	    {"domain", required_argument, NULL, 'd'},
	    {"selector", required_argument, NULL, 's'},
	    {"type", required_argument, NULL, OPT_TYPE},
	    {"bits", required_argument, NULL, OPT_BITS},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"testing", no_argument, NULL, OPT_TESTING},
	    {"service", required_argument, NULL, OPT_SERVICE},
	    {"note", required_argument, NULL, OPT_NOTE},
	    {"relative", no_argument, NULL, OPT_RELATIVE},
	    {0},
	};
	int c, r;
	*o = (struct keygen_opts){.dir = ".", .type = DKIM_KEY_RSA, .bits = DKIM_KEY_RSA_WARN};
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:d:s:", longopts, NULL)) != -1)
		if ((r = keygen_option(c, argc, argv, o)) != 0)
			return r;
	if (optind < argc)
		return cmd_usage_error(VERB, "unexpected argument '%s'", argv[optind]);
	if (!o->domain[0] || !o->selector)
		return cmd_usage_error(VERB, "keygen needs --domain and --selector");
	if (!dkim_sign_valid_name(o->selector))
		return cmd_usage_error(VERB, "--selector '%s': not a selector", o->selector);
	if (o->bits_given && o->type == DKIM_KEY_ED25519)
		return cmd_usage_error(VERB, "--bits is for RSA keys; Ed25519 keys have one size");
	return CMD_EXIT_OK;
}

/* "S._domainkey.D. IN TXT ( "..." "..." )": the record in strings of at most 255 bytes. With
 * --relative the owner is "S._domainkey", as opendkim-genkey writes it, for pasting into the
 * zone of D (whose $ORIGIN completes it). */
static int
zone_line(const struct keygen_opts *o, const struct buf *record, struct buf *out)
{
	char name[2 * DNS_NAME_MAX + 16];
	_cleanup_buf_ struct buf abs = BUF_INIT(out->max);
	int n = snprintf(name, sizeof(name), "%s._domainkey.%s", o->selector, o->domain);
	int r = mail_setup_txt(name, buf_cstr(record), o->relative ? &abs : out);
	if (r < 0 || !o->relative)
		return r;
	/* mail_setup_txt wrote name, its final dot, then the rest */
	size_t skip = (size_t)n + 1;
	return buf_printf(out, "%s._domainkey", o->selector)
	           ?: buf_append(out, abs.data + skip, abs.len - skip);
}

static int
keygen_write(const struct keygen_opts *o, const struct dkim_key_private *k, struct buf *txt)
{
	_cleanup_buf_ struct buf pem = BUF_INIT(KEY_FILE_MAX), record = BUF_INIT(4096);
	char name[DNS_NAME_MAX + 16];
	const char *what = "the key";
	int r = dkim_key_private_pem(k, &pem);
	if (r == 0)
		r = dkim_key_private_record_opts(k, &o->rec, &record);
	if (r == 0)
		r = zone_line(o, &record, txt);
	if (r == 0) {
		snprintf(name, sizeof(name), "%s.private", o->selector);
		what = name;
		r = mail_setup_write_file(o->dir, name, &pem, 0600, o->force);
	}
	if (r == 0) {
		snprintf(name, sizeof(name), "%s.txt", o->selector);
		r = mail_setup_write_file(o->dir, name, txt, 0644, o->force);
	}
	if (r == -EEXIST)
		cmd_error(VERB, "%s/%s exists; --force replaces it", o->dir, what);
	else if (r < 0)
		cmd_error(VERB, "%s/%s: %s", o->dir, what, strerror(-r));
	return r < 0 ? CMD_EXIT_USAGE : CMD_EXIT_OK;
}

static int
dkim_keygen(int argc, char **argv)
{
	struct keygen_opts o;
	_cleanup_(dkim_key_private_clear) struct dkim_key_private k = {0};
	_cleanup_buf_ struct buf txt = BUF_INIT(8192);
	int r = keygen_args(argc, argv, &o);
	if (r != CMD_EXIT_OK)
		return r;
	if (o.type == DKIM_KEY_RSA && o.bits < DKIM_KEY_RSA_WARN)
		cmd_error(VERB, "warning: RSA key of %u bits; %d or more is recommended", o.bits,
		          DKIM_KEY_RSA_WARN);
	if (dkim_key_private_generate(o.type, o.bits, &k) < 0) {
		cmd_error(VERB, "key generation failed");
		return CMD_EXIT_TEMP;
	}
	if ((r = keygen_write(&o, &k, &txt)) != CMD_EXIT_OK)
		return r;
	return write_all(STDOUT_FILENO, txt.data, txt.len) < 0 ? CMD_EXIT_TEMP : CMD_EXIT_OK;
}

/* sign */

struct sign_opts {
	const char *domain, *identity;
	const char *selector[DKIM_SIGN_MAX], *keyfile[DKIM_SIGN_MAX];
	size_t nsel, nkey;
	enum dkim_canon hc, bc;
	char **headers, **oversign;
	bool length;
	uint64_t expire;
	int64_t timestamp;
};

static void
sign_opts_free(struct sign_opts *o)
{
	cmd_dkim_free_names(o->headers);
	cmd_dkim_free_names(o->oversign);
}

static bool
canon_word(const char *w, size_t len, enum dkim_canon *c)
{
	if (len == 6 && strncmp(w, "simple", 6) == 0)
		*c = DKIM_CANON_SIMPLE;
	else if (len == 7 && strncmp(w, "relaxed", 7) == 0)
		*c = DKIM_CANON_RELAXED;
	else
		return false;
	return true;
}

/* "header/body", or "header" alone meaning header/simple as in c= */
static int
parse_canon(const char *s, struct sign_opts *o)
{
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	o->bc = DKIM_CANON_SIMPLE;
	if (!canon_word(s, hl, &o->hc) ||
	    (slash && !canon_word(slash + 1, strlen(slash + 1), &o->bc)))
		return cmd_usage_error(VERB, "--canon '%s': simple or relaxed, as HEADER/BODY", s);
	return 0;
}

static int
add_repeat(const char **v, size_t *n, const char *opt)
{
	if (*n >= DKIM_SIGN_MAX)
		return cmd_usage_error(VERB, "at most %d %s options", DKIM_SIGN_MAX, opt);
	v[(*n)++] = optarg;
	return 0;
}

static int
sign_time_option(int c, struct sign_opts *o)
{
	uint64_t ms;
	int64_t t;
	if (c == OPT_EXPIRE) {
		if (cfg_parse_duration(optarg, &ms) < 0 || ms < 1000)
			return cmd_usage_error(VERB, "--expire '%s': a duration (e.g. 7d)", optarg);
		o->expire = ms / 1000;
		return 0;
	}
	if (cfg_parse_int(optarg, &t) < 0 || t <= 0)
		return cmd_usage_error(VERB, "--timestamp '%s': Unix seconds", optarg);
	o->timestamp = t;
	return 0;
}

static int
sign_option(int c, int argc, char **argv, void *opts)
{
	struct sign_opts *o = opts;
	switch (c) {
	case 'd':
		o->domain = optarg;
		return 0;
	case 's':
		return add_repeat(o->selector, &o->nsel, "--selector");
	case 'k':
		return add_repeat(o->keyfile, &o->nkey, "--key");
	case 'c':
		return parse_canon(optarg, o);
	case OPT_HEADERS:
		cmd_dkim_free_names(o->headers);
		o->headers = NULL;
		return cmd_dkim_split_names(VERB, "--headers", optarg, &o->headers);
	case OPT_OVERSIGN:
		cmd_dkim_free_names(o->oversign);
		o->oversign = NULL;
		return cmd_dkim_split_names(VERB, "--oversign", optarg, &o->oversign);
	case OPT_IDENTITY:
		o->identity = optarg;
		return 0;
	case OPT_LENGTH:
		o->length = true;
		return 0;
	case OPT_EXPIRE:
	case OPT_TIMESTAMP:
		return sign_time_option(c, o);
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

static int
sign_args(int argc, char **argv, struct sign_opts *o)
{
	static const struct option longopts[] = {
	    CMD_DKIM_SIGN_LONGOPTS(OPT_HEADERS),
	    {"oversign", required_argument, NULL, OPT_OVERSIGN},
	    {"identity", required_argument, NULL, OPT_IDENTITY},
	    {"length", no_argument, NULL, OPT_LENGTH},
	    {"expire", required_argument, NULL, OPT_EXPIRE},
	    {"timestamp", required_argument, NULL, OPT_TIMESTAMP},
	    {0},
	};
	int r = cmd_dkim_sign_getopt(VERB, argc, argv, longopts, sign_option, o);
	if (r != CMD_EXIT_OK)
		return r;
	if (!o->domain || o->nsel == 0 || o->nkey == 0)
		return cmd_usage_error(VERB, "sign needs --domain, --selector and --key");
	if (o->nsel != o->nkey)
		return cmd_usage_error(VERB, "give one --selector per --key");
	if (!dkim_sign_valid_name(o->domain))
		return cmd_usage_error(VERB, "--domain '%s': not a domain name", o->domain);
	for (size_t i = 0; i < o->nsel; i++)
		if (!dkim_sign_valid_name(o->selector[i]))
			return cmd_usage_error(VERB, "--selector '%s': not a selector",
			                       o->selector[i]);
	return CMD_EXIT_OK;
}

static int
sign_new(const struct sign_opts *o, const struct dkim_key_private *keys, struct dkim_sign **out)
{
	struct dkim_sign_opts so[DKIM_SIGN_MAX];
	for (size_t i = 0; i < o->nkey; i++)
		so[i] = (struct dkim_sign_opts){
		    .domain = o->domain,
		    .selector = o->selector[i],
		    .key = &keys[i],
		    .hc = o->hc,
		    .bc = o->bc,
		    .headers = (const char *const *)o->headers,
		    .oversign = (const char *const *)o->oversign,
		    .identity = o->identity,
		    .body_length = o->length,
		    .timestamp = o->timestamp,
		    .expire = o->expire,
		};
	int r = dkim_sign_new(so, o->nkey, out);
	if (r == -EINVAL && o->identity)
		return cmd_usage_error(VERB, "--identity '%s': not an address at %s or under it",
		                       o->identity, o->domain);
	if (r < 0) {
		cmd_error(VERB, "cannot sign: %s", strerror(-r));
		return CMD_EXIT_USAGE;
	}
	return CMD_EXIT_OK;
}

static int
signer_body(void *signer, const char *data, size_t len)
{
	return dkim_sign_body(signer, data, len);
}

static int
signer_finish(void *signer, const struct rfc5322_header *h, const char *eol, struct buf *fields)
{
	return dkim_sign_finish(signer, h, eol, fields);
}

static int
sign_message(const struct sign_opts *o, const struct dkim_key_private *keys)
{
	static const struct cmd_dkim_signer ops = {.body = signer_body, .finish = signer_finish};
	struct dkim_sign *signer = NULL;
	int r = sign_new(o, keys, &signer);
	if (r == CMD_EXIT_OK)
		r = cmd_dkim_sign_message(VERB, &ops, signer);
	dkim_sign_free(signer);
	return r;
}

static int
dkim_sign_cmd(int argc, char **argv)
{
	struct sign_opts o = {.hc = DKIM_CANON_RELAXED, .bc = DKIM_CANON_RELAXED};
	struct dkim_key_private keys[DKIM_SIGN_MAX] = {0};
	int r = sign_args(argc, argv, &o);
	for (size_t i = 0; r == CMD_EXIT_OK && i < o.nkey; i++)
		r = cmd_dkim_load_key(VERB, o.keyfile[i], &keys[i]);
	if (r == CMD_EXIT_OK)
		r = sign_message(&o, keys);
	for (size_t i = 0; i < DKIM_SIGN_MAX; i++)
		dkim_key_private_clear(&keys[i]);
	sign_opts_free(&o);
	return r;
}

/* verify */

struct verify_opts {
	struct cmd_dns_opts dns;
	struct dkim_verify_opts v;
	bool json;
};

static int
verify_option(const char *verb, int c, int argc, char **argv, struct verify_opts *o)
{
	int64_t n;
	int r = cmd_dns_option(verb, c, optarg, &o->dns);
	if (r != 0)
		return r == 1 ? 0 : r;
	switch (c) {
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_MAX_SIGS:
		if (cfg_parse_int(optarg, &n) < 0 || n < 1 || n > 1000)
			return cmd_usage_error(verb, "--max-signatures '%s': 1 to 1000", optarg);
		o->v.max_signatures = (size_t)n;
		return 0;
	case OPT_TIME:
		if (cfg_parse_int(optarg, &n) < 0 || n <= 0)
			return cmd_usage_error(verb, "--time '%s': Unix seconds", optarg);
		o->v.now = n;
		return 0;
	default:
		return cmd_bad_option(verb, argc, argv, c);
	}
}

int
cmd_dkim_verify_args(const char *verb, int argc, char **argv, struct cmd_dns_opts *dns, bool *json,
                     size_t *max, int64_t *now)
{
	static const struct option longopts[] = {
	    CMD_DNS_LONGOPTS,
	    {"json", no_argument, NULL, OPT_JSON},
	    {"max-signatures", required_argument, NULL, OPT_MAX_SIGS},
	    {"time", required_argument, NULL, OPT_TIME},
	    {0},
	};
	struct verify_opts o = {0};
	int c, r;
	cmd_dns_opts_init(&o.dns);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:", longopts, NULL)) != -1)
		if ((r = verify_option(verb, c, argc, argv, &o)) != 0)
			return r;
	if (optind < argc)
		return cmd_usage_error(verb,
		                       "unexpected argument '%s'; the message is read from "
		                       "standard input",
		                       argv[optind]);
	*dns = o.dns;
	dns->dns.server = dns->n_servers ? dns->servers : NULL;
	*json = o.json;
	*max = o.v.max_signatures;
	*now = o.v.now;
	return CMD_EXIT_OK;
}

static int
verifier_create(struct dns_resolver *res, size_t max_signatures, int64_t now, void **out)
{
	const struct dkim_verify_opts vo = {.max_signatures = max_signatures, .now = now};
	struct dkim_verify *v = NULL;
	int r = dkim_verify_new(&vo, res, &v);
	*out = v;
	return r;
}

CMD_DKIM_VERIFIER(verifier, dkim, false, verifier_create);

/* testkey: the published record against the private key, as opendkim-testkey checks it */

/* Exit codes past DESIGN's four: each of these answers needs its own for scripts. */
#define TESTKEY_EXIT_REVOKED 4
#define TESTKEY_EXIT_TESTING 5

struct testkey_opts {
	struct cmd_dns_opts dns;
	char domain[DNS_NAME_MAX + 1];
	const char *selector, *keyfile;
};

static int
testkey_option(int c, int argc, char **argv, struct testkey_opts *o)
{
	int r = cmd_dns_option(VERB, c, optarg, &o->dns);
	if (r == 0)
		r = name_option(c, o->domain, &o->selector);
	if (r != 0)
		return r == 1 ? 0 : r;
	switch (c) {
	case 'k':
		o->keyfile = optarg;
		return 0;
	case OPT_TRUST_ANCHOR:
		if (access(optarg, R_OK) < 0)
			return cmd_usage_error(VERB, "--dns-trust-anchor '%s': %s", optarg,
			                       strerror(errno));
		o->dns.dns.trust_anchor = optarg;
		return 0;
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

static int
testkey_args(int argc, char **argv, struct testkey_opts *o)
{
	static const struct option longopts[] = {
	    CMD_DNS_LONGOPTS,
	    {"domain", required_argument, NULL, 'd'},
	    {"selector", required_argument, NULL, 's'},
	    {"key", required_argument, NULL, 'k'},
	    {"dns-trust-anchor", required_argument, NULL, OPT_TRUST_ANCHOR},
	    {0},
	};
	int c, r;
	*o = (struct testkey_opts){0};
	cmd_dns_opts_init(&o->dns);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:d:s:k:", longopts, NULL)) != -1)
		if ((r = testkey_option(c, argc, argv, o)) != 0)
			return r;
	if (optind < argc)
		return cmd_usage_error(VERB, "unexpected argument '%s'", argv[optind]);
	if (!o->domain[0] || !o->selector || !o->keyfile)
		return cmd_usage_error(VERB, "testkey needs --domain, --selector and --key");
	if (!dkim_sign_valid_name(o->selector))
		return cmd_usage_error(VERB, "--selector '%s': not a selector", o->selector);
	o->dns.dns.server = o->dns.n_servers ? o->dns.servers : NULL;
	return CMD_EXIT_OK;
}

/* What the records at the name say of the key: the best answer any of them gives. */
struct testkey_view {
	bool match, testing, mismatch, revoked;
	enum dkim_key_type pub_type;
	unsigned pub_bits;
	char why[160]; /* the first record that is no key */
};

static void
testkey_record(const struct dns_rr *rr, const struct dkim_key_private *k, struct testkey_view *t)
{
	_cleanup_(dkim_key_clear) struct dkim_key pub = {0};
	char why[160];
	if (dkim_key_record_revoked(rr->u.txt.data, rr->u.txt.len)) {
		t->revoked = true;
		return;
	}
	if (dkim_key_parse(rr->u.txt.data, rr->u.txt.len, &pub, why, sizeof(why)) !=
	    DKIM_RESULT_PASS) {
		if (!t->why[0])
			snprintf(t->why, sizeof(t->why), "%s", why);
		return;
	}
	if (!dkim_key_matches(&pub, k)) {
		t->mismatch = true;
		t->pub_type = pub.type;
		t->pub_bits = pub.bits;
		return;
	}
	t->match = true;
	t->testing |= pub.testing;
}

static const char *
key_kind(enum dkim_key_type type, unsigned bits, char *buf, size_t size)
{
	if (type == DKIM_KEY_ED25519)
		return "ed25519";
	snprintf(buf, size, "rsa %u bits", bits);
	return buf;
}

/* The verdict line and its exit code. */
static int
testkey_verdict(const char *name, const struct testkey_opts *o, const struct dkim_key_private *k,
                const struct testkey_view *t)
{
	char a[32], b[32];
	if (t->match && !t->testing) {
		printf("%s: key OK (%s)\n", name, key_kind(k->type, k->bits, a, sizeof(a)));
		return CMD_EXIT_OK;
	}
	if (t->match) {
		printf("%s: key OK but in testing mode (t=y): receivers treat failed signatures as "
		       "unsigned\n",
		       name);
		return TESTKEY_EXIT_TESTING;
	}
	if (t->mismatch) {
		printf("%s: key mismatch: the published key (%s) is not the public half of %s "
		       "(%s)\n",
		       name, key_kind(t->pub_type, t->pub_bits, a, sizeof(a)), o->keyfile,
		       key_kind(k->type, k->bits, b, sizeof(b)));
		return CMD_EXIT_NEGATIVE;
	}
	if (t->revoked) {
		printf("%s: key revoked (empty p=): signatures with this selector fail\n", name);
		return TESTKEY_EXIT_REVOKED;
	}
	printf("%s: no usable key record: %s\n", name, t->why);
	return CMD_EXIT_NEGATIVE;
}

static int
testkey_answer(const char *name, const struct testkey_opts *o, const struct dkim_key_private *k,
               const struct dns_answer *a)
{
	struct testkey_view t = {0};
	switch (a->status) {
	case DNS_OK:
		break;
	case DNS_NODATA:
	case DNS_NXDOMAIN:
		printf("%s: no key record (%s)\n", name, dns_status_name(a->status));
		return CMD_EXIT_NEGATIVE;
	default:
		cmd_error(VERB, "testkey: %s: %s", name, dns_status_name(a->status));
		return CMD_EXIT_TEMP;
	}
	for (size_t i = 0; i < a->n; i++)
		testkey_record(&a->rr[i], k, &t);
	int r = testkey_verdict(name, o, k, &t);
	/* opendkim-testkey's words: a key not DNSSEC-validated can be forged on the way */
	printf("%s: %s\n", name,
	       a->secure ? "key secure (DNSSEC)"
	                 : "key not secure (the answer is not DNSSEC-validated)");
	return r;
}

static int
dkim_testkey(int argc, char **argv)
{
	struct testkey_opts o;
	_cleanup_(dkim_key_private_clear) struct dkim_key_private k = {0};
	_cleanup_(dns_answer_free) struct dns_answer a = {0};
	struct dns_resolver *res = NULL;
	char name[2 * DNS_NAME_MAX + 16];
	int r = testkey_args(argc, argv, &o);
	if (r == CMD_EXIT_OK)
		r = cmd_dkim_load_key(VERB, o.keyfile, &k);
	if (r != CMD_EXIT_OK)
		return r;
	int n = snprintf(name, sizeof(name), "%s._domainkey.%s", o.selector, o.domain);
	if (n < 0 || (size_t)n >= DNS_NAME_MAX)
		return cmd_usage_error(VERB, "%s: longer than a DNS name", name);
	if ((r = cmd_dns_open(VERB, &o.dns, &res)) != CMD_EXIT_OK)
		return r;
	if (dns_query(res, name, DNS_T_TXT, &a) < 0) {
		cmd_error(VERB, "testkey: %s: not a name DNS can look up", name);
		r = CMD_EXIT_USAGE;
	} else {
		r = testkey_answer(name, &o, &k, &a);
	}
	dns_resolver_free(res);
	return fflush(stdout) != 0 ? CMD_EXIT_TEMP : r;
}

int
cmd_dkim(int argc, char **argv)
{
	if (argc < 2)
		return cmd_usage_error(VERB, "give a command: keygen, sign, verify or testkey");
	if (strcmp(argv[1], "keygen") == 0)
		return dkim_keygen(argc - 1, argv + 1);
	if (strcmp(argv[1], "sign") == 0)
		return dkim_sign_cmd(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_dkim_verify(VERB, &verifier, argc - 1, argv + 1);
	if (strcmp(argv[1], "testkey") == 0)
		return dkim_testkey(argc - 1, argv + 1);
	return cmd_usage_error(VERB, "unknown command '%s': keygen, sign, verify or testkey",
	                       argv[1]);
}
