// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The store's network-policy tables (agent/store/policy.c): policies of the
 * three kinds side by side, counts and revisions, identity labels (reserved
 * and from CiliumIdentities), selection with a namespace's labels, and the
 * changes noted for the policy reconciler.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "store/store.h"

static void put_policy(struct store *s, const char *json, enum policy_kind kind)
{
	cJSON *j = cJSON_Parse(json);
	struct policy p;
	char err[256] = "";
	int ret;

	assert_non_null(j);
	ret = kind == POLICY_KIND_NP
		  ? k8s_network_policy_from_json(j, &p, err, sizeof(err))
		  : k8s_cilium_policy_from_json(j, kind == POLICY_KIND_CCNP, &p, err, sizeof(err));
	if (ret)
		fail_msg("%s", err);
	assert_int_equal(store_set_policy(s, &p), 0);
	/* The store took it all: p is empty. */
	assert_null(p.rules);
	policy_free(&p);
	cJSON_Delete(j);
}

static void put_identity(struct store *s, const char *json)
{
	cJSON *j = cJSON_Parse(json);
	struct k8s_identity id;
	char err[256] = "";

	assert_non_null(j);
	if (k8s_identity_from_json(j, &id, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(store_set_identity(s, &id), 0);
	k8s_identity_free(&id);
	cJSON_Delete(j);
}

static void put_namespace(struct store *s, const char *json)
{
	cJSON *j = cJSON_Parse(json);
	struct k8s_namespace ns;
	char err[256] = "";

	assert_non_null(j);
	if (k8s_namespace_from_json(j, &ns, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(store_set_namespace(s, &ns), 0);
	k8s_namespace_free(&ns);
	cJSON_Delete(j);
}

#define NP_WEB                                                                                     \
	"{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"},\"spec\":{\"podSelector\":{}}}"
#define NP_SCTP                                                                                    \
	"{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"},\"spec\":{\"podSelector\":{},"    \
	"\"ingress\":[{\"ports\":[{\"protocol\":\"SCTP\",\"port\":9}]}]}}"
#define CNP_WEB                                                                                    \
	"{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"},\"spec\":{\"endpointSelector\":{" \
	"}}}"
#define CCNP_WEB "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"endpointSelector\":{}}}"

static void test_policies(void **state)
{
	struct store s;
	uint64_t rev;

	(void)state;
	assert_int_equal(store_init(&s), 0);
	/* One name, three kinds: three policies. */
	put_policy(&s, NP_WEB, POLICY_KIND_NP);
	put_policy(&s, CNP_WEB, POLICY_KIND_CNP);
	put_policy(&s, CCNP_WEB, POLICY_KIND_CCNP);
	assert_int_equal(s.policies.count, 3);
	assert_int_equal(s.n_policies[POLICY_KIND_NP], 1);
	assert_int_equal(s.n_policies[POLICY_KIND_CNP], 1);
	assert_int_equal(s.n_policies[POLICY_KIND_CCNP], 1);
	assert_int_equal(s.n_policies_unsupported, 0);
	assert_non_null(store_get_policy(&s, POLICY_KIND_CCNP, "", "web"));
	assert_null(store_get_policy(&s, POLICY_KIND_CCNP, "shop", "web"));

	/* A replacement keeps the counts right, unsupported parts included. */
	rev = s.policies_revision;
	put_policy(&s, NP_SCTP, POLICY_KIND_NP);
	assert_int_equal(s.n_policies[POLICY_KIND_NP], 1);
	assert_int_equal(s.n_policies_unsupported, 1);
	assert_true(s.policies_revision > rev);
	assert_int_equal(store_get_policy(&s, POLICY_KIND_NP, "shop", "web")->pol.unsupported,
			 POLICY_UNSUP_SCTP);
	put_policy(&s, NP_WEB, POLICY_KIND_NP);
	assert_int_equal(s.n_policies_unsupported, 0);

	assert_int_equal(store_delete_policy(&s, POLICY_KIND_CNP, "shop", "web"), 0);
	assert_int_equal(store_delete_policy(&s, POLICY_KIND_CNP, "shop", "web"), -ENOENT);
	assert_int_equal(s.n_policies[POLICY_KIND_CNP], 0);
	assert_non_null(store_get_policy(&s, POLICY_KIND_NP, "shop", "web"));
	store_destroy(&s);
}

#define ID_WEB                                                                                     \
	"{\"metadata\":{\"name\":\"12345\"},\"security-labels\":{\"k8s:app\":\"web\","             \
	"\"k8s:io.kubernetes.pod.namespace\":\"shop\"}}"
#define ID_WEB_NSLABELS                                                                            \
	"{\"metadata\":{\"name\":\"12345\"},\"security-labels\":{\"k8s:app\":\"web\","             \
	"\"k8s:io.kubernetes.pod.namespace\":\"shop\","                                            \
	"\"k8s:io.cilium.k8s.namespace.labels.team\":\"legacy\"}}"

static void test_identities(void **state)
{
	static const char *const v_payments[] = {"payments"}, *const v_web[] = {"web"};
	struct sel_req team = {"k8s", "io.cilium.k8s.namespace.labels.team", SEL_OP_IN, v_payments,
			       1};
	struct sel_req app = {"any", "app", SEL_OP_IN, v_web, 1};
	struct sel_req host = {"reserved", "host", SEL_OP_EXISTS, NULL, 0};
	struct policy_selector by_team = {&team, 1}, by_app = {&app, 1}, by_host = {&host, 1};
	const struct label_set *l;
	struct store s;

	(void)state;
	assert_int_equal(store_init(&s), 0);
	/* Reserved identities are known before any CiliumIdentity arrives. */
	l = store_identity_labels(&s, 1);
	assert_non_null(l);
	assert_string_equal(l->labels[0].key, "host");
	assert_true(store_identity_selected(&s, 1, &by_host));
	assert_false(store_identity_selected(&s, 2, &by_host));
	assert_null(store_identity_labels(&s, 12345));
	assert_false(store_identity_selected(&s, 12345, &by_app));

	put_identity(&s, ID_WEB);
	l = store_identity_labels(&s, 12345);
	assert_non_null(l);
	assert_int_equal(l->n, 2);
	assert_true(store_identity_selected(&s, 12345, &by_app));
	/* Its namespace's labels: none known yet. */
	assert_false(store_identity_selected(&s, 12345, &by_team));
	put_namespace(&s, "{\"metadata\":{\"name\":\"shop\",\"labels\":{\"team\":\"payments\"}}}");
	assert_int_equal(s.namespaces.count, 1);
	assert_true(store_identity_selected(&s, 12345, &by_team));
	/* An identity that carries namespace labels is judged on its own. */
	put_identity(&s, ID_WEB_NSLABELS);
	assert_int_equal(s.identities.count, 1);
	assert_false(store_identity_selected(&s, 12345, &by_team));

	assert_int_equal(store_delete_namespace(&s, "shop"), 0);
	assert_null(store_get_namespace(&s, "shop"));
	assert_int_equal(store_delete_identity(&s, 12345), 0);
	assert_int_equal(store_delete_identity(&s, 12345), -ENOENT);
	assert_null(store_identity_labels(&s, 12345));
	store_destroy(&s);
}

/* Every set and delete is noted for the policy reconciler, by key, once
 * however often it changes, until it takes them. */
static void test_changes_noted(void **state)
{
	static const char key_np[] = "NetworkPolicy/shop/web";
	__u32 id = 12345, other = 777;
	struct store s;

	(void)state;
	assert_int_equal(store_init(&s), 0);
	put_policy(&s, NP_WEB, POLICY_KIND_NP);
	put_policy(&s, NP_SCTP, POLICY_KIND_NP);
	put_identity(&s, ID_WEB);
	put_namespace(&s, "{\"metadata\":{\"name\":\"shop\",\"labels\":{\"team\":\"a\"}}}");
	assert_int_equal(s.pol_changed.count, 1);
	assert_non_null(ht_get(&s.pol_changed, key_np, strlen(key_np)));
	assert_int_equal(s.ids_changed.count, 1);
	assert_non_null(ht_get(&s.ids_changed, &id, sizeof(id)));
	assert_int_equal(s.ns_changed.count, 1);
	assert_non_null(ht_get(&s.ns_changed, "shop", 4));

	store_policy_changes_clear(&s);
	assert_int_equal(s.pol_changed.count + s.ids_changed.count + s.ns_changed.count, 0);
	assert_int_equal(store_delete_identity(&s, other), -ENOENT);
	assert_int_equal(s.ids_changed.count, 0);

	/* Deletes are changes too. */
	assert_int_equal(store_delete_policy(&s, POLICY_KIND_NP, "shop", "web"), 0);
	assert_int_equal(store_delete_identity(&s, id), 0);
	assert_int_equal(store_delete_namespace(&s, "shop"), 0);
	assert_non_null(ht_get(&s.pol_changed, key_np, strlen(key_np)));
	assert_non_null(ht_get(&s.ids_changed, &id, sizeof(id)));
	assert_non_null(ht_get(&s.ns_changed, "shop", 4));
	assert_false(s.changes_lost);
	store_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policies),
	    cmocka_unit_test(test_identities),
	    cmocka_unit_test(test_changes_noted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
