#include "parts.h"

#include "cmd.h"
#include "core/log.h"
#include "lb/lb.h"
#include "guard/guard.h"
#include "mail/milter.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

static const char *const parts_log_levels[] = {"error", "warn", "info", "debug", NULL};

static const struct cfg_field parts_log_fields[] = {
    {.key = "level",
     .type = CFG_ENUM,
     .offset = offsetof(struct parts_log_cfg, level),
     .def = "info",
     .choices = parts_log_levels,
     .help = "least severe level written: error, warn, info or debug"},
    {0},
};

static const struct cfg_schema parts_log_schema = {
    .name = "log",
    .size = sizeof(struct parts_log_cfg),
    .fields = parts_log_fields,
};

static const struct cfg_field parts_metrics_fields[] = {
    {.key = "listen",
     .type = CFG_ADDR,
     .offset = offsetof(struct parts_metrics_cfg, listen),
     .addr_mode = NET_PORT_REQUIRED | NET_PORT_ZERO_OK,
     .help = "address:port serving Prometheus text at /metrics; absent: not served"},
    {.key = "timeout",
     .type = CFG_DURATION,
     .offset = offsetof(struct parts_metrics_cfg, timeout_ms),
     .def = "5s",
     .min = 1,
     .max = 3600 * 1000,
     .help = "a scraper that has not sent its whole request by then is disconnected"},
    {0},
};

static const struct cfg_schema parts_metrics_schema = {
    .name = "metrics",
    .size = sizeof(struct parts_metrics_cfg),
    .fields = parts_metrics_fields,
};

static const struct cfg_field parts_dns_fields[] = {
    {.key = "servers",
     .type = CFG_LIST,
     .offset = offsetof(struct parts_dns_cfg, servers),
     .elem = CFG_STRING,
     .help = "resolvers to forward to (ADDR, ADDR:PORT, [v6]:PORT); empty: /etc/resolv.conf"},
    {.key = "zone-file",
     .type = CFG_STRING,
     .offset = offsetof(struct parts_dns_cfg, zone_file),
     .help = "RFC 1035 master file whose records take precedence"},
    {.key = "timeout",
     .type = CFG_DURATION,
     .offset = offsetof(struct parts_dns_cfg, timeout_ms),
     .def = "3s",
     .min = 100,
     .max = 60 * 1000,
     .help = "one query's time limit"},
    {.key = "dnssec",
     .type = CFG_BOOL,
     .offset = offsetof(struct parts_dns_cfg, dnssec),
     .def = "false",
     .help = "validate with the root trust anchor (dns-root-data)"},
    {.key = "trust-anchor",
     .type = CFG_STRING,
     .offset = offsetof(struct parts_dns_cfg, trust_anchor),
     .help = "with dnssec: a file of DS/DNSKEY records trusted besides the root's"},
    {0},
};

static void
parts_dns_check(void *obj, struct cfg_check *chk)
{
	const struct parts_dns_cfg *d = obj;
	struct net_addr a;
	if (d->servers.n > PARTS_DNS_SERVERS_MAX)
		cfg_check_error(chk, "servers", "at most %d resolvers", PARTS_DNS_SERVERS_MAX);
	for (size_t i = 0; i < d->servers.n; i++)
		if (net_addr_parse(((char **)d->servers.items)[i], NET_PORT_OPTIONAL, &a) < 0)
			cfg_check_error(chk, "servers", "\"%s\" is no ADDR, ADDR:PORT or [v6]:PORT",
			                ((char **)d->servers.items)[i]);
}

static const struct cfg_schema parts_dns_schema = {
    .name = "dns",
    .size = sizeof(struct parts_dns_cfg),
    .fields = parts_dns_fields,
    .check = parts_dns_check,
};

static const struct cfg_field parts_root_fields[] = {
    {.key = "log",
     .type = CFG_SECTION,
     .offset = offsetof(struct parts_cfg, log),
     .schema = &parts_log_schema},
    {.key = "metrics",
     .type = CFG_SECTION,
     .offset = offsetof(struct parts_cfg, metrics),
     .schema = &parts_metrics_schema},
    {.key = "dns",
     .type = CFG_SECTION,
     .offset = offsetof(struct parts_cfg, dns),
     .schema = &parts_dns_schema},
    {.key = "lb",
     .type = CFG_SECTION,
     .offset = offsetof(struct parts_cfg, lb),
     .schema = &lb_config_schema},
    {.key = "mail",
     .type = CFG_SECTION,
     .offset = offsetof(struct parts_cfg, mail),
     .schema = &milter_config_schema},
    {.key = "guard",
     .type = CFG_SECTION,
     .offset = offsetof(struct parts_cfg, guard),
     .schema = &guard_config_schema},
    {0},
};

const struct cfg_schema parts_root_schema = {
    .name = "rampart",
    .size = sizeof(struct parts_cfg),
    .fields = parts_root_fields,
};

static bool
parts_lb_enabled(const struct parts_cfg *cfg)
{
	return cfg->lb.enabled;
}

static int
parts_lb_start(struct ev_loop *loop, const struct parts_cfg *cfg, struct metrics *metrics,
               void **state)
{
	return lb_start(loop, &cfg->lb, metrics, (struct lb **)state);
}

static int
parts_lb_reload(void *state, const struct parts_cfg *cfg)
{
	return lb_reload(state, &cfg->lb);
}

static void
parts_lb_stop(void *state)
{
	lb_stop(state);
}

static bool
parts_milter_enabled(const struct parts_cfg *cfg)
{
	return cfg->mail.enabled;
}

void
parts_dns_options(const struct parts_cfg *cfg, const char *servers[PARTS_DNS_SERVERS_MAX + 1],
                  struct dns_options *out)
{
	size_t n = cfg->dns.servers.n; /* at most PARTS_DNS_SERVERS_MAX: parts_dns_check */
	for (size_t i = 0; i < n; i++)
		servers[i] = ((char **)cfg->dns.servers.items)[i];
	servers[n] = NULL;
	*out = (struct dns_options){.zone_file = cfg->dns.zone_file,
	                            .server = n ? servers : NULL,
	                            .dnssec = cfg->dns.dnssec,
	                            .timeout_ms = cfg->dns.timeout_ms,
	                            .trust_anchor = cfg->dns.trust_anchor};
}

static int
parts_milter_start(struct ev_loop *loop, const struct parts_cfg *cfg, struct metrics *metrics,
                   void **state)
{
	const char *servers[PARTS_DNS_SERVERS_MAX + 1];
	struct dns_options dns;
	char why[512] = "";
	(void)loop;
	parts_dns_options(cfg, servers, &dns);
	char postfix[512];
	int r = milter_start(&cfg->mail, &dns, metrics, (struct milter **)state, why, sizeof(why));
	if (r < 0)
		log_error("milter cannot start: %s error=\"%s\"", why, strerror(-r));
	else if (milter_postfix_spec(cfg->mail.milter.listen, postfix, sizeof(postfix)) <= 0)
		/* a listener too long for the buffer is shown cut: only the log line */
		log_info("milter listening on %s (Postfix main.cf: smtpd_milters = %s)%s",
		         cfg->mail.milter.listen, postfix,
		         cfg->mail.sign.n || cfg->mail.sign_from_opendkim.keytable
		             ? ""
		             : "; no signing keys configured: verifying only");
	return r;
}

static int
parts_milter_reload(void *state, const struct parts_cfg *cfg)
{
	const char *servers[PARTS_DNS_SERVERS_MAX + 1];
	struct dns_options dns;
	char why[512] = "";
	parts_dns_options(cfg, servers, &dns);
	int r = milter_reload(state, &cfg->mail, &dns, why, sizeof(why));
	if (r < 0)
		log_error("milter reload failed, keeping the running configuration: %s", why);
	return r;
}

static void
parts_milter_stop(void *state)
{
	milter_stop(state);
}

static bool
parts_guard_enabled(const struct parts_cfg *cfg)
{
	return cfg->guard.enabled;
}

static int
parts_guard_start(struct ev_loop *loop, const struct parts_cfg *cfg, struct metrics *metrics,
                  void **state)
{
	const char *servers[PARTS_DNS_SERVERS_MAX + 1];
	struct dns_options dns;
	char why[512] = "";
	parts_dns_options(cfg, servers, &dns);
	int r = guard_start(loop, &cfg->guard, &dns, metrics, (struct guard **)state, why,
	                    sizeof(why));
	if (r < 0)
		log_error("guard cannot start: %s", why);
	return r;
}

static int
parts_guard_reload(void *state, const struct parts_cfg *cfg)
{
	const char *servers[PARTS_DNS_SERVERS_MAX + 1];
	struct dns_options dns;
	char why[512] = "";
	parts_dns_options(cfg, servers, &dns);
	int r = guard_reload(state, &cfg->guard, &dns, why, sizeof(why));
	if (r < 0)
		log_error("guard reload failed, keeping the running configuration: %s", why);
	return r;
}

static void
parts_guard_stop(void *state)
{
	guard_stop(state);
}

const struct parts_part parts_table[] = {
    {"lb", parts_lb_enabled, parts_lb_start, parts_lb_reload, parts_lb_stop},
    {"milter", parts_milter_enabled, parts_milter_start, parts_milter_reload, parts_milter_stop},
    {"guard", parts_guard_enabled, parts_guard_start, parts_guard_reload, parts_guard_stop},
    {0},
};

const struct parts_part *
parts_find(const char *name)
{
	for (size_t i = 0; name && parts_table[i].name; i++)
		if (!strcmp(parts_table[i].name, name))
			return &parts_table[i];
	return NULL;
}

int
parts_load_config(const char *verb, const char *path, struct parts_cfg *out)
{
	struct cfg_errors errs = {0};
	if (!*path) {
		cmd_usage_error(verb, "the configuration file name is empty");
		return -EINVAL;
	}
	int r = cfg_load_file(path, &parts_root_schema, out, &errs);
	if (r == -EINVAL) {
		cfg_errors_print(&errs, STDERR_FILENO);
		size_t n = errs.n + errs.dropped;
		cmd_error(verb, "%s: %zu error%s", path, n, n == 1 ? "" : "s");
	} else if (r < 0) {
		cmd_error(verb, "cannot read %s: %s", path, strerror(-r));
	}
	cfg_errors_free(&errs);
	return r;
}

void
parts_apply_global(const struct parts_cfg *cfg)
{
	log_set_level((enum log_level)cfg->log.level);
}
