// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The policy reconciler's incremental passes (agent/policy/reconcile.c)
 * against real policy maps: six local pods in two namespaces, NetworkPolicies
 * between them. A change must compute only the endpoints it can reach (the
 * reconciler counts engine computations and trie entries written), and after
 * every change the tries must hold exactly what a reconciler starting from
 * scratch on the same store writes, over a long sequence of changes of every
 * kind (policies, identities, namespaces, pods' identities and named ports,
 * egress named ports, CIDR peers).
 * Needs root.
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
#include <bpf/bpf.h>
#include <cmocka.h>

#include "axon/policy.h"
#include "k8s/policy_objects.h"
#include "policy/reconcile.h"
#include "store/store.h"

#define MAP_MAX	 1024
#define TRIE_MAX 256
#define N_PODS	 6
#define JSON_MAX 2048

static struct {
	int outer;
	struct store store;
	struct pol_reconciler r;
} fx;

static void put_json(const char *kind, const char *json)
{
	cJSON *j = cJSON_Parse(json);
	char err[256] = "";
	int ret;

	if (!j)
		fail_msg("bad JSON: %s", json);
	if (!strcmp(kind, "Node")) {
		struct k8s_node o = {};

		ret = k8s_node_from_json(j, &o, err, sizeof(err));
		if (!ret)
			ret = store_set_node(&fx.store, &o);
		k8s_node_free(&o);
	} else if (!strcmp(kind, "CES")) {
		struct k8s_cilium_endpointslice o = {};

		ret = k8s_cilium_endpointslice_from_json(j, &o, err, sizeof(err));
		if (!ret)
			ret = store_set_ces(&fx.store, &o);
		k8s_cilium_endpointslice_free(&o);
	} else if (!strcmp(kind, "Namespace")) {
		struct k8s_namespace o = {};

		ret = k8s_namespace_from_json(j, &o, err, sizeof(err));
		if (!ret)
			ret = store_set_namespace(&fx.store, &o);
		k8s_namespace_free(&o);
	} else if (!strcmp(kind, "Identity")) {
		struct k8s_identity o = {};

		ret = k8s_identity_from_json(j, &o, err, sizeof(err));
		if (!ret)
			ret = store_set_identity(&fx.store, &o);
		k8s_identity_free(&o);
	} else {
		struct policy p = {};

		ret = k8s_network_policy_from_json(j, &p, err, sizeof(err));
		if (!ret)
			ret = store_set_policy(&fx.store, &p);
		policy_free(&p);
	}
	cJSON_Delete(j);
	if (ret)
		fail_msg("%s: %s (%d): %s", kind, err, ret, json);
}

static void put_namespace(const char *ns, const char *team)
{
	char js[JSON_MAX];

	snprintf(js, sizeof(js),
		 "{\"metadata\":{\"name\":\"%s\",\"labels\":{\"kubernetes.io/metadata.name\":"
		 "\"%s\",\"team\":\"%s\"}}}",
		 ns, ns, team);
	put_json("Namespace", js);
}

/* An identity without namespace labels: those come from its Namespace. */
static void put_identity(unsigned int id, const char *app, const char *ns)
{
	char js[JSON_MAX];

	snprintf(js, sizeof(js),
		 "{\"metadata\":{\"name\":\"%u\"},\"security-labels\":{\"k8s:app\":\"%s\","
		 "\"k8s:io.kubernetes.pod.namespace\":\"%s\","
		 "\"k8s:io.cilium.k8s.policy.cluster\":\"default\"}}",
		 id, app, ns);
	put_json("Identity", js);
}

/* Pod i (10.244.0.10+i, this node) on identity ids[i], its TCP port named
 * "web" web_ports[i]; pods 0-2 in ns1, 3-5 in ns2. */
static unsigned int web_ports[N_PODS] = {8080, 8080, 8080, 8080, 8080, 8080};

static void put_pods(const unsigned int *ids)
{
	for (int n = 0; n < 2; n++) {
		char js[JSON_MAX];
		size_t off;

		off = snprintf(js, sizeof(js),
			       "{\"metadata\":{\"name\":\"ces-%d\"},\"namespace\":\"ns%d\","
			       "\"endpoints\":[",
			       n + 1, n + 1);
		for (int i = n * 3; i < n * 3 + 3; i++)
			off += snprintf(js + off, sizeof(js) - off,
					"%s{\"name\":\"p%d\",\"id\":%u,\"networking\":{"
					"\"addressing\":[{\"ipv4\":\"10.244.0.%d\"}],"
					"\"node\":\"192.168.1.10\"},\"named-ports\":[{"
					"\"name\":\"web\",\"port\":%u,\"protocol\":\"TCP\"}]}",
					i % 3 ? "," : "", i, ids[i], 10 + i, web_ports[i]);
		snprintf(js + off, sizeof(js) - off, "]}");
		put_json("CES", js);
	}
}

/* Policy name in ns: pods with app=subject, ingress from app=peer in the
 * namespace (or, peer_team, from any pod of that team's namespaces) on port. */
static void put_policy(const char *ns, const char *name, const char *subject, const char *peer,
		       const char *peer_team, unsigned int port)
{
	char js[JSON_MAX], from[256];

	if (peer_team)
		snprintf(from, sizeof(from),
			 "{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"%s\"}}}", peer_team);
	else
		snprintf(from, sizeof(from), "{\"podSelector\":{\"matchLabels\":{\"app\":\"%s\"}}}",
			 peer);
	snprintf(js, sizeof(js),
		 "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},\"spec\":{\"podSelector\":"
		 "{\"matchLabels\":{\"app\":\"%s\"}},\"policyTypes\":[\"Ingress\",\"Egress\"],"
		 "\"ingress\":[{\"from\":[%s],\"ports\":[{\"protocol\":\"TCP\",\"port\":%u}]}],"
		 "\"egress\":[{\"to\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"b\"}}}],"
		 "\"ports\":[{\"protocol\":\"UDP\",\"port\":53}]}]}}",
		 name, ns, subject, from, port);
	put_json("NP", js);
}

/* Every ns1 pod: egress to ns1's b on the port named web. */
#define EGRESS_NAMED                                                                               \
	"{\"metadata\":{\"name\":\"egress-named\",\"namespace\":\"ns1\"},\"spec\":{"               \
	"\"podSelector\":{},\"policyTypes\":[\"Egress\"],\"egress\":[{\"to\":[{\"podSelector\":"   \
	"{\"matchLabels\":{\"app\":\"b\"}}}],\"ports\":[{\"port\":\"web\"}]}]}}"

/* ns2's a: egress to 10.0.0.0/8 but 10.1.0.0/16 (CIDR identities) on port. */
#define EGRESS_CIDR(port)                                                                          \
	"{\"metadata\":{\"name\":\"egress-cidr\",\"namespace\":\"ns2\"},\"spec\":{"                \
	"\"podSelector\":{\"matchLabels\":{\"app\":\"a\"}},\"policyTypes\":[\"Egress\"],"          \
	"\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":"                   \
	"[\"10.1.0.0/16\"]}}],\"ports\":[{\"protocol\":\"TCP\",\"port\":" port "}]}]}}"

static const unsigned int pod_ids[N_PODS] = {1000, 1001, 1002, 1003, 1004, 1005};

static int outer_create(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, oopts);
	int tmpl, outer;

	tmpl = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "tmpl", sizeof(struct policy_key),
			      sizeof(struct policy_entry), 1, &opts);
	if (tmpl < 0) {
		fprintf(stderr, "test_policy_incremental: LPM trie: %s (run as root)\n",
			strerror(errno));
		return -1;
	}
	oopts.inner_map_fd = tmpl;
	outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "policy", sizeof(__u32), sizeof(__u32),
			       64, &oopts);
	close(tmpl);
	return outer;
}

static int setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	for (int i = 0; i < N_PODS; i++)
		web_ports[i] = 8080;
	fx.outer = outer_create();
	if (fx.outer < 0)
		return -1;
	if (store_init(&fx.store) || pol_reconciler_init(&fx.r, fx.outer, TRIE_MAX))
		return -1;
	store_set_self_name(&fx.store, "node-a");
	put_json("Node", "{\"metadata\":{\"name\":\"node-a\"},\"spec\":{\"podCIDRs\":"
			 "[\"10.244.0.0/24\"]},\"status\":{\"addresses\":[{\"type\":"
			 "\"InternalIP\",\"address\":\"192.168.1.10\"}]}}");
	put_namespace("ns1", "x");
	put_namespace("ns2", "y");
	/* ns1: a, b, c; ns2: a, b, d. */
	put_identity(1000, "a", "ns1");
	put_identity(1001, "b", "ns1");
	put_identity(1002, "c", "ns1");
	put_identity(1003, "a", "ns2");
	put_identity(1004, "b", "ns2");
	put_identity(1005, "d", "ns2");
	put_pods(pod_ids);
	/* p1 (ns1 b) from ns1's a; p3 (ns2 a) from team x (ns1). */
	put_policy("ns1", "p1", "b", "a", NULL, 80);
	put_policy("ns2", "p2", "a", NULL, "x", 443);
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

static int pass_of(struct pol_reconciler *r)
{
	uint64_t next;

	return pol_reconcile(r, &fx.store, NULL, NULL, 1000, &next);
}

/* A pass that must succeed; the endpoints it computed. */
static unsigned long pass(void)
{
	assert_int_equal(pass_of(&fx.r), 0);
	return fx.r.last_computed;
}

struct trie_entry {
	struct policy_key k;
	__u8 flags, lpm;
};

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct trie_entry));
}

/* The trie of endpoint id in outer, sorted; -1 for an empty slot. */
static int trie_dump(int outer, __u16 id, struct trie_entry *out, int max)
{
	struct policy_key key, next;
	__u32 slot = id, map_id;
	int fd, n = 0;

	if (bpf_map_lookup_elem(outer, &slot, &map_id))
		return -1;
	fd = bpf_map_get_fd_by_id(map_id);
	assert_true(fd >= 0);
	for (int err = bpf_map_get_next_key(fd, NULL, &next); !err;
	     err = bpf_map_get_next_key(fd, &key, &next)) {
		struct policy_entry v;

		key = next;
		assert_true(n < max);
		assert_int_equal(bpf_map_lookup_elem(fd, &key, &v), 0);
		memset(&out[n], 0, sizeof(out[n]));
		out[n].k = key;
		out[n].flags = v.flags;
		out[n].lpm = v.lpm_prefix_length;
		n++;
	}
	close(fd);
	qsort(out, n, sizeof(*out), entry_cmp);
	return n;
}

static int trie_count(int pod)
{
	static struct trie_entry e[TRIE_MAX];
	__be32 ip = htonl(0x0af4000a + pod);
	__u16 id;
	__u8 enforce;

	assert_true(pol_reconciler_lookup(&fx.r, ip, &id, &enforce));
	return trie_dump(fx.outer, id, e, TRIE_MAX);
}

/* Every endpoint's trie and enforcement as a reconciler starting from
 * scratch on the same store realizes them. */
static void assert_equals_full(void)
{
	static struct trie_entry a[TRIE_MAX], b[TRIE_MAX];
	struct pol_reconciler full;
	int outer = outer_create();

	assert_true(outer >= 0);
	assert_int_equal(pol_reconciler_init(&full, outer, TRIE_MAX), 0);
	assert_int_equal(pass_of(&full), 0);
	assert_int_equal(full.endpoints.count, fx.r.endpoints.count);
	for (struct ht_entry *e = ht_first(&fx.r.endpoints); e; e = ht_next(&fx.r.endpoints, e)) {
		const struct pol_endpoint *pe = e->value;
		__u16 id;
		__u8 enforce;
		int na, nb;

		assert_true(pol_reconciler_lookup(&full, pe->ip, &id, &enforce));
		assert_int_equal(pe->enforce, enforce);
		na = trie_dump(fx.outer, pe->id, a, TRIE_MAX);
		nb = trie_dump(outer, id, b, TRIE_MAX);
		if (na != nb || (na > 0 && memcmp(a, b, na * sizeof(*a))))
			fail_msg("endpoint %s: %d entries, %d from scratch", pe->name, na, nb);
	}
	pol_reconciler_destroy(&full);
	close(outer);
}

/* A policy change computes the endpoints it selects, before and after, and
 * writes only the entries that moved. */
static void test_policy_change(void **state)
{
	unsigned long written;

	(void)state;
	assert_int_equal(pass(), N_PODS);
	assert_int_equal(fx.r.computations, N_PODS);
	assert_int_equal(trie_count(1), 2); /* 1000 on TCP 80, 1004 (b) on UDP 53 */
	assert_equals_full();

	/* p1's port: pod 1 only; one entry out, one in. */
	written = fx.r.entries_written;
	put_policy("ns1", "p1", "b", "a", NULL, 81);
	assert_int_equal(pass(), 1);
	assert_int_equal(fx.r.entries_written - written, 2);
	assert_equals_full();

	/* A policy selecting no local pod: nothing computed, nothing written. */
	written = fx.r.entries_written;
	put_policy("ns1", "p3", "nobody", "a", NULL, 80);
	assert_int_equal(pass(), 0);
	assert_int_equal(fx.r.entries_written, written);

	/* p1 now selects c: pod 1 (before) and pod 2 (after). */
	put_policy("ns1", "p1", "c", "a", NULL, 81);
	assert_int_equal(pass(), 2);
	assert_int_equal(trie_count(1), 0);
	assert_int_equal(trie_count(2), 2);
	assert_equals_full();

	/* Deleted: the pod it selected. */
	assert_int_equal(store_delete_policy(&fx.store, POLICY_KIND_NP, "ns1", "p1"), 0);
	assert_int_equal(pass(), 1);
	assert_equals_full();

	/* Nothing changed: nothing computed. */
	written = fx.r.computations;
	assert_int_equal(pass_of(&fx.r), 0);
	assert_int_equal(fx.r.computations, written);
}

/* An identity change computes the endpoints whose rules select it as a
 * peer, and the endpoints on it. */
static void test_identity_change(void **state)
{
	(void)state;
	assert_int_equal(pass(), N_PODS);

	/* A remote pod's new identity, app=a in ns1: a peer of p1 (pod 1) and,
	 * ns1 being team x, of p2 (pod 3). */
	put_identity(1010, "a", "ns1");
	assert_int_equal(pass(), 2);
	assert_int_equal(trie_count(1), 3);
	assert_equals_full();

	/* One no rule's peers select. */
	put_identity(1011, "zzz", "ns3");
	assert_int_equal(pass(), 0);

	/* Pod 0's identity relabelled a -> e: pod 0 itself, and pod 1 (p1's
	 * peers lose it); p2's (team x) still hold it: pod 3 is not computed. */
	put_identity(1000, "e", "ns1");
	assert_int_equal(pass(), 2);
	assert_int_equal(trie_count(1), 2);
	assert_equals_full();

	/* ns1 moves to team z: its pods' identities change (pods 0-2), and p2's
	 * peers (team x) lose them (pod 3). */
	put_namespace("ns1", "z");
	assert_int_equal(pass(), 4);
	assert_int_equal(trie_count(3), 1); /* only egress to b (1004) is left */
	assert_equals_full();

	/* Identity deleted: p1's peers lose 1010. */
	assert_int_equal(store_delete_identity(&fx.store, 1010), 0);
	assert_int_equal(pass(), 1);
	assert_equals_full();
}

/* A pod moved to another identity: that pod only. */
static void test_endpoint_identity_change(void **state)
{
	unsigned int ids[N_PODS];

	(void)state;
	assert_int_equal(pass(), N_PODS);
	memcpy(ids, pod_ids, sizeof(ids));
	ids[2] = 1001; /* c -> b: p1 selects it now */
	put_pods(ids);
	assert_int_equal(pass(), 1);
	assert_int_equal(trie_count(2), 2);
	assert_equals_full();
}

/* A pod's named port moved: that pod only, when a rule names the port. */
static void test_named_port_change(void **state)
{
	static struct trie_entry e[TRIE_MAX];
	__u16 id;
	__u8 enforce;

	(void)state;
	put_json("NP", "{\"metadata\":{\"name\":\"named\",\"namespace\":\"ns1\"},\"spec\":{"
		       "\"podSelector\":{},\"ingress\":[{\"ports\":[{\"port\":\"web\"}]}]}}");
	assert_int_equal(pass(), N_PODS);
	web_ports[2] = 9090;
	put_pods(pod_ids);
	assert_int_equal(pass(), 1);
	assert_true(pol_reconciler_lookup(&fx.r, htonl(0x0af4000c), &id, &enforce));
	assert_int_equal(trie_dump(fx.outer, id, e, TRIE_MAX), 1);
	assert_int_equal(ntohs(e[0].k.dport), 9090);
	assert_equals_full();
}

/* Egress to ns1's b on its port named "web": what that resolves to is
 * every b pod's named port, so when pod 1 (b) moves its port, every endpoint
 * the rule selects is computed again, and only those. */
static void test_egress_named_port_change(void **state)
{
	static struct trie_entry e[TRIE_MAX];
	__u16 id;
	__u8 enforce;
	int n;

	(void)state;
	put_json("NP", EGRESS_NAMED);
	assert_int_equal(pass(), N_PODS);
	web_ports[1] = 9191;
	put_pods(pod_ids);
	assert_int_equal(pass(), 3); /* pods 0-2, ns1 */
	assert_true(pol_reconciler_lookup(&fx.r, htonl(0x0af4000a), &id, &enforce));
	n = trie_dump(fx.outer, id, e, TRIE_MAX);
	assert_true(n > 0);
	for (int i = 0; i < n; i++)
		if (e[i].k.egress && e[i].k.sec_label == 1001)
			assert_int_equal(ntohs(e[i].k.dport), 9191);
	assert_equals_full();

	/* A pod in ns2 moves its port: ns2's b is not a peer of the rule, but
	 * what egress named ports resolve to moved: pods 0-2 computed again,
	 * their tries unchanged. */
	web_ports[4] = 9292;
	put_pods(pod_ids);
	assert_int_equal(pass(), 4); /* pods 0-2, and pod 4 for its own port */
	assert_equals_full();
}

/* A CIDR peer selects the CIDR identities of the prefixes inside it: a new
 * policy naming 10.2.0.0/16 (pod 2) gives that prefix an identity, which
 * 10.0.0.0/8's selector now selects too: pod 3, whose policy did not change,
 * is computed again and allows it. */
static void test_cidr_identity_added(void **state)
{
	int n;

	(void)state;
	put_json("NP", EGRESS_CIDR("80"));
	assert_int_equal(pass(), N_PODS);
	n = trie_count(3); /* with 10.0.0.0/8's identity on TCP 80 */
	put_json("NP", "{\"metadata\":{\"name\":\"c-cidr\",\"namespace\":\"ns1\"},\"spec\":{"
		       "\"podSelector\":{\"matchLabels\":{\"app\":\"c\"}},\"policyTypes\":"
		       "[\"Egress\"],\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":"
		       "\"10.2.0.0/16\"}}]}]}}");
	assert_int_equal(pass(), 2);
	assert_int_equal(trie_count(3), n + 1);
	assert_equals_full();
}

/* Many changes of every kind in a row, each pass compared with a reconciler
 * starting from scratch. */
static void test_sequence_equals_full(void **state)
{
	static const char *const apps[] = {"a", "b", "c", "d", "e"};
	static const char *const teams[] = {"x", "y", "z"};
	unsigned int ids[N_PODS], seed = 12345;

	(void)state;
	memcpy(ids, pod_ids, sizeof(ids));
	assert_int_equal(pass(), N_PODS);
	for (int step = 0; step < 120; step++) {
		unsigned int r, pick;
		char name[16];

		seed = seed * 1103515245u + 12345u;
		r = seed >> 8;
		pick = r % 7;
		snprintf(name, sizeof(name), "q%u", (r >> 4) % 4);
		if (pick == 0 && (r >> 20) % 4 == 1) {
			put_json("NP", EGRESS_NAMED);
		} else if (pick == 0 && (r >> 20) % 4 == 2) {
			/* The same prefixes each time: a from-scratch pass
			 * numbers their identities the same. */
			put_json("NP", (r >> 22) % 2 ? EGRESS_CIDR("80") : EGRESS_CIDR("81"));
		} else if (pick == 0 && (r >> 20) % 4 == 0) {
			put_json("NP", "{\"metadata\":{\"name\":\"named\",\"namespace\":\"ns1\"},"
				       "\"spec\":{\"podSelector\":{},\"ingress\":[{\"ports\":[{"
				       "\"port\":\"web\"}]}]}}");
		} else if (pick == 0) {
			put_policy((r >> 6) % 2 ? "ns1" : "ns2", name, apps[(r >> 8) % 5],
				   apps[(r >> 11) % 5], NULL, 80 + (r >> 14) % 3);
		} else if (pick == 1) {
			put_policy((r >> 6) % 2 ? "ns1" : "ns2", name, apps[(r >> 8) % 5], NULL,
				   teams[(r >> 11) % 3], 443);
		} else if (pick == 2) {
			store_delete_policy(&fx.store, POLICY_KIND_NP, (r >> 6) % 2 ? "ns1" : "ns2",
					    name);
		} else if (pick == 3) {
			put_identity(1000 + (r >> 4) % 12, apps[(r >> 8) % 5],
				     (r >> 11) % 2 ? "ns1" : "ns2");
		} else if (pick == 4) {
			store_delete_identity(&fx.store, 1006 + (r >> 4) % 6);
		} else if (pick == 5) {
			put_namespace((r >> 4) % 2 ? "ns1" : "ns2", teams[(r >> 6) % 3]);
		} else {
			ids[(r >> 4) % N_PODS] = 1000 + (r >> 8) % 12;
			web_ports[(r >> 12) % N_PODS] = 8080 + (r >> 16) % 2;
			put_pods(ids);
		}
		assert_int_equal(pass_of(&fx.r), 0);
		assert_equals_full();
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_policy_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_identity_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_endpoint_identity_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_named_port_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_egress_named_port_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cidr_identity_added, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sequence_equals_full, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
