#include "milter_keys.h"

#include "core/cleanup.h"
#include "core/file.h"
#include "dkim_sign.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
milter_keys_free(struct milter_keys *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->n; i++) {
		free(ks->k[i].pattern);
		free(ks->k[i].domain);
		free(ks->k[i].selector);
		dkim_key_private_clear(&ks->k[i].key);
	}
	free(ks->k);
	free(ks);
}

DEFINE_CLEANUP_FUNC(struct milter_keys, milter_keys_free)

static int
milter_keys_add(struct milter_keys *ks, const char *pattern, bool glob, const char *domain,
                const char *selector, const char *keyfile, char *why, size_t whylen)
{
	_cleanup_free_ char *pem = NULL;
	size_t pem_len = 0;
	struct milter_key *grown = realloc(ks->k, (ks->n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	ks->k = grown;
	int r = file_read_path(keyfile, MILTER_KEY_FILE_MAX, &pem, &pem_len);
	if (r < 0) {
		snprintf(why, whylen, "%s: %s", keyfile, r == -EFBIG ? "too large" : strerror(-r));
		return r;
	}
	if (!dkim_sign_valid_name(domain) || !dkim_sign_valid_name(selector)) {
		snprintf(why, whylen, "%s: not a domain and selector DKIM can use", keyfile);
		return -EINVAL;
	}
	struct milter_key *k = &ks->k[ks->n];
	*k = (struct milter_key){.glob = glob};
	r = dkim_key_private_load(pem, pem_len, &k->key);
	if (r < 0) {
		snprintf(why, whylen, "%s: not an RSA or Ed25519 PEM private key", keyfile);
		return r;
	}
	k->pattern = strdup(pattern);
	k->domain = strdup(domain);
	k->selector = strdup(selector);
	ks->n++;
	return k->pattern && k->domain && k->selector ? 0 : -ENOMEM;
}

/* Splits a table line into its first word and the rest (both trimmed); comments dropped. */
static bool
milter_keys_line(char *line, char **key, char **rest)
{
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	while (isspace((unsigned char)*line))
		line++;
	size_t n = strlen(line);
	while (n && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
	if (!n)
		return false;
	*key = line;
	line += strcspn(line, " \t");
	if (*line)
		*line++ = '\0';
	while (isspace((unsigned char)*line))
		line++;
	*rest = line;
	return true;
}

/* KeyTable value "domain:selector:keyfile" for name, split in place. */
static char *
milter_keys_lookup_name(char *keytable, const char *name, char **selector, char **file)
{
	char *save = NULL, *key, *rest;
	for (char *line = strtok_r(keytable, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!milter_keys_line(line, &key, &rest) || strcmp(key, name))
			continue;
		char *c1 = strchr(rest, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			return NULL;
		*c1 = *c2 = '\0';
		*selector = c1 + 1;
		*file = c2 + 1;
		return rest;
	}
	return NULL;
}

/* One SigningTable line: its key's KeyTable entry (kt is the table's text, read once). */
static int
milter_keys_opendkim_entry(struct milter_keys *ks, const struct milter_opendkim_cfg *od,
                           const char *kt, const char *pattern, bool glob, const char *name,
                           char *why, size_t whylen)
{
	_cleanup_free_ char *scratch = strdup(kt);
	char *selector, *file, *domain;
	if (!scratch)
		return -ENOMEM;
	if (!(domain = milter_keys_lookup_name(scratch, name, &selector, &file))) {
		snprintf(why, whylen, "%s: no key named %.64s (as domain:selector:keyfile)",
		         od->keytable, name);
		return -EINVAL;
	}
	return milter_keys_add(ks, pattern, glob, domain, selector, file, why, whylen);
}

static int
milter_keys_opendkim(struct milter_keys *ks, const struct milter_opendkim_cfg *od, char *why,
                     size_t whylen)
{
	_cleanup_free_ char *st = NULL, *kt = NULL;
	size_t len;
	const char *path = od->signingtable;
	bool glob = !strncmp(path, "refile:", 7);
	if (glob)
		path += 7;
	int r = file_read_path(path, MILTER_TABLE_FILE_MAX, &st, &len);
	if (r >= 0 && (r = file_read_path(od->keytable, MILTER_TABLE_FILE_MAX, &kt, &len)) < 0)
		path = od->keytable;
	if (r < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(-r));
		return r;
	}
	char *save = NULL, *key, *rest;
	for (char *line = strtok_r(st, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!milter_keys_line(line, &key, &rest))
			continue;
		if (!*rest) {
			snprintf(why, whylen, "%s: \"%.64s\" names no key", path, key);
			return -EINVAL;
		}
		r = milter_keys_opendkim_entry(ks, od, kt, key, glob, rest, why, whylen);
		if (r < 0)
			return r;
	}
	return 0;
}

int
milter_keys_load(const struct milter_cfg *cfg, struct milter_keys **out, char *why, size_t whylen)
{
	_cleanup_(milter_keys_freep) struct milter_keys *ks = calloc(1, sizeof(*ks));
	if (!ks)
		return -ENOMEM;
	const struct milter_sign_cfg *s = cfg->sign.items;
	for (size_t i = 0; i < cfg->sign.n; i++) {
		int r = milter_keys_add(ks, s[i].domain, false, s[i].domain, s[i].selector,
		                        s[i].key, why, whylen);
		if (r < 0)
			return r;
	}
	if (cfg->sign_from_opendkim.keytable) {
		int r = milter_keys_opendkim(ks, &cfg->sign_from_opendkim, why, whylen);
		if (r < 0)
			return r;
	}
	*out = TAKE_PTR(ks);
	return 0;
}

/* OpenDKIM refile: '*' matches any run of characters, the rest compares without case. */
static bool
milter_keys_glob(const char *p, const char *s)
{
	if (!*p)
		return !*s;
	if (*p == '*')
		return milter_keys_glob(p + 1, s) || (*s && milter_keys_glob(p, s + 1));
	return *s && tolower((unsigned char)*p) == tolower((unsigned char)*s) &&
	       milter_keys_glob(p + 1, s + 1);
}

/* A plain table key: the whole address, or its domain (OpenDKIM's lookups without refile). */
static bool
milter_keys_plain(const char *pattern, const char *address)
{
	const char *at = strrchr(address, '@');
	return !strcasecmp(pattern, address) || (at && !strcasecmp(pattern, at + 1));
}

size_t
milter_keys_match(const struct milter_keys *ks, const char *address, const struct milter_key **out,
                  size_t max)
{
	size_t n = 0;
	for (size_t i = 0; ks && i < ks->n && n < max; i++) {
		const struct milter_key *k = &ks->k[i];
		if (k->glob ? milter_keys_glob(k->pattern, address)
		            : milter_keys_plain(k->pattern, address))
			out[n++] = k;
	}
	return n;
}
