// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Selector evaluation over identity labels (agent/policy): every operator,
 * the AND inside a selector, sources ("k8s", "any", "reserved"), label sets
 * joined (an identity and its namespace), entities and reserved identities,
 * and the printed forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "policy/entity.h"
#include "policy/labels.h"
#include "policy/selector.h"

/* A pod of shop with app=web, tier=db, the labels a CiliumIdentity carries. */
static const struct policy_label web_labels[] = {
    {"k8s", "app", "web"},
    {"k8s", "io.cilium.k8s.namespace.labels.team", "payments"},
    {"k8s", "io.cilium.k8s.policy.cluster", "default"},
    {"k8s", "io.kubernetes.pod.namespace", "shop"},
    {"container", "tier", "db"},
};
static const struct label_set web = {web_labels, 5};

static const char *const v_web[] = {"web"}, *const v_web_api[] = {"api", "web"},
			 *const v_db[] = {"db"}, *const v_shop[] = {"shop"},
			 *const v_batch_cron[] = {"batch", "cron"};

static bool match1(const struct sel_req *r)
{
	struct policy_selector s = {r, 1};

	return selector_matches(&s, &web);
}

static void test_in(void **state)
{
	struct sel_req r = {"k8s", "app", SEL_OP_IN, v_web, 1};

	(void)state;
	assert_true(match1(&r));
	r.values = v_web_api;
	r.n_values = 2;
	assert_true(match1(&r));
	r.values = v_db;
	r.n_values = 1;
	assert_false(match1(&r));
	/* The key must exist: In on a missing key never holds. */
	r.key = "role";
	r.values = v_web;
	assert_false(match1(&r));
}

static void test_not_in(void **state)
{
	struct sel_req r = {"k8s", "app", SEL_OP_NOT_IN, v_batch_cron, 2};

	(void)state;
	assert_true(match1(&r));
	r.values = v_web_api;
	assert_false(match1(&r));
	/* Kubernetes: NotIn holds when the key is absent. */
	r.key = "role";
	assert_true(match1(&r));
}

static void test_exists_and_does_not_exist(void **state)
{
	struct sel_req r = {"k8s", "app", SEL_OP_EXISTS, NULL, 0};

	(void)state;
	assert_true(match1(&r));
	r.op = SEL_OP_DOES_NOT_EXIST;
	assert_false(match1(&r));
	r.key = "quarantine";
	assert_true(match1(&r));
	r.op = SEL_OP_EXISTS;
	assert_false(match1(&r));
}

static void test_sources(void **state)
{
	struct sel_req r = {"k8s", "tier", SEL_OP_IN, v_db, 1};

	(void)state;
	/* tier comes from the container source: k8s:tier does not see it ... */
	assert_false(match1(&r));
	r.source = "container";
	assert_true(match1(&r));
	/* ... a key without a source (any) does. */
	r.source = LABEL_SOURCE_ANY;
	assert_true(match1(&r));
	r.op = SEL_OP_DOES_NOT_EXIST;
	r.values = NULL;
	r.n_values = 0;
	r.source = "k8s";
	assert_true(match1(&r));
	r.source = LABEL_SOURCE_ANY;
	assert_false(match1(&r));
}

static void test_and_and_empty(void **state)
{
	struct sel_req both[] = {
	    {"k8s", "app", SEL_OP_IN, v_web, 1},
	    {"k8s", "io.kubernetes.pod.namespace", SEL_OP_IN, v_shop, 1},
	};
	struct policy_selector s = {both, 2}, empty = {NULL, 0};
	struct policy_label other_ns[] = {{"k8s", "app", "web"},
					  {"k8s", "io.kubernetes.pod.namespace", "prod"}};
	struct label_set other = {other_ns, 2}, none = {NULL, 0};

	(void)state;
	assert_true(selector_matches(&s, &web));
	/* The same app in another namespace: the second requirement fails. */
	assert_false(selector_matches(&s, &other));
	/* No requirement: every identity, even one without labels. */
	assert_true(selector_matches(&empty, &web));
	assert_true(selector_matches(&empty, &none));
	assert_false(selector_matches(&s, &none));
}

static void test_sets_joined(void **state)
{
	static const char *const v_obs[] = {"observability"};
	struct policy_label pod[] = {{"k8s", "app", "prometheus"},
				     {"k8s", "io.kubernetes.pod.namespace", "monitoring"}};
	struct policy_label ns[] = {
	    {"k8s", "io.cilium.k8s.namespace.labels.team", "observability"}};
	struct label_set pod_set = {pod, 2}, ns_set = {ns, 1};
	const struct label_set *sets[] = {&pod_set, &ns_set};
	struct sel_req r[] = {
	    {"k8s", "app", SEL_OP_IN, (const char *const[]){"prometheus"}, 1},
	    {"k8s", "io.cilium.k8s.namespace.labels.team", SEL_OP_IN, v_obs, 1},
	};
	struct policy_selector s = {r, 2};

	(void)state;
	assert_false(selector_matches(&s, &pod_set));
	assert_true(selector_matches_sets(&s, sets, 2));
}

static void test_has_key(void **state)
{
	struct sel_req r[] = {
	    {"k8s", "io.cilium.k8s.namespace.labels.team", SEL_OP_EXISTS, NULL, 0},
	    {"reserved", "init", SEL_OP_EXISTS, NULL, 0}};
	struct policy_selector s = {r, 2};

	(void)state;
	assert_true(selector_has_key(&s, "reserved", "init"));
	assert_false(selector_has_key(&s, "any", "init"));
	assert_true(selector_has_key_prefix(&s, "k8s", LABEL_NAMESPACE_LABELS));
	assert_false(selector_has_key_prefix(&s, "any", LABEL_NAMESPACE_LABELS));
}

static void test_format_and_ops(void **state)
{
	struct sel_req r = {"k8s", "app", SEL_OP_IN, v_web, 1};
	char buf[128];

	(void)state;
	sel_req_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "k8s:app=web");
	r.values = v_web_api;
	r.n_values = 2;
	sel_req_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "k8s:app in (api,web)");
	r.op = SEL_OP_NOT_IN;
	sel_req_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "k8s:app notin (api,web)");
	r.op = SEL_OP_EXISTS;
	sel_req_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "k8s:app");
	r.op = SEL_OP_DOES_NOT_EXIST;
	sel_req_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "!k8s:app");
	/* Cut, never overflowed. */
	r.op = SEL_OP_NOT_IN;
	sel_req_format(&r, buf, 12);
	assert_string_equal(buf, "k8s:app not");
	assert_int_equal(sel_op_parse("In"), SEL_OP_IN);
	assert_int_equal(sel_op_parse("DoesNotExist"), SEL_OP_DOES_NOT_EXIST);
	assert_int_equal(sel_op_parse("in"), -1);
	assert_string_equal(sel_op_name(SEL_OP_NOT_IN), "NotIn");
}

static void test_label_split(void **state)
{
	const char *src, *key;
	size_t len;

	(void)state;
	label_split("k8s:app", &src, &len, &key);
	assert_int_equal(len, 3);
	assert_memory_equal(src, "k8s", 3);
	assert_string_equal(key, "app");
	label_split("$host", &src, &len, &key);
	assert_string_equal(src, "reserved");
	assert_string_equal(key, "host");
	label_split("app", &src, &len, &key);
	assert_null(src);
	assert_int_equal(len, 0);
	assert_string_equal(key, "app");
	/* Only the first ':' separates. */
	label_split("any:io.kubernetes.pod.namespace", &src, &len, &key);
	assert_int_equal(len, 3);
	assert_string_equal(key, "io.kubernetes.pod.namespace");
}

static void test_label_set_find_and_sort(void **state)
{
	struct policy_label l[] = {
	    {"k8s", "zone", "a"}, {"k8s", "app", "web"}, {"container", "app", "legacy"}};
	struct label_set s = {l, 3};
	char buf[64];

	(void)state;
	label_set_sort(l, 3);
	assert_string_equal(l[0].source, "container");
	assert_string_equal(l[2].key, "zone");
	assert_string_equal(label_set_find(&s, "k8s", "app")->value, "web");
	assert_string_equal(label_set_find(&s, "any", "app")->value, "legacy");
	assert_null(label_set_find(&s, "k8s", "tier"));
	label_format(&l[1], buf, sizeof(buf));
	assert_string_equal(buf, "k8s:app=web");
}

static void test_reserved_identities(void **state)
{
	const struct label_set *l;
	char buf[64];

	(void)state;
	l = identity_reserved_labels(RESERVED_IDENTITY_HOST);
	assert_int_equal(l->n, 1);
	label_format(&l->labels[0], buf, sizeof(buf));
	assert_string_equal(buf, "reserved:host");
	/* Cilium: the kube-apiserver identity is a remote node too. */
	l = identity_reserved_labels(RESERVED_IDENTITY_KUBE_APISERVER);
	assert_int_equal(l->n, 2);
	assert_non_null(label_set_find(l, "reserved", "kube-apiserver"));
	assert_non_null(label_set_find(l, "reserved", "remote-node"));
	assert_string_equal(identity_reserved_name(2), "world");
	assert_string_equal(identity_reserved_name(3), "unmanaged");
	assert_string_equal(identity_reserved_name(4), "health");
	assert_string_equal(identity_reserved_name(5), "init");
	assert_string_equal(identity_reserved_name(6), "remote-node");
	assert_string_equal(identity_reserved_name(7), "kube-apiserver");
	assert_null(identity_reserved_labels(0));
	assert_null(identity_reserved_labels(200));
	assert_null(identity_reserved_name(12345));
}

/* Whether entity e's selectors select reserved identity id (or labels l). */
static bool entity_selects(enum policy_entity e, const struct label_set *l)
{
	const struct policy_selector *sels;
	size_t n = policy_entity_selectors(e, &sels);

	for (size_t i = 0; i < n; i++)
		if (selector_matches(&sels[i], l))
			return true;
	return false;
}

static void test_entities(void **state)
{
	const struct label_set *host = identity_reserved_labels(RESERVED_IDENTITY_HOST);
	const struct label_set *world = identity_reserved_labels(RESERVED_IDENTITY_WORLD);
	const struct label_set *apiserver =
	    identity_reserved_labels(RESERVED_IDENTITY_KUBE_APISERVER);
	const struct label_set *remote = identity_reserved_labels(RESERVED_IDENTITY_REMOTE_NODE);

	(void)state;
	assert_int_equal(policy_entity_parse("world"), POLICY_ENTITY_WORLD);
	assert_int_equal(policy_entity_parse("kube-apiserver"), POLICY_ENTITY_KUBE_APISERVER);
	assert_int_equal(policy_entity_parse("World"), -1);
	assert_int_equal(policy_entity_parse(""), -1);
	assert_string_equal(policy_entity_name(POLICY_ENTITY_REMOTE_NODE), "remote-node");

	assert_true(entity_selects(POLICY_ENTITY_WORLD, world));
	assert_false(entity_selects(POLICY_ENTITY_WORLD, host));
	assert_false(entity_selects(POLICY_ENTITY_WORLD, &web));
	/* cluster: the reserved in-cluster identities and every pod of it. */
	assert_true(entity_selects(POLICY_ENTITY_CLUSTER, host));
	assert_true(entity_selects(POLICY_ENTITY_CLUSTER, remote));
	assert_true(entity_selects(POLICY_ENTITY_CLUSTER, &web));
	assert_false(entity_selects(POLICY_ENTITY_CLUSTER, world));
	/* all: everything, world included. */
	assert_true(entity_selects(POLICY_ENTITY_ALL, world));
	assert_true(entity_selects(POLICY_ENTITY_ALL, &web));
	/* remote-node also selects the apiserver identity (it carries the label). */
	assert_true(entity_selects(POLICY_ENTITY_REMOTE_NODE, apiserver));
	assert_true(entity_selects(POLICY_ENTITY_KUBE_APISERVER, apiserver));
	assert_false(entity_selects(POLICY_ENTITY_KUBE_APISERVER, remote));
	assert_true(entity_selects(POLICY_ENTITY_HEALTH,
				   identity_reserved_labels(RESERVED_IDENTITY_HEALTH)));
	assert_true(
	    entity_selects(POLICY_ENTITY_INIT, identity_reserved_labels(RESERVED_IDENTITY_INIT)));
	assert_true(entity_selects(POLICY_ENTITY_UNMANAGED,
				   identity_reserved_labels(RESERVED_IDENTITY_UNMANAGED)));
	/* none: selectable, never present. */
	for (__u32 id = 1; id <= RESERVED_IDENTITY_LAST; id++)
		assert_false(entity_selects(POLICY_ENTITY_NONE, identity_reserved_labels(id)));
	assert_false(entity_selects(POLICY_ENTITY_NONE, &web));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_in),
	    cmocka_unit_test(test_not_in),
	    cmocka_unit_test(test_exists_and_does_not_exist),
	    cmocka_unit_test(test_sources),
	    cmocka_unit_test(test_and_and_empty),
	    cmocka_unit_test(test_sets_joined),
	    cmocka_unit_test(test_has_key),
	    cmocka_unit_test(test_format_and_ops),
	    cmocka_unit_test(test_label_split),
	    cmocka_unit_test(test_label_set_find_and_sort),
	    cmocka_unit_test(test_reserved_identities),
	    cmocka_unit_test(test_entities),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
