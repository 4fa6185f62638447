#include "senderid_pra.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* A cursor over a header field value; CR and LF count as folding whitespace. */
struct cur {
	const char *s;
	size_t i, n;
};

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* atext, with RFC 6532 UTF-8 bytes allowed */
static bool
is_atext(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c >= 0x80 || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Skips a comment starting at c->i ('('); comments nest. false when it never ends. */
static bool
skip_comment(struct cur *c)
{
	unsigned depth = 0;
	for (; c->i < c->n; c->i++) {
		char ch = c->s[c->i];
		if (ch == '\\')
			c->i++;
		else if (ch == '(')
			depth++;
		else if (ch == ')' && --depth == 0) {
			c->i++;
			return true;
		}
	}
	return false;
}

static bool
skip_cfws(struct cur *c)
{
	while (c->i < c->n) {
		if (is_wsp(c->s[c->i]))
			c->i++;
		else if (c->s[c->i] == '(') {
			if (!skip_comment(c))
				return false;
		} else {
			break;
		}
	}
	return true;
}

/* Skips a quoted string starting at c->i ('"'); false when it never ends. */
static bool
skip_quoted(struct cur *c)
{
	for (c->i++; c->i < c->n; c->i++) {
		if (c->s[c->i] == '\\')
			c->i++;
		else if (c->s[c->i] == '"') {
			c->i++;
			return true;
		}
	}
	return false;
}

struct out {
	char *p;
	size_t len, cap;
};

static bool
put(struct out *o, char ch)
{
	if (o->len + 1 >= o->cap)
		return false;
	o->p[o->len++] = ch;
	return true;
}

/* atom or quoted-string (content only) into o. */
static bool
word(struct cur *c, struct out *o)
{
	size_t start = o->len;
	if (c->i < c->n && c->s[c->i] == '"') {
		for (c->i++; c->i < c->n && c->s[c->i] != '"'; c->i++) {
			if (c->s[c->i] == '\\' && ++c->i >= c->n)
				return false;
			if (c->s[c->i] == '\0')
				return false; /* no NUL in an address, quoted or not */
			if (c->s[c->i] != '\r' && c->s[c->i] != '\n' && !put(o, c->s[c->i]))
				return false;
		}
		if (c->i >= c->n)
			return false;
		c->i++;
		return true;
	}
	while (c->i < c->n && is_atext((unsigned char)c->s[c->i]))
		if (!put(o, c->s[c->i++]))
			return false;
	return o->len > start;
}

/* A dot-atom, word-wise; a domain's words may not be quoted strings. */
static int
dot_words(struct cur *c, struct out *o, bool domain)
{
	for (;;) {
		if (!skip_cfws(c) || (domain && (c->i >= c->n || c->s[c->i] == '"')) ||
		    !word(c, o) || !skip_cfws(c))
			return -EINVAL;
		if (c->i >= c->n || c->s[c->i] != '.')
			break;
		c->i++;
		if (!put(o, '.'))
			return -EINVAL;
	}
	return 0;
}

/* addr-spec = local-part "@" domain, the domain a dot-atom (a domain literal names none). */
static int
addr_spec(struct cur *c, struct out *o)
{
	if (dot_words(c, o, false) < 0)
		return -EINVAL;
	if (c->i >= c->n || c->s[c->i] != '@' || !put(o, '@'))
		return -EINVAL;
	c->i++;
	return dot_words(c, o, true);
}

/*
 * Scans the value at top level (outside quotes, comments, angle brackets): counts the
 * non-empty comma-separated elements, finds the '<' of an angle-addr, notes an unquoted
 * '@' before it and a group's ':'.
 */
struct shape {
	size_t elements;
	size_t start, end; /* the last non-empty element */
	size_t angle;      /* index of '<', or SIZE_MAX */
	bool at_outside, group, bad;
};

static void
shape_of(const char *s, size_t n, struct shape *sh)
{
	struct cur c = {s, 0, n};
	bool content = false;
	size_t from = 0;
	*sh = (struct shape){.angle = SIZE_MAX};
	while (c.i < n && !sh->bad) {
		char ch = s[c.i];
		if (ch == '(' || is_wsp(ch)) {
			sh->bad = !skip_cfws(&c);
			continue;
		}
		if (ch == ',') {
			if (content) {
				sh->elements++;
				sh->start = from;
				sh->end = c.i;
			}
			content = false;
			from = ++c.i;
			continue;
		}
		content = true;
		if (ch == '"') {
			sh->bad = !skip_quoted(&c);
		} else if (ch == '<') {
			if (sh->angle != SIZE_MAX)
				sh->bad = true;
			sh->angle = c.i;
			const char *gt = memchr(s + c.i, '>', n - c.i);
			sh->bad |= gt == NULL;
			c.i = gt ? (size_t)(gt - s) + 1 : n;
		} else {
			sh->group |= ch == ':' || ch == ';';
			sh->at_outside |= ch == '@';
			c.i++;
		}
	}
	if (content) {
		sh->elements++;
		sh->start = from;
		sh->end = n;
	}
}

int
senderid_pra_mailbox(const char *value, size_t len, char *out, size_t cap)
{
	struct shape sh;
	struct out o = {out, 0, cap};
	struct cur c;

	if (cap == 0)
		return -EINVAL;
	out[0] = '\0';
	shape_of(value, len, &sh);
	if (sh.bad || sh.group || sh.elements != 1)
		return -EINVAL;
	c = (struct cur){value, sh.start, sh.end};
	if (sh.angle != SIZE_MAX) {
		if (sh.at_outside)
			return -EINVAL;
		const char *gt = memchr(value + sh.angle, '>', len - sh.angle);
		c = (struct cur){value, sh.angle + 1, (size_t)(gt - value)};
		/* obs-route "@a,@b:" before the address is not part of it */
		if (skip_cfws(&c) && c.i < c.n && value[c.i] == '@') {
			const char *colon = memchr(value + c.i, ':', c.n - c.i);
			if (!colon)
				return -EINVAL;
			c.i = (size_t)(colon - value) + 1;
		}
	}
	if (addr_spec(&c, &o) < 0 || !skip_cfws(&c) || c.i != c.n)
		return -EINVAL;
	out[o.len] = '\0';
	return 0;
}

/* Header fields the PRA rules look at. */
enum field {
	F_OTHER,
	F_RESENT_SENDER,
	F_RESENT_FROM,
	F_SENDER,
	F_FROM,
	F_TRACE, /* Received, Return-Path */
};

static const struct {
	const char *name;
	enum field f;
} field_names[] = {
    {"Resent-Sender", F_RESENT_SENDER},
    {"Resent-From", F_RESENT_FROM},
    {"Sender", F_SENDER},
    {"From", F_FROM},
    {"Received", F_TRACE},
    {"Return-Path", F_TRACE},
};

struct span {
	const char *p;
	size_t n;
};

/* What one pass over the header collects. */
struct headers {
	struct span resent_sender, resent_from, sender, from;
	size_t n_sender, n_from;
	bool rs_after_trace; /* a Received/Return-Path lies between Resent-From and Resent-Sender */
	bool trace_since_rf;
};

static bool
non_empty(struct span v)
{
	for (size_t i = 0; i < v.n; i++)
		if (!is_wsp(v.p[i]))
			return true;
	return false;
}

static void
collect(struct headers *h, enum field f, struct span v)
{
	if (f == F_TRACE) {
		h->trace_since_rf |= h->resent_from.p != NULL;
		return;
	}
	if (f == F_OTHER || !non_empty(v))
		return;
	if (f == F_RESENT_SENDER && !h->resent_sender.p) {
		h->resent_sender = v;
		h->rs_after_trace = h->trace_since_rf;
	} else if (f == F_RESENT_FROM && !h->resent_from.p) {
		h->resent_from = v;
	} else if (f == F_SENDER && h->n_sender++ == 0) {
		h->sender = v;
	} else if (f == F_FROM && h->n_from++ == 0) {
		h->from = v;
	}
}

static enum field
field_kind(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++)
		if (strlen(field_names[i].name) == n &&
		    strncasecmp(name, field_names[i].name, n) == 0)
			return field_names[i].f;
	return F_OTHER;
}

/* End of the line starting at i (index of its '\n', or n). */
static size_t
line_end(const char *s, size_t n, size_t i)
{
	const char *nl = memchr(s + i, '\n', n - i);
	return nl ? (size_t)(nl - s) : n;
}

static bool
blank_line(const char *s, size_t i, size_t e)
{
	return e == i || (e == i + 1 && s[i] == '\r');
}

/* One pass over the header section: the fields, unfolded in place as spans. */
static void
read_headers(const char *s, size_t n, struct headers *h)
{
	size_t i = 0;
	if (n > SENDERID_HEADER_MAX)
		n = SENDERID_HEADER_MAX;
	if (n >= 5 && strncmp(s, "From ", 5) == 0)
		i = line_end(s, n, 0) + 1; /* mbox separator, not a field */
	while (i < n) {
		size_t e = line_end(s, n, i);
		if (blank_line(s, i, e))
			return;
		const char *colon = memchr(s + i, ':', e - i);
		size_t name_len = colon ? (size_t)(colon - s) - i : 0;
		size_t v = colon ? (size_t)(colon - s) + 1 : e;
		/* the value runs on over continuation lines (starting with WSP) */
		while (e < n && e + 1 < n && (s[e + 1] == ' ' || s[e + 1] == '\t'))
			e = line_end(s, n, e + 1);
		if (name_len > 0 && !is_wsp(s[i]) && !memchr(s + i, ' ', name_len))
			collect(h, field_kind(s + i, name_len), (struct span){s + v, e - v});
		i = e + 1;
	}
}

static int
pick(struct span v, const char *header, struct senderid_pra *out, const char **why)
{
	if (senderid_pra_mailbox(v.p, v.n, out->address, sizeof(out->address)) < 0) {
		*why = "the selected header is not a single mailbox with a domain";
		return -ENOENT;
	}
	out->header = header;
	return 0;
}

int
senderid_pra_find(const char *msg, size_t len, struct senderid_pra *out, const char **why)
{
	struct headers h = {0};
	*out = (struct senderid_pra){0};
	*why = NULL;
	read_headers(msg, len, &h);
	/* step 1: a Resent-Sender, unless an older Resent-From block precedes it */
	if (h.resent_sender.p &&
	    !(h.resent_from.p && h.rs_after_trace && h.resent_from.p < h.resent_sender.p))
		return pick(h.resent_sender, "Resent-Sender", out, why);
	if (h.resent_from.p)
		return pick(h.resent_from, "Resent-From", out, why);
	if (h.n_sender == 1)
		return pick(h.sender, "Sender", out, why);
	if (h.n_sender > 1) {
		*why = "more than one Sender header";
		return -ENOENT;
	}
	if (h.n_from == 1)
		return pick(h.from, "From", out, why);
	*why = h.n_from ? "more than one From header" : "no From header";
	return -ENOENT;
}
