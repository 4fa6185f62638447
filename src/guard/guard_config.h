/*
 * The `guard:` section of rampart.yaml: the kernel rate rule, the log sources, the scorer's
 * ban policy, who is never banned, and where bans are kept. Decoded by core/cfg through
 * guard_config_schema; the check fills the derived fields (enabled, flags, escalate).
 */
#pragma once

#include "core/cfg.h"

#include <stdbool.h>
#include <stdint.h>

enum guard_mode {
	GUARD_MODE_ENFORCE, /* bans go into nftables */
	GUARD_MODE_OBSERVE, /* match, score and log "would ban"; the firewall is left alone */
};

enum guard_source_type {
	GUARD_SOURCE_JOURNAL,
	GUARD_SOURCE_FILE,
};

struct guard_rate_cfg {
	int64_t port;          /* one port, or 0 when ports is given */
	struct cfg_list ports; /* int64_t */
	int64_t seconds;
	int64_t hitcount;
};

struct guard_source_cfg {
	int type;        /* enum guard_source_type */
	char *match;     /* journal: syslog identifier (sshd also covers sshd-session) */
	char *path;      /* file */
	char *directory; /* journal: read journal files there instead of the system's */
};

struct guard_ban_cfg {
	int64_t threshold;       /* danger that bans: 10 per failure as sshguard scores */
	uint64_t window_ms;      /* danger older than this no longer counts */
	uint64_t time_ms;        /* the first ban's length */
	char *escalate_text;     /* "2.0": each repeat ban lasts this many times the previous */
	double escalate;         /* parsed from escalate_text by the check */
	uint64_t max_time_ms;    /* escalation cap */
	int64_t permanent_after; /* this many bans make the source's ban permanent; 0: never */
};

/* guard.share: bans shared with the fleet through PostgreSQL (issue 19). */
struct guard_share_cfg {
	bool enabled;           /* postgres is set */
	char *postgres;         /* libpq connection string */
	char *name;             /* this machine; NULL: the host name */
	struct cfg_list accept; /* char *: ban, permanent: which peers' decisions are applied */
	struct cfg_list peers;  /* char *: only these machines' decisions; empty: any */
	bool accept_ban;        /* derived from accept */
	bool accept_permanent;
};

struct guard_cfg {
	bool enabled;              /* a `guard:` section is present */
	int mode;                  /* enum guard_mode */
	struct cfg_list rate;      /* struct guard_rate_cfg */
	struct cfg_list sources;   /* struct guard_source_cfg */
	struct cfg_list whitelist; /* char *: CIDR, address or host name */
	uint64_t trust_ms;         /* trust-logged-in: exempt a source that logged in; 0 off */
	struct guard_ban_cfg ban;
	int64_t ipv6_prefix;        /* IPv6 bans and scores per prefix of this length */
	struct cfg_list blocklists; /* char *: files of addresses and CIDRs */
	bool postfix;               /* also count Postfix SASL failures */
	bool dovecot;               /* also count Dovecot authentication failures */
	bool keep_table;            /* leave table inet rampart (and its bans) in place on exit */
	bool kill_connections;      /* a ban also destroys the source's open TCP connections */
	char *state;                /* SQLite file */
	char *user;       /* run unprivileged as this user (the writer keeps CAP_NET_ADMIN) */
	int64_t set_size; /* cap on each dynamic rate set */
	struct guard_share_cfg share;
};

extern const struct cfg_schema guard_config_schema;

/* The match flags (GUARD_MATCH_*) the config enables. */
unsigned guard_config_match_flags(const struct guard_cfg *c);
