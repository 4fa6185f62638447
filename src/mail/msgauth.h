/*
 * One message through the milter, independent of libmilter: the envelope and header decide
 * whether it is signed (an internal or authenticated client, a From domain with keys) or
 * verified; the body is streamed to the signer or the verifiers; the end gives the fields to
 * add and remove and the verdict. The DNS work of a message (SPF, Sender ID, key and DMARC
 * records) starts when its header is complete, in parallel with the body, and all of it runs
 * under one time budget.
 */
#pragma once

#include "core/buf.h"
#include "core/dns.h"
#include "core/net.h"
#include "dkim_key.h"
#include "dmarc_psl.h"
#include "milter_config.h"
#include "milter_keys.h"

#include <stdbool.h>
#include <stddef.h>

/* Fields one message may have removed (forged Authentication-Results). */
#define MSGAUTH_REMOVE_MAX 64
#define MSGAUTH_REPLY_MAX 512

/* What every message of a configuration shares; read-only while messages use it. */
struct msgauth_env {
	const struct milter_cfg *cfg;
	struct dns_resolver *dns;
	const struct dmarc_psl *psl;
	const struct milter_keys *keys;
	struct dkim_key_cache *key_cache;
	const char *authserv_id;
};

struct msgauth_envelope {
	struct net_addr client; /* family 0: unknown (a local submission) */
	const char *helo;       /* may be NULL */
	const char *mail_from;  /* the reverse-path without <>; "" for the null path */
	bool authenticated;     /* SASL ({auth_authen}) */
	const char *queue_id;   /* for the log; may be NULL */
};

enum msgauth_verdict {
	MSGAUTH_ACCEPT,
	MSGAUTH_REJECT,     /* 5xx: reply */
	MSGAUTH_TEMPFAIL,   /* 4xx: reply */
	MSGAUTH_QUARANTINE, /* held: reply is the reason */
};

/* One field to insert at the top, in order: name and value (value starts with a space). */
struct msgauth_field {
	const char *name;
	size_t value_off, value_len; /* in msgauth_outcome.text */
};

struct msgauth_outcome {
	enum msgauth_verdict verdict;
	char rcode[4], xcode[8];
	char reply[MSGAUTH_REPLY_MAX];
	bool signed_; /* the message was signed (not verified) */
	size_t nsig;  /* signatures made */
	/* results for the metrics and the log, by method ("spf", "dkim", ...) */
	const char *spf, *helo, *senderid, *dkim, *domainkeys, *dmarc;
	/* occurrences (1-based, among Authentication-Results) to delete, highest first */
	size_t nremove;
	unsigned remove[MSGAUTH_REMOVE_MAX];
	size_t nfields;
	struct msgauth_field fields[MILTER_KEYS_PER_MESSAGE + 2];
	struct buf text; /* the values of fields, lines folded with "\r\n\t" */
};

struct msgauth;

int msgauth_begin(const struct msgauth_env *env, const struct msgauth_envelope *envl,
                  struct msgauth **out);
/* Aborts whatever is in flight and frees m. NULL-safe. */
void msgauth_free(struct msgauth *m);
/* One header field as a milter gets it: name and value (the value as sent after ':'). */
int msgauth_header(struct msgauth *m, const char *name, const char *value);
/* The header is complete: decides sign or verify and starts the DNS work. */
int msgauth_eoh(struct msgauth *m);
int msgauth_body(struct msgauth *m, const char *data, size_t len);
/* Completes every check and fills out (freed with msgauth_outcome_free). */
int msgauth_eom(struct msgauth *m, struct msgauth_outcome *out);
void msgauth_outcome_free(struct msgauth_outcome *o);
