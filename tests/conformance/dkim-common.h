/* Shared by the DKIM and DomainKeys conformance drivers: fake DNS, reading messages, results. */
#pragma once

#include "core/dns.h"
#include "mail/dk_verify.h"
#include "mail/dkim_result.h"
#include "mail/dkim_verify.h"

#include <stdbool.h>
#include <stddef.h>

#define DKC_MAX_RESULTS 16

struct dkc_results {
	struct dkim_sig_result r[DKC_MAX_RESULTS];
	size_t n;
};

struct dkc_profile {
	struct dkim_verify_opts dkim;
	struct dk_verify_opts dk;
};

/* Adds "name value" lines (Mail::DKIM's FAKE_DNS.dat; stalwart's key lines) to z: the words
 * NXDOMAIN, ~~Query timed out~~ and ~~SERVFAIL~~ stand for DNS errors, "" for an empty TXT. */
int dkc_zone_add_lines(struct dns_zone *z, const char *text, size_t len);
/* Reads a whole file (at most 64 MiB) into *out (NUL-terminated); returns its length or -errno. */
long dkc_read_file(const char *path, char **out);
/* Verifies the message text with both verifiers; results DKIM first, then DomainKeys. */
int dkc_verify(const char *msg, size_t len, struct dns_resolver *r, const struct dkc_profile *p,
               struct dkc_results *out);
/* The best result: pass over fail over the first one's. */
enum dkim_result dkc_best(const struct dkc_results *res);
/* One line per result, indented, for failure reports. */
void dkc_print(const struct dkc_results *res);
/* $TESTDATA or the argument. */
const char *dkc_testdata(int argc, char **argv);
