/* Shared by the parts of the SPF conformance driver (spf-suite*.c). */
#pragma once

#include "core/cleanup.h"
#include "core/dns.h"
#include "mail/spf_eval.h"
#include "mail/spf_header.h"

#include <stdbool.h>

struct tally {
	unsigned pass, fail, diverged;
};

extern bool verbose;

/* Counts a mismatch of test in file: a failure, or an argued divergence when listed. */
void report(struct tally *t, const char *file, const char *test, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* One check against a zone; the zone is consumed. */
int run_check(struct dns_zone *zone, const struct spf_request *req, struct spf_outcome *out);

/* openspf YAML (and its pyspf and Mail::SPF relatives); scope SPF1, or MFROM for Sender ID. */
int openspf_file(const char *path, enum spf_scope scope, struct tally *t);
/* stalwart mail-auth's resources/spf/ (*.yml) */
int stalwart_dir(const char *dir, struct tally *t);
