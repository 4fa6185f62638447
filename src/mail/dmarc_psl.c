/*
 * Public suffix list: parsing, an open-addressing hash of rule names, the list's matching
 * algorithm, and the RFC 3492 Punycode encoder that gives Unicode rules their A-label form.
 */
#include "dmarc_psl.h"

#include "core/cleanup.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NAME_MAX_LEN 253
#define LABEL_MAX_LEN 63

enum rule_bits {
	RULE_NORMAL = 1u << 0,    /* "example.com" */
	RULE_WILDCARD = 1u << 1,  /* "*.example.com", stored under "example.com" */
	RULE_EXCEPTION = 1u << 2, /* "!www.example.com", stored under "www.example.com" */
};

struct slot {
	uint32_t off; /* into names; 0: empty slot (names[0] is a sentinel) */
	uint32_t hash;
	uint16_t len;
	uint8_t bits;
};

struct dmarc_psl {
	struct slot *slot;
	size_t mask; /* slot count - 1, a power of two */
	size_t used;
	char *names;
	size_t names_len, names_cap;
};

/* FNV-1a: short keys, no adversary (the list is a local file). */
static uint32_t
hash_name(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static struct slot *
find_slot(const struct dmarc_psl *psl, const char *s, size_t n, uint32_t h)
{
	for (size_t i = h & psl->mask;; i = (i + 1) & psl->mask) {
		struct slot *sl = &psl->slot[i];
		if (sl->off == 0 ||
		    (sl->hash == h && sl->len == n && memcmp(psl->names + sl->off, s, n) == 0))
			return sl;
	}
}

static int
grow_table(struct dmarc_psl *psl)
{
	size_t n = (psl->mask + 1) * 2;
	struct slot *old = psl->slot;
	size_t old_n = psl->mask + 1;
	psl->slot = calloc(n, sizeof(*psl->slot));
	if (!psl->slot) {
		psl->slot = old;
		return -ENOMEM;
	}
	psl->mask = n - 1;
	for (size_t i = 0; i < old_n; i++)
		if (old[i].off)
			*find_slot(psl, psl->names + old[i].off, old[i].len, old[i].hash) = old[i];
	free(old);
	return 0;
}

static int
store_name(struct dmarc_psl *psl, const char *s, size_t n, uint32_t *off)
{
	if (psl->names_len + n + 1 > psl->names_cap) {
		size_t cap = psl->names_cap * 2 + n + 1;
		char *p = realloc(psl->names, cap);
		if (!p)
			return -ENOMEM;
		psl->names = p;
		psl->names_cap = cap;
	}
	*off = (uint32_t)psl->names_len;
	memcpy(psl->names + psl->names_len, s, n);
	psl->names[psl->names_len + n] = '\0';
	psl->names_len += n + 1;
	return 0;
}

static int
add_rule(struct dmarc_psl *psl, const char *s, size_t n, uint8_t bits)
{
	uint32_t h = hash_name(s, n);
	struct slot *sl = find_slot(psl, s, n, h);
	if (sl->off) {
		sl->bits |= bits;
		return 0;
	}
	if (psl->used >= DMARC_PSL_RULES_MAX)
		return -EFBIG;
	if ((psl->used + 1) * 2 > psl->mask + 1) {
		int e = grow_table(psl);
		if (e < 0)
			return e;
		sl = find_slot(psl, s, n, h);
	}
	uint32_t off;
	int e = store_name(psl, s, n, &off);
	if (e < 0)
		return e;
	*sl = (struct slot){.off = off, .hash = h, .len = (uint16_t)n, .bits = bits};
	psl->used++;
	return 0;
}

/* One UTF-8 sequence at *p (advanced); -1 for malformed input. */
static int32_t
utf8_next(const unsigned char **p, const unsigned char *end)
{
	const unsigned char *s = *p;
	unsigned len = s[0] < 0x80             ? 1
	               : (s[0] & 0xe0) == 0xc0 ? 2
	               : (s[0] & 0xf0) == 0xe0 ? 3
	               : (s[0] & 0xf8) == 0xf0 ? 4
	                                       : 0;
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (len == 0 || (size_t)(end - s) < len)
		return -1;
	uint32_t c = len == 1 ? s[0] : s[0] & (0x7fu >> len);
	for (unsigned i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*p = s + len;
	return (int32_t)c;
}

/* RFC 3492 §6.1 */
static uint32_t
puny_adapt(uint32_t delta, uint32_t points, bool first)
{
	uint32_t k = 0;
	delta = first ? delta / 700 : delta / 2;
	delta += delta / points;
	while (delta > ((36 - 1) * 26) / 2) {
		delta /= 36 - 1;
		k += 36;
	}
	return k + (36 * delta) / (delta + 38);
}

struct out {
	char *p;
	size_t len, cap;
};

static bool
put(struct out *o, char c)
{
	if (o->len + 1 >= o->cap)
		return false;
	o->p[o->len++] = c;
	return true;
}

static bool
puny_digit(struct out *o, uint32_t d)
{
	return put(o, (char)(d < 26 ? 'a' + d : '0' + d - 26));
}

/* Emits delta as a generalized variable-length integer (RFC 3492 §6.3). */
static bool
puny_delta(struct out *o, uint32_t q, uint32_t bias)
{
	for (uint32_t k = 36;; k += 36) {
		uint32_t t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
		if (q < t)
			return puny_digit(o, q);
		if (!puny_digit(o, t + (q - t) % (36 - t)))
			return false;
		q = (q - t) / (36 - t);
	}
}

/* RFC 3492 §6.3 encoding of cp[0..n) after "xn--"; false if it does not fit. */
static bool
punycode(const uint32_t *cp, size_t n, struct out *o)
{
	uint32_t basic = 0;
	for (size_t i = 0; i < n; i++)
		if (cp[i] < 0x80 && (++basic, !put(o, (char)cp[i])))
			return false;
	if (basic > 0 && !put(o, '-'))
		return false;
	uint32_t next = 128, delta = 0, bias = 72;
	for (uint32_t h = basic; h < n; delta++, next++) {
		uint32_t m = UINT32_MAX;
		for (size_t i = 0; i < n; i++)
			if (cp[i] >= next && cp[i] < m)
				m = cp[i];
		delta += (m - next) * (h + 1); /* labels are short: no overflow */
		next = m;
		for (size_t i = 0; i < n; i++) {
			if (cp[i] < next)
				delta++;
			if (cp[i] != next)
				continue;
			if (!puny_delta(o, delta, bias))
				return false;
			bias = puny_adapt(delta, h + 1, h == basic);
			delta = 0;
			h++;
		}
	}
	return true;
}

/* One label to its A-label form in o; false when it is not valid UTF-8 or too long. */
static bool
to_alabel(const char *s, size_t n, struct out *o)
{
	uint32_t cp[LABEL_MAX_LEN + 1];
	size_t k = 0;
	bool ascii = true;
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		int32_t c = utf8_next(&p, end);
		if (c < 0 || k == ARRAY_SIZE(cp))
			return false;
		ascii &= c < 0x80;
		cp[k++] = (uint32_t)c;
	}
	if (ascii) {
		for (size_t i = 0; i < n; i++)
			if (!put(o, s[i]))
				return false;
		return true;
	}
	size_t start = o->len;
	const char *pre = "xn--";
	while (*pre)
		if (!put(o, *pre++))
			return false;
	return punycode(cp, k, o) && o->len - start <= LABEL_MAX_LEN;
}

/* The A-label form of a Unicode rule name into buf; false when it has none or is ASCII. */
static bool
rule_alabel(const char *s, size_t n, char *buf, size_t cap, size_t *len)
{
	bool ascii = true;
	for (size_t i = 0; i < n; i++)
		ascii &= (unsigned char)s[i] < 0x80;
	if (ascii)
		return false;
	struct out o = {buf, 0, cap};
	for (size_t i = 0; i < n;) {
		const char *dot = memchr(s + i, '.', n - i);
		size_t l = dot ? (size_t)(dot - (s + i)) : n - i;
		if (!to_alabel(s + i, l, &o) || (dot && !put(&o, '.')))
			return false;
		i += l + (dot ? 1 : 0);
	}
	*len = o.len;
	return o.len <= NAME_MAX_LEN;
}

static bool
name_ok(const char *s, size_t n)
{
	if (n == 0 || n > NAME_MAX_LEN || s[0] == '.' || s[n - 1] == '.')
		return false;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (++label > LABEL_MAX_LEN || s[i] == '*' || s[i] == '!') {
			return false;
		}
	}
	return true;
}

/* One rule as written (already cut at the first whitespace). Lines it cannot use: ignored. */
static int
parse_rule(struct dmarc_psl *psl, char *s, size_t n)
{
	uint8_t bits = RULE_NORMAL;
	if (n > 0 && s[0] == '!') {
		bits = RULE_EXCEPTION;
		s++, n--;
	} else if (n > 2 && s[0] == '*' && s[1] == '.') {
		bits = RULE_WILDCARD;
		s += 2, n -= 2;
	}
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
	if (!name_ok(s, n))
		return 0;
	int e = add_rule(psl, s, n, bits);
	char alabel[NAME_MAX_LEN + 8];
	size_t alen;
	if (e == 0 && rule_alabel(s, n, alabel, sizeof(alabel), &alen))
		e = add_rule(psl, alabel, alen, bits);
	return e;
}

static bool
starts(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);
	return n >= k && memcmp(s, prefix, k) == 0;
}

static int
parse_list(struct dmarc_psl *psl, char *text, size_t len, unsigned flags)
{
	bool private_section = false;
	for (size_t i = 0; i < len;) {
		char *line = text + i;
		char *nl = memchr(line, '\n', len - i);
		size_t n = nl ? (size_t)(nl - line) : len - i;
		i += n + 1;
		if (starts(line, n, "//")) {
			if (starts(line, n, "// ===BEGIN PRIVATE DOMAINS==="))
				private_section = true;
			else if (starts(line, n, "// ===END PRIVATE DOMAINS==="))
				private_section = false;
			continue;
		}
		/* the rule is the line up to its first whitespace */
		size_t r = 0;
		while (r < n && line[r] != ' ' && line[r] != '\t' && line[r] != '\r')
			r++;
		if (r == 0 || (private_section && (flags & DMARC_PSL_ICANN_ONLY)))
			continue;
		int e = parse_rule(psl, line, r);
		if (e < 0)
			return e;
	}
	return psl->used > 0 ? 0 : -EINVAL;
}

void
dmarc_psl_free(struct dmarc_psl *psl)
{
	if (!psl)
		return;
	free(psl->slot);
	free(psl->names);
	free(psl);
}

DEFINE_CLEANUP_FUNC(struct dmarc_psl, dmarc_psl_free)

int
dmarc_psl_load(const char *path, unsigned flags, struct dmarc_psl **out)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int e =
	    file_read_path(path ? path : DMARC_PSL_DEFAULT_PATH, DMARC_PSL_FILE_MAX, &text, &len);
	if (e < 0)
		return e;
	_cleanup_(dmarc_psl_freep) struct dmarc_psl *psl = calloc(1, sizeof(*psl));
	if (!psl)
		return -ENOMEM;
	psl->mask = 1023;
	psl->slot = calloc(psl->mask + 1, sizeof(*psl->slot));
	psl->names_cap = len + 1;
	psl->names = malloc(psl->names_cap);
	if (!psl->slot || !psl->names)
		return -ENOMEM;
	psl->names[0] = '\0'; /* offset 0 marks an empty slot */
	psl->names_len = 1;
	e = parse_list(psl, text, len, flags);
	if (e < 0)
		return e;
	*out = TAKE_PTR(psl);
	return 0;
}

size_t
dmarc_psl_size(const struct dmarc_psl *psl)
{
	return psl->used;
}

static uint8_t
rule_bits(const struct dmarc_psl *psl, const char *s, size_t n)
{
	const struct slot *sl = find_slot(psl, s, n, hash_name(s, n));
	return sl->off ? sl->bits : 0;
}

/* "Example.COM." -> "example.com" in buf; the label offsets in start[], their count in *n. */
static int
split_name(const char *domain, char buf[NAME_MAX_LEN + 1], size_t start[], size_t *n)
{
	size_t len = domain ? strlen(domain) : 0;
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > NAME_MAX_LEN)
		return -EINVAL;
	*n = 0;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = domain[i];
		buf[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		if (c == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
		} else if (label++ == 0) {
			start[(*n)++] = i;
		} else if (label > LABEL_MAX_LEN) {
			return -EINVAL;
		}
	}
	buf[len] = '\0';
	return label == 0 ? -EINVAL : 0;
}

/*
 * The list's algorithm: of the rules matching the name, an exception rule prevails, else the
 * one with most labels, else "*"; the public suffix is the prevailing rule less its leftmost
 * label for an exception, else the labels it matches.
 */
int
dmarc_psl_suffix_labels(const struct dmarc_psl *psl, const char *domain, size_t *labels)
{
	char buf[NAME_MAX_LEN + 1];
	size_t start[NAME_MAX_LEN / 2 + 1], n;
	int e = split_name(domain, buf, start, &n);
	if (e < 0)
		return e;
	size_t len = strlen(buf), best = 1;
	/* i = 0 first: the longest exception is found first */
	for (size_t i = 0; i < n; i++) {
		uint8_t bits = rule_bits(psl, buf + start[i], len - start[i]);
		size_t k = n - i; /* labels of this suffix */
		if (bits & RULE_EXCEPTION) {
			*labels = k - 1;
			return 0;
		}
		if ((bits & RULE_NORMAL) && k > best)
			best = k;
		if ((bits & RULE_WILDCARD) && i > 0 && k + 1 > best)
			best = k + 1;
	}
	*labels = best;
	return 0;
}

int
dmarc_psl_org_domain(const struct dmarc_psl *psl, const char *domain, char *out, size_t size)
{
	char buf[NAME_MAX_LEN + 1];
	size_t start[NAME_MAX_LEN / 2 + 1], n, suffix;
	int e = split_name(domain, buf, start, &n);
	if (e < 0)
		return e;
	e = dmarc_psl_suffix_labels(psl, domain, &suffix);
	if (e < 0)
		return e;
	if (suffix >= n)
		return -ENOENT;
	const char *org = buf + start[n - suffix - 1];
	size_t len = strlen(org);
	if (len + 1 > size)
		return -ENOBUFS;
	memcpy(out, org, len + 1);
	return 0;
}
