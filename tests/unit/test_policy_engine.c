// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The policy engine and its selector cache (agent/policy/engine.c,
 * selector_cache.c): policies parsed from their Kubernetes JSON, identities
 * as CiliumIdentity labels, one local endpoint (app=b in ns1); assertions on
 * the enforcement and on every trie entry computed, and on how many selector
 * evaluations an identity change costs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "k8s/policy_objects.h"
#include "policy/engine.h"
#include "policy/selector_cache.h"
#include "policy_fixture.h"

#define NS_LABEL "io.cilium.k8s.namespace.labels.team"

struct ident {
	__u32 id;
	struct policy_label labels[4];
	struct label_set set;
};

/* ns1 (team=x): a, b, c; ns2 (team=y): a. */
static struct ident idents[] = {
    {1000,
     {{"k8s", "app", "a"},
      {"k8s", LABEL_POD_NAMESPACE, "ns1"},
      {"k8s", NS_LABEL, "x"},
      {"k8s", LABEL_POLICY_CLUSTER, "default"}},
     {NULL, 0}},
    {1001,
     {{"k8s", "app", "b"},
      {"k8s", LABEL_POD_NAMESPACE, "ns1"},
      {"k8s", NS_LABEL, "x"},
      {"k8s", LABEL_POLICY_CLUSTER, "default"}},
     {NULL, 0}},
    {1002,
     {{"k8s", "app", "c"},
      {"k8s", LABEL_POD_NAMESPACE, "ns1"},
      {"k8s", NS_LABEL, "x"},
      {"k8s", LABEL_POLICY_CLUSTER, "default"}},
     {NULL, 0}},
    {1003,
     {{"k8s", "app", "a"},
      {"k8s", LABEL_POD_NAMESPACE, "ns2"},
      {"k8s", NS_LABEL, "y"},
      {"k8s", LABEL_POLICY_CLUSTER, "default"}},
     {NULL, 0}},
    /* Added later by test_identity_added_later. */
    {1004,
     {{"k8s", "app", "a"},
      {"k8s", LABEL_POD_NAMESPACE, "ns1"},
      {"k8s", NS_LABEL, "x"},
      {"k8s", LABEL_POLICY_CLUSTER, "default"}},
     {NULL, 0}},
};

#define N_POLS_MAX 4

struct fixture {
	struct selector_cache sc;
	struct policy pols[N_POLS_MAX];
	const struct policy *ptrs[N_POLS_MAX];
	size_t n;
	struct engine_result res;
};

static struct fixture fx;

static void ident_add(struct ident *it)
{
	const struct label_set *sets[1] = {&it->set};

	it->set.labels = it->labels;
	it->set.n = 4;
	label_set_sort(it->labels, 4);
	assert_int_equal(sc_identity_set(&fx.sc, it->id, sets, 1), 0);
}

static int setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	sc_init(&fx.sc);
	for (__u32 id = 1; id <= RESERVED_IDENTITY_LAST; id++) {
		const struct label_set *sets[1] = {identity_reserved_labels(id)};

		if (sets[0])
			assert_int_equal(sc_identity_set(&fx.sc, id, sets, 1), 0);
	}
	for (size_t i = 0; i < 4; i++)
		ident_add(&idents[i]);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < fx.n; i++)
		policy_free(&fx.pols[i]);
	engine_result_free(&fx.res);
	sc_destroy(&fx.sc);
	return 0;
}

/* Parse a policy (kind from its "kind" field) and register every policy. */
static void add_policy(const char *json)
{
	cJSON *j = cJSON_Parse(json);
	const cJSON *kind;
	char err[256] = "";
	int rc;

	assert_non_null(j);
	kind = cJSON_GetObjectItem(j, "kind");
	assert_non_null(kind);
	if (!strcmp(kind->valuestring, "NetworkPolicy"))
		rc = k8s_network_policy_from_json(j, &fx.pols[fx.n], err, sizeof(err));
	else
		rc = k8s_cilium_policy_from_json(
		    j, !strcmp(kind->valuestring, "CiliumClusterwideNetworkPolicy"), &fx.pols[fx.n],
		    err, sizeof(err));
	cJSON_Delete(j);
	if (rc)
		fail_msg("parse: %s", err);
	fx.ptrs[fx.n] = &fx.pols[fx.n];
	fx.n++;
	sc_begin(&fx.sc);
	assert_int_equal(engine_register(&fx.sc, fx.ptrs, fx.n), 0);
	sc_end(&fx.sc);
}

static void compute(__u32 identity, const struct k8s_named_port *np, size_t n_np)
{
	struct engine_endpoint ep = {
	    .identity = identity, .named_ports = np, .n_named_ports = n_np};

	assert_int_equal(engine_compute(&fx.sc, fx.ptrs, fx.n, &ep, &fx.res), 0);
}

static bool has(__u32 id, __u8 dir, __u8 proto, __u16 port, __u8 prefix, bool deny)
{
	return result_has(&fx.res, id, dir, proto, port, prefix, deny);
}

#define FROM(peers) "\"policyTypes\":[\"Ingress\"],\"ingress\":[{\"from\":[" peers "]}]"
#define POD(app)    "{\"podSelector\":{\"matchLabels\":{\"app\":\"" app "\"}}}"

static void test_default_deny_ingress(void **state)
{
	(void)state;
	/* Not selected by anything: no enforcement at all. */
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.enforce, 0);
	add_policy(NP("\"policyTypes\":[\"Ingress\"]"));
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.enforce, POLICY_INGRESS);
	assert_int_equal(fx.res.n, 0);
	assert_int_equal(fx.res.rules, 1);
	/* a is not selected by the policy: it stays unenforced. */
	compute(1000, NULL, 0);
	assert_int_equal(fx.res.enforce, 0);
	assert_int_equal(fx.res.rules, 0);
}

static void test_pod_selector_same_namespace(void **state)
{
	(void)state;
	add_policy(NP(FROM(POD("a"))));
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.enforce, POLICY_INGRESS);
	assert_int_equal(fx.res.n, 1);
	assert_true(has(1000, POLICY_DIR_INGRESS, 0, 0, 0, false));
	/* ns2's app=a is another namespace's pod. */
	assert_false(has(1003, POLICY_DIR_INGRESS, 0, 0, 0, false));
}

static void test_namespace_selector(void **state)
{
	(void)state;
	add_policy(NP(FROM("{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"y\"}}}")));
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.n, 1);
	assert_true(has(1003, POLICY_DIR_INGRESS, 0, 0, 0, false));
}

static void test_both_in_one_peer_and(void **state)
{
	(void)state;
	/* team in (x, y) AND app=c: only ns1's c (ns2 has no c). */
	add_policy(NP(FROM("{\"namespaceSelector\":{\"matchExpressions\":[{\"key\":\"team\","
			   "\"operator\":\"In\",\"values\":[\"x\",\"y\"]}]},"
			   "\"podSelector\":{\"matchLabels\":{\"app\":\"c\"}}}")));
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.n, 1);
	assert_true(has(1002, POLICY_DIR_INGRESS, 0, 0, 0, false));
}

static void test_two_peers_or(void **state)
{
	(void)state;
	add_policy(NP(FROM(POD("a") "," POD("c"))));
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.n, 2);
	assert_true(has(1000, POLICY_DIR_INGRESS, 0, 0, 0, false));
	assert_true(has(1002, POLICY_DIR_INGRESS, 0, 0, 0, false));
}

static void test_match_expressions(void **state)
{
	(void)state;
	add_policy(NP(FROM("{\"podSelector\":{\"matchExpressions\":[{\"key\":\"app\",\"operator\":"
			   "\"NotIn\",\"values\":[\"a\"]}]}}")));
	compute(1001, NULL, 0);
	/* b itself and c: ns1's pods other than a. */
	assert_int_equal(fx.res.n, 2);
	assert_true(has(1001, POLICY_DIR_INGRESS, 0, 0, 0, false));
	assert_true(has(1002, POLICY_DIR_INGRESS, 0, 0, 0, false));
}

static void test_end_port_prefixes(void **state)
{
	struct policy_map_entry b[32];

	(void)state;
	add_policy(NP("\"policyTypes\":[\"Ingress\"],\"ingress\":[{\"from\":[" POD(
	    "a") "],"
		 "\"ports\":[{\"protocol\":\"TCP\",\"port\":8080,\"endPort\":8090}]}]"));
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.n, 3);
	assert_true(has(1000, POLICY_DIR_INGRESS, IPPROTO_TCP, 8080, 13, false));
	assert_true(has(1000, POLICY_DIR_INGRESS, IPPROTO_TCP, 8088, 15, false));
	assert_true(has(1000, POLICY_DIR_INGRESS, IPPROTO_TCP, 8090, 16, false));
	/* Edges: the whole range, one port, 1-65535. */
	assert_int_equal(engine_port_blocks(0, 65535, b, 32), 1);
	assert_int_equal(b[0].port_prefix, 0);
	assert_int_equal(engine_port_blocks(443, 443, b, 32), 1);
	assert_int_equal(b[0].port_prefix, 16);
	assert_int_equal(engine_port_blocks(1, 65535, b, 32), 16);
	assert_int_equal(b[15].port, 32768);
	assert_int_equal(b[15].port_prefix, 1);
}

static void test_deny_over_allow(void **state)
{
	(void)state;
	add_policy(CNP("\"ingress\":[{\"fromEndpoints\":[{\"matchLabels\":{\"app\":\"a\"}}]}],"
		       "\"ingressDeny\":[{\"fromEndpoints\":[{\"matchLabels\":{\"app\":\"a\"}}],"
		       "\"toPorts\":[{\"ports\":[{\"port\":\"80\",\"protocol\":\"TCP\"}]}]}]"));
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.enforce, POLICY_INGRESS);
	assert_int_equal(fx.res.n, 2);
	assert_true(has(1000, POLICY_DIR_INGRESS, 0, 0, 0, false));
	assert_true(has(1000, POLICY_DIR_INGRESS, IPPROTO_TCP, 80, 16, true));
}

static void test_egress(void **state)
{
	(void)state;
	add_policy(NP("\"policyTypes\":[\"Egress\"],\"egress\":[{\"to\":[" POD(
	    "c") "],"
		 "\"ports\":[{\"protocol\":\"UDP\",\"port\":53},{\"port\":443}]}]"));
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.enforce, POLICY_EGRESS);
	/* A port without protocol is TCP in a NetworkPolicy. */
	assert_int_equal(fx.res.n, 2);
	assert_true(has(1002, POLICY_DIR_EGRESS, IPPROTO_UDP, 53, 16, false));
	assert_true(has(1002, POLICY_DIR_EGRESS, IPPROTO_TCP, 443, 16, false));
}

static void test_entities(void **state)
{
	(void)state;
	add_policy(CNP("\"ingress\":[{\"fromEntities\":[\"world\",\"host\"]}],"
		       "\"egress\":[{\"toEntities\":[\"all\"]}]"));
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.enforce, POLICY_INGRESS | POLICY_EGRESS);
	assert_true(has(RESERVED_IDENTITY_WORLD, POLICY_DIR_INGRESS, 0, 0, 0, false));
	assert_true(has(RESERVED_IDENTITY_HOST, POLICY_DIR_INGRESS, 0, 0, 0, false));
	assert_false(has(1000, POLICY_DIR_INGRESS, 0, 0, 0, false));
	/* all: any identity, one entry. */
	assert_true(has(0, POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_int_equal(fx.res.n, 3);
}

static void test_named_port(void **state)
{
	static const struct k8s_named_port np[] = {{"dns", IPPROTO_UDP, 53},
						   {"http", IPPROTO_TCP, 8080}};

	(void)state;
	add_policy(NP("\"policyTypes\":[\"Ingress\"],\"ingress\":[{\"from\":[" POD(
	    "a") "],"
		 "\"ports\":[{\"protocol\":\"TCP\",\"port\":\"http\"}]}]"));
	compute(1001, np, 2);
	assert_int_equal(fx.res.n, 1);
	assert_true(has(1000, POLICY_DIR_INGRESS, IPPROTO_TCP, 8080, 16, false));
	assert_int_equal(fx.res.skipped, 0);
	/* The endpoint has no such port: nothing allowed, still enforced. */
	compute(1001, np, 1);
	assert_int_equal(fx.res.n, 0);
	assert_int_equal(fx.res.enforce, POLICY_INGRESS);
	assert_int_equal(fx.res.skipped, 1);
}

static void compute_peers(__u32 identity, struct engine_peer_port *pp, size_t n_pp)
{
	struct engine_endpoint ep = {identity, NULL, 0, pp, engine_peer_ports_sort(pp, n_pp)};

	assert_int_equal(engine_compute(&fx.sc, fx.ptrs, fx.n, &ep, &fx.res), 0);
}

static void test_egress_named_port(void **state)
{
	/* Two endpoints of identity 1000 name "http" differently (one twice),
	 * 1002 names it 9090, 1003 has only "dns". */
	struct engine_peer_port pp[] = {
	    {1003, {"dns", IPPROTO_UDP, 53}},	 {1000, {"http", IPPROTO_TCP, 8081}},
	    {1002, {"http", IPPROTO_TCP, 9090}}, {1000, {"http", IPPROTO_TCP, 8080}},
	    {1000, {"http", IPPROTO_TCP, 8080}}, {1000, {"http", IPPROTO_UDP, 8080}},
	};
	/* Sorted: 1000's "http", then 1003's "dns" alone. */
	struct engine_peer_port only_a[] = {
	    {1000, {"http", IPPROTO_TCP, 8081}},
	    {1003, {"dns", IPPROTO_UDP, 53}},
	};

	(void)state;
	/* Peers a (1000) and c (1002) of ns1; a NetworkPolicy port is TCP. */
	add_policy(NP("\"policyTypes\":[\"Egress\"],\"egress\":[{\"to\":[" POD(
	    "a") "," POD("c") "],\"ports\":[{\"port\":\"http\"}]}]"));
	compute_peers(1001, pp, 6);
	assert_int_equal(fx.res.enforce, POLICY_EGRESS);
	/* Each peer identity to its own ports; the UDP one not (TCP named). */
	assert_int_equal(fx.res.n, 3);
	assert_true(has(1000, POLICY_DIR_EGRESS, IPPROTO_TCP, 8080, 16, false));
	assert_true(has(1000, POLICY_DIR_EGRESS, IPPROTO_TCP, 8081, 16, false));
	assert_true(has(1002, POLICY_DIR_EGRESS, IPPROTO_TCP, 9090, 16, false));
	assert_int_equal(fx.res.skipped, 0);

	/* Resolved for 1000 only: 1002 gets nothing. */
	compute_peers(1001, only_a, 2);
	assert_int_equal(fx.res.n, 1);
	assert_true(has(1000, POLICY_DIR_EGRESS, IPPROTO_TCP, 8081, 16, false));

	/* Resolved nowhere: enforced, nothing allowed, counted not enforced. */
	compute_peers(1001, only_a + 1, 1);
	assert_int_equal(fx.res.enforce, POLICY_EGRESS);
	assert_int_equal(fx.res.n, 0);
	assert_int_equal(fx.res.skipped, 1);
}

static void test_egress_named_port_any_peer(void **state)
{
	struct engine_peer_port pp[] = {
	    {1000, {"http", IPPROTO_TCP, 8080}},
	    {1003, {"http", IPPROTO_TCP, 80}},
	    {1002, {"dns", IPPROTO_UDP, 53}},
	};

	(void)state;
	/* toPorts without toEndpoints: any peer, each identity to what the
	 * name is on its endpoints; never identity 0 (world has no ports). */
	add_policy(CNP("\"egress\":[{\"toPorts\":[{\"ports\":[{\"port\":\"http\"}]}]}]"));
	compute_peers(1001, pp, 3);
	assert_int_equal(fx.res.enforce, POLICY_EGRESS);
	assert_int_equal(fx.res.n, 2);
	assert_true(has(1000, POLICY_DIR_EGRESS, IPPROTO_TCP, 8080, 16, false));
	assert_true(has(1003, POLICY_DIR_EGRESS, IPPROTO_TCP, 80, 16, false));
}

static void test_peer_ports_sort(void **state)
{
	struct engine_peer_port pp[] = {
	    {7, {"b", IPPROTO_TCP, 2}}, {5, {"a", IPPROTO_TCP, 1}}, {7, {"b", IPPROTO_TCP, 2}},
	    {5, {"a", IPPROTO_UDP, 1}}, {5, {"a", IPPROTO_TCP, 1}},
	};

	(void)state;
	assert_int_equal(engine_peer_ports_sort(pp, 5), 3);
	assert_int_equal(pp[0].identity, 5);
	assert_int_equal(pp[0].np.proto, IPPROTO_TCP);
	assert_int_equal(pp[1].np.proto, IPPROTO_UDP);
	assert_int_equal(pp[2].identity, 7);
	assert_int_equal(engine_peer_ports_sort(pp, 0), 0);
}

static void test_identity_added_later(void **state)
{
	(void)state;
	add_policy(NP(FROM(POD("a"))));
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.n, 1);
	ident_add(&idents[4]);
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.n, 2);
	assert_true(has(1004, POLICY_DIR_INGRESS, 0, 0, 0, false));
	sc_identity_delete(&fx.sc, 1000);
	compute(1001, NULL, 0);
	assert_int_equal(fx.res.n, 1);
	assert_false(has(1000, POLICY_DIR_INGRESS, 0, 0, 0, false));
}

static void test_cache_evaluations(void **state)
{
	unsigned long before;
	size_t n_sels;

	(void)state;
	/* Three policies with one subject and two distinct peers in all. */
	add_policy(NP(FROM(POD("a"))));
	add_policy(NP(FROM(POD("a") "," POD("c"))));
	add_policy(NP(FROM(POD("c"))));
	n_sels = fx.sc.n_sels;
	assert_int_equal(n_sels, 3);
	/* Registering again evaluates nothing: every selector is held. */
	before = fx.sc.evaluations;
	sc_begin(&fx.sc);
	assert_int_equal(engine_register(&fx.sc, fx.ptrs, fx.n), 0);
	sc_end(&fx.sc);
	assert_int_equal(fx.sc.evaluations, before);
	/* One identity added: each distinct selector once. */
	before = fx.sc.evaluations;
	ident_add(&idents[4]);
	assert_int_equal(fx.sc.evaluations - before, n_sels);
	/* Deleted: nothing evaluated. */
	before = fx.sc.evaluations;
	sc_identity_delete(&fx.sc, 1004);
	assert_int_equal(fx.sc.evaluations, before);
	/* Computing reads the cache only. */
	compute(1001, NULL, 0);
	assert_int_equal(fx.sc.evaluations, before);
	/* A selector no policy uses any more is dropped. */
	sc_begin(&fx.sc);
	assert_int_equal(engine_register(&fx.sc, fx.ptrs, 1), 0);
	sc_end(&fx.sc);
	assert_int_equal(fx.sc.n_sels, 2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_default_deny_ingress),
	    T(test_pod_selector_same_namespace),
	    T(test_namespace_selector),
	    T(test_both_in_one_peer_and),
	    T(test_two_peers_or),
	    T(test_match_expressions),
	    T(test_end_port_prefixes),
	    T(test_deny_over_allow),
	    T(test_egress),
	    T(test_entities),
	    T(test_named_port),
	    T(test_egress_named_port),
	    T(test_egress_named_port_any_peer),
	    T(test_peer_ports_sort),
	    T(test_identity_added_later),
	    T(test_cache_evaluations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
