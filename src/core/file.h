/* Reading files and streams with a size cap. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/*
 * Reads from fd until end of file or until cap bytes are in buf, retrying on EINTR. Returns
 * the number of bytes read (cap means there may be more), or -errno.
 */
ssize_t file_read_capped(int fd, void *buf, size_t cap);
