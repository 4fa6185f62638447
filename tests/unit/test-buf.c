/* Unit tests for src/core/buf: capped growth, printf, consume, steal. */
#include "core/buf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

/* Under ASan, let the huge allocation in test_enomem fail with NULL instead of aborting. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

/* The invariants every operation must keep. */
static void
assert_sane(const struct buf *b)
{
	assert_true(b->len <= b->max);
	if (!b->data) {
		assert_int_equal(b->len, 0);
		assert_int_equal(b->alloc, 0);
		return;
	}
	assert_true(b->alloc >= b->len + 1);
	assert_true(b->alloc - 1 <= b->max);
	assert_int_equal(b->data[b->len], '\0');
}

static void
test_empty(void **state)
{
	struct buf b;
	buf_init(&b, 100);
	assert_null(b.data);
	assert_int_equal(b.max, 100);
	assert_string_equal(buf_cstr(&b), "");
	buf_reset(&b);
	buf_consume(&b, 5);
	assert_string_equal(buf_cstr(&b), "");
	buf_free(&b);
	buf_free(&b);
	buf_free(NULL);
	assert_int_equal(b.max, 100);
	assert_sane(&b);
}

static void
test_append(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(1024);

	assert_int_equal(buf_append_str(&b, "hello"), 0);
	assert_int_equal(buf_append(&b, ", world", 7), 0);
	assert_int_equal(b.len, 12);
	assert_string_equal(buf_cstr(&b), "hello, world");
	assert_sane(&b);

	/* Binary data with NULs is kept byte for byte. */
	assert_int_equal(buf_append(&b, "\0x\0", 3), 0);
	assert_int_equal(b.len, 15);
	assert_memory_equal(b.data + 12, "\0x\0", 4);
	assert_int_equal(buf_append(&b, NULL, 0), 0);
	assert_int_equal(b.len, 15);
	assert_sane(&b);
}

static void
test_first_append_allocates(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(10);

	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	assert_sane(&b);
}

static void
test_cap_exact(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(8);

	assert_int_equal(buf_append_str(&b, "12345678"), 0);
	assert_int_equal(b.len, 8);
	assert_int_equal(b.alloc, 9);
	assert_string_equal(buf_cstr(&b), "12345678");
	assert_sane(&b);
}

static void
test_cap_plus_one(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(8);

	assert_int_equal(buf_append_str(&b, "1234"), 0);
	const char *data = b.data;
	size_t alloc = b.alloc;

	assert_int_equal(buf_append_str(&b, "56789"), -ENOBUFS);
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.alloc, alloc);
	assert_int_equal(b.len, 4);
	assert_string_equal(buf_cstr(&b), "1234");

	assert_int_equal(buf_printf(&b, "%s", "56789"), -ENOBUFS);
	assert_int_equal(b.len, 4);
	assert_string_equal(buf_cstr(&b), "1234");
	assert_int_equal(buf_reserve(&b, 5), -ENOBUFS);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOBUFS);
	assert_int_equal(buf_reserve(&b, 4), 0);
	assert_sane(&b);

	/* Filling to the cap exactly still works after the refusals. */
	assert_int_equal(buf_append_str(&b, "5678"), 0);
	assert_string_equal(buf_cstr(&b), "12345678");
	assert_int_equal(buf_append(&b, "9", 1), -ENOBUFS);
	assert_string_equal(buf_cstr(&b), "12345678");
	assert_int_equal(buf_append(&b, "", 0), 0);
}

static void
test_cap_zero(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(0);

	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_append(&b, "x", 1), -ENOBUFS);
	assert_int_equal(buf_printf(&b, "x"), -ENOBUFS);
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, 0);
	assert_sane(&b);
}

static void
test_growth_bounded(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(1000);
	unsigned grows = 0;

	for (unsigned i = 0; i < 1000; i++) {
		size_t before = b.alloc;
		assert_int_equal(buf_append(&b, "a", 1), 0);
		if (b.alloc != before)
			grows++;
		assert_sane(&b);
	}
	assert_int_equal(b.len, 1000);
	assert_int_equal(b.alloc, 1001);
	assert_int_equal(buf_append(&b, "a", 1), -ENOBUFS);
	/* Geometric: 64, 128, ..., 1001. */
	assert_true(grows <= 6);
}

static void
test_growth_geometric(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(SIZE_MAX);
	unsigned grows = 0;

	for (unsigned i = 0; i < 100000; i++) {
		size_t before = b.alloc;
		assert_int_equal(buf_append(&b, "0123456789", 10), 0);
		if (b.alloc != before)
			grows++;
	}
	assert_int_equal(b.len, 1000000);
	assert_true(grows <= 20);
	assert_sane(&b);
}

static void
test_enomem(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(SIZE_MAX);

	assert_int_equal(buf_append_str(&b, "keep"), 0);
	const char *data = b.data;
	assert_int_equal(buf_reserve(&b, SIZE_MAX / 2), -ENOMEM);
	assert_int_equal(buf_reserve(&b, SIZE_MAX - 4), -ENOMEM);
	assert_ptr_equal(b.data, data);
	assert_string_equal(buf_cstr(&b), "keep");
	assert_sane(&b);
}

static void
test_printf(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(4096);

	assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
	assert_string_equal(buf_cstr(&b), "42-x");
	assert_int_equal(buf_printf(&b, " %05u", 7u), 0);
	assert_string_equal(buf_cstr(&b), "42-x 00007");
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, 10);
	assert_sane(&b);
}

static void
test_printf_growth(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(100000);
	char big[3000];

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(buf_printf(&b, "<%s>", "a"), 0);
	size_t alloc = b.alloc;
	/* Far more than the spare room: forces the second pass. */
	assert_int_equal(buf_printf(&b, "[%s|%d]", big, 12345), 0);
	assert_true(b.alloc > alloc);
	assert_int_equal(b.len, 3 + 1 + 2999 + 7);
	assert_memory_equal(b.data, "<a>[zzz", 7);
	assert_string_equal(b.data + b.len - 7, "|12345]");
	assert_sane(&b);

	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&b, "%d,", i), 0);
	assert_sane(&b);
	assert_string_equal(b.data + b.len - 8, "998,999,");
}

static void
test_printf_cap(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(10);

	assert_int_equal(buf_printf(&b, "%s", "abc"), 0);
	/* 7 more bytes reach the cap exactly; 8 would pass it. */
	assert_int_equal(buf_printf(&b, "%07d", 12345678), -ENOBUFS);
	assert_string_equal(buf_cstr(&b), "abc");
	assert_int_equal(b.len, 3);
	assert_sane(&b);
	assert_int_equal(buf_printf(&b, "%07d", 1234567), 0);
	assert_string_equal(buf_cstr(&b), "abc1234567");
	assert_int_equal(b.alloc, 11);
	assert_int_equal(buf_printf(&b, "%c", 'x'), -ENOBUFS);
	assert_string_equal(buf_cstr(&b), "abc1234567");
	assert_sane(&b);
}

static void
test_printf_cap_after_spare(void **state)
{
	/* The first pass prints into spare room below the cap; a refusal must leave no trace. */
	_cleanup_buf_ struct buf b = BUF_INIT(200);

	assert_int_equal(buf_append_str(&b, "x"), 0);
	assert_int_equal(b.alloc, 64);
	char big[300];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(buf_printf(&b, "%s", big), -ENOBUFS);
	assert_int_equal(b.len, 1);
	assert_string_equal(buf_cstr(&b), "x");
	assert_sane(&b);
}

static int vprintf_wrapper(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
vprintf_wrapper(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

static void
test_vprintf(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(1000);
	char mid[200];

	memset(mid, 'm', sizeof(mid) - 1);
	mid[sizeof(mid) - 1] = '\0';
	assert_int_equal(vprintf_wrapper(&b, "%s=%s", "k", mid), 0);
	assert_int_equal(b.len, 2 + 199);
	assert_int_equal(b.data[1], '=');
	assert_sane(&b);
}

static void
test_consume(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(100);

	assert_int_equal(buf_append_str(&b, "abcdefgh"), 0);
	buf_consume(&b, 0);
	assert_string_equal(buf_cstr(&b), "abcdefgh");
	buf_consume(&b, 3);
	assert_string_equal(buf_cstr(&b), "defgh");
	assert_int_equal(b.len, 5);
	assert_sane(&b);
	buf_consume(&b, 5);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_append_str(&b, "xyz"), 0);
	buf_consume(&b, 1000);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	assert_sane(&b);

	/* Space consumed counts against the cap no longer. */
	_cleanup_buf_ struct buf c = BUF_INIT(4);
	assert_int_equal(buf_append_str(&c, "abcd"), 0);
	assert_int_equal(buf_append_str(&c, "e"), -ENOBUFS);
	buf_consume(&c, 2);
	assert_int_equal(buf_append_str(&c, "ef"), 0);
	assert_string_equal(buf_cstr(&c), "cdef");
	assert_sane(&c);
}

static void
test_reset(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(100);

	assert_int_equal(buf_append_str(&b, "abc"), 0);
	char *data = b.data;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, data);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_append_str(&b, "z"), 0);
	assert_string_equal(buf_cstr(&b), "z");
	assert_sane(&b);
}

static void
test_steal(void **state)
{
	_cleanup_buf_ struct buf b = BUF_INIT(100);

	assert_int_equal(buf_printf(&b, "n=%d", 5), 0);
	char *s = buf_steal(&b);
	assert_non_null(s);
	assert_string_equal(s, "n=5");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.alloc, 0);
	assert_int_equal(b.max, 100);
	free(s);

	/* The buffer is reusable, and an empty one yields an owned "". */
	s = buf_steal(&b);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	assert_int_equal(buf_append_str(&b, "again"), 0);
	assert_string_equal(buf_cstr(&b), "again");
	s = buf_steal(&b);
	assert_string_equal(s, "again");
	free(s);
	assert_sane(&b);
}

static void
test_free_keeps_cap(void **state)
{
	struct buf b = BUF_INIT(5);

	assert_int_equal(buf_append_str(&b, "12345"), 0);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 5);
	assert_int_equal(buf_append_str(&b, "123456"), -ENOBUFS);
	assert_null(b.data);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_append),
	    cmocka_unit_test(test_first_append_allocates),
	    cmocka_unit_test(test_cap_exact),
	    cmocka_unit_test(test_cap_plus_one),
	    cmocka_unit_test(test_cap_zero),
	    cmocka_unit_test(test_growth_bounded),
	    cmocka_unit_test(test_growth_geometric),
	    cmocka_unit_test(test_enomem),
	    cmocka_unit_test(test_printf),
	    cmocka_unit_test(test_printf_growth),
	    cmocka_unit_test(test_printf_cap),
	    cmocka_unit_test(test_printf_cap_after_spare),
	    cmocka_unit_test(test_vprintf),
	    cmocka_unit_test(test_consume),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_steal),
	    cmocka_unit_test(test_free_keeps_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
