/*
 * Fuzz target for src/mail/dkim_tag and what reads tag lists: the parser's invariants on any
 * input, then the same bytes as a key record, as base64, and as the value of DKIM-Signature
 * and DomainKey-Signature fields verified against a zone whose key is the input too.
 */
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/dk_verify.h"
#include "mail/dkim_b64.h"
#include "mail/dkim_key.h"
#include "mail/dkim_tag.h"
#include "mail/dkim_verify.h"
#include "mail/rfc5322.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Larger than any real tag list, small enough to keep runs fast. */
#define FUZZ_TAG_MAX 8192

static void
check_list(const char *s, size_t len, const struct dkim_tag_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct dkim_tag *t = &l->tag[i];
		const char *v_end = t->value + t->value_len;
		if (t->name < s || t->name + t->name_len > s + len || t->name_len == 0)
			abort();
		if (t->raw_start > t->raw_end || t->raw_end > len)
			abort();
		if (t->value < s + t->raw_start || v_end > s + t->raw_end)
			abort();
		if (t->value_len && (dkim_tag_is_fws(t->value[0]) || dkim_tag_is_fws(v_end[-1])))
			abort();
		if (memchr(t->value, ';', t->value_len) || memchr(t->value, '\0', t->value_len))
			abort();
		for (size_t j = 0; j < i; j++)
			if (l->tag[j].name_len == t->name_len &&
			    memcmp(l->tag[j].name, t->name, t->name_len) == 0)
				abort();
	}
}

/* What decodes survives encode and decode unchanged. */
static void
check_base64(const struct dkim_tag_list *l)
{
	unsigned char out[FUZZ_TAG_MAX], again[FUZZ_TAG_MAX];
	char back[2 * FUZZ_TAG_MAX];
	for (size_t i = 0; i < l->n; i++) {
		int n = dkim_b64_decode(l->tag[i].value, l->tag[i].value_len, out, sizeof(out));
		if (n < 0)
			continue;
		if (dkim_b64_encode(out, (size_t)n, back, sizeof(back)) < 0)
			abort();
		if (dkim_b64_decode(back, strlen(back), again, sizeof(again)) != n ||
		    memcmp(out, again, (size_t)n) != 0)
			abort();
	}
}

static struct dns_resolver *
resolver_with(const char *s, size_t len)
{
	struct dns_zone *z;
	struct dns_resolver *r;
	if (dns_zone_new(&z) < 0)
		return NULL;
	if (dns_zone_add_txt(z, "s._domainkey.example.com", s, len) < 0 ||
	    dns_resolver_from_zone(z, &r) < 0) {
		dns_zone_free(z);
		return NULL;
	}
	return r;
}

static int
add_header(struct rfc5322_header *h, const char *name, const char *s, size_t len)
{
	_cleanup_buf_ struct buf field = BUF_INIT(2 * FUZZ_TAG_MAX);
	int r = buf_printf(&field, "%s: ", name);
	if (r == 0)
		r = buf_append(&field, s, len);
	if (r == 0)
		r = buf_append(&field, "\r\n", 2);
	return r < 0 ? r : rfc5322_header_add(h, field.data, field.len);
}

/* The input as the value of a signature field on a small message. */
static void
verify_as_field(const char *name, const char *s, size_t len, struct dns_resolver *r)
{
	struct rfc5322_header h;
	struct dkim_verify *v = NULL;
	struct dk_verify *dv = NULL;
	rfc5322_header_init(&h, 0, 0);
	if (add_header(&h, name, s, len) == 0 && add_header(&h, "From", "a@example.com", 13) == 0 &&
	    dkim_verify_new(&(struct dkim_verify_opts){.drafts = true}, r, &v) == 0 &&
	    dk_verify_new(&(struct dk_verify_opts){0}, r, &dv) == 0 &&
	    dkim_verify_header(v, &h) == 0 && dk_verify_header(dv, &h) == 0 &&
	    dkim_verify_body(v, "body\r\n", 6) == 0 && dk_verify_body(dv, "body\r\n", 6) == 0 &&
	    dkim_verify_finish(v) == 0 && dk_verify_finish(dv) == 0) {
		/* every signature read gets a result */
		for (size_t i = 0; i < dkim_verify_count(v); i++)
			if (dkim_verify_result(v, i)->result == DKIM_RESULT_NONE)
				abort();
		for (size_t i = 0; i < dk_verify_count(dv); i++)
			if (dk_verify_result(dv, i)->result == DKIM_RESULT_NONE)
				abort();
	}
	dkim_verify_free(v);
	dk_verify_free(dv);
	rfc5322_header_free(&h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct dkim_tag_list l;
	struct dkim_key k;
	char why[160];
	if (size > FUZZ_TAG_MAX)
		return 0;
	if (dkim_tag_parse(s, size, &l) == 0) {
		check_list(s, size, &l);
		check_base64(&l);
	}
	if (dkim_key_parse(s, size, &k, why, sizeof(why)) == DKIM_RESULT_PASS)
		dkim_key_clear(&k);
	struct dns_resolver *r = resolver_with(s, size);
	if (r) {
		verify_as_field("DKIM-Signature", s, size, r);
		verify_as_field("DomainKey-Signature", s, size, r);
	}
	dns_resolver_free(r);
	return 0;
}
