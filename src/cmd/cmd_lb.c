#include "cmd.h"
#include "core/buf.h"
#include "core/cfg.h"
#include "core/cleanup.h"
#include "core/file.h"
#include "lb/lb_ctl.h"
#include "parts.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define CMD_LB_CTL_TIMEOUT_MS 10000

/* The value of key in the mapping m, or NULL. */
static yaml_node_t *
cmd_lb_yaml_get(yaml_document_t *doc, const yaml_node_t *m, const char *key)
{
	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
		    !memcmp(k->data.scalar.value, key, k->data.scalar.length))
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

/* lb.ctl-socket alone (its default when absent), from a file with errors elsewhere. */
static int
cmd_lb_ctl_socket_only(const char *config, char **out)
{
	_cleanup_free_ char *text = NULL;
	size_t n = 0;
	yaml_parser_t p;
	yaml_document_t doc;
	/* a FIFO or a device is refused there: it could block for ever */
	int rr = file_read_path(config, CFG_FILE_MAX, &text, &n);
	if (rr < 0 || !yaml_parser_initialize(&p))
		return rr < 0 ? rr : -EINVAL;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, n);
	int loaded = yaml_parser_load(&p, &doc);
	yaml_parser_delete(&p);
	if (!loaded)
		return -EINVAL;
	const yaml_node_t *v = cmd_lb_yaml_get(
	    &doc, cmd_lb_yaml_get(&doc, yaml_document_get_root_node(&doc), "lb"), "ctl-socket");
	int r = v && v->type != YAML_SCALAR_NODE ? -EINVAL : 0;
	if (r >= 0)
		*out = v ? strndup((const char *)v->data.scalar.value, v->data.scalar.length)
		         : strdup(LB_CTL_SOCKET_DEFAULT);
	if (r >= 0 && !*out)
		r = -ENOMEM;
	yaml_document_delete(&doc);
	return r;
}

static bool
cmd_lb_reported(const struct cfg_errors *errs, const char *prefix)
{
	for (size_t i = 0; i < errs->n; i++)
		if (!strncmp(errs->v[i].msg, prefix, strlen(prefix)))
			return true;
	return false;
}

/* The socket named by the config's lb.ctl-socket. The balancer may still run an earlier
 * version of a file that now has errors: the key is then read alone, if it can be. */
static int
cmd_lb_ctl_socket(const char *config, char **out)
{
	struct parts_cfg cfg = {0};
	struct cfg_errors errs = {0};
	_cleanup_free_ char *path = NULL;
	int r = cfg_load_file(config, &parts_root_schema, &cfg, &errs);
	size_t nerr = errs.n + errs.dropped;
	if (r >= 0) {
		path = strdup(cfg.lb.ctl_socket ? cfg.lb.ctl_socket : "");
		cfg_free(&parts_root_schema, &cfg);
		r = path ? 0 : -ENOMEM;
	} else if (r == -EINVAL && cmd_lb_ctl_socket_only(config, &path) >= 0 &&
	           (!*path || *path == '/')) {
		cmd_error("lb",
		          "%s has %zu error%s (see rampart check-config); using lb.ctl-socket %s",
		          config, nerr, nerr == 1 ? "" : "s", *path ? path : "\"\"");
		r = 0;
	} else if (r == -EINVAL) {
		cfg_errors_print(&errs, STDERR_FILENO);
		/* the check of the lb section as a whole waits for its parts to be right */
		if (path && !cmd_lb_reported(&errs, "lb.ctl-socket:"))
			cmd_error("lb", "%s: lb.ctl-socket must be an absolute path, not '%s'",
			          config, path);
		cmd_error("lb", "%s: %zu error%s", config, nerr, nerr == 1 ? "" : "s");
	} else {
		cmd_error("lb", "cannot read %s: %s", config, strerror(-r));
	}
	cfg_errors_free(&errs);
	if (r < 0)
		return r;
	if (!*path) {
		cmd_error("lb", "%s: lb.ctl-socket is empty: no ctl socket", config);
		return -EINVAL;
	}
	*out = TAKE_PTR(path);
	return 0;
}

static int
cmd_lb_ctl_line(int argc, char **argv, struct buf *line)
{
	for (int i = 0; i < argc; i++)
		if (buf_printf(line, "%s%s", i ? " " : "", argv[i]) < 0 || strchr(argv[i], '\n'))
			return cmd_usage_error("lb", "the command is too long or has a line break");
	return 0;
}

/* "ok": the output; "error: usage: ...": not a command (2); "error: ...": refused (1). */
static int
cmd_lb_ctl_reply(const char *text)
{
	if (!strncmp(text, "ok\n", 3)) {
		fputs(text + 3, stdout);
		return CMD_EXIT_OK;
	}
	const char *msg = !strncmp(text, "error: ", 7) ? text + 7 : text;
	const char *nl = strchr(msg, '\n');
	cmd_error("lb", "%.*s", nl ? (int)(nl - msg) : (int)strlen(msg), msg);
	return !strncmp(msg, "usage: ", 7) ? CMD_EXIT_USAGE : CMD_EXIT_NEGATIVE;
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
		cmd_error("lb", "cannot talk to %s: %s (%s)", sock, strerror(-r),
		          r == -EACCES ? "run it as root or as the balancer's user"
		                       : "is rampart lb running?");
		return CMD_EXIT_TEMP;
	}
	return cmd_lb_ctl_reply(buf_cstr(&reply));
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
