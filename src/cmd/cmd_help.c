#include "cmd.h"

#include <stdio.h>

int
cmd_help(int argc, char **argv)
{
	if (argc > 2)
		return cmd_usage_error("help", "expected at most one verb");
	if (argc == 2) {
		if (!cmd_verb_find(argv[1]))
			return cmd_usage_error("help", "unknown verb '%s'", argv[1]);
		return cmd_print_usage(argv[1]);
	}
	printf("usage: rampart VERB [OPTIONS]\n\nVerbs:\n");
	for (const struct cmd_verb *v = cmd_verbs; v->name; v++)
		printf("  %-13s %s%s\n", v->name, v->summary, v->run ? "" : " (not yet available)");
	printf("\n'rampart help VERB' shows a verb's options. Manual: man 8 rampart.\n");
	return CMD_EXIT_OK;
}
