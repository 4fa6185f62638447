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
cmd_dns_parse_duration(const char *verb, const char *opt, const char *arg, uint64_t *out)
{
	uint64_t ms;
	if (cfg_parse_duration(arg, &ms) < 0)
		return cmd_usage_error(verb, "%s '%s': not a duration (e.g. 2s)", opt, arg);
	if (ms == 0 || ms > 3600 * 1000)
		return cmd_usage_error(verb, "%s '%s': must be more than 0 and at most 1h", opt,
		                       arg);
	*out = ms;
	return 0;
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
		if (cmd_dns_parse_duration(verb, "--dns-timeout", arg, &ms) != 0)
			return CMD_EXIT_USAGE;
		o->dns.timeout_ms = ms;
		return 1;
	case CMD_OPT_DNS_ORIGIN: /* checked by dns_resolver_open (-EDOM) */
		o->dns.zone_origin = arg;
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
	if (o->dns.zone_origin && !o->dns.zone_file)
		return cmd_usage_error(verb, "--dns-origin needs --dns-zone");
	int r = dns_resolver_open(&o->dns, out, &err);
	if (r == -EINVAL && err) {
		fputs(err, stderr);
		cmd_error(verb, "--dns-zone %s: the zone file has errors", o->dns.zone_file);
		return CMD_EXIT_USAGE;
	}
	if (r == -EDOM) {
		return cmd_usage_error(verb, "--dns-origin '%s': not a domain name",
		                       o->dns.zone_origin);
	}
	/* the user's file, not the resolver: a typo must never look like a DNS outage */
	if (r < 0 && o->dns.zone_file && r != -EIO && r != -EINVAL && r != -ENOMEM) {
		cmd_error(verb, "--dns-zone %s: %s", o->dns.zone_file,
		          r == -ENODEV ? "not a regular file" : strerror(-r));
		return CMD_EXIT_USAGE;
	}
	if (r < 0) {
		cmd_error(verb, "cannot start the resolver: %s", strerror(-r));
		return r == -ENOENT ? CMD_EXIT_USAGE : CMD_EXIT_TEMP;
	}
	return CMD_EXIT_OK;
}
