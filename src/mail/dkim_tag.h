/*
 * Tag=value lists (RFC 6376 §3.2): the DKIM-Signature and DomainKey-Signature header fields
 * and the key records in DNS. Parsing never copies: tags point into the input.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Tags kept from one list; real lists have a dozen. */
#define DKIM_TAG_MAX 64

struct dkim_tag {
	const char *name; /* case matters: "b" and "B" are different tags */
	size_t name_len;
	const char *value; /* without the FWS around it; inner FWS kept */
	size_t value_len;
	/* Offsets in the input of everything between "=" and the next ";" or the end: the
	 * bytes a verifier deletes from the b= tag before hashing the signature field. */
	size_t raw_start, raw_end;
};

struct dkim_tag_list {
	struct dkim_tag tag[DKIM_TAG_MAX];
	size_t n;
};

/*
 * Parses s[0..len): -EINVAL on a syntax error (a tag without "=", a bad tag name, a control
 * character or NUL in a value), -EEXIST when a tag occurs twice (RFC 6376: the whole list is
 * invalid), -E2BIG past DKIM_TAG_MAX tags. Empty elements (";;", a final ";") are allowed.
 */
int dkim_tag_parse(const char *s, size_t len, struct dkim_tag_list *out);
/* The tag named name, or NULL. */
const struct dkim_tag *dkim_tag_find(const struct dkim_tag_list *l, const char *name);
/* The value equals s exactly (or, with nocase, ignoring ASCII case). */
bool dkim_tag_value_is(const struct dkim_tag *t, const char *s, bool nocase);
/* Copies the value without any whitespace into buf, NUL-terminated: -ENOBUFS if it does not
 * fit, -EINVAL if it holds a NUL byte. */
int dkim_tag_value_copy(const struct dkim_tag *t, char *buf, size_t size);
/* Whitespace as it may fold a tag list: SP, HTAB, CR, LF. */
bool dkim_tag_is_fws(char c);
/* sub is dom or a name under it (ASCII case ignored): d= against an identity's domain. */
bool dkim_tag_is_subdomain(const char *sub, const char *dom);
/* The next of the colon-separated items of t's value from *pos (start at 0), without the FWS
 * around it (possibly empty); false past the last one. */
bool dkim_tag_list_next(const struct dkim_tag *t, size_t *pos, const char **item, size_t *len);
