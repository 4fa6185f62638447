/* Unit tests for src/core/file: capped reads from pipes and files. */
#include "core/file.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_to_eof),
	    cmocka_unit_test(test_stops_at_cap),
	    cmocka_unit_test(test_bad_fd),
	    cmocka_unit_test(test_read_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
