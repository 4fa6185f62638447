/*
 * Fuzz target for src/lb/lb_proxyproto: parse arbitrary bytes; a header never claims more
 * bytes than it was given, every shorter prefix asks for more, and addresses that parse
 * survive build -> parse in both versions (compared after v4-mapped normalisation, since
 * build writes v4-mapped peers as IPv4).
 */
#include "core/cleanup.h"
#include "core/net.h"
#include "lb/lb_config.h"
#include "lb/lb_proxyproto.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prefix checks are quadratic; past this only the whole header is checked. */
#define FUZZ_PP_PREFIX_MAX 300

static void
check_prefixes(const uint8_t *data, size_t n)
{
	struct net_addr s, d;

	if (n > FUZZ_PP_PREFIX_MAX)
		return;
	for (size_t k = 0; k < n; k++)
		if (lb_proxyproto_parse(data, k, &s, &d) != 0)
			abort();
}

static void
check_rebuild(int version, const struct net_addr *src, const struct net_addr *dst)
{
	uint8_t out[LB_PROXYPROTO_MAX];
	struct net_addr s = *src, d = *dst, ps, pd;

	int n = lb_proxyproto_build(version, &s, &d, out, sizeof(out));
	if (n <= 0 || lb_proxyproto_parse(out, (size_t)n, &ps, &pd) != n)
		abort();
	net_addr_normalize(&s);
	net_addr_normalize(&d);
	net_addr_normalize(&ps);
	net_addr_normalize(&pd);
	if (!net_addr_equal(&s, &ps) || !net_addr_equal(&d, &pd))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_addr s, d;

	int r = lb_proxyproto_parse(data, size, &s, &d);
	if (r < 0 && r != -EBADMSG)
		abort();
	if (r <= 0)
		return 0;
	if ((size_t)r > size)
		abort();
	check_prefixes(data, (size_t)r);
	if (s.family != d.family)
		abort();
	if (s.family == 0)
		return 0;
	check_rebuild(LB_PROXY_V1, &s, &d);
	check_rebuild(LB_PROXY_V2, &s, &d);
	return 0;
}
