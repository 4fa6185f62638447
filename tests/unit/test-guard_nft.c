/*
 * guard_nft and guard_writer against the real kernel, in a network namespace of our own
 * (unshare at start: needs root, as in CI). Packets go over the namespace's loopback.
 */
#include "core/cleanup.h"
#include "core/net.h"
#include "guard/guard_nft.h"
#include "guard/guard_writer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first */
#include <cmocka.h>

/* ---- helpers ---- */

static char listing[1 << 20];

/* `nft list ...` output into listing; -1 when nft fails. */
static int
nft_list(const char *what)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	char cmd[256];

	assert_non_null(ctx);
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	snprintf(cmd, sizeof(cmd), "list %s", what);
	int r = nft_run_cmd_from_buffer(ctx, cmd);
	snprintf(listing, sizeof(listing), "%s", nft_ctx_get_output_buffer(ctx));
	nft_ctx_free(ctx);
	return r == 0 ? 0 : -1;
}

static void
nft_cmd(const char *cmd)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);

	assert_non_null(ctx);
	nft_ctx_buffer_error(ctx);
	int r = nft_run_cmd_from_buffer(ctx, cmd);
	if (r != 0)
		fail_msg("nft %s: %s", cmd, nft_ctx_get_error_buffer(ctx));
	nft_ctx_free(ctx);
}

static bool
set_has(const char *set, const char *needle)
{
	char what[64];

	snprintf(what, sizeof(what), "set inet rampart %s", set);
	if (nft_list(what) < 0)
		return false;
	return strstr(listing, needle) != NULL;
}

/* Whether set lists elem with timeout (as "2m"; NULL: none): "ELEM timeout 2m expires ...". */
static bool
elem_timeout(const char *set, const char *elem, const char *timeout)
{
	char what[64], want[32];
	size_t len = strlen(elem);

	snprintf(what, sizeof(what), "set inet rampart %s", set);
	snprintf(want, sizeof(want), " timeout %s ", timeout ? timeout : "");
	if (nft_list(what) < 0)
		return false;
	for (const char *p = strstr(listing, elem); p; p = strstr(p + 1, elem)) {
		const char *q = p + len;
		if (p == listing || (p[-1] != ' ' && p[-1] != '\t'))
			continue;
		if (timeout && strncmp(q, want, strlen(want)) == 0)
			return true;
		if (!timeout && (*q == ',' || *q == '\n' || strncmp(q, " }", 2) == 0))
			return true;
	}
	return false;
}

static struct net_cidr
cidr(const char *s)
{
	struct net_cidr c;

	assert_int_equal(net_cidr_parse(s, &c), 0);
	return c;
}

static struct net_addr
addr(const char *s)
{
	struct net_addr a;

	assert_int_equal(net_addr_parse(s, NET_PORT_NONE, &a), 0);
	return a;
}

static struct guard_nft_rate rate22 = {.ports = {22}, .nports = 1, .seconds = 3, .hitcount = 4};

static struct guard_nft_layout
layout1(void)
{
	return (struct guard_nft_layout){
	    .rates = &rate22, .nrates = 1, .v6_prefix = 64, .set_size = 65535};
}

static void
fresh(struct guard_nft **n)
{
	assert_int_equal(guard_nft_new(n), 0);
	int r = guard_nft_remove(*n);
	assert_true(r == 0 || r == -ENOENT);
}

static void
bring_lo_up(void)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	assert_int_equal(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
	close(fd);
}

/* A listener on host:0 (IPv4 or IPv6 loopback); its port in *port. */
static int
listener(const char *host, uint16_t *port)
{
	struct net_addr a = addr(host);
	int fd = net_listen_tcp(&a, 0, 512);

	assert_true(fd >= 0);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	struct net_addr b;
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, len, &b), 0);
	*port = b.port;
	return fd;
}

/*
 * Opens a connection from src to dst:port; true when it completes within 300 ms (a dropped
 * SYN leaves it pending: loopback answers in microseconds, the first retransmit is 1 s away).
 * The socket is kept in *keep when keep is not NULL, else closed.
 */
static bool
try_connect(const char *src, const char *dst, uint16_t port, int *keep)
{
	struct net_addr s = addr(src), d = addr(dst);
	struct sockaddr_storage ss, ds;
	socklen_t sl, dl;

	d.port = port;
	assert_int_equal(net_addr_to_sockaddr(&s, &ss, &sl), 0);
	assert_int_equal(net_addr_to_sockaddr(&d, &ds, &dl), 0);
	int fd = socket(d.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, sl), 0);
	int r = connect(fd, (struct sockaddr *)&ds, dl);
	assert_true(r == 0 || errno == EINPROGRESS);
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int err = -1;
	if (poll(&p, 1, 300) == 1) {
		socklen_t el = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	}
	if (keep && err == 0)
		*keep = fd;
	else
		close(fd);
	return err == 0;
}

static int
accept_one(int lfd)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};

	assert_int_equal(poll(&p, 1, 2000), 1);
	int fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	return fd;
}

/* Whether bytes sent on c arrive on s within 300 ms. */
static bool
data_arrives(int c, int s)
{
	char buf[8];

	assert_int_equal(send(c, "x", 1, MSG_NOSIGNAL), 1);
	struct pollfd p = {.fd = s, .events = POLLIN};
	if (poll(&p, 1, 300) != 1)
		return false;
	return recv(s, buf, sizeof(buf), MSG_DONTWAIT) == 1;
}

/* ---- guard_nft: the table ---- */

static void
test_setup_layout(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_nft_rate rates[2] = {
	    {.ports = {22}, .nports = 1, .seconds = 3, .hitcount = 4},
	    {.ports = {22, 2222}, .nports = 2, .seconds = 2, .hitcount = 1},
	};
	struct net_cidr allow[3] = {cidr("192.0.2.0/24"), cidr("2001:db8::/48"),
	                            cidr("127.0.0.0/8")};
	struct guard_nft_layout l = {.rates = rates,
	                             .nrates = 2,
	                             .v6_prefix = 56,
	                             .allow = allow,
	                             .nallow = 3,
	                             .set_size = 1000};

	fresh(&n);
	assert_int_equal(guard_nft_setup(n, &l), 0);
	assert_string_equal(guard_nft_error(n), "");
	assert_int_equal(nft_list("table inet rampart"), 0);
	for (int i = 0; i < 4; i++) {
		char name[32];
		snprintf(name, sizeof(name), "set rate0_v4_s%d ", i);
		assert_non_null(strstr(listing, name));
		snprintf(name, sizeof(name), "set rate0_v6_s%d ", i);
		assert_non_null(strstr(listing, name));
	}
	assert_non_null(strstr(listing, "set rate0_v4_c3 "));
	assert_null(strstr(listing, "set rate0_v4_c4 "));
	assert_null(strstr(listing, "set rate0_v4_s4 "));
	/* hitcount 1: one slot, no cursor */
	assert_non_null(strstr(listing, "set rate1_v6_s0 "));
	assert_null(strstr(listing, "set rate1_v6_s1 "));
	assert_null(strstr(listing, "set rate1_v4_c1 "));
	assert_non_null(strstr(listing, "tcp dport { 22, 2222 } ct state new meta nfproto ipv6"));
	assert_non_null(strstr(listing, "ip6 saddr & ffff:ffff:ffff:ff00:: == @ban6 drop"));
	assert_non_null(strstr(listing, "hook input priority filter - 10"));
	assert_non_null(strstr(listing, "size 1000"));
	assert_non_null(strstr(listing, "timeout 3s"));
	assert_true(set_has("allow4", "192.0.2.0/24"));
	assert_true(set_has("allow6", "2001:db8::/48"));
	guard_nft_free(n);
}

/* The largest layout: 16 rate entries of 16 ports and hitcount 20; IPv6 bans per address. */
static void
test_setup_largest(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_nft_rate rates[GUARD_NFT_RATES_MAX];
	struct guard_nft_layout l = {
	    .rates = rates, .nrates = GUARD_NFT_RATES_MAX, .v6_prefix = 128, .set_size = 65535};

	for (size_t i = 0; i < GUARD_NFT_RATES_MAX; i++) {
		rates[i] = (struct guard_nft_rate){.nports = GUARD_NFT_PORTS_MAX,
		                                   .seconds = GUARD_NFT_SECONDS_MAX,
		                                   .hitcount = GUARD_NFT_HITCOUNT_MAX};
		for (size_t p = 0; p < GUARD_NFT_PORTS_MAX; p++)
			rates[i].ports[p] = (uint16_t)(1000 + i * 100 + p);
	}
	fresh(&n);
	assert_int_equal(guard_nft_setup(n, &l), 0);
	assert_int_equal(nft_list("table inet rampart"), 0);
	assert_non_null(strstr(listing, "set rate15_v6_s19 "));
	assert_non_null(strstr(listing, "set rate15_v6_c19 "));
	assert_null(strstr(listing, "set rate15_v6_c20 "));
	assert_non_null(strstr(listing, "timeout 365d"));
	struct guard_nft_elem b = {cidr("2001:db8::1:2"), 0};
	assert_int_equal(guard_nft_ban(n, &b, 1), 0);
	assert_true(set_has("ban6", "2001:db8::1:2"));
	guard_nft_free(n);
}

static void
test_ban_unban(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_nft_layout l = layout1();

	fresh(&n);
	assert_int_equal(guard_nft_setup(n, &l), 0);
	struct guard_nft_elem v[] = {
	    {cidr("192.0.2.1"), 60000},
	    {cidr("2001:db8:1:2:3::4"), 0},
	    {cidr("10.0.0.0/8"), 3600000},
	    {cidr("2001:db8:100::/40"), 0},
	    {cidr("::ffff:198.51.100.7"), 1000 * 86400},
	    {cidr("192.0.2.1"), 90000}, /* twice: the longer timeout wins */
	};
	assert_int_equal(guard_nft_ban(n, v, ARRAY_SIZE(v)), 0);
	assert_true(set_has("ban4", "192.0.2.1 timeout 1m30s"));
	assert_true(set_has("ban4", "198.51.100.7 timeout 1d"));
	assert_true(set_has("ban6", "2001:db8:1:2:: "));
	assert_true(set_has("bannet4_8", "10.0.0.0 timeout 1h"));
	assert_true(set_has("bannet6_40", "2001:db8:100:: "));
	/* a new ban refreshes the timeout, of a host and of a network */
	struct guard_nft_elem again[] = {{cidr("192.0.2.1"), 7200000},
	                                 {cidr("10.0.0.0/8"), 7200000}};
	assert_int_equal(guard_nft_ban(n, again, ARRAY_SIZE(again)), 0);
	assert_true(set_has("ban4", "192.0.2.1 timeout 2h"));
	assert_true(set_has("bannet4_8", "10.0.0.0 timeout 2h"));
	/* a ban inside a wider one is an element of its own */
	struct guard_nft_elem inner = {cidr("10.1.0.0/16"), 0};
	assert_int_equal(guard_nft_ban(n, &inner, 1), 0);
	assert_true(elem_timeout("bannet4_16", "10.1.0.0", NULL));

	struct net_cidr un[] = {
	    cidr("192.0.2.1"),  cidr("203.0.113.9"), cidr("2001:db8:1:2:ffff::1"),
	    cidr("10.0.0.0/8"), cidr("10.2.0.0/16"), cidr("172.16.0.0/12")};
	assert_int_equal(guard_nft_unban(n, un, ARRAY_SIZE(un)), 0);
	assert_false(set_has("ban4", "192.0.2.1 "));
	assert_true(set_has("ban4", "198.51.100.7"));
	assert_false(set_has("ban6", "2001:db8:1:2::"));
	assert_false(set_has("bannet4_8", "10.0.0.0"));
	assert_true(set_has("bannet4_16", "10.1.0.0"));
	/* unbanning a length never banned makes no set */
	assert_int_equal(nft_list("sets table inet rampart"), 0);
	assert_null(strstr(listing, "bannet4_12"));
	assert_int_equal(guard_nft_unban(n, NULL, 0), 0);
	assert_int_equal(guard_nft_trust(n, &(struct net_addr){0}, 1000), -EINVAL);
	struct net_addr t = addr("2001:db8::77");
	assert_int_equal(guard_nft_trust(n, &t, 86400000), 0);
	assert_int_equal(guard_nft_trust(n, &t, 3600000), 0);
	assert_true(set_has("trust6", "2001:db8::77 timeout 1h"));
	guard_nft_free(n);
}

/* Two bans of one address, the first of length a ("2m"), the second of length b, permanent. */
struct overlap {
	const char *first, *second; /* the bans, in order */
	const char *set1, *elem1;   /* where the first is, as listed */
	const char *set2, *elem2;   /* where the second is */
};

static const struct overlap overlaps[] = {
    {"172.16.5.0/24", "172.16.0.0/12", "bannet4_24", "172.16.5.0", "bannet4_12", "172.16.0.0"},
    {"100.64.0.0/10", "100.64.8.0/24", "bannet4_10", "100.64.0.0", "bannet4_24", "100.64.8.0"},
    {"2001:db8:aa::/48", "2001:db8:aa:1::/64", "bannet6_48", "2001:db8:aa::", "ban6",
     "2001:db8:aa:1::"},
    {"2001:db8:bb::/48", "2001:db8:bb:100::/56", "bannet6_48", "2001:db8:bb::", "bannet6_56",
     "2001:db8:bb:100::"},
};

static bool
listed(const char *set, const char *elem, bool permanent)
{
	return elem_timeout(set, elem, permanent ? NULL : "2m");
}

static void
overlaps_present(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(overlaps); i++) {
		const struct overlap *o = &overlaps[i];
		if (!listed(o->set1, o->elem1, false) || !listed(o->set2, o->elem2, true))
			fail_msg("%s then %s: not both in %s, %s", o->first, o->second, o->set1,
			         o->set2);
	}
}

/* Overlapping bans of different lengths are independent elements, each with its timeout. */
static void
test_ban_overlap(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_nft_layout l = layout1();

	fresh(&n);
	assert_int_equal(guard_nft_setup(n, &l), 0);
	for (size_t i = 0; i < ARRAY_SIZE(overlaps); i++) {
		struct guard_nft_elem a = {cidr(overlaps[i].first), 120000};
		struct guard_nft_elem b = {cidr(overlaps[i].second), 0};
		assert_int_equal(guard_nft_ban(n, &a, 1), 0);
		assert_int_equal(guard_nft_ban(n, &b, 1), 0);
		assert_string_equal(guard_nft_error(n), "");
	}
	overlaps_present();
	/* one rule per set, in chain bannet, which input jumps to before the blocklist */
	assert_int_equal(nft_list("table inet rampart"), 0);
	assert_non_null(strstr(listing, "ip saddr & 255.240.0.0 == @bannet4_12 drop"));
	assert_non_null(strstr(listing, "ip6 saddr & ffff:ffff:ffff:ff00:: == @bannet6_56 drop"));
	const char *rule = strstr(listing, "@bannet4_24 drop");
	assert_non_null(rule);
	assert_null(strstr(rule + 1, "@bannet4_24 drop"));
	const char *trust = strstr(listing, "@trust6 return");
	const char *jump = strstr(listing, "jump bannet");
	assert_true(trust && jump && trust < jump && jump < strstr(listing, "jump block"));

	/* setup with another layout keeps them, and their rules */
	l.v6_prefix = 56;
	assert_int_equal(guard_nft_setup(n, &l), 0);
	overlaps_present();
	assert_int_equal(nft_list("chain inet rampart bannet"), 0);
	assert_non_null(strstr(listing, "ip saddr & 255.192.0.0 == @bannet4_10 drop"));
	assert_non_null(strstr(listing, "ip6 saddr & ffff:ffff:ffff:: == @bannet6_48 drop"));
	/* unban of one leaves the other, either way round */
	struct net_cidr un[] = {cidr("172.16.0.0/12"), cidr("100.64.0.0/10"),
	                        cidr("2001:db8:bb:100::/56")};
	assert_int_equal(guard_nft_unban(n, un, ARRAY_SIZE(un)), 0);
	assert_true(listed("bannet4_24", "172.16.5.0", false));
	assert_false(set_has("bannet4_12", "172.16.0.0"));
	assert_true(listed("bannet4_24", "100.64.8.0", true));
	assert_false(set_has("bannet4_10", "100.64.0.0"));
	assert_true(listed("bannet6_48", "2001:db8:bb::", false));
	assert_false(set_has("bannet6_56", "2001:db8:bb:100::"));
	/* several lengths and a duplicate in one call */
	struct guard_nft_elem v[] = {{cidr("198.18.0.0/15"), 60000},
	                             {cidr("198.18.0.0/16"), 0},
	                             {cidr("198.18.0.0/15"), 180000},
	                             {cidr("198.18.0.1"), 60000}};
	assert_int_equal(guard_nft_ban(n, v, ARRAY_SIZE(v)), 0);
	assert_true(elem_timeout("bannet4_15", "198.18.0.0", "3m"));
	assert_true(elem_timeout("bannet4_16", "198.18.0.0", NULL));
	assert_true(elem_timeout("ban4", "198.18.0.1", "1m"));
	guard_nft_free(n);
}

/* A table an earlier version made: its interval sets go, the bans from the store come back. */
static void
test_setup_old_table(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_nft_layout l = layout1();

	fresh(&n);
	nft_cmd("add table inet rampart\n"
	        "add set inet rampart ban4 { type ipv4_addr; flags timeout; }\n"
	        "add set inet rampart bannet4 { type ipv4_addr; flags interval,timeout; }\n"
	        "add set inet rampart bannet6 { type ipv6_addr; flags interval,timeout; }\n"
	        "add element inet rampart ban4 { 192.0.2.3 }\n"
	        "add element inet rampart bannet4 { 10.0.0.0/8 }\n"
	        "add chain inet rampart input { type filter hook input priority filter - 10; }\n"
	        "add rule inet rampart input ip saddr @ban4 drop\n"
	        "add rule inet rampart input ip saddr @bannet4 drop\n"
	        "add rule inet rampart input ip6 saddr @bannet6 drop\n");
	/* no chain bannet yet: the caller is told to set up first */
	struct guard_nft_elem wide = {cidr("10.0.0.0/8"), 0};
	assert_int_equal(guard_nft_ban(n, &wide, 1), -ENOENT);
	assert_non_null(strstr(guard_nft_error(n), "bannet"));
	assert_int_equal(guard_nft_setup(n, &l), 0);
	assert_int_equal(nft_list("sets table inet rampart"), 0);
	assert_null(strstr(listing, "bannet4 "));
	assert_null(strstr(listing, "bannet6 "));
	assert_true(set_has("ban4", "192.0.2.3"));
	assert_int_equal(guard_nft_ban(n, &wide, 1), 0);
	assert_true(set_has("bannet4_8", "10.0.0.0"));
	guard_nft_free(n);
	/* and without any table, a wide ban fails as a host ban does */
	fresh(&n);
	assert_int_equal(guard_nft_ban(n, &wide, 1), -ENOENT);
	struct net_cidr un = cidr("10.0.0.0/8");
	assert_int_equal(guard_nft_unban(n, &un, 1), 0);
	guard_nft_free(n);
}

/* Bans, trust and the blocklist survive a setup with another layout; rate sets follow it. */
static void
test_setup_keeps_state(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_nft_layout l = layout1();

	fresh(&n);
	assert_int_equal(guard_nft_setup(n, &l), 0);
	struct guard_nft_elem b = {cidr("192.0.2.9"), 600000};
	assert_int_equal(guard_nft_ban(n, &b, 1), 0);
	struct net_addr t = addr("198.51.100.1");
	assert_int_equal(guard_nft_trust(n, &t, 600000), 0);
	struct net_cidr bl = cidr("203.0.113.0/24");
	assert_int_equal(guard_nft_blocklist(n, &bl, 1), 0);

	struct guard_nft_rate r2 = {.ports = {2222}, .nports = 1, .seconds = 9, .hitcount = 2};
	struct net_cidr allow = cidr("192.0.2.128/25");
	l = (struct guard_nft_layout){.rates = &r2,
	                              .nrates = 1,
	                              .v6_prefix = 64,
	                              .allow = &allow,
	                              .nallow = 1,
	                              .set_size = 100};
	assert_int_equal(guard_nft_setup(n, &l), 0);
	assert_true(set_has("ban4", "192.0.2.9"));
	assert_true(set_has("trust4", "198.51.100.1"));
	assert_true(set_has("block4_24", "203.0.113.0"));
	assert_int_equal(nft_list("chain inet rampart block"), 0);
	assert_non_null(strstr(listing, "ip saddr & 255.255.255.0 == @block4_24 drop"));
	assert_true(set_has("allow4", "192.0.2.128/25"));
	assert_int_equal(nft_list("table inet rampart"), 0);
	assert_null(strstr(listing, "rate0_v4_s2"));
	assert_non_null(strstr(listing, "rate0_v4_s1"));
	assert_non_null(strstr(listing, "timeout 9s"));
	assert_non_null(strstr(listing, "tcp dport 2222"));
	assert_null(strstr(listing, "dport 22 "));
	/* no rate entry at all */
	l.nrates = 0;
	assert_int_equal(guard_nft_setup(n, &l), 0);
	assert_int_equal(nft_list("table inet rampart"), 0);
	assert_null(strstr(listing, "rate0_"));
	assert_true(set_has("ban4", "192.0.2.9"));
	guard_nft_free(n);
}

static void
test_blocklist_replace(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_nft_layout l = layout1();
	enum { COUNT = 3000 };
	_cleanup_free_ struct net_cidr *v = calloc(COUNT, sizeof(*v));

	fresh(&n);
	assert_int_equal(guard_nft_setup(n, &l), 0);
	for (int i = 0; i < COUNT; i++) {
		char s[64];
		if (i % 2)
			snprintf(s, sizeof(s), "10.%d.%d.0/24", i / 256, i % 256);
		else
			snprintf(s, sizeof(s), "2001:db8:%x::/48", i);
		v[i] = cidr(s);
	}
	assert_int_equal(guard_nft_blocklist(n, v, COUNT), 0);
	assert_true(set_has("block4_24", "10.10.185.0"));
	assert_true(set_has("block6_48", "2001:db8:bb6::"));
	/* overlapping input is merged, the old contents go */
	struct net_cidr w[] = {cidr("10.0.0.0/8"), cidr("10.1.0.0/16"), cidr("10.1.2.3"),
	                       cidr("::ffff:192.0.2.0/120")};
	assert_int_equal(guard_nft_blocklist(n, w, ARRAY_SIZE(w)), 0);
	assert_true(set_has("block4_8", "10.0.0.0"));
	assert_true(set_has("block4_24", "192.0.2.0"));
	assert_false(set_has("block4_24", "10.10.185.0"));
	assert_false(set_has("block6_48", "2001:db8"));
	assert_false(set_has("block4_16", "10.1.0.0"));
	assert_int_equal(nft_list("chain inet rampart block"), 0);
	assert_non_null(strstr(listing, "ip saddr & 255.0.0.0 == @block4_8 drop"));
	assert_int_equal(guard_nft_blocklist(n, NULL, 0), 0);
	assert_false(set_has("block4_8", "10.0.0.0"));
	assert_int_equal(nft_list("chain inet rampart block"), 0);
	assert_null(strstr(listing, "drop"));
	guard_nft_free(n);
}

static void
test_invalid(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_nft_rate bad[] = {
	    {.ports = {22}, .nports = 1, .seconds = 3, .hitcount = 0},
	    {.ports = {22}, .nports = 1, .seconds = 3, .hitcount = 21},
	    {.ports = {0}, .nports = 1, .seconds = 3, .hitcount = 2},
	    {.ports = {22}, .nports = 0, .seconds = 3, .hitcount = 2},
	    {.ports = {22}, .nports = 17, .seconds = 3, .hitcount = 2},
	    {.ports = {22}, .nports = 1, .seconds = 0, .hitcount = 2},
	};
	fresh(&n);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct guard_nft_layout l = layout1();
		l.rates = &bad[i];
		assert_int_equal(guard_nft_setup(n, &l), -EINVAL);
	}
	struct guard_nft_layout l = layout1();
	l.v6_prefix = 0;
	assert_int_equal(guard_nft_setup(n, &l), -EINVAL);
	l.v6_prefix = 129;
	assert_int_equal(guard_nft_setup(n, &l), -EINVAL);
	l = layout1();
	l.set_size = 0;
	assert_int_equal(guard_nft_setup(n, &l), -EINVAL);
	struct net_cidr host_bits = {.addr = addr("10.1.2.3"), .prefix = 8};
	l = layout1();
	l.allow = &host_bits;
	l.nallow = 1;
	assert_int_equal(guard_nft_setup(n, &l), -EINVAL);
	assert_int_equal(nft_list("table inet rampart"), -1); /* nothing was made */

	/* without a table nft itself fails, and says why */
	struct guard_nft_elem e = {cidr("192.0.2.1"), 1000};
	assert_int_equal(guard_nft_ban(n, &e, 1), -ENOENT);
	assert_non_null(strstr(guard_nft_error(n), "No such file or directory"));
	assert_int_equal(guard_nft_remove(n), -ENOENT);

	l = layout1();
	assert_int_equal(guard_nft_setup(n, &l), 0);
	struct guard_nft_elem badv[] = {
	    {host_bits, 0},
	    {{.addr = addr("10.1.2.3"), .prefix = 33}, 0},
	    {{.addr = addr("10.1.2.3"), .prefix = 32}, GUARD_NFT_TIMEOUT_MAX_MS + 1},
	    {{.addr = {.family = 0}, .prefix = 0}, 0},
	    {{.addr = {.family = AF_INET, .port = 22}, .prefix = 0}, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(badv); i++)
		assert_int_equal(guard_nft_ban(n, &badv[i], 1), -EINVAL);
	assert_int_equal(guard_nft_blocklist(n, &host_bits, 1), -EINVAL);
	assert_int_equal(guard_nft_unban(n, &host_bits, 1), -EINVAL);
	struct guard_nft_elem ok = {cidr("192.0.2.1"), GUARD_NFT_TIMEOUT_MAX_MS};
	assert_int_equal(guard_nft_ban(n, &ok, 1), 0);
	assert_true(set_has("ban4", "192.0.2.1 timeout 3650d"));
	assert_int_equal(guard_nft_remove(n), 0);
	assert_int_equal(guard_nft_remove(n), -ENOENT);
	guard_nft_free(n);
}

/* ---- guard_nft: packets over loopback ---- */

static void
test_packets_rate(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	uint16_t p4, p6;
	_cleanup_close_ int l4 = listener("127.0.0.1", &p4);
	_cleanup_close_ int l6 = listener("::1", &p6);
	/* the listeners only complete handshakes: nothing is accepted */
	(void)l4;
	(void)l6;
	struct guard_nft_rate r = {.ports = {p4, p6}, .nports = 2, .seconds = 60, .hitcount = 3};
	struct net_cidr allow = cidr("127.0.0.3");
	struct guard_nft_layout l = {.rates = &r,
	                             .nrates = 1,
	                             .v6_prefix = 64,
	                             .allow = &allow,
	                             .nallow = 1,
	                             .set_size = 64};

	fresh(&n);
	assert_int_equal(guard_nft_setup(n, &l), 0);
	/* hitcount 3: three new connections pass, then every one is dropped */
	for (int i = 0; i < 3; i++)
		assert_true(try_connect("127.0.0.1", "127.0.0.1", p4, NULL));
	for (int i = 0; i < 3; i++)
		assert_false(try_connect("127.0.0.1", "127.0.0.1", p4, NULL));
	/* another source has its own count; the port list counts together */
	assert_true(try_connect("127.0.0.2", "127.0.0.1", p4, NULL));
	for (int i = 0; i < 3; i++)
		assert_true(try_connect("::1", "::1", p6, NULL));
	assert_false(try_connect("::1", "::1", p6, NULL));
	/* allowed: never counted */
	for (int i = 0; i < 6; i++)
		assert_true(try_connect("127.0.0.3", "127.0.0.1", p4, NULL));
	/* trusted: likewise */
	struct net_addr t = addr("127.0.0.4");
	assert_int_equal(guard_nft_trust(n, &t, 60000), 0);
	for (int i = 0; i < 6; i++)
		assert_true(try_connect("127.0.0.4", "127.0.0.1", p4, NULL));
	guard_nft_free(n);
}

static void
test_packets_ban(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	uint16_t p4, p6;
	_cleanup_close_ int l4 = listener("127.0.0.1", &p4);
	_cleanup_close_ int l6 = listener("::1", &p6);
	struct guard_nft_layout l = layout1();
	(void)l6;

	fresh(&n);
	/* another table accepting established traffic first: our drop still bites */
	nft_cmd("add table inet filter\n"
	        "add chain inet filter input { type filter hook input priority filter; "
	        "policy drop; }\n"
	        "add rule inet filter input ct state established,related accept\n"
	        "add rule inet filter input iif lo accept\n");
	assert_int_equal(guard_nft_setup(n, &l), 0);
	_cleanup_close_ int c = -1;
	assert_true(try_connect("127.0.0.6", "127.0.0.1", p4, &c));
	_cleanup_close_ int s = accept_one(l4);
	assert_true(data_arrives(c, s));

	struct guard_nft_elem b[] = {
	    {cidr("127.0.0.6"), 60000}, {cidr("127.0.0.8/30"), 60000}, {cidr("::1"), 60000}};
	assert_int_equal(guard_nft_ban(n, b, ARRAY_SIZE(b)), 0);
	assert_false(data_arrives(c, s));
	assert_false(try_connect("127.0.0.6", "127.0.0.1", p4, NULL));
	assert_false(try_connect("127.0.0.10", "127.0.0.1", p4, NULL));
	assert_false(try_connect("::1", "::1", p6, NULL));
	assert_true(try_connect("127.0.0.7", "127.0.0.1", p4, NULL));
	struct net_cidr bl[] = {cidr("127.0.0.7"), cidr("127.0.1.0/24")};
	assert_int_equal(guard_nft_blocklist(n, bl, ARRAY_SIZE(bl)), 0);
	assert_false(try_connect("127.0.0.7", "127.0.0.1", p4, NULL));
	assert_false(try_connect("127.0.1.5", "127.0.0.1", p4, NULL));
	assert_true(try_connect("127.0.2.5", "127.0.0.1", p4, NULL));
	/* unbanned: back */
	struct net_cidr un[] = {cidr("127.0.0.6"), cidr("::1")};
	assert_int_equal(guard_nft_unban(n, un, ARRAY_SIZE(un)), 0);
	assert_true(try_connect("127.0.0.6", "127.0.0.1", p4, NULL));
	assert_true(try_connect("::1", "::1", p6, NULL));

	/* overlapping networks, wider first and narrower first: each drops on its own */
	struct guard_nft_elem w[] = {{cidr("127.0.16.0/20"), 0},
	                             {cidr("127.0.17.0/24"), 60000},
	                             {cidr("::/16"), 60000},
	                             {cidr("::/8"), 0}};
	for (size_t i = 0; i < ARRAY_SIZE(w); i++)
		assert_int_equal(guard_nft_ban(n, &w[i], 1), 0);
	assert_false(try_connect("127.0.17.1", "127.0.0.1", p4, NULL));
	assert_false(try_connect("127.0.20.1", "127.0.0.1", p4, NULL));
	assert_true(try_connect("127.0.32.1", "127.0.0.1", p4, NULL));
	assert_false(try_connect("::1", "::1", p6, NULL));
	struct net_cidr wider[] = {cidr("127.0.16.0/20"), cidr("::/8")};
	assert_int_equal(guard_nft_unban(n, wider, ARRAY_SIZE(wider)), 0);
	assert_false(try_connect("127.0.17.1", "127.0.0.1", p4, NULL));
	assert_true(try_connect("127.0.20.1", "127.0.0.1", p4, NULL));
	assert_false(try_connect("::1", "::1", p6, NULL));
	struct net_cidr narrower[] = {cidr("127.0.17.0/24"), cidr("::/16")};
	assert_int_equal(guard_nft_unban(n, narrower, ARRAY_SIZE(narrower)), 0);
	assert_true(try_connect("127.0.17.1", "127.0.0.1", p4, NULL));
	assert_true(try_connect("::1", "::1", p6, NULL));
	nft_cmd("delete table inet filter");
	guard_nft_free(n);
}

/* ---- guard_writer ---- */

static void
writer_roundtrip(struct guard_writer *w)
{
	enum { COUNT = 5000 };
	_cleanup_free_ struct guard_nft_elem *v = calloc(COUNT, sizeof(*v));
	_cleanup_free_ struct net_cidr *c = calloc(COUNT, sizeof(*c));

	for (int i = 0; i < COUNT; i++) {
		char s[64];
		snprintf(s, sizeof(s), i % 3 ? "10.%d.%d.1" : "2001:db8:%x:%x::", i / 200, i % 200);
		v[i] = (struct guard_nft_elem){cidr(s), 60000 + (uint64_t)i * 1000};
		c[i] = v[i].net;
		c[i].prefix = v[i].net.addr.family == AF_INET ? 24 : 48;
		net_addr_mask(&c[i].addr, c[i].prefix);
	}
	assert_int_equal(guard_writer_ban(w, v, COUNT), 0);
	assert_true(set_has("ban4", "10.24.199.1 timeout 1h24m19s"));
	assert_true(set_has("ban6", "2001:db8:18:c6:: timeout 1h24m18s"));
	assert_int_equal(guard_writer_unban(w, &v[4999].net, 1), 0);
	assert_false(set_has("ban4", "10.24.199.1 "));
	assert_int_equal(guard_writer_blocklist(w, c, COUNT), 0);
	assert_true(set_has("block4_24", "10.24.199.0"));
	struct net_addr t = addr("192.0.2.5");
	assert_int_equal(guard_writer_trust(w, &t, 5000), 0);
	assert_true(set_has("trust4", "192.0.2.5 timeout 5s"));
	struct guard_nft_rate r = {.ports = {22, 23}, .nports = 2, .seconds = 5, .hitcount = 2};
	struct guard_nft_layout l = {.rates = &r, .nrates = 1, .v6_prefix = 48, .set_size = 10};
	assert_int_equal(guard_writer_setup(w, &l), 0);
	assert_int_equal(nft_list("table inet rampart"), 0);
	assert_non_null(strstr(listing, "tcp dport { 22, 23 }"));
	assert_non_null(strstr(listing, "ffff:ffff:ffff:: == @ban6"));
	assert_true(set_has("ban4", "10.0.1.1 "));
	assert_string_equal(guard_writer_error(w), "");
}

static void
test_writer_root(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_writer *w = NULL;
	struct guard_nft_layout l = layout1();

	fresh(&n);
	assert_int_equal(guard_writer_start(&l, NULL, &w), 0);
	assert_int_equal(nft_list("table inet rampart"), 0);
	writer_roundtrip(w);
	guard_writer_stop(w);
	guard_nft_free(n);
}

static unsigned long long
proc_field(pid_t pid, const char *key, int base)
{
	char path[64], line[256];
	unsigned long long v = ~0ull;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtoull(line + strlen(key), NULL, base);
	fclose(f);
	return v;
}

static void
test_writer_nobody(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_writer *w = NULL;
	struct guard_nft_layout l = layout1();
	struct passwd *pw = getpwnam("nobody");

	assert_non_null(pw);
	fresh(&n);
	/* an fd the daemon holds without O_CLOEXEC must not reach the writer */
	_cleanup_close_ int leak = open("/dev/null", O_RDONLY);
	assert_true(leak >= 0);
	assert_int_equal(guard_writer_start(&l, "nobody", &w), 0);
	pid_t pid = guard_writer_pid(w);
	assert_int_equal(proc_field(pid, "Uid:", 10), pw->pw_uid);
	assert_int_equal(proc_field(pid, "CapEff:", 16), 1ull << 12);
	assert_int_equal(proc_field(pid, "CapPrm:", 16), 1ull << 12);
	assert_int_equal(proc_field(pid, "CapBnd:", 16), 1ull << 12);
	assert_int_equal(proc_field(pid, "NoNewPrivs:", 10), 1);
	char path[64], target[64] = "";
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, leak);
	assert_true(readlink(path, target, sizeof(target) - 1) < 0 || !strstr(target, "/dev/null"));
	writer_roundtrip(w);
	guard_writer_stop(w);
	assert_int_equal(kill(pid, 0), -1);
	guard_nft_free(n);
}

static int32_t
raw_request(int fd, const void *msg, size_t len)
{
	int32_t rep[64];

	assert_int_equal(send(fd, msg, len, 0), (ssize_t)len);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_true(recv(fd, rep, sizeof(rep), 0) >= 4);
	return rep[0];
}

static void
test_writer_malformed(void **state)
{
	(void)state;
	struct guard_nft *n = NULL;
	struct guard_writer *w = NULL;
	struct guard_nft_layout l = layout1();

	fresh(&n);
	assert_int_equal(guard_writer_start(&l, "nobody", &w), 0);
	int fd = guard_writer_fd(w);
	/* too short; unknown op; a chunk without a first; a count past the cap */
	assert_int_equal(raw_request(fd, "xy", 2), -EBADMSG);
	uint32_t h[4] = {99, 3, 0, 0};
	assert_true(raw_request(fd, h, sizeof(h)) < 0);
	uint32_t h2[4] = {2, 2, 0, 0};
	assert_int_equal(raw_request(fd, h2, sizeof(h2)), -EPROTO);
	uint32_t h3[4] = {2, 3, 0, 0xffffffffu};
	assert_true(raw_request(fd, h3, sizeof(h3)) < 0);
	/* a ban whose record says 2 elements but carries 1 */
	uint8_t msg[16 + 32] = {0};
	uint32_t h4[4] = {2, 3, 2, 2};
	memcpy(msg, h4, sizeof(h4));
	msg[16] = 4;
	msg[17] = 32;
	msg[24] = 192;
	assert_int_equal(raw_request(fd, msg, sizeof(msg)), -EBADMSG);
	/* an IPv4 record with bytes past its 4; an unknown family */
	h4[2] = h4[3] = 1;
	memcpy(msg, h4, sizeof(h4));
	msg[24 + 4] = 1;
	assert_int_equal(raw_request(fd, msg, sizeof(msg)), -EINVAL);
	msg[24 + 4] = 0;
	msg[16] = 5;
	assert_int_equal(raw_request(fd, msg, sizeof(msg)), -EINVAL);
	/* well-formed records with bad values, through the API */
	struct guard_nft_elem bad[] = {
	    {{.addr = addr("10.1.2.3"), .prefix = 8}, 0},
	    {{.addr = addr("10.1.2.3"), .prefix = 32}, GUARD_NFT_TIMEOUT_MAX_MS + 1},
	    {{.addr = addr("2001:db8::1"), .prefix = 129}, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(guard_writer_ban(w, &bad[i], 1), -EINVAL);
	struct net_cidr timeout_on_unban = cidr("192.0.2.1");
	(void)timeout_on_unban;
	struct guard_nft_rate r0 = {.ports = {22}, .nports = 1, .seconds = 3, .hitcount = 30};
	struct guard_nft_layout lb = {.rates = &r0, .nrates = 1, .v6_prefix = 64, .set_size = 9};
	assert_int_equal(guard_writer_setup(w, &lb), -EINVAL);
	assert_false(set_has("ban4", "10."));
	/* and the writer still serves */
	struct guard_nft_elem good = {cidr("192.0.2.1"), 1000 * 60};
	assert_int_equal(guard_writer_ban(w, &good, 1), 0);
	assert_true(set_has("ban4", "192.0.2.1"));
	guard_writer_stop(w);
	guard_nft_free(n);
}

static void
test_writer_start_fails(void **state)
{
	(void)state;
	struct guard_writer *w = NULL;
	struct guard_nft_layout l = layout1();

	assert_int_equal(guard_writer_start(&l, "no-such-user-rampart", &w), -ENOENT);
	assert_null(w);
	l.set_size = 0;
	assert_int_equal(guard_writer_start(&l, NULL, &w), -EINVAL);
}

int
main(void)
{
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "test-guard_nft: unshare(CLONE_NEWNET): %s (run as root)\n",
		        strerror(errno));
		return 1;
	}
	bring_lo_up();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_setup_layout),      cmocka_unit_test(test_setup_largest),
	    cmocka_unit_test(test_ban_unban),         cmocka_unit_test(test_ban_overlap),
	    cmocka_unit_test(test_setup_old_table),   cmocka_unit_test(test_setup_keeps_state),
	    cmocka_unit_test(test_blocklist_replace), cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_packets_rate),      cmocka_unit_test(test_packets_ban),
	    cmocka_unit_test(test_writer_root),       cmocka_unit_test(test_writer_nobody),
	    cmocka_unit_test(test_writer_malformed),  cmocka_unit_test(test_writer_start_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
