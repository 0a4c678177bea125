// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Maglev tables: balance, stability under backend changes, determinism. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "axon/lb.h"
#include "lb/maglev.h"

#define M LB_MAGLEV_TABLE_SIZE

static __u32 table_a[M], table_b[M];

static void backends(struct maglev_backend *b, size_t n, __u32 first_id)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (struct maglev_backend){
			.addr = htonl(0x0af40000 + 5 + i), .port = htons(8080),
			.proto = IPPROTO_TCP, .id = first_id + i,
		};
}

static void test_every_backend_within_one_percent(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 7, 10, 33, 100 };
	struct maglev_backend b[100];

	(void)state;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s], count[101] = {};
		double ideal = (double)M / n;

		backends(b, n, 1);
		assert_int_equal(maglev_fill(b, n, table_a, M), 0);
		for (size_t j = 0; j < M; j++) {
			assert_true(table_a[j] >= 1 && table_a[j] <= n);
			count[table_a[j]]++;
		}
		for (size_t i = 1; i <= n; i++)
			if (count[i] < ideal * 0.99 || count[i] > ideal * 1.01)
				fail_msg("n=%zu backend %zu has %zu slots, ideal %.1f", n, i, count[i],
					 ideal);
	}
}

/* Of the slots the remaining backends held, how many changed owner. */
static double disruption(size_t n, size_t removed)
{
	struct maglev_backend b[128], c[128];
	size_t kept_slots = 0, moved = 0, k = 0;

	backends(b, n, 1);
	assert_int_equal(maglev_fill(b, n, table_a, M), 0);
	for (size_t i = 0; i < n; i++)
		if (i != removed)
			c[k++] = b[i];
	assert_int_equal(maglev_fill(c, k, table_b, M), 0);
	for (size_t j = 0; j < M; j++) {
		if (table_a[j] == b[removed].id) {
			/* The removed backend's slots must all go elsewhere. */
			assert_int_not_equal(table_b[j], b[removed].id);
			continue;
		}
		kept_slots++;
		moved += table_a[j] != table_b[j];
	}
	return (double)moved / kept_slots;
}

static void test_removing_a_backend_moves_few_slots(void **state)
{
	double worst = 0;

	(void)state;
	/* Measured: 1.3% worst over these sets (the Maglev paper reports the
	 * same order). The bound is twice that; a table refilled without the
	 * permutations' stability would move ~(N-1)/N. */
	for (size_t n = 3; n <= 100; n += 13)
		for (size_t r = 0; r < n; r += n / 3 + 1) {
			double d = disruption(n, r);

			if (d > worst)
				worst = d;
		}
	print_message("worst share of surviving backends' slots moved: %.4f\n", worst);
	assert_true(worst < 0.03);
}

static void test_deterministic_and_order_independent(void **state)
{
	struct maglev_backend b[10], r[10];

	(void)state;
	backends(b, 10, 1);
	for (size_t i = 0; i < 10; i++)
		r[i] = b[9 - i];
	assert_int_equal(maglev_fill(b, 10, table_a, M), 0);
	assert_int_equal(maglev_fill(r, 10, table_b, M), 0);
	assert_memory_equal(table_a, table_b, sizeof(table_a));
	assert_int_equal(maglev_digest(table_a, M), maglev_digest(table_b, M));
	table_b[7] ^= 1;
	assert_int_not_equal(maglev_digest(table_a, M), maglev_digest(table_b, M));
	assert_int_equal(maglev_fill(b, 0, table_a, M), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_backend_within_one_percent),
		cmocka_unit_test(test_removing_a_backend_moves_few_slots),
		cmocka_unit_test(test_deterministic_and_order_independent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
