/*
 * /proc/net text: the kernel prints addresses as the 32-bit words of the address in host
 * order (%08X each), so copying the parsed words back in host order restores the bytes.
 */
#include "port_fallback.h"

#include "core/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Cap on one file: 64 MiB is about 400,000 sockets. */
#define FALLBACK_FILE_MAX (64u << 20)

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Exactly n hex digits at *p (n <= 8), advancing *p. */
static int
parse_hex(const char **p, size_t n, uint32_t *out)
{
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int d = hex_digit((*p)[i]);
		if (d < 0)
			return -EINVAL;
		v = v << 4 | (uint32_t)d;
	}
	*p += n;
	*out = v;
	return 0;
}

/* "0100007F:0016" (IPv4) or 32 hex digits and a port (IPv6). */
static int
parse_endpoint(const char **p, int family, struct net_addr *a)
{
	size_t words = family == AF_INET ? 1 : 4;
	uint32_t w[4], port;

	*a = (struct net_addr){.family = family};
	for (size_t i = 0; i < words; i++)
		if (parse_hex(p, 8, &w[i]) < 0)
			return -EINVAL;
	memcpy(a->u.bytes, w, words * 4);
	if (**p != ':')
		return -EINVAL;
	(*p)++;
	if (parse_hex(p, 4, &port) < 0 || (**p != ' ' && **p != '\t'))
		return -EINVAL;
	a->port = (uint16_t)port;
	return 0;
}

static void
skip_space(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

/* Skips one field and the blanks after it; false at the end of the line. */
static bool
skip_field(const char **p)
{
	while (**p && **p != ' ' && **p != '\t' && **p != '\n')
		(*p)++;
	skip_space(p);
	return **p && **p != '\n';
}

static int
parse_ulong(const char **p, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (max - (unsigned long)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

int
port_fallback_parse_line(const char *line, int family, struct port_sock *out)
{
	const char *p = line;
	uint32_t state;
	unsigned long uid, inode;

	if (family != AF_INET && family != AF_INET6)
		return -EINVAL;
	skip_space(&p);
	if (!skip_field(&p) || parse_endpoint(&p, family, &out->local) < 0)
		return -EINVAL; /* the "sl" field, then the local address */
	skip_space(&p);
	if (parse_endpoint(&p, family, &out->remote) < 0)
		return -EINVAL;
	skip_space(&p);
	if (parse_hex(&p, 2, &state) < 0 || state == 0 || state >= 32)
		return -EINVAL;
	/* tx:rx queues, timer, retransmits, then uid, timeout, inode */
	for (int i = 0; i < 4; i++)
		if (!skip_field(&p))
			return -EINVAL;
	if (parse_ulong(&p, UINT32_MAX, &uid) < 0 || !skip_field(&p) || !skip_field(&p))
		return -EINVAL;
	if (parse_ulong(&p, UINT32_MAX, &inode) < 0)
		return -EINVAL;
	out->state = (uint8_t)state;
	out->uid = (uint32_t)uid;
	out->inode = (uint32_t)inode;
	out->v6only = false; /* not in the text; IPv6 wildcards are taken as dual-stack */
	return 0;
}

struct file_ctx {
	const struct port_filter *f;
	struct port_sock_list *out;
	uint64_t netns;
	int family;
	uint8_t proto;
};

static int
take_line(const struct file_ctx *ctx, const char *line)
{
	struct port_sock s = {.proto = ctx->proto, .netns = ctx->netns};

	if (port_fallback_parse_line(line, ctx->family, &s) < 0)
		return 0; /* the header */
	if (!port_filter_match(ctx->f, &s))
		return 0;
	return port_sock_list_add(ctx->out, &s);
}

/* Feeds every complete line in buf[0..*have) to take_line and keeps the partial rest. */
static int
take_lines(const struct file_ctx *ctx, char *buf, size_t *have, bool eof)
{
	char *start = buf, *end = buf + *have, *nl;

	*end = '\0';
	while ((nl = memchr(start, '\n', (size_t)(end - start)))) {
		*nl = '\0';
		int r = take_line(ctx, start);
		if (r < 0)
			return r;
		start = nl + 1;
	}
	size_t rest = (size_t)(end - start);
	if (eof)
		return rest ? take_line(ctx, start) : 0;
	if (rest > PORT_FALLBACK_LINE_MAX)
		return -EBADMSG;
	memmove(buf, start, rest);
	*have = rest;
	return 0;
}

static int
dump_file(int proc_fd, const char *path, const struct file_ctx *ctx)
{
	char buf[16384];
	size_t have = 0, total = 0;

	_cleanup_close_ int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* no tcp6 file without IPv6 */
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		total += (size_t)n;
		if (total > FALLBACK_FILE_MAX)
			return -EFBIG;
		have += (size_t)n;
		int r = take_lines(ctx, buf, &have, n == 0);
		if (r < 0 || n == 0)
			return r;
	}
}

int
port_fallback_dump(int proc_fd, pid_t pid, const struct port_filter *f, unsigned protos,
                   uint64_t netns, struct port_sock_list *out)
{
	static const char *const names[] = {"tcp", "tcp6", "udp", "udp6"};

	for (size_t i = 0; i < 4; i++) {
		uint8_t proto = i < 2 ? PORT_PROTO_TCP : PORT_PROTO_UDP;
		struct file_ctx ctx = {.f = f, .out = out, .netns = netns, .proto = proto};
		char path[64];

		if (!(protos & f->protos & proto))
			continue;
		ctx.family = i % 2 ? AF_INET6 : AF_INET;
		if (pid > 0)
			snprintf(path, sizeof(path), "%d/net/%s", (int)pid, names[i]);
		else
			snprintf(path, sizeof(path), "self/net/%s", names[i]);
		int r = dump_file(proc_fd, path, &ctx);
		if (r < 0)
			return r;
	}
	return 0;
}
