/* Reading files and streams with a size cap. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/*
 * Reads from fd until end of file or until cap bytes are in buf, retrying on EINTR. Returns
 * the number of bytes read (cap means there may be more), or -errno.
 */
ssize_t file_read_capped(int fd, void *buf, size_t cap);

/*
 * Reads the regular file at path into *text (malloc'd, NUL-terminated; the caller frees) and
 * its length into *len. -EFBIG when it holds more than cap bytes, -EISDIR for a directory,
 * -EINVAL for anything else that is not a regular file (a FIFO or a device could block for
 * ever or never end; it is opened without blocking and not read), -errno of open/read, -ENOMEM.
 */
int file_read_path(const char *path, size_t cap, char **text, size_t *len);

/*
 * As file_read_path, from a stream already open (stdin for a "-" argument): reads fd to its
 * end, whatever it is. -EFBIG past cap bytes.
 */
int file_read_fd(int fd, size_t cap, char **text, size_t *len);
