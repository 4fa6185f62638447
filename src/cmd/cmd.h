/* The `rampart` command: verb table and helpers shared by the cmd_<verb>.c files. */
#pragma once

#include <stdbool.h>

/* Exit codes (DESIGN.md) */
enum {
	CMD_EXIT_OK = 0,       /* success, found */
	CMD_EXIT_NEGATIVE = 1, /* not found, verification failed */
	CMD_EXIT_USAGE = 2,    /* usage or input error */
	CMD_EXIT_TEMP = 3,     /* temporary failure (DNS timeout) */
};

struct cmd_verb {
	const char *name;
	/* argv[0] is the verb; returns an exit code. NULL: not yet available in this build. */
	int (*run)(int argc, char **argv);
	const char *summary; /* one line for `rampart help` */
	const char *usage;   /* full text for `rampart help VERB`, starts with "usage:" */
};

const struct cmd_verb *cmd_verb_find(const char *name);
/* Every verb, NULL-terminated by name. */
extern const struct cmd_verb cmd_verbs[];

/* "rampart: VERB: message" on stderr. */
void cmd_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cmd_error plus a pointer to `rampart help VERB`; returns CMD_EXIT_USAGE. */
int cmd_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the verb's usage text to stdout; returns CMD_EXIT_OK. */
int cmd_print_usage(const char *verb);
/* Our message for what getopt_long (with opterr = 0) returned as '?' or ':' (missing value,
 * when the option string starts with ':'); returns CMD_EXIT_USAGE. */
int cmd_bad_option(const char *verb, int argc, char **argv, int ret);

const char *cmd_default_config(void);

int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_up(int argc, char **argv);
int cmd_port(int argc, char **argv);
