// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * CIDR peers (agent/policy/cidr.c and the CIDR parts of selector_cache.c and
 * engine.c): policies parsed from their Kubernetes JSON, the prefixes they
 * name given CIDR identities, and the entries the engine computes for one
 * local endpoint (app=b in ns1, identity 1001). Assertions on identity
 * numbers (stable, released, restored), labels, which identities a CIDR
 * selects, and failing closed when a prefix has no working identity.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "k8s/policy_objects.h"
#include "log.h"
#include "policy/cidr.h"
#include "policy/engine.h"
#include "policy/selector_cache.h"
#include "policy_fixture.h"

#define N_POLS_MAX 4
#define EP	   1001
#define POD_A	   1000

struct fixture {
	struct selector_cache sc;
	struct cidr_ids cidr;
	struct policy pols[N_POLS_MAX];
	const struct policy *ptrs[N_POLS_MAX];
	size_t n;
	struct engine_result res;
	struct policy_label labels[2][3];
	struct label_set sets[2];
};

static struct fixture fx;

static void pod_add(size_t i, __u32 id, const char *app)
{
	const struct label_set *sets[1] = {&fx.sets[i]};

	fx.labels[i][0] = (struct policy_label){"k8s", "app", app};
	fx.labels[i][1] = (struct policy_label){"k8s", LABEL_POD_NAMESPACE, "ns1"};
	fx.labels[i][2] = (struct policy_label){"k8s", LABEL_POLICY_CLUSTER, "default"};
	label_set_sort(fx.labels[i], 3);
	fx.sets[i] = (struct label_set){fx.labels[i], 3};
	assert_int_equal(sc_identity_set(&fx.sc, id, sets, 1), 0);
}

static int setup_max(__u32 max)
{
	log_set_level(LOG_LEVEL_ERROR);
	memset(&fx, 0, sizeof(fx));
	sc_init(&fx.sc);
	assert_int_equal(cidr_ids_init(&fx.cidr, max), 0);
	for (__u32 id = 1; id <= RESERVED_IDENTITY_LAST; id++) {
		const struct label_set *sets[1] = {identity_reserved_labels(id)};

		if (sets[0])
			assert_int_equal(sc_identity_set(&fx.sc, id, sets, 1), 0);
	}
	pod_add(0, POD_A, "a");
	pod_add(1, EP, "b");
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_max(CIDR_IDS_MAX);
}

static int setup_two(void **state)
{
	(void)state;
	return setup_max(2);
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < fx.n; i++)
		policy_free(&fx.pols[i]);
	engine_result_free(&fx.res);
	cidr_ids_destroy(&fx.cidr);
	sc_destroy(&fx.sc);
	return 0;
}

/* The policy reconciler's order: selectors registered, then the prefixes. */
static int sync(void)
{
	int ret;

	sc_begin(&fx.sc);
	assert_int_equal(engine_register(&fx.sc, fx.ptrs, fx.n), 0);
	sc_end(&fx.sc);
	ret = cidr_ids_sync(&fx.cidr, &fx.sc, fx.ptrs, fx.n);
	assert_true(ret >= 0);
	return ret;
}

static void add_policy(const char *json)
{
	cJSON *j = cJSON_Parse(json);
	const char *kind;
	char err[256] = "";
	int rc;

	assert_non_null(j);
	kind = cJSON_GetObjectItem(j, "kind")->valuestring;
	if (!strcmp(kind, "NetworkPolicy"))
		rc = k8s_network_policy_from_json(j, &fx.pols[fx.n], err, sizeof(err));
	else
		rc = k8s_cilium_policy_from_json(j, false, &fx.pols[fx.n], err, sizeof(err));
	cJSON_Delete(j);
	if (rc)
		fail_msg("parse: %s", err);
	fx.ptrs[fx.n] = &fx.pols[fx.n];
	fx.n++;
}

/* Policy i goes (the others move down, as the store's order may). */
static void del_policy(size_t i)
{
	policy_free(&fx.pols[i]);
	for (size_t k = i; k + 1 < fx.n; k++)
		fx.pols[k] = fx.pols[k + 1];
	fx.n--;
	memset(&fx.pols[fx.n], 0, sizeof(fx.pols[fx.n]));
	for (size_t k = 0; k < fx.n; k++)
		fx.ptrs[k] = &fx.pols[k];
}

static void compute(void)
{
	struct engine_endpoint ep = {.identity = EP};

	assert_int_equal(engine_compute(&fx.sc, fx.ptrs, fx.n, &ep, &fx.res), 0);
}

static __be32 ip4(const char *s)
{
	__be32 a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

/* The identity of prefix s ("10.0.0.0/8"), 0 when it has none. */
static __u32 id_of(const char *s)
{
	char a[32];
	unsigned int len;
	const struct cidr_prefix *p;

	assert_int_equal(sscanf(s, "%31[^/]/%u", a, &len), 2);
	p = cidr_ids_find(&fx.cidr, ip4(a), (__u8)len);
	return p ? p->id : 0;
}

static bool has(__u32 id, __u8 dir, __u8 proto, __u16 port, __u8 prefix, bool deny)
{
	return result_has(&fx.res, id, dir, proto, port, prefix, deny);
}

#define NP_EGRESS_EXCEPT                                                                           \
	NP("\"policyTypes\":[\"Egress\"],\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":"             \
	   "\"10.0.0.0/8\",\"except\":[\"10.1.0.0/16\"]}}]}]")

static void test_ipblock_except(void **state)
{
	const struct sc_identity *ident;
	char text[64];
	__u32 cidr, except;

	(void)state;
	add_policy(NP_EGRESS_EXCEPT);
	assert_int_equal(sync(), 0);
	cidr = id_of("10.0.0.0/8");
	except = id_of("10.1.0.0/16");
	/* Cilium's local scope, one number per prefix. */
	assert_int_equal(cidr, IDENTITY_CIDR_MIN);
	assert_int_equal(except, IDENTITY_CIDR_MIN + 1);
	ident = sc_identity_get(&fx.sc, cidr);
	assert_non_null(ident);
	assert_int_equal(ident->sets[0]->n, 2);
	label_format(&ident->sets[0]->labels[0], text, sizeof(text));
	assert_string_equal(text, "cidr:10.0.0.0/8");
	label_format(&ident->sets[0]->labels[1], text, sizeof(text));
	assert_string_equal(text, "reserved:world");

	compute();
	assert_int_equal(fx.res.enforce, POLICY_EGRESS);
	assert_int_equal(fx.res.n, 1);
	assert_true(has(cidr, POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_int_equal(fx.res.skipped, 0);
	/* The selector's text, as `agentctl policy selectors` shows it. */
	assert_int_equal(
	    sc_cidr_key(&fx.pols[0].rules[0].egress[0].peers[0].cidr, text, sizeof(text)), 0);
	assert_string_equal(text, "cidr:10.0.0.0/8 except 10.1.0.0/16");
}

static void test_cidr_selects_no_pod_and_zero_is_world(void **state)
{
	const struct sc_selector *s;

	(void)state;
	/* 10.244.0.0/16 holds the pods' addresses: it still selects no pod. */
	add_policy(CNP("\"egress\":[{\"toCIDR\":[\"10.244.0.0/16\",\"0.0.0.0/0\"]}]"));
	assert_int_equal(sync(), 0);
	s = sc_lookup_cidr(&fx.sc, &fx.pols[0].rules[0].egress[0].peers[0].cidr);
	assert_non_null(s);
	assert_int_equal(s->n_ids, 1);
	assert_false(sc_selects(s, POD_A));
	compute();
	assert_true(has(id_of("10.244.0.0/16"), POLICY_DIR_EGRESS, 0, 0, 0, false));
	/* 0.0.0.0/0: both prefixes' identities and world. */
	assert_true(has(id_of("0.0.0.0/0"), POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_true(has(RESERVED_IDENTITY_WORLD, POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_false(has(POD_A, POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_int_equal(fx.res.n, 4);
}

static void test_from_cidr_ports_and_world_entity(void **state)
{
	(void)state;
	add_policy(CNP("\"ingress\":[{\"fromCIDR\":[\"192.168.0.0/16\"],\"toPorts\":[{\"ports\":"
		       "[{\"port\":\"80\",\"protocol\":\"TCP\"}]}]}],"
		       "\"egress\":[{\"toEntities\":[\"world\"]}]"));
	assert_int_equal(sync(), 0);
	compute();
	assert_int_equal(fx.res.enforce, POLICY_INGRESS | POLICY_EGRESS);
	assert_true(has(id_of("192.168.0.0/16"), POLICY_DIR_INGRESS, IPPROTO_TCP, 80, 16, false));
	/* CIDR identities carry reserved:world, so the world entity has them. */
	assert_true(has(id_of("192.168.0.0/16"), POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_true(has(RESERVED_IDENTITY_WORLD, POLICY_DIR_EGRESS, 0, 0, 0, false));
}

static void test_deny_cidr_set_over_allow(void **state)
{
	__u32 except;

	(void)state;
	add_policy(CNP("\"egress\":[{\"toCIDR\":[\"10.0.0.0/8\"]}],"
		       "\"egressDeny\":[{\"toCIDRSet\":[{\"cidr\":\"10.0.0.0/8\","
		       "\"except\":[\"10.1.0.0/16\"]}],\"toPorts\":[{\"ports\":"
		       "[{\"port\":\"53\",\"protocol\":\"UDP\"}]}]}]"));
	assert_int_equal(sync(), 0);
	except = id_of("10.1.0.0/16");
	compute();
	assert_true(has(id_of("10.0.0.0/8"), POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_true(has(except, POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_true(has(id_of("10.0.0.0/8"), POLICY_DIR_EGRESS, IPPROTO_UDP, 53, 16, true));
	/* The except is left out of the deny. */
	assert_false(has(except, POLICY_DIR_EGRESS, IPPROTO_UDP, 53, 16, true));
	assert_int_equal(fx.res.n, 3);
}

static void test_numbers_stable_and_released(void **state)
{
	__u32 a, b;

	(void)state;
	add_policy(CNP("\"egress\":[{\"toCIDR\":[\"172.16.0.0/12\"]}]"));
	assert_int_equal(sync(), 0);
	a = id_of("172.16.0.0/12");
	/* A new policy with a prefix that sorts first: nothing renumbered. */
	add_policy(NP("\"policyTypes\":[\"Egress\"],\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":"
		      "\"10.0.0.0/8\"}},{\"ipBlock\":{\"cidr\":\"172.16.0.0/12\"}}]}]"));
	assert_int_equal(sync(), 0);
	b = id_of("10.0.0.0/8");
	assert_int_equal(id_of("172.16.0.0/12"), a);
	assert_int_equal(b, a + 1);
	/* Still named by the second policy: kept. */
	del_policy(0);
	assert_int_equal(sync(), 0);
	assert_int_equal(id_of("172.16.0.0/12"), a);
	assert_int_equal(id_of("10.0.0.0/8"), b);
	/* Named by none: released, out of the selector cache. */
	del_policy(0);
	assert_int_equal(sync(), 0);
	assert_int_equal(fx.cidr.n, 0);
	assert_null(sc_identity_get(&fx.sc, a));
	assert_null(sc_identity_get(&fx.sc, b));
	/* A released number comes back last. */
	add_policy(CNP("\"egress\":[{\"toCIDR\":[\"172.16.0.0/12\"]}]"));
	assert_int_equal(sync(), 0);
	assert_int_equal(id_of("172.16.0.0/12"), b + 1);
}

static void test_restore_keeps_numbers(void **state)
{
	(void)state;
	/* A previous run's ipcache: two prefixes a policy still names, one
	 * nobody names any more. */
	assert_int_equal(cidr_ids_restore(&fx.cidr, ip4("10.1.0.0"), 16, IDENTITY_CIDR_MIN + 9), 0);
	assert_int_equal(cidr_ids_restore(&fx.cidr, ip4("10.0.0.0"), 8, IDENTITY_CIDR_MIN + 5), 0);
	assert_int_equal(cidr_ids_restore(&fx.cidr, ip4("1.2.3.0"), 24, IDENTITY_CIDR_MIN + 2), 0);
	assert_int_equal(cidr_ids_restore(&fx.cidr, ip4("10.0.0.0"), 8, IDENTITY_CIDR_MIN + 7),
			 -EEXIST);
	assert_int_equal(cidr_ids_restore(&fx.cidr, ip4("10.9.0.0"), 16, IDENTITY_CIDR_MIN + 5),
			 -EEXIST);
	assert_int_equal(cidr_ids_restore(&fx.cidr, ip4("10.9.0.0"), 16, 1000), -EINVAL);
	add_policy(NP_EGRESS_EXCEPT);
	add_policy(CNP("\"egress\":[{\"toCIDR\":[\"172.16.0.0/12\"]}]"));
	assert_int_equal(sync(), 0);
	assert_int_equal(id_of("10.0.0.0/8"), IDENTITY_CIDR_MIN + 5);
	assert_int_equal(id_of("10.1.0.0/16"), IDENTITY_CIDR_MIN + 9);
	assert_int_equal(id_of("1.2.3.0/24"), 0);
	assert_null(cidr_ids_find(&fx.cidr, ip4("1.2.3.0"), 24));
	/* New prefixes after the highest restored number. */
	assert_int_equal(id_of("172.16.0.0/12"), IDENTITY_CIDR_MIN + 10);
	compute();
	assert_true(has(IDENTITY_CIDR_MIN + 5, POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_false(has(IDENTITY_CIDR_MIN + 9, POLICY_DIR_EGRESS, 0, 0, 0, false));
}

/* setup_two: two identities at most. */
static void test_exhausted_fails_closed(void **state)
{
	(void)state;
	add_policy(NP_EGRESS_EXCEPT);
	add_policy(CNP("\"egressDeny\":[{\"toCIDR\":[\"192.168.0.0/16\"],\"toPorts\":[{\"ports\":"
		       "[{\"port\":\"443\",\"protocol\":\"TCP\"}]}]}]"));
	/* 10.0.0.0/8 and 10.1.0.0/16 take both; 192.168.0.0/16 gets none. */
	assert_int_equal(sync(), 1);
	assert_int_equal(id_of("192.168.0.0/16"), 0);
	compute();
	/* The deny with no identity denies every peer on its port. */
	assert_true(has(0, POLICY_DIR_EGRESS, IPPROTO_TCP, 443, 16, true));
	assert_true(has(id_of("10.0.0.0/8"), POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_int_equal(fx.res.skipped, 1);
	/* The deny goes: its number frees no one else's, and 192.168 is released. */
	del_policy(1);
	assert_int_equal(sync(), 0);
	assert_null(cidr_ids_find(&fx.cidr, ip4("192.168.0.0"), 16));
	/* An allow whose except has no identity allows nothing of its CIDR:
	 * 10.1.0.0/16 would resolve to 10.0.0.0/8's identity. */
	del_policy(0);
	assert_int_equal(sync(), 0);
	assert_int_equal(fx.cidr.n, 0);
	add_policy(CNP("\"egress\":[{\"toCIDR\":[\"172.16.0.0/12\"]}]"));
	assert_int_equal(sync(), 0);
	add_policy(NP_EGRESS_EXCEPT);
	assert_int_equal(sync(), 1);
	assert_int_not_equal(id_of("10.0.0.0/8"), 0);
	assert_int_equal(id_of("10.1.0.0/16"), 0);
	compute();
	assert_int_equal(fx.res.enforce, POLICY_EGRESS);
	assert_int_equal(fx.res.n, 1);
	assert_true(has(id_of("172.16.0.0/12"), POLICY_DIR_EGRESS, 0, 0, 0, false));
	assert_int_equal(fx.res.skipped, 1);
}

static void test_ipcache_failure_fails_closed(void **state)
{
	__u32 cidr;

	(void)state;
	add_policy(NP_EGRESS_EXCEPT);
	assert_int_equal(sync(), 0);
	cidr = id_of("10.0.0.0/8");
	cidr_ids_written(&fx.cidr, ip4("10.0.0.0"), 8, 0);
	assert_false(fx.cidr.dirty);
	/* The except's ipcache entry could not be written (map full). */
	cidr_ids_written(&fx.cidr, ip4("10.1.0.0"), 16, -E2BIG);
	assert_true(fx.cidr.dirty);
	assert_int_equal(cidr_ids_sync(&fx.cidr, &fx.sc, fx.ptrs, fx.n), 0);
	assert_false(fx.cidr.dirty);
	compute();
	assert_int_equal(fx.res.n, 0);
	assert_int_equal(fx.res.enforce, POLICY_EGRESS);
	assert_int_equal(fx.res.skipped, 1);
	{
		cJSON *st = cidr_ids_status(&fx.cidr);
		const cJSON *f = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "failed"), 0);

		assert_non_null(f);
		assert_string_equal(cJSON_GetObjectItem(f, "prefix")->valuestring, "10.1.0.0/16");
		cJSON_Delete(st);
	}
	/* Written on a retry: allowed again, same numbers. */
	cidr_ids_written(&fx.cidr, ip4("10.1.0.0"), 16, 0);
	assert_true(fx.cidr.dirty);
	assert_int_equal(cidr_ids_sync(&fx.cidr, &fx.sc, fx.ptrs, fx.n), 0);
	compute();
	assert_int_equal(fx.res.n, 1);
	assert_true(has(cidr, POLICY_DIR_EGRESS, 0, 0, 0, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ipblock_except, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cidr_selects_no_pod_and_zero_is_world, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_from_cidr_ports_and_world_entity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deny_cidr_set_over_allow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_numbers_stable_and_released, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_keeps_numbers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exhausted_fails_closed, setup_two, teardown),
	    cmocka_unit_test_setup_teardown(test_ipcache_failure_fails_closed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
