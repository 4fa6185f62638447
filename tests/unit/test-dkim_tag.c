/* Unit tests for src/mail/dkim_tag (tag=value lists) and src/mail/dkim_b64 (base64). */
#include "mail/dkim_b64.h"
#include "mail/dkim_tag.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static int
parse(const char *s, struct dkim_tag_list *l)
{
	return dkim_tag_parse(s, strlen(s), l);
}

static void
assert_tag(const struct dkim_tag_list *l, const char *name, const char *value)
{
	const struct dkim_tag *t = dkim_tag_find(l, name);
	assert_non_null(t);
	assert_int_equal(t->value_len, strlen(value));
	assert_memory_equal(t->value, value, strlen(value));
}

static void
test_parse(void **state)
{
	struct dkim_tag_list l;
	assert_int_equal(parse(" v=1; a = rsa-sha256 ;\r\n\tb= ab\r\n cd ;c=;", &l), 0);
	assert_int_equal(l.n, 4);
	assert_tag(&l, "v", "1");
	assert_tag(&l, "a", "rsa-sha256");
	assert_tag(&l, "b", "ab\r\n cd");
	assert_tag(&l, "c", "");
	assert_null(dkim_tag_find(&l, "V"));
	assert_true(dkim_tag_value_is(dkim_tag_find(&l, "a"), "RSA-SHA256", true));
	assert_false(dkim_tag_value_is(dkim_tag_find(&l, "a"), "RSA-SHA256", false));
	/* empty elements and a final ";" */
	assert_int_equal(parse("a=1;;b=2; ;", &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(parse("", &l), 0);
	assert_int_equal(l.n, 0);
	/* 8-bit bytes are allowed in values (RFC 8616) */
	assert_int_equal(parse("n=caf\xc3\xa9", &l), 0);
}

static void
test_raw_offsets(void **state)
{
	static const char s[] = "a=1; b= AB CD ;x=y";
	struct dkim_tag_list l;
	assert_int_equal(parse(s, &l), 0);
	const struct dkim_tag *b = dkim_tag_find(&l, "b");
	/* everything between "=" and ";" goes when b= is emptied for hashing */
	assert_int_equal(b->raw_start, strchr(s, 'b') + 2 - s);
	assert_int_equal(b->raw_end, strrchr(s, ';') - s);
	const struct dkim_tag *x = dkim_tag_find(&l, "x");
	assert_int_equal(x->raw_end, strlen(s));
}

static void
test_errors(void **state)
{
	struct dkim_tag_list l;
	assert_int_equal(parse("a=1; a=2", &l), -EEXIST);
	assert_int_equal(parse("a=1; t; p=x", &l), -EINVAL);
	assert_int_equal(parse("1a=x", &l), -EINVAL);
	assert_int_equal(parse("a-b=x", &l), -EINVAL);
	assert_int_equal(parse("a=x\x01y", &l), -EINVAL);
	assert_int_equal(parse("a b=c", &l), -EINVAL);
	assert_int_equal(dkim_tag_parse("a=x\0y", 5, &l), -EINVAL);
	char many[1024] = "";
	for (int i = 0; i <= DKIM_TAG_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "t%d=1;", i);
	assert_int_equal(parse(many, &l), -E2BIG);
}

static void
test_value_copy(void **state)
{
	struct dkim_tag_list l;
	char buf[8];
	assert_int_equal(parse("b=ab\r\n c d", &l), 0);
	assert_int_equal(dkim_tag_value_copy(&l.tag[0], buf, sizeof(buf)), 0);
	assert_string_equal(buf, "abcd");
	assert_int_equal(dkim_tag_value_copy(&l.tag[0], buf, 4), -ENOBUFS);
}

static void
assert_b64(const char *in, const char *want, int want_len)
{
	unsigned char out[64];
	int n = dkim_b64_decode(in, strlen(in), out, sizeof(out));
	assert_int_equal(n, want_len);
	if (n > 0)
		assert_memory_equal(out, want, (size_t)n);
}

static void
test_base64(void **state)
{
	assert_b64("", "", 0);
	assert_b64("Zm9v", "foo", 3);
	assert_b64("Zm9vYg==", "foob", 4);
	assert_b64("Zm9vYmE=", "fooba", 5);
	assert_b64(" Zm9v\r\n\tYmE = ", "fooba", 5);
	assert_b64("Zm9vYg=", NULL, -EINVAL);
	assert_b64("Zm9vY", NULL, -EINVAL);
	assert_b64("Zm=vYg==", NULL, -EINVAL);
	assert_b64("Zm9vYg==Zm9v", NULL, -EINVAL);
	assert_b64("Z===", NULL, -EINVAL);
	assert_b64("Zm9v!", NULL, -EINVAL);
	assert_int_equal(dkim_b64_decode("Zm9v\0", 5, (unsigned char[8]){0}, 8), -EINVAL);
	unsigned char small[2];
	assert_int_equal(dkim_b64_decode("Zm9v", 4, small, sizeof(small)), -ENOBUFS);
	char enc[9];
	assert_int_equal(dkim_b64_encode((const unsigned char *)"fooba", 5, enc, sizeof(enc)), 0);
	assert_string_equal(enc, "Zm9vYmE=");
	assert_int_equal(dkim_b64_encode((const unsigned char *)"fooba", 5, enc, 8), -ENOBUFS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),  cmocka_unit_test(test_raw_offsets),
	    cmocka_unit_test(test_errors), cmocka_unit_test(test_value_copy),
	    cmocka_unit_test(test_base64),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
