#include "dkim_result.h"

#include "core/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
dkim_result_name(enum dkim_result r)
{
	static const char *const names[] = {
	    [DKIM_RESULT_NONE] = "none",           [DKIM_RESULT_PASS] = "pass",
	    [DKIM_RESULT_FAIL] = "fail",           [DKIM_RESULT_NEUTRAL] = "neutral",
	    [DKIM_RESULT_POLICY] = "policy",       [DKIM_RESULT_TEMPERROR] = "temperror",
	    [DKIM_RESULT_PERMERROR] = "permerror",
	};
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "permerror";
}

void
dkim_result_set(struct dkim_sig_result *res, enum dkim_result r, const char *fmt, ...)
{
	va_list ap;
	res->result = r;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
}

/* RFC 2045 token characters: anything else needs a quoted-string. */
static bool
is_token(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=", c))
			return false;
	}
	return true;
}

/* A token, or with allow_at "[local-part] @ domain" as RFC 8601 lets a pvalue be. */
static bool
is_plain(const char *v, bool allow_at)
{
	const char *at = allow_at ? strchr(v, '@') : NULL;
	if (!at)
		return is_token(v, strlen(v));
	if (strchr(at + 1, '@'))
		return false;
	return (at == v || is_token(v, (size_t)(at - v))) && is_token(at + 1, strlen(at + 1));
}

/* The value plain when it can be, else a quoted-string of printable ASCII. */
static int
ar_value(struct buf *out, const char *v, bool allow_at)
{
	if (is_plain(v, allow_at))
		return buf_append_str(out, v);
	int r = buf_append(out, "\"", 1);
	for (; r == 0 && *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '"' || c == '\\')
			r = buf_printf(out, "\\%c", c);
		else
			r = buf_append(out, c < ' ' || c >= 0x7f ? "?" : v, 1);
	}
	return r < 0 ? r : buf_append(out, "\"", 1);
}

static int
ar_prop(struct buf *out, const char *name, const char *v, bool allow_at)
{
	if (!*v)
		return 0;
	int r = buf_printf(out, " %s=", name);
	return r < 0 ? r : ar_value(out, v, allow_at);
}

int
dkim_result_format(const struct dkim_sig_result *r, struct buf *out)
{
	int e =
	    buf_printf(out, "%s=%s", r->dk ? "domainkeys" : "dkim", dkim_result_name(r->result));
	if (e == 0 && r->reason[0])
		e = buf_append_str(out, " reason=");
	if (e == 0 && r->reason[0])
		e = ar_value(out, r->reason, false);
	if (e == 0)
		e = ar_prop(out, "header.d", r->domain, false);
	if (e == 0 && r->dk)
		e = ar_prop(out, r->identity_sender ? "header.sender" : "header.from", r->identity,
		            true);
	if (e == 0)
		e = ar_prop(out, "header.s", r->selector, false);
	if (e == 0)
		e = ar_prop(out, "header.a", r->algorithm, false);
	if (e == 0 && !r->dk)
		e = ar_prop(out, "header.b", r->b, false);
	return e;
}

static int
json_str(struct buf *out, const char *key, const char *v)
{
	return buf_printf(out, ",\"%s\":", key) ?: json_string(out, v);
}

int
dkim_result_json(const struct dkim_sig_result *r, struct buf *out)
{
	int e = buf_printf(out, "{\"method\":\"%s\",\"result\":\"%s\"",
	                   r->dk ? "domainkeys" : "dkim", dkim_result_name(r->result));
	if (e == 0)
		e = json_str(out, "reason", r->reason);
	if (e == 0)
		e = json_str(out, "domain", r->domain);
	if (e == 0)
		e = json_str(out, "selector", r->selector);
	if (e == 0)
		e = json_str(out, "algorithm", r->algorithm);
	if (e == 0)
		e = json_str(out, "identity", r->identity);
	if (e == 0)
		e = json_str(out, "b", r->b);
	if (e == 0)
		e = buf_printf(out, ",\"key_bits\":%u,\"testing\":%s,\"weak\":%s", r->key_bits,
		               r->testing ? "true" : "false", r->weak ? "true" : "false");
	/* DomainKeys has no l= */
	if (e == 0 && !r->dk)
		e = buf_printf(out, ",\"body_extends_past_l\":%s", r->past_l ? "true" : "false");
	if (e == 0)
		e = buf_append(out, "}", 1);
	return e;
}
