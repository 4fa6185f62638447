/*
 * The `mail:` section of rampart.yaml: the milter's listener, who gets signed and with which
 * keys, and what each verification method does with a bad result. Decoded by core/cfg
 * through milter_config_schema.
 */
#pragma once

#include "core/cfg.h"

#include <stdbool.h>
#include <stdint.h>

#define MILTER_LISTEN_DEFAULT "inet:8891@127.0.0.1"

/* What a method's failing result does to the message. */
enum milter_action {
	MILTER_ACTION_HEADER,     /* recorded in Authentication-Results only */
	MILTER_ACTION_REJECT,     /* 5xx with the reason */
	MILTER_ACTION_QUARANTINE, /* accepted and held in Postfix's hold queue */
};

/* A temporary DNS error of a method. */
enum milter_temp_action {
	MILTER_TEMP_HEADER,   /* temperror recorded, the message accepted */
	MILTER_TEMP_TEMPFAIL, /* 4xx: the client retries later */
};

/* An internal error (no memory, a bug): the message is let through, or retried. */
enum milter_on_error {
	MILTER_ON_ERROR_ACCEPT,
	MILTER_ON_ERROR_TEMPFAIL,
};

struct milter_sign_cfg {
	char *domain;   /* the From domain signed for, and d= */
	char *selector; /* s= */
	char *key;      /* PEM private key file (RSA or Ed25519) */
};

struct milter_listen_cfg {
	char *listen;        /* libmilter connection spec: inet:PORT@HOST, inet6:..., unix:PATH */
	uint64_t timeout_ms; /* an MTA silent this long is dropped */
};

struct milter_opendkim_cfg {
	char *keytable;     /* OpenDKIM KeyTable: "name domain:selector:keyfile" */
	char *signingtable; /* OpenDKIM SigningTable (refile: wildcards): "pattern name" */
};

struct milter_actions_cfg {
	int spf;           /* enum milter_action: on spf=fail (MAIL FROM, or HELO for <>) */
	int senderid;      /* on sender-id=fail */
	int dkim;          /* when signatures are present and none passes */
	int domainkeys;    /* likewise for DomainKeys */
	int dmarc;         /* on dmarc=fail, when dmarc-policy is false */
	bool dmarc_policy; /* dmarc=fail gets the domain's policy: p=reject 5xx, quarantine hold */
	int temperror;     /* enum milter_temp_action */
	int on_error;      /* enum milter_on_error */
};

struct milter_cfg {
	bool enabled; /* a `mail:` section with a milter listener */
	struct milter_listen_cfg milter;
	char *authserv_id;                 /* NULL: the host name */
	struct cfg_list internal_networks; /* struct net_cidr: signed, not verified */
	struct cfg_list sign;              /* struct milter_sign_cfg */
	struct milter_opendkim_cfg sign_from_opendkim;
	struct milter_actions_cfg actions;
	uint64_t budget_ms;   /* DNS time for one message, every method together */
	bool received_spf;    /* add a Received-SPF field besides Authentication-Results */
	bool verify_internal; /* also verify mail that is signed (internal or authenticated) */
	char *public_suffix_list;
};

extern const struct cfg_schema milter_config_schema;
