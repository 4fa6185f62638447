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
	assert_true(set_has("bannet4", "10.0.0.0/8 timeout 1h"));
	assert_true(set_has("bannet6", "2001:db8:100::/40"));
	/* a new ban refreshes the timeout */
	struct guard_nft_elem again = {cidr("192.0.2.1"), 7200000};
	assert_int_equal(guard_nft_ban(n, &again, 1), 0);
	assert_true(set_has("ban4", "192.0.2.1 timeout 2h"));
	/* overlap with a banned interval */
	struct guard_nft_elem inner = {cidr("10.1.0.0/16"), 0};
	assert_int_equal(guard_nft_ban(n, &inner, 1), -EEXIST);
	assert_non_null(strstr(guard_nft_error(n), "overlaps"));

	struct net_cidr un[] = {cidr("192.0.2.1"), cidr("203.0.113.9"),
	                        cidr("2001:db8:1:2:ffff::1"), cidr("10.0.0.0/8")};
	assert_int_equal(guard_nft_unban(n, un, ARRAY_SIZE(un)), 0);
	assert_false(set_has("ban4", "192.0.2.1 "));
	assert_true(set_has("ban4", "198.51.100.7"));
	assert_false(set_has("ban6", "2001:db8:1:2::"));
	assert_false(set_has("bannet4", "10.0.0.0/8"));
	assert_int_equal(guard_nft_unban(n, NULL, 0), 0);
	assert_int_equal(guard_nft_trust(n, &(struct net_addr){0}, 1000), -EINVAL);
	struct net_addr t = addr("2001:db8::77");
	assert_int_equal(guard_nft_trust(n, &t, 86400000), 0);
	assert_int_equal(guard_nft_trust(n, &t, 3600000), 0);
	assert_true(set_has("trust6", "2001:db8::77 timeout 1h"));
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
	    cmocka_unit_test(test_ban_unban),         cmocka_unit_test(test_setup_keeps_state),
	    cmocka_unit_test(test_blocklist_replace), cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_packets_rate),      cmocka_unit_test(test_packets_ban),
	    cmocka_unit_test(test_writer_root),       cmocka_unit_test(test_writer_nobody),
	    cmocka_unit_test(test_writer_malformed),  cmocka_unit_test(test_writer_start_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
