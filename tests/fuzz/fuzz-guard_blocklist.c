/*
 * Fuzz target for guard_blocklist_parse: blocklist files are fetched from the Internet (DROP
 * lists) and loaded by the daemon; whatever it accepts must be a valid prefix that formats and
 * parses back unchanged, and the bad-line count must agree with the lines seen.
 */
#include "guard/guard_policy.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_cidr *v = NULL;
	size_t n = 0, cap = 0, bad = 0, bad_line = 0;
	int r = guard_blocklist_parse((const char *)data, size, &v, &n, &cap, &bad, &bad_line);
	if (r < 0 && r != -ENOMEM && r != -E2BIG)
		abort();
	size_t lines = size ? 1 : 0;
	for (size_t i = 0; i + 1 < size; i++)
		lines += data[i] == '\n';
	if (n + bad > lines || (bad && (bad_line == 0 || bad_line > lines)))
		abort();
	for (size_t i = 0; i < n; i++) {
		char text[NET_CIDR_STRLEN];
		struct net_cidr back;
		if (net_cidr_format(&v[i], text, sizeof(text)) < 0 ||
		    net_cidr_parse(text, &back) < 0 || back.prefix != v[i].prefix ||
		    !net_addr_equal(&back.addr, &v[i].addr))
			abort();
	}
	free(v);
	return 0;
}
