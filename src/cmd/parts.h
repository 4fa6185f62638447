/*
 * The parts `rampart up` can run, and the root config schema assembled from their sections.
 * Core knows no part; this table is where a part's library is plugged in.
 */
#pragma once

#include "core/cfg.h"
#include "core/dns.h"
#include "core/ev.h"
#include "core/metrics.h"
#include "guard/guard_config.h"
#include "lb/lb_config.h"
#include "mail/milter_config.h"

#include <stdbool.h>

struct parts_log_cfg {
	int level; /* enum log_level */
};

struct parts_metrics_cfg {
	struct net_addr listen; /* family 0: not served */
	uint64_t timeout_ms;
};

/* Forwarders rampart passes to libunbound at most; more is an error, never a silent cut. */
#define PARTS_DNS_SERVERS_MAX 16

/* `dns:`, shared by every part: the --dns-server, --dns-zone and --dns-timeout flags. */
struct parts_dns_cfg {
	struct cfg_list servers; /* char *: ADDR, ADDR:PORT, [v6]:PORT; empty: resolv.conf */
	char *zone_file;
	uint64_t timeout_ms;
	bool dnssec;
	char *trust_anchor;
};

/* One member per section of rampart.yaml. */
struct parts_cfg {
	struct parts_log_cfg log;
	struct parts_metrics_cfg metrics;
	struct parts_dns_cfg dns;
	struct lb_cfg lb;
	struct milter_cfg mail;
	struct guard_cfg guard;
};

struct parts_part {
	const char *name;
	bool (*enabled)(const struct parts_cfg *cfg);
	/* Starts on loop, adding its series to metrics; *state is handed back to reload and stop.
	 */
	int (*start)(struct ev_loop *loop, const struct parts_cfg *cfg, struct metrics *metrics,
	             void **state);
	/* Applies a new, already validated config without dropping connections. */
	int (*reload)(void *state, const struct parts_cfg *cfg);
	void (*stop)(void *state);
};

extern const struct cfg_schema parts_root_schema;
/* NULL-terminated by name. */
extern const struct parts_part parts_table[];

/* The part of that name, or NULL (also for a NULL name). */
const struct parts_part *parts_find(const char *name);
/* Loads and validates path; on failure prints every error and returns -errno/-EINVAL. */
int parts_load_config(const char *verb, const char *path, struct parts_cfg *out);
/* The `dns:` section as core/dns takes it; servers points into cfg. */
void parts_dns_options(const struct parts_cfg *cfg, const char *servers[PARTS_DNS_SERVERS_MAX + 1],
                       struct dns_options *out);
/* Applies the settings that belong to no part (log level). */
void parts_apply_global(const struct parts_cfg *cfg);
