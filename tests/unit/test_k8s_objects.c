// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The object parsers against the recorded apiserver responses, and against
 * a table of malformed objects that must each be refused with a reason that
 * names the field.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "k8s/objects.h"
#include "k8s_fixtures.h"

static __be32 ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* The list's item named ns/name. */
static const cJSON *find_item(const cJSON *list, const char *ns, const char *name)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items"), *it;

	cJSON_ArrayForEach(it, items)
	{
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(md, "name");
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(md, "namespace");

		if (!strcmp(n->valuestring, name) &&
		    !strcmp(cJSON_IsString(s) ? s->valuestring : "", ns))
			return it;
	}
	fail_msg("no item %s/%s", ns, name);
	return NULL;
}

/* ---- every fixture object parses ---- */

static void parse_all_services(const char *file, size_t expect)
{
	cJSON *list = fixture_json(file);
	const cJSON *it;
	size_t n = 0;
	char err[256];

	assert_non_null(list);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items"))
	{
		struct k8s_service svc;

		if (k8s_service_from_json(it, &svc, err, sizeof(err)))
			fail_msg("%s: %s", file, err);
		k8s_service_free(&svc);
		n++;
	}
	assert_int_equal(n, expect);
	cJSON_Delete(list);
}

static void test_all_fixture_objects_parse(void **state)
{
	cJSON *list;
	const cJSON *it;
	char err[256];
	size_t n;

	(void)state;
	parse_all_services("services-list.json", 9);
	parse_all_services("services-list-page1.json", 3);
	parse_all_services("services-list-page2.json", 3);

	list = fixture_json("endpointslices-list.json");
	assert_non_null(list);
	n = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items"))
	{
		struct k8s_endpointslice eps;

		if (k8s_endpointslice_from_json(it, &eps, err, sizeof(err)))
			fail_msg("endpointslice: %s", err);
		k8s_endpointslice_free(&eps);
		n++;
	}
	assert_int_equal(n, 3);
	cJSON_Delete(list);

	list = fixture_json("ciliumendpointslices-list.json");
	assert_non_null(list);
	n = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items"))
	{
		struct k8s_cilium_endpointslice ces;

		if (k8s_cilium_endpointslice_from_json(it, &ces, err, sizeof(err)))
			fail_msg("ces: %s", err);
		k8s_cilium_endpointslice_free(&ces);
		n++;
	}
	assert_int_equal(n, 2);
	cJSON_Delete(list);

	list = fixture_json("nodes-list.json");
	assert_non_null(list);
	n = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items"))
	{
		struct k8s_node node;

		if (k8s_node_from_json(it, &node, err, sizeof(err)))
			fail_msg("node: %s", err);
		k8s_node_free(&node);
		n++;
	}
	assert_int_equal(n, 2);
	cJSON_Delete(list);
}

/* The objects inside the recorded watch stream parse too. */
static void test_watch_fixture_objects_parse(void **state)
{
	char *text = fixture_read("services-watch.jsonl", NULL);
	char *line, *save = NULL;
	int added = 0;

	(void)state;
	assert_non_null(text);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cJSON *ev = cJSON_Parse(line);
		const char *type = cJSON_GetObjectItem(ev, "type")->valuestring;
		struct k8s_service svc;
		char err[256];

		assert_non_null(ev);
		if (strcmp(type, "BOOKMARK")) {
			assert_int_equal(k8s_service_from_json(cJSON_GetObjectItem(ev, "object"),
							       &svc, err, sizeof(err)),
					 0);
			assert_string_equal(svc.meta.name, "tmp");
			assert_int_equal(svc.ports[0].port, 9000);
			k8s_service_free(&svc);
			added++;
		}
		cJSON_Delete(ev);
	}
	assert_int_equal(added, 3);
	free(text);
}

/* ---- decoded fields ---- */

struct svc_case {
	cJSON *list;
	struct k8s_service svc;
};

static void get_service(struct svc_case *c, const char *name)
{
	char err[256];

	c->list = fixture_json("services-list.json");
	assert_non_null(c->list);
	if (k8s_service_from_json(find_item(c->list, "shop", name), &c->svc, err, sizeof(err)))
		fail_msg("%s: %s", name, err);
}

static void put_service(struct svc_case *c)
{
	k8s_service_free(&c->svc);
	cJSON_Delete(c->list);
}

static void test_service_web(void **state)
{
	struct svc_case c;

	(void)state;
	get_service(&c, "web");
	assert_string_equal(c.svc.meta.namespace, "shop");
	assert_string_equal(c.svc.meta.name, "web");
	/* uid and resourceVersion are read by the watch layer, not kept. */
	{
		struct k8s_meta m;
		char err[256];

		assert_int_equal(k8s_meta_from_json(find_item(c.list, "shop", "web"), &m, err,
						    sizeof(err)),
				 0);
		assert_string_equal(m.resource_version, "238");
		assert_string_equal(m.uid, "0f08db76-61f3-436c-ae2d-26146d22ccef");
	}
	assert_int_equal(c.svc.type, K8S_SVC_CLUSTER_IP);
	assert_false(c.svc.headless);
	assert_int_equal(c.svc.n_cluster_ips, 1);
	assert_int_equal(c.svc.cluster_ips[0], ip("10.106.87.89"));
	assert_int_equal(c.svc.n_ports, 2);
	assert_string_equal(c.svc.ports[0].name, "http");
	assert_int_equal(c.svc.ports[0].port, 80);
	assert_int_equal(c.svc.ports[0].proto, IPPROTO_TCP);
	assert_int_equal(c.svc.ports[0].node_port, 0);
	assert_string_equal(c.svc.ports[1].name, "https");
	assert_int_equal(c.svc.ports[1].port, 443);
	assert_false(c.svc.affinity_client_ip);
	assert_int_equal(c.svc.affinity_timeout, 0);
	assert_false(c.svc.ext_traffic_local);
	assert_false(c.svc.int_traffic_local);
	assert_int_equal(c.svc.n_external_ips, 0);
	assert_int_equal(c.svc.n_lb_ips, 0);
	put_service(&c);
}

static void test_service_front_nodeport(void **state)
{
	struct svc_case c;

	(void)state;
	get_service(&c, "front");
	assert_int_equal(c.svc.type, K8S_SVC_NODE_PORT);
	assert_int_equal(c.svc.n_ports, 1);
	assert_int_equal(c.svc.ports[0].port, 8080);
	assert_int_equal(c.svc.ports[0].node_port, 30080);
	assert_true(c.svc.ext_traffic_local);
	assert_false(c.svc.int_traffic_local);
	put_service(&c);
}

static void test_service_lb_affinity(void **state)
{
	struct svc_case c;

	(void)state;
	get_service(&c, "lb");
	assert_int_equal(c.svc.type, K8S_SVC_LOAD_BALANCER);
	assert_true(c.svc.affinity_client_ip);
	assert_int_equal(c.svc.affinity_timeout, 600);
	assert_int_equal(c.svc.n_external_ips, 1);
	assert_int_equal(c.svc.external_ips[0], ip("192.0.2.10"));
	assert_int_equal(c.svc.ports[0].node_port, 31927);
	assert_false(c.svc.ext_traffic_local);
	put_service(&c);
}

static void test_service_headless_external_local(void **state)
{
	struct svc_case c;

	(void)state;
	get_service(&c, "headless");
	assert_true(c.svc.headless);
	assert_int_equal(c.svc.n_cluster_ips, 0);
	assert_null(c.svc.cluster_ips);
	assert_int_equal(c.svc.ports[0].port, 5432);
	put_service(&c);

	get_service(&c, "ext");
	assert_int_equal(c.svc.type, K8S_SVC_EXTERNAL_NAME);
	assert_int_equal(c.svc.n_ports, 0);
	assert_int_equal(c.svc.n_cluster_ips, 0);
	put_service(&c);

	get_service(&c, "local-only");
	assert_true(c.svc.int_traffic_local);
	assert_string_equal(c.svc.ports[0].name, "");
	assert_int_equal(c.svc.ports[0].port, 6379);
	put_service(&c);

	/* Same port number, two protocols: not a duplicate. */
	get_service(&c, "dns");
	assert_int_equal(c.svc.n_ports, 2);
	assert_int_equal(c.svc.ports[0].proto, IPPROTO_UDP);
	assert_int_equal(c.svc.ports[1].proto, IPPROTO_TCP);
	assert_int_equal(c.svc.ports[0].port, 53);
	assert_int_equal(c.svc.ports[1].port, 53);
	put_service(&c);
}

static void test_service_defaults_and_variants(void **state)
{
	struct k8s_service svc;
	char err[256] = "";
	cJSON *j;

	(void)state;
	/* ClientIP without a config gets the API's default timeout. */
	j = cJSON_Parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},"
			"\"spec\":{\"clusterIP\":\"10.0.0.1\",\"sessionAffinity\":\"ClientIP\","
			"\"ports\":[{\"port\":80}]}}");
	assert_int_equal(k8s_service_from_json(j, &svc, err, sizeof(err)), 0);
	assert_true(svc.affinity_client_ip);
	assert_int_equal(svc.affinity_timeout, 10800);
	/* clusterIP alone (no clusterIPs) and the TCP default. */
	assert_int_equal(svc.n_cluster_ips, 1);
	assert_int_equal(svc.cluster_ips[0], ip("10.0.0.1"));
	assert_int_equal(svc.ports[0].proto, IPPROTO_TCP);
	k8s_service_free(&svc);
	cJSON_Delete(j);

	/* Dual stack: the IPv6 entries are skipped; LB ingress IPs and
	 * hostnames. */
	j = cJSON_Parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},"
			"\"spec\":{\"type\":\"LoadBalancer\",\"clusterIP\":\"fd00::1\","
			"\"clusterIPs\":[\"fd00::1\",\"10.0.0.2\"],"
			"\"externalIPs\":[\"2001:db8::1\"],"
			"\"ports\":[{\"port\":443,\"protocol\":\"SCTP\",\"nodePort\":31000}]},"
			"\"status\":{\"loadBalancer\":{\"ingress\":[{\"hostname\":\"x.example\"},"
			"{\"ip\":\"203.0.113.7\"},{\"ip\":\"2001:db8::7\"}]}}}");
	assert_int_equal(k8s_service_from_json(j, &svc, err, sizeof(err)), 0);
	assert_int_equal(svc.n_cluster_ips, 1);
	assert_int_equal(svc.cluster_ips[0], ip("10.0.0.2"));
	assert_int_equal(svc.n_external_ips, 0);
	assert_int_equal(svc.n_lb_ips, 1);
	assert_int_equal(svc.lb_ips[0], ip("203.0.113.7"));
	assert_int_equal(svc.ports[0].proto, IPPROTO_SCTP);
	assert_int_equal(svc.ports[0].node_port, 31000);
	assert_int_equal(svc.n_src_ranges, 0);
	k8s_service_free(&svc);
	cJSON_Delete(j);

	/* loadBalancerSourceRanges: IPv4 CIDRs kept in order, IPv6 skipped. */
	j = cJSON_Parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},"
			"\"spec\":{\"type\":\"LoadBalancer\",\"clusterIP\":\"10.0.0.3\","
			"\"ports\":[{\"port\":80}],\"loadBalancerSourceRanges\":"
			"[\"192.168.50.0/24\",\"2001:db8::/32\",\"203.0.113.7/32\"]}}");
	assert_int_equal(k8s_service_from_json(j, &svc, err, sizeof(err)), 0);
	assert_int_equal(svc.n_src_ranges, 2);
	assert_int_equal(svc.src_ranges[0].addr, ip("192.168.50.0"));
	assert_int_equal(svc.src_ranges[0].len, 24);
	assert_int_equal(svc.src_ranges[1].addr, ip("203.0.113.7"));
	assert_int_equal(svc.src_ranges[1].len, 32);
	k8s_service_free(&svc);
	cJSON_Delete(j);

	/* Freeing a zeroed struct is safe. */
	memset(&svc, 0, sizeof(svc));
	k8s_service_free(&svc);
}

/* What decides whether Axon serves a Service at all, and its health check. */
static void test_service_serving_fields(void **state)
{
	struct k8s_service svc;
	struct k8s_endpointslice eps;
	char err[256] = "";
	cJSON *j;

	(void)state;
	j = cJSON_Parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\",\"labels\":"
			"{\"service.kubernetes.io/service-proxy-name\":\"\"}},"
			"\"spec\":{\"type\":\"LoadBalancer\",\"clusterIP\":\"10.0.0.1\","
			"\"publishNotReadyAddresses\":true,\"externalTrafficPolicy\":\"Local\","
			"\"healthCheckNodePort\":31500,\"ports\":[{\"port\":80}]}}");
	assert_int_equal(k8s_service_from_json(j, &svc, err, sizeof(err)), 0);
	/* The label counts with any value, even "". */
	assert_true(svc.proxy_name_label);
	assert_true(svc.publish_not_ready);
	assert_false(svc.ipv6_only);
	assert_int_equal(svc.health_check_node_port, 31500);
	k8s_service_free(&svc);
	cJSON_Delete(j);

	/* Single-stack IPv6, in either field; no labels at all. */
	j = cJSON_Parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},"
			"\"spec\":{\"clusterIPs\":[\"fd00::1\"],\"ports\":[{\"port\":80}]}}");
	assert_int_equal(k8s_service_from_json(j, &svc, err, sizeof(err)), 0);
	assert_true(svc.ipv6_only);
	assert_false(svc.proxy_name_label);
	assert_false(svc.publish_not_ready);
	assert_int_equal(svc.health_check_node_port, 0);
	k8s_service_free(&svc);
	cJSON_Delete(j);
	j = cJSON_Parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},"
			"\"spec\":{\"clusterIP\":\"fd00::1\",\"ports\":[{\"port\":80}]}}");
	assert_int_equal(k8s_service_from_json(j, &svc, err, sizeof(err)), 0);
	assert_true(svc.ipv6_only);
	k8s_service_free(&svc);
	cJSON_Delete(j);

	/* The endpointslice controller's mark on a headless Service's slices. */
	j = cJSON_Parse("{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"labels\":"
			"{\"kubernetes.io/service-name\":\"a\","
			"\"service.kubernetes.io/headless\":\"\"}},\"addressType\":\"IPv4\"}");
	assert_int_equal(k8s_endpointslice_from_json(j, &eps, err, sizeof(err)), 0);
	assert_true(eps.headless_label);
	assert_string_equal(eps.service_name, "a");
	k8s_endpointslice_free(&eps);
	cJSON_Delete(j);
}

static void test_endpointslice_web_conditions(void **state)
{
	static const struct {
		const char *addr;
		bool ready, serving, terminating;
		const char *node;
	} want[] = {
	    {"10.244.0.11", true, true, false, "node-a"},
	    {"10.244.1.12", true, true, false, "node-b"},
	    {"10.244.1.13", false, true, true, "node-b"},
	    {"10.244.0.14", false, false, false, "node-a"},
	};
	cJSON *list = fixture_json("endpointslices-list.json");
	struct k8s_endpointslice eps;
	char err[256];

	(void)state;
	assert_non_null(list);
	assert_int_equal(k8s_endpointslice_from_json(find_item(list, "shop", "web-abc12"), &eps,
						     err, sizeof(err)),
			 0);
	assert_string_equal(eps.service_name, "web");
	assert_int_equal(eps.address_type, K8S_ADDR_IPV4);
	assert_int_equal(eps.n_ports, 2);
	assert_string_equal(eps.ports[0].name, "http");
	assert_int_equal(eps.ports[0].port, 80);
	assert_string_equal(eps.ports[1].name, "https");
	assert_int_equal(eps.ports[1].port, 8443);
	assert_int_equal(eps.n_endpoints, 4);
	for (size_t i = 0; i < 4; i++) {
		const struct k8s_eps_endpoint *ep = &eps.endpoints[i];

		assert_int_equal(ep->n_addrs, 1);
		assert_int_equal(ep->addrs[0], ip(want[i].addr));
		assert_int_equal(ep->ready, want[i].ready);
		assert_int_equal(ep->serving, want[i].serving);
		assert_int_equal(ep->terminating, want[i].terminating);
		assert_string_equal(ep->node_name, want[i].node);
	}
	/* Endpoints on one node share one copy of its name. */
	assert_ptr_equal(eps.endpoints[0].node_name, eps.endpoints[3].node_name);
	assert_ptr_equal(eps.endpoints[1].node_name, eps.endpoints[2].node_name);
	k8s_endpointslice_free(&eps);

	/* Only "ready" given: serving follows it, terminating is false. */
	assert_int_equal(k8s_endpointslice_from_json(find_item(list, "shop", "dns-q8w2e"), &eps,
						     err, sizeof(err)),
			 0);
	assert_int_equal(eps.n_endpoints, 1);
	assert_true(eps.endpoints[0].ready);
	assert_true(eps.endpoints[0].serving);
	assert_false(eps.endpoints[0].terminating);
	assert_int_equal(eps.ports[0].proto, IPPROTO_UDP);
	assert_int_equal(eps.ports[0].port, 5353);
	assert_int_equal(eps.ports[1].proto, IPPROTO_TCP);
	k8s_endpointslice_free(&eps);
	cJSON_Delete(list);
}

static void test_endpointslice_defaults_and_types(void **state)
{
	struct k8s_endpointslice eps;
	char err[256];
	cJSON *j;

	(void)state;
	/* No conditions at all: ready, serving, not terminating. An empty
	 * slice's endpoints are null. A port without a number is left out. */
	j = cJSON_Parse(
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},\"addressType\":\"IPv4\","
	    "\"endpoints\":[{\"addresses\":[\"10.1.0.1\"]},"
	    "{\"addresses\":[\"10.1.0.2\"],\"conditions\":{\"ready\":false}}],"
	    "\"ports\":[{\"name\":\"all\"},{\"name\":\"p\",\"port\":8080}]}");
	assert_int_equal(k8s_endpointslice_from_json(j, &eps, err, sizeof(err)), 0);
	assert_string_equal(eps.service_name, "");
	assert_true(eps.endpoints[0].ready);
	assert_true(eps.endpoints[0].serving);
	assert_false(eps.endpoints[0].terminating);
	assert_false(eps.endpoints[1].ready);
	assert_false(eps.endpoints[1].serving);
	assert_int_equal(eps.n_ports, 1);
	assert_string_equal(eps.ports[0].name, "p");
	k8s_endpointslice_free(&eps);
	cJSON_Delete(j);

	j = cJSON_Parse("{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},"
			"\"addressType\":\"IPv4\",\"endpoints\":null,\"ports\":null}");
	assert_int_equal(k8s_endpointslice_from_json(j, &eps, err, sizeof(err)), 0);
	assert_int_equal(eps.n_endpoints, 0);
	assert_int_equal(eps.n_ports, 0);
	k8s_endpointslice_free(&eps);
	cJSON_Delete(j);

	/* IPv6 and FQDN slices parse, marked, with no IPv4 addresses. */
	j = cJSON_Parse(
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},\"addressType\":\"IPv6\","
	    "\"endpoints\":[{\"addresses\":[\"fd00::5\"]}],\"ports\":[{\"port\":80}]}");
	assert_int_equal(k8s_endpointslice_from_json(j, &eps, err, sizeof(err)), 0);
	assert_int_equal(eps.address_type, K8S_ADDR_IPV6);
	assert_int_equal(eps.n_endpoints, 1);
	assert_int_equal(eps.endpoints[0].n_addrs, 0);
	k8s_endpointslice_free(&eps);
	cJSON_Delete(j);

	j = cJSON_Parse(
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},\"addressType\":\"FQDN\","
	    "\"endpoints\":[{\"addresses\":[\"db.example.com\"]}]}");
	assert_int_equal(k8s_endpointslice_from_json(j, &eps, err, sizeof(err)), 0);
	assert_int_equal(eps.address_type, K8S_ADDR_FQDN);
	k8s_endpointslice_free(&eps);
	cJSON_Delete(j);

	/* Every endpoint's addresses live in one array per slice: each endpoint
	 * sees its own, an endpoint with no IPv4 address sees none. */
	j = cJSON_Parse(
	    "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},\"addressType\":\"IPv4\","
	    "\"endpoints\":[{\"addresses\":[\"fd00::1\"]},"
	    "{\"addresses\":[\"10.1.0.3\",\"fd00::2\",\"10.1.0.4\"],\"nodeName\":\"a\"},"
	    "{\"addresses\":[\"10.1.0.5\"],\"nodeName\":\"a\"}]}");
	assert_int_equal(k8s_endpointslice_from_json(j, &eps, err, sizeof(err)), 0);
	assert_int_equal(eps.n_endpoints, 3);
	assert_int_equal(eps.endpoints[0].n_addrs, 0);
	assert_null(eps.endpoints[0].addrs);
	assert_string_equal(eps.endpoints[0].node_name, "");
	assert_int_equal(eps.endpoints[1].n_addrs, 2);
	assert_int_equal(eps.endpoints[1].addrs[0], ip("10.1.0.3"));
	assert_int_equal(eps.endpoints[1].addrs[1], ip("10.1.0.4"));
	assert_int_equal(eps.endpoints[2].n_addrs, 1);
	assert_int_equal(eps.endpoints[2].addrs[0], ip("10.1.0.5"));
	assert_ptr_equal(eps.endpoints[1].node_name, eps.endpoints[2].node_name);
	k8s_endpointslice_free(&eps);
	cJSON_Delete(j);
}

/* Strings added to a pool stay where they are while it grows, whatever
 * their sizes (one larger than a block included). */
static void test_strpool_strings_stay_put(void **state)
{
	static char big[6000];
	struct k8s_strpool pool = {};
	const char *got[300];
	char want[32];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	for (int i = 0; i < 300; i++) {
		snprintf(want, sizeof(want), "name-%d", i);
		got[i] = i == 150 ? k8s_strpool_add(&pool, big, strlen(big))
				  : k8s_strpool_add(&pool, want, strlen(want));
		assert_non_null(got[i]);
	}
	for (int i = 0; i < 300; i++) {
		snprintf(want, sizeof(want), "name-%d", i);
		assert_string_equal(got[i], i == 150 ? big : want);
	}
	assert_string_equal(k8s_strpool_add(&pool, "abc", 2), "ab");
	k8s_strpool_free(&pool);
	assert_null(pool.head);
	k8s_strpool_free(&pool);
}

static void test_cilium_endpointslice(void **state)
{
	cJSON *list = fixture_json("ciliumendpointslices-list.json");
	struct k8s_cilium_endpointslice ces;
	char err[256];

	(void)state;
	assert_non_null(list);
	assert_int_equal(k8s_cilium_endpointslice_from_json(find_item(list, "", "ces-shop-web-1"),
							    &ces, err, sizeof(err)),
			 0);
	assert_string_equal(ces.meta.namespace, "");
	assert_string_equal(ces.namespace, "shop");
	assert_string_equal(ces.meta.name, "ces-shop-web-1");
	assert_int_equal(ces.n_endpoints, 3);
	assert_string_equal(ces.endpoints[0].name, "web-7d9f-x1");
	assert_int_equal(ces.endpoints[0].identity, 51234);
	assert_int_equal(ces.endpoints[1].identity, 51234);
	assert_int_equal(ces.endpoints[2].identity, 48812);
	assert_int_equal(ces.endpoints[0].ipv4, ip("10.244.0.11"));
	assert_int_equal(ces.endpoints[0].node_ip, ip("192.168.50.10"));
	assert_int_equal(ces.endpoints[1].node_ip, ip("192.168.50.11"));
	assert_int_equal(ces.endpoints[0].n_named_ports, 1);
	assert_string_equal(ces.endpoints[0].named_ports[0].name, "http");
	assert_int_equal(ces.endpoints[0].named_ports[0].port, 80);
	assert_int_equal(ces.endpoints[0].named_ports[0].proto, IPPROTO_TCP);
	assert_int_equal(ces.endpoints[1].n_named_ports, 0);
	k8s_cilium_endpointslice_free(&ces);
	cJSON_Delete(list);
}

static void test_node(void **state)
{
	cJSON *list = fixture_json("nodes-list.json");
	struct k8s_node node;
	char err[256];
	cJSON *j;

	(void)state;
	assert_non_null(list);
	assert_int_equal(k8s_node_from_json(find_item(list, "", "node-a"), &node, err, sizeof(err)),
			 0);
	assert_string_equal(node.meta.name, "node-a");
	assert_string_equal(node.meta.namespace, "");
	assert_int_equal(node.n_pod_cidrs, 1);
	assert_int_equal(node.pod_cidrs[0].addr, ip("10.244.0.0"));
	assert_int_equal(node.pod_cidrs[0].len, 24);
	assert_int_equal(node.internal_ip, 0);
	k8s_node_free(&node);
	cJSON_Delete(list);

	/* Addresses, and podCIDR alone (older objects). */
	j = cJSON_Parse("{\"metadata\":{\"name\":\"n1\"},\"spec\":{\"podCIDR\":\"10.9.0.0/16\"},"
			"\"status\":{\"addresses\":[{\"type\":\"Hostname\",\"address\":\"n1\"},"
			"{\"type\":\"InternalIP\",\"address\":\"fd00::1\"},"
			"{\"type\":\"InternalIP\",\"address\":\"192.168.1.5\"},"
			"{\"type\":\"ExternalIP\",\"address\":\"203.0.113.5\"}]}}");
	assert_int_equal(k8s_node_from_json(j, &node, err, sizeof(err)), 0);
	assert_int_equal(node.internal_ip, ip("192.168.1.5"));
	assert_int_equal(node.external_ip, ip("203.0.113.5"));
	assert_int_equal(node.n_pod_cidrs, 1);
	assert_int_equal(node.pod_cidrs[0].addr, ip("10.9.0.0"));
	assert_int_equal(node.pod_cidrs[0].len, 16);
	k8s_node_free(&node);
	cJSON_Delete(j);
}

static void test_proto_helpers(void **state)
{
	__u8 p = 0;

	(void)state;
	assert_int_equal(k8s_proto_from_string(NULL, &p), 0);
	assert_int_equal(p, IPPROTO_TCP);
	assert_int_equal(k8s_proto_from_string("UDP", &p), 0);
	assert_int_equal(p, IPPROTO_UDP);
	assert_int_equal(k8s_proto_from_string("udp", &p), -EINVAL);
	assert_string_equal(k8s_proto_name(IPPROTO_SCTP), "SCTP");
}

/* ---- malformed objects ---- */

#define META	   "\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"}"
#define SVC(spec)  "{" META ",\"spec\":{" spec "}}"
#define EPS(rest)  "{" META ",\"addressType\":\"IPv4\"," rest "}"
#define CES(eps)   "{\"metadata\":{\"name\":\"c\"},\"namespace\":\"n\",\"endpoints\":[" eps "]}"
#define NODE(rest) "{\"metadata\":{\"name\":\"n1\"}," rest "}"

static const struct bad_case {
	const char *kind;
	const char *json;
	const char *err;
} bad_cases[] = {
    /* metadata */
    {"svc", "[]", "object: expected a JSON object"},
    {"svc", "{\"spec\":{}}", "metadata: required field is missing"},
    {"svc", "{\"metadata\":{\"namespace\":\"n\"},\"spec\":{}}",
     "metadata.name: required field is missing"},
    {"svc", "{\"metadata\":{\"name\":42},\"spec\":{}}",
     "metadata.name: expected a string, got a number"},
    {"svc", "{\"metadata\":{\"name\":\"\"},\"spec\":{}}", "metadata.name: must not be empty"},
    {"svc", "{\"metadata\":{\"name\":\"a/b\"},\"spec\":{}}",
     "metadata.name: invalid character '/'"},
    {"svc", "{\"metadata\":{\"name\":\"a\\nb\"},\"spec\":{}}",
     "metadata.name: control character at byte 1"},
    /* Invalid UTF-8, and valid UTF-8 that no DNS name holds. */
    {"svc", "{\"metadata\":{\"name\":\"a\xff\"},\"spec\":{}}",
     "metadata.name: invalid byte 0xff (not printable ASCII)"},
    {"svc", "{\"metadata\":{\"name\":\"web\",\"namespace\":\"caf\xc3\xa9\"},\"spec\":{}}",
     "metadata.namespace: invalid byte 0xc3 (not printable ASCII)"},
    {"svc", "{\"metadata\":\"x\",\"spec\":{}}", "metadata: expected an object, got a string"},
    {"svc", "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":7},\"spec\":{}}",
     "metadata.resourceVersion: expected a string"},
    /* Service */
    {"svc", "{" META "}", "spec: required field is missing"},
    {"svc", SVC("\"type\":\"Magic\""), "spec.type: unknown value \"Magic\""},
    {"svc", SVC("\"publishNotReadyAddresses\":\"yes\""),
     "spec.publishNotReadyAddresses: expected a boolean, got a string"},
    {"svc", SVC("\"healthCheckNodePort\":70000"),
     "spec.healthCheckNodePort: 70000 is not in 0..65535"},
    {"svc", SVC("\"loadBalancerSourceRanges\":[\"10.0.0.0/33\"]"),
     "spec.loadBalancerSourceRanges[0]: \"10.0.0.0/33\" is not a CIDR"},
    {"svc", SVC("\"clusterIP\":\"10.0.0.300\""),
     "spec.clusterIP: \"10.0.0.300\" is not an IP address"},
    {"svc", SVC("\"clusterIP\":\"\""), "spec.clusterIP: \"\" is not an IP address"},
    {"svc", SVC("\"clusterIP\":42"), "spec.clusterIP: expected an IP address string, got a number"},
    {"svc", SVC("\"clusterIPs\":[\"10.0.0.1\",\"x\"]"),
     "spec.clusterIPs[1]: \"x\" is not an IP address"},
    {"svc", SVC("\"clusterIPs\":\"10.0.0.1\""), "spec.clusterIPs: expected an array"},
    {"svc", SVC("\"externalIPs\":[\"1.2.3.4\",null]"),
     "spec.externalIPs[1]: expected an IP address string, got null"},
    {"svc", SVC("\"ports\":[{\"port\":0}]"), "spec.ports[0].port: 0 is not in 1..65535"},
    {"svc", SVC("\"ports\":[{\"port\":80},{\"port\":70000}]"),
     "spec.ports[1].port: 70000 is not in 1..65535"},
    {"svc", SVC("\"ports\":[{\"port\":-1}]"), "spec.ports[0].port: -1 is not in 1..65535"},
    {"svc", SVC("\"ports\":[{\"port\":80.5}]"), "spec.ports[0].port: 80.5 is not an integer"},
    {"svc", SVC("\"ports\":[{\"port\":\"80\"}]"),
     "spec.ports[0].port: expected an integer, got a string"},
    {"svc", SVC("\"ports\":[{\"port\":1e300}]"),
     "spec.ports[0].port: 1.0000000000000001e+300 is not in 1..65535"},
    {"svc", SVC("\"ports\":[{\"name\":\"x\"}]"), "spec.ports[0].port: required field is missing"},
    {"svc", SVC("\"ports\":[{\"port\":80,\"protocol\":\"ICMP\"}]"),
     "spec.ports[0].protocol: unknown protocol \"ICMP\""},
    {"svc", SVC("\"ports\":[{\"port\":80,\"nodePort\":65536}]"),
     "spec.ports[0].nodePort: 65536 is not in 0..65535"},
    {"svc", SVC("\"ports\":[{\"port\":80},{\"port\":80,\"protocol\":\"TCP\"}]"),
     "spec.ports[1]: duplicate port 80/TCP"},
    {"svc", SVC("\"ports\":[{\"name\":\"a\",\"port\":80},{\"name\":\"a\",\"port\":81}]"),
     "spec.ports[1].name: duplicate port name \"a\""},
    {"svc", SVC("\"ports\":[7]"), "spec.ports[0]: expected an object"},
    {"svc", SVC("\"ports\":{}"), "spec.ports: expected an array, got an object"},
    {"svc", SVC("\"sessionAffinity\":\"Sticky\""),
     "spec.sessionAffinity: unknown value \"Sticky\""},
    {"svc",
     SVC("\"sessionAffinity\":\"ClientIP\","
	 "\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":0}}"),
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 is not in 1..86400"},
    {"svc", SVC("\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":[]"),
     "spec.sessionAffinityConfig: expected an object, got an array"},
    {"svc", SVC("\"externalTrafficPolicy\":true"),
     "spec.externalTrafficPolicy: expected a string, got a boolean"},
    {"svc", SVC("\"internalTrafficPolicy\":\"Nearby\""),
     "spec.internalTrafficPolicy: unknown value \"Nearby\""},
    {"svc",
     "{" META ",\"spec\":{},\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"1.2.3\"}]}}}",
     "status.loadBalancer.ingress[0].ip: \"1.2.3\" is not an IP address"},
    /* EndpointSlice */
    {"eps", "{" META "}", "addressType: required field is missing"},
    {"eps", "{" META ",\"addressType\":\"IPv5\"}", "addressType: unknown value \"IPv5\""},
    {"eps", EPS("\"endpoints\":[{\"addresses\":[\"10.0.0.1\",\"10.0.0.256\"]}]"),
     "endpoints[0].addresses[1]: \"10.0.0.256\" is not an IP address"},
    {"eps", EPS("\"endpoints\":[{\"addresses\":[]}]"), "endpoints[0].addresses: must not be empty"},
    {"eps", EPS("\"endpoints\":[{}]"), "endpoints[0].addresses: required field is missing"},
    {"eps",
     EPS("\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":\"yes\"}}]"),
     "endpoints[0].conditions.ready: expected a boolean, got a string"},
    {"eps",
     EPS("\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"terminating\":1}}]"),
     "endpoints[0].conditions.terminating: expected a boolean, got a number"},
    {"eps", EPS("\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]},5]"),
     "endpoints[1]: expected an object"},
    {"eps", EPS("\"ports\":[{\"port\":65536}]"), "ports[0].port: 65536 is not in 1..65535"},
    {"eps", EPS("\"ports\":[{\"port\":80,\"protocol\":\"tcp\"}]"),
     "ports[0].protocol: unknown protocol \"tcp\""},
    {"eps",
     "{\"metadata\":{\"name\":\"a\",\"labels\":{\"kubernetes.io/service-name\":5}},"
     "\"addressType\":\"IPv4\"}",
     "metadata.labels.kubernetes.io/service-name: expected a string"},
    {"eps", EPS("\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"nodeName\":[]}]"),
     "endpoints[0].nodeName: expected a string, got an array"},
    {"eps", "{" META ",\"addressType\":\"FQDN\",\"endpoints\":[{\"addresses\":[1]}]}",
     "endpoints[0].addresses[0]: expected a string"},
    /* CiliumEndpointSlice */
    {"ces", "{\"metadata\":{\"name\":\"c\"},\"endpoints\":[]}",
     "namespace: required field is missing"},
    {"ces", CES("{\"name\":\"p\"}"), "endpoints[0].id: required field is missing"},
    {"ces", CES("{\"name\":\"p\",\"id\":-5}"), "endpoints[0].id: -5 is not in 0..4294967295"},
    {"ces", CES("{\"name\":\"p\",\"id\":\"5\"}"), "endpoints[0].id: expected an integer"},
    {"ces", CES("{\"id\":5}"), "endpoints[0].name: required field is missing"},
    {"ces",
     CES("{\"name\":\"p\",\"id\":5,\"networking\":{\"addressing\":[{\"ipv4\":\"fd00::1\"}]}}"),
     "endpoints[0].networking.addressing[0].ipv4: not an IPv4 address"},
    {"ces", CES("{\"name\":\"p\",\"id\":5,\"networking\":{\"node\":\"300.1.1.1\"}}"),
     "endpoints[0].networking.node: \"300.1.1.1\" is not an IP address"},
    {"ces", CES("{\"name\":\"p\",\"id\":5,\"named-ports\":[{\"name\":\"h\",\"port\":0}]}"),
     "endpoints[0].named-ports[0].port: 0 is not in 1..65535"},
    {"ces", CES("{\"name\":\"p\",\"id\":5,\"named-ports\":[{\"port\":80}]}"),
     "endpoints[0].named-ports[0].name: must not be empty"},
    /* Node */
    {"node", NODE("\"spec\":{\"podCIDRs\":[\"10.244.0.0/33\"]}"),
     "spec.podCIDRs[0]: \"10.244.0.0/33\" is not a CIDR"},
    {"node", NODE("\"spec\":{\"podCIDRs\":[\"10.244.0.0\"]}"),
     "spec.podCIDRs[0]: \"10.244.0.0\" is not a CIDR"},
    {"node", NODE("\"spec\":{\"podCIDR\":\"10.244.0.0/2x\"}"),
     "spec.podCIDR: \"10.244.0.0/2x\" is not a CIDR"},
    {"node", NODE("\"spec\":{\"podCIDRs\":[24]}"),
     "spec.podCIDRs[0]: expected a CIDR string, got a number"},
    {"node", NODE("\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"a.b.c.d\"}]}"),
     "status.addresses[0].address: \"a.b.c.d\" is not an IP address"},
    {"node", NODE("\"status\":{\"addresses\":[{\"address\":\"1.2.3.4\"}]}"),
     "status.addresses[0].type: required field is missing"},
};

static int parse_text(const char *kind, const char *text, char *err, size_t errlen)
{
	cJSON *j = cJSON_Parse(text);
	int ret;

	if (!j)
		fail_msg("bad test JSON: %s", text);
	if (!strcmp(kind, "svc")) {
		struct k8s_service o;

		ret = k8s_service_from_json(j, &o, err, errlen);
		/* On error the struct must come back empty. */
		if (ret)
			assert_true(!o.ports && !o.cluster_ips && !o.external_ips && !o.lb_ips);
		k8s_service_free(&o);
	} else if (!strcmp(kind, "eps")) {
		struct k8s_endpointslice o;

		ret = k8s_endpointslice_from_json(j, &o, err, errlen);
		if (ret)
			assert_true(!o.ports && !o.endpoints);
		k8s_endpointslice_free(&o);
	} else if (!strcmp(kind, "ces")) {
		struct k8s_cilium_endpointslice o;

		ret = k8s_cilium_endpointslice_from_json(j, &o, err, errlen);
		if (ret)
			assert_true(!o.endpoints);
		k8s_cilium_endpointslice_free(&o);
	} else {
		struct k8s_node o;

		ret = k8s_node_from_json(j, &o, err, errlen);
		if (ret)
			assert_true(!o.pod_cidrs);
		k8s_node_free(&o);
	}
	cJSON_Delete(j);
	return ret;
}

static void test_malformed_objects(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char err[256] = "";
		int ret = parse_text(c->kind, c->json, err, sizeof(err));

		if (ret != -EINVAL)
			fail_msg("case %zu (%s): ret %d, want -EINVAL", i, c->json, ret);
		if (!strstr(err, c->err))
			fail_msg("case %zu (%s):\n  got  \"%s\"\n  want \"%s\"", i, c->json, err,
				 c->err);
	}
}

/* Over-long strings and huge arrays: refused, with nothing allocated. */
static void test_oversize_inputs(void **state)
{
	char err[256];
	cJSON *j, *spec, *ports, *md;
	char *big;

	(void)state;
	big = malloc(4096);
	memset(big, 'a', 4095);
	big[4095] = '\0';
	j = cJSON_CreateObject();
	md = cJSON_AddObjectToObject(j, "metadata");
	cJSON_AddStringToObject(md, "name", big);
	spec = cJSON_AddObjectToObject(j, "spec");
	{
		struct k8s_service s;

		assert_int_equal(k8s_service_from_json(j, &s, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "metadata.name: longer than 253 bytes");
	}
	cJSON_ReplaceItemInObject(md, "name", cJSON_CreateString("ok"));
	big[64] = '\0';
	cJSON_AddStringToObject(md, "namespace", big);
	{
		struct k8s_service s;

		assert_int_equal(k8s_service_from_json(j, &s, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "metadata.namespace: longer than 63 bytes");
	}
	cJSON_DeleteItemFromObject(md, "namespace");
	ports = cJSON_AddArrayToObject(spec, "ports");
	for (int i = 0; i < 1025; i++) {
		cJSON *p = cJSON_CreateObject();

		cJSON_AddNumberToObject(p, "port", 1 + i);
		cJSON_AddItemToArray(ports, p);
	}
	{
		struct k8s_service s;

		assert_int_equal(k8s_service_from_json(j, &s, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "spec.ports: more than 1024 items");
	}
	/* A long port name in a valid slot. */
	cJSON_DeleteItemFromObject(spec, "ports");
	ports = cJSON_AddArrayToObject(spec, "ports");
	{
		cJSON *p = cJSON_CreateObject();
		struct k8s_service s;

		cJSON_AddNumberToObject(p, "port", 80);
		cJSON_AddStringToObject(p, "name", big);
		cJSON_AddItemToArray(ports, p);
		assert_int_equal(k8s_service_from_json(j, &s, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "spec.ports[0].name: longer than 63 bytes");
	}
	/* A huge address list in an EndpointSlice. */
	cJSON_Delete(j);
	j = cJSON_Parse("{" META ",\"addressType\":\"IPv4\",\"endpoints\":[]}");
	{
		cJSON *eps = cJSON_GetObjectItem(j, "endpoints");
		struct k8s_endpointslice e;

		for (int i = 0; i < 1001; i++) {
			cJSON *ep = cJSON_CreateObject();
			cJSON *a = cJSON_AddArrayToObject(ep, "addresses");

			cJSON_AddItemToArray(a, cJSON_CreateString("10.0.0.1"));
			cJSON_AddItemToArray(eps, ep);
		}
		assert_int_equal(k8s_endpointslice_from_json(j, &e, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "endpoints: more than 1000 items");
		/* Error at the last endpoint: earlier ones' addresses freed. */
		cJSON_DeleteItemFromArray(eps, 0);
		cJSON_ReplaceItemInObject(cJSON_GetArrayItem(eps, 999), "addresses",
					  cJSON_CreateString("x"));
		assert_int_equal(k8s_endpointslice_from_json(j, &e, err, sizeof(err)), -EINVAL);
		assert_string_equal(err,
				    "endpoints[999].addresses: expected an array, got a string");
	}
	cJSON_Delete(j);
	free(big);

	/* Error text is cut to the caller's buffer, never overflowed. */
	{
		char small[8];
		struct k8s_service s;

		j = cJSON_Parse(SVC("\"ports\":[{\"port\":0}]"));
		assert_int_equal(k8s_service_from_json(j, &s, small, sizeof(small)), -EINVAL);
		assert_int_equal(strlen(small), 7);
		cJSON_Delete(j);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_fixture_objects_parse),
	    cmocka_unit_test(test_watch_fixture_objects_parse),
	    cmocka_unit_test(test_service_web),
	    cmocka_unit_test(test_service_front_nodeport),
	    cmocka_unit_test(test_service_lb_affinity),
	    cmocka_unit_test(test_service_headless_external_local),
	    cmocka_unit_test(test_service_defaults_and_variants),
	    cmocka_unit_test(test_service_serving_fields),
	    cmocka_unit_test(test_endpointslice_web_conditions),
	    cmocka_unit_test(test_endpointslice_defaults_and_types),
	    cmocka_unit_test(test_strpool_strings_stay_put),
	    cmocka_unit_test(test_cilium_endpointslice),
	    cmocka_unit_test(test_node),
	    cmocka_unit_test(test_proto_helpers),
	    cmocka_unit_test(test_malformed_objects),
	    cmocka_unit_test(test_oversize_inputs),
	};

	return cmocka_run_group_tests_name("k8s_objects", tests, NULL, NULL);
}
