/* Unit tests for src/port: the pure parts (arguments, /proc text, cgroups, filters, JSON). */
#include "core/buf.h"
#include "port/port_args.h"
#include "port/port_cgroup.h"
#include "port/port_diag.h"
#include "port/port_fallback.h"
#include "port/port_proc.h"
#include "port/port_scan.h"
#include "port/port_sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static struct net_addr
addr_of(const char *s)
{
	struct net_addr a;
	if (net_addr_parse(s, NET_PORT_OPTIONAL, &a) != 0)
		fail_msg("net_addr_parse(\"%s\")", s);
	return a;
}

static void
test_args_proto(void **state)
{
	unsigned p = 0;
	(void)state;
	assert_int_equal(port_args_proto("tcp", &p), 0);
	assert_int_equal(p, PORT_PROTO_TCP);
	assert_int_equal(port_args_proto("udp", &p), 0);
	assert_int_equal(p, PORT_PROTO_UDP);
	assert_int_equal(port_args_proto("unix", &p), 0);
	assert_int_equal(p, PORT_PROTO_UNIX);
	assert_int_equal(port_args_proto("TCP", &p), -EINVAL);
	assert_int_equal(port_args_proto("sctp", &p), -EINVAL);
	assert_int_equal(port_args_proto("", &p), -EINVAL);
}

static void
test_args_target_port(void **state)
{
	struct port_target t[2] = {0};
	(void)state;
	assert_int_equal(port_args_target("80", t), 1);
	assert_int_equal(t[0].lo, 80);
	assert_int_equal(t[0].hi, 80);
	assert_int_equal(t[0].addr.family, 0);
	assert_int_equal(port_args_target(":4444", t), 1);
	assert_int_equal(t[0].lo, 4444);
	assert_int_equal(port_args_target("65535", t), 1);
	assert_int_equal(t[0].lo, 65535);
	assert_int_equal(port_args_target("1", t), 1);
	assert_int_equal(t[0].lo, 1);
	assert_int_equal(port_args_target("8000-8100", t), 1);
	assert_int_equal(t[0].lo, 8000);
	assert_int_equal(t[0].hi, 8100);
	assert_int_equal(port_args_target("22-22", t), 1);
	assert_int_equal(t[0].hi, 22);
}

static void
test_args_target_bad(void **state)
{
	struct port_target t[2] = {0};
	(void)state;
	assert_int_equal(port_args_target("0", t), -ERANGE);
	assert_int_equal(port_args_target("70000", t), -ERANGE);
	assert_int_equal(port_args_target("65536", t), -ERANGE);
	assert_int_equal(port_args_target("-5", t), -ERANGE);
	assert_int_equal(port_args_target("080", t), -EILSEQ);
	assert_int_equal(port_args_target("09001", t), -EILSEQ);
	assert_int_equal(port_args_target("127.0.0.1:09001", t), -EILSEQ);
	assert_int_equal(port_args_target("99999999999999999999", t), -ERANGE);
	assert_int_equal(port_args_target("abc", t), -EINVAL);
	assert_int_equal(port_args_target("", t), -EINVAL);
	assert_int_equal(port_args_target("80x", t), -EINVAL);
	assert_int_equal(port_args_target("1.2.3.4:abc", t), -EINVAL);
	assert_int_equal(port_args_target("::1", t), -EDESTADDRREQ);
	assert_int_equal(port_args_target("10.0.0.1", t), -EDESTADDRREQ);
	assert_int_equal(port_args_target("localhost", t), -EDESTADDRREQ);
	assert_int_equal(port_args_target("1.2.3.4:0", t), -ERANGE);
	assert_int_equal(port_args_target("1.2.3.4:70000", t), -ERANGE);
	assert_int_equal(port_args_target("[::1]:70000", t), -ERANGE);
	assert_int_equal(port_args_target("1.2.3.4:", t), -EINVAL);
	assert_int_equal(port_args_target("90-80", t), -EDOM);
	assert_int_equal(port_args_target("1-65535", t), -E2BIG);
	assert_int_equal(port_args_target("80-", t), -EINVAL);
	assert_int_equal(port_args_target("80-0", t), -ERANGE);
	assert_int_equal(port_args_target("example.com:80", t), -EADDRNOTAVAIL);
	assert_int_equal(port_args_target("my-host:80", t), -EADDRNOTAVAIL);
	assert_int_equal(t[0].lo, 0); /* untouched by failures */
}

static void
test_args_target_address(void **state)
{
	struct port_target t[2] = {0};
	char buf[NET_ADDR_STRLEN];
	(void)state;
	assert_int_equal(port_args_target("127.0.0.1:8080", t), 1);
	assert_int_equal(t[0].lo, 8080);
	assert_int_equal(t[0].addr.family, AF_INET);
	assert_int_equal(net_addr_format(&t[0].addr, false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "127.0.0.1");
	assert_int_equal(port_args_target("[::1]:443", t), 1);
	assert_int_equal(t[0].lo, 443);
	assert_int_equal(t[0].addr.family, AF_INET6);
	assert_int_equal(port_args_target("[::1]:443-445", t), 1);
	assert_int_equal(t[0].hi, 445);
	/* localhost is what /etc/hosts says: both loopback addresses, no lookup */
	assert_int_equal(port_args_target("localhost:9001", t), 2);
	assert_int_equal(t[0].addr.family, AF_INET);
	assert_int_equal(t[1].addr.family, AF_INET6);
	assert_int_equal(t[0].lo, 9001);
	assert_int_equal(t[1].lo, 9001);
	assert_int_equal(net_addr_format(&t[1].addr, false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "::1");
}

static void
test_args_signal(void **state)
{
	int sig = 0;
	(void)state;
	assert_int_equal(port_args_signal("TERM", &sig), 0);
	assert_int_equal(sig, SIGTERM);
	assert_int_equal(port_args_signal("SIGKILL", &sig), 0);
	assert_int_equal(sig, SIGKILL);
	assert_int_equal(port_args_signal("hup", &sig), 0);
	assert_int_equal(sig, SIGHUP);
	assert_int_equal(port_args_signal("sigusr1", &sig), 0);
	assert_int_equal(sig, SIGUSR1);
	assert_int_equal(port_args_signal("9", &sig), 0);
	assert_int_equal(sig, 9);
	assert_int_equal(port_args_signal("0", &sig), -EINVAL);
	assert_int_equal(port_args_signal("09", &sig), -EINVAL);
	assert_int_equal(port_args_signal("65", &sig), -EINVAL);
	assert_int_equal(port_args_signal("99999999999", &sig), -EINVAL);
	assert_int_equal(port_args_signal("FOO", &sig), -EINVAL);
	assert_int_equal(port_args_signal("SIG", &sig), -EINVAL);
	assert_int_equal(port_args_signal("", &sig), -EINVAL);
	assert_int_equal(port_args_signal("9x", &sig), -EINVAL);
}

/* A /proc/net line built the way the kernel prints it (%08X of each host-order word). */
static void
v4_line(char *buf, size_t len, const char *addr, unsigned port, unsigned state, unsigned uid,
        unsigned long inode)
{
	struct in_addr a;
	inet_pton(AF_INET, addr, &a);
	snprintf(buf, len,
	         "   3: %08X:%04X 00000000:0000 %02X 00000000:00000000 00:00000000 00000000 %5u "
	         "       0 %lu 1 0000000000000000 100 0 0 10 0",
	         a.s_addr, port, state, uid, inode);
}

static void
test_fallback_v4(void **state)
{
	char line[PORT_FALLBACK_LINE_MAX], buf[NET_ADDR_STRLEN];
	struct port_sock s = {0};
	(void)state;
	v4_line(line, sizeof(line), "127.0.0.1", 8080, TCP_LISTEN, 1000, 123456);
	assert_int_equal(port_fallback_parse_line(line, AF_INET, &s), 0);
	assert_int_equal(net_addr_format(&s.local, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "127.0.0.1:8080");
	assert_int_equal(s.state, TCP_LISTEN);
	assert_int_equal(s.uid, 1000);
	assert_int_equal(s.inode, 123456);
	assert_int_equal(s.remote.port, 0);
}

static void
test_fallback_literal(void **state)
{
	struct port_sock s = {0};
	char buf[NET_ADDR_STRLEN];
	(void)state;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const char *tcp = "   0: 0100007F:0016 0100007F:C350 01 00000000:00000000 02:000A7F1D "
	                  "00000000     0        0 4242 2 0000000000000000 20 4 30 10 -1";
	assert_int_equal(port_fallback_parse_line(tcp, AF_INET, &s), 0);
	assert_int_equal(net_addr_format(&s.local, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "127.0.0.1:22");
	assert_int_equal(net_addr_format(&s.remote, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "127.0.0.1:50000");
	assert_int_equal(s.state, TCP_ESTABLISHED);
	assert_int_equal(s.inode, 4242);
	const char *v6 = "   1: 00000000000000000000000000000000:0035 "
	                 "00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 "
	                 "00000000   101        0 777 2 0000000000000000 0";
	assert_int_equal(port_fallback_parse_line(v6, AF_INET6, &s), 0);
	assert_int_equal(net_addr_format(&s.local, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[::]:53");
	assert_int_equal(s.state, TCP_CLOSE);
	assert_int_equal(s.uid, 101);
	assert_int_equal(s.inode, 777);
	const char *mapped =
	    "   2: 0000000000000000FFFF00000100007F:1F90 "
	    "00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 "
	    "00000000     0        0 99 1 0000000000000000 100 0 0 10 0";
	assert_int_equal(port_fallback_parse_line(mapped, AF_INET6, &s), 0);
	assert_int_equal(net_addr_format(&s.local, true, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[::ffff:127.0.0.1]:8080");
#else
	skip();
#endif
}

static void
test_fallback_bad(void **state)
{
	struct port_sock s = {0};
	char line[PORT_FALLBACK_LINE_MAX];
	(void)state;
	const char *header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
	                     "retrnsmt   uid  timeout inode";
	assert_int_equal(port_fallback_parse_line(header, AF_INET, &s), -EINVAL);
	assert_int_equal(port_fallback_parse_line("", AF_INET, &s), -EINVAL);
	assert_int_equal(port_fallback_parse_line("   0: 0100007F:0016", AF_INET, &s), -EINVAL);
	v4_line(line, sizeof(line), "127.0.0.1", 22, TCP_LISTEN, 0, 1);
	/* the right text with the wrong family */
	assert_int_equal(port_fallback_parse_line(line, AF_INET6, &s), -EINVAL);
	assert_int_equal(port_fallback_parse_line(line, AF_UNIX, &s), -EINVAL);
	const char *cut = "   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 "
	                  "00000000     0";
	assert_int_equal(port_fallback_parse_line(cut, AF_INET, &s), -EINVAL);
	const char *bad_hex = "   0: 0100007G:0016 00000000:0000 0A 00000000:00000000 00:00000000 "
	                      "00000000     0        0 1 1";
	assert_int_equal(port_fallback_parse_line(bad_hex, AF_INET, &s), -EINVAL);
	const char *big_uid = "   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 "
	                      "00000000 4294967296 0 1 1";
	assert_int_equal(port_fallback_parse_line(big_uid, AF_INET, &s), -EINVAL);
}

static void
assert_unit(const char *cgroup, const char *want)
{
	char out[256];
	assert_int_equal(port_cgroup_unit(cgroup, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void
test_cgroup_units(void **state)
{
	(void)state;
	assert_unit("0::/system.slice/ssh.service\n", "ssh.service");
	assert_unit("0::/init.scope\n", "init.scope");
	assert_unit("0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope");
	assert_unit("0::/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service\n",
	            "user@1000.service/foo.service");
	assert_unit("0::/user.slice/user-1000.slice/user@1000.service\n", "user@1000.service");
	assert_unit("0::/\n", "");
	assert_unit("0::/system.slice\n", "");
	assert_unit("0::/system.slice/postfix@-.service", "postfix@-.service");
}

static void
test_cgroup_containers(void **state)
{
	(void)state;
	const char *id = "4f1c9e2b7a3d5e6f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f";
	char line[256];
	snprintf(line, sizeof(line), "0::/system.slice/docker-%s.scope\n", id);
	assert_unit(line, "docker:4f1c9e2b7a3d");
	snprintf(line, sizeof(line), "0::/docker/%s\n", id);
	assert_unit(line, "docker:4f1c9e2b7a3d");
	snprintf(line, sizeof(line), "0::/machine.slice/libpod-%s.scope/container\n", id);
	assert_unit(line, "podman:4f1c9e2b7a3d");
	snprintf(line, sizeof(line),
	         "0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-%s.scope\n", id);
	assert_unit(line, "containerd:4f1c9e2b7a3d");
	snprintf(line, sizeof(line), "0::/kubepods.slice/crio-%s.scope\n", id);
	assert_unit(line, "cri-o:4f1c9e2b7a3d");
	assert_unit("0::/lxc.payload.web1/system.slice/nginx.service\n", "lxc:web1");
	assert_unit("0::/lxc/db/init.scope\n", "lxc:db");
	/* not container ids: too short, upper case */
	assert_unit("0::/system.slice/docker-abc.scope\n", "docker-abc.scope");
	assert_unit("0::/docker/ABCDEF0123456789\n", "");
}

static void
test_cgroup_v1_and_bad(void **state)
{
	char out[8];
	(void)state;
	assert_unit("12:pids:/system.slice/cron.service\n"
	            "1:name=systemd:/system.slice/cron.service\n",
	            "cron.service");
	/* a v2 line wins over v1 lines */
	assert_unit("1:name=systemd:/system.slice/a.service\n0::/system.slice/b.service\n",
	            "b.service");
	assert_int_equal(port_cgroup_unit("", out, sizeof(out)), -EINVAL);
	assert_int_equal(port_cgroup_unit("3:cpu:/foo\n", out, sizeof(out)), -EINVAL);
	assert_int_equal(port_cgroup_unit("0::/system.slice/ssh.service", out, sizeof(out)),
	                 -ENOBUFS);
	assert_int_equal(port_cgroup_unit("0::/x.service", out, 0), -ENOBUFS);
}

static void
test_socket_link(void **state)
{
	uint64_t ino = 0;
	(void)state;
	assert_int_equal(port_proc_socket_link("socket:[12345]", 14, &ino), 0);
	assert_int_equal(ino, 12345);
	assert_int_equal(port_proc_socket_link("socket:[4294967296]", 19, &ino), 0);
	assert_int_equal(ino, 4294967296ull);
	assert_int_equal(port_proc_socket_link("socket:[]", 9, &ino), -EINVAL);
	assert_int_equal(port_proc_socket_link("socket:[12", 10, &ino), -EINVAL);
	assert_int_equal(port_proc_socket_link("socket:[1x]", 11, &ino), -EINVAL);
	assert_int_equal(port_proc_socket_link("pipe:[12345]", 12, &ino), -EINVAL);
	assert_int_equal(port_proc_socket_link("/dev/null", 9, &ino), -EINVAL);
	assert_int_equal(port_proc_socket_link("socket:[99999999999999999999999]", 32, &ino),
	                 -EINVAL);
	/* only len bytes count */
	assert_int_equal(port_proc_socket_link("socket:[7]garbage", 10, &ino), 0);
	assert_int_equal(ino, 7);
}

static void
test_cmdline_and_status(void **state)
{
	char cmd[] = "python3\0-m\0http.server\0\0";
	uint32_t uid = 0;
	(void)state;
	port_proc_cmdline_join(cmd, sizeof(cmd) - 1);
	assert_string_equal(cmd, "python3 -m http.server");
	char nl[] = "sh\0-c\0a\nb\tc\0";
	port_proc_cmdline_join(nl, sizeof(nl) - 1);
	assert_string_equal(nl, "sh -c a\nb\tc");
	char one[] = "sshd: /usr/sbin/sshd -D [listener]";
	port_proc_cmdline_join(one, strlen(one));
	assert_string_equal(one, "sshd: /usr/sbin/sshd -D [listener]");
	assert_int_equal(port_proc_status_uid("Name:\tx\nUid:\t1000\t65534\t1000\t1000\n", &uid),
	                 0);
	assert_int_equal(uid, 65534);
	assert_int_equal(port_proc_status_uid("Uid:\t0\t0\t0\t0\n", &uid), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(port_proc_status_uid("Name:\tx\nGid:\t0\t0\n", &uid), -EINVAL);
	assert_int_equal(port_proc_status_uid("Uid:\tx\n", &uid), -EINVAL);
}

static struct port_sock
sock_of(uint8_t proto, const char *addr, uint8_t st)
{
	struct port_sock s = {.proto = proto, .state = st, .local = addr_of(addr)};
	return s;
}

static void
test_filter_states(void **state)
{
	struct port_filter f = {.protos = PORT_PROTO_ALL, .ntargets = 1, .targets = {{80, 80}}};
	(void)state;
	struct port_sock tl = sock_of(PORT_PROTO_TCP, "0.0.0.0:80", TCP_LISTEN);
	struct port_sock te = sock_of(PORT_PROTO_TCP, "127.0.0.1:80", TCP_ESTABLISHED);
	struct port_sock uc = sock_of(PORT_PROTO_UDP, "0.0.0.0:80", TCP_CLOSE);
	struct port_sock ue = sock_of(PORT_PROTO_UDP, "127.0.0.1:80", TCP_ESTABLISHED);
	struct port_sock other = sock_of(PORT_PROTO_TCP, "0.0.0.0:81", TCP_LISTEN);
	assert_true(port_filter_match(&f, &tl));
	assert_false(port_filter_match(&f, &te));
	assert_true(port_filter_match(&f, &uc));
	assert_false(port_filter_match(&f, &ue));
	assert_false(port_filter_match(&f, &other));
	f.all_states = true;
	assert_true(port_filter_match(&f, &te));
	assert_true(port_filter_match(&f, &ue));
	f.protos = PORT_PROTO_UDP;
	assert_false(port_filter_match(&f, &tl));
	assert_true(port_filter_match(&f, &uc));
	f.ntargets = 0;
	f.protos = PORT_PROTO_TCP;
	assert_true(port_filter_match(&f, &other));
	/* several targets: any one matches; a range takes its ends */
	f.ntargets = 2;
	f.targets[0] = (struct port_target){.lo = 79, .hi = 80};
	f.targets[1] = (struct port_target){.lo = 1000, .hi = 1000};
	assert_true(port_filter_match(&f, &tl));
	assert_false(port_filter_match(&f, &other));
	f.targets[1].hi = 1001;
	f.targets[1].lo = 81;
	assert_true(port_filter_match(&f, &other));
	/* a process's sockets: every state, only those inodes */
	uint32_t inodes[] = {5, 9};
	f = (struct port_filter){.protos = PORT_PROTO_ALL, .inodes = inodes, .ninodes = 2};
	te.inode = 9;
	tl.inode = 6;
	assert_true(port_filter_match(&f, &te));
	assert_false(port_filter_match(&f, &tl));
	assert_int_equal(port_filter_states(&(struct port_filter){0}, PORT_PROTO_TCP),
	                 1u << TCP_LISTEN);
	assert_int_equal(port_filter_states(&(struct port_filter){0}, PORT_PROTO_UDP),
	                 1u << TCP_CLOSE);
}

static void
test_filter_address(void **state)
{
	struct port_filter f = {.protos = PORT_PROTO_ALL, .ntargets = 1, .targets = {{80, 80}}};
	(void)state;
	struct port_sock any4 = sock_of(PORT_PROTO_TCP, "0.0.0.0:80", TCP_LISTEN);
	struct port_sock any6 = sock_of(PORT_PROTO_TCP, "[::]:80", TCP_LISTEN);
	struct port_sock lo4 = sock_of(PORT_PROTO_TCP, "127.0.0.1:80", TCP_LISTEN);
	struct port_sock lo6 = sock_of(PORT_PROTO_TCP, "[::1]:80", TCP_LISTEN);
	struct port_sock mapped = sock_of(PORT_PROTO_TCP, "[::ffff:127.0.0.1]:80", TCP_LISTEN);
	struct port_sock other4 = sock_of(PORT_PROTO_TCP, "10.1.2.3:80", TCP_LISTEN);

	f.targets[0].addr = addr_of("127.0.0.1:80");
	assert_true(port_filter_match(&f, &any4));
	assert_true(port_filter_match(&f, &any6)); /* dual-stack wildcard takes IPv4 too */
	assert_true(port_filter_match(&f, &lo4));
	assert_false(port_filter_match(&f, &lo6));
	assert_true(port_filter_match(&f, &mapped));
	assert_false(port_filter_match(&f, &other4));
	any6.v6only = true;
	assert_false(port_filter_match(&f, &any6));

	f.targets[0].addr = addr_of("[::1]:80");
	assert_false(port_filter_match(&f, &any4));
	assert_true(port_filter_match(&f, &any6));
	assert_true(port_filter_match(&f, &lo6));
	assert_false(port_filter_match(&f, &lo4));
	assert_false(port_filter_match(&f, &mapped));

	f.targets[0].addr = addr_of("[::ffff:127.0.0.1]:80");
	assert_true(port_filter_match(&f, &lo4));
	assert_true(port_filter_match(&f, &mapped));
}

static void
test_state_names(void **state)
{
	(void)state;
	assert_string_equal(port_sock_state_name(TCP_LISTEN), "LISTEN");
	assert_string_equal(port_sock_state_name(TCP_ESTABLISHED), "ESTAB");
	assert_string_equal(port_sock_state_name(TCP_CLOSE), "UNCONN");
	assert_string_equal(port_sock_state_name(TCP_TIME_WAIT), "TIME-WAIT");
	assert_string_equal(port_sock_state_name(0), "UNKNOWN");
	assert_string_equal(port_sock_state_name(200), "UNKNOWN");
	assert_string_equal(port_sock_proto_name(PORT_PROTO_TCP), "tcp");
	assert_string_equal(port_sock_proto_name(PORT_PROTO_UDP), "udp");
	assert_string_equal(port_sock_proto_name(PORT_PROTO_UNIX), "unix");
	assert_string_equal(port_sock_type_name(SOCK_SEQPACKET), "seqpacket");
}

static void
test_sort(void **state)
{
	struct port_sock_list l = {0};
	char buf[NET_ADDR_STRLEN];
	(void)state;
	const char *in[] = {"[::]:22", "10.0.0.1:22", "0.0.0.0:80", "0.0.0.0:22"};
	for (size_t i = 0; i < 4; i++) {
		struct port_sock s = sock_of(PORT_PROTO_TCP, in[i], TCP_LISTEN);
		assert_int_equal(port_sock_list_add(&l, &s), 0);
	}
	struct port_sock u = sock_of(PORT_PROTO_UDP, "0.0.0.0:1", TCP_CLOSE);
	assert_int_equal(port_sock_list_add(&l, &u), 0);
	port_sock_list_sort(&l);
	const char *want[] = {"0.0.0.0:22", "0.0.0.0:80", "10.0.0.1:22", "[::]:22", "0.0.0.0:1"};
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(net_addr_format(&l.v[i].local, true, buf, sizeof(buf)), 0);
		assert_string_equal(buf, want[i]);
	}
	port_sock_list_free(&l);
	assert_null(l.v);
	port_sock_list_free(NULL);
}

static void
test_owner_find(void **state)
{
	struct port_owner v[] = {{5, 10, 3}, {7, 10, 4}, {7, 11, 4}, {9, 1, 1}};
	struct port_owner_list l = {.v = v, .n = 4, .cap = 4};
	size_t n = 99;
	(void)state;
	const struct port_owner *o = port_owner_find(&l, 7, &n);
	assert_int_equal(n, 2);
	assert_ptr_equal(o, &v[1]);
	assert_non_null(port_owner_find(&l, 5, &n));
	assert_int_equal(n, 1);
	assert_null(port_owner_find(&l, 6, &n));
	assert_int_equal(n, 0);
	assert_null(port_owner_find(&l, 10, &n));
	struct port_owner_list empty = {0};
	assert_null(port_owner_find(&empty, 1, &n));
}

static void
test_bytecode(void **state)
{
	struct inet_diag_bc_op ops[4];
	(void)state;
	assert_int_equal(sizeof(ops), PORT_DIAG_BYTECODE_LEN);
	port_diag_bytecode(4444, 4450, ops);
	assert_int_equal(ops[0].code, INET_DIAG_BC_S_GE);
	assert_int_equal(ops[0].yes, 8);
	assert_int_equal(ops[0].no, 20); /* past the end: reject */
	assert_int_equal(ops[1].no, 4444);
	assert_int_equal(ops[2].code, INET_DIAG_BC_S_LE);
	assert_int_equal(ops[2].yes, 8); /* exactly the end: accept */
	assert_int_equal(ops[2].no, 12);
	assert_int_equal(ops[3].no, 4450);
}

/* The scan over the real /proc finds this process's own sockets, with one thread or several. */
static void
test_filter_unix(void **state)
{
	struct port_filter f = {.protos = PORT_PROTO_UNIX};
	char name[] = "/run/x.sock";
	struct port_sock l = {.proto = PORT_PROTO_UNIX, .state = TCP_LISTEN, .name = name};
	struct port_sock bound = {.proto = PORT_PROTO_UNIX, .state = TCP_CLOSE, .name = name};
	struct port_sock anon = {.proto = PORT_PROTO_UNIX, .state = TCP_CLOSE};
	struct port_sock conn = {.proto = PORT_PROTO_UNIX, .state = TCP_ESTABLISHED};
	struct port_sock tcp = sock_of(PORT_PROTO_TCP, "0.0.0.0:80", TCP_LISTEN);
	(void)state;
	/* listening, and bound datagram sockets as UDP; unbound and connected ones with --all */
	assert_true(port_filter_match(&f, &l));
	assert_true(port_filter_match(&f, &bound));
	assert_false(port_filter_match(&f, &anon));
	assert_false(port_filter_match(&f, &conn));
	assert_false(port_filter_match(&f, &tcp));
	f.all_states = true;
	assert_true(port_filter_match(&f, &anon));
	assert_true(port_filter_match(&f, &conn));
	/* a path target matches that name only; ports never match unix sockets */
	f.ntargets = 1;
	f.targets[0] = (struct port_target){.path = "/run/x.sock"};
	assert_true(port_filter_match(&f, &l));
	assert_false(port_filter_match(&f, &conn));
	f.targets[0].path = "/run/y.sock";
	assert_false(port_filter_match(&f, &l));
	f.protos = PORT_PROTO_ALL | PORT_PROTO_UNIX;
	f.targets[0] = (struct port_target){.lo = 80, .hi = 80};
	assert_false(port_filter_match(&f, &l));
	assert_true(port_filter_match(&f, &tcp));
}

static void
test_fd_sockets_self(void **state)
{
	int fds[2];
	struct stat st;
	struct port_owner_list l = {0};
	size_t n;
	(void)state;
	int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(proc_fd >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, fds), 0);
	assert_int_equal(port_proc_fd_sockets(proc_fd, getpid(), &l), 0);
	assert_int_equal(fstat(fds[1], &st), 0);
	const struct port_owner *o = port_owner_find(&l, (uint32_t)st.st_ino, &n);
	assert_int_equal(n, 1);
	assert_int_equal(o->fd, fds[1]);
	assert_int_equal(o->pid, getpid());
	for (size_t i = 1; i < l.n; i++) /* sorted for port_owner_find */
		assert_true(port_owner_cmp(&l.v[i - 1], &l.v[i]) <= 0);
	port_owner_list_free(&l);
	assert_int_equal(port_proc_fd_sockets(proc_fd, 4194305, &l), -ENOENT);
	close(fds[0]);
	close(fds[1]);
	close(proc_fd);
}

static void
test_scan_self(void **state)
{
	int fds[3];
	uint32_t inodes[3];
	struct stat st;
	(void)state;
	int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(proc_fd >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	fds[2] = dup(fds[0]);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(fstat(fds[i], &st), 0);
		inodes[i] = (uint32_t)st.st_ino;
	}
	if (inodes[0] > inodes[1]) {
		uint32_t t = inodes[0];
		inodes[0] = inodes[1];
		inodes[1] = t;
	}
	for (unsigned threads = 1; threads <= 3; threads++) {
		struct port_owner_list l = {0};
		struct port_scan_stats stats;
		size_t n;
		assert_int_equal(port_scan(proc_fd, inodes, 2, threads, &l, &stats), 0);
		assert_int_equal(l.n, 3);
		assert_true(stats.procs >= 1);
		fstat(fds[0], &st);
		const struct port_owner *o = port_owner_find(&l, (uint32_t)st.st_ino, &n);
		assert_int_equal(n, 2); /* the descriptor and its dup */
		assert_int_equal(o[0].pid, getpid());
		assert_int_equal(o[0].fd, fds[0] < fds[2] ? fds[0] : fds[2]);
		assert_int_equal(o[1].fd, fds[0] < fds[2] ? fds[2] : fds[0]);
		port_owner_list_free(&l);
	}
	struct port_owner_list none = {0};
	struct port_scan_stats stats;
	const uint32_t nothing[1] = {1};
	assert_int_equal(port_scan(proc_fd, nothing, 1, 0, &none, &stats), 0);
	assert_int_equal(none.n, 0);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(proc_fd);
}

/*
 * A descriptor dup-ed across several getdents64 batches: every copy found exactly once, so
 * the hand-over of a big directory between threads neither skips nor repeats a batch.
 */
static void
test_scan_many(void **state)
{
	enum { COPIES = 2500 };
	struct rlimit rl;
	struct stat st;
	int fds[2], *dups = calloc(COPIES, sizeof(int));
	(void)state;
	assert_non_null(dups);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < COPIES + 64) {
		rl.rlim_cur = rl.rlim_max < COPIES + 64 ? rl.rlim_max : COPIES + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < COPIES + 64) {
		free(dups);
		skip();
	}
	int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, fds), 0);
	for (int i = 0; i < COPIES; i++)
		assert_true((dups[i] = dup(fds[1])) >= 0);
	assert_int_equal(fstat(fds[1], &st), 0);
	const uint32_t inode = (uint32_t)st.st_ino;
	for (unsigned threads = 1; threads <= 4; threads++) {
		struct port_owner_list l = {0};
		struct port_scan_stats stats;
		size_t n;
		assert_int_equal(port_scan(proc_fd, &inode, 1, threads, &l, &stats), 0);
		const struct port_owner *o = port_owner_find(&l, inode, &n);
		assert_int_equal(n, COPIES + 1);
		for (size_t i = 1; i < n; i++)
			assert_true(o[i].fd > o[i - 1].fd); /* sorted, no repeats */
		port_owner_list_free(&l);
	}
	for (int i = 0; i < COPIES; i++)
		close(dups[i]);
	free(dups);
	close(fds[0]);
	close(fds[1]);
	close(proc_fd);
}

static void
test_proc_info_self(void **state)
{
	struct port_proc_info info;
	(void)state;
	int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(proc_fd >= 0);
	assert_int_equal(port_proc_info_read(proc_fd, getpid(), true, &info), 0);
	assert_string_equal(info.comm, "test-port");
	assert_int_equal(info.uid, geteuid());
	assert_non_null(strstr(info.cmdline, "test-port"));
	assert_non_null(strstr(info.exe, "test-port"));
	port_proc_info_free(&info);
	assert_null(info.cmdline);
	assert_int_equal(port_proc_info_read(proc_fd, getpid(), false, &info), 0);
	assert_null(info.cmdline);
	assert_null(info.exe);
	assert_int_equal(port_proc_info_read(proc_fd, 0x7ffffff0, false, &info), -ENOENT);
	close(proc_fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_args_proto),
	    cmocka_unit_test(test_args_target_port),
	    cmocka_unit_test(test_args_target_bad),
	    cmocka_unit_test(test_args_target_address),
	    cmocka_unit_test(test_args_signal),
	    cmocka_unit_test(test_fallback_v4),
	    cmocka_unit_test(test_fallback_literal),
	    cmocka_unit_test(test_fallback_bad),
	    cmocka_unit_test(test_cgroup_units),
	    cmocka_unit_test(test_cgroup_containers),
	    cmocka_unit_test(test_cgroup_v1_and_bad),
	    cmocka_unit_test(test_socket_link),
	    cmocka_unit_test(test_cmdline_and_status),
	    cmocka_unit_test(test_filter_states),
	    cmocka_unit_test(test_filter_address),
	    cmocka_unit_test(test_filter_unix),
	    cmocka_unit_test(test_fd_sockets_self),
	    cmocka_unit_test(test_state_names),
	    cmocka_unit_test(test_sort),
	    cmocka_unit_test(test_owner_find),
	    cmocka_unit_test(test_bytecode),
	    cmocka_unit_test(test_scan_self),
	    cmocka_unit_test(test_scan_many),
	    cmocka_unit_test(test_proc_info_self),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
