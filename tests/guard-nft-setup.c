/*
 * Test helper until `rampart guard` runs the system tests: sets up guard's table in the current
 * network namespace with guard_nft_setup, as the daemon does at start, and exits (the table
 * stays). usage: guard-nft-setup PORT[,PORT...]/SECONDS/HITCOUNT ...
 */
#include "guard/guard_nft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
parse_rate(const char *s, struct guard_nft_rate *r)
{
	char *end = NULL;

	*r = (struct guard_nft_rate){0};
	for (;;) {
		unsigned long p = strtoul(s, &end, 10);
		if (end == s || p == 0 || p > 65535 || r->nports == GUARD_NFT_PORTS_MAX)
			return -1;
		r->ports[r->nports++] = (uint16_t)p;
		s = end + 1;
		if (*end == '/')
			break;
		if (*end != ',')
			return -1;
	}
	unsigned long sec = strtoul(s, &end, 10);
	if (end == s || *end != '/')
		return -1;
	s = end + 1;
	unsigned long hit = strtoul(s, &end, 10);
	if (end == s || *end || sec > GUARD_NFT_SECONDS_MAX || hit > GUARD_NFT_HITCOUNT_MAX)
		return -1;
	r->seconds = (uint32_t)sec;
	r->hitcount = (uint32_t)hit;
	return 0;
}

int
main(int argc, char **argv)
{
	struct guard_nft_rate rates[GUARD_NFT_RATES_MAX];
	struct guard_nft_layout l = {.rates = rates, .v6_prefix = 64, .set_size = 65535};
	struct guard_nft *n = NULL;

	if (argc - 1 > GUARD_NFT_RATES_MAX) {
		fprintf(stderr, "guard-nft-setup: too many rates\n");
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (parse_rate(argv[i], &rates[l.nrates++]) < 0) {
			fprintf(stderr, "guard-nft-setup: bad rate %s\n", argv[i]);
			return 2;
		}
	int r = guard_nft_new(&n);
	if (r >= 0)
		r = guard_nft_setup(n, &l);
	if (r < 0) {
		fprintf(stderr, "guard-nft-setup: %s: %s\n", strerror(-r), guard_nft_error(n));
		guard_nft_free(n);
		return 1;
	}
	guard_nft_free(n);
	fprintf(stderr, "guard: ready\n");
	return 0;
}
