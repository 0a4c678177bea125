// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Conntrack garbage collection (agent/datapath/ct_gc.c) on real BPF maps
 * made with bpf_map_create() from the include/axon/ct.h and nat.h structs
 * (the layout the tc programs use), filled by the test: exactly the expired
 * entries go, each with its NAT pair; live entries and their NAT entries
 * stay; the interval adapts; flush empties all three maps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>

#include "axon/ct.h"
#include "axon/nat.h"
#include "datapath/ct_gc.h"

#define NOW	100000u
#define NODE_IP "192.168.1.10"

static int ct_tcp = -1, ct_any = -1, nat = -1;

static int map_new(const char *name, size_t key, size_t value, __u32 max)
{
	return bpf_map_create(BPF_MAP_TYPE_LRU_HASH, name, key, value, max, NULL);
}

static int count(int fd, size_t key_size)
{
	__u8 cur[64], next[64];
	int n = 0;

	(void)key_size;
	if (bpf_map_get_next_key(fd, NULL, next))
		return 0;
	do {
		memcpy(cur, next, sizeof(cur));
		n++;
	} while (!bpf_map_get_next_key(fd, cur, next));
	return n;
}

static struct ct4_key flow_key(const char *src, __u16 sport, const char *dst, __u16 dport,
			       __u8 proto, __u8 dir)
{
	struct ct4_key k = {
	    .saddr = inet_addr(src),
	    .daddr = inet_addr(dst),
	    .sport = htons(sport),
	    .dport = htons(dport),
	    .nexthdr = proto,
	    .flags = dir,
	};
	return k;
}

/* A flow as the tc programs would leave it: its CT entry and, when
 * masqueraded to NODE_IP:nat_port, the NAT pair. */
static void add_flow(int ct_fd, const struct ct4_key *k, __u32 lifetime, __u16 nat_port)
{
	struct ct4_entry e = {.lifetime = lifetime, .tx_packets = 1};

	if (nat_port) {
		struct nat4_key egress = {
		    .daddr = k->daddr,
		    .saddr = k->saddr,
		    .dport = k->dport,
		    .sport = k->sport,
		    .nexthdr = k->nexthdr,
		    .dir = NAT_DIR_EGRESS,
		};
		struct nat4_key ingress = {
		    .daddr = inet_addr(NODE_IP),
		    .saddr = k->daddr,
		    .dport = htons(nat_port),
		    .sport = k->dport,
		    .nexthdr = k->nexthdr,
		    .dir = NAT_DIR_INGRESS,
		};
		struct nat4_entry out = {.to_addr = inet_addr(NODE_IP), .to_port = htons(nat_port)};
		struct nat4_entry in = {.to_addr = k->saddr, .to_port = k->sport};

		e.flags |= CT_F_SNAT;
		e.nat_addr = inet_addr(NODE_IP);
		e.nat_port = htons(nat_port);
		assert_int_equal(bpf_map_update_elem(nat, &egress, &out, BPF_ANY), 0);
		assert_int_equal(bpf_map_update_elem(nat, &ingress, &in, BPF_ANY), 0);
	}
	assert_int_equal(bpf_map_update_elem(ct_fd, k, &e, BPF_ANY), 0);
}

static bool present(int fd, const void *key)
{
	__u8 val[128];

	return !bpf_map_lookup_elem(fd, key, val);
}

static bool nat_ingress_present(const struct ct4_key *k, __u16 nat_port)
{
	struct nat4_key ingress = {
	    .daddr = inet_addr(NODE_IP),
	    .saddr = k->daddr,
	    .dport = htons(nat_port),
	    .sport = k->dport,
	    .nexthdr = k->nexthdr,
	    .dir = NAT_DIR_INGRESS,
	};
	return present(nat, &ingress);
}

static bool nat_egress_present(const struct ct4_key *k)
{
	struct nat4_key egress = {
	    .daddr = k->daddr,
	    .saddr = k->saddr,
	    .dport = k->dport,
	    .sport = k->sport,
	    .nexthdr = k->nexthdr,
	    .dir = NAT_DIR_EGRESS,
	};
	return present(nat, &egress);
}

static int setup(void **state)
{
	(void)state;
	ct_tcp = map_new("ct4_tcp", sizeof(struct ct4_key), sizeof(struct ct4_entry), 16384);
	ct_any = map_new("ct4_any", sizeof(struct ct4_key), sizeof(struct ct4_entry), 16384);
	nat = map_new("nat4", sizeof(struct nat4_key), sizeof(struct nat4_entry), 16384);
	return ct_tcp >= 0 && ct_any >= 0 && nat >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	close(ct_tcp);
	close(ct_any);
	close(nat);
	ct_tcp = ct_any = nat = -1;
	return 0;
}

static void test_deletes_exactly_expired_entries_and_their_nat(void **state)
{
	struct ct4_key live_tcp =
	    flow_key("10.0.0.1", 40000, "1.1.1.1", 443, IPPROTO_TCP, CT_EGRESS);
	struct ct4_key dead_tcp =
	    flow_key("10.0.0.1", 40001, "1.1.1.1", 443, IPPROTO_TCP, CT_EGRESS);
	struct ct4_key dead_plain =
	    flow_key("10.0.0.2", 5000, "10.0.0.3", 80, IPPROTO_TCP, CT_INGRESS);
	struct ct4_key edge = flow_key("10.0.0.2", 5001, "10.0.0.3", 80, IPPROTO_TCP, CT_INGRESS);
	struct ct4_key live_udp =
	    flow_key("10.0.0.1", 53000, "8.8.8.8", 53, IPPROTO_UDP, CT_EGRESS);
	struct ct4_key dead_udp =
	    flow_key("10.0.0.1", 53001, "8.8.8.8", 53, IPPROTO_UDP, CT_EGRESS);
	struct ct_gc gc;

	(void)state;
	add_flow(ct_tcp, &live_tcp, NOW + 100, 33000);
	add_flow(ct_tcp, &dead_tcp, NOW - 1, 33001);
	add_flow(ct_tcp, &dead_plain, NOW - 50, 0);
	add_flow(ct_tcp, &edge, NOW, 0); /* expires at NOW: not yet past */
	add_flow(ct_any, &live_udp, NOW + 10, 33002);
	add_flow(ct_any, &dead_udp, 5, 33003);

	ct_gc_init(&gc, ct_tcp, ct_any, nat, 1000, 64000);
	assert_int_equal(ct_gc_run(&gc, NOW), 0);
	assert_int_equal(gc.last_scanned, 6);
	assert_int_equal(gc.last_deleted, 3);
	assert_int_equal(gc.last_nat_deleted, 4); /* two pairs */
	assert_int_equal(gc.passes, 1);

	assert_true(present(ct_tcp, &live_tcp));
	assert_true(present(ct_tcp, &edge));
	assert_false(present(ct_tcp, &dead_tcp));
	assert_false(present(ct_tcp, &dead_plain));
	assert_true(present(ct_any, &live_udp));
	assert_false(present(ct_any, &dead_udp));

	assert_true(nat_egress_present(&live_tcp));
	assert_true(nat_ingress_present(&live_tcp, 33000));
	assert_true(nat_egress_present(&live_udp));
	assert_true(nat_ingress_present(&live_udp, 33002));
	assert_false(nat_egress_present(&dead_tcp));
	assert_false(nat_ingress_present(&dead_tcp, 33001));
	assert_false(nat_egress_present(&dead_udp));
	assert_false(nat_ingress_present(&dead_udp, 33003));
	assert_int_equal(count(nat, sizeof(struct nat4_key)), 4);
}

/* A reply-side NAT entry that now restores another flow's source (the port
 * was handed on) is not the expired flow's to delete. */
static void test_keeps_nat_entry_reused_by_another_flow(void **state)
{
	struct ct4_key dead = flow_key("10.0.0.1", 40001, "1.1.1.1", 443, IPPROTO_TCP, CT_EGRESS);
	struct nat4_key ingress = {
	    .daddr = inet_addr(NODE_IP),
	    .saddr = dead.daddr,
	    .dport = htons(33001),
	    .sport = dead.dport,
	    .nexthdr = IPPROTO_TCP,
	    .dir = NAT_DIR_INGRESS,
	};
	struct nat4_entry other = {.to_addr = inet_addr("10.0.0.9"), .to_port = htons(41000)};
	struct ct_gc gc;

	(void)state;
	add_flow(ct_tcp, &dead, NOW - 1, 33001);
	assert_int_equal(bpf_map_update_elem(nat, &ingress, &other, BPF_ANY), 0);
	ct_gc_init(&gc, ct_tcp, ct_any, nat, 1000, 64000);
	assert_int_equal(ct_gc_run(&gc, NOW), 0);
	assert_int_equal(gc.last_deleted, 1);
	assert_int_equal(gc.last_nat_deleted, 1);
	assert_false(nat_egress_present(&dead));
	assert_true(present(nat, &ingress));
}

static void test_many_entries_walk_completes(void **state)
{
	struct ct_gc gc;

	(void)state;
	/* More than one bucket's worth, deleting every other entry while
	 * walking: none may be skipped or visited twice. */
	for (int i = 0; i < 2000; i++) {
		struct ct4_key k =
		    flow_key("10.0.0.1", 10000 + i, "1.1.1.1", 80, IPPROTO_TCP, CT_EGRESS);

		add_flow(ct_tcp, &k, i % 2 ? NOW + 1 : NOW - 1, 0);
	}
	ct_gc_init(&gc, ct_tcp, ct_any, nat, 1000, 64000);
	assert_int_equal(ct_gc_run(&gc, NOW), 0);
	assert_int_equal(gc.last_scanned, 2000);
	assert_int_equal(gc.last_deleted, 1000);
	assert_int_equal(count(ct_tcp, sizeof(struct ct4_key)), 1000);
}

static void test_interval_adapts(void **state)
{
	struct ct_gc gc;

	(void)state;
	ct_gc_init(&gc, ct_tcp, ct_any, nat, 1000, 8000);
	assert_int_equal(gc.interval_ms, 1000);

	/* Nothing to delete (empty, then all live): slow down up to the max. */
	assert_int_equal(ct_gc_run(&gc, NOW), 0);
	assert_int_equal(gc.interval_ms, 2000);
	for (int i = 0; i < 20; i++) {
		struct ct4_key k =
		    flow_key("10.0.0.1", 20000 + i, "1.1.1.1", 80, IPPROTO_TCP, CT_EGRESS);

		add_flow(ct_tcp, &k, NOW + 1000, 0);
	}
	assert_int_equal(ct_gc_run(&gc, NOW), 0);
	assert_int_equal(gc.interval_ms, 4000);
	assert_int_equal(ct_gc_run(&gc, NOW), 0);
	assert_int_equal(ct_gc_run(&gc, NOW), 0);
	assert_int_equal(gc.interval_ms, 8000);

	/* Between 5% and 25% deleted: stays. 1 of 20 live + 2 expired = 2/21. */
	for (int i = 0; i < 2; i++) {
		struct ct4_key k =
		    flow_key("10.0.0.2", 20000 + i, "1.1.1.1", 80, IPPROTO_TCP, CT_EGRESS);

		add_flow(ct_tcp, &k, NOW - 1, 0);
	}
	assert_int_equal(ct_gc_run(&gc, NOW), 0);
	assert_int_equal(gc.last_deleted, 2);
	assert_int_equal(gc.interval_ms, 8000);

	/* Most of it expired: speed up, down to the min. */
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 40; i++) {
			struct ct4_key k =
			    flow_key("10.0.0.3", 20000 + i, "1.1.1.1", 80, IPPROTO_UDP, CT_EGRESS);

			add_flow(ct_any, &k, NOW - 1, 0);
		}
		assert_int_equal(ct_gc_run(&gc, NOW), 0);
		assert_int_equal(gc.last_deleted, 40);
	}
	assert_int_equal(gc.interval_ms, 1000);
	assert_int_equal(gc.total_deleted, 2 + 160);
}

static void test_flush_empties_all_maps(void **state)
{
	struct ct_gc gc;

	(void)state;
	for (int i = 0; i < 300; i++) {
		struct ct4_key t =
		    flow_key("10.0.0.1", 30000 + i, "1.1.1.1", 80, IPPROTO_TCP, CT_EGRESS);
		struct ct4_key u =
		    flow_key("10.0.0.1", 30000 + i, "1.1.1.1", 53, IPPROTO_UDP, CT_EGRESS);

		add_flow(ct_tcp, &t, NOW + 100, 40000 + i);
		add_flow(ct_any, &u, NOW + 100, 50000 + i);
	}
	assert_int_equal(count(nat, sizeof(struct nat4_key)), 1200);
	ct_gc_init(&gc, ct_tcp, ct_any, nat, 1000, 8000);
	assert_int_equal(ct_gc_flush(&gc), 0);
	assert_int_equal(count(ct_tcp, sizeof(struct ct4_key)), 0);
	assert_int_equal(count(ct_any, sizeof(struct ct4_key)), 0);
	assert_int_equal(count(nat, sizeof(struct nat4_key)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_deletes_exactly_expired_entries_and_their_nat,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keeps_nat_entry_reused_by_another_flow, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_many_entries_walk_completes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_interval_adapts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_empties_all_maps, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
