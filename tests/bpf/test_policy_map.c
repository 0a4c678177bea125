// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agent/policy/map.c against real maps: an ARRAY_OF_MAPS like the
 * datapath's "policy" (its template an LPM trie of include/axon/policy.h's
 * layout) and the tries the writer creates in it. Checked: the entries in
 * the trie (keys, prefixes, values), which writes a diff does and does not
 * do (counters of untouched entries survive, stats), deny precedence,
 * -ENOSPC per endpoint with the old policy kept, a new trie swapped in when
 * the size changes or the transition needs the room, validation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "axon/policy.h"
#include "policy/map.h"

#define ING POLICY_DIR_INGRESS
#define EGR POLICY_DIR_EGRESS

static struct {
	int outer;
	struct policy_maps pm;
} fx;

static int setup(void **state)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, oopts);
	int tmpl;

	(void)state;
	tmpl = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "tmpl", sizeof(struct policy_key),
			      sizeof(struct policy_entry), 1, &opts);
	if (tmpl < 0) {
		fprintf(stderr, "test_policy_map: LPM trie: %s (run as root)\n", strerror(errno));
		return -1;
	}
	oopts.inner_map_fd = tmpl;
	fx.outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "policy", sizeof(__u32),
				  sizeof(__u32), 64, &oopts);
	close(tmpl);
	if (fx.outer < 0)
		return -1;
	policy_maps_init(&fx.pm, fx.outer, 8);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(fx.outer);
	return 0;
}

/* The trie in @id's slot: its fd (the caller closes it), or -1. */
static int trie_of(__u16 id)
{
	__u32 slot = id, map_id;

	if (bpf_map_lookup_elem(fx.outer, &slot, &map_id))
		return -1;
	return bpf_map_get_fd_by_id(map_id);
}

static __u32 trie_id(__u16 id)
{
	int fd = trie_of(id);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (fd < 0)
		return 0;
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	return info.id;
}

static __u32 trie_max(__u16 id)
{
	int fd = trie_of(id);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	return info.max_entries;
}

static struct policy_key key_of(__u32 identity, __u8 dir, __u8 proto, __u16 port, __u8 l4)
{
	struct policy_key k = {.prefixlen = POLICY_KEY_PREFIXLEN(l4),
			       .sec_label = identity,
			       .egress = dir,
			       .protocol = proto,
			       .dport = htons(port)};

	return k;
}

/* The entry with exactly this key: 0 and *v, or -ENOENT. */
static int entry_get(__u16 id, struct policy_key k, struct policy_entry *v)
{
	struct policy_key next, last;
	int fd = trie_of(id), ret = -ENOENT;
	bool first = true;

	assert_true(fd >= 0);
	while (!bpf_map_get_next_key(fd, first ? NULL : &last, &next)) {
		first = false;
		last = next;
		if (!memcmp(&next, &k, sizeof(k))) {
			assert_int_equal(bpf_map_lookup_elem(fd, &k, v), 0);
			ret = 0;
			break;
		}
	}
	close(fd);
	return ret;
}

static int trie_count(__u16 id)
{
	struct policy_key next, last;
	int fd = trie_of(id), n = 0;

	assert_true(fd >= 0);
	while (!bpf_map_get_next_key(fd, n ? &last : NULL, &next)) {
		last = next;
		n++;
	}
	close(fd);
	return n;
}

/* Give the entry counters, as the datapath would have. */
static void entry_count(__u16 id, struct policy_key k, __u64 packets)
{
	struct policy_entry v;
	int fd = trie_of(id);

	assert_int_equal(entry_get(id, k, &v), 0);
	v.packets = packets;
	v.bytes = packets * 100;
	assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_EXIST), 0);
	close(fd);
}

static int set(__u16 id, const struct policy_map_entry *e, size_t n, struct policy_map_result *r)
{
	return policy_map_set(&fx.pm, id, e, n, r);
}

/* A first set creates the endpoint's trie, sized by map_max, with the
 * entries in Cilium's layout: prefixes over protocol and port, the
 * protocol-and-port prefix in the value, port in network order. */
static void test_creates_trie_with_entries(void **state)
{
	const struct policy_map_entry e[] = {
	    {.identity = 1001, .dir = ING},
	    {.identity = 1001, .dir = ING, .proto = IPPROTO_TCP, .port = 8080, .port_prefix = 16},
	    {.dir = EGR, .proto = IPPROTO_UDP, .port = 8080, .port_prefix = 13},
	    {.identity = 2, .dir = EGR, .proto = IPPROTO_ICMP, .deny = true},
	};
	struct policy_map_result r;
	struct policy_entry v;

	(void)state;
	assert_int_equal(trie_of(1), -1);
	assert_int_equal(set(1, e, 4, &r), 0);
	assert_int_equal(r.added, 4);
	assert_true(r.replaced);
	assert_int_equal(trie_max(1), 8);
	assert_int_equal(trie_count(1), 4);
	assert_int_equal(entry_get(1, key_of(1001, ING, 0, 0, 0), &v), 0);
	assert_int_equal(v.flags, 0);
	assert_int_equal(v.lpm_prefix_length, 0);
	assert_int_equal(entry_get(1, key_of(1001, ING, IPPROTO_TCP, 8080, 24), &v), 0);
	assert_int_equal(v.lpm_prefix_length, 24);
	assert_int_equal(entry_get(1, key_of(0, EGR, IPPROTO_UDP, 8080, 21), &v), 0);
	assert_int_equal(v.lpm_prefix_length, 21);
	assert_int_equal(entry_get(1, key_of(2, EGR, IPPROTO_ICMP, 0, 8), &v), 0);
	assert_int_equal(v.flags, POLICY_F_DENY);
	assert_int_equal(v.proxy_port, 0);
	assert_int_equal(v.auth_type, 0);
}

/* The same set again writes nothing (counters survive); a changed set
 * writes only the difference. */
static void test_diff_writes_only_changes(void **state)
{
	struct policy_map_entry e[] = {
	    {.identity = 1001, .dir = ING},
	    {.identity = 1002, .dir = ING},
	    {.identity = 1003, .dir = ING, .proto = IPPROTO_TCP, .port = 80, .port_prefix = 16},
	};
	struct policy_map_result r;
	struct policy_entry v;
	__u32 id;

	(void)state;
	assert_int_equal(set(2, e, 3, &r), 0);
	id = trie_id(2);
	entry_count(2, key_of(1001, ING, 0, 0, 0), 5);
	entry_count(2, key_of(1002, ING, 0, 0, 0), 6);
	entry_count(2, key_of(1003, ING, IPPROTO_TCP, 80, 24), 7);

	assert_int_equal(set(2, e, 3, &r), 0);
	assert_int_equal(r.unchanged, 3);
	assert_int_equal(r.added + r.updated + r.deleted, 0);
	assert_false(r.replaced);
	assert_int_equal(entry_get(2, key_of(1001, ING, 0, 0, 0), &v), 0);
	assert_int_equal(v.packets, 5);

	/* 1002 goes, 1004 comes, 1003's port becomes a deny. */
	e[1].identity = 1004;
	e[2].deny = true;
	assert_int_equal(set(2, e, 3, &r), 0);
	assert_int_equal(r.added, 1);
	assert_int_equal(r.deleted, 1);
	assert_int_equal(r.updated, 1);
	assert_int_equal(r.unchanged, 1);
	assert_false(r.replaced);
	assert_int_equal(trie_id(2), id); /* in place */
	assert_int_equal(trie_count(2), 3);
	assert_int_equal(entry_get(2, key_of(1001, ING, 0, 0, 0), &v), 0);
	assert_int_equal(v.packets, 5);
	assert_int_equal(v.bytes, 500);
	assert_int_equal(entry_get(2, key_of(1002, ING, 0, 0, 0), &v), -ENOENT);
	assert_int_equal(entry_get(2, key_of(1004, ING, 0, 0, 0), &v), 0);
	assert_int_equal(v.packets, 0);
	assert_int_equal(entry_get(2, key_of(1003, ING, IPPROTO_TCP, 80, 24), &v), 0);
	assert_int_equal(v.flags, POLICY_F_DENY);
	assert_int_equal(v.packets, 0); /* rewritten: counts again from 0 */

	/* The empty set empties the trie; it stays (an enforced endpoint
	 * then allows nothing). */
	assert_int_equal(set(2, NULL, 0, &r), 0);
	assert_int_equal(r.deleted, 3);
	assert_int_equal(trie_count(2), 0);
	assert_int_equal(trie_id(2), id);
}

/* An allow inside a deny of the same identity and direction is left out
 * (the trie would return it, not the deny); a deny of another identity, or
 * narrower than the allow, leaves it in. The same key twice: a deny. */
static void test_deny_precedence(void **state)
{
	const struct policy_map_entry e[] = {
	    {.identity = 1001,
	     .dir = ING,
	     .proto = IPPROTO_TCP,
	     .port = 0,
	     .port_prefix = 6,
	     .deny = true}, /* TCP 0-1023 */
	    {.identity = 1001, .dir = ING, .proto = IPPROTO_TCP, .port = 80, .port_prefix = 16},
	    {.identity = 1001, .dir = ING, .proto = IPPROTO_TCP, .port = 8080, .port_prefix = 16},
	    {.identity = 1002, .dir = ING, .proto = IPPROTO_TCP, .port = 80, .port_prefix = 16},
	    {.identity = 1001, .dir = EGR, .proto = IPPROTO_TCP, .port = 80, .port_prefix = 16},
	    {.identity = 1003, .dir = ING, .proto = IPPROTO_UDP, .deny = true},
	    {.identity = 1003, .dir = ING, .proto = IPPROTO_UDP, .port = 53, .port_prefix = 16},
	    {.identity = 1004, .dir = ING, .deny = true},
	    {.identity = 1004, .dir = ING, .proto = IPPROTO_TCP},
	    {.identity = 1005, .dir = ING},
	    {.identity = 1005,
	     .dir = ING,
	     .proto = IPPROTO_TCP,
	     .port = 22,
	     .port_prefix = 16,
	     .deny = true},
	    {.identity = 1006, .dir = EGR},
	    {.identity = 1006, .dir = EGR, .deny = true},
	};
	struct policy_map_result r;
	struct policy_entry v;

	(void)state;
	fx.pm.map_max = 64;
	assert_int_equal(set(3, e, sizeof(e) / sizeof(e[0]), &r), 0);
	fx.pm.map_max = 8;
	assert_int_equal(r.shadowed, 3);
	assert_int_equal(r.added, 9);
	assert_int_equal(entry_get(3, key_of(1001, ING, IPPROTO_TCP, 80, 24), &v), -ENOENT);
	assert_int_equal(entry_get(3, key_of(1001, ING, IPPROTO_TCP, 8080, 24), &v), 0);
	assert_int_equal(entry_get(3, key_of(1002, ING, IPPROTO_TCP, 80, 24), &v), 0);
	assert_int_equal(entry_get(3, key_of(1001, EGR, IPPROTO_TCP, 80, 24), &v), 0);
	assert_int_equal(entry_get(3, key_of(1003, ING, IPPROTO_UDP, 53, 24), &v), -ENOENT);
	assert_int_equal(entry_get(3, key_of(1004, ING, IPPROTO_TCP, 0, 8), &v), -ENOENT);
	assert_int_equal(entry_get(3, key_of(1005, ING, 0, 0, 0), &v), 0);
	assert_int_equal(entry_get(3, key_of(1005, ING, IPPROTO_TCP, 22, 24), &v), 0);
	assert_int_equal(v.flags, POLICY_F_DENY);
	assert_int_equal(entry_get(3, key_of(1006, EGR, 0, 0, 0), &v), 0);
	assert_int_equal(v.flags, POLICY_F_DENY);
}

/* More entries than the trie may hold: -ENOSPC for that endpoint, whose
 * trie keeps its policy; other endpoints are written as usual. */
static void test_enospc_per_endpoint(void **state)
{
	struct policy_map_entry e[9];
	struct policy_map_result r;
	struct policy_entry v;

	(void)state;
	for (int i = 0; i < 9; i++)
		e[i] = (struct policy_map_entry){.identity = 2000 + i, .dir = ING};
	assert_int_equal(set(4, e, 2, &r), 0);
	assert_int_equal(set(4, e + 2, 7, &r), 0);
	assert_int_equal(set(4, e, 9, &r), -ENOSPC);
	assert_int_equal(trie_count(4), 7);
	assert_int_equal(entry_get(4, key_of(2002, ING, 0, 0, 0), &v), 0);
	assert_int_equal(entry_get(4, key_of(2000, ING, 0, 0, 0), &v), -ENOENT);
	/* Never created when the first set does not fit. */
	assert_int_equal(set(5, e, 9, &r), -ENOSPC);
	assert_int_equal(trie_of(5), -1);
	assert_int_equal(set(6, e, 8, &r), 0);
	assert_int_equal(trie_count(6), 8);
}

/* A full trie whose new set is as large but all different: in place it
 * would need room for both sets' denies at once, so a new trie is filled
 * and swapped in; unchanged entries keep their counters. */
static void test_transition_room_swaps_trie(void **state)
{
	struct policy_map_entry old[8], want[8];
	struct policy_map_result r;
	struct policy_entry v;
	__u32 id;

	(void)state;
	for (int i = 0; i < 8; i++) {
		old[i] = (struct policy_map_entry){.identity = 3000 + i, .dir = EGR, .deny = true};
		want[i] = (struct policy_map_entry){.identity = 3004 + i, .dir = EGR, .deny = true};
	}
	assert_int_equal(set(7, old, 8, &r), 0);
	id = trie_id(7);
	entry_count(7, key_of(3005, EGR, 0, 0, 0), 9);
	assert_int_equal(set(7, want, 8, &r), 0);
	assert_true(r.replaced);
	assert_int_equal(r.added, 4);
	assert_int_equal(r.deleted, 4);
	assert_int_equal(r.unchanged, 4);
	assert_int_not_equal(trie_id(7), id);
	assert_int_equal(trie_count(7), 8);
	assert_int_equal(entry_get(7, key_of(3011, EGR, 0, 0, 0), &v), 0);
	assert_int_equal(entry_get(7, key_of(3000, EGR, 0, 0, 0), &v), -ENOENT);
	assert_int_equal(entry_get(7, key_of(3005, EGR, 0, 0, 0), &v), 0);
	assert_int_equal(v.packets, 9);

	/* Allows replacing allows need no room: stale allows go first. */
	for (int i = 0; i < 8; i++) {
		old[i].deny = false;
		want[i].deny = false;
	}
	assert_int_equal(set(8, old, 8, &r), 0);
	id = trie_id(8);
	assert_int_equal(set(8, want, 8, &r), 0);
	assert_false(r.replaced);
	assert_int_equal(trie_id(8), id);
	assert_int_equal(trie_count(8), 8);
}

/* A trie of another size than --bpf-policy-map-max now asks is replaced
 * by one of that size. */
static void test_size_change_swaps_trie(void **state)
{
	const struct policy_map_entry e[] = {{.identity = 4000, .dir = ING}};
	struct policy_map_result r;

	(void)state;
	assert_int_equal(set(9, e, 1, &r), 0);
	assert_int_equal(trie_max(9), 8);
	fx.pm.map_max = 16;
	assert_int_equal(set(9, e, 1, &r), 0);
	fx.pm.map_max = 8;
	assert_true(r.replaced);
	assert_int_equal(r.unchanged, 1);
	assert_int_equal(trie_max(9), 16);
}

static void test_invalid_entries(void **state)
{
	static const struct policy_map_entry bad[] = {
	    {.dir = 2},			     /* no such direction */
	    {.port = 80, .port_prefix = 16}, /* a port, no protocol */
	    {.proto = IPPROTO_TCP, .port = 80, .port_prefix = 17},
	    {.proto = IPPROTO_TCP, .port = 8081, .port_prefix = 13}, /* bits past the prefix */
	    {.proto = IPPROTO_TCP, .port = 80},			     /* any port, yet a port */
	};
	struct policy_map_entry e[2] = {{.identity = 5000, .dir = ING}};
	struct policy_map_result r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e[1] = bad[i];
		if (set(10, e, 2, &r) != -EINVAL)
			fail_msg("bad entry %zu accepted", i);
		assert_int_equal(r.bad, 1);
	}
	assert_int_equal(trie_of(10), -1);
	assert_int_equal(set(0, e, 1, &r), -EINVAL);
}

static void test_delete(void **state)
{
	const struct policy_map_entry e[] = {{.identity = 6000, .dir = ING}};
	struct policy_map_result r;

	(void)state;
	assert_int_equal(set(11, e, 1, &r), 0);
	assert_int_not_equal(trie_id(11), 0);
	assert_int_equal(policy_map_delete(&fx.pm, 11), 0);
	assert_int_equal(trie_of(11), -1);
	assert_int_equal(policy_map_delete(&fx.pm, 11), 0);
	assert_int_equal(policy_map_delete(&fx.pm, 0), -EINVAL);
}

/* policy_map_update() diffs against what it keeps in memory: the trie is
 * read once (while not known) and not again, so an entry written behind
 * the writer's back stays until the writer forgets what it knew. */
static void test_update_from_memory(void **state)
{
	const struct policy_map_entry e1[] = {
	    {.identity = 5001, .dir = ING},
	    {.identity = 5002, .dir = ING, .proto = IPPROTO_TCP, .port = 80, .port_prefix = 16},
	};
	const struct policy_map_entry e2[] = {
	    {.identity = 5001, .dir = ING},
	    {.identity = 5003, .dir = ING, .proto = IPPROTO_TCP, .port = 80, .port_prefix = 16},
	};
	struct policy_map_entry many[9];
	struct policy_map_realized real = {0};
	struct policy_key stray = key_of(5999, EGR, 0, 0, 0);
	struct policy_entry v = {0};
	struct policy_map_result r;
	int fd;

	(void)state;
	assert_int_equal(policy_map_update(&fx.pm, 10, &real, e1, 2, &r), 0);
	assert_int_equal(r.added, 2);
	assert_true(real.known && real.exists);
	assert_int_equal(real.n, 2);

	fd = trie_of(10);
	assert_int_equal(bpf_map_update_elem(fd, &stray, &v, BPF_ANY), 0);
	close(fd);
	entry_count(10, key_of(5001, ING, 0, 0, 0), 7);

	/* The same set: nothing written, the trie not read. */
	assert_int_equal(policy_map_update(&fx.pm, 10, &real, e1, 2, &r), 0);
	assert_int_equal(r.added + r.updated + r.deleted, 0);
	assert_int_equal(r.unchanged, 2);
	assert_int_equal(trie_count(10), 3);

	/* One entry moved: that one deleted and one added, the rest untouched. */
	assert_int_equal(policy_map_update(&fx.pm, 10, &real, e2, 2, &r), 0);
	assert_int_equal(r.added, 1);
	assert_int_equal(r.deleted, 1);
	assert_int_equal(r.unchanged, 1);
	assert_int_equal(entry_get(10, key_of(5003, ING, IPPROTO_TCP, 80, 24), &v), 0);
	assert_int_equal(entry_get(10, key_of(5002, ING, IPPROTO_TCP, 80, 24), &v), -ENOENT);
	assert_int_equal(entry_get(10, key_of(5001, ING, 0, 0, 0), &v), 0);
	assert_int_equal(v.packets, 7);
	assert_int_equal(entry_get(10, stray, &v), 0);

	/* Too many entries: refused, what is known stays known. */
	for (int i = 0; i < 9; i++)
		many[i] = (struct policy_map_entry){.identity = 6000 + i, .dir = ING};
	assert_int_equal(policy_map_update(&fx.pm, 10, &real, many, 9, &r), -ENOSPC);
	assert_true(real.known);
	assert_int_equal(real.n, 2);

	/* Forgotten: read again, and the stray entry goes. */
	policy_map_realized_free(&real);
	assert_int_equal(policy_map_update(&fx.pm, 10, &real, e2, 2, &r), 0);
	assert_int_equal(r.deleted, 1);
	assert_int_equal(r.unchanged, 2);
	assert_int_equal(trie_count(10), 2);
	assert_int_equal(entry_get(10, key_of(5001, ING, 0, 0, 0), &v), 0);
	assert_int_equal(v.packets, 7);
	policy_map_realized_free(&real);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_creates_trie_with_entries),
	    cmocka_unit_test(test_diff_writes_only_changes),
	    cmocka_unit_test(test_deny_precedence),
	    cmocka_unit_test(test_enospc_per_endpoint),
	    cmocka_unit_test(test_transition_room_swaps_trie),
	    cmocka_unit_test(test_size_change_swaps_trie),
	    cmocka_unit_test(test_invalid_entries),
	    cmocka_unit_test(test_delete),
	    cmocka_unit_test(test_update_from_memory),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
