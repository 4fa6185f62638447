/*
 * Fuzz target for the zone-file parser and zone answers (src/core/dns_zone.c): the input is
 * loaded as a zone; when it loads, a few names (fixed ones and the first owner of the text)
 * are asked for every type through a zone-only resolver, and every answer is checked for the
 * shape dns.h promises. The first line is also fed to dns_zone_add as rdata, and the raw
 * bytes to the wire-format rdata parser as every type.
 */
#include "core/cleanup.h"
#include "core/dns.h"
#include "core/dns_zone.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum dns_type fuzz_types[] = {DNS_T_A,   DNS_T_AAAA,  DNS_T_MX, DNS_T_TXT, DNS_T_SPF,
                                           DNS_T_PTR, DNS_T_CNAME, DNS_T_NS, DNS_T_SOA};

static void
check_answer(const struct dns_answer *a)
{
	if ((a->status == DNS_OK) != (a->n > 0) || a->n > DNS_ANSWER_MAX)
		abort();
	for (size_t i = 0; i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];
		if ((rr->type == DNS_T_TXT || rr->type == DNS_T_SPF) &&
		    (rr->u.txt.len >= DNS_TXT_MAX || rr->u.txt.data[rr->u.txt.len] != '\0'))
			abort();
		if (rr->type == DNS_T_MX && strnlen(rr->u.mx.host, DNS_NAME_MAX) >= DNS_NAME_MAX)
			abort();
	}
}

static void
ask(struct dns_resolver *r, const char *name)
{
	for (size_t i = 0; i < sizeof(fuzz_types) / sizeof(fuzz_types[0]); i++) {
		struct dns_answer a;
		int e = dns_query(r, name, fuzz_types[i], &a);
		if (e == 0)
			check_answer(&a);
		else if (e != -EINVAL)
			abort();
		dns_answer_free(&a);
	}
}

/* The first word of the text: likely an owner name. */
static void
first_word(const char *text, char *out, size_t len)
{
	size_t n = strcspn(text, " \t\r\n;()\"");
	if (n >= len)
		n = len - 1;
	memcpy(out, text, n);
	out[n] = '\0';
}

static void
fuzz_add(const char *text, uint8_t sel)
{
	struct dns_zone *z;
	char line[512];
	size_t n = strcspn(text, "\n");
	if (n >= sizeof(line) || dns_zone_new(&z) < 0)
		return;
	memcpy(line, text, n);
	line[n] = '\0';
	dns_zone_add(z, "fuzz.example", fuzz_types[sel % 9], line);
	dns_zone_free(z);
}

static void
fuzz_wire(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < sizeof(fuzz_types) / sizeof(fuzz_types[0]); i++) {
		struct dns_rr rr;
		if (dns_rdata_parse(fuzz_types[i], data, size, &rr) < 0)
			continue;
		struct dns_answer a = {.status = DNS_OK, .n = 1, .rr = &rr};
		check_answer(&a);
		if (rr.type == DNS_T_TXT || rr.type == DNS_T_SPF)
			free(rr.u.txt.data);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *text = malloc(size + 1);
	_cleanup_free_ char *err = NULL;
	struct dns_zone *z;
	struct dns_resolver *r;
	char word[300];
	if (!text || dns_zone_new(&z) < 0)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	fuzz_add(text, size ? data[0] : 0);
	fuzz_wire(data, size);
	if (dns_zone_load_string(z, "fuzz", text, size, &err) < 0) {
		if (!err && size > 0)
			abort(); /* a refused zone always says why */
		dns_zone_free(z);
		return 0;
	}
	if (dns_resolver_from_zone(z, &r) < 0)
		return 0;
	first_word(text, word, sizeof(word));
	ask(r, "example.com");
	ask(r, "www.example.com");
	ask(r, word);
	dns_resolver_free(r);
	return 0;
}
