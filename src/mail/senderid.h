/*
 * Sender ID (RFC 4406): check_host() on the PRA (RFC 4407) or the MAIL FROM with spf2.0
 * record selection (spf2.0/pra, spf2.0/mfrom, spf2.0/mfrom,pra; v=spf1 as the fallback),
 * and the sender-id= method of Authentication-Results.
 */
#pragma once

#include "senderid_pra.h"
#include "spf_eval.h"

#include <stdbool.h>
#include <stddef.h>

struct senderid_request {
	struct net_addr ip;
	enum spf_scope scope; /* SPF_SCOPE_PRA or SPF_SCOPE_MFROM */
	const char *message;  /* pra: the message (its header is enough) */
	size_t message_len;
	const char *mfrom; /* mfrom: the MAIL FROM address; "" for the null reverse-path */
	const char *helo;
	const char *receiver;
	uint64_t budget_ms; /* 0: SPF_BUDGET_MS_DEFAULT */
};

struct senderid_outcome {
	struct spf_outcome spf; /* the result and its details */
	struct spf_request req; /* as evaluated (for the header builders) */
	bool have_pra;
	struct senderid_pra pra; /* scope pra, when have_pra */
};

/*
 * Runs the check. A message without a PRA is a permerror ("no PRA", RFC 4407 §2 step 6).
 * Returns -EINVAL for a request that cannot be evaluated, else 0 with out filled.
 */
int senderid_check(struct dns_resolver *dns, const struct senderid_request *req,
                   struct senderid_outcome *out);

/* "sender-id=pass header.from=user@example.com" (header.resent-from, header.sender, ...) or,
 * for scope mfrom, "sender-id=pass smtp.mailfrom=user@example.com". */
int senderid_authres(const struct senderid_outcome *o, char *buf, size_t len);
