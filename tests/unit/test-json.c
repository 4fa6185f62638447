/* Unit tests for src/core/json: strings that always parse, whatever the bytes. */
#include "core/json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
	/* invalid (lone continuation, truncated, overlong, surrogate, past U+10FFFF): U+FFFD */
	assert_json("\x80", "\"\\ufffd\"");
	assert_json("a\xc3", "\"a\\ufffd\"");
	assert_json("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	assert_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	assert_json("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	assert_json("\xe0\x80\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	assert_json("\xff", "\"\\ufffd\"");
}

static void
assert_member(const char *in, const char *want)
{
	_cleanup_buf_ struct buf b = BUF_INIT(1024);
	assert_int_equal(json_member(&b, "cmdline", in), 0);
	assert_string_equal(buf_cstr(&b), want);
}

static void
test_json_member(void **state)
{
	assert_member("sshd -D", "\"cmdline\":\"sshd -D\"");
	assert_member("caf\xc3\xa9", "\"cmdline\":\"caf\xc3\xa9\"");
	/* the exact bytes come back from base64; nothing else gets a _raw */
	assert_member("a\xff", "\"cmdline\":\"a\\ufffd\",\"cmdline_raw\":\"Yf8=\"");
	assert_member("\xff\xfe\\", "\"cmdline\":\"\\ufffd\\ufffd\\\\\",\"cmdline_raw\":\"//5c\"");
	assert_member("\x1b[2J", "\"cmdline\":\"\\u001b[2J\"");
	assert_true(json_utf8_valid(""));
	assert_true(json_utf8_valid("caf\xc3\xa9"));
	assert_false(json_utf8_valid("caf\xc3"));
}

static void
test_base64(void **state)
{
	static const struct {
		const char *in, *out;
	} v[] = {{"", ""},
	         {"f", "Zg=="},
	         {"fo", "Zm8="},
	         {"foo", "Zm9v"},
	         {"foob", "Zm9vYg=="},
	         {"fooba", "Zm9vYmE="},
	         {"foobar", "Zm9vYmFy"}};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		_cleanup_buf_ struct buf b = BUF_INIT(64);
		assert_int_equal(json_base64(&b, v[i].in, strlen(v[i].in)), 0);
		assert_string_equal(buf_cstr(&b), v[i].out);
	}
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
	    cmocka_unit_test(test_json),        cmocka_unit_test(test_json_cap),
	    cmocka_unit_test(test_json_member), cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_utf8_len),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
