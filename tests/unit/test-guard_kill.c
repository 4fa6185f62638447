/*
 * guard_kill and the writer's kill against the real kernel, in a network namespace of our own
 * (unshare at start: needs root, as in CI). Connections run over the namespace's loopback
 * between addresses the test adds to it: 10.77.0.0/24 and fd77::/64.
 */
#include "core/cleanup.h"
#include "core/net.h"
#include "guard/guard_kill.h"
#include "guard/guard_writer.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
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

struct conn {
	int cli, srv;
};

static struct net_cidr
cidr(const char *s)
{
	struct net_cidr c;

	assert_int_equal(net_cidr_parse(s, &c), 0);
	return c;
}

static struct net_addr
addr(const char *s, uint16_t port)
{
	struct net_addr a;

	assert_int_equal(net_addr_parse(s, NET_PORT_NONE, &a), 0);
	a.port = port;
	return a;
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

/* `ip addr add s/prefix dev lo nodad` over rtnetlink. */
static void
add_addr(const char *s, unsigned prefix)
{
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct net_addr a = addr(s, 0);
	size_t len = a.family == AF_INET ? 4 : 16;
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);

	assert_non_null(nl);
	assert_int_equal(mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID), 0);
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)a.family;
	ifa->ifa_prefixlen = (uint8_t)prefix;
	ifa->ifa_flags = IFA_F_NODAD;
	ifa->ifa_index = if_nametoindex("lo");
	mnl_attr_put(nlh, IFA_LOCAL, len, a.u.bytes);
	mnl_attr_put(nlh, IFA_ADDRESS, len, a.u.bytes);
	assert_true(mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) > 0);
	ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	assert_true(n > 0);
	int r = mnl_cb_run(buf, (size_t)n, 1, mnl_socket_get_portid(nl), NULL, NULL);
	if (r < 0)
		fail_msg("add %s/%u: %s", s, prefix, strerror(errno));
	mnl_socket_close(nl);
}

static int
tcp_socket(const struct net_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	assert_int_equal(net_addr_to_sockaddr(a, &ss, &len), 0);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	return fd;
}

/* A blocking listener on host, port 0; its port in *port. "::" is dual-stack. */
static int
listener(const char *host, uint16_t *port)
{
	struct net_addr a = addr(host, 0);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = tcp_socket(&a);

	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	assert_int_equal(net_addr_from_sockaddr((struct sockaddr *)&ss, len, &a), 0);
	*port = a.port;
	return fd;
}

/* A connection from src (bound first, so its address is the server's peer) to dst:port. */
static struct conn
connect_from(int lfd, const char *src, const char *dst, uint16_t port)
{
	struct net_addr s = addr(src, 0), d = addr(dst, port);
	struct sockaddr_storage ss;
	socklen_t len;
	struct conn c = {.cli = tcp_socket(&s)};

	assert_int_equal(net_addr_to_sockaddr(&d, &ss, &len), 0);
	assert_int_equal(connect(c.cli, (struct sockaddr *)&ss, len), 0);
	c.srv = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(c.srv >= 0);
	return c;
}

static void
conn_close(struct conn *c)
{
	close(c->cli);
	close(c->srv);
}

/* read(), waiting at most 5 s for something to read or an error: its result, errno in *err. */
static ssize_t
read_wait(int fd, int *err)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b;

	assert_int_equal(poll(&p, 1, 5000), 1);
	errno = 0;
	ssize_t n = read(fd, &b, 1);
	*err = errno;
	return n;
}

static void
one_byte(int from, int to)
{
	int err;

	assert_int_equal(write(from, "x", 1), 1);
	assert_int_equal(read_wait(to, &err), 1);
}

static void
assert_alive(const struct conn *c)
{
	one_byte(c->cli, c->srv);
	one_byte(c->srv, c->cli);
}

/* The server's socket was destroyed (ECONNABORTED) and the client got its reset. */
static void
assert_killed(const struct conn *c)
{
	int err;

	assert_int_equal(read_wait(c->srv, &err), -1);
	assert_int_equal(err, ECONNABORTED);
	assert_int_equal(read_wait(c->cli, &err), -1);
	assert_int_equal(err, ECONNRESET);
}

static size_t
kill1(const char *prefix)
{
	struct net_cidr c = cidr(prefix);
	size_t killed = 99;

	assert_int_equal(guard_kill(&c, 1, &killed), 0);
	return killed;
}

/* ---- guard_kill ---- */

static void
test_kill_v4(void **state)
{
	(void)state;
	uint16_t port;
	_cleanup_close_ int lfd = listener("10.77.0.1", &port);
	struct conn bad = connect_from(lfd, "10.77.0.2", "10.77.0.1", port);
	struct conn good = connect_from(lfd, "10.77.0.1", "10.77.0.1", port);

	/* only the server's socket has 10.77.0.2 as peer; the client's peer is 10.77.0.1 */
	assert_int_equal(kill1("10.77.0.2/32"), 1);
	assert_killed(&bad);
	assert_alive(&good);
	/* the listener was not touched */
	struct conn again = connect_from(lfd, "10.77.0.2", "10.77.0.1", port);
	assert_alive(&again);
	assert_int_equal(kill1("10.77.0.2"), 1);
	assert_killed(&again);
	conn_close(&bad);
	conn_close(&good);
	conn_close(&again);
}

static void
test_kill_v6(void **state)
{
	(void)state;
	uint16_t port;
	_cleanup_close_ int lfd = listener("fd77::1", &port);
	struct conn bad = connect_from(lfd, "fd77::2", "fd77::1", port);
	struct conn good = connect_from(lfd, "fd77::1", "fd77::1", port);

	assert_int_equal(kill1("fd77::2/128"), 1);
	assert_killed(&bad);
	assert_alive(&good);
	conn_close(&bad);
	conn_close(&good);
}

/* A dual-stack listener's IPv4 peers are ::ffff:a.b.c.d on IPv6 sockets: IPv4 prefixes. */
static void
test_kill_v4_mapped(void **state)
{
	(void)state;
	uint16_t port;
	_cleanup_close_ int lfd = listener("::", &port);
	struct conn bad = connect_from(lfd, "10.77.0.4", "10.77.0.1", port);
	struct conn good = connect_from(lfd, "10.77.0.1", "10.77.0.1", port);

	assert_int_equal(kill1("10.77.0.4/31"), 1);
	assert_killed(&bad);
	assert_alive(&good);
	conn_close(&bad);
	conn_close(&good);
}

static void
test_kill_several_prefixes(void **state)
{
	(void)state;
	uint16_t p4, p6;
	_cleanup_close_ int l4 = listener("10.77.0.1", &p4);
	_cleanup_close_ int l6 = listener("fd77::1", &p6);
	struct conn a = connect_from(l4, "10.77.0.5", "10.77.0.1", p4);
	struct conn b = connect_from(l4, "10.77.0.6", "10.77.0.1", p4);
	struct conn c = connect_from(l6, "fd77::6", "fd77::1", p6);
	struct conn d = connect_from(l6, "fd77::8", "fd77::1", p6);
	struct net_cidr v[] = {cidr("192.0.2.0/24"), cidr("10.77.0.5"), cidr("fd77::6/127")};
	size_t killed = 0;

	assert_int_equal(guard_kill(v, ARRAY_SIZE(v), &killed), 0);
	assert_int_equal(killed, 2);
	assert_killed(&a);
	assert_alive(&b);
	assert_killed(&c);
	assert_alive(&d);
	conn_close(&a);
	conn_close(&b);
	conn_close(&c);
	conn_close(&d);
}

static void
test_kill_nothing(void **state)
{
	(void)state;
	uint16_t port;
	_cleanup_close_ int lfd = listener("10.77.0.1", &port);
	struct conn c = connect_from(lfd, "10.77.0.8", "10.77.0.1", port);
	struct net_cidr v[] = {cidr("192.0.2.0/24"), cidr("2001:db8::/32"), cidr("10.77.0.9")};
	size_t killed = 99;

	assert_int_equal(guard_kill(v, ARRAY_SIZE(v), &killed), 0);
	assert_int_equal(killed, 0);
	assert_int_equal(guard_kill(v, 0, &killed), 0);
	assert_int_equal(killed, 0);
	assert_alive(&c);
	conn_close(&c);
}

/* Everything goes but the listeners, which take new connections after. */
static void
test_kill_all_but_listeners(void **state)
{
	(void)state;
	uint16_t p4, p6;
	_cleanup_close_ int l4 = listener("10.77.0.1", &p4);
	_cleanup_close_ int l6 = listener("fd77::1", &p6);
	struct conn a = connect_from(l4, "10.77.0.10", "10.77.0.1", p4);
	struct conn b = connect_from(l6, "fd77::10", "fd77::1", p6);
	struct net_cidr v[] = {cidr("0.0.0.0/0"), cidr("::/0")};
	size_t killed = 0;

	assert_int_equal(guard_kill(v, ARRAY_SIZE(v), &killed), 0);
	assert_true(killed >= 4); /* both ends of both, and what earlier tests left */
	int err;
	assert_int_equal(read_wait(a.cli, &err), -1);
	assert_int_equal(read_wait(b.srv, &err), -1);
	struct conn c = connect_from(l4, "10.77.0.10", "10.77.0.1", p4);
	struct conn d = connect_from(l6, "fd77::10", "fd77::1", p6);
	assert_alive(&c);
	assert_alive(&d);
	conn_close(&a);
	conn_close(&b);
	conn_close(&c);
	conn_close(&d);
}

static void
test_kill_invalid(void **state)
{
	(void)state;
	struct net_cidr ok = cidr("10.77.0.2");
	struct net_cidr host_bits = {.addr = addr("10.77.0.2", 0), .prefix = 24};
	struct net_cidr long4 = {.addr = addr("10.77.0.2", 0), .prefix = 33};
	struct net_cidr long6 = {.addr = addr("fd77::2", 0), .prefix = 129};
	struct net_cidr nofamily = {.prefix = 0};
	size_t killed = 99;

	assert_int_equal(guard_kill(&ok, 1, NULL), -EINVAL);
	assert_int_equal(guard_kill(NULL, 1, &killed), -EINVAL);
	assert_int_equal(killed, 0);
	assert_int_equal(guard_kill(&host_bits, 1, &killed), -EINVAL);
	assert_int_equal(guard_kill(&long4, 1, &killed), -EINVAL);
	assert_int_equal(guard_kill(&long6, 1, &killed), -EINVAL);
	assert_int_equal(guard_kill(&nofamily, 1, &killed), -EINVAL);
	_cleanup_free_ struct net_cidr *many = calloc(GUARD_KILL_CIDRS_MAX + 1, sizeof(*many));
	assert_non_null(many);
	for (size_t i = 0; i <= GUARD_KILL_CIDRS_MAX; i++)
		many[i] = ok;
	assert_int_equal(guard_kill(many, GUARD_KILL_CIDRS_MAX + 1, &killed), -EINVAL);
	assert_int_equal(guard_kill(many, GUARD_KILL_CIDRS_MAX, &killed), 0);
}

/* ---- through the writer ---- */

static struct guard_nft_rate rate22 = {.ports = {22}, .nports = 1, .seconds = 3, .hitcount = 4};

static struct guard_writer *
writer(const char *user)
{
	struct guard_nft_layout l = {
	    .rates = &rate22, .nrates = 1, .v6_prefix = 64, .set_size = 65535};
	struct guard_writer *w = NULL;

	assert_int_equal(guard_writer_start(&l, user, &w), 0);
	return w;
}

static void
writer_kills(const char *user, const char *src4, const char *src6)
{
	struct guard_writer *w = writer(user);
	uint16_t p4, p6;
	_cleanup_close_ int l4 = listener("10.77.0.1", &p4);
	_cleanup_close_ int l6 = listener("fd77::1", &p6);
	struct conn a = connect_from(l4, src4, "10.77.0.1", p4);
	struct conn b = connect_from(l6, src6, "fd77::1", p6);
	struct conn good = connect_from(l4, "10.77.0.1", "10.77.0.1", p4);
	struct net_cidr v[] = {cidr(src4), cidr(src6)};
	size_t killed = 99;

	assert_int_equal(guard_writer_kill(w, v, ARRAY_SIZE(v), &killed), 0);
	assert_int_equal(killed, 2);
	assert_string_equal(guard_writer_error(w), "");
	assert_killed(&a);
	assert_killed(&b);
	assert_alive(&good);
	assert_int_equal(guard_writer_kill(w, v, ARRAY_SIZE(v), &killed), 0);
	assert_int_equal(killed, 0);
	assert_int_equal(guard_writer_kill(w, NULL, 0, &killed), 0);
	assert_int_equal(killed, 0);
	/* the other ops still answer 0 */
	assert_int_equal(guard_writer_unban(w, v, 1), 0);
	guard_writer_stop(w);
	conn_close(&a);
	conn_close(&b);
	conn_close(&good);
}

static void
test_writer_kill_root(void **state)
{
	(void)state;
	writer_kills(NULL, "10.77.0.11", "fd77::11");
}

/* CAP_NET_ADMIN alone is enough for SOCK_DESTROY. */
static void
test_writer_kill_nobody(void **state)
{
	(void)state;
	writer_kills("nobody", "10.77.0.12", "fd77::12");
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
test_writer_kill_malformed(void **state)
{
	(void)state;
	struct guard_writer *w = writer(NULL);
	int fd = guard_writer_fd(w);
	uint16_t port;
	_cleanup_close_ int lfd = listener("10.77.0.1", &port);
	struct conn c = connect_from(lfd, "10.77.0.13", "10.77.0.1", port);
	size_t killed = 99;

	/* OP_KILL (7), one 10.77.0.13/32 record: carrying a timeout, then a prefix of 33 */
	uint8_t msg[16 + 32] = {0};
	uint32_t h[4] = {7, 3, 1, 1};
	memcpy(msg, h, sizeof(h));
	msg[16] = 4;
	msg[17] = 32;
	memcpy(msg + 24, (uint8_t[]){10, 77, 0, 13}, 4);
	msg[40] = 1;
	assert_int_equal(raw_request(fd, msg, sizeof(msg)), -EINVAL);
	msg[40] = 0;
	msg[17] = 33;
	assert_int_equal(raw_request(fd, msg, sizeof(msg)), -EINVAL);
	/* more prefixes than a kill takes; a record count that does not match the body */
	uint32_t big[4] = {7, 3, 0, GUARD_KILL_CIDRS_MAX + 1};
	assert_int_equal(raw_request(fd, big, sizeof(big)), -EINVAL);
	uint32_t two[4] = {7, 3, 2, 2};
	msg[17] = 32;
	memcpy(msg, two, sizeof(two));
	assert_int_equal(raw_request(fd, msg, sizeof(msg)), -EBADMSG);
	/* through the API: host bits (refused by the child), too many, no count */
	struct net_cidr host_bits = {.addr = addr("10.77.0.13", 0), .prefix = 24};
	assert_int_equal(guard_writer_kill(w, &host_bits, 1, &killed), -EINVAL);
	assert_int_equal(killed, 0);
	assert_int_equal(guard_writer_kill(w, &host_bits, GUARD_KILL_CIDRS_MAX + 1, &killed),
	                 -EINVAL);
	assert_int_equal(guard_writer_kill(w, &host_bits, 1, NULL), -EINVAL);
	assert_alive(&c);
	/* and the writer still kills, with a well-formed raw request too */
	memcpy(msg, h, sizeof(h));
	assert_int_equal(raw_request(fd, msg, sizeof(msg)), 1);
	assert_killed(&c);
	guard_writer_stop(w);
	conn_close(&c);
}

/* ---- a kernel without CONFIG_INET_DIAG_DESTROY ---- */

static void
test_kill_unsupported(void **state)
{
	(void)state;
	uint16_t port;
	_cleanup_close_ int lfd = listener("10.77.0.1", &port);
	struct conn c = connect_from(lfd, "10.77.0.2", "10.77.0.1", port);
	struct net_cidr v = cidr("10.77.0.2");
	size_t killed = 99;

	assert_int_equal(guard_kill(&v, 1, &killed), -EOPNOTSUPP);
	assert_int_equal(killed, 0);
	assert_alive(&c);
	conn_close(&c);
}

/* Only a kernel config that says so (readable and without the option) means "off". */
static bool
destroy_off(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd),
	         "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)");
	FILE *f = popen(cmd, "r");
	char line[256];
	bool seen = false, on = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		seen = true;
		on = on || strcmp(line, "CONFIG_INET_DIAG_DESTROY=y\n") == 0;
	}
	pclose(f);
	return seen && !on;
}

int
main(void)
{
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "test-guard_kill: unshare(CLONE_NEWNET): %s (run as root)\n",
		        strerror(errno));
		return 1;
	}
	bring_lo_up();
	add_addr("10.77.0.1", 24);
	add_addr("fd77::1", 64);
	for (int i = 2; i <= 13; i++) {
		char s[32];
		snprintf(s, sizeof(s), "10.77.0.%d", i);
		add_addr(s, 24);
		snprintf(s, sizeof(s), "fd77::%d", i);
		add_addr(s, 64);
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill_v4),
	    cmocka_unit_test(test_kill_v6),
	    cmocka_unit_test(test_kill_v4_mapped),
	    cmocka_unit_test(test_kill_several_prefixes),
	    cmocka_unit_test(test_kill_nothing),
	    cmocka_unit_test(test_kill_all_but_listeners),
	    cmocka_unit_test(test_kill_invalid),
	    cmocka_unit_test(test_writer_kill_root),
	    cmocka_unit_test(test_writer_kill_nobody),
	    cmocka_unit_test(test_writer_kill_malformed),
	};
	const struct CMUnitTest off[] = {
	    cmocka_unit_test(test_kill_unsupported),
	    cmocka_unit_test(test_kill_invalid),
	};
	if (destroy_off()) {
		fprintf(stderr, "test-guard_kill: CONFIG_INET_DIAG_DESTROY is off: -EOPNOTSUPP\n");
		return cmocka_run_group_tests(off, NULL, NULL);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
