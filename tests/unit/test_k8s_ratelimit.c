// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Request pacing: the client's token bucket and the jittered backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "k8s/ratelimit.h"

static void test_bucket_burst_then_qps(void **state)
{
	struct k8s_bucket b;
	uint64_t t = 1000;

	(void)state;
	k8s_bucket_init(&b, 10, 3, t);
	/* The burst goes at once... */
	for (int i = 0; i < 3; i++)
		assert_int_equal(k8s_bucket_take(&b, t), 0);
	/* ...then one token per 100 ms at 10 QPS. */
	assert_in_range(k8s_bucket_take(&b, t), 99, 101);
	assert_in_range(k8s_bucket_take(&b, t + 50), 49, 51);
	assert_int_equal(k8s_bucket_take(&b, t + 100), 0);
	assert_true(k8s_bucket_take(&b, t + 100) > 0);
	/* A long idle period refills only up to the burst. */
	t += 100000;
	for (int i = 0; i < 3; i++)
		assert_int_equal(k8s_bucket_take(&b, t), 0);
	assert_true(k8s_bucket_take(&b, t) > 0);
	/* A clock that does not move never hands out more. */
	assert_true(k8s_bucket_take(&b, t) > 0);

	/* 100 requests over 10 s at 10 QPS, burst 1: all paced, none lost. */
	k8s_bucket_init(&b, 10, 1, 0);
	{
		int granted = 0;

		for (uint64_t ms = 0; ms < 10000; ms++)
			granted += k8s_bucket_take(&b, ms) == 0;
		assert_in_range(granted, 100, 101);
	}
	/* qps <= 0: no limit. */
	k8s_bucket_init(&b, 0, 1, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(k8s_bucket_take(&b, 0), 0);
}

static void test_backoff_full_jitter(void **state)
{
	(void)state;
	/* The ceiling doubles per attempt: rnd at max gives the ceiling. */
	assert_int_equal(k8s_backoff_ms(1, 1000, 120000, UINT32_MAX, 0), 1000);
	assert_int_equal(k8s_backoff_ms(2, 1000, 120000, UINT32_MAX, 0), 2000);
	assert_int_equal(k8s_backoff_ms(3, 1000, 120000, UINT32_MAX, 0), 4000);
	/* Capped at max, however many attempts. */
	assert_int_equal(k8s_backoff_ms(30, 1000, 120000, UINT32_MAX, 0), 120000);
	assert_int_equal(k8s_backoff_ms(4000000000u, 1000, 120000, UINT32_MAX, 0), 120000);
	/* Full jitter: anywhere from 0. */
	assert_int_equal(k8s_backoff_ms(5, 1000, 120000, 0, 0), 0);
	assert_int_equal(k8s_backoff_ms(1, 1000, 120000, UINT32_MAX / 2, 0), 500);
	/* Retry-After is a floor, above max too, but not without bound. */
	assert_int_equal(k8s_backoff_ms(1, 1000, 120000, 0, 5), 5000);
	assert_int_equal(k8s_backoff_ms(1, 100, 1000, 0, 2), 2000);
	assert_int_equal(k8s_backoff_ms(1, 1000, 120000, 0, 3600), 600000);
	assert_int_equal(k8s_backoff_ms(8, 1000, 120000, UINT32_MAX, 2), 120000);
}

static void test_rand_spreads(void **state)
{
	uint32_t s = 0, lo = 0, hi = 0;

	(void)state;
	/* A zero seed still produces values; they cover both halves. */
	for (int i = 0; i < 1000; i++) {
		uint32_t v = k8s_rand_next(&s);

		if (v < UINT32_MAX / 2)
			lo++;
		else
			hi++;
	}
	assert_in_range(lo, 400, 600);
	assert_in_range(hi, 400, 600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket_burst_then_qps),
	    cmocka_unit_test(test_backoff_full_jitter),
	    cmocka_unit_test(test_rand_spreads),
	};

	return cmocka_run_group_tests_name("k8s_ratelimit", tests, NULL, NULL);
}
