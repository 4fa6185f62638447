/*
 * Stand-in for libFuzzer in normal builds: feeds every file under the given directories (or
 * the given files) to LLVMFuzzerTestOneInput once, so the seed corpus is a regression test.
 */
#include "core/cleanup.h"
#include "core/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (4 * 1024 * 1024)

static int
replay_file(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	_cleanup_free_ uint8_t *data = malloc(REPLAY_MAX);
	if (!data)
		return -ENOMEM;
	ssize_t len = file_read_capped(fd, data, REPLAY_MAX);
	if (len < 0)
		return (int)len;
	LLVMFuzzerTestOneInput(data, (size_t)len);
	return 0;
}

static int
replay_dir(const char *dir, unsigned *count)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		r = replay_file(path);
		if (r < 0)
			break;
		(*count)++;
	}
	closedir(d);
	return r;
}

int
main(int argc, char **argv)
{
	unsigned count = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int r = stat(argv[i], &st) < 0 ? -errno
		        : S_ISDIR(st.st_mode)  ? replay_dir(argv[i], &count)
		                               : replay_file(argv[i]);
		if (r == 0 && !S_ISDIR(st.st_mode))
			count++;
		if (r < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(-r));
			return 2;
		}
	}
	printf("replayed %u inputs\n", count);
	return 0;
}
