/*
 * rampart dkim keygen|sign|verify: the command side of src/mail/dkim_*. Also the helpers the
 * dk verb shares (cmd_dkim_*): loading keys, spooling the message being signed, printing
 * results.
 */
#include "cmd.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/cleanup.h"
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

static int
read_small_file(const char *path, size_t max, struct buf *out)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char chunk[4096];
	ssize_t n;
	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (out->len + (size_t)n > max)
			return -EFBIG;
		int r = buf_append(out, chunk, (size_t)n);
		if (r < 0)
			return r;
	}
	return 0;
}

int
cmd_dkim_load_key(const char *verb, const char *path, struct dkim_key_private *k)
{
	_cleanup_buf_ struct buf pem = BUF_INIT(KEY_FILE_MAX);
	int r = read_small_file(path, KEY_FILE_MAX, &pem);
	if (r < 0) {
		cmd_error(verb, "%s: %s", path, r == -EFBIG ? "too large for a key" : strerror(-r));
		return CMD_EXIT_USAGE;
	}
	r = dkim_key_private_load(pem.data ? pem.data : "", pem.len, k);
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
	if (r == 0 && !json && n == 0)
		r = dkim_result_format(&none, &out) ?: buf_append(&out, "\n", 1);
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
	while ((c = getopt_long(argc, argv, "+:d:s:k:c:", longopts, NULL)) != -1)
		if ((r = option(c, argc, argv, o)) != 0)
			return r;
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
	if (r == CMD_EXIT_OK && h.n == 0) {
		cmd_error(verb, "the input has no header fields: not a message");
		r = CMD_EXIT_USAGE;
	}
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
	const char *domain, *selector, *dir;
	enum dkim_key_type type;
	unsigned bits;
	bool bits_given, force;
};

static int
keygen_option(int c, int argc, char **argv, struct keygen_opts *o)
{
	int64_t n;
	switch (c) {
	case 'd':
		o->domain = optarg;
		return 0;
	case 's':
		o->selector = optarg;
		return 0;
	case OPT_TYPE:
		if (strcmp(optarg, "rsa") != 0 && strcmp(optarg, "ed25519") != 0)
			return cmd_usage_error(VERB, "--type '%s': rsa or ed25519", optarg);
		o->type = optarg[0] == 'r' ? DKIM_KEY_RSA : DKIM_KEY_ED25519;
		return 0;
	case OPT_BITS:
		if (cfg_parse_int(optarg, &n) < 0 || n < DKIM_KEY_RSA_MIN || n > DKIM_KEY_RSA_MAX)
			return cmd_usage_error(VERB, "--bits '%s': %d to %d", optarg,
			                       DKIM_KEY_RSA_MIN, DKIM_KEY_RSA_MAX);
		o->bits = (unsigned)n;
		o->bits_given = true;
		return 0;
	case OPT_OUT:
		o->dir = optarg;
		return 0;
	case OPT_FORCE:
		o->force = true;
		return 0;
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
	if (!o->domain || !o->selector)
		return cmd_usage_error(VERB, "keygen needs --domain and --selector");
	if (!dkim_sign_valid_name(o->domain) || !dkim_sign_valid_name(o->selector))
		return cmd_usage_error(VERB, "'%s': not a domain name",
		                       dkim_sign_valid_name(o->domain) ? o->selector : o->domain);
	if (o->bits_given && o->type == DKIM_KEY_ED25519)
		return cmd_usage_error(VERB, "--bits is for RSA keys; Ed25519 keys have one size");
	return CMD_EXIT_OK;
}

/* "S._domainkey.D. IN TXT ( "..." "..." )": the record in strings of at most 255 bytes. */
static int
zone_line(const struct keygen_opts *o, const struct buf *record, struct buf *out)
{
	char name[2 * DNS_NAME_MAX + 16];
	snprintf(name, sizeof(name), "%s._domainkey.%s", o->selector, o->domain);
	return mail_setup_txt(name, buf_cstr(record), out);
}

static int
keygen_write(const struct keygen_opts *o, const struct dkim_key_private *k, struct buf *txt)
{
	_cleanup_buf_ struct buf pem = BUF_INIT(KEY_FILE_MAX), record = BUF_INIT(4096);
	char name[DNS_NAME_MAX + 16];
	const char *what = "the key";
	int r = dkim_key_private_pem(k, &pem);
	if (r == 0)
		r = dkim_key_private_record(k, &record);
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

int
cmd_dkim(int argc, char **argv)
{
	if (argc < 2)
		return cmd_usage_error(VERB, "give a command: keygen, sign or verify");
	if (strcmp(argv[1], "keygen") == 0)
		return dkim_keygen(argc - 1, argv + 1);
	if (strcmp(argv[1], "sign") == 0)
		return dkim_sign_cmd(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_dkim_verify(VERB, &verifier, argc - 1, argv + 1);
	return cmd_usage_error(VERB, "unknown command '%s': keygen, sign or verify", argv[1]);
}
