/* Shared by `rampart spf` and `rampart senderid`: printing a result. */
#pragma once

#include "mail/spf_eval.h"

#include <stdbool.h>

struct cmd_spf_print {
	bool json;
	bool received_spf;                 /* a Received-SPF: line (SPF only) */
	bool authres;                      /* an Authentication-Results method line */
	const char *authres_text;          /* "spf=pass smtp.mailfrom=..." */
	const char *pra_header, *pra_addr; /* Sender ID scope pra, when found */
};

/* The first line "RESULT TEXT", then the optional lines; or one JSON object. */
int cmd_spf_report(const char *verb, const struct spf_request *req, const struct spf_outcome *o,
                   const struct cmd_spf_print *p);
/* Exit code for a result: 0 pass, 3 temperror, 1 anything else. */
int cmd_spf_exit(enum spf_result r);
