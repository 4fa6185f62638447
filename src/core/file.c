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
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
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
