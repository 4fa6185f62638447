#include "cmd.h"
#include "core/cleanup.h"
#include "core/file.h"
#include "parts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHECK_CONFIG_STDIN "<stdin>"

/* "-": the configuration from stdin, as an editor or a pipeline hands it over. */
static int
check_config_stdin(struct parts_cfg *cfg)
{
	_cleanup_free_ char *text = NULL;
	struct cfg_errors errs = {0};
	size_t len = 0;
	int r = file_read_fd(STDIN_FILENO, CFG_FILE_MAX, &text, &len);

	if (r == -EFBIG) {
		cmd_error("check-config", "%s: more than %d bytes", CHECK_CONFIG_STDIN,
		          CFG_FILE_MAX);
		return r;
	}
	if (r < 0) {
		cmd_error("check-config", "cannot read %s: %s", CHECK_CONFIG_STDIN, strerror(-r));
		return r;
	}
	r = cfg_load_string(CHECK_CONFIG_STDIN, text, len, &parts_root_schema, cfg, &errs);
	if (r == -EINVAL) {
		cfg_errors_print(&errs, STDERR_FILENO);
		size_t n = errs.n + errs.dropped;
		cmd_error("check-config", "%s: %zu error%s", CHECK_CONFIG_STDIN, n,
		          n == 1 ? "" : "s");
	} else if (r < 0) {
		cmd_error("check-config", "%s: %s", CHECK_CONFIG_STDIN, strerror(-r));
	}
	cfg_errors_free(&errs);
	return r;
}

int
cmd_check_config(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {0},
	};
	const char *path = NULL;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:", opts, NULL)) != -1) {
		if (c != 'c')
			return cmd_bad_option("check-config", argc, argv, c);
		path = optarg;
	}
	if (optind < argc) {
		if (path || optind + 1 < argc)
			return cmd_usage_error("check-config", "give one configuration file");
		path = argv[optind];
	}
	if (!path)
		path = cmd_default_config();

	bool from_stdin = strcmp(path, "-") == 0;
	struct parts_cfg cfg = {0};
	int r =
	    from_stdin ? check_config_stdin(&cfg) : parts_load_config("check-config", path, &cfg);
	if (r < 0)
		return CMD_EXIT_USAGE;
	cfg_free(&parts_root_schema, &cfg);
	printf("%s: ok\n", from_stdin ? CHECK_CONFIG_STDIN : path);
	return CMD_EXIT_OK;
}
