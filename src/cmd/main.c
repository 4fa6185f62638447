#include "cmd.h"
#include "config.h"
#include "core/log.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Keep in the order `rampart help` shows them. */
const struct cmd_verb cmd_verbs[] = {
    {"help", cmd_help, "list verbs, or show how to use one", "usage: rampart help [VERB]\n"},
    {"version", cmd_version, "print the version", "usage: rampart version\n"},
    {"check-config", cmd_check_config, "validate a configuration file without starting anything",
     "usage: rampart check-config [-c FILE] [FILE]\n"
     "\n"
     "Reads FILE (default " RAMPART_CONFIG_PATH ") and reports every error as\n"
     "FILE:LINE:COLUMN: message. Exit 0 when valid, 2 when not.\n"},
    {"up", cmd_up, "run every part enabled in the config in one foreground process",
     "usage: rampart up [-c FILE]\n"
     "\n"
     "Starts each part enabled in FILE (default " RAMPART_CONFIG_PATH ") and runs in the\n"
     "foreground until SIGTERM or SIGINT (exit 0). SIGHUP re-reads the file; a file with\n"
     "errors is reported and the running configuration is kept.\n"},
    {"port", cmd_port, "which process listens on a port (like fuser -vn tcp PORT)",
     "usage: rampart port [OPTIONS] [tcp|udp] [PORT | ADDRESS:PORT]\n"
     "\n"
     "Lists the listening sockets (TCP LISTEN, bound UDP) on PORT, or on every port, with\n"
     "the processes that hold them. Default: both tcp and udp.\n"
     "\n"
     "  -a, --all          every socket on the local port, connected ones too\n"
     "  -v, --verbose      also the command line, executable and systemd unit or container\n"
     "      --pids         print only the PIDs, one per line\n"
     "      --json         print a JSON array of objects\n"
     "  -k, --kill[=SIG]   send SIG (default TERM) to the processes found\n"
     "      --all-netns    also look in every other network namespace\n"
     "\n"
     "Exit 0 when a socket was found, 1 when none, 2 for a usage error.\n"},
    {"dkim", NULL, "DKIM: generate keys, sign and verify messages", NULL},
    {"dk", NULL, "DomainKeys: sign and verify messages", NULL},
    {"spf", NULL, "SPF: check a sender against a domain's policy", NULL},
    {"senderid", NULL, "Sender ID: check a message's purported responsible address", NULL},
    {"milter", NULL, "Postfix milter: SPF, DKIM, DMARC, Authentication-Results", NULL},
    {"lb", NULL, "TCP and HTTP load balancer with health checks", NULL},
    {"guard", NULL, "SSH brute-force blocking with nftables", NULL},
    {NULL, NULL, NULL, NULL},
};

const struct cmd_verb *
cmd_verb_find(const char *name)
{
	for (const struct cmd_verb *v = cmd_verbs; v->name; v++)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

const char *
cmd_default_config(void)
{
	return RAMPART_CONFIG_PATH;
}

static void __attribute__((format(printf, 2, 0)))
cmd_verror(const char *verb, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "rampart: %s: %s\n", verb, msg);
}

void
cmd_error(const char *verb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cmd_verror(verb, fmt, ap);
	va_end(ap);
}

int
cmd_usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cmd_verror(verb, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'rampart help %s'.\n", verb);
	return CMD_EXIT_USAGE;
}

int
cmd_print_usage(const char *verb)
{
	const struct cmd_verb *v = cmd_verb_find(verb);
	if (v && v->usage)
		fputs(v->usage, stdout);
	else if (v)
		printf("%s: %s (not yet available in this build)\n", v->name, v->summary);
	return CMD_EXIT_OK;
}

int
cmd_bad_option(const char *verb, int argc, char **argv, int ret)
{
	/* optind has moved past the offending word */
	const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
	bool is_long = strncmp(word, "--", 2) == 0;
	int len = is_long ? (int)strcspn(word, "=") : 2;

	if (ret == ':')
		return cmd_usage_error(verb, "option '%.*s' needs a value", len, word);
	if (!is_long && optopt)
		return cmd_usage_error(verb, "unknown option '-%c'", optopt);
	return cmd_usage_error(verb, "unknown option '%.*s'", len, word);
}

int
cmd_version(int argc, char **argv)
{
	if (argc > 1)
		return cmd_usage_error("version", "unexpected argument '%s'", argv[1]);
	printf("rampart %s\n", RAMPART_VERSION);
	return CMD_EXIT_OK;
}

int
main(int argc, char **argv)
{
	log_detect_journal();
	if (argc < 2) {
		cmd_help(1, argv);
		return CMD_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
		return cmd_help(1, argv);
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
		return cmd_version(1, argv);

	const struct cmd_verb *v = cmd_verb_find(name);
	if (!v) {
		fprintf(stderr, "rampart: unknown verb '%s'\nTry 'rampart help'.\n", name);
		return CMD_EXIT_USAGE;
	}
	if (!v->run) {
		cmd_error(name, "not yet available in this build");
		return CMD_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return cmd_print_usage(name);
	}
	return v->run(argc - 1, argv + 1);
}
