/*
 * Fuzz target for src/mail/spf_record: the whole record grammar. Whatever parses must have
 * every span inside the text, CIDR lengths in range and valid domain-specs; selection over
 * the input cut into TXT records must pick an index inside the answer.
 */
#include "core/dns.h"
#include "mail/spf_macro.h"
#include "mail/spf_record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_span(const struct spf_record *r, struct spf_span s)
{
	if (s.off > r->len || s.len > r->len - s.off)
		abort();
}

static void
check_record(const struct spf_record *r)
{
	if (r->n > SPF_TERMS_MAX || r->text[r->len] != '\0')
		abort();
	for (size_t i = 0; i < r->n; i++) {
		const struct spf_term *t = &r->terms[i];
		check_span(r, t->text);
		check_span(r, t->spec);
		if (t->mech > SPF_M_EXISTS || t->cidr4 > 32 || t->cidr6 > 128)
			abort();
		if (t->spec.len &&
		    spf_macro_check(r->text + t->spec.off, t->spec.len, SPF_MACRO_DOMAIN) < 0)
			abort();
	}
	if (r->has_redirect)
		check_span(r, r->redirect);
	if (r->has_exp)
		check_span(r, r->exp);
}

/* The input as TXT records split at NUL-free '\n' boundaries. */
static void
check_select(const uint8_t *data, size_t size)
{
	struct dns_rr rr[16];
	struct dns_answer a = {.status = DNS_OK, .rr = rr};
	struct spf_error err;
	size_t start = 0;
	for (size_t i = 0; i <= size && a.n < 16; i++) {
		if (i < size && data[i] != '\n')
			continue;
		rr[a.n++] = (struct dns_rr){
		    .type = DNS_T_TXT, .u.txt = {.data = (char *)data + start, .len = i - start}};
		start = i + 1;
	}
	for (int scope = SPF_SCOPE_SPF1; scope <= SPF_SCOPE_PRA; scope++) {
		int r = spf_record_select(&a, (enum spf_scope)scope, &err);
		if (r >= (int)a.n || (r < 0 && r != -ENOENT && r != -ENOTUNIQ))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spf_record *r = NULL;
	struct spf_error err;
	int e = spf_record_parse((const char *)data, size, &r, &err);
	if (e == 0) {
		check_record(r);
		spf_record_free(r);
	} else if (r != NULL || (e != -EINVAL && e != -E2BIG && e != -ENOMEM) ||
	           (e != -ENOMEM && !err.msg)) {
		abort();
	} else if (err.at.off > size || err.at.len > size - err.at.off) {
		abort();
	}
	check_select(data, size);
	return 0;
}
