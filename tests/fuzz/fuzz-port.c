/*
 * The text parsers of rampart port: /proc/net/{tcp,udp}{,6} lines (the fallback), the cgroup
 * file (unit or container), /proc/PID/status, fd link names and command-line words.
 */
#include "port/port_args.h"
#include "port/port_cgroup.h"
#include "port/port_fallback.h"
#include "port/port_proc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	struct port_sock sock;
	port_fallback_parse_line(s, AF_INET, &sock);
	port_fallback_parse_line(s, AF_INET6, &sock);

	char unit[256];
	port_cgroup_unit(s, unit, sizeof(unit));

	uint32_t uid;
	port_proc_status_uid(s, &uid);
	uint64_t inode;
	port_proc_socket_link(s, size, &inode);

	struct port_target t[2];
	unsigned proto;
	int sig;
	port_args_target(s, t);
	port_args_proto(s, &proto);
	port_args_signal(s, &sig);

	port_proc_cmdline_join(s, size);
	free(s);
	return 0;
}
