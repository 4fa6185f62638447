#include "parts.h"

#include "cmd.h"
#include "core/log.h"
#include "lb/lb.h"

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

static const struct cfg_field parts_root_fields[] = {
    {.key = "log",
     .type = CFG_SECTION,
     .offset = offsetof(struct parts_cfg, log),
     .schema = &parts_log_schema},
    {.key = "metrics",
     .type = CFG_SECTION,
     .offset = offsetof(struct parts_cfg, metrics),
     .schema = &parts_metrics_schema},
    {.key = "lb",
     .type = CFG_SECTION,
     .offset = offsetof(struct parts_cfg, lb),
     .schema = &lb_config_schema},
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

/* mail and guard plug in here as they land. */
const struct parts_part parts_table[] = {
    {"lb", parts_lb_enabled, parts_lb_start, parts_lb_reload, parts_lb_stop},
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
