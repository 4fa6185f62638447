/* Unit tests for src/core/file: capped reads from pipes and files; FIFOs and devices refused. */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static void
test_reads_to_eof(void **state)
{
	int p[2];
	char buf[32];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "hello ", 6), 6);
	assert_int_equal(write(p[1], "world", 5), 5);
	close(p[1]);
	assert_int_equal(file_read_capped(p[0], buf, sizeof(buf)), 11);
	assert_memory_equal(buf, "hello world", 11);
	assert_int_equal(file_read_capped(p[0], buf, sizeof(buf)), 0);
	close(p[0]);
}

static void
test_stops_at_cap(void **state)
{
	int p[2];
	char buf[8];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "0123456789", 10), 10);
	close(p[1]);
	assert_int_equal(file_read_capped(p[0], buf, 4), 4);
	assert_memory_equal(buf, "0123", 4);
	assert_int_equal(file_read_capped(p[0], buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "456789", 6);
	close(p[0]);
}

static void
test_bad_fd(void **state)
{
	char buf[4];
	assert_int_equal(file_read_capped(-1, buf, sizeof(buf)), -EBADF);
}

/* A whole file, NUL-terminated; over the cap -EFBIG; a missing one -ENOENT. */
static void
test_read_path(void **state)
{
	(void)state;
	char path[] = "/tmp/test-file-XXXXXX", *text = NULL;
	size_t len = 0;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "key\0data", 8), 8);
	close(fd);
	assert_int_equal(file_read_path(path, 8, &text, &len), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(text, "key\0data", 9);
	free(text);
	assert_int_equal(file_read_path(path, 7, &text, &len), -EFBIG);
	unlink(path);
	assert_int_equal(file_read_path(path, 8, &text, &len), -ENOENT);
}

static void
test_read_path_not_regular(void **state)
{
	(void)state;
	char dir[] = "/tmp/test-file-XXXXXX", path[64], *text = NULL;
	size_t len = 0;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	/* a FIFO without a writer: refused without waiting for one */
	assert_int_equal(file_read_path(path, 64, &text, &len), -EINVAL);
	assert_null(text);
	assert_int_equal(file_read_path("/dev/zero", 64, &text, &len), -EINVAL);
	assert_int_equal(file_read_path("/dev/null", 64, &text, &len), -EINVAL);
	assert_int_equal(file_read_path(dir, 64, &text, &len), -EISDIR);
	assert_null(text);
	unlink(path);
	rmdir(dir);
}

static void
test_read_fd(void **state)
{
	(void)state;
	int p[2];
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "a: 1\n", 5), 5);
	close(p[1]);
	assert_int_equal(file_read_fd(p[0], 5, &text, &len), 0);
	assert_int_equal(len, 5);
	assert_string_equal(text, "a: 1\n");
	free(text);
	close(p[0]);
	/* one byte over the cap */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "a: 1\n", 5), 5);
	close(p[1]);
	text = NULL;
	assert_int_equal(file_read_fd(p[0], 4, &text, &len), -EFBIG);
	assert_null(text);
	close(p[0]);
}

static void
test_read_fd_grows(void **state)
{
	(void)state;
	/* more than the first buffer, less than the cap; and a stream without end stops at it */
	char path[] = "/tmp/test-file-XXXXXX", *text = NULL;
	size_t len = 0, n = 200000;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, 'x', n);
	assert_int_equal(write(fd, big, n), (ssize_t)n);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(file_read_fd(fd, n, &text, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(text, big, n);
	assert_int_equal(text[n], '\0');
	free(text);
	free(big);
	close(fd);
	unlink(path);
	fd = open("/dev/zero", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(file_read_fd(fd, n, &text, &len), -EFBIG);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_to_eof),
	    cmocka_unit_test(test_stops_at_cap),
	    cmocka_unit_test(test_bad_fd),
	    cmocka_unit_test(test_read_path),
	    cmocka_unit_test(test_read_path_not_regular),
	    cmocka_unit_test(test_read_fd),
	    cmocka_unit_test(test_read_fd_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
