#include "cmd.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/proc.h"
#include "lb/lb.h"
#include "parts.h"

#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct up_state {
	const char *verb;
	const char *only; /* run this part alone (`rampart lb`), or NULL for all */
	const char *path;
	struct parts_cfg cfg;
	struct metrics *metrics;
	struct metrics_value start_time, reloads, reload_failures;
	void *part_state[16];
	bool running[16];
};

static void
up_stop_parts(struct up_state *st)
{
	for (size_t i = 0; parts_table[i].name; i++) {
		if (!st->running[i])
			continue;
		parts_table[i].stop(st->part_state[i]);
		st->running[i] = false;
	}
}

/* Starts every enabled part; on a failure stops those already started. */
static int
up_start_parts(struct up_state *st, struct ev_loop *loop)
{
	_cleanup_buf_ struct buf names = BUF_INIT(1024);
	for (size_t i = 0; parts_table[i].name && i < ARRAY_SIZE(st->running); i++) {
		const struct parts_part *p = &parts_table[i];
		if ((st->only && strcmp(st->only, p->name)) || !p->enabled(&st->cfg))
			continue;
		int r = p->start(loop, &st->cfg, st->metrics, &st->part_state[i]);
		if (r < 0) {
			log_error("cannot start part=%s error=\"%s\"", p->name, strerror(-r));
			up_stop_parts(st);
			return r;
		}
		st->running[i] = true;
		buf_printf(&names, "%s%s", names.len ? "," : "", p->name);
	}
	log_info("started parts=%s config=%s", names.len ? buf_cstr(&names) : "none", st->path);
	if (!names.len)
		log_info("no part is enabled in %s; waiting for SIGTERM", st->path);
	return 0;
}

/* Each part applies all of next or nothing and logs why not; the parts before a failed one
 * are given the running configuration back, so that the process keeps it whole. */
static int
up_reload_parts(struct up_state *st, const struct parts_cfg *next)
{
	for (size_t i = 0; parts_table[i].name && i < ARRAY_SIZE(st->running); i++) {
		if (!st->running[i] || !parts_table[i].reload)
			continue;
		int r = parts_table[i].reload(st->part_state[i], next);
		if (r >= 0)
			continue;
		while (i-- > 0)
			if (st->running[i] && parts_table[i].reload &&
			    parts_table[i].reload(st->part_state[i], &st->cfg) < 0)
				log_error("cannot restore the running configuration part=%s",
				          parts_table[i].name);
		return r;
	}
	return 0;
}

/* SIGHUP: a file with errors, or one a part cannot apply, is reported and the running
 * configuration kept, the global settings (log level) included. */
static void
up_reload(struct up_state *st)
{
	struct parts_cfg next = {0};
	proc_notify_reloading();
	log_info("reloading config=%s", st->path);
	metrics_add(&st->reloads, 1);
	if (parts_load_config(st->verb, st->path, &next) < 0) {
		metrics_add(&st->reload_failures, 1);
		log_error("reload failed, keeping the running configuration config=%s", st->path);
		proc_notify_ready();
		return;
	}
	if (up_reload_parts(st, &next) < 0) {
		metrics_add(&st->reload_failures, 1);
		cfg_free(&parts_root_schema, &next);
		proc_notify_ready();
		return;
	}
	if (!net_addr_equal(&next.metrics.listen, &st->cfg.metrics.listen))
		log_warn("metrics.listen changed; it takes effect at the next start");
	next.metrics.listen = st->cfg.metrics.listen;
	cfg_free(&parts_root_schema, &st->cfg);
	st->cfg = next;
	parts_apply_global(&st->cfg);
	log_info("reloaded config=%s", st->path);
	proc_notify_ready();
}

static void
up_on_signal(struct ev_loop *loop, int signo, void *data)
{
	if (signo == SIGHUP) {
		up_reload(data);
		return;
	}
	log_info("stopping signal=%s", signo == SIGINT ? "SIGINT" : "SIGTERM");
	ev_break(loop, 0);
}

static void
ev_loop_freep(struct ev_loop **loop)
{
	ev_loop_free(*loop);
}

static void
metrics_freep(struct metrics **m)
{
	metrics_free(*m);
}

/* The process's own series; parts add theirs when they start. */
static int
up_serve_metrics(struct up_state *st, struct ev_loop *loop)
{
	st->start_time = (struct metrics_value){"rampart_start_time_seconds",
	                                        "Start time of the process since the Unix epoch.",
	                                        METRICS_GAUGE, time(NULL)};
	st->reloads =
	    (struct metrics_value){"rampart_config_reloads_total",
	                           "Configuration reloads asked for (SIGHUP).", METRICS_COUNTER, 0};
	st->reload_failures =
	    (struct metrics_value){"rampart_config_reload_failures_total",
	                           "Reloads refused, the running configuration kept: a file with "
	                           "errors, or one a part could not apply.",
	                           METRICS_COUNTER, 0};
	int r = metrics_new(&st->metrics);
	if (r >= 0)
		r = metrics_register(st->metrics, &st->start_time);
	if (r >= 0)
		r = metrics_register(st->metrics, &st->reloads);
	if (r >= 0)
		r = metrics_register(st->metrics, &st->reload_failures);
	if (r < 0 || !st->cfg.metrics.listen.family)
		return r;
	r = metrics_listen(st->metrics, loop, &st->cfg.metrics.listen, st->cfg.metrics.timeout_ms);
	struct net_addr local;
	char addr[NET_ADDR_STRLEN];
	if (r >= 0 && metrics_local(st->metrics, &local) >= 0 &&
	    net_addr_format(&local, true, addr, sizeof(addr)) >= 0)
		log_info("metrics listening addr=%s", addr);
	return r;
}

/* The ctl socket was made by root, mode 0600: once we run as user, that user could not reach
 * it. A user the lookup does not find fails the drop, which says so. */
static void
up_give_ctl(const struct up_state *st, const char *user)
{
	struct passwd pw, *found = NULL;
	char buf[16384];
	const struct parts_part *p = parts_find("lb");
	size_t i = p ? (size_t)(p - parts_table) : 0;
	if (!p || !st->running[i] || getpwnam_r(user, &pw, buf, sizeof(buf), &found) != 0 || !found)
		return;
	int r = lb_give_ctl(st->part_state[i], pw.pw_uid, pw.pw_gid);
	if (r < 0)
		log_warn("cannot give the ctl socket to user=%s error=\"%s\"", user, strerror(-r));
}

/* `rampart lb` or `rampart guard` alone: root was needed to bind (lb) or to start the
 * nftables writer (guard); the rest runs as the part's user (DESIGN: daemons drop privileges).
 * `rampart up` keeps them, other parts may need root. */
static void
up_drop_privileges(const struct up_state *st)
{
	const char *user = !st->only                  ? NULL
	                   : !strcmp(st->only, "lb")    ? st->cfg.lb.user
	                   : !strcmp(st->only, "guard") ? st->cfg.guard.user
	                                                : NULL;
	if (!user || !*user || geteuid() != 0)
		return;
	if (!strcmp(st->only, "lb"))
		up_give_ctl(st, user);
	proc_drop_privileges_or_die(user);
	log_info("running as user=%s", user);
}

static int
up_run(struct up_state *st)
{
	_cleanup_(ev_loop_freep) struct ev_loop *loop = NULL;
	/* freed before the loop: it stops its watchers on it */
	_cleanup_(metrics_freep) struct metrics *metrics = NULL;
	int r = ev_loop_new(&loop);
	const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(sigs); i++)
		r = ev_signal_add(loop, sigs[i], up_on_signal, st);
	if (r < 0) {
		cmd_error(st->verb, "cannot set up the event loop: %s", strerror(-r));
		return CMD_EXIT_USAGE;
	}
	r = up_serve_metrics(st, loop);
	metrics = st->metrics;
	if (r < 0) {
		cmd_error(st->verb, "cannot serve metrics: %s", strerror(-r));
		return CMD_EXIT_NEGATIVE;
	}
	if (up_start_parts(st, loop) < 0)
		return CMD_EXIT_NEGATIVE;
	up_drop_privileges(st);
	proc_notify_ready();
	r = ev_run(loop);
	proc_notify_stopping();
	up_stop_parts(st);
	if (r < 0) {
		log_error("event loop failed error=\"%s\"", strerror(-r));
		return CMD_EXIT_NEGATIVE;
	}
	log_info("stopped");
	return CMD_EXIT_OK;
}

/* `rampart up`, or with only set, one part alone (`rampart lb`). */
int
cmd_up_run(const char *verb, const char *only, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {0},
	};
	struct up_state st = {.verb = verb, .only = only, .path = cmd_default_config()};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:", opts, NULL)) != -1) {
		if (c != 'c')
			return cmd_bad_option(verb, argc, argv, c);
		st.path = optarg;
	}
	if (optind < argc)
		return cmd_usage_error(verb, "unexpected argument '%s'", argv[optind]);
	if (parts_load_config(verb, st.path, &st.cfg) < 0)
		return CMD_EXIT_USAGE;
	parts_apply_global(&st.cfg);
	int r = CMD_EXIT_USAGE;
	const struct parts_part *p = parts_find(only);
	if (only && (!p || !p->enabled(&st.cfg)))
		cmd_error(verb, "%s: no %s section to run (see rampart.yaml(5))", st.path, only);
	else
		r = up_run(&st);
	cfg_free(&parts_root_schema, &st.cfg);
	return r;
}

int
cmd_up(int argc, char **argv)
{
	return cmd_up_run("up", NULL, argc, argv);
}
