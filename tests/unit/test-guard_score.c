/* Unit tests for src/guard/guard_score: the sliding window, the threshold, bounded memory. */
#include "guard/guard_score.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* cmocka.h relies on the headers above. */
#include <cmocka.h>

static struct net_cidr
key(const char *s)
{
	struct net_cidr c;
	assert_int_equal(net_cidr_parse(s, &c), 0);
	return c;
}

static struct guard_score *
score_new(uint64_t threshold, uint64_t window_ms, size_t max)
{
	struct guard_score *s = NULL;
	struct guard_score_opts o = {
	    .threshold = threshold, .window_ms = window_ms, .max_sources = max};
	assert_int_equal(guard_score_new(&o, &s), 0);
	return s;
}

static void
test_threshold_reached_on_third(void **state)
{
	struct guard_score *s = score_new(30, 60000, 16);
	struct net_cidr a = key("192.0.2.1"), b = key("192.0.2.2");
	uint64_t sum;
	assert_int_equal(guard_score_add(s, &a, 10, 1000, &sum), 0);
	assert_int_equal(sum, 10);
	assert_int_equal(guard_score_add(s, &b, 10, 1001, &sum), 0);
	assert_int_equal(guard_score_add(s, &a, 10, 2000, &sum), 0);
	assert_int_equal(sum, 20);
	assert_int_equal(guard_score_add(s, &a, 10, 3000, &sum), 1);
	assert_int_equal(sum, 30);
	/* a ban forgets the source: it starts again from nothing */
	assert_int_equal(guard_score_add(s, &a, 10, 3001, &sum), 0);
	assert_int_equal(sum, 10);
	assert_int_equal(guard_score_count(s), 2);
	guard_score_free(s);
}

static void
test_old_danger_leaves_window(void **state)
{
	struct guard_score *s = score_new(30, 10000, 16);
	struct net_cidr a = key("2001:db8::/64");
	uint64_t sum;
	assert_int_equal(guard_score_add(s, &a, 10, 0, &sum), 0);
	assert_int_equal(guard_score_add(s, &a, 10, 5000, &sum), 0);
	/* the first event is exactly one window old: it no longer counts */
	assert_int_equal(guard_score_add(s, &a, 10, 10000, &sum), 0);
	assert_int_equal(sum, 20);
	assert_int_equal(guard_score_add(s, &a, 10, 14999, &sum), 1);
	guard_score_free(s);
}

static void
test_expire_and_forget(void **state)
{
	struct guard_score *s = score_new(100, 1000, 16);
	struct net_cidr a = key("192.0.2.1"), b = key("192.0.2.2");
	uint64_t sum;
	guard_score_add(s, &a, 10, 0, &sum);
	guard_score_add(s, &b, 10, 500, &sum);
	guard_score_expire(s, 1000);
	assert_int_equal(guard_score_count(s), 1);
	guard_score_forget(s, &b);
	assert_int_equal(guard_score_count(s), 0);
	guard_score_forget(s, &b);
	guard_score_free(s);
}

/* At the cap the least recently active source goes, not the busy one. */
static void
test_bounded_sources(void **state)
{
	struct guard_score *s = score_new(1000, 3600000, 4);
	char name[32];
	uint64_t sum;
	struct net_cidr busy = key("198.51.100.1");
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "203.0.113.%d", i);
		struct net_cidr k = key(name);
		assert_int_equal(guard_score_add(s, &k, 1, (uint64_t)i * 10, &sum), 0);
		assert_int_equal(guard_score_add(s, &busy, 1, (uint64_t)i * 10 + 1, &sum), 0);
		assert_true(guard_score_count(s) <= 4);
	}
	assert_int_equal(sum, GUARD_SCORE_EVENTS); /* never evicted: every event kept */
	guard_score_free(s);
}

/* Only the latest GUARD_SCORE_EVENTS events are kept: more small events never overflow. */
static void
test_ring_keeps_latest(void **state)
{
	struct guard_score *s = score_new(1000, 3600000, 4);
	struct net_cidr a = key("192.0.2.9");
	uint64_t sum = 0;
	for (int i = 0; i < 100; i++)
		assert_int_equal(guard_score_add(s, &a, 2, (uint64_t)i, &sum), 0);
	assert_int_equal(sum, 2 * GUARD_SCORE_EVENTS);
	guard_score_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_threshold_reached_on_third),
	    cmocka_unit_test(test_old_danger_leaves_window),
	    cmocka_unit_test(test_expire_and_forget),
	    cmocka_unit_test(test_bounded_sources),
	    cmocka_unit_test(test_ring_keeps_latest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
