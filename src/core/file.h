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
 * Reads the whole file at path into *text (malloc'd, NUL-terminated; the caller frees) and its
 * length into *len. -EFBIG when it holds more than cap bytes, -errno of open/read, -ENOMEM.
 */
int file_read_path(const char *path, size_t cap, char **text, size_t *len);
