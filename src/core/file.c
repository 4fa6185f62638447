#include "file.h"

#include "cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t
file_read_capped(int fd, void *buf, size_t cap)
{
	size_t len = 0;

	while (len < cap) {
		ssize_t n = read(fd, (char *)buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	return (ssize_t)len;
}

int
file_read_path(const char *path, size_t cap, char **text, size_t *len)
{
	/* O_NONBLOCK: opening a FIFO without a writer would wait for one */
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size < 0 || (uint64_t)st.st_size > cap)
		return -EFBIG;
	/* one byte more than stat says, to notice a file that grew meanwhile */
	size_t room = (size_t)st.st_size + 1;
	_cleanup_free_ char *buf = malloc(room + 1);
	if (!buf)
		return -ENOMEM;
	ssize_t n = file_read_capped(fd, buf, room);
	if (n < 0)
		return (int)n;
	if ((size_t)n == room)
		return -EFBIG;
	buf[n] = '\0';
	*len = (size_t)n;
	*text = TAKE_PTR(buf);
	return 0;
}

int
file_read_fd(int fd, size_t cap, char **text, size_t *len)
{
	size_t size = cap < 65536 ? cap + 1 : 65536, have = 0;
	_cleanup_free_ char *buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = file_read_capped(fd, buf + have, size - have);
		if (n < 0)
			return (int)n;
		have += (size_t)n;
		if (have > cap)
			return -EFBIG;
		if (have < size)
			break;
		/* full: grow up to one byte past cap, which tells a stream that is too long */
		size_t more = size > cap / 2 ? cap + 1 : size * 2;
		char *bigger = realloc(buf, more + 1);
		if (!bigger)
			return -ENOMEM;
		buf = bigger;
		size = more;
	}
	buf[have] = '\0';
	*len = have;
	*text = TAKE_PTR(buf);
	return 0;
}
