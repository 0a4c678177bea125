// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The policy reconciler (agent/policy/reconcile.c) against real policy maps
 * (an ARRAY_OF_MAPS of LPM tries, as the loader pins): a store with this
 * node, two local pods and a remote one, their CiliumIdentities and a
 * NetworkPolicy; assertions on each endpoint's id, enforcement, the entries
 * in its trie, status, and a trie too small failing closed. Needs root.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <cmocka.h>

#include "axon/policy.h"
#include "k8s/policy_objects.h"
#include "policy/reconcile.h"
#include "store/store.h"

#define KEY_SIZE   sizeof(struct policy_key)
#define VALUE_SIZE sizeof(struct policy_entry)

static struct {
	int outer;
	struct store store;
	struct pol_reconciler r;
} fx;

static void put_json(const char *kind, const char *json)
{
	cJSON *j = cJSON_Parse(json);
	char err[256] = "";

	assert_non_null(j);
	if (!strcmp(kind, "Node")) {
		struct k8s_node n;

		if (k8s_node_from_json(j, &n, err, sizeof(err)))
			fail_msg("%s", err);
		assert_int_equal(store_set_node(&fx.store, &n), 0);
	} else if (!strcmp(kind, "CES")) {
		struct k8s_cilium_endpointslice c;

		if (k8s_cilium_endpointslice_from_json(j, &c, err, sizeof(err)))
			fail_msg("%s", err);
		assert_int_equal(store_set_ces(&fx.store, &c), 0);
	} else if (!strcmp(kind, "Identity")) {
		struct k8s_identity id;

		if (k8s_identity_from_json(j, &id, err, sizeof(err)))
			fail_msg("%s", err);
		assert_int_equal(store_set_identity(&fx.store, &id), 0);
	} else {
		struct policy p;

		if (k8s_network_policy_from_json(j, &p, err, sizeof(err)))
			fail_msg("%s", err);
		assert_int_equal(store_set_policy(&fx.store, &p), 0);
	}
	cJSON_Delete(j);
}

#define IDENT(id, app)                                                                             \
	"{\"metadata\":{\"name\":\"" id "\"},\"security-labels\":{\"k8s:app\":\"" app "\","        \
	"\"k8s:io.kubernetes.pod.namespace\":\"ns1\","                                             \
	"\"k8s:io.cilium.k8s.policy.cluster\":\"default\"}}"

static int setup(void **state)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, oopts);
	int tmpl;

	(void)state;
	memset(&fx, 0, sizeof(fx));
	tmpl = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "tmpl", KEY_SIZE, VALUE_SIZE, 1, &opts);
	if (tmpl < 0) {
		fprintf(stderr, "test_policy_reconcile: LPM trie: %s (run as root)\n",
			strerror(errno));
		return -1;
	}
	oopts.inner_map_fd = tmpl;
	fx.outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "policy", sizeof(__u32),
				  sizeof(__u32), 64, &oopts);
	close(tmpl);
	if (fx.outer < 0)
		return -1;
	if (store_init(&fx.store) || pol_reconciler_init(&fx.r, fx.outer, 256))
		return -1;
	store_set_self_name(&fx.store, "node-a");
	put_json("Node", "{\"metadata\":{\"name\":\"node-a\",\"resourceVersion\":\"1\"},"
			 "\"spec\":{\"podCIDRs\":[\"10.244.0.0/24\"]},\"status\":{\"addresses\":"
			 "[{\"type\":\"InternalIP\",\"address\":\"192.168.1.10\"}]}}");
	put_json(
	    "CES",
	    "{\"metadata\":{\"name\":\"ces-1\",\"resourceVersion\":\"1\"},\"namespace\":\"ns1\","
	    "\"endpoints\":["
	    "{\"name\":\"a\",\"id\":1000,\"networking\":{\"addressing\":[{\"ipv4\":\"10.244.0.5\"}]"
	    ","
	    "\"node\":\"192.168.1.10\"}},"
	    "{\"name\":\"b\",\"id\":1001,\"networking\":{\"addressing\":[{\"ipv4\":\"10.244.0.6\"}]"
	    ","
	    "\"node\":\"192.168.1.10\"}},"
	    "{\"name\":\"c\",\"id\":1002,\"networking\":{\"addressing\":[{\"ipv4\":\"10.244.1.7\"}]"
	    ","
	    "\"node\":\"192.168.1.11\"}}]}");
	put_json("Identity", IDENT("1000", "a"));
	put_json("Identity", IDENT("1001", "b"));
	put_json("Identity", IDENT("1002", "c"));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pol_reconciler_destroy(&fx.r);
	store_destroy(&fx.store);
	close(fx.outer);
	return 0;
}

static int pass(void)
{
	uint64_t next;

	return pol_reconcile(&fx.r, &fx.store, NULL, NULL, 1000, &next);
}

/* Entries in the trie of endpoint ip's slot; -1 for an empty slot. */
static int trie_entries(const char *ip, __u16 *id_out, __u8 *enforce)
{
	unsigned char key[KEY_SIZE], next[KEY_SIZE];
	__u32 slot, map_id;
	__be32 a;
	int fd, n = 0;
	__u16 id;

	assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
	assert_true(pol_reconciler_lookup(&fx.r, a, &id, enforce));
	if (id_out)
		*id_out = id;
	slot = id;
	if (bpf_map_lookup_elem(fx.outer, &slot, &map_id))
		return -1;
	fd = bpf_map_get_fd_by_id(map_id);
	assert_true(fd >= 0);
	for (int err = bpf_map_get_next_key(fd, NULL, next); !err;
	     err = bpf_map_get_next_key(fd, key, next)) {
		memcpy(key, next, sizeof(key));
		n++;
	}
	close(fd);
	return n;
}

#define NP_B(spec)                                                                                 \
	"{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns1\"},\"spec\":{\"podSelector\":"          \
	"{\"matchLabels\":{\"app\":\"b\"}}," spec "}}"

static void test_policy_realized(void **state)
{
	__u8 enforce;
	__u16 id_a, id_b;

	(void)state;
	assert_int_equal(pass(), 0);
	/* Only local pods get a slot; nothing enforced without policy. */
	assert_int_equal(fx.r.endpoints.count, 2);
	assert_int_equal(trie_entries("10.244.0.5", &id_a, &enforce), 0);
	assert_int_equal(enforce, 0);
	assert_int_equal(trie_entries("10.244.0.6", &id_b, &enforce), 0);
	assert_true(id_a && id_b && id_a != id_b);

	put_json("NP", NP_B("\"policyTypes\":[\"Ingress\"],\"ingress\":[{\"from\":["
			    "{\"podSelector\":{\"matchLabels\":{\"app\":\"a\"}}}],"
			    "\"ports\":[{\"protocol\":\"TCP\",\"port\":8080,\"endPort\":8090}]}]"));
	fx.r.enforcement_changed = false;
	assert_int_equal(pass(), 0);
	assert_true(fx.r.enforcement_changed);
	assert_int_equal(trie_entries("10.244.0.6", NULL, &enforce), 3);
	assert_int_equal(enforce, POLICY_INGRESS);
	assert_int_equal(trie_entries("10.244.0.5", NULL, &enforce), 0);
	assert_int_equal(enforce, 0);
	assert_int_equal(fx.r.realized_pol_rev, fx.store.policies_revision);

	/* A new identity with app=a: b's trie gains its three blocks; nothing else. */
	put_json("Identity", IDENT("1003", "a"));
	assert_int_equal(pass(), 0);
	assert_int_equal(trie_entries("10.244.0.6", NULL, &enforce), 6);

	/* The policy deleted: not enforced any more. */
	assert_int_equal(store_delete_policy(&fx.store, POLICY_KIND_NP, "ns1", "p"), 0);
	assert_int_equal(pass(), 0);
	assert_int_equal(trie_entries("10.244.0.6", NULL, &enforce), 0);
	assert_int_equal(enforce, 0);
}

static void test_too_many_entries_fails_closed(void **state)
{
	cJSON *st;
	__u8 enforce;

	(void)state;
	/* 1-65535 on TCP and UDP: 16 blocks each, per peer identity; with a
	 * 256-entry trie and 10 peers the set does not fit. */
	for (int i = 0; i < 10; i++) {
		char json[512], id[8];

		snprintf(id, sizeof(id), "%d", 2000 + i);
		snprintf(json, sizeof(json), IDENT("%s", "a"), id);
		put_json("Identity", json);
	}
	put_json("NP", NP_B("\"policyTypes\":[\"Ingress\"],\"ingress\":[{\"from\":["
			    "{\"podSelector\":{\"matchLabels\":{\"app\":\"a\"}}}],"
			    "\"ports\":[{\"protocol\":\"TCP\",\"port\":1,\"endPort\":65535},"
			    "{\"protocol\":\"UDP\",\"port\":1,\"endPort\":65535}]}]"));
	assert_int_equal(pass(), 1);
	/* No trie could be written: the slot is empty, ingress enforced. */
	assert_int_equal(trie_entries("10.244.0.6", NULL, &enforce), -1);
	assert_int_equal(enforce, POLICY_INGRESS);
	assert_true(fx.r.next_retry_ms > 1000);
	st = pol_reconciler_status(&fx.r);
	assert_string_equal(cJSON_GetObjectItem(st, "state")->valuestring, "degraded");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(st, "failed")), 1);
	assert_string_equal(
	    cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(st, "failed"), 0), "pod")
		->valuestring,
	    "ns1/b");
	assert_true(fx.r.realized_pol_rev != fx.store.policies_revision);
	cJSON_Delete(st);
	/* a is unaffected. */
	assert_int_equal(trie_entries("10.244.0.5", NULL, &enforce), 0);
}

/* A CIDR peer: its prefixes' identities in b's trie and in the selectors; the
 * except's ipcache entry refused makes the next pass fail closed, its write on a
 * retry enforces the rule again. */
static void test_cidr_peer_fails_closed_on_ipcache_failure(void **state)
{
	const cJSON *sel = NULL, *it;
	cJSON *st, *sels;
	__u8 enforce;
	__be32 except;

	(void)state;
	assert_int_equal(inet_pton(AF_INET, "203.0.113.16", &except), 1);
	put_json("NP", NP_B("\"policyTypes\":[\"Egress\"],\"egress\":[{\"to\":[{\"ipBlock\":"
			    "{\"cidr\":\"203.0.113.0/24\",\"except\":[\"203.0.113.16/28\"]}}]}]"));
	assert_int_equal(pass(), 0);
	assert_int_equal(trie_entries("10.244.0.6", NULL, &enforce), 1);
	assert_int_equal(enforce, POLICY_EGRESS);
	sels = pol_reconciler_selectors(&fx.r);
	for (int i = 0; i < cJSON_GetArraySize(sels); i++) {
		it = cJSON_GetArrayItem(sels, i);
		if (!strcmp(cJSON_GetObjectItem(it, "selector")->valuestring,
			    "cidr:203.0.113.0/24 except 203.0.113.16/28"))
			sel = it;
	}
	assert_non_null(sel);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(sel, "identities")), 1);
	assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(sel, "identities"), 0)->valuedouble,
			 IDENTITY_CIDR_MIN);
	cJSON_Delete(sels);

	cidr_ids_written(&fx.r.cidr, except, 28, -E2BIG);
	assert_int_equal(pass(), 0);
	assert_int_equal(trie_entries("10.244.0.6", NULL, &enforce), 0);
	assert_int_equal(enforce, POLICY_EGRESS);
	st = pol_reconciler_status(&fx.r);
	it = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "cidr"), "failed"), 0);
	assert_non_null(it);
	assert_string_equal(cJSON_GetObjectItem(it, "prefix")->valuestring, "203.0.113.16/28");
	cJSON_Delete(st);

	cidr_ids_written(&fx.r.cidr, except, 28, 0);
	assert_int_equal(pass(), 0);
	assert_int_equal(trie_entries("10.244.0.6", NULL, &enforce), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_policy_realized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_entries_fails_closed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cidr_peer_fails_closed_on_ipcache_failure, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
