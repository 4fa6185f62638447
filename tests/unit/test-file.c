/* Unit tests for src/core/file: capped reads from pipes and files. */
#include "core/file.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_to_eof),
	    cmocka_unit_test(test_stops_at_cap),
	    cmocka_unit_test(test_bad_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
