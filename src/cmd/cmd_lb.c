#include "cmd.h"
#include "core/buf.h"
#include "lb/lb_ctl.h"
#include "parts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CMD_LB_CTL_TIMEOUT_MS 10000

/* The socket named by the config's lb.ctl-socket. */
static int
cmd_lb_ctl_socket(const char *config, char **out)
{
	struct parts_cfg cfg = {0};
	if (parts_load_config("lb", config, &cfg) < 0)
		return -EINVAL;
	*out = cfg.lb.ctl_socket && *cfg.lb.ctl_socket ? strdup(cfg.lb.ctl_socket) : NULL;
	cfg_free(&parts_root_schema, &cfg);
	if (!*out)
		cmd_error("lb", "%s: lb.ctl-socket is empty: no ctl socket", config);
	return *out ? 0 : -EINVAL;
}

static int
cmd_lb_ctl_line(int argc, char **argv, struct buf *line)
{
	for (int i = 0; i < argc; i++)
		if (buf_printf(line, "%s%s", i ? " " : "", argv[i]) < 0 || strchr(argv[i], '\n'))
			return cmd_usage_error("lb", "the command is too long or has a line break");
	return 0;
}

static int
cmd_lb_ctl(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"config", required_argument, NULL, 'c'},
	    {0},
	};
	const char *sock = NULL, *config = cmd_default_config();
	_cleanup_free_ char *from_config = NULL;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:s:c:", opts, NULL)) != -1) {
		if (c == 's')
			sock = optarg;
		else if (c == 'c')
			config = optarg;
		else
			return cmd_bad_option("lb", argc, argv, c);
	}
	if (optind >= argc)
		return cmd_usage_error("lb", "ctl needs a command, e.g. show servers");
	_cleanup_buf_ struct buf line = BUF_INIT(LB_CTL_LINE_MAX);
	_cleanup_buf_ struct buf reply = BUF_INIT(LB_CTL_REPLY_MAX);
	if (cmd_lb_ctl_line(argc - optind, argv + optind, &line))
		return CMD_EXIT_USAGE;
	if (!sock && cmd_lb_ctl_socket(config, &from_config) < 0)
		return CMD_EXIT_USAGE;
	if (!sock)
		sock = from_config;
	int r = lb_ctl_request(sock, buf_cstr(&line), CMD_LB_CTL_TIMEOUT_MS, &reply);
	if (r < 0) {
		cmd_error("lb", "cannot talk to %s: %s (is rampart lb running?)", sock,
		          strerror(-r));
		return CMD_EXIT_TEMP;
	}
	const char *text = buf_cstr(&reply);
	if (!strncmp(text, "ok\n", 3)) {
		fputs(text + 3, stdout);
		return CMD_EXIT_OK;
	}
	const char *msg = !strncmp(text, "error: ", 7) ? text + 7 : text;
	const char *nl = strchr(msg, '\n');
	cmd_error("lb", "%.*s", nl ? (int)(nl - msg) : (int)strlen(msg), msg);
	return CMD_EXIT_NEGATIVE;
}

int
cmd_lb(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "ctl")) {
		optind = 1;
		return cmd_lb_ctl(argc - 1, argv + 1);
	}
	return cmd_up_run("lb", "lb", argc, argv);
}
