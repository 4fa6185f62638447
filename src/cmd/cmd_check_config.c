#include "cmd.h"
#include "parts.h"

#include <getopt.h>
#include <stdio.h>

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

	struct parts_cfg cfg = {0};
	if (parts_load_config("check-config", path, &cfg) < 0)
		return CMD_EXIT_USAGE;
	cfg_free(&parts_root_schema, &cfg);
	printf("%s: ok\n", path);
	return CMD_EXIT_OK;
}
