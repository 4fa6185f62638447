/* rampart senderid check: Sender ID (src/mail/senderid*) on a message's PRA or a MAIL FROM. */
#include "cmd.h"
#include "cmd_spf.h"
#include "core/cfg.h"
#include "core/cleanup.h"
#include "core/file.h"
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
	OPT_MESSAGE = CMD_SPF_OPT_NEXT,
	OPT_SCOPE,
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
parse_option(int c, int argc, char **argv, void *ctx)
{
	struct senderid_cli *o = ctx;
	int r = cmd_dns_option(VERB, c, optarg, &o->dns);
	if (r != 0)
		return r == 1 ? 0 : r;
	switch (c) {
	case CMD_SPF_OPT_IP:
		return cmd_spf_parse_ip(VERB, optarg, &o->req.ip, &o->have_ip);
	case OPT_MESSAGE:
		o->message_path = optarg;
		return 0;
	case OPT_SCOPE:
		return parse_scope(optarg, o);
	case CMD_SPF_OPT_SENDER:
		o->req.mfrom = optarg;
		return 0;
	case CMD_SPF_OPT_HELO:
		o->req.helo = optarg;
		return 0;
	case CMD_SPF_OPT_RECEIVER:
		o->req.receiver = optarg;
		return 0;
	case CMD_SPF_OPT_JSON:
	case CMD_SPF_OPT_AUTHRES:
		o->print.json |= c == CMD_SPF_OPT_JSON;
		o->print.authres |= c == CMD_SPF_OPT_AUTHRES;
		return 0;
	case CMD_SPF_OPT_TIME_LIMIT:
		return cmd_spf_parse_time_limit(VERB, optarg, &o->req.budget_ms);
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
	return cmd_spf_check_names(VERB, o->req.mfrom, o->req.helo, !pra, &o->req.receiver,
	                           o->receiver, sizeof(o->receiver));
}

static int
parse_args(int argc, char **argv, struct senderid_cli *o)
{
	static const struct option longopts[] = {
	    CMD_SPF_LONGOPTS,
	    {"message", required_argument, NULL, OPT_MESSAGE},
	    {"scope", required_argument, NULL, OPT_SCOPE},
	    CMD_DNS_LONGOPTS,
	    {0},
	};
	int r;

	*o = (struct senderid_cli){.req = {.scope = SPF_SCOPE_PRA}};
	cmd_dns_opts_init(&o->dns);
	if ((r = cmd_spf_getopt(VERB, argc, argv, longopts, parse_option, o)) != 0)
		return r;
	return check_args(argc, argv, o);
}

/* The header is all the PRA needs: at most SENDERID_HEADER_MAX bytes are read. */
static int
read_message(const char *path, char **out, size_t *len)
{
	_cleanup_close_ int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = malloc(SENDERID_HEADER_MAX);
	if (fd < 0)
		return -errno;
	if (!buf)
		return -ENOMEM;
	ssize_t n = file_read_capped(fd, buf, SENDERID_HEADER_MAX);
	if (n < 0)
		return (int)n;
	*out = TAKE_PTR(buf);
	*len = (size_t)n;
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
