#include "cmd.h"
#include "core/cfg.h"
#include "core/cleanup.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

void
cmd_dns_opts_init(struct cmd_dns_opts *o)
{
	*o = (struct cmd_dns_opts){.dns = {.dnssec = true, .timeout_ms = 3000}};
}

static int
cmd_dns_server(const char *verb, const char *arg, struct cmd_dns_opts *o)
{
	struct net_addr a;
	if (net_addr_parse(arg, NET_PORT_OPTIONAL, &a) < 0)
		return cmd_usage_error(verb, "--dns-server '%s': not an address or ADDR:PORT", arg);
	if (o->n_servers >= CMD_DNS_SERVERS_MAX)
		return cmd_usage_error(verb, "at most %d --dns-server options",
		                       CMD_DNS_SERVERS_MAX);
	o->servers[o->n_servers++] = arg;
	o->dns.server = o->servers;
	return 1;
}

int
cmd_dns_option(const char *verb, int c, const char *arg, struct cmd_dns_opts *o)
{
	uint64_t ms;
	switch (c) {
	case CMD_OPT_DNS_ZONE:
		o->dns.zone_file = arg;
		return 1;
	case CMD_OPT_DNS_SERVER:
		return cmd_dns_server(verb, arg, o);
	case CMD_OPT_DNS_TIMEOUT:
		if (cfg_parse_duration(arg, &ms) < 0 || ms == 0 || ms > 3600 * 1000)
			return cmd_usage_error(verb, "--dns-timeout '%s': not a duration (e.g. 2s)",
			                       arg);
		o->dns.timeout_ms = ms;
		return 1;
	case CMD_OPT_NO_DNSSEC:
		o->dns.dnssec = false;
		return 1;
	case CMD_OPT_DNS_OFFLINE:
		o->dns.no_network = true;
		return 1;
	default:
		return 0;
	}
}

int
cmd_dns_open(const char *verb, struct cmd_dns_opts *o, struct dns_resolver **out)
{
	_cleanup_free_ char *err = NULL;
	int r = dns_resolver_open(&o->dns, out, &err);
	if (r == -EINVAL && err) {
		fputs(err, stderr);
		cmd_error(verb, "%s: the zone file has errors", o->dns.zone_file);
		return CMD_EXIT_USAGE;
	}
	if (r < 0) {
		cmd_error(verb, "cannot start the resolver: %s", strerror(-r));
		return r == -ENOENT ? CMD_EXIT_USAGE : CMD_EXIT_TEMP;
	}
	return CMD_EXIT_OK;
}
