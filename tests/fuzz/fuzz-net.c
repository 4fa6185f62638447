/*
 * Fuzz target for src/core/net: every parser in every mode; whatever parses must survive
 * format -> parse unchanged, and a CIDR must contain its own address.
 */
#include "core/cleanup.h"
#include "core/net.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Larger than the parsers' own input cap, so the cap itself gets exercised. */
#define FUZZ_NET_MAX 256

static void
check_addr(const struct net_addr *a)
{
	char text[NET_ADDR_STRLEN];
	struct net_addr back;
	struct net_cidr self = {.addr = *a, .prefix = a->family == AF_INET ? 32 : 128};

	if (net_addr_format(a, true, text, sizeof(text)) < 0)
		abort();
	if (net_addr_parse(text, NET_PORT_OPTIONAL | NET_PORT_ZERO_OK, &back) < 0)
		abort();
	if (!net_addr_equal(a, &back) || memcmp(a, &back, sizeof(back)) != 0)
		abort();
	self.addr.port = 0;
	if (!net_cidr_match(&self, a))
		abort();

	struct net_addr norm = *a;
	net_addr_normalize(&norm);
	if (net_addr_is_v4_mapped(&norm) || !net_cidr_match(&self, &norm))
		abort();
}

static void
check_sockaddr(const struct net_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct net_addr back;

	if (net_addr_to_sockaddr(a, &ss, &len) < 0)
		abort();
	if (net_addr_from_sockaddr((struct sockaddr *)&ss, len, &back) < 0)
		abort();
	if (memcmp(a, &back, sizeof(back)) != 0)
		abort();
}

static void
check_cidr(const struct net_cidr *c)
{
	char text[NET_CIDR_STRLEN];
	struct net_cidr back;
	struct net_addr masked = c->addr;

	if (net_cidr_format(c, text, sizeof(text)) < 0)
		abort();
	if (net_cidr_parse(text, &back) < 0 || memcmp(c, &back, sizeof(back)) != 0)
		abort();
	if (!net_cidr_match(c, &c->addr))
		abort();
	/* Host bits are already clear: masking again changes nothing. */
	if (net_addr_mask(&masked, c->prefix) < 0 || memcmp(&masked, &c->addr, sizeof(masked)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned modes[] = {
	    NET_PORT_NONE,
	    NET_PORT_OPTIONAL,
	    NET_PORT_REQUIRED,
	    NET_PORT_NONE | NET_PORT_ZERO_OK,
	    NET_PORT_OPTIONAL | NET_PORT_ZERO_OK,
	    NET_PORT_REQUIRED | NET_PORT_ZERO_OK,
	};
	char s[FUZZ_NET_MAX + 1];

	if (size > FUZZ_NET_MAX)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		struct net_addr a;
		if (net_addr_parse(s, modes[i], &a) == 0) {
			check_addr(&a);
			check_sockaddr(&a);
		}
	}
	struct net_cidr c;
	if (net_cidr_parse(s, &c) == 0)
		check_cidr(&c);
	uint16_t port;
	if (net_port_parse(s, NET_PORT_ZERO_OK, &port) == 0 && port == 0 && strcmp(s, "0") != 0)
		abort();
	if (net_port_parse(s, 0, &port) == 0 && port == 0)
		abort();
	return 0;
}
