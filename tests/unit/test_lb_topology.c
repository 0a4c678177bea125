// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Topology aware routing: the store's Service, slices and this node's zone ->
 * the backends lb_desired_service picks, by kube-proxy's rule (lb/topology.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "axon/lb.h"
#include "lb/desired.h"
#include "store/store.h"
#include "log.h"

#define SELF "node-a"
#define SVC_KEY "default/web"

static struct store st;

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_LEVEL_ERROR);
	assert_int_equal(store_init(&st), 0);
	store_set_self_name(&st, SELF);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_destroy(&st);
	return 0;
}

/* This node, in zone (NULL: no zone label). */
static void put_node(const char *zone)
{
	char json[1024], labels[256] = "{}";
	struct k8s_node node = {};
	char err[256] = "";
	cJSON *obj;

	if (zone)
		snprintf(labels, sizeof(labels), "{\"topology.kubernetes.io/zone\":\"%s\"}", zone);
	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"" SELF "\",\"resourceVersion\":\"1\",\"labels\":%s},"
		 "\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.0.0.1\"}]}}",
		 labels);
	obj = cJSON_Parse(json);
	assert_non_null(obj);
	if (k8s_node_from_json(obj, &node, err, sizeof(err)))
		fail_msg("node: %s", err);
	cJSON_Delete(obj);
	assert_int_equal(store_set_node(&st, &node), 0);
}

/* annotations: the metadata.annotations object; spec_extra: more spec fields (",\"k\":v"). */
static void put_service(const char *annotations, const char *spec_extra)
{
	char json[2048];
	struct k8s_service svc = {};
	char err[256] = "";
	cJSON *obj;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"namespace\":\"default\",\"name\":\"web\","
		 "\"resourceVersion\":\"1\",\"annotations\":%s},"
		 "\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":\"10.96.0.10\","
		 "\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"}]%s}}",
		 annotations, spec_extra);
	obj = cJSON_Parse(json);
	assert_non_null(obj);
	if (k8s_service_from_json(obj, &svc, err, sizeof(err)))
		fail_msg("service: %s", err);
	cJSON_Delete(obj);
	assert_int_equal(store_set_service(&st, &svc), 0);
}

#define HINTS_AUTO "{\"service.kubernetes.io/topology-aware-hints\":\"auto\"}"

static void put_slice(const char *name, const char *endpoints_json)
{
	char json[4096];
	struct k8s_endpointslice eps = {};
	char err[256] = "";
	cJSON *obj;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"namespace\":\"default\",\"name\":\"%s\","
		 "\"resourceVersion\":\"1\",\"labels\":{\"kubernetes.io/service-name\":\"web\"}},\"addressType\":\"IPv4\","
		 "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}],"
		 "\"endpoints\":%s}",
		 name, endpoints_json);
	obj = cJSON_Parse(json);
	assert_non_null(obj);
	if (k8s_endpointslice_from_json(obj, &eps, err, sizeof(err)))
		fail_msg("slice: %s", err);
	cJSON_Delete(obj);
	assert_int_equal(store_set_slice(&st, &eps), 0);
}

/* One endpoint: address, node, and its hinted zones as JSON names ("" none). */
#define EP(addr, node, zones)                                                                    \
	"{\"addresses\":[\"" addr "\"],\"nodeName\":\"" node "\",\"conditions\":{\"ready\":true}" \
	zones "}"
#define HINT(z)	    ",\"hints\":{\"forZones\":[{\"name\":\"" z "\"}]}"
#define HINT2(a, b) ",\"hints\":{\"forZones\":[{\"name\":\"" a "\"},{\"name\":\"" b "\"}]}"

/* The ClusterIP frontend's backends, "a,b" in pick order. */
static void cluster_backends(char *out, size_t len)
{
	struct lb_service_spec spec;
	size_t off = 0;

	out[0] = '\0';
	assert_int_equal(lb_desired_service(&st, SVC_KEY, false, &spec), 0);
	assert_int_equal(spec.n_frontends, 1);
	for (size_t i = 0; i < spec.frontends[0].n_backends; i++) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &spec.frontends[0].backends[i].addr, a, sizeof(a));
		assert_int_equal(ntohs(spec.frontends[0].backends[i].port), 8080);
		off += snprintf(out + off, len - off, "%s%s", off ? "," : "", a);
	}
	lb_service_spec_free(&spec);
}

#define ZONED_ENDPOINTS                                                                          \
	"[" EP("10.1.0.1", "node-a", HINT("zone-a")) "," EP("10.1.0.2", "node-b", HINT("zone-b")) \
	"," EP("10.1.0.3", "node-c", HINT2("zone-b", "zone-a")) "]"

static void test_all_hinted_and_matching_gives_the_zone(void **state)
{
	char got[256];

	(void)state;
	put_node("zone-a");
	put_service(HINTS_AUTO, "");
	put_slice("web-1", ZONED_ENDPOINTS);
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1,10.1.0.3");

	/* The node moves to zone-b: the service is dirty again, and re-picked. */
	store_clear_dirty(&st, SVC_KEY);
	assert_false(store_has_dirty(&st));
	put_node("zone-b");
	assert_true(store_has_dirty(&st));
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.2,10.1.0.3");
}

static void test_every_enabling_spelling(void **state)
{
	static const char *const ann[] = {
		"{\"service.kubernetes.io/topology-mode\":\"Auto\"}",
		"{\"service.kubernetes.io/topology-aware-hints\":\"auto\"}",
	};
	char got[256];

	(void)state;
	put_node("zone-a");
	put_slice("web-1", ZONED_ENDPOINTS);
	for (size_t i = 0; i < 2; i++) {
		put_service(ann[i], "");
		cluster_backends(got, sizeof(got));
		assert_string_equal(got, "10.1.0.1,10.1.0.3");
	}
	put_service("{}", ",\"trafficDistribution\":\"PreferClose\"");
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1,10.1.0.3");

	/* Not asked for, or disabled: every endpoint, hints or not. */
	put_service("{}", "");
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1,10.1.0.2,10.1.0.3");
	put_service("{\"service.kubernetes.io/topology-aware-hints\":\"disabled\"}", "");
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1,10.1.0.2,10.1.0.3");
	/* topology-mode, when set, wins over the older annotation. */
	put_service("{\"service.kubernetes.io/topology-mode\":\"Disabled\","
		    "\"service.kubernetes.io/topology-aware-hints\":\"auto\"}", "");
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1,10.1.0.2,10.1.0.3");
}

static void test_one_unhinted_endpoint_gives_all(void **state)
{
	char got[256];

	(void)state;
	put_node("zone-a");
	put_service(HINTS_AUTO, "");
	put_slice("web-1", ZONED_ENDPOINTS);
	/* The unhinted endpoint is in another slice: the rule spans them all. */
	put_slice("web-2", "[" EP("10.1.0.4", "node-d", "") "]");
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1,10.1.0.2,10.1.0.3,10.1.0.4");

	/* A not-ready endpoint without hints does not count. */
	put_slice("web-2", "[{\"addresses\":[\"10.1.0.4\"],\"conditions\":{\"ready\":false}}]");
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1,10.1.0.3");
}

static void test_no_endpoint_for_the_zone_gives_all(void **state)
{
	char got[256];

	(void)state;
	put_node("zone-c");
	put_service(HINTS_AUTO, "");
	put_slice("web-1", ZONED_ENDPOINTS);
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1,10.1.0.2,10.1.0.3");
}

static void test_local_policy_wins(void **state)
{
	char got[256];

	(void)state;
	put_node("zone-a");
	put_service(HINTS_AUTO, ",\"internalTrafficPolicy\":\"Local\"");
	/* node-a's endpoint is hinted for zone-b: Local still picks it. */
	put_slice("web-1", "[" EP("10.1.0.1", "node-a", HINT("zone-b")) ","
			   EP("10.1.0.2", "node-b", HINT("zone-a")) "]");
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1");
}

static void test_no_zone_label_gives_all(void **state)
{
	char got[256];

	(void)state;
	put_node(NULL);
	put_service(HINTS_AUTO, "");
	put_slice("web-1", ZONED_ENDPOINTS);
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1,10.1.0.2,10.1.0.3");
}

static void test_malformed_hints_ignored_slice_kept(void **state)
{
	struct k8s_endpointslice eps = {};
	char err[256] = "", got[256];
	cJSON *obj;

	(void)state;
	obj = cJSON_Parse("{\"metadata\":{\"namespace\":\"default\",\"name\":\"web-1\"},"
			  "\"addressType\":\"IPv4\",\"endpoints\":["
			  EP("10.1.0.1", "node-a", HINT("zone-a")) ","
			  "{\"addresses\":[\"10.1.0.2\"],"
			  "\"hints\":{\"forZones\":[{\"name\":7}]}}]}");
	assert_non_null(obj);
	assert_int_equal(k8s_endpointslice_from_json(obj, &eps, err, sizeof(err)), 0);
	cJSON_Delete(obj);
	assert_int_equal(eps.n_endpoints, 2);
	assert_string_equal(eps.hints_error,
			    "endpoints[1].hints.forZones[0].name: expected a string, got a number");
	assert_int_equal(eps.endpoints[0].hint_zones, 0);
	assert_int_equal(eps.n_hint_zones, 0);
	k8s_endpointslice_free(&eps);

	/* Served as if unhinted: every endpoint. */
	put_node("zone-a");
	put_service(HINTS_AUTO, "");
	put_slice("web-1", "[" EP("10.1.0.1", "node-a", HINT("zone-a")) ","
			   EP("10.1.0.2", "node-b", ",\"hints\":{\"forZones\":[{}]}") "]");
	cluster_backends(got, sizeof(got));
	assert_string_equal(got, "10.1.0.1,10.1.0.2");
}

static void test_hint_zone_table_shared_within_slice(void **state)
{
	struct k8s_endpointslice eps = {};
	char err[256] = "";
	cJSON *obj;

	(void)state;
	obj = cJSON_Parse("{\"metadata\":{\"namespace\":\"default\",\"name\":\"web-1\"},"
			  "\"addressType\":\"IPv4\",\"endpoints\":" ZONED_ENDPOINTS "}");
	assert_non_null(obj);
	assert_int_equal(k8s_endpointslice_from_json(obj, &eps, err, sizeof(err)), 0);
	cJSON_Delete(obj);
	assert_string_equal(eps.hints_error, "");
	assert_int_equal(eps.n_hint_zones, 2);
	assert_string_equal(eps.hint_zones[0], "zone-a");
	assert_string_equal(eps.hint_zones[1], "zone-b");
	assert_int_equal(eps.endpoints[0].hint_zones, 1);
	assert_int_equal(eps.endpoints[1].hint_zones, 2);
	assert_int_equal(eps.endpoints[2].hint_zones, 3);
	assert_int_equal(sizeof(struct k8s_eps_endpoint), 24);
	k8s_endpointslice_free(&eps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_all_hinted_and_matching_gives_the_zone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_every_enabling_spelling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_unhinted_endpoint_gives_all, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_endpoint_for_the_zone_gives_all, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_local_policy_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_zone_label_gives_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_hints_ignored_slice_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hint_zone_table_shared_within_slice, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
