/* rampart senderid check: Sender ID (src/mail/senderid*) on a message's PRA or a MAIL FROM. */
#include "cmd.h"
#include "cmd_spf.h"
#include "core/cfg.h"
#include "core/cleanup.h"
#include "mail/senderid.h"
#include "mail/spf_header.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERB "senderid"

enum {
	OPT_IP = 0x100,
	OPT_MESSAGE,
	OPT_SCOPE,
	OPT_SENDER,
	OPT_HELO,
	OPT_RECEIVER,
	OPT_JSON,
	OPT_AUTHRES,
	OPT_TIME_LIMIT,
};

struct senderid_cli {
	struct cmd_dns_opts dns;
	struct senderid_request req;
	struct cmd_spf_print print;
	const char *message_path;
	bool have_ip;
	char receiver[256];
};

static int
parse_scope(const char *arg, struct senderid_cli *o)
{
	if (strcmp(arg, "pra") == 0)
		o->req.scope = SPF_SCOPE_PRA;
	else if (strcmp(arg, "mfrom") == 0)
		o->req.scope = SPF_SCOPE_MFROM;
	else
		return cmd_usage_error(VERB, "--scope '%s': expected pra or mfrom", arg);
	return 0;
}

static int
parse_option(int c, int argc, char **argv, struct senderid_cli *o)
{
	uint64_t ms;
	int r = cmd_dns_option(VERB, c, optarg, &o->dns);
	if (r != 0)
		return r == 1 ? 0 : r;
	switch (c) {
	case OPT_IP:
		if (net_addr_parse(optarg, NET_PORT_NONE, &o->req.ip) < 0)
			return cmd_usage_error(VERB, "--ip '%s': not an IPv4 or IPv6 address",
			                       optarg);
		o->have_ip = true;
		return 0;
	case OPT_MESSAGE:
		o->message_path = optarg;
		return 0;
	case OPT_SCOPE:
		return parse_scope(optarg, o);
	case OPT_SENDER:
		o->req.mfrom = optarg;
		return 0;
	case OPT_HELO:
		o->req.helo = optarg;
		return 0;
	case OPT_RECEIVER:
		o->req.receiver = optarg;
		return 0;
	case OPT_JSON:
	case OPT_AUTHRES:
		o->print.json |= c == OPT_JSON;
		o->print.authres |= c == OPT_AUTHRES;
		return 0;
	case OPT_TIME_LIMIT:
		if (cfg_parse_duration(optarg, &ms) < 0 || ms == 0 || ms > 3600 * 1000)
			return cmd_usage_error(VERB, "--time-limit '%s': not a duration (e.g. 20s)",
			                       optarg);
		o->req.budget_ms = ms;
		return 0;
	default:
		return cmd_bad_option(VERB, argc, argv, c);
	}
}

static int
check_args(int argc, char **argv, struct senderid_cli *o)
{
	bool pra = o->req.scope == SPF_SCOPE_PRA;
	if (optind < argc)
		return cmd_usage_error(VERB, "unexpected argument '%s'", argv[optind]);
	if (!o->have_ip)
		return cmd_usage_error(VERB, "check needs --ip");
	if (pra && !o->message_path)
		return cmd_usage_error(VERB, "scope pra needs --message FILE (or - for stdin)");
	if (!pra && !o->req.mfrom)
		return cmd_usage_error(VERB, "scope mfrom needs --sender");
	if (!pra && !*o->req.mfrom && (!o->req.helo || !*o->req.helo))
		return cmd_usage_error(VERB, "an empty --sender checks the HELO name: give --helo");
	if ((o->req.mfrom && strlen(o->req.mfrom) >= SPF_SENDER_MAX) ||
	    (o->req.helo && strlen(o->req.helo) >= SPF_SENDER_MAX))
		return cmd_usage_error(VERB, "--sender or --helo longer than %d bytes",
		                       SPF_SENDER_MAX - 1);
	if (!o->req.receiver) {
		if (gethostname(o->receiver, sizeof(o->receiver) - 1) < 0)
			snprintf(o->receiver, sizeof(o->receiver), "unknown");
		o->req.receiver = o->receiver;
	}
	return 0;
}

static int
parse_args(int argc, char **argv, struct senderid_cli *o)
{
	static const struct option longopts[] = {
	    {"ip", required_argument, NULL, OPT_IP},
	    {"message", required_argument, NULL, OPT_MESSAGE},
	    {"scope", required_argument, NULL, OPT_SCOPE},
	    {"sender", required_argument, NULL, OPT_SENDER},
	    {"helo", required_argument, NULL, OPT_HELO},
	    {"receiver", required_argument, NULL, OPT_RECEIVER},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"authres", no_argument, NULL, OPT_AUTHRES},
	    {"time-limit", required_argument, NULL, OPT_TIME_LIMIT},
	    CMD_DNS_LONGOPTS,
	    {0},
	};
	int c, r;

	*o = (struct senderid_cli){.req = {.scope = SPF_SCOPE_PRA}};
	cmd_dns_opts_init(&o->dns);
	if (argc < 2)
		return cmd_usage_error(VERB, "missing subcommand 'check'");
	if (strcmp(argv[1], "check") != 0)
		return cmd_usage_error(VERB, "unknown subcommand '%s'", argv[1]);
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "+:", longopts, NULL)) != -1)
		if ((r = parse_option(c, argc, argv, o)) != 0)
			return r;
	return check_args(argc, argv, o);
}

/* The header is all the PRA needs: at most SENDERID_HEADER_MAX bytes are read. */
static int
read_message(const char *path, char **out, size_t *len)
{
	_cleanup_close_ int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = malloc(SENDERID_HEADER_MAX);
	size_t n = 0;
	if (fd < 0)
		return -errno;
	if (!buf)
		return -ENOMEM;
	while (n < SENDERID_HEADER_MAX) {
		ssize_t r = read(fd, buf + n, SENDERID_HEADER_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = TAKE_PTR(buf);
	*len = n;
	return 0;
}

static int
report(struct senderid_cli *o, const struct senderid_outcome *out)
{
	char authres[SPF_HEADER_MAX];
	if (senderid_authres(out, authres, sizeof(authres)) == 0)
		o->print.authres_text = authres;
	if (out->have_pra) {
		o->print.pra_header = out->pra.header;
		o->print.pra_addr = out->pra.address;
	}
	if (cmd_spf_report(VERB, &out->req, &out->spf, &o->print) < 0)
		return CMD_EXIT_TEMP;
	return cmd_spf_exit(out->spf.result);
}

int
cmd_senderid(int argc, char **argv)
{
	_cleanup_free_ char *msg = NULL;
	_cleanup_free_ struct senderid_outcome *out = malloc(sizeof(*out));
	struct dns_resolver *dns = NULL;
	struct senderid_cli o;
	int r = parse_args(argc, argv, &o);

	if (r != 0)
		return r;
	if (!out)
		return CMD_EXIT_TEMP;
	if (o.message_path && (r = read_message(o.message_path, &msg, &o.req.message_len)) < 0) {
		cmd_error(VERB, "%s: %s", o.message_path, strerror(-r));
		return CMD_EXIT_USAGE;
	}
	o.req.message = msg;
	if ((r = cmd_dns_open(VERB, &o.dns, &dns)) != 0)
		return r;
	r = senderid_check(dns, &o.req, out);
	dns_resolver_free(dns);
	if (r < 0) {
		cmd_error(VERB, "cannot check: %s", strerror(-r));
		return CMD_EXIT_USAGE;
	}
	return report(&o, out);
}
