/*
 * The zone store (a hash of owner names, each with its records) and the RFC 1035 master-file
 * parser feeding it. A load parses into a scratch zone and merges only when the whole text
 * is good, so a bad file never leaves half its records behind.
 */
#include "dns_zone.h"

#include "buf.h"
#include "cleanup.h"
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Caps: a zone users preview or tests build, not a TLD. */
#define ZONE_FILE_MAX (16u << 20)
#define ZONE_RECORDS_MAX 100000
#define ZONE_ERRORS_MAX 50
#define ZONE_ERR_TEXT_MAX (64u << 10)
/* One entry (a logical line, ( ) joined): enough for a 64 KiB TXT in 255-byte strings. */
#define ENTRY_TOKENS_MAX 1024
#define ENTRY_TEXT_MAX (160u << 10)
/* A decoded token; names and strings are far shorter, the excess is an error. */
#define TOKEN_MAX 1024
#define CHARSTR_MAX 255
#define TTL_MAX 2147483647u
#define TTL_DEFAULT 3600u

struct znode {
	char *name;
	struct dns_rr *rr;
	size_t n, cap;
	bool apex;            /* declared by an SOA or dns_zone_add_apex */
	bool children;        /* some name below exists: an empty non-terminal at least */
	bool other;           /* has records of types we keep no data for (SRV, CAA...) */
	bool soa;             /* has its SOA */
	enum dns_status fail; /* DNS_OK: none; else every query answers this */
};

struct dns_zone {
	struct znode **slot; /* open addressing, power-of-two size */
	size_t cap, used;
	size_t records;
	char origin[DNS_NAME_MAX]; /* for files without $ORIGIN; "" : the root */
	bool has_origin;
};

static void
rr_clear(struct dns_rr *rr)
{
	if (dns_type_has_bytes(rr->type))
		free(rr->u.txt.data);
}

static void
node_free(struct znode *n)
{
	for (size_t i = 0; i < n->n; i++)
		rr_clear(&n->rr[i]);
	free(n->rr);
	free(n->name);
	free(n);
}

int
dns_zone_new(struct dns_zone **out)
{
	struct dns_zone *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	*out = z;
	return 0;
}

void
dns_zone_free(struct dns_zone *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->cap; i++)
		if (z->slot[i])
			node_free(z->slot[i]);
	free(z->slot);
	free(z);
}

DEFINE_CLEANUP_FUNC(struct dns_zone, dns_zone_free)

/* FNV-1a */
static uint64_t
name_hash(const char *s)
{
	uint64_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211u;
	return h;
}

static struct znode *
node_find(const struct dns_zone *z, const char *name)
{
	if (!z || z->cap == 0)
		return NULL;
	for (size_t i = name_hash(name) & (z->cap - 1);; i = (i + 1) & (z->cap - 1)) {
		if (!z->slot[i])
			return NULL;
		if (strcmp(z->slot[i]->name, name) == 0)
			return z->slot[i];
	}
}

static void
slot_put(struct znode **slot, size_t cap, struct znode *n)
{
	size_t i = name_hash(n->name) & (cap - 1);
	while (slot[i])
		i = (i + 1) & (cap - 1);
	slot[i] = n;
}

/* Kept at most half full so probes stay short. */
static int
zone_grow(struct dns_zone *z)
{
	if ((z->used + 1) * 2 <= z->cap)
		return 0;
	size_t cap = z->cap ? z->cap * 2 : 64;
	struct znode **slot = calloc(cap, sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < z->cap; i++)
		if (z->slot[i])
			slot_put(slot, cap, z->slot[i]);
	free(z->slot);
	z->slot = slot;
	z->cap = cap;
	return 0;
}

static const char *
parent_name(const char *name)
{
	const char *dot = strchr(name, '.');
	return dot ? dot + 1 : NULL;
}

static int
node_add(struct dns_zone *z, const char *name, struct znode **out)
{
	struct znode *n = node_find(z, name);
	if (n) {
		*out = n;
		return 0;
	}
	if (zone_grow(z) < 0)
		return -ENOMEM;
	n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(name))) {
		free(n);
		return -ENOMEM;
	}
	slot_put(z->slot, z->cap, n);
	z->used++;
	*out = n;
	return 0;
}

/* The node and every ancestor, so that empty non-terminals exist. */
static int
node_get(struct dns_zone *z, const char *name, struct znode **out)
{
	if (node_find(z, name))
		return node_add(z, name, out);
	int r = node_add(z, name, out);
	for (const char *p = parent_name(name); r == 0 && p; p = parent_name(p)) {
		struct znode *up;
		r = node_add(z, p, &up);
		if (r == 0)
			up->children = true;
	}
	return r;
}

static bool
node_has(const struct znode *n, uint16_t type)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->rr[i].type == type)
			return true;
	return false;
}

/* A CNAME owner holds nothing else (RFC 1034 3.6.2): real servers refuse such zones. */
static int
node_check(const struct znode *n, uint16_t type)
{
	bool cname = node_has(n, DNS_T_CNAME);
	if (type == DNS_T_CNAME && (n->n > 0 || n->other))
		return -EEXIST;
	if (type != DNS_T_CNAME && cname)
		return -EEXIST;
	if (type == DNS_T_SOA && n->soa)
		return -EALREADY;
	return 0;
}

/* Takes the TXT data of rr, also on failure. */
static int
zone_insert(struct dns_zone *z, const char *owner, struct dns_rr *rr)
{
	struct znode *n;
	int r = -E2BIG;
	if (z->records >= ZONE_RECORDS_MAX || (r = node_get(z, owner, &n)) < 0 ||
	    (r = node_check(n, rr->type)) < 0) {
		rr_clear(rr);
		return r;
	}
	if (n->n == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 2;
		struct dns_rr *p = reallocarray(n->rr, cap, sizeof(*p));
		if (!p) {
			rr_clear(rr);
			return -ENOMEM;
		}
		n->rr = p;
		n->cap = cap;
	}
	n->rr[n->n++] = *rr;
	n->soa |= rr->type == DNS_T_SOA;
	n->apex |= rr->type == DNS_T_SOA;
	z->records++;
	return 0;
}

/* Names */

/* DNS labels may hold any byte; SPF macros do produce spaces and non-ASCII. Control bytes
 * and the backslash (an escape to libunbound) are refused. */
static bool
name_char_ok(unsigned char c)
{
	return c >= 0x20 && c != 0x7f && c != '\\';
}

int
dns_name_normalize(const char *in, char out[DNS_NAME_MAX])
{
	size_t len = strnlen(in, DNS_NAME_MAX + 1);
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX - 1)
		return -EINVAL;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
		} else if (!name_char_ok(c) || ++label > 63) {
			return -EINVAL;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	if (label == 0)
		return -EINVAL;
	out[len] = '\0';
	return 0;
}

/* Answers */

void
dns_answer_free(struct dns_answer *a)
{
	if (!a)
		return;
	for (size_t i = 0; a->rr && i < a->n; i++)
		rr_clear(&a->rr[i]);
	free(a->rr);
	*a = (struct dns_answer){0};
}

/* Copies len bytes and adds the NUL (callers' records need not hold one), then the string
 * lengths that follow it when the record has them. */
static int
rr_copy(struct dns_rr *to, const struct dns_rr *from)
{
	*to = *from;
	if (!dns_type_has_bytes(from->type))
		return 0;
	const struct dns_bytes *t = &from->u.txt;
	to->u.txt.data = malloc(t->len + 1 + t->nstr);
	if (!to->u.txt.data)
		return -ENOMEM;
	if (t->len)
		memcpy(to->u.txt.data, t->data, t->len);
	to->u.txt.data[t->len] = '\0';
	if (t->nstr)
		memcpy(to->u.txt.data + t->len + 1, t->data + t->len + 1, t->nstr);
	return 0;
}

int
dns_answer_set(struct dns_answer *out, enum dns_status status, const struct dns_rr *rr, size_t n)
{
	*out = (struct dns_answer){.status = status};
	if (n > DNS_ANSWER_MAX)
		n = DNS_ANSWER_MAX;
	if (n == 0)
		return 0;
	out->rr = calloc(n, sizeof(*out->rr));
	if (!out->rr)
		return -ENOMEM;
	for (; out->n < n; out->n++) {
		if (rr_copy(&out->rr[out->n], &rr[out->n]) < 0) {
			dns_answer_free(out);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Records of one type, gathered so the answer holds only those. */
static int
answer_type(struct dns_answer *out, const struct znode *n, uint16_t type)
{
	size_t k = 0;
	struct dns_rr *pick = calloc(n->n, sizeof(*pick));
	if (!pick)
		return -ENOMEM;
	for (size_t i = 0; i < n->n; i++)
		if (n->rr[i].type == type)
			pick[k++] = n->rr[i]; /* shallow: dns_answer_set copies the data */
	int r = dns_answer_set(out, DNS_OK, pick, k);
	free(pick);
	return r;
}

static const struct dns_rr *
node_cname(const struct znode *n)
{
	for (size_t i = 0; n && i < n->n; i++)
		if (n->rr[i].type == DNS_T_CNAME)
			return &n->rr[i];
	return NULL;
}

static bool
in_apex(const struct dns_zone *z, const char *name)
{
	for (const char *p = name; p; p = parent_name(p)) {
		const struct znode *n = node_find(z, p);
		if (n && n->apex)
			return true;
	}
	return false;
}

static bool
node_exists(const struct znode *n)
{
	return n && (n->n > 0 || n->children || n->other || n->apex);
}

/* One step: 1 answered, 0 ask the network, 2 follow the CNAME (target in next). */
static int
answer_step(const struct dns_zone *z, const char *name, enum dns_type type, bool network,
            struct dns_answer *out, char next[DNS_NAME_MAX])
{
	const struct znode *n = node_find(z, name);
	if (n && n->fail != DNS_OK)
		return dns_answer_set(out, n->fail, NULL, 0) ?: 1;
	if (n && node_has(n, type))
		return answer_type(out, n, type) ?: 1;
	const struct dns_rr *cname = node_cname(n);
	if (cname && type != DNS_T_CNAME) {
		memcpy(next, cname->u.name, DNS_NAME_MAX);
		return 2;
	}
	if (network && !in_apex(z, name))
		return 0;
	return dns_answer_set(out, node_exists(n) ? DNS_NODATA : DNS_NXDOMAIN, NULL, 0) ?: 1;
}

int
dns_zone_answer(const struct dns_zone *z, const char *name, enum dns_type type, bool network,
                struct dns_answer *out, char next[DNS_NAME_MAX])
{
	char cur[DNS_NAME_MAX];
	size_t len = strnlen(name, DNS_NAME_MAX);
	if (len >= DNS_NAME_MAX)
		return -EINVAL;
	memcpy(cur, name, len + 1);
	for (unsigned hops = 0;; hops++) {
		int r = answer_step(z, cur, type, network, out, next);
		if (r != 2) {
			if (r == 0)
				memcpy(next, cur, DNS_NAME_MAX);
			return r;
		}
		if (hops == DNS_CNAME_MAX)
			return dns_answer_set(out, DNS_SERVFAIL, NULL, 0) ?: 1;
		memcpy(cur, next, DNS_NAME_MAX);
	}
}

/* The master-file lexer */

enum tok_kind { TOK_EOF, TOK_EOL, TOK_WORD, TOK_STRING };

struct tok {
	size_t off, len; /* in entry.text */
	bool escaped;    /* a backslash escape was decoded */
	unsigned line;
	enum tok_kind kind;
};

struct entry {
	struct buf text; /* decoded token bytes, one NUL after each */
	struct tok tok[ENTRY_TOKENS_MAX];
	size_t n;
	bool blank_owner; /* the entry's first line starts with white space */
	unsigned line;
};

struct lexer {
	const char *p, *end;
	unsigned line;
	unsigned paren_line; /* where the open '(' was; 0: none open */
	const char *file;
	struct buf *err;
	unsigned nerr;
	bool stop; /* error cap reached */
};

static void __attribute__((format(printf, 3, 4)))
lex_error(struct lexer *lx, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (lx->stop)
		return;
	if (++lx->nerr > ZONE_ERRORS_MAX) {
		buf_printf(lx->err, "%s: too many errors, giving up\n", lx->file);
		lx->stop = true;
		return;
	}
	buf_printf(lx->err, "%s:%u: %s\n", lx->file, line, msg);
}

static const char *
tok_text(const struct entry *e, size_t i)
{
	return e->text.data + e->tok[i].off;
}

/* \DDD (a byte, DDD <= 255) or \X (X itself). Returns the byte or -1. */
static int
lex_escape(struct lexer *lx)
{
	const char *p = lx->p + 1;
	if (p >= lx->end || *p == '\n')
		return -1;
	if (*p >= '0' && *p <= '9') {
		if (lx->end - p < 3)
			return -1;
		int v = 0;
		for (int i = 0; i < 3; i++) {
			if (p[i] < '0' || p[i] > '9')
				return -1;
			v = v * 10 + (p[i] - '0');
		}
		lx->p += 4;
		return v <= 255 ? v : -1;
	}
	lx->p += 2;
	return (unsigned char)*p;
}

static bool
word_end(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '(' ||
	       c == ')' || c == '"';
}

/* Raw control bytes (NUL included) are never part of a zone file's text. */
static bool
byte_ok(unsigned char c, bool quoted)
{
	return c >= 0x20 ? c != 0x7f : (quoted && c == '\t');
}

static int
tok_byte(struct lexer *lx, struct entry *e, struct tok *t, bool quoted)
{
	int c = (unsigned char)*lx->p;
	if (c == '\\') {
		t->escaped = true;
		if ((c = lex_escape(lx)) < 0) {
			lex_error(lx, lx->line, "bad escape sequence");
			return -EINVAL;
		}
	} else if (!byte_ok((unsigned char)c, quoted)) {
		lex_error(lx, lx->line, "control character 0x%02x in text", (unsigned)c);
		return -EINVAL;
	} else {
		lx->p++;
	}
	if (++t->len > TOKEN_MAX) {
		lex_error(lx, lx->line, "field longer than %d bytes", TOKEN_MAX);
		return -EINVAL;
	}
	char b = (char)c;
	return buf_append(&e->text, &b, 1);
}

static int
lex_word(struct lexer *lx, struct entry *e, struct tok *t)
{
	bool quoted = t->kind == TOK_STRING;
	if (quoted)
		lx->p++;
	for (;;) {
		if (lx->p >= lx->end || (quoted ? *lx->p == '\n' : word_end(*lx->p)))
			break;
		if (quoted && *lx->p == '"') {
			lx->p++;
			return buf_append(&e->text, "", 1);
		}
		int r = tok_byte(lx, e, t, quoted);
		if (r < 0)
			return r;
	}
	if (quoted) {
		lex_error(lx, t->line, "missing closing quote");
		return -EINVAL;
	}
	return buf_append(&e->text, "", 1);
}

/* Skips blanks and comments; handles newlines and parentheses. Returns the next kind. */
static enum tok_kind
lex_space(struct lexer *lx)
{
	while (lx->p < lx->end) {
		char c = *lx->p;
		if (c == ';') {
			const char *nl = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));
			lx->p = nl ? nl : lx->end;
		} else if (c == '\n') {
			lx->p++;
			lx->line++;
			if (!lx->paren_line)
				return TOK_EOL;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			lx->p++;
		} else {
			return c == '"' ? TOK_STRING : TOK_WORD;
		}
	}
	return TOK_EOF;
}

static int
lex_paren(struct lexer *lx)
{
	if (*lx->p == '(') {
		if (lx->paren_line) {
			lex_error(lx, lx->line, "nested '('");
			return -EINVAL;
		}
		lx->paren_line = lx->line;
	} else if (!lx->paren_line) {
		lex_error(lx, lx->line, "')' without '('");
		return -EINVAL;
	} else {
		lx->paren_line = 0;
	}
	lx->p++;
	return 0;
}

/* Next token into e; TOK_EOL/TOK_EOF end the entry. */
static int
lex_next(struct lexer *lx, struct entry *e, enum tok_kind *kind)
{
	for (;;) {
		*kind = lex_space(lx);
		if (*kind == TOK_EOF && lx->paren_line) {
			lex_error(lx, lx->paren_line, "'(' without ')'");
			lx->paren_line = 0;
			return -EINVAL;
		}
		if (*kind == TOK_EOF || *kind == TOK_EOL)
			return 0;
		if (*lx->p != '(' && *lx->p != ')')
			break;
		if (lex_paren(lx) < 0)
			return -EINVAL;
	}
	if (e->n == ENTRY_TOKENS_MAX) {
		lex_error(lx, lx->line, "more than %d fields in one entry", ENTRY_TOKENS_MAX);
		return -EINVAL;
	}
	struct tok *t = &e->tok[e->n];
	*t = (struct tok){.off = e->text.len, .line = lx->line, .kind = *kind};
	int r = lex_word(lx, e, t);
	if (r == -ENOBUFS)
		lex_error(lx, t->line, "entry longer than %u bytes", ENTRY_TEXT_MAX);
	if (r < 0)
		return -EINVAL;
	e->n++;
	return 0;
}

/* After an error: drop the rest of the entry (the rest of a ( ) group too). */
static void
lex_skip(struct lexer *lx)
{
	while (lx->p < lx->end) {
		char c = *lx->p++;
		if (c == '\n') {
			lx->line++;
			if (!lx->paren_line)
				return;
		} else if (c == ')') {
			lx->paren_line = 0;
		} else if (c == '"') {
			const char *q = lx->p;
			while (q < lx->end && *q != '"' && *q != '\n')
				q += *q == '\\' && q + 1 < lx->end && q[1] != '\n' ? 2 : 1;
			lx->p = q < lx->end && *q == '"' ? q + 1 : q;
		}
	}
	lx->paren_line = 0;
}

/* Reads one entry. 1: e holds it (maybe empty); 0: end of text; <0: error reported. */
static int
lex_entry(struct lexer *lx, struct entry *e)
{
	if (lx->p >= lx->end)
		return 0;
	buf_reset(&e->text);
	e->n = 0;
	e->blank_owner = *lx->p == ' ' || *lx->p == '\t';
	e->line = lx->line;
	for (;;) {
		enum tok_kind kind;
		if (lex_next(lx, e, &kind) < 0) {
			lex_skip(lx);
			return -EINVAL;
		}
		if (kind == TOK_EOL || kind == TOK_EOF)
			return 1;
	}
}

/* The master-file parser */

struct zparse {
	struct lexer lx;
	struct dns_zone *z;
	const struct entry *e;
	char origin[DNS_NAME_MAX]; /* "" : the root */
	char owner[DNS_NAME_MAX];  /* the previous owner, for entries that omit it */
	bool has_origin, has_owner;
	bool strict; /* a file: relative names need an origin */
	uint32_t ttl_default, ttl_last;
	bool has_ttl_default, has_ttl_last;
};

static const struct {
	const char *name;
	uint16_t type; /* 0: a type whose data we do not keep; its owner still exists */
} zone_types[] = {
    {"A", DNS_T_A},
    {"AAAA", DNS_T_AAAA},
    {"MX", DNS_T_MX},
    {"TXT", DNS_T_TXT},
    {"SPF", DNS_T_SPF},
    {"PTR", DNS_T_PTR},
    {"CNAME", DNS_T_CNAME},
    {"NS", DNS_T_NS},
    {"SOA", DNS_T_SOA},
    {"SRV", 0},
    {"CAA", 0},
    {"DS", 0},
    {"DNSKEY", 0},
    {"RRSIG", 0},
    {"NSEC", 0},
    {"NSEC3", 0},
    {"NSEC3PARAM", 0},
    {"TLSA", 0},
    {"SSHFP", 0},
    {"HINFO", 0},
    {"NAPTR", 0},
    {"LOC", 0},
    {"DNAME", 0},
    {"CDS", 0},
    {"CDNSKEY", 0},
    {"SVCB", 0},
    {"HTTPS", 0},
    {"OPENPGPKEY", 0},
    {"SMIMEA", 0},
    {"URI", 0},
    {"RP", 0},
    {"ZONEMD", 0},
};

static int
type_lookup(const char *s, uint16_t *type)
{
	for (size_t i = 0; i < ARRAY_SIZE(zone_types); i++) {
		if (strcasecmp(s, zone_types[i].name) == 0) {
			*type = zone_types[i].type;
			return 0;
		}
	}
	return -ENOENT;
}

static bool
is_class(const char *s)
{
	return strcasecmp(s, "IN") == 0 || strcasecmp(s, "CH") == 0 || strcasecmp(s, "HS") == 0 ||
	       strcasecmp(s, "CS") == 0;
}

static int
parse_u32(const char *s, uint32_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || (v = v * 10 + (uint64_t)(*s - '0')) > UINT32_MAX)
			return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static uint64_t
ttl_unit(char c)
{
	switch (c | 0x20) {
	case 's':
		return 1;
	case 'm':
		return 60;
	case 'h':
		return 3600;
	case 'd':
		return 86400;
	case 'w':
		return 604800;
	default:
		return 0;
	}
}

/* "3600", "1h30m", "2d" (BIND's units) up to 2^31 - 1 (RFC 2181 8). */
static int
parse_ttl(const char *s, uint32_t *out)
{
	uint64_t total = 0, v = 0;
	bool digits = false;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9') {
			if ((v = v * 10 + (uint64_t)(*s - '0')) > TTL_MAX)
				return -EINVAL;
			digits = true;
		} else if (digits && ttl_unit(*s)) {
			total += v * ttl_unit(*s);
			v = 0;
			digits = false;
		} else {
			return -EINVAL;
		}
		if (total + v > TTL_MAX)
			return -EINVAL;
	}
	*out = (uint32_t)(total + v);
	return 0;
}

static const struct tok *
ptok(const struct zparse *p, size_t i)
{
	return &p->e->tok[i];
}

/* A name field: @, relative to $ORIGIN, or absolute. The root (".") only when root_ok. */
static int
parse_name(struct zparse *p, size_t i, bool root_ok, char out[DNS_NAME_MAX])
{
	const char *s = tok_text(p->e, i);
	unsigned line = ptok(p, i)->line;
	size_t len = ptok(p, i)->len;
	char full[2 * DNS_NAME_MAX + 2];

	if (ptok(p, i)->kind == TOK_STRING || ptok(p, i)->escaped || memchr(s, '\0', len)) {
		lex_error(&p->lx, line, "'%s': quotes and escapes are not supported in names", s);
		return -EINVAL;
	}
	if (strcmp(s, "@") == 0 || strcmp(s, ".") == 0) {
		bool at = s[0] == '@';
		if ((at && !p->has_origin) || ((!at || !p->origin[0]) && !root_ok)) {
			lex_error(&p->lx, line,
			          at && !p->has_origin ? "'@' without $ORIGIN"
			                               : "the root name is not allowed here");
			return -EINVAL;
		}
		memcpy(out, at ? p->origin : "", at ? DNS_NAME_MAX : 1);
		return 0;
	}
	bool absolute = len > 0 && s[len - 1] == '.';
	/* as BIND does: rooting it at "." would silently publish another name */
	if (!absolute && !p->has_origin && p->strict) {
		lex_error(&p->lx, line, "'%s': a relative name and no $ORIGIN (or --dns-origin)",
		          s);
		return -EINVAL;
	}
	snprintf(full, sizeof(full), "%s%s%s", s, absolute || !p->origin[0] ? "" : ".",
	         absolute ? "" : p->origin);
	if (dns_name_normalize(full, out) < 0) {
		lex_error(&p->lx, line, "'%s': not a valid domain name", s);
		return -EINVAL;
	}
	return 0;
}

static int
want_fields(struct zparse *p, size_t i, size_t want, const char *type)
{
	size_t have = p->e->n - i;
	if (have == want)
		return 0;
	lex_error(&p->lx, p->e->line, "%s needs %zu field%s, got %zu", type, want,
	          want == 1 ? "" : "s", have);
	return -EINVAL;
}

static int
parse_addr(struct zparse *p, size_t i, int family, struct dns_rr *rr)
{
	const char *s = tok_text(p->e, i);
	if (ptok(p, i)->kind == TOK_WORD && net_addr_parse(s, NET_PORT_NONE, &rr->u.addr) == 0 &&
	    rr->u.addr.family == family && !strchr(s, '[') && strlen(s) == ptok(p, i)->len)
		return 0;
	lex_error(&p->lx, ptok(p, i)->line, "'%s': not an %s address", s,
	          family == AF_INET ? "IPv4" : "IPv6");
	return -EINVAL;
}

static int
parse_mx(struct zparse *p, size_t i, struct dns_rr *rr)
{
	uint32_t pref;
	if (parse_u32(tok_text(p->e, i), &pref) < 0 || pref > UINT16_MAX) {
		lex_error(&p->lx, ptok(p, i)->line, "'%s': not an MX preference (0..65535)",
		          tok_text(p->e, i));
		return -EINVAL;
	}
	rr->u.mx.pref = (uint16_t)pref;
	return parse_name(p, i + 1, true, rr->u.mx.host);
}

/* Character-strings, each at most 255 bytes (RFC 1035 3.3), kept concatenated. */
static int
parse_txt(struct zparse *p, size_t i, struct dns_rr *rr)
{
	_cleanup_buf_ struct buf data = BUF_INIT(DNS_TXT_MAX - 1);
	unsigned char lens[ENTRY_TOKENS_MAX];
	size_t nstr = 0;
	if (i == p->e->n) {
		lex_error(&p->lx, p->e->line, "TXT needs at least one string");
		return -EINVAL;
	}
	for (; i < p->e->n; i++) {
		lens[nstr++] = (unsigned char)ptok(p, i)->len;
		if (ptok(p, i)->len > CHARSTR_MAX) {
			lex_error(&p->lx, ptok(p, i)->line,
			          "string of %zu bytes: at most %d per string (split it)",
			          ptok(p, i)->len, CHARSTR_MAX);
			return -EINVAL;
		}
		int r = buf_append(&data, tok_text(p->e, i), ptok(p, i)->len);
		if (r < 0) {
			lex_error(&p->lx, ptok(p, i)->line, "TXT record longer than %d bytes",
			          DNS_TXT_MAX - 1);
			return r;
		}
	}
	size_t len = data.len;
	char *text = buf_steal(&data), *all = text ? realloc(text, len + 1 + nstr) : NULL;
	if (!all) {
		free(text);
		return -ENOMEM;
	}
	memcpy(all + len + 1, lens, nstr);
	rr->u.txt = (struct dns_bytes){.data = all, .len = len, .nstr = nstr};
	return 0;
}

static int
parse_soa(struct zparse *p, size_t i, struct dns_rr *rr)
{
	char rname[DNS_NAME_MAX];
	uint32_t v;
	if (want_fields(p, i, 7, "SOA") < 0 || parse_name(p, i, true, rr->u.name) < 0 ||
	    parse_name(p, i + 1, true, rname) < 0)
		return -EINVAL;
	for (size_t k = i + 2; k < i + 7; k++) {
		int r = k == i + 2 ? parse_u32(tok_text(p->e, k), &v)
		                   : parse_ttl(tok_text(p->e, k), &v);
		if (r < 0) {
			lex_error(&p->lx, ptok(p, k)->line, "'%s': not an SOA number",
			          tok_text(p->e, k));
			return -EINVAL;
		}
	}
	return 0;
}

/* The data fields from i on, for a type we keep. */
static int
parse_rdata(struct zparse *p, size_t i, struct dns_rr *rr)
{
	switch (rr->type) {
	case DNS_T_A:
		return want_fields(p, i, 1, "A") ?: parse_addr(p, i, AF_INET, rr);
	case DNS_T_AAAA:
		return want_fields(p, i, 1, "AAAA") ?: parse_addr(p, i, AF_INET6, rr);
	case DNS_T_MX:
		return want_fields(p, i, 2, "MX") ?: parse_mx(p, i, rr);
	case DNS_T_TXT:
	case DNS_T_SPF:
		return parse_txt(p, i, rr);
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		return want_fields(p, i, 1, "this type") ?: parse_name(p, i, false, rr->u.name);
	case DNS_T_SOA:
		return parse_soa(p, i, rr);
	default:
		return -EINVAL;
	}
}

static int
directive(struct zparse *p)
{
	const char *d = tok_text(p->e, 0);
	unsigned line = p->e->line;
	if (strcasecmp(d, "$ORIGIN") == 0) {
		char origin[DNS_NAME_MAX];
		if (want_fields(p, 1, 1, "$ORIGIN") < 0 || parse_name(p, 1, true, origin) < 0)
			return -EINVAL;
		memcpy(p->origin, origin, sizeof(origin));
		p->has_origin = true;
		return 0;
	}
	if (strcasecmp(d, "$TTL") == 0) {
		if (want_fields(p, 1, 1, "$TTL") < 0)
			return -EINVAL;
		if (parse_ttl(tok_text(p->e, 1), &p->ttl_default) < 0) {
			lex_error(&p->lx, line, "'%s': not a TTL", tok_text(p->e, 1));
			return -EINVAL;
		}
		p->has_ttl_default = true;
		return 0;
	}
	lex_error(&p->lx, line, "%s: %s", d,
	          strcasecmp(d, "$INCLUDE") == 0 ? "not supported" : "unknown directive");
	return -EINVAL;
}

/* [TTL] [class] or [class] [TTL]; sets *ttl (explicit or default) and moves *i past them. */
static int
ttl_and_class(struct zparse *p, size_t *i, uint32_t *ttl)
{
	bool have_ttl = false, have_class = false;
	for (; *i < p->e->n && ptok(p, *i)->kind == TOK_WORD; (*i)++) {
		const char *s = tok_text(p->e, *i);
		if (!have_ttl && s[0] >= '0' && s[0] <= '9') {
			if (parse_ttl(s, ttl) < 0) {
				lex_error(&p->lx, ptok(p, *i)->line, "'%s': not a TTL", s);
				return -EINVAL;
			}
			have_ttl = true;
		} else if (!have_class && is_class(s)) {
			if (strcasecmp(s, "IN") != 0) {
				lex_error(&p->lx, ptok(p, *i)->line,
				          "class %s: only IN is supported", s);
				return -EINVAL;
			}
			have_class = true;
		} else {
			break;
		}
	}
	if (have_ttl) {
		p->ttl_last = *ttl;
		p->has_ttl_last = true;
	} else {
		*ttl = p->has_ttl_default ? p->ttl_default
		       : p->has_ttl_last  ? p->ttl_last
		                          : TTL_DEFAULT;
	}
	return 0;
}

static int
entry_owner(struct zparse *p, size_t *i, char owner[DNS_NAME_MAX])
{
	if (p->e->blank_owner) {
		if (!p->has_owner) {
			lex_error(&p->lx, p->e->line, "no owner name, and no previous one");
			return -EINVAL;
		}
		memcpy(owner, p->owner, DNS_NAME_MAX);
		return 0;
	}
	if (parse_name(p, 0, false, owner) < 0)
		return -EINVAL;
	memcpy(p->owner, owner, DNS_NAME_MAX);
	p->has_owner = true;
	*i = 1;
	return 0;
}

static int
entry_type(struct zparse *p, size_t i, uint16_t *type)
{
	if (i >= p->e->n) {
		lex_error(&p->lx, p->e->line, "missing record type");
		return -EINVAL;
	}
	if (ptok(p, i)->kind == TOK_WORD && type_lookup(tok_text(p->e, i), type) == 0)
		return 0;
	lex_error(&p->lx, ptok(p, i)->line, "'%s': unknown or unsupported record type",
	          tok_text(p->e, i));
	return -EINVAL;
}

static int
entry_insert(struct zparse *p, const char *owner, struct dns_rr *rr)
{
	int r = zone_insert(p->z, owner, rr);
	if (r == -EEXIST)
		lex_error(&p->lx, p->e->line, "%s: a CNAME owner may hold no other records", owner);
	else if (r == -EALREADY)
		lex_error(&p->lx, p->e->line, "%s: a second SOA", owner);
	else if (r == -E2BIG)
		lex_error(&p->lx, p->e->line, "more than %d records", ZONE_RECORDS_MAX);
	return r == -ENOMEM ? r : r < 0 ? -EINVAL : 0;
}

static int
entry_record(struct zparse *p)
{
	char owner[DNS_NAME_MAX];
	struct dns_rr rr = {0};
	size_t i = 0;
	if (entry_owner(p, &i, owner) < 0 || ttl_and_class(p, &i, &rr.ttl) < 0 ||
	    entry_type(p, i, &rr.type) < 0)
		return -EINVAL;
	if (rr.type == 0) {
		struct znode *n;
		int r = node_get(p->z, owner, &n);
		if (r == 0 && node_has(n, DNS_T_CNAME))
			r = entry_insert(p, owner, &rr); /* reports the conflict */
		if (r == 0)
			n->other = true;
		return r;
	}
	int r = parse_rdata(p, i + 1, &rr);
	return r < 0 ? r : entry_insert(p, owner, &rr);
}

static int
entry_process(struct zparse *p)
{
	if (p->e->n == 0)
		return 0;
	if (!p->e->blank_owner && ptok(p, 0)->kind == TOK_WORD && tok_text(p->e, 0)[0] == '$')
		return directive(p);
	return entry_record(p);
}

/* Errors go to lx.err; -ENOMEM stops at once. */
static int
parse_text(struct zparse *p, const char *text, size_t len)
{
	_cleanup_free_ struct entry *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->text = BUF_INIT(ENTRY_TEXT_MAX);
	p->e = e;
	p->lx.p = text;
	p->lx.end = text + len;
	p->lx.line = 1;
	int r = 0;
	while (!p->lx.stop && (r = lex_entry(&p->lx, e)) != 0) {
		if (r > 0 && (r = entry_process(p)) == -ENOMEM)
			break;
	}
	buf_free(&e->text);
	return r == -ENOMEM ? r : 0;
}

/* Loading: into a scratch zone, merged only when the whole text is good. */

static bool
node_conflicts(const struct znode *a, const struct znode *b)
{
	bool a_cname = node_has(a, DNS_T_CNAME), b_cname = node_has(b, DNS_T_CNAME);
	return (a_cname && (b->n > 0 || b->other)) || (b_cname && (a->n > 0 || a->other)) ||
	       (a->soa && b->soa);
}

static int
node_move(struct dns_zone *z, struct znode *from)
{
	struct znode *to;
	int r = node_get(z, from->name, &to);
	if (r < 0)
		return r;
	if (from->n > 0) {
		struct dns_rr *p = reallocarray(to->rr, to->n + from->n, sizeof(*p));
		if (!p)
			return -ENOMEM;
		memcpy(p + to->n, from->rr, from->n * sizeof(*p));
		to->rr = p;
		to->n = to->cap = to->n + from->n;
		from->n = 0; /* the TXT data moved too */
	}
	to->apex |= from->apex;
	to->soa |= from->soa;
	to->other |= from->other;
	to->children |= from->children;
	return 0;
}

static int
zone_merge(struct dns_zone *z, struct dns_zone *from, struct lexer *lx)
{
	if (z->records + from->records > ZONE_RECORDS_MAX) {
		lex_error(lx, 1, "more than %d records with those loaded before", ZONE_RECORDS_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < from->cap; i++) {
		const struct znode *n = from->slot[i], *old = n ? node_find(z, n->name) : NULL;
		if (old && node_conflicts(n, old))
			lex_error(lx, 1, "%s: conflicts with records loaded before", n->name);
	}
	if (lx->nerr)
		return -EINVAL;
	for (size_t i = 0; i < from->cap; i++) {
		int r = from->slot[i] ? node_move(z, from->slot[i]) : 0;
		if (r < 0)
			return r;
	}
	z->records += from->records;
	return 0;
}

static int
err_append(char **err, const struct buf *b)
{
	if (!err || b->len == 0)
		return 0;
	size_t old = *err ? strlen(*err) : 0;
	char *p = realloc(*err, old + b->len + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p + old, b->data, b->len + 1);
	*err = p;
	return 0;
}

static int
load_text(struct dns_zone *z, const char *name, const char *text, size_t len, bool strict,
          char **err)
{
	_cleanup_buf_ struct buf errs = BUF_INIT(ZONE_ERR_TEXT_MAX);
	_cleanup_(dns_zone_freep) struct dns_zone *tmp = NULL;
	struct zparse p = {.lx = {.file = name ? name : "<zone>", .err = &errs}, .strict = strict};
	int r = dns_zone_new(&tmp);
	if (r < 0)
		return r;
	p.z = tmp;
	memcpy(p.origin, z->origin, sizeof(p.origin));
	p.has_origin = z->has_origin;
	if (len > ZONE_FILE_MAX)
		lex_error(&p.lx, 1, "larger than %u bytes", ZONE_FILE_MAX);
	else if ((r = parse_text(&p, text, len)) < 0)
		return r;
	if (p.lx.nerr == 0 && (r = zone_merge(z, tmp, &p.lx)) == -ENOMEM)
		return r;
	if (p.lx.nerr == 0)
		return 0;
	return err_append(err, &errs) ?: -EINVAL;
}

int
dns_zone_load_string(struct dns_zone *z, const char *name, const char *text, size_t len, char **err)
{
	return load_text(z, name, text, len, false, err);
}

static int
too_large(const char *path, char **err)
{
	_cleanup_buf_ struct buf msg = BUF_INIT(ZONE_ERR_TEXT_MAX);
	buf_printf(&msg, "%s:1: larger than %u bytes\n", path, ZONE_FILE_MAX);
	return err_append(err, &msg) ?: -EINVAL;
}

/*
 * Only regular files: a FIFO or a device would block or never end. Opened without blocking
 * and read through the same descriptor, so no FIFO can be swapped in after the check.
 */
int
dns_zone_load_file(struct dns_zone *z, const char *path, char **err)
{
	_cleanup_free_ char *data = NULL;
	size_t n;
	int r = file_read_path(path, ZONE_FILE_MAX, &data, &n);
	if (r == -EFBIG)
		return too_large(path, err);
	if (r == -EINVAL) /* a FIFO or a device: told apart from a zone with errors */
		return -ENODEV;
	return r < 0 ? r : load_text(z, path, data, n, true, err);
}

int
dns_zone_set_origin(struct dns_zone *z, const char *origin)
{
	char norm[DNS_NAME_MAX];
	if (!origin) {
		z->has_origin = false;
		return 0;
	}
	if (strcmp(origin, ".") == 0)
		norm[0] = '\0';
	else if (dns_name_normalize(origin, norm) < 0)
		return -EINVAL;
	memcpy(z->origin, norm, sizeof(norm));
	z->has_origin = true;
	return 0;
}

/* Building zones in code */

int
dns_zone_add(struct dns_zone *z, const char *owner, enum dns_type type, const char *rdata)
{
	_cleanup_buf_ struct buf errs = BUF_INIT(ZONE_ERR_TEXT_MAX);
	_cleanup_free_ struct entry *e = calloc(1, sizeof(*e));
	struct zparse p = {.lx = {.file = "rdata", .err = &errs}, .z = z, .e = e};
	struct dns_rr rr = {.type = (uint16_t)type};
	char name[DNS_NAME_MAX];
	if (!e)
		return -ENOMEM;
	if (dns_name_normalize(owner, name) < 0)
		return -EINVAL;
	e->text = BUF_INIT(ENTRY_TEXT_MAX);
	p.lx.p = rdata;
	p.lx.end = rdata + strlen(rdata);
	p.lx.line = 1;
	int r = lex_entry(&p.lx, e) < 0 || p.lx.p != p.lx.end ? -EINVAL : parse_rdata(&p, 0, &rr);
	buf_free(&e->text);
	if (r < 0)
		return r;
	r = zone_insert(z, name, &rr);
	return r == -EEXIST || r == -EALREADY ? -EINVAL : r;
}

int
dns_zone_add_txt(struct dns_zone *z, const char *owner, const char *data, size_t len)
{
	char name[DNS_NAME_MAX];
	if (dns_name_normalize(owner, name) < 0 || len >= DNS_TXT_MAX)
		return -EINVAL;
	struct dns_rr rr = {.type = DNS_T_TXT, .ttl = TTL_DEFAULT};
	size_t nstr = len ? (len + CHARSTR_MAX - 1) / CHARSTR_MAX : 1;
	rr.u.txt.data = malloc(len + 1 + nstr);
	if (!rr.u.txt.data)
		return -ENOMEM;
	if (len > 0)
		memcpy(rr.u.txt.data, data, len);
	rr.u.txt.data[len] = '\0';
	for (size_t k = 0; k < nstr; k++) /* split as it would be published */
		rr.u.txt.data[len + 1 + k] =
		    (char)(k + 1 < nstr ? CHARSTR_MAX : len - k * CHARSTR_MAX);
	rr.u.txt.len = len;
	rr.u.txt.nstr = nstr;
	int r = zone_insert(z, name, &rr);
	return r == -EEXIST ? -EINVAL : r;
}

int
dns_zone_replace_txt(struct dns_zone *z, const char *owner, const char *data, size_t len)
{
	char name[DNS_NAME_MAX];
	struct znode *n;
	if (dns_name_normalize(owner, name) < 0 || len >= DNS_TXT_MAX)
		return -EINVAL;
	int r = node_get(z, name, &n);
	if (r < 0)
		return r;
	size_t k = 0;
	for (size_t i = 0; i < n->n; i++) {
		if (n->rr[i].type == DNS_T_TXT || n->rr[i].type == DNS_T_SPF) {
			rr_clear(&n->rr[i]);
			z->records--;
		} else {
			n->rr[k++] = n->rr[i];
		}
	}
	n->n = k;
	return dns_zone_add_txt(z, name, data, len);
}

int
dns_zone_add_failure(struct dns_zone *z, const char *owner, enum dns_status status)
{
	char name[DNS_NAME_MAX];
	struct znode *n;
	if (dns_name_normalize(owner, name) < 0 ||
	    (status != DNS_TIMEOUT && status != DNS_SERVFAIL))
		return -EINVAL;
	int r = node_get(z, name, &n);
	if (r == 0)
		n->fail = status;
	return r;
}

int
dns_zone_add_apex(struct dns_zone *z, const char *owner)
{
	char name[DNS_NAME_MAX];
	struct znode *n;
	if (dns_name_normalize(owner, name) < 0)
		return -EINVAL;
	int r = node_get(z, name, &n);
	if (r == 0)
		n->apex = true;
	return r;
}
