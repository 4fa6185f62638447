#include "cmd.h"

/* `rampart milter`: the mail section of the config alone, as `rampart up` would run it. */
int
cmd_milter(int argc, char **argv)
{
	return cmd_up_run("milter", "milter", argc, argv);
}
