// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agent/lb/src_range.c on a real lb4_source_range LPM trie: what a service's
 * spec wants is written, what it stops wanting deleted, entries found at start
 * claimed or pruned, drift repaired by the full pass, and the datapath's
 * lookup (the longest prefix of frontend + client) finds exactly the ranges
 * written.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <bpf/bpf.h>

#include "axon/lb.h"
#include "lb/src_range.h"

static __be32 ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static int lpm_create(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	int fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "lb4_source_range",
				sizeof(struct lb4_src_range_key), 1, 64, &opts);

	assert_true(fd >= 0);
	return fd;
}

static int entries(int fd)
{
	struct lb4_src_range_key k, next;
	int n = 0;

	while (!bpf_map_get_next_key(fd, n ? &k : NULL, &next)) {
		k = next;
		n++;
	}
	return n;
}

/* As the datapath looks: is @client allowed on frontend @fe:@port/TCP? */
static bool allowed(int fd, const char *fe, __u16 port, const char *client)
{
	struct lb4_src_range_key k = {.prefixlen = LB_SRC_RANGE_PREFIX(32),
				      .fe_address = ip(fe),
				      .fe_port = htons(port),
				      .proto = IPPROTO_TCP,
				      .client = ip(client)};
	__u8 v;

	return !bpf_map_lookup_elem(fd, &k, &v);
}

static void raw_add(int fd, const char *fe, __u16 port, const char *client, __u8 len)
{
	struct lb4_src_range_key k = {.prefixlen = LB_SRC_RANGE_PREFIX(len),
				      .fe_address = ip(fe),
				      .fe_port = htons(port),
				      .proto = IPPROTO_TCP,
				      .client = ip(client)};
	__u8 one = 1;

	assert_int_equal(bpf_map_update_elem(fd, &k, &one, BPF_ANY), 0);
}

struct fx {
	struct lb_frontend_spec fe[2];
	struct ipv4_prefix ranges[2];
	struct lb_service_spec spec;
};

/* A LoadBalancer IP and a NodePort, both with @n of the ranges. */
static void spec_init(struct fx *f, size_t n, bool flag)
{
	memset(f, 0, sizeof(*f));
	f->ranges[0] = (struct ipv4_prefix){.addr = ip("192.168.50.7"), .len = 24};
	f->ranges[1] = (struct ipv4_prefix){.addr = ip("203.0.113.1"), .len = 32};
	for (int i = 0; i < 2; i++) {
		f->fe[i] = (struct lb_frontend_spec){
		    .addr = ip(i ? "192.168.1.1" : "172.16.0.10"),
		    .port = htons(i ? 30080 : 80),
		    .proto = IPPROTO_TCP,
		    .flags = i ? SVC_FLAG_NODE_PORT : SVC_FLAG_LOAD_BALANCER,
		    .flags2 = flag ? SVC_FLAG2_SOURCE_RANGE : 0,
		    .src_ranges = f->ranges,
		    .n_src_ranges = n,
		};
	}
	f->spec.frontends = f->fe;
	f->spec.n_frontends = 2;
}

static void sync_spec(struct lb_src_ranges *sr, const struct fx *f)
{
	assert_int_equal(lb_src_ranges_add(sr, "default/web", &f->spec), 0);
	assert_int_equal(lb_src_ranges_commit(sr, "default/web", &f->spec), 0);
}

/* Ranges written (host bits cleared), narrowed, then gone with the flag. */
static void test_written_changed_removed(void **state)
{
	struct lb_src_ranges sr;
	int fd = lpm_create();
	struct fx f;

	(void)state;
	assert_int_equal(lb_src_ranges_init(&sr), 0);
	assert_int_equal(lb_src_ranges_open(&sr, fd), 0);

	spec_init(&f, 2, true);
	sync_spec(&sr, &f);
	assert_int_equal(entries(fd), 4);
	assert_true(allowed(fd, "172.16.0.10", 80, "192.168.50.200"));
	assert_true(allowed(fd, "192.168.1.1", 30080, "203.0.113.1"));
	assert_false(allowed(fd, "172.16.0.10", 80, "203.0.113.2"));
	assert_false(allowed(fd, "172.16.0.10", 81, "192.168.50.200"));

	spec_init(&f, 1, true);
	sync_spec(&sr, &f);
	assert_int_equal(entries(fd), 2);
	assert_false(allowed(fd, "192.168.1.1", 30080, "203.0.113.1"));
	assert_true(allowed(fd, "192.168.1.1", 30080, "192.168.50.1"));

	/* Without the flag (no ranges listed) nothing is wanted. */
	spec_init(&f, 1, false);
	sync_spec(&sr, &f);
	assert_int_equal(entries(fd), 0);
	lb_src_ranges_destroy(&sr);
	close(fd);
}

/* A restart: entries found in the map are kept when still wanted and pruned
 * when not; a service deleted meanwhile (empty spec) leaves nothing. */
static void test_restored_claimed_and_pruned(void **state)
{
	struct lb_service_spec none = {0};
	struct lb_src_ranges sr;
	int fd = lpm_create();
	struct fx f;

	(void)state;
	raw_add(fd, "172.16.0.10", 80, "192.168.50.0", 24); /* still wanted */
	raw_add(fd, "172.16.0.10", 80, "10.0.0.0", 8);	    /* no longer */
	raw_add(fd, "172.16.0.99", 80, "10.0.0.0", 8);	    /* a service gone */
	assert_int_equal(lb_src_ranges_init(&sr), 0);
	assert_int_equal(lb_src_ranges_open(&sr, fd), 0);

	spec_init(&f, 1, true);
	sync_spec(&sr, &f);
	assert_int_equal(entries(fd), 4);
	assert_int_equal(lb_src_ranges_prune(&sr), 0);
	assert_int_equal(entries(fd), 2);
	assert_true(allowed(fd, "172.16.0.10", 80, "192.168.50.3"));
	assert_false(allowed(fd, "172.16.0.10", 80, "10.1.2.3"));

	assert_int_equal(lb_src_ranges_add(&sr, "default/web", &none), 0);
	assert_int_equal(lb_src_ranges_commit(&sr, "default/web", &none), 0);
	assert_int_equal(entries(fd), 0);
	lb_src_ranges_destroy(&sr);
	close(fd);
}

static void raw_delete(int fd, const char *fe, __u16 port, const char *client, __u8 len)
{
	struct lb4_src_range_key k = {.prefixlen = LB_SRC_RANGE_PREFIX(len),
				      .fe_address = ip(fe),
				      .fe_port = htons(port),
				      .proto = IPPROTO_TCP,
				      .client = ip(client)};

	assert_int_equal(bpf_map_delete_elem(fd, &k), 0);
}

/* The full pass: an entry deleted behind the agent's back is written again, a
 * stray one deleted; in sync, it changes nothing. Realizing the unchanged spec
 * again does not write what the set records (the full pass is what notices). */
static void test_resync_repairs_drift(void **state)
{
	struct lb_src_ranges sr;
	int fd = lpm_create();
	struct fx f;

	(void)state;
	assert_int_equal(lb_src_ranges_init(&sr), 0);
	assert_int_equal(lb_src_ranges_open(&sr, fd), 0);
	spec_init(&f, 2, true);
	sync_spec(&sr, &f);
	assert_int_equal(lb_src_ranges_prune(&sr), 0);
	assert_int_equal(lb_src_ranges_resync(&sr), 0);
	assert_int_equal(entries(fd), 4);

	raw_delete(fd, "172.16.0.10", 80, "192.168.50.0", 24);
	raw_add(fd, "172.16.0.10", 80, "10.0.0.0", 8);
	assert_true(allowed(fd, "172.16.0.10", 80, "10.9.9.9"));
	sync_spec(&sr, &f);
	assert_false(allowed(fd, "172.16.0.10", 80, "192.168.50.200"));

	assert_int_equal(lb_src_ranges_resync(&sr), 2);
	assert_int_equal(entries(fd), 4);
	assert_true(allowed(fd, "172.16.0.10", 80, "192.168.50.200"));
	assert_false(allowed(fd, "172.16.0.10", 80, "10.9.9.9"));
	assert_int_equal(lb_src_ranges_resync(&sr), 0);
	lb_src_ranges_destroy(&sr);
	close(fd);
}

/* Without the map nothing is written and nothing fails. */
static void test_no_map(void **state)
{
	struct lb_src_ranges sr;
	struct fx f;

	(void)state;
	assert_int_equal(lb_src_ranges_init(&sr), 0);
	assert_false(lb_src_ranges_available(&sr));
	spec_init(&f, 2, true);
	sync_spec(&sr, &f);
	assert_int_equal(lb_src_ranges_prune(&sr), 0);
	assert_int_equal(lb_src_ranges_resync(&sr), 0);
	lb_src_ranges_destroy(&sr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_written_changed_removed),
	    cmocka_unit_test(test_restored_claimed_and_pruned),
	    cmocka_unit_test(test_resync_repairs_drift),
	    cmocka_unit_test(test_no_map),
	};

	return cmocka_run_group_tests_name("src_range", tests, NULL, NULL);
}
