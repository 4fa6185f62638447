#include "authres.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* RFC 2045 tspecials, plus space and controls: what ends a token. */
static bool
authres_token_char(unsigned char c)
{
	return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

bool
authres_valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n >= AUTHRES_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!authres_token_char((unsigned char)id[i]) && id[i] != '.')
			return false;
	return true;
}

int
authres_begin(struct buf *out, const char *authserv_id)
{
	if (!authres_valid_id(authserv_id))
		return -EINVAL;
	return buf_printf(out, " %s", authserv_id);
}

int
authres_add(struct buf *out, const char *method)
{
	return buf_printf(out, ";\r\n\t%s", method);
}

int
authres_finish(struct buf *out, size_t methods)
{
	return methods ? 0 : buf_append(out, "; none", 6);
}

/* Skips WSP, line ends and (nested, quoted-pair) comments; false on an unclosed comment. */
static bool
authres_skip_cfws(const char *v, size_t len, size_t *pos)
{
	size_t i = *pos;
	unsigned depth = 0;
	while (i < len) {
		char c = v[i];
		if (depth && c == '\\' && i + 1 < len) {
			i += 2;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')' && depth)
			depth--;
		else if (!depth && !strchr(" \t\r\n", c))
			break;
		i++;
	}
	*pos = i;
	return depth == 0;
}

static int
authres_quoted(const char *v, size_t len, size_t i, char *out, size_t size)
{
	size_t o = 0;
	for (i++; i < len && v[i] != '"'; i++) {
		if (v[i] == '\\' && i + 1 < len)
			i++;
		/* no control bytes: an id with a NUL in it would read as a shorter one */
		if ((unsigned char)v[i] < 32 || v[i] == 127)
			return -EINVAL;
		if (o + 1 >= size)
			return -ENOBUFS;
		out[o++] = v[i];
	}
	if (i >= len || o == 0)
		return -EINVAL;
	out[o] = '\0';
	return 0;
}

int
authres_authserv_id(const char *value, size_t len, char *out, size_t size)
{
	size_t i = 0, o = 0;
	if (size == 0 || !authres_skip_cfws(value, len, &i) || i >= len)
		return -EINVAL;
	if (value[i] == '"')
		return authres_quoted(value, len, i, out, size);
	/* a dot is no tspecial: host names are tokens */
	while (i < len && (authres_token_char((unsigned char)value[i]) || value[i] == '.')) {
		if (o + 1 >= size)
			return -ENOBUFS;
		out[o++] = value[i++];
	}
	if (o == 0)
		return -EINVAL;
	out[o] = '\0';
	return 0;
}

bool
authres_claims(const char *value, size_t len, const char *id)
{
	char got[AUTHRES_ID_MAX];
	return authres_authserv_id(value, len, got, sizeof(got)) == 0 && !strcasecmp(got, id);
}
