// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Map sizes (flags, Cilium's dynamic formula, clamps) and the Prometheus exposition format. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "axon/ct.h"
#include "axon/lb.h"
#include "axon/maps.h"
#include "axon/nat.h"
#include "config.h"
#include "datapath/map_sizes.h"
#include "metrics/collect.h"
#include "metrics/expo.h"
#include "metrics/hist.h"
#include "metrics/map_ops.h"

#define GiB (1ull << 30)

/* What the defaults of the derived maps cost: the formula's denominator. */
static uint64_t default_cost(void)
{
	return (uint64_t)CT4_TCP_MAX * (sizeof(struct ct4_key) + sizeof(struct ct4_entry)) +
	       (uint64_t)CT4_ANY_MAX * (sizeof(struct ct4_key) + sizeof(struct ct4_entry)) +
	       (uint64_t)NAT4_MAX * (sizeof(struct nat4_key) + sizeof(struct nat4_entry)) +
	       (uint64_t)LB4_SOCK_REV_MAX *
		   (sizeof(struct lb4_sock_rev_key) + sizeof(struct lb4_sock_rev_value));
}

static void test_sizes_default_without_ratio(void **state)
{
	struct map_size_flags f = {};
	struct map_sizes s;

	(void)state;
	assert_int_equal(map_sizes_resolve(&f, 64 * GiB, &s, NULL, 0), 0);
	assert_int_equal(map_sizes_for(&s, MAP_CT4_TCP), CT4_TCP_MAX);
	assert_int_equal(map_sizes_for(&s, MAP_NAT4), NAT4_MAX);
	assert_int_equal(map_sizes_for(&s, MAP_LB4_SERVICES), LB4_SERVICES_MAX);
	assert_int_equal(map_sizes_for(&s, MAP_LB4_MAGLEV), LB4_MAGLEV_MAX);
	assert_int_equal(s.source[MS_CT4_TCP], MS_SRC_DEFAULT);
	/* Maps not sized here keep the object's own size. */
	assert_int_equal(map_sizes_for(&s, MAP_IPCACHE), 0);
	assert_int_equal(map_sizes_for(NULL, MAP_CT4_TCP), 0);
}

static void test_sizes_dynamic_is_proportional_and_clamped(void **state)
{
	struct map_size_flags f = { .dynamic_ratio = 0.5 };
	struct map_sizes s;

	(void)state;
	/* Memory x ratio equal to what the defaults cost: every map its default. */
	assert_int_equal(map_sizes_resolve(&f, 2 * default_cost(), &s, NULL, 0), 0);
	assert_int_equal(s.max[MS_CT4_TCP], CT4_TCP_MAX);
	assert_int_equal(s.max[MS_CT4_ANY], CT4_ANY_MAX);
	assert_int_equal(s.max[MS_NAT4], NAT4_MAX);
	assert_int_equal(s.max[MS_LB4_SOCK_REV], LB4_SOCK_REV_MAX);
	assert_int_equal(s.source[MS_NAT4], MS_SRC_DYNAMIC);
	/* The LB maps are not derived (nor in Cilium). */
	assert_int_equal(s.max[MS_LB4_SERVICES], LB4_SERVICES_MAX);
	assert_int_equal(s.source[MS_LB4_SERVICES], MS_SRC_DEFAULT);

	/* Twice the memory: twice the entries. */
	assert_int_equal(map_sizes_resolve(&f, 4 * default_cost(), &s, NULL, 0), 0);
	assert_int_equal(s.max[MS_CT4_TCP], 2 * CT4_TCP_MAX);
	assert_int_equal(s.max[MS_CT4_ANY], 2 * CT4_ANY_MAX);

	/* Little memory: Cilium's floors (128Ki, 64Ki, 128Ki, 64Ki). */
	f.dynamic_ratio = 0.0025;
	assert_int_equal(map_sizes_resolve(&f, 1 * GiB, &s, NULL, 0), 0);
	assert_int_equal(s.max[MS_CT4_TCP], 1u << 17);
	assert_int_equal(s.max[MS_CT4_ANY], 1u << 16);
	assert_int_equal(s.max[MS_NAT4], 1u << 17);
	assert_int_equal(s.max[MS_LB4_SOCK_REV], 1u << 16);

	/* A great deal of memory: capped at 16Mi entries. */
	f.dynamic_ratio = 1;
	assert_int_equal(map_sizes_resolve(&f, 1ull << 50, &s, NULL, 0), 0);
	assert_int_equal(s.max[MS_CT4_TCP], MAP_SIZE_LIMIT_MAX);
	assert_int_equal(s.max[MS_NAT4], MAP_SIZE_LIMIT_MAX);
}

static void test_sizes_explicit_flags_win(void **state)
{
	struct map_size_flags f = { .dynamic_ratio = 1, .lb_map_max = 1000 };
	struct map_sizes s;

	(void)state;
	f.max[MS_CT4_TCP] = 4096;
	f.max[MS_CT4_ANY] = 2048;
	f.max[MS_LB4_SERVICES] = 32;
	assert_int_equal(map_sizes_resolve(&f, 1ull << 40, &s, NULL, 0), 0);
	assert_int_equal(s.max[MS_CT4_TCP], 4096);
	assert_int_equal(s.source[MS_CT4_TCP], MS_SRC_FLAG);
	/* Derived NAT would exceed both conntrack maps: capped at 2/3 of them. */
	assert_int_equal(s.max[MS_NAT4], (4096 + 2048) * 2 / 3);
	/* --bpf-lb-map-max for the LB maps not given their own size. */
	assert_int_equal(s.max[MS_LB4_SERVICES], 32);
	assert_int_equal(s.max[MS_LB4_BACKENDS], 1000);
	assert_int_equal(s.max[MS_LB4_REVERSE_NAT], 1000);
	assert_int_equal(s.max[MS_LB4_AFFINITY], 1000);
	assert_int_equal(s.max[MS_LB4_MAGLEV], LB4_MAGLEV_MAX);
}

static void test_sizes_errors_name_the_flag(void **state)
{
	struct map_size_flags f = {};
	struct map_sizes s;
	char err[256];

	(void)state;
	f.max[MS_NAT4] = 600000;
	f.max[MS_CT4_TCP] = 200000;
	f.max[MS_CT4_ANY] = 100000;
	assert_int_equal(map_sizes_resolve(&f, GiB, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--bpf-nat-global-max"));

	memset(&f, 0, sizeof(f));
	f.max[MS_CT4_TCP] = 100;	/* below Cilium's 1Ki */
	assert_int_equal(map_sizes_resolve(&f, GiB, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--bpf-ct-global-tcp-max: 100"));

	memset(&f, 0, sizeof(f));
	f.dynamic_ratio = 0.5;
	assert_int_equal(map_sizes_resolve(&f, 0, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "memory is unknown"));
}

static int parse(struct agent_config *cfg, char *err, size_t len, ...)
{
	char *argv[16] = { "axon-agent", "--node-name=n1" };
	int argc = 2;
	va_list ap;
	char *a;

	va_start(ap, len);
	while ((a = va_arg(ap, char *)) && argc < 15)
		argv[argc++] = a;
	va_end(ap);
	err[0] = '\0';
	return agent_config_parse(argc, argv, cfg, err, len);
}

static void test_flags(void **state)
{
	struct agent_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse(&cfg, err, sizeof(err), "--bpf-lb-service-map-max=16",
			       "--bpf-ct-global-any-max", "4096", "--bpf-nat-global-max=8192",
			       "--prometheus-serve-addr=:9962", NULL), 0);
	assert_int_equal(cfg.map_sizes.max[MS_LB4_SERVICES], 16);
	assert_int_equal(cfg.map_sizes.max[MS_LB4_BACKENDS], LB4_BACKENDS_MAX);
	assert_int_equal(cfg.map_sizes.max[MS_CT4_ANY], 4096);
	assert_int_equal(cfg.map_sizes.max[MS_NAT4], 8192);
	assert_string_equal(cfg.prometheus_addr, ":9962");
	assert_int_equal(parse(&cfg, err, sizeof(err), NULL), 0);
	assert_string_equal(cfg.prometheus_addr, "");	/* off by default */
	assert_int_equal(cfg.map_size_flags.dynamic_ratio, 0);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--map-dynamic-size-ratio=0.0025", NULL),
			 0);
	assert_true(cfg.map_sizes.dynamic_ratio == 0.0025);
	assert_int_equal(cfg.map_sizes.source[MS_CT4_TCP], MS_SRC_DYNAMIC);

	assert_int_equal(parse(&cfg, err, sizeof(err), "--bpf-map-dynamic-size-ratio=2", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "--bpf-map-dynamic-size-ratio: '2'"));
	assert_int_equal(parse(&cfg, err, sizeof(err), "--bpf-lb-service-map-max=8", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "--bpf-lb-service-map-max: 8 must be in 16.."));
	assert_int_equal(parse(&cfg, err, sizeof(err), "--prometheus-serve-addr=9962", NULL),
			 -EINVAL);
	assert_non_null(strstr(err, "--prometheus-serve-addr: '9962' is not [HOST]:PORT"));
	assert_int_equal(parse(&cfg, err, sizeof(err), "--prometheus-serve-addr=:0", NULL),
			 -EINVAL);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--prometheus-serve-addr=[::1]:9962", NULL),
			 0);
}

static void test_expo_format_and_escaping(void **state)
{
	struct expo e;
	struct expo_label l[] = { { "map_name", "ct4_tcp" },
				  { "reason", "a \"quoted\" back\\slash\nnewline" } };

	(void)state;
	expo_init(&e);
	expo_family(&e, "axon_x", "gauge", "Help with a \\ and a\nnewline, \"quotes\" kept.");
	expo_sample(&e, "axon_x", l, 1, 0.25);
	expo_sample(&e, "axon_x", l, 2, 3);
	expo_sample(&e, "axon_x", NULL, 0, 1e20);
	expo_sample(&e, "axon_x", NULL, 0, NAN);
	expo_sample(&e, "axon_x", NULL, 0, -INFINITY);
	assert_int_equal(e.err, 0);
	assert_string_equal(e.buf,
			    "# HELP axon_x Help with a \\\\ and a\\nnewline, \"quotes\" kept.\n"
			    "# TYPE axon_x gauge\n"
			    "axon_x{map_name=\"ct4_tcp\"} 0.25\n"
			    "axon_x{map_name=\"ct4_tcp\",reason=\"a \\\"quoted\\\" back\\\\slash"
			    "\\nnewline\"} 3\n"
			    "axon_x 1e+20\n"
			    "axon_x NaN\n"
			    "axon_x -Inf\n");
	expo_free(&e);
}

static void test_expo_grows(void **state)
{
	struct expo e;
	char name[32];

	(void)state;
	expo_init(&e);
	for (int i = 0; i < 5000; i++) {
		struct expo_label l = { "i", name };

		snprintf(name, sizeof(name), "%d", i);
		expo_sample(&e, "axon_many", &l, 1, i);
	}
	assert_int_equal(e.err, 0);
	assert_non_null(strstr(e.buf, "axon_many{i=\"4999\"} 4999\n"));
	assert_int_equal(strlen(e.buf), e.len);
	expo_free(&e);
}

static void test_histogram_cumulative_with_inf(void **state)
{
	static const double b[] = { 0.25, 0.5, 1 };
	struct metrics_hist h = {};
	struct expo e;

	(void)state;
	/* On a bound counts in that bucket; above the last only in +Inf. */
	metrics_hist_observe(&h, b, 3, 0.125);
	metrics_hist_observe(&h, b, 3, 0.25);
	metrics_hist_observe(&h, b, 3, 0.75);
	metrics_hist_observe(&h, b, 3, 2.5);
	expo_init(&e);
	expo_histogram(&e, "axon_t_seconds", "T.", &h, b, 3);
	assert_int_equal(e.err, 0);
	assert_string_equal(e.buf, "# HELP axon_t_seconds T.\n"
				   "# TYPE axon_t_seconds histogram\n"
				   "axon_t_seconds_bucket{le=\"0.25\"} 2\n"
				   "axon_t_seconds_bucket{le=\"0.5\"} 2\n"
				   "axon_t_seconds_bucket{le=\"1\"} 3\n"
				   "axon_t_seconds_bucket{le=\"+Inf\"} 4\n"
				   "axon_t_seconds_sum 3.625\n"
				   "axon_t_seconds_count 4\n");
	expo_free(&e);
}

/* The policy families in a full render, from a published state. */
static void test_policy_metrics_rendered(void **state)
{
	struct metrics_state st = {};
	struct map_fill fill = {};
	struct expo e;
	const char *want[] = {
		"# TYPE axon_policy_computation_seconds histogram\n",
		"axon_policy_computation_seconds_bucket{le=\"0.005\"} 1\n",
		"axon_policy_computation_seconds_bucket{le=\"+Inf\"} 2\n",
		"axon_policy_computation_seconds_count 2\n",
		"# TYPE axon_policy_time_to_enforce_seconds histogram\n",
		"axon_policy_time_to_enforce_seconds_bucket{le=\"0.05\"} 0\n",
		"axon_policy_time_to_enforce_seconds_bucket{le=\"0.1\"} 1\n",
		"axon_policy_time_to_enforce_seconds_sum 0.0625\n",
		"# TYPE axon_policy_entries histogram\n",
		"axon_policy_entries_bucket{le=\"0\"} 1\n",
		"axon_policy_entries_bucket{le=\"16\"} 1\n",
		"axon_policy_entries_bucket{le=\"64\"} 2\n",
		"axon_policy_entries_bucket{le=\"65536\"} 3\n",
		"axon_policy_entries_sum 20050\n",
		"axon_policy_entries_count 3\n",
		"# TYPE axon_policy_endpoints_failed gauge\naxon_policy_endpoints_failed 2\n",
	};

	(void)state;
	metrics_hist_observe(&st.pol.compute, metrics_pol_seconds_bounds, metrics_pol_seconds_n,
			     0.004);
	metrics_hist_observe(&st.pol.compute, metrics_pol_seconds_bounds, metrics_pol_seconds_n,
			     12);
	metrics_hist_observe(&st.pol.enforce, metrics_pol_seconds_bounds, metrics_pol_seconds_n,
			     0.0625);
	metrics_hist_observe(&st.pol.entries, metrics_pol_entries_bounds, metrics_pol_entries_n, 0);
	metrics_hist_observe(&st.pol.entries, metrics_pol_entries_bounds, metrics_pol_entries_n,
			     50);
	metrics_hist_observe(&st.pol.entries, metrics_pol_entries_bounds, metrics_pol_entries_n,
			     20000);
	st.pol.endpoints_failed = 2;
	expo_init(&e);
	metrics_render(&e, &fill, -1, &st);
	assert_int_equal(e.err, 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!strstr(e.buf, want[i]))
			fail_msg("missing: %s", want[i]);
	}
	expo_free(&e);
}

static void count_visit(void *ctx, const char *map, const char *op, const char *outcome,
			uint64_t v)
{
	char *out = ctx;

	snprintf(out + strlen(out), 512 - strlen(out), "%s/%s/%s=%llu ", map, op, outcome,
		 (unsigned long long)v);
}

static void test_map_ops_counted_by_outcome(void **state)
{
	char out[512] = "";

	(void)state;
	map_ops_count(MAP_LB4_SERVICES, MAP_OP_UPDATE, 0);
	map_ops_count(MAP_LB4_SERVICES, MAP_OP_UPDATE, -E2BIG);
	map_ops_count(MAP_LB4_SERVICES, MAP_OP_UPDATE, -E2BIG);
	map_ops_count(MAP_IPCACHE, MAP_OP_DELETE, -ENOENT);	/* gone already: success */
	map_ops_count("not_a_map", MAP_OP_DELETE, -EPERM);
	map_ops_visit(count_visit, out);
	assert_string_equal(out, "lb4_services/update/success=1 lb4_services/update/fail=2 "
				 "ipcache/delete/success=1 other/delete/fail=1 ");
}

static void batch_visit(void *ctx, const char *map, const char *outcome, uint64_t v)
{
	count_visit(ctx, map, "batch", outcome, v);
}

static void test_map_batches_counted_per_element(void **state)
{
	char out[512] = "";

	(void)state;
	/* A batch of 300 that stopped at its 201st element, and one refused. */
	map_ops_count_n(MAP_LB4_BACKENDS, MAP_OP_UPDATE, 0, 200);
	map_ops_count(MAP_LB4_BACKENDS, MAP_OP_UPDATE, -E2BIG);
	map_ops_count_batch(MAP_LB4_BACKENDS, -E2BIG);
	map_ops_count_batch(MAP_LB4_REVERSE_NAT, -EINVAL);
	map_ops_count_n(MAP_LB4_BACKENDS, MAP_OP_UPDATE, 0, 0);
	map_ops_count_batch(MAP_LB4_BACKENDS, 0);
	map_ops_visit(count_visit, out);
	assert_non_null(strstr(out, "lb4_backends/update/success=200 lb4_backends/update/fail=1 "));
	out[0] = '\0';
	map_batches_visit(batch_visit, out);
	assert_string_equal(out, "lb4_backends/batch/success=1 lb4_backends/batch/fail=1 "
				 "lb4_reverse_nat/batch/fail=1 ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_default_without_ratio),
		cmocka_unit_test(test_sizes_dynamic_is_proportional_and_clamped),
		cmocka_unit_test(test_sizes_explicit_flags_win),
		cmocka_unit_test(test_sizes_errors_name_the_flag),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_expo_format_and_escaping),
		cmocka_unit_test(test_expo_grows),
		cmocka_unit_test(test_histogram_cumulative_with_inf),
		cmocka_unit_test(test_policy_metrics_rendered),
		cmocka_unit_test(test_map_ops_counted_by_outcome),
		cmocka_unit_test(test_map_batches_counted_per_element),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
