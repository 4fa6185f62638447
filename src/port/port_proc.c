/* Socket owners, and the facts about a process that `rampart port` shows. */
#include "port_proc.h"

#include "core/cleanup.h"
#include "core/file.h"
#include "port_cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SOCKET_PREFIX_LEN (sizeof(PORT_PROC_SOCKET_PREFIX) - 1)

void
port_owner_list_free(struct port_owner_list *l)
{
	if (!l)
		return;
	free(l->v);
	*l = (struct port_owner_list){0};
}

int
port_owner_list_add(struct port_owner_list *l, uint32_t inode, int32_t pid, int32_t fd)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		if (cap > PORT_OWNER_MAX)
			cap = PORT_OWNER_MAX;
		if (cap <= l->n)
			return -ENOBUFS;
		struct port_owner *v = reallocarray(l->v, cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct port_owner){.inode = inode, .pid = pid, .fd = fd};
	return 0;
}

int
port_owner_cmp(const void *pa, const void *pb)
{
	const struct port_owner *a = pa, *b = pb;
	if (a->inode != b->inode)
		return a->inode < b->inode ? -1 : 1;
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	return (a->fd > b->fd) - (a->fd < b->fd);
}

const struct port_owner *
port_owner_find(const struct port_owner_list *l, uint32_t inode, size_t *n)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) { /* first entry with inode >= the one wanted */
		size_t mid = lo + (hi - lo) / 2;
		if (l->v[mid].inode < inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t end = lo;
	while (end < l->n && l->v[end].inode == inode)
		end++;
	*n = end - lo;
	return *n ? &l->v[lo] : NULL;
}

int
port_proc_socket_link(const char *s, size_t len, uint64_t *inode)
{
	uint64_t v = 0;
	size_t i = SOCKET_PREFIX_LEN;

	if (len < SOCKET_PREFIX_LEN + 2 ||
	    memcmp(s, PORT_PROC_SOCKET_PREFIX, SOCKET_PREFIX_LEN) != 0)
		return -EINVAL;
	if (s[len - 1] != ']' || s[i] < '0' || s[i] > '9')
		return -EINVAL;
	for (; i < len - 1; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*inode = v;
	return 0;
}

/* Up to size - 1 bytes of /proc/PID/name, NUL-terminated; the length read, or -errno. */
static ssize_t
read_pid_file(int proc_fd, pid_t pid, const char *name, char *buf, size_t size)
{
	char path[64];

	snprintf(path, sizeof(path), "%d/%s", (int)pid, name);
	_cleanup_close_ int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t len = file_read_capped(fd, buf, size - 1);
	if (len < 0)
		return len;
	buf[len] = '\0';
	return len;
}

void
port_proc_cmdline_join(char *s, size_t len)
{
	while (len > 0 && s[len - 1] == '\0')
		len--;
	/* newlines and tabs stay: JSON keeps them exactly, text output escapes them */
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0')
			s[i] = ' ';
	s[len] = '\0';
}

int
port_proc_status_uid(const char *status, uint32_t *uid)
{
	const char *p = strncmp(status, "Uid:", 4) == 0 ? status : strstr(status, "\nUid:");
	unsigned long real, eff;
	char *end;

	if (!p)
		return -EINVAL;
	p += *p == '\n' ? 5 : 4;
	errno = 0;
	real = strtoul(p, &end, 10);
	if (end == p || errno)
		return -EINVAL;
	p = end;
	eff = strtoul(p, &end, 10);
	if (end == p || errno || real > UINT32_MAX || eff > UINT32_MAX)
		return -EINVAL;
	*uid = (uint32_t)eff;
	return 0;
}

/* The command line, or [comm] for kernel threads and zombies, as ps(1) shows them. */
static char *
read_cmdline(int proc_fd, pid_t pid, const char *comm)
{
	char s[PORT_CMDLINE_MAX];
	ssize_t len = read_pid_file(proc_fd, pid, "cmdline", s, sizeof(s));

	if (len <= 0) {
		snprintf(s, sizeof(s), "[%s]", comm);
		return strdup(s);
	}
	port_proc_cmdline_join(s, (size_t)len);
	if ((size_t)len == sizeof(s) - 1)
		memcpy(s + len - 3, "...", 3);
	return strdup(s);
}

static int
read_full(int proc_fd, pid_t pid, struct port_proc_info *out)
{
	char path[32], exe[PATH_MAX], cgroup[4096];

	snprintf(path, sizeof(path), "%d/exe", (int)pid);
	ssize_t n = readlinkat(proc_fd, path, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	out->exe = n > 0 ? strdup(exe) : NULL;
	out->cmdline = read_cmdline(proc_fd, pid, out->comm);
	if (!out->cmdline || (n > 0 && !out->exe))
		return -ENOMEM;
	if (read_pid_file(proc_fd, pid, "cgroup", cgroup, sizeof(cgroup)) > 0)
		port_cgroup_unit(cgroup, out->unit, sizeof(out->unit));
	return 0;
}

void
port_proc_info_free(struct port_proc_info *p)
{
	if (!p)
		return;
	free(p->cmdline);
	free(p->exe);
	p->cmdline = p->exe = NULL;
}

int
port_proc_info_read(int proc_fd, pid_t pid, bool full, struct port_proc_info *out)
{
	char status[4096];

	*out = (struct port_proc_info){0};
	ssize_t n = read_pid_file(proc_fd, pid, "comm", out->comm, sizeof(out->comm));
	if (n < 0)
		return (int)n;
	if (n > 0 && out->comm[n - 1] == '\n')
		out->comm[n - 1] = '\0';
	n = read_pid_file(proc_fd, pid, "status", status, sizeof(status));
	if (n < 0)
		return (int)n;
	int r = port_proc_status_uid(status, &out->uid);
	if (r >= 0 && full && (r = read_full(proc_fd, pid, out)) < 0)
		port_proc_info_free(out);
	return r;
}

static int
fd_entry(int dfd, const char *name, int32_t pid, struct port_owner_list *out)
{
	char link[40];
	uint64_t inode;
	char *end;
	long fd = strtol(name, &end, 10);

	if (name[0] < '0' || name[0] > '9' || *end || fd > INT32_MAX)
		return 0;
	ssize_t len = readlinkat(dfd, name, link, sizeof(link));
	if (len < 0)
		return errno == EACCES || errno == EPERM ? -errno : 0; /* ENOENT: just closed */
	if (port_proc_socket_link(link, (size_t)len, &inode) < 0 || inode > UINT32_MAX)
		return 0;
	return port_owner_list_add(out, (uint32_t)inode, pid, (int32_t)fd);
}

int
port_proc_fd_sockets(int proc_fd, pid_t pid, struct port_owner_list *out)
{
	char path[32];

	snprintf(path, sizeof(path), "%d/fd", (int)pid);
	int dfd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -ENOMEM;
	}
	int r = 0;
	for (struct dirent *e; r >= 0 && (e = readdir(d));)
		r = fd_entry(dirfd(d), e->d_name, (int32_t)pid, out);
	closedir(d);
	if (r >= 0 && out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), port_owner_cmp);
	return r < 0 ? r : 0;
}
