/* Unit tests for src/core/json: strings that always parse, whatever the bytes. */
#include "core/json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static void
assert_json(const char *in, const char *want)
{
	_cleanup_buf_ struct buf b = BUF_INIT(1024);
	assert_int_equal(json_string(&b, in), 0);
	assert_string_equal(buf_cstr(&b), want);
}

static void
test_json(void **state)
{
	assert_json("", "\"\"");
	assert_json("sshd", "\"sshd\"");
	assert_json("a \"b\" \\c", "\"a \\\"b\\\" \\\\c\"");
	assert_json("tab\there\nnl\r\x01\x7f", "\"tab\\there\\nnl\\r\\u0001\\u007f\"");
	assert_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* invalid: lone continuation, truncated, overlong, surrogate, past U+10FFFF */
	assert_json("\x80", "\"\\u0080\"");
	assert_json("a\xc3", "\"a\\u00c3\"");
	assert_json("\xc0\xaf", "\"\\u00c0\\u00af\"");
	assert_json("\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\"");
	assert_json("\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\"");
	assert_json("\xe0\x80\x80", "\"\\u00e0\\u0080\\u0080\"");
}

static void
test_json_cap(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(8);
	assert_int_equal(json_string(&b, "0123456789"), -ENOBUFS);
}

static void
test_utf8_len(void **state)
{
	assert_int_equal(json_utf8_len((const unsigned char *)"a"), 1);
	assert_int_equal(json_utf8_len((const unsigned char *)"\xc3\xa9"), 2);
	assert_int_equal(json_utf8_len((const unsigned char *)"\xe2\x82\xac"), 3);
	assert_int_equal(json_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80"), 4);
	assert_int_equal(json_utf8_len((const unsigned char *)"\xc3"), 0);
	assert_int_equal(json_utf8_len((const unsigned char *)"\xed\xa0\x80"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_json_cap),
	    cmocka_unit_test(test_utf8_len),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
