#include "cmd.h"

#include <stdio.h>
#include <string.h>

void
cmd_help_list(FILE *out)
{
	fprintf(out, "usage: rampart VERB [OPTIONS]\n"
	             "       rampart --help | -h | --version | -V\n\nVerbs:\n");
	for (const struct cmd_verb *v = cmd_verbs; v->name; v++)
		fprintf(out, "  %-13s %s%s\n", v->name, v->summary,
		        v->run ? "" : " (not yet available)");
	fprintf(out,
	        "\n'rampart help VERB' or 'rampart VERB --help' shows a verb's options, which\n"
	        "go after the verb (rampart up -c FILE). Manual: man 8 rampart.\n");
}

/* Not cmd_usage_error: its "Try 'rampart help help'" would not name the verbs. */
static int
cmd_help_unknown(const char *name)
{
	char names[512] = "";
	size_t len = 0;
	for (const struct cmd_verb *v = cmd_verbs; v->name && len < sizeof(names); v++) {
		int k =
		    snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "", v->name);
		if (k < 0)
			break;
		len += (size_t)k;
	}
	cmd_error("help", "unknown verb '%s'; the verbs are: %s", name, names);
	fprintf(stderr, "Try 'rampart help' for what each does.\n");
	return CMD_EXIT_USAGE;
}

int
cmd_help(int argc, char **argv)
{
	if (argc > 2)
		return cmd_usage_error("help", "expected at most one verb");
	if (argc == 2) {
		if (!cmd_verb_find(argv[1]))
			return cmd_help_unknown(argv[1]);
		return cmd_print_usage(argv[1]);
	}
	cmd_help_list(stdout);
	return CMD_EXIT_OK;
}
