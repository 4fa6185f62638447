/*
 * Fuzz target for src/guard/guard_match: any bytes (NULs included) as one log line, with every
 * optional service enabled. Whatever matches must carry a valid, normalised address, a known
 * kind and service, and the same answer when the line is matched again from a copy.
 */
#include "core/net.h"
#include "guard/guard_match.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_GUARD_MAX 8192

static void
check_event(const struct guard_event *ev)
{
	char text[NET_ADDR_STRLEN];
	struct net_addr back;

	if (ev->kind != GUARD_EV_ATTACK && ev->kind != GUARD_EV_LOGIN)
		abort();
	if (ev->service != GUARD_SVC_SSH && ev->service != GUARD_SVC_DROPBEAR &&
	    ev->service != GUARD_SVC_POSTFIX && ev->service != GUARD_SVC_DOVECOT)
		abort();
	if (ev->addr.family != AF_INET && ev->addr.family != AF_INET6)
		abort();
	if (ev->addr.port != 0 || net_addr_is_v4_mapped(&ev->addr) || !ev->what)
		abort();
	if (net_addr_format(&ev->addr, false, text, sizeof(text)) < 0 ||
	    net_addr_parse(text, NET_PORT_NONE, &back) < 0 || !net_addr_equal(&back, &ev->addr))
		abort();
	if (ev->kind == GUARD_EV_ATTACK && (ev->danger == 0 || ev->danger > 100))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned all = GUARD_MATCH_POSTFIX | GUARD_MATCH_DOVECOT;
	struct guard_event ev, again;
	struct guard_line l;

	if (size > FUZZ_GUARD_MAX)
		return 0;
	/* An exact-size copy, so reading one byte past the line trips ASan. */
	char *line = malloc(size ? size : 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	int r = guard_match_text(line, size, all, &ev);
	if (r != 0 && r != 1)
		abort();
	if (r == 1) {
		check_event(&ev);
		if (guard_match_text(line, size, all, &again) != 1 ||
		    memcmp(&ev.addr, &again.addr, sizeof(ev.addr)) != 0)
			abort();
	}
	if (guard_match_split(line, size, &l) == 0) {
		if (l.ident < line || l.ident + l.ident_len > line + size || l.msg < line ||
		    l.msg + l.msg_len > line + size || l.ident_len == 0)
			abort();
		/* Without the optional services nothing new can match. */
		if (guard_match(&l, 0, &ev) == 1 && r != 1)
			abort();
	}
	free(line);
	return 0;
}
