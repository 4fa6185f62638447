#include "spf_header.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/*
 * Text built by pieces into a caller's buffer. No printf: the headers are built for every
 * message, and formatting dominated the cost of a cached check.
 */
struct app {
	char *p;
	size_t len, cap; /* cap counts the NUL */
	bool over;
};

static void
app_n(struct app *a, const char *s, size_t n)
{
	if (a->over || a->len + n >= a->cap) {
		a->over = true;
		return;
	}
	memcpy(a->p + a->len, s, n);
	a->len += n;
}

static void
app(struct app *a, const char *s)
{
	app_n(a, s, strlen(s));
}

/* Terminates the text (always, within the buffer) and says whether it all fitted. */
static int
app_done(struct app *a)
{
	if (a->cap)
		a->p[a->len] = '\0';
	return a->over ? -ENOBUFS : 0;
}

/* atext (RFC 5322 §3.2.3) as a bitmap of the 128 ASCII codes: letters, digits and
 * !#$%&'*+-/=?^_`{|}~ */
static inline bool
atext(unsigned char c)
{
	static const uint64_t map[2] = {0xa3ffacfa00000000ULL, 0x7fffffffc7fffffeULL};
	return c < 128 && (map[c >> 6] >> (c & 63)) & 1;
}

/* dot-atom = 1*atext *( "." 1*atext ) */
static bool
dot_atom(const char *s)
{
	bool prev_dot = true;
	for (; *s; s++) {
		if (*s == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
		} else if (atext((unsigned char)*s)) {
			prev_dot = false;
		} else {
			return false;
		}
	}
	return !prev_dot;
}

/* Do the parentheses of s nest properly (so a comment may hold them as they are)? */
static bool
parens_balanced(const char *s, size_t n)
{
	int depth = 0;
	for (size_t i = 0; i < n && depth >= 0; i++)
		depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
	return depth == 0;
}

/* What a byte needs in a header: replacing (B_BAD: a control or not ASCII), or a backslash
 * in comments (B_BACKSLASH, B_PAREN) or quoted strings (B_BACKSLASH, B_QUOTE). */
enum {
	B_BAD = 1,
	B_BACKSLASH = 2,
	B_PAREN = 4,
	B_QUOTE = 8,
};

static inline uint8_t
byte_class(unsigned char ch)
{
	if (ch < 0x20 || ch >= 0x7f)
		return B_BAD;
	return ch == '\\'               ? B_BACKSLASH
	       : ch == '(' || ch == ')' ? B_PAREN
	       : ch == '"'              ? B_QUOTE
	                                : 0;
}

/*
 * Appends n bytes of s. What header syntax cannot carry (the texts come from DNS and from the
 * client) becomes '?'; the classes in quote get a backslash (quoted-pairs). Runs of plain
 * bytes are copied whole: this is on every message's path.
 */
static void
app_safe_n(struct app *a, const char *s, size_t n, unsigned quote)
{
	unsigned stop = B_BAD | quote;
	for (size_t i = 0; i < n;) {
		size_t run = i;
		while (run < n && !(byte_class((unsigned char)s[run]) & stop))
			run++;
		app_n(a, s + i, run - i);
		if (run == n)
			break;
		if (byte_class((unsigned char)s[run]) & B_BAD) {
			app_n(a, "?", 1);
		} else {
			app_n(a, "\\", 1);
			app_n(a, s + run, 1);
		}
		i = run + 1;
	}
}

/* Comment text: a backslash, and parentheses that do not nest, become quoted-pairs. */
static void
app_safe(struct app *a, const char *s)
{
	size_t n = strlen(s);
	app_safe_n(a, s, n, B_BACKSLASH | (parens_balanced(s, n) ? 0 : B_PAREN));
}

static void
app_quoted(struct app *a, const char *value)
{
	if (dot_atom(value)) {
		app(a, value);
		return;
	}
	app_n(a, "\"", 1);
	app_safe_n(a, value, strlen(value), B_BACKSLASH | B_QUOTE);
	app_n(a, "\"", 1);
}

int
spf_header_quote(const char *value, char *buf, size_t len)
{
	struct app a = {buf, 0, len, len == 0};
	if (len)
		buf[0] = '\0';
	app_quoted(&a, value);
	return app_done(&a);
}

/* The sentence for a result, in pyspf's words; "%d" and "%i" stand for domain and address. */
static const char *
comment_pattern(enum spf_result r)
{
	switch (r) {
	case SPF_PASS:
		return "domain of %d designates %i as permitted sender";
	case SPF_FAIL:
		return "domain of %d does not designate %i as permitted sender";
	case SPF_SOFTFAIL:
		return "transitioning domain of %d does not designate %i as permitted sender";
	case SPF_PERMERROR:
		return "permanent error in processing domain of %d: %r";
	case SPF_TEMPERROR:
		return "temporary error in processing during lookup of %d";
	default:
		return "%i is neither permitted nor denied by domain of %d";
	}
}

static void
app_comment(struct app *a, const struct spf_request *req, const struct spf_outcome *o)
{
	for (const char *p = comment_pattern(o->result); *p; p++) {
		if (*p != '%') {
			const char *next = strchr(p, '%');
			size_t n = next ? (size_t)(next - p) : strlen(p);
			app_n(a, p, n);
			p += n - 1;
			continue;
		}
		p++;
		const char *v = *p == 'd' ? o->domain : *p == 'i' ? o->client_ip : o->reason;
		app_safe(a, v ? v : "error");
	}
}

int
spf_header_comment(const struct spf_request *req, const struct spf_outcome *o, char *buf,
                   size_t len)
{
	struct app a = {buf, 0, len, len == 0};
	if (len)
		buf[0] = '\0';
	app_comment(&a, req, o);
	return app_done(&a);
}

/* Appends " key=value;" with the value quoted as needed; nothing for an empty value. */
static void
app_kv(struct app *a, const char *key, const char *value)
{
	if (!value || !*value)
		return;
	app_n(a, " ", 1);
	app(a, key);
	app_n(a, "=", 1);
	app_quoted(a, value);
	app_n(a, ";", 1);
}

static const char *
identity_name(enum spf_identity id)
{
	return id == SPF_ID_HELO ? "helo" : id == SPF_ID_PRA ? "pra" : "mailfrom";
}

int
spf_header_received(const struct spf_request *req, const struct spf_outcome *o,
                    const char *receiver, char *out, size_t len)
{
	const char *r = receiver ? receiver : req->receiver ? req->receiver : "unknown";
	struct app a = {out, 0, len, len == 0};

	if (len)
		out[0] = '\0';
	app(&a, spf_result_title(o->result));
	app_n(&a, " (", 2);
	app_safe(&a, r);
	app_n(&a, ": ", 2);
	app_comment(&a, req, o);
	app_n(&a, ")", 1);
	app_kv(&a, "client-ip", o->client_ip);
	if (o->identity != SPF_ID_HELO)
		app_kv(&a, "envelope-from", req->sender);
	app_kv(&a, "helo", req->helo);
	app_kv(&a, "receiver", r);
	if (o->result == SPF_PERMERROR)
		app_kv(&a, "problem", o->problem);
	app_kv(&a, "mechanism", o->mechanism);
	app(&a, " identity=");
	app(&a, identity_name(o->identity));
	return app_done(&a);
}

int
spf_header_authres(const struct spf_request *req, const struct spf_outcome *o, char *buf,
                   size_t len)
{
	bool helo = o->identity == SPF_ID_HELO;
	const char *value = helo ? (req->helo ? req->helo : "") : o->sender;
	const char *at = strrchr(value, '@');
	struct app a = {buf, 0, len, len == 0};

	if (len)
		buf[0] = '\0';
	app(&a, "spf=");
	app(&a, spf_result_name(o->result));
	app(&a, helo ? " smtp.helo=" : " smtp.mailfrom=");
	/* pvalue = [ [ local-part ] "@" ] domain-name, else a quoted-string */
	if (helo || !at || !dot_atom(at + 1)) {
		app_quoted(&a, value);
		return app_done(&a);
	}
	char local[SPF_SENDER_MAX];
	size_t n = (size_t)(at - value) < sizeof(local) ? (size_t)(at - value) : sizeof(local) - 1;
	memcpy(local, value, n);
	local[n] = '\0';
	if (n > 0)
		app_quoted(&a, local);
	app(&a, at);
	return app_done(&a);
}
