#include "spf_record.h"

#include "core/cleanup.h"
#include "core/net.h"
#include "spf_macro.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The version words a record may start with, and which scopes they cover. */
enum version {
	V_NONE,
	V_SPF1,
	V_SPF2, /* spf2.N/scope,... */
};

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
ends_word(const char *s, size_t len, size_t i)
{
	return i == len || s[i] == ' ';
}

/* Does the spf2.N scope list s[from..to) name scope? */
static bool
scopes_cover(const char *s, size_t from, size_t to, enum spf_scope scope)
{
	const char *want = scope == SPF_SCOPE_PRA ? "pra" : "mfrom";
	size_t wlen = strlen(want);
	for (size_t i = from; i < to;) {
		size_t e = i;
		while (e < to && s[e] != ',')
			e++;
		if (e - i == wlen && strncasecmp(s + i, want, wlen) == 0)
			return true;
		i = e + 1;
	}
	return false;
}

/* "spf2." 1*DIGIT "/" scope-id *( "," scope-id ): the length of the version, 0 if none. */
static size_t
spf2_version(const char *s, size_t len)
{
	size_t i = 5;
	if (len < 7 || strncasecmp(s, "spf2.", 5) != 0)
		return 0;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == 5 || i >= len || s[i] != '/')
		return 0;
	for (i++;; i++) {
		size_t start = i;
		while (i < len && (spf_macro_is_alnum((unsigned char)s[i]) || s[i] == '-' ||
		                   s[i] == '_' || s[i] == '.'))
			i++;
		if (i == start || !is_alpha(s[start]))
			return 0;
		if (i >= len || s[i] != ',')
			break;
	}
	return ends_word(s, len, i) ? i : 0;
}

/* Which version a TXT string declares; *vlen is the length of the version word. */
static enum version
classify(const char *s, size_t len, size_t *vlen)
{
	if (len >= 6 && strncasecmp(s, "v=spf1", 6) == 0 && ends_word(s, len, 6)) {
		*vlen = 6;
		return V_SPF1;
	}
	*vlen = spf2_version(s, len);
	return *vlen ? V_SPF2 : V_NONE;
}

/* Counts the records for scope of version v; *first is the index of the first one. */
static size_t
count_version(const struct dns_answer *a, enum version v, enum spf_scope scope, size_t *first)
{
	size_t n = 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];
		size_t vlen;
		if (rr->type != DNS_T_TXT || classify(rr->u.txt.data, rr->u.txt.len, &vlen) != v)
			continue;
		if (v == V_SPF2 && !scopes_cover(rr->u.txt.data, 7, vlen, scope))
			continue;
		if (n++ == 0)
			*first = i;
	}
	return n;
}

int
spf_record_select(const struct dns_answer *a, enum spf_scope scope, struct spf_error *err)
{
	size_t first = 0, n = 0;
	*err = (struct spf_error){0};
	/* RFC 4406 §4.4: spf2.0 records for the scope win over v=spf1 ones */
	if (scope != SPF_SCOPE_SPF1)
		n = count_version(a, V_SPF2, scope, &first);
	if (n == 0)
		n = count_version(a, V_SPF1, scope, &first);
	if (n == 0) {
		err->msg = "no SPF record";
		return -ENOENT;
	}
	if (n > 1) {
		/* pyspf's wording, which its Received-SPF tests expect */
		err->msg = "Two or more type TXT spf records found.";
		return -ENOTUNIQ;
	}
	return (int)first;
}

static int
fail_at(struct spf_error *err, const char *msg, uint32_t off, uint32_t len)
{
	*err = (struct spf_error){.msg = msg, .at = {off, len}};
	return -EINVAL;
}

/* "0" / %x31-39 *DIGIT, at most max; -1 when s is not such a number. */
static int
cidr_value(const char *s, size_t len, unsigned max)
{
	unsigned v = 0;
	if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v <= max ? (int)v : -2;
}

/* Length of a trailing "/N" (N a cidr number of up to 3 digits) of s, 0 when none. */
static size_t
trailing_cidr(const char *s, size_t len)
{
	size_t d = len;
	while (d > 0 && len - d < 4 && s[d - 1] >= '0' && s[d - 1] <= '9')
		d--;
	if (d == len || d == 0 || s[d - 1] != '/')
		return 0;
	if (len - d > 3 || (s[d] == '0' && len - d > 1))
		return 0;
	return len - d + 1;
}

/* The parse of one term: the record text and the term's place in it. */
struct term_ctx {
	const char *s; /* the whole record */
	uint32_t off;  /* where the term starts */
	uint32_t len;
	struct spf_error *err;
};

static int
domain_spec(const struct term_ctx *t, uint32_t at, uint32_t len, struct spf_term *out)
{
	if (len == 0 || spf_macro_check(t->s + at, len, SPF_MACRO_DOMAIN) < 0)
		return fail_at(t->err, "Invalid domain found (use FQDN)", at, len);
	out->spec = (struct spf_span){at, len};
	return 0;
}

/* rest = [ ":" domain-spec ] for ptr, ":" domain-spec for include/exists */
static int
parse_target(const struct term_ctx *t, uint32_t rest, bool required, struct spf_term *out)
{
	uint32_t end = t->off + t->len;
	if (rest == end && !required)
		return 0;
	if (rest == end || t->s[rest] != ':')
		return fail_at(t->err, required ? "mechanism needs a domain" : "CIDR not allowed",
		               t->off, t->len);
	return domain_spec(t, rest + 1, end - rest - 1, out);
}

/* a, mx: [ ":" domain-spec ] [ ip4-cidr-length ] [ "/" ip6-cidr-length ] */
static int
parse_dual(const struct term_ctx *t, uint32_t rest, struct spf_term *out)
{
	const char *s = t->s;
	uint32_t end = t->off + t->len;
	size_t c = trailing_cidr(s + rest, end - rest);
	if (c && end - c > rest && s[end - c - 1] == '/') {
		int v = cidr_value(s + end - c + 1, c - 1, 128);
		if (v < 0)
			return fail_at(t->err, "Invalid IP6 CIDR length", t->off, t->len);
		out->cidr6 = (uint8_t)v;
		end -= (uint32_t)c + 1;
		c = trailing_cidr(s + rest, end - rest);
	}
	if (c) {
		int v = cidr_value(s + end - c + 1, c - 1, 32);
		if (v < 0)
			return fail_at(t->err, "Invalid IP4 CIDR length", t->off, t->len);
		out->cidr4 = (uint8_t)v;
		end -= (uint32_t)c;
	}
	if (rest == end)
		return 0;
	if (s[rest] != ':')
		return fail_at(t->err, "Unknown mechanism found", t->off, t->len);
	return domain_spec(t, rest + 1, end - rest - 1, out);
}

/*
 * ip4-network = qnum "." qnum "." qnum "." qnum; qnum = 0..255 without leading zeros.
 * Written out because records are parsed on every uncached check.
 */
static bool
parse_ip4(const char *s, size_t len, uint8_t out[4])
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;
		if (part > 0 && (i >= len || s[i++] != '.'))
			return false;
		for (; i < len && s[i] >= '0' && s[i] <= '9' && digits < 4; i++, digits++)
			v = v * 10 + (unsigned)(s[i] - '0');
		if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && s[i - digits] == '0'))
			return false;
		out[part] = (uint8_t)v;
	}
	return i == len;
}

/* ip4, ip6: ":" network [ "/" length ] */
static int
parse_ip(const struct term_ctx *t, uint32_t rest, int family, struct spf_term *out)
{
	const char *s = t->s;
	uint32_t end = t->off + t->len, slash = end;
	bool v4 = family == AF_INET;
	char buf[INET6_ADDRSTRLEN];

	if (rest == end || s[rest] != ':')
		return fail_at(t->err, v4 ? "Invalid IP4 address" : "Invalid IP6 address", t->off,
		               t->len);
	while (slash > rest && s[slash - 1] != '/')
		slash--;
	if (slash > rest) {
		int v = cidr_value(s + slash, end - slash, v4 ? 32 : 128);
		if (v < 0)
			return fail_at(t->err,
			               v4 ? "Invalid IP4 CIDR length" : "Invalid IP6 CIDR length",
			               t->off, t->len);
		if (v4)
			out->cidr4 = (uint8_t)v;
		else
			out->cidr6 = (uint8_t)v;
		end = slash - 1;
	}
	size_t alen = end - rest - 1;
	if (alen == 0 || alen >= sizeof(buf))
		return fail_at(t->err, v4 ? "Invalid IP4 address" : "Invalid IP6 address", t->off,
		               t->len);
	memcpy(buf, s + rest + 1, alen);
	buf[alen] = '\0';
	if (v4 ? !parse_ip4(buf, alen, out->addr) : inet_pton(AF_INET6, buf, out->addr) != 1)
		return fail_at(t->err, v4 ? "Invalid IP4 address" : "Invalid IP6 address", t->off,
		               t->len);
	return 0;
}

static const struct {
	const char *name;
	size_t len;
	enum spf_mech mech;
} mech_names[] = {
    {"all", 3, SPF_M_ALL}, {"include", 7, SPF_M_INCLUDE}, {"a", 1, SPF_M_A},
    {"mx", 2, SPF_M_MX},   {"ptr", 3, SPF_M_PTR},         {"ip4", 3, SPF_M_IP4},
    {"ip6", 3, SPF_M_IP6}, {"exists", 6, SPF_M_EXISTS},
};

static int
mech_lookup(const char *s, size_t len)
{
	char low[8];
	if (len == 0 || len >= sizeof(low))
		return -1;
	for (size_t i = 0; i < len; i++)
		low[i] = (char)(s[i] | 0x20); /* s is alphanumeric: this lower-cases letters */
	for (size_t i = 0; i < ARRAY_SIZE(mech_names); i++)
		if (mech_names[i].len == len && memcmp(low, mech_names[i].name, len) == 0)
			return (int)mech_names[i].mech;
	return -1;
}

static uint8_t
qualifier(char c)
{
	switch (c) {
	case '-':
		return SPF_FAIL;
	case '~':
		return SPF_SOFTFAIL;
	case '?':
		return SPF_NEUTRAL;
	default:
		return SPF_PASS;
	}
}

static int
parse_mechanism(const struct term_ctx *t, struct spf_term *out)
{
	const char *s = t->s;
	uint32_t i = t->off, end = t->off + t->len;

	*out = (struct spf_term){
	    .qual = qualifier(s[i]), .cidr4 = 32, .cidr6 = 128, .text = {t->off, t->len}};
	if (strchr("+-~?", s[i]))
		i++;
	uint32_t name = i;
	while (i < end && spf_macro_is_alnum((unsigned char)s[i]))
		i++;
	int m = mech_lookup(s + name, i - name);
	if (m < 0)
		return fail_at(t->err, "Unknown mechanism found", t->off, t->len);
	out->mech = (uint8_t)m;
	switch (m) {
	case SPF_M_ALL:
		return i == end ? 0 : fail_at(t->err, "all takes no argument", t->off, t->len);
	case SPF_M_INCLUDE:
	case SPF_M_EXISTS:
		return parse_target(t, i, true, out);
	case SPF_M_PTR:
		return parse_target(t, i, false, out);
	case SPF_M_A:
	case SPF_M_MX:
		return parse_dual(t, i, out);
	default:
		return parse_ip(t, i, m == SPF_M_IP4 ? AF_INET : AF_INET6, out);
	}
}

/* name "=" when the term is a modifier: the length of name, else 0. */
static size_t
modifier_name(const char *s, size_t len)
{
	size_t i = 1;
	if (len == 0 || !is_alpha(s[0]))
		return 0;
	while (i < len && (spf_macro_is_alnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' ||
	                   s[i] == '.'))
		i++;
	return i < len && s[i] == '=' ? i : 0;
}

static int
parse_modifier(const struct term_ctx *t, size_t nlen, struct spf_record *r)
{
	const char *name = t->s + t->off;
	uint32_t v = t->off + (uint32_t)nlen + 1, vlen = t->len - (uint32_t)nlen - 1;
	bool redirect = nlen == 8 && strncasecmp(name, "redirect", 8) == 0;
	bool exp = nlen == 3 && strncasecmp(name, "exp", 3) == 0;

	if (!redirect && !exp) {
		/* unknown modifiers are ignored, but must be well formed (§6) */
		if (spf_macro_check(t->s + v, vlen, SPF_MACRO_STRING) < 0)
			return fail_at(t->err, "Invalid macro in modifier", t->off, t->len);
		return 0;
	}
	if (redirect ? r->has_redirect : r->has_exp)
		return fail_at(t->err,
		               redirect ? "redirect= MUST appear at most once"
		                        : "exp= MUST appear at most once",
		               t->off, t->len);
	struct spf_term tmp;
	if (domain_spec(t, v, vlen, &tmp) < 0)
		return -EINVAL;
	if (redirect) {
		r->has_redirect = true;
		r->redirect = tmp.spec;
	} else {
		r->has_exp = true;
		r->exp = tmp.spec;
	}
	return 0;
}

/* Every byte of a term is visible ASCII (macro-literal and the macro syntax need no more). */
static int
term_chars(const struct term_ctx *t)
{
	for (uint32_t i = t->off; i < t->off + t->len; i++) {
		unsigned char c = (unsigned char)t->s[i];
		if (c >= 0x80)
			return fail_at(t->err, "Non-ascii characters found", t->off, t->len);
		if (c < 0x21 || c == 0x7f)
			return fail_at(t->err, "Control characters found", t->off, t->len);
	}
	return 0;
}

static int
parse_term(struct spf_record *r, uint32_t off, uint32_t len, struct spf_error *err)
{
	struct term_ctx t = {.s = r->text, .off = off, .len = len, .err = err};
	if (term_chars(&t) < 0)
		return -EINVAL;
	size_t nlen = modifier_name(r->text + off, len);
	if (nlen)
		return parse_modifier(&t, nlen, r);
	if (parse_mechanism(&t, &r->terms[r->n]) < 0)
		return -EINVAL;
	r->n++;
	return 0;
}

static size_t
count_terms(const char *s, size_t len, size_t from)
{
	size_t n = 0;
	for (size_t i = from; i < len; i++)
		if (s[i] != ' ' && (i == from || s[i - 1] == ' '))
			n++;
	return n;
}

static int
parse_terms(struct spf_record *r, size_t from, struct spf_error *err)
{
	const char *s = r->text;
	for (size_t i = from; i < r->len;) {
		if (s[i] == ' ') {
			i++;
			continue;
		}
		size_t e = i;
		while (e < r->len && s[e] != ' ')
			e++;
		if (parse_term(r, (uint32_t)i, (uint32_t)(e - i), err) < 0)
			return -EINVAL;
		i = e;
	}
	return 0;
}

int
spf_record_parse(const char *text, size_t len, struct spf_record **out, struct spf_error *err)
{
	size_t vlen;
	*err = (struct spf_error){0};
	if (len > DNS_TXT_MAX)
		return fail_at(err, "record too long", 0, 0);
	if (classify(text, len, &vlen) == V_NONE)
		return fail_at(err, "not an SPF record", 0, 0);
	size_t n = count_terms(text, len, vlen);
	if (n > SPF_TERMS_MAX) {
		*err = (struct spf_error){.msg = "too many terms"};
		return -E2BIG;
	}
	_cleanup_free_ struct spf_record *r =
	    malloc(sizeof(*r) + n * sizeof(struct spf_term) + len + 1);
	if (!r)
		return -ENOMEM;
	*r = (struct spf_record){.refs = 1, .len = len, .terms = (struct spf_term *)(r + 1)};
	char *copy = (char *)(r->terms + n);
	memcpy(copy, text, len);
	copy[len] = '\0';
	r->text = copy;
	if (parse_terms(r, vlen, err) < 0)
		return -EINVAL;
	*out = TAKE_PTR(r);
	return 0;
}

void
spf_record_free(struct spf_record *r)
{
	if (r && --r->refs == 0)
		free(r);
}

/* Slots probed for one text before the least recently used of them is replaced. */
#define CACHE_PROBE 8

struct cache_slot {
	uint64_t hash;
	uint64_t used; /* tick of the last hit */
	struct spf_record *rec;
};

struct spf_record_cache {
	size_t cap; /* a power of two */
	uint64_t tick;
	struct cache_slot slot[];
};

int
spf_record_cache_new(size_t max, struct spf_record_cache **out)
{
	size_t cap = CACHE_PROBE;
	while (cap < max && cap < (1u << 20))
		cap *= 2;
	struct spf_record_cache *c = calloc(1, sizeof(*c) + cap * sizeof(struct cache_slot));
	if (!c)
		return -ENOMEM;
	c->cap = cap;
	*out = c;
	return 0;
}

void
spf_record_cache_free(struct spf_record_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->cap; i++)
		spf_record_free(c->slot[i].rec);
	free(c);
}

/*
 * Hashes the length and five 8-byte samples spread over the text: constant time, and a hit is
 * confirmed by comparing the whole text anyway (a collision only costs a parse).
 */
static uint64_t
text_hash(const char *s, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
	if (len < 8) {
		uint64_t w = 0;
		memcpy(&w, s, len);
		return (h ^ w) * 0xff51afd7ed558ccdULL;
	}
	for (size_t k = 0; k < 5; k++) {
		uint64_t w;
		memcpy(&w, s + (len - 8) * k / 4, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	return h;
}

/* The slot holding text, or the one to replace (empty, else least recently used). */
static struct cache_slot *
cache_find(struct spf_record_cache *c, uint64_t h, const char *text, size_t len, bool *hit)
{
	struct cache_slot *victim = NULL;
	for (size_t i = 0; i < CACHE_PROBE; i++) {
		struct cache_slot *s = &c->slot[(h + i) & (c->cap - 1)];
		if (s->rec && s->hash == h && s->rec->len == len &&
		    memcmp(s->rec->text, text, len) == 0) {
			*hit = true;
			return s;
		}
		if (!victim || (victim->rec && (!s->rec || s->used < victim->used)))
			victim = s;
	}
	*hit = false;
	return victim;
}

int
spf_record_cache_parse(struct spf_record_cache *c, const char *text, size_t len,
                       struct spf_record **out, struct spf_error *err)
{
	bool hit;
	if (!c)
		return spf_record_parse(text, len, out, err);
	uint64_t h = text_hash(text, len);
	struct cache_slot *s = cache_find(c, h, text, len, &hit);
	s->used = ++c->tick;
	if (hit) {
		*err = (struct spf_error){0};
		s->rec->refs++;
		*out = s->rec;
		return 0;
	}
	int r = spf_record_parse(text, len, out, err);
	if (r < 0)
		return r;
	spf_record_free(s->rec);
	s->hash = h;
	s->rec = *out;
	s->rec->refs++;
	return 0;
}

size_t
spf_record_dns_terms(const struct spf_record *r)
{
	size_t n = r->has_redirect;
	for (size_t i = 0; i < r->n; i++)
		n += r->terms[i].mech != SPF_M_ALL && r->terms[i].mech != SPF_M_IP4 &&
		     r->terms[i].mech != SPF_M_IP6;
	return n;
}
