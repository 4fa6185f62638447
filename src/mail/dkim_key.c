#include "dkim_key.h"

#include "core/cleanup.h"
#include "dkim_b64.h"
#include "dkim_result.h"
#include "dkim_tag.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Decoded p= at most: an 8192-bit RSA SubjectPublicKeyInfo is 1,062 bytes. */
#define KEY_DER_MAX 1200
#define ED25519_KEY_LEN 32

DEFINE_CLEANUP_FUNC(BIO, BIO_free)

/* Setting up a verification context in OpenSSL 3 costs 3.5 us, a sixth of an RSA-2048
 * verification: one prepared per key (and hash) is copied instead (0.1-0.3 us). */
struct dkim_key_ctx {
	int refs;
	pthread_mutex_t lock;
	EVP_PKEY_CTX *rsa[2]; /* RSA, by enum dkim_hash, made on first use */
	EVP_MD_CTX *ed;       /* Ed25519, made on first use */
};

struct cache_entry {
	char *txt;
	size_t len;
	struct dkim_key key;
	uint64_t used;
};

struct dkim_key_cache {
	pthread_mutex_t lock;
	uint64_t clock;
	struct cache_entry e[DKIM_KEY_CACHE_SIZE];
};

static int __attribute__((format(printf, 3, 4)))
perm(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return DKIM_RESULT_PERMERROR;
}

static void
ctx_unref(struct dkim_key_ctx *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(c->rsa); i++)
		EVP_PKEY_CTX_free(c->rsa[i]);
	EVP_MD_CTX_free(c->ed);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* NULL when out of memory: contexts are then made for each use. */
static struct dkim_key_ctx *
ctx_new(void)
{
	struct dkim_key_ctx *c = calloc(1, sizeof(*c));
	if (c) {
		c->refs = 1;
		pthread_mutex_init(&c->lock, NULL);
	}
	return c;
}

void
dkim_key_clear(struct dkim_key *k)
{
	EVP_PKEY_free(k->pkey);
	ctx_unref(k->ctx);
	*k = (struct dkim_key){0};
}

void
dkim_key_share(const struct dkim_key *from, struct dkim_key *to)
{
	*to = *from;
	if (to->pkey)
		EVP_PKEY_up_ref(to->pkey);
	if (to->ctx)
		__atomic_add_fetch(&to->ctx->refs, 1, __ATOMIC_RELAXED);
}

/* Is word one of the colon-separated items of t (FWS allowed around them)? */
static bool
list_has(const struct dkim_tag *t, const char *word)
{
	size_t wl = strlen(word), pos = 0, len;
	const char *item;
	while (dkim_tag_list_next(t, &pos, &item, &len))
		if (len == wl && memcmp(item, word, wl) == 0)
			return true;
	return false;
}

/* RSA: SubjectPublicKeyInfo, or the bare RSAPublicKey some publish. */
static EVP_PKEY *
rsa_from_der(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
	if (k && (p != der + len || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA)) {
		EVP_PKEY_free(k);
		return NULL;
	}
	if (k)
		return k;
	p = der;
	k = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
	if (k && p != der + len) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

static int
key_data(const struct dkim_tag *p, struct dkim_key *k, char *why, size_t whylen)
{
	unsigned char der[KEY_DER_MAX];
	if (p->value_len == 0)
		return perm(why, whylen, "key revoked (empty p=)");
	int n = dkim_b64_decode(p->value, p->value_len, der, sizeof(der));
	if (n == -ENOBUFS)
		return perm(why, whylen, "key too large");
	if (n < 0)
		return perm(why, whylen, "bad base64 in key p=");
	if (k->type == DKIM_KEY_ED25519) {
		if (n != ED25519_KEY_LEN)
			return perm(why, whylen, "Ed25519 key of %d bytes, not 32", n);
		k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, (size_t)n);
	} else {
		k->pkey = rsa_from_der(der, (size_t)n);
	}
	if (!k->pkey)
		return perm(why, whylen, "key p= is not a valid %s key",
		            k->type == DKIM_KEY_RSA ? "RSA" : "Ed25519");
	k->bits = (unsigned)EVP_PKEY_get_bits(k->pkey);
	k->ctx = ctx_new();
	return DKIM_RESULT_PASS;
}

/* v=, k=, h=, s=, t=, g=: everything but the key data. */
static int
key_options(const struct dkim_tag_list *l, struct dkim_key *k, char *why, size_t whylen)
{
	const struct dkim_tag *v = dkim_tag_find(l, "v"), *t;
	if (v && (v != &l->tag[0] || !dkim_tag_value_is(v, "DKIM1", false)))
		return perm(why, whylen,
		            v == &l->tag[0] ? "unsupported key version"
		                            : "key record v= is not the first tag");
	if ((t = dkim_tag_find(l, "k")) && !dkim_tag_value_is(t, "rsa", false)) {
		if (!dkim_tag_value_is(t, "ed25519", false))
			return perm(why, whylen, "unsupported key type (k=)");
		k->type = DKIM_KEY_ED25519;
	}
	k->sha1 = k->sha256 = true;
	if ((t = dkim_tag_find(l, "h"))) {
		k->sha1 = list_has(t, "sha1");
		k->sha256 = list_has(t, "sha256");
	}
	if ((t = dkim_tag_find(l, "s")) && !list_has(t, "*") && !list_has(t, "email"))
		return perm(why, whylen, "key is not for email (s=)");
	if ((t = dkim_tag_find(l, "t"))) {
		k->testing = list_has(t, "y");
		k->strict = list_has(t, "s");
	}
	if ((t = dkim_tag_find(l, "g"))) {
		k->has_g = true;
		if (dkim_tag_value_copy(t, k->g, sizeof(k->g)) < 0)
			return perm(why, whylen, "key g= too long");
	}
	return DKIM_RESULT_PASS;
}

int
dkim_key_parse(const char *txt, size_t len, struct dkim_key *out, char *why, size_t whylen)
{
	struct dkim_tag_list l;
	*out = (struct dkim_key){0};
	if (dkim_tag_parse(txt, len, &l) < 0)
		return perm(why, whylen, "key record syntax error");
	const struct dkim_tag *p = dkim_tag_find(&l, "p");
	if (!p)
		return perm(why, whylen, "key record has no p=");
	int r = key_options(&l, out, why, whylen);
	if (r == DKIM_RESULT_PASS)
		r = key_data(p, out, why, whylen);
	if (r != DKIM_RESULT_PASS)
		dkim_key_clear(out);
	return r;
}

bool
dkim_key_allows(const struct dkim_key *k, enum dkim_hash hash)
{
	return hash == DKIM_HASH_SHA1 ? k->sha1 : k->sha256;
}

bool
dkim_key_granularity(const struct dkim_key *k, const char *local, bool empty_is_any)
{
	if (!k->has_g || (k->g[0] == '\0' && empty_is_any))
		return true;
	if (k->g[0] == '\0')
		return false;
	const char *star = strchr(k->g, '*');
	size_t ll = strlen(local);
	if (!star)
		return strcmp(k->g, local) == 0;
	size_t pre = (size_t)(star - k->g), post = strlen(star + 1);
	return ll >= pre + post && memcmp(local, k->g, pre) == 0 &&
	       memcmp(local + ll - post, star + 1, post) == 0;
}

int
dkim_key_cache_new(struct dkim_key_cache **out)
{
	struct dkim_key_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void
dkim_key_cache_free(struct dkim_key_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < DKIM_KEY_CACHE_SIZE; i++) {
		free(c->e[i].txt);
		dkim_key_clear(&c->e[i].key);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static bool
cache_get(struct dkim_key_cache *c, const char *txt, size_t len, struct dkim_key *out)
{
	bool hit = false;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < DKIM_KEY_CACHE_SIZE && !hit; i++) {
		struct cache_entry *e = &c->e[i];
		if (e->txt && e->len == len && memcmp(e->txt, txt, len) == 0) {
			dkim_key_share(&e->key, out);
			e->used = ++c->clock;
			hit = true;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

/* Replaces the least recently used entry; a failed copy just leaves the key uncached. */
static void
cache_put(struct dkim_key_cache *c, const char *txt, size_t len, const struct dkim_key *k)
{
	char *copy = malloc(len);
	if (!copy)
		return;
	memcpy(copy, txt, len);
	pthread_mutex_lock(&c->lock);
	struct cache_entry *old = &c->e[0];
	for (size_t i = 1; i < DKIM_KEY_CACHE_SIZE; i++)
		if (c->e[i].used < old->used)
			old = &c->e[i];
	free(old->txt);
	dkim_key_clear(&old->key);
	old->txt = copy;
	old->len = len;
	dkim_key_share(k, &old->key);
	old->used = ++c->clock;
	pthread_mutex_unlock(&c->lock);
}

static int
parse_cached(struct dkim_key_cache *c, const struct dns_rr *rr, struct dkim_key *out, char *why,
             size_t whylen)
{
	if (c && cache_get(c, rr->u.txt.data, rr->u.txt.len, out))
		return DKIM_RESULT_PASS;
	int r = dkim_key_parse(rr->u.txt.data, rr->u.txt.len, out, why, whylen);
	if (c && r == DKIM_RESULT_PASS)
		cache_put(c, rr->u.txt.data, rr->u.txt.len, out);
	return r;
}

/* The first record that is a usable key wins; else the first one's error is reported. */
static int
answer_key(struct dkim_key_cache *c, const struct dns_answer *a, struct dkim_key *out, char *why,
           size_t whylen)
{
	char first[160] = "";
	for (size_t i = 0; i < a->n; i++) {
		int r = parse_cached(c, &a->rr[i], out, why, whylen);
		if (r == DKIM_RESULT_PASS || r < 0)
			return r;
		if (!first[0])
			snprintf(first, sizeof(first), "%s", why);
	}
	return perm(why, whylen, "%s", first[0] ? first : "no key record");
}

int
dkim_key_fetch(struct dns_resolver *r, struct dkim_key_cache *cache, const char *selector,
               const char *domain, struct dkim_key *out, char *why, size_t whylen)
{
	char name[DNS_NAME_MAX + 2];
	struct dns_answer a;
	*out = (struct dkim_key){0};
	int n = snprintf(name, sizeof(name), "%s._domainkey.%s", selector, domain);
	if (n < 0 || (size_t)n >= sizeof(name) - 1)
		return perm(why, whylen, "key name too long");
	int e = dns_query(r, name, DNS_T_TXT, &a);
	if (e == -ENOMEM)
		return e;
	if (e < 0)
		return perm(why, whylen, "invalid key name %s", name);
	switch (a.status) {
	case DNS_OK:
		e = answer_key(cache, &a, out, why, whylen);
		break;
	case DNS_TIMEOUT:
	case DNS_SERVFAIL:
		snprintf(why, whylen, "key lookup %s: %s", name, dns_status_name(a.status));
		e = DKIM_RESULT_TEMPERROR;
		break;
	default:
		e = perm(why, whylen, "no key for %s (%s)", name, dns_status_name(a.status));
	}
	dns_answer_free(&a);
	return e;
}

/* Never prompt for a passphrase: an encrypted key is just not loadable here. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

int
dkim_key_private_load(const char *pem, size_t len, struct dkim_key_private *out)
{
	*out = (struct dkim_key_private){0};
	if (len > INT32_MAX)
		return -EINVAL;
	_cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return -ENOMEM;
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (!k)
		return -EINVAL;
	int id = EVP_PKEY_get_base_id(k);
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		return -EOPNOTSUPP;
	}
	out->pkey = k;
	out->type = id == EVP_PKEY_RSA ? DKIM_KEY_RSA : DKIM_KEY_ED25519;
	out->bits = (unsigned)EVP_PKEY_get_bits(k);
	out->ctx = ctx_new();
	return 0;
}

int
dkim_key_private_generate(enum dkim_key_type type, unsigned bits, struct dkim_key_private *out)
{
	*out = (struct dkim_key_private){.type = type};
	if (type == DKIM_KEY_RSA && (bits < DKIM_KEY_RSA_MIN || bits > DKIM_KEY_RSA_MAX))
		return -EINVAL;
	out->pkey = type == DKIM_KEY_RSA ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)
	                                 : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!out->pkey)
		return -EIO;
	out->bits = (unsigned)EVP_PKEY_get_bits(out->pkey);
	out->ctx = ctx_new();
	return 0;
}

int
dkim_key_private_pem(const struct dkim_key_private *k, struct buf *out)
{
	_cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	if (!bio)
		return -ENOMEM;
	if (PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1)
		return -EIO;
	long n = BIO_get_mem_data(bio, &data);
	return n < 0 ? -EIO : buf_append(out, data, (size_t)n);
}

/* The public key as p= carries it: SubjectPublicKeyInfo for RSA, 32 raw bytes for Ed25519. */
static int
public_der(const struct dkim_key_private *k, unsigned char *der, size_t size, size_t *len)
{
	if (k->type == DKIM_KEY_ED25519) {
		*len = size;
		return EVP_PKEY_get_raw_public_key(k->pkey, der, len) == 1 ? 0 : -EIO;
	}
	int n = i2d_PUBKEY(k->pkey, NULL);
	if (n <= 0 || (size_t)n > size)
		return -EIO;
	unsigned char *p = der;
	*len = (size_t)i2d_PUBKEY(k->pkey, &p);
	return 0;
}

int
dkim_key_private_record(const struct dkim_key_private *k, struct buf *out)
{
	const struct dkim_key_record_opts none = {0};
	return dkim_key_private_record_opts(k, &none, out);
}

/* dkim-quoted-printable (RFC 6376 §2.11), also escaping '"' and '\\' so that the text needs no
 * quoting in a zone file. */
static int
note_qp(const char *note, struct buf *out)
{
	int r = 0;
	for (const unsigned char *c = (const unsigned char *)note; *c && r == 0; c++) {
		bool plain = *c > ' ' && *c < 0x7f && !strchr(";=\"\\", *c);
		r = plain ? buf_append(out, (const char *)c, 1) : buf_printf(out, "=%02X", *c);
	}
	return r;
}

static int
record_tags(const struct dkim_key_record_opts *o, struct buf *out)
{
	int r = 0;
	if (o->testing)
		r = buf_append_str(out, "t=y; ");
	if (r == 0 && o->email_only)
		r = buf_append_str(out, "s=email; ");
	if (r == 0 && o->note)
		r = buf_append_str(out, "n=") ?: note_qp(o->note, out) ?: buf_append_str(out, "; ");
	return r;
}

int
dkim_key_private_record_opts(const struct dkim_key_private *k, const struct dkim_key_record_opts *o,
                             struct buf *out)
{
	unsigned char der[KEY_DER_MAX];
	char b64[DKIM_B64_LEN(KEY_DER_MAX) + 1];
	size_t len;
	if (o->note && strlen(o->note) > DKIM_KEY_NOTE_MAX)
		return -EINVAL;
	int r = public_der(k, der, sizeof(der), &len);
	if (r == 0)
		r = dkim_b64_encode(der, len, b64, sizeof(b64));
	if (r == 0)
		r = buf_printf(out, "v=DKIM1; k=%s; ", k->type == DKIM_KEY_RSA ? "rsa" : "ed25519");
	if (r == 0)
		r = record_tags(o, out);
	if (r == 0)
		r = buf_printf(out, "p=%s", b64);
	return r;
}

bool
dkim_key_matches(const struct dkim_key *pub, const struct dkim_key_private *priv)
{
	return pub->pkey && priv->pkey && EVP_PKEY_eq(pub->pkey, priv->pkey) == 1;
}

bool
dkim_key_record_revoked(const char *txt, size_t len)
{
	struct dkim_tag_list l;
	if (dkim_tag_parse(txt, len, &l) < 0)
		return false;
	const struct dkim_tag *p = dkim_tag_find(&l, "p");
	return p && p->value_len == 0;
}

void
dkim_key_private_clear(struct dkim_key_private *k)
{
	EVP_PKEY_free(k->pkey);
	ctx_unref(k->ctx);
	*k = (struct dkim_key_private){0};
}

DEFINE_CLEANUP_FUNC(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
DEFINE_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)

/* RSA PKCS#1 v1.5 over a digest made elsewhere. */
static EVP_PKEY_CTX *
rsa_ctx(EVP_PKEY *pkey, enum dkim_hash hash, bool sign)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!ctx)
		return NULL;
	if ((sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, dkim_canon_md(hash)) != 1) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* A context for pkey: a copy of the one prepared in c when there is c. */
static EVP_PKEY_CTX *
rsa_prepared(struct dkim_key_ctx *c, EVP_PKEY *pkey, enum dkim_hash hash, bool sign)
{
	EVP_PKEY_CTX *copy = NULL;
	if (!c)
		return rsa_ctx(pkey, hash, sign);
	pthread_mutex_lock(&c->lock);
	if (!c->rsa[hash])
		c->rsa[hash] = rsa_ctx(pkey, hash, sign);
	if (c->rsa[hash])
		copy = EVP_PKEY_CTX_dup(c->rsa[hash]);
	pthread_mutex_unlock(&c->lock);
	return copy;
}

static EVP_MD_CTX *
ed_ctx(EVP_PKEY *pkey, bool sign)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int r = !md    ? 0
	        : sign ? EVP_DigestSignInit_ex(md, NULL, NULL, NULL, NULL, pkey, NULL)
	               : EVP_DigestVerifyInit_ex(md, NULL, NULL, NULL, NULL, pkey, NULL);
	if (r != 1) {
		EVP_MD_CTX_free(md);
		return NULL;
	}
	return md;
}

static EVP_MD_CTX *
ed_prepared(struct dkim_key_ctx *c, EVP_PKEY *pkey, bool sign)
{
	EVP_MD_CTX *copy = NULL;
	if (!c)
		return ed_ctx(pkey, sign);
	pthread_mutex_lock(&c->lock);
	if (!c->ed)
		c->ed = ed_ctx(pkey, sign);
	if (c->ed && (copy = EVP_MD_CTX_new()) && EVP_MD_CTX_copy_ex(copy, c->ed) != 1) {
		EVP_MD_CTX_free(copy);
		copy = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	return copy;
}

int
dkim_key_verify(const struct dkim_key *k, enum dkim_hash hash, const unsigned char *digest,
                size_t dlen, const unsigned char *sig, size_t slen)
{
	if (k->type == DKIM_KEY_RSA) {
		_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx =
		    rsa_prepared(k->ctx, k->pkey, hash, false);
		if (!ctx)
			return -ENOMEM;
		return EVP_PKEY_verify(ctx, sig, slen, digest, dlen) == 1;
	}
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = ed_prepared(k->ctx, k->pkey, false);
	if (!md)
		return -ENOMEM;
	return EVP_DigestVerify(md, sig, slen, digest, dlen) == 1;
}

int
dkim_key_private_sign(const struct dkim_key_private *k, enum dkim_hash hash,
                      const unsigned char *digest, size_t dlen, unsigned char *sig, size_t *slen)
{
	if ((size_t)EVP_PKEY_get_size(k->pkey) > *slen)
		return -ENOBUFS;
	if (k->type == DKIM_KEY_RSA) {
		_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx =
		    rsa_prepared(k->ctx, k->pkey, hash, true);
		if (!ctx)
			return -ENOMEM;
		return EVP_PKEY_sign(ctx, sig, slen, digest, dlen) == 1 ? 0 : -EIO;
	}
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = ed_prepared(k->ctx, k->pkey, true);
	if (!md)
		return -ENOMEM;
	return EVP_DigestSign(md, sig, slen, digest, dlen) == 1 ? 0 : -EIO;
}
