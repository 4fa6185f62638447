/*
 * bench/dkim's measuring program: rampart's DKIM against raw OpenSSL on the same keys, in one
 * process, interleaved. Per 4 KB message: signs/s and verifies/s with RSA-2048 and Ed25519 (a
 * whole message each: read, canonicalise, hash, sign or look the key up and verify). Body
 * hashing: MB/s of simple and relaxed over a 10 MB body against raw SHA-256 of the same bytes.
 *
 * usage: bench-dkim DIR [SECONDS [messages|body]]: writes DIR/{rsa,ed}.pem, DIR/{rsa,ed}.txt,
 * DIR/msg.eml and DIR/body.txt for the peers, prints one JSON object per measure:
 * {"what": ..., "impl": ..., "key": ..., "per_s": ...}.
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/dkim_canon.h"
#include "mail/dkim_key.h"
#include "mail/dkim_sign.h"
#include "mail/dkim_verify.h"
#include "mail/rfc5322.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BODY_BIG (10u << 20)
#define ROUNDS 9

struct ctx {
	const char *name;
	struct dkim_key_private key;
	EVP_PKEY *pub;
	char *msg, *signed_msg;
	size_t len, signed_len;
	struct dns_resolver *r;
	struct dkim_key_cache *cache;
	unsigned char raw_sig[1024];
	size_t raw_sig_len;
};

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what) __attribute__((noreturn));

static void
die(const char *what)
{
	fprintf(stderr, "bench-dkim: %s failed\n", what);
	exit(1);
}

/* A 4 KB message: the header fields a real one has, a body of text lines. */
static char *
make_message(size_t *len)
{
	static const char head[] =
	    "Received: from mail.example.net (mail.example.net [192.0.2.1])\r\n"
	    "\tby mx.example.com (Postfix) with ESMTPS id 4F1A2B3C4D\r\n"
	    "\tfor <suzie@example.com>; Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
	    "From: Joe SixPack <joe@football.example.com>\r\n"
	    "To: Suzie Q <suzie@shopping.example.net>\r\n"
	    "Subject: Is dinner ready?\r\n"
	    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
	    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n";
	static const char line[] = "We lost the game.  Are you hungry yet? The kick-off was at "
	                           "six and it rained.\r\n";
	_cleanup_buf_ struct buf b = BUF_INIT(8192);
	buf_append_str(&b, head);
	while (b.len + sizeof(line) - 1 <= 4096)
		buf_append_str(&b, line);
	*len = b.len;
	return buf_steal(&b);
}

static int
write_file(const char *dir, const char *name, const char *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return fd >= 0 && write(fd, data, len) == (ssize_t)len ? 0 : -1;
}

/* The whole signing of one message, as `rampart dkim sign` does it but without the I/O. */
static size_t
dkim_sign_once(struct ctx *c, struct buf *out)
{
	struct rfc5322_header h;
	struct rfc5322_reader rd;
	struct dkim_sign *s = NULL;
	size_t used = 0;
	const struct dkim_sign_opts o = {.domain = "example.com",
	                                 .selector = c->name,
	                                 .key = &c->key,
	                                 .hc = DKIM_CANON_RELAXED,
	                                 .bc = DKIM_CANON_RELAXED,
	                                 .timestamp = 1700000000};
	rfc5322_header_init(&h, 0, 0);
	rfc5322_reader_init(&rd, &h);
	if (rfc5322_reader_feed(&rd, c->msg, c->len, &used) != 1 || dkim_sign_new(&o, 1, &s) < 0 ||
	    dkim_sign_body(s, c->msg + used, c->len - used) < 0 ||
	    dkim_sign_finish(s, &h, "\r\n", out) < 0)
		die("dkim sign");
	dkim_sign_free(s);
	rfc5322_reader_free(&rd);
	rfc5322_header_free(&h);
	return used;
}

static void
dkim_verify_once(struct ctx *c)
{
	struct rfc5322_header h;
	struct rfc5322_reader rd;
	struct dkim_verify *v = NULL;
	size_t used = 0;
	const struct dkim_verify_opts o = {.cache = c->cache};
	rfc5322_header_init(&h, 0, 0);
	rfc5322_reader_init(&rd, &h);
	if (rfc5322_reader_feed(&rd, c->signed_msg, c->signed_len, &used) != 1 ||
	    dkim_verify_new(&o, c->r, &v) < 0 || dkim_verify_header(v, &h) < 0 ||
	    dkim_verify_body(v, c->signed_msg + used, c->signed_len - used) < 0 ||
	    dkim_verify_finish(v) < 0 || dkim_verify_result(v, 0)->result != DKIM_RESULT_PASS)
		die("dkim verify");
	dkim_verify_free(v);
	rfc5322_reader_free(&rd);
	rfc5322_header_free(&h);
}

/* What a program calling OpenSSL directly does per message: hash it and sign the hash. */
static void
raw_sign_once(struct ctx *c)
{
	unsigned char sig[1024];
	size_t slen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const EVP_MD *alg = c->key.type == DKIM_KEY_RSA ? dkim_canon_md(DKIM_HASH_SHA256) : NULL;
	if (!md ||
	    EVP_DigestSignInit_ex(md, NULL, alg ? "SHA256" : NULL, NULL, NULL, c->key.pkey, NULL) !=
	        1 ||
	    EVP_DigestSign(md, sig, &slen, (const unsigned char *)c->msg, c->len) != 1)
		die("raw sign");
	EVP_MD_CTX_free(md);
}

static void
raw_verify_once(struct ctx *c)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const char *alg = c->key.type == DKIM_KEY_RSA ? "SHA256" : NULL;
	if (!md || EVP_DigestVerifyInit_ex(md, NULL, alg, NULL, NULL, c->pub, NULL) != 1 ||
	    EVP_DigestVerify(md, c->raw_sig, c->raw_sig_len, (const unsigned char *)c->msg,
	                     c->len) != 1)
		die("raw verify");
	EVP_MD_CTX_free(md);
}

static void
sign_op(struct ctx *c)
{
	struct buf out = BUF_INIT(8192);
	dkim_sign_once(c, &out);
	buf_free(&out);
}

/* Operations per second of fn over about seconds. */
static double
rate(void (*fn)(struct ctx *), struct ctx *c, double seconds)
{
	unsigned long n = 0;
	double start = now(), t;
	do {
		for (int i = 0; i < 16; i++)
			fn(c);
		n += 16;
	} while ((t = now()) - start < seconds);
	return (double)n / (t - start);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static EVP_PKEY *
public_half(EVP_PKEY *k)
{
	unsigned char der[2048], *p = der;
	const unsigned char *q = der;
	int n = i2d_PUBKEY(k, &p);
	return n > 0 ? d2i_PUBKEY(NULL, &q, n) : NULL;
}

static void
setup(struct ctx *c, const char *dir, struct dns_zone *z)
{
	_cleanup_buf_ struct buf pem = BUF_INIT(16384), rec = BUF_INIT(4096), out = BUF_INIT(8192);
	char file[64], owner[128];
	if (dkim_key_private_generate(strcmp(c->name, "rsa") ? DKIM_KEY_ED25519 : DKIM_KEY_RSA,
	                              2048, &c->key) < 0 ||
	    !(c->pub = public_half(c->key.pkey)) || dkim_key_private_pem(&c->key, &pem) < 0 ||
	    dkim_key_private_record(&c->key, &rec) < 0)
		die("key setup");
	snprintf(file, sizeof(file), "%s.pem", c->name);
	write_file(dir, file, pem.data, pem.len);
	snprintf(file, sizeof(file), "%s.txt", c->name);
	write_file(dir, file, rec.data, rec.len);
	snprintf(owner, sizeof(owner), "%s._domainkey.example.com", c->name);
	if (dns_zone_add_txt(z, owner, rec.data, rec.len) < 0)
		die("zone");
	dkim_sign_once(c, &out);
	buf_append(&out, c->msg, c->len);
	c->signed_len = out.len;
	c->signed_msg = buf_steal(&out);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	c->raw_sig_len = sizeof(c->raw_sig);
	if (!md ||
	    EVP_DigestSignInit_ex(md, NULL, c->key.type == DKIM_KEY_RSA ? "SHA256" : NULL, NULL,
	                          NULL, c->key.pkey, NULL) != 1 ||
	    EVP_DigestSign(md, c->raw_sig, &c->raw_sig_len, (const unsigned char *)c->msg,
	                   c->len) != 1)
		die("raw signature");
	EVP_MD_CTX_free(md);
}

static void
print(const char *what, const char *impl, const char *key, double per_s)
{
	printf("{\"what\": \"%s\", \"impl\": \"%s\", \"key\": \"%s\", \"per_s\": %.1f}\n", what,
	       impl, key, per_s);
}

static void
bench_messages(struct ctx *cs, size_t n, double seconds)
{
	double v[2][4][ROUNDS];
	void (*const fns[4])(struct ctx *) = {raw_sign_once, sign_op, raw_verify_once,
	                                      dkim_verify_once};
	static const char *const what[4][2] = {
	    {"sign", "openssl"}, {"sign", "rampart"}, {"verify", "openssl"}, {"verify", "rampart"}};
	for (int r = 0; r < ROUNDS; r++)
		for (size_t k = 0; k < n; k++)
			for (int f = 0; f < 4; f++)
				v[k][f][r] = rate(fns[f], &cs[k], seconds / ROUNDS);
	for (size_t k = 0; k < n; k++)
		for (int f = 0; f < 4; f++)
			print(what[f][0], what[f][1], cs[k].name, median(v[k][f], ROUNDS));
}

static char *body_big;

static void
hash_raw(struct ctx *c)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned len;
	if (EVP_Digest(body_big, BODY_BIG, d, &len, dkim_canon_md(DKIM_HASH_SHA256), NULL) != 1)
		die("sha256");
}

static void
hash_canon(enum dkim_canon canon)
{
	static struct dkim_canon_body b;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned len;
	if (dkim_canon_body_init(&b, canon, DKIM_HASH_SHA256, DKIM_CANON_NO_LIMIT) < 0)
		die("canon");
	for (size_t p = 0; p < BODY_BIG; p += 65536)
		dkim_canon_body_update(&b, body_big + p,
		                       BODY_BIG - p < 65536 ? BODY_BIG - p : 65536);
	if (dkim_canon_body_final(&b, d, &len) < 0)
		die("canon");
	dkim_canon_body_free(&b);
}

static void
hash_simple(struct ctx *c)
{
	hash_canon(DKIM_CANON_SIMPLE);
}

static void
hash_relaxed(struct ctx *c)
{
	hash_canon(DKIM_CANON_RELAXED);
}

/* The body of the 4 KB message repeated to 10 MB. */
static void
bench_body(struct ctx *c, const char *dir, double seconds)
{
	const char *body = strstr(c->msg, "\r\n\r\n") + 4;
	size_t bl = c->len - (size_t)(body - c->msg);
	double v[3][ROUNDS];
	void (*const fns[3])(struct ctx *) = {hash_raw, hash_simple, hash_relaxed};
	static const char *const impl[3] = {"sha256", "simple", "relaxed"};
	if (!(body_big = malloc(BODY_BIG)))
		die("malloc");
	for (size_t p = 0; p < BODY_BIG; p += bl)
		memcpy(body_big + p, body, BODY_BIG - p < bl ? BODY_BIG - p : bl);
	write_file(dir, "body.txt", body_big, BODY_BIG);
	for (int r = 0; r < ROUNDS; r++)
		for (int f = 0; f < 3; f++)
			v[f][r] = rate(fns[f], c, seconds / ROUNDS) * BODY_BIG / 1e6;
	for (int f = 0; f < 3; f++)
		print("body", impl[f], "MB", median(v[f], ROUNDS));
	free(body_big);
}

int
main(int argc, char **argv)
{
	struct ctx cs[2] = {{.name = "rsa"}, {.name = "ed"}};
	struct dns_zone *z;
	double seconds = argc > 2 ? atof(argv[2]) : 5;
	if (argc < 2 || dns_zone_new(&z) < 0)
		die("usage: bench-dkim DIR [SECONDS]; setup");
	for (int k = 0; k < 2; k++) {
		cs[k].msg = make_message(&cs[k].len);
		setup(&cs[k], argv[1], z);
	}
	write_file(argv[1], "msg.eml", cs[0].msg, cs[0].len);
	struct dns_resolver *r;
	struct dkim_key_cache *cache;
	if (dns_resolver_from_zone(z, &r) < 0 || dkim_key_cache_new(&cache) < 0)
		die("resolver");
	for (int k = 0; k < 2; k++)
		cs[k].r = r, cs[k].cache = cache;
	const char *only = argc > 3 ? argv[3] : "";
	if (strcmp(only, "body") != 0)
		bench_messages(cs, 2, seconds);
	if (strcmp(only, "messages") != 0)
		bench_body(&cs[0], argv[1], seconds);
	return 0;
}
