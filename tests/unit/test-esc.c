/* Unit tests for src/core/esc: text from others, safe on a terminal and unambiguous. */
#include "core/esc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static void
assert_esc(const char *in, const char *want)
{
	_cleanup_buf_ struct buf b = BUF_INIT(1024);
	char small[256];

	assert_int_equal(esc_text(&b, in), 0);
	assert_string_equal(buf_cstr(&b), want);
	assert_int_equal(esc_copy(small, sizeof(small), in), strlen(want));
	assert_string_equal(small, want);
}

static void
test_esc(void **state)
{
	assert_esc("", "");
	assert_esc("nginx: master process /usr/sbin/nginx",
	           "nginx: master process /usr/sbin/nginx");
	assert_esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_esc("\x1b]0;owned\x07", "\\x1b]0;owned\\x07");
	assert_esc("a\nb\tc\x7f", "a\\x0ab\\x09c\\x7f");
	assert_esc("\xff\xfe", "\\xff\\xfe");
	assert_esc("C:\\dir", "C:\\\\dir");
	/* the escape text itself stays apart from an escaped byte */
	assert_esc("\\xff", "\\\\xff");
	/* C1 controls (CSI is U+009B) are obeyed by some terminals */
	assert_esc("\xc2\x9b"
	           "31m",
	           "\\xc2\\x9b31m");
	assert_esc("\xc2\xa0", "\xc2\xa0");
	/* truncated, overlong and surrogate forms are not UTF-8 */
	assert_esc("a\xc3", "a\\xc3");
	assert_esc("\xc0\xaf", "\\xc0\\xaf");
	assert_esc("\xed\xa0\x80", "\\xed\\xa0\\x80");
}

static void
test_esc_copy_cut(void **state)
{
	char out[6];

	/* an escape is kept whole or left out; nothing follows a cut */
	assert_int_equal(esc_copy(out, sizeof(out),
	                          "ab\x1b"
	                          "cd"),
	                 8);
	assert_string_equal(out, "ab");
	assert_int_equal(esc_copy(out, sizeof(out), "abc\xc3\xa9z"), 6);
	assert_string_equal(out, "abc\xc3\xa9");
	assert_int_equal(esc_copy(out, sizeof(out), "abcd\xc3\xa9"), 6);
	assert_string_equal(out, "abcd");
	assert_int_equal(esc_copy(out, 0, "abc"), 3);
}

static void
test_esc_cap(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(4);
	assert_int_equal(esc_text(&b, "\x01\x02"), -ENOBUFS);
}

static void
test_esc_fputs(void **state)
{
	char mem[64] = "";
	FILE *f = fmemopen(mem, sizeof(mem), "w");
	assert_non_null(f);
	esc_fputs("x\x1b[2Jy\\", f);
	fclose(f);
	assert_string_equal(mem, "x\\x1b[2Jy\\\\");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_esc),
	    cmocka_unit_test(test_esc_copy_cut),
	    cmocka_unit_test(test_esc_cap),
	    cmocka_unit_test(test_esc_fputs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
