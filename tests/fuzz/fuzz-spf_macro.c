/*
 * Fuzz target for src/mail/spf_macro. The first byte picks the kind and the client address
 * family; the rest is the macro text. Check and expand must agree on validity, the output
 * must stay inside its buffer, and an expanded domain is at most 253 characters.
 */
#include "mail/spf_macro.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *
validated(void *arg)
{
	return arg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_addr ip;
	char out[SPF_MACRO_NAME_MAX + 1], big[300];
	if (size < 1)
		return 0;
	enum spf_macro_kind kind = (enum spf_macro_kind)(data[0] % 3);
	net_addr_parse(data[0] & 4 ? "2001:db8::cb01" : "192.0.2.3", NET_PORT_NONE, &ip);
	struct spf_macro_vars v = {
	    .sender = "strong-bad+x.y@email.example.com",
	    .local_len = 14,
	    .sender_domain = "email.example.com",
	    .domain = "sub.email.example.com",
	    .helo = "JUMPIN' JUPITER",
	    .receiver = data[0] & 8 ? NULL : "mx.example.net",
	    .ip = &ip,
	    .now = 1700000000,
	    .validated = validated,
	    .arg = "mx.example.org",
	};
	const char *s = (const char *)data + 1;
	size_t len = size - 1;
	int valid = spf_macro_check(s, len, kind) == 0;
	char *o = kind == SPF_MACRO_DOMAIN ? out : big;
	size_t cap = kind == SPF_MACRO_DOMAIN ? sizeof(out) : sizeof(big);
	memset(o, 'X', cap);
	int r = spf_macro_expand(s, len, kind, &v, o, cap);
	if (valid != (r != -EINVAL))
		abort();
	if (r == 0 && strnlen(o, cap) >= cap)
		abort();
	if (r == 0 && kind == SPF_MACRO_DOMAIN && strlen(o) > 253)
		abort();
	if (r != 0 && r != -EINVAL && r != -ENAMETOOLONG)
		abort();
	return 0;
}
