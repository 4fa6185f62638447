/* `rampart mail setup|check|relaytest`: the mail set-up walk-through as commands. */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

int
cmd_mail(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} sub[] = {
	    {"setup", cmd_mail_setup},
	    {"check", cmd_mail_check},
	    {"relaytest", cmd_mail_relaytest},
	};
	if (argc < 2)
		return cmd_usage_error("mail", "expected setup, check or relaytest");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_print_usage("mail");
	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
		if (!strcmp(argv[1], sub[i].name))
			return sub[i].run(argc - 1, argv + 1);
	return cmd_usage_error("mail", "unknown command '%s' (setup, check, relaytest)", argv[1]);
}
