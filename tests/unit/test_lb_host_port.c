// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Pods' host ports: the Pod parser (hostPort, hostIP, protocol, what is left
 * out and why), the host port keys, and the frontends the reconciler writes
 * for them (node addresses and 127.0.0.1, hostIP, conflicts, pod lifecycle),
 * checked in the (fake) maps the datapath reads.
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
#include "endpoints/desired.h"
#include "k8s/pod.h"
#include "lb/hostport.h"
#include "lb/reconcile.h"
#include "store/store.h"
#include "log.h"
#include "fake_maps.c.inc"

#include "lb_fixture.c.inc"

static __be32 ip(const char *s)
{
	__be32 a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

/* A Pod of namespace shop on node-a; ports: the "ports" array of its one
 * container; extra: more members of "spec"; status: its "status". */
static int parse_pod(const char *name, const char *created, const char *ports, const char *extra,
		     const char *status, struct k8s_pod *pod, char *err, size_t errlen)
{
	char json[4096];
	cJSON *obj;
	int ret;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"%s\","
		 "\"creationTimestamp\":\"%s\"},"
		 "\"spec\":{\"nodeName\":\"node-a\"%s%s,\"containers\":[{\"name\":\"c\","
		 "\"ports\":%s}]},\"status\":%s}",
		 name, created, extra[0] ? "," : "", extra, ports, status);
	obj = cJSON_Parse(json);
	assert_non_null(obj);
	ret = k8s_pod_from_json(obj, pod, err, errlen);
	cJSON_Delete(obj);
	return ret;
}

#define RUNNING(podip) "{\"phase\":\"Running\",\"podIP\":\"" podip "\"}"
#define HP_TCP "[{\"containerPort\":80,\"hostPort\":8080}]"

static void put_pod(struct fixture *fx, const char *name, const char *created, const char *ports,
		    const char *extra, const char *status)
{
	struct k8s_pod pod;
	char err[256] = "";

	if (parse_pod(name, created, ports, extra, status, &pod, err, sizeof(err)))
		fail_msg("pod: %s", err);
	assert_int_equal(store_set_pod(&fx->store, &pod), 0);
}

static void put_node_self(struct fixture *fx, const char *internal, const char *external)
{
	char json[1024], err[256] = "";
	struct k8s_node node;
	cJSON *obj;

	store_set_self_name(&fx->store, "node-a");
	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"node-a\"},\"status\":{\"addresses\":["
		 "{\"type\":\"InternalIP\",\"address\":\"%s\"},"
		 "{\"type\":\"ExternalIP\",\"address\":\"%s\"}]}}",
		 internal, external);
	obj = cJSON_Parse(json);
	assert_int_equal(k8s_node_from_json(obj, &node, err, sizeof(err)), 0);
	cJSON_Delete(obj);
	assert_int_equal(store_set_node(&fx->store, &node), 0);
}

static int sync_all(struct fixture *fx)
{
	uint64_t next;

	return lb_reconcile_dirty(&fx->lb, &fx->store, lb_now_ms(), &next);
}

static const struct lb4_service *slot(struct fixture *fx, const char *addr, int port, __u8 proto,
				      __u16 s)
{
	struct lb4_key k = { .address = ip(addr), .dport = htons(port), .proto = proto,
			     .backend_slot = s };

	return fake_lookup(&fx->maps, LB_MAP_SERVICES, &k);
}

/* The frontend's one backend as "a:p", after checking slot 0 says host port
 * with exactly one backend. "" when there is no such frontend. */
static const char *host_port_backend(struct fixture *fx, const char *addr, int port, __u8 proto)
{
	static char out[64];
	const struct lb4_service *s0 = slot(fx, addr, port, proto, 0), *s1;
	const struct lb4_backend *b;
	char a[INET_ADDRSTRLEN];

	if (!s0)
		return "";
	assert_int_equal(s0->flags, SVC_FLAG_HOST_PORT);
	assert_int_equal(s0->flags2, 0);
	assert_int_equal(s0->count, 1);
	s1 = slot(fx, addr, port, proto, 1);
	assert_non_null(s1);
	b = fake_lookup(&fx->maps, LB_MAP_BACKENDS, &s1->backend_id);
	assert_non_null(b);
	assert_int_equal(b->proto, proto);
	inet_ntop(AF_INET, &b->address, a, sizeof(a));
	snprintf(out, sizeof(out), "%s:%d", a, ntohs(b->port));
	return out;
}

/* ---- parsing ---- */

static void test_pod_host_ports_parsed(void **state)
{
	struct k8s_pod pod;
	char err[256] = "";

	(void)state;
	assert_int_equal(
	    parse_pod("web", "2026-01-02T03:04:05Z",
		      "[{\"containerPort\":80,\"hostPort\":8080},"
		      "{\"containerPort\":53,\"hostPort\":5353,\"protocol\":\"UDP\","
		      "\"hostIP\":\"192.168.1.10\"},"
		      "{\"name\":\"metrics\",\"containerPort\":9000},"
		      "{\"containerPort\":81,\"hostPort\":0},"
		      "{\"containerPort\":443,\"hostPort\":8443,\"hostIP\":\"0.0.0.0\"}]",
		      "", RUNNING("10.244.0.5"), &pod, err, sizeof(err)),
	    0);
	assert_string_equal(pod.created, "2026-01-02T03:04:05Z");
	assert_null(pod.host_port_skipped);
	/* hostPort 0 is the API's "none"; a port without one is no host port. */
	assert_int_equal(pod.n_host_ports, 3);
	assert_int_equal(pod.host_ports[0].host_port, 8080);
	assert_int_equal(pod.host_ports[0].container_port, 80);
	assert_int_equal(pod.host_ports[0].proto, IPPROTO_TCP);
	assert_int_equal(pod.host_ports[0].host_ip, 0);
	assert_int_equal(pod.host_ports[1].host_port, 5353);
	assert_int_equal(pod.host_ports[1].container_port, 53);
	assert_int_equal(pod.host_ports[1].proto, IPPROTO_UDP);
	assert_int_equal(pod.host_ports[1].host_ip, ip("192.168.1.10"));
	assert_int_equal(pod.host_ports[2].host_port, 8443);
	assert_int_equal(pod.host_ports[2].host_ip, 0);
	/* The named port is still a named port. */
	assert_int_equal(pod.n_named_ports, 1);
	assert_string_equal(pod.named_ports[0].name, "metrics");
	k8s_pod_free(&pod);

	/* No ports, no creationTimestamp. */
	{
		cJSON *obj = cJSON_Parse("{\"metadata\":{\"namespace\":\"shop\",\"name\":\"x\"},"
					 "\"spec\":{\"containers\":[{\"name\":\"c\"}]}}");

		assert_int_equal(k8s_pod_from_json(obj, &pod, err, sizeof(err)), 0);
		cJSON_Delete(obj);
		assert_string_equal(pod.created, "");
		assert_int_equal(pod.n_host_ports, 0);
		k8s_pod_free(&pod);
	}
}

/* A host port the datapath cannot serve is left out, the first one named in
 * host_port_skipped; the pod itself (its endpoint, its other ports) stays. */
static void test_pod_malformed_host_ports_skipped(void **state)
{
	static const struct {
		const char *port, *skipped;
	} cases[] = {
	    {"{\"containerPort\":80,\"hostPort\":70000}",
	     "spec.containers[0].ports[0].hostPort: 70000 is not in 0..65535"},
	    {"{\"containerPort\":80,\"hostPort\":\"8080\"}",
	     "spec.containers[0].ports[0].hostPort: expected an integer, got a string"},
	    {"{\"containerPort\":80,\"hostPort\":8080,\"hostIP\":\"fe80::1\"}",
	     "spec.containers[0].ports[0].hostIP: \"fe80::1\": IPv6 is not served"},
	    {"{\"containerPort\":80,\"hostPort\":8080,\"hostIP\":\"node-a\"}",
	     "spec.containers[0].ports[0].hostIP: \"node-a\" is not an IP address"},
	    {"{\"containerPort\":80,\"hostPort\":8080,\"hostIP\":7}",
	     "spec.containers[0].ports[0].hostIP: expected a string, got a number"},
	    {"{\"containerPort\":80,\"hostPort\":8080,\"protocol\":\"SCTP\"}",
	     "spec.containers[0].ports[0].protocol: SCTP host ports are not served"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char ports[512], err[256] = "";
		struct k8s_pod pod;

		/* The bad port first, then a good one that must survive it. */
		snprintf(ports, sizeof(ports), "[%s,{\"containerPort\":53,\"hostPort\":53}]",
			 cases[i].port);
		if (parse_pod("web", "", ports, "", RUNNING("10.244.0.5"), &pod, err, sizeof(err)))
			fail_msg("case %zu: %s", i, err);
		assert_non_null(pod.host_port_skipped);
		assert_string_equal(pod.host_port_skipped, cases[i].skipped);
		assert_int_equal(pod.n_host_ports, 1);
		assert_int_equal(pod.host_ports[0].host_port, 53);
		assert_int_equal(pod.ipv4, ip("10.244.0.5"));
		k8s_pod_free(&pod);
	}
}

static void test_host_port_keys(void **state)
{
	static const char *const not_keys[] = {
	    "shop/web", "HostPort/TCP/0", "HostPort/TCP/65536", "HostPort/TCP/80x",
	    "HostPort/TCP/080", "HostPort/ICMP/80", "HostPort/tcp/80", "HostPort/TCP/",
	};
	char key[STORE_KEY_MAX];
	__u16 port;
	__u8 proto;

	(void)state;
	assert_int_equal(store_host_port_key(key, sizeof(key), 8080, IPPROTO_TCP), 0);
	assert_string_equal(key, "HostPort/TCP/8080");
	assert_true(lb_host_port_key(key, &port, &proto));
	assert_int_equal(port, 8080);
	assert_int_equal(proto, IPPROTO_TCP);
	assert_int_equal(store_host_port_key(key, sizeof(key), 65535, IPPROTO_UDP), 0);
	assert_true(lb_host_port_key(key, &port, &proto));
	assert_int_equal(port, 65535);
	assert_int_equal(proto, IPPROTO_UDP);
	for (size_t i = 0; i < sizeof(not_keys) / sizeof(not_keys[0]); i++)
		if (lb_host_port_key(not_keys[i], &port, &proto))
			fail_msg("\"%s\" taken for a host port key", not_keys[i]);
	assert_int_equal(store_host_port_key(key, 8, 8080, IPPROTO_TCP), -ENAMETOOLONG);
}

/* ---- frontends ---- */

static void test_frontends_on_node_addresses_and_loopback(void **state)
{
	struct fixture *fx = *state;

	put_node_self(fx, "192.168.1.10", "198.51.100.10");
	put_pod(fx, "web", "2026-01-01T00:00:00Z",
		"[{\"containerPort\":80,\"hostPort\":8080},"
		"{\"containerPort\":53,\"hostPort\":5353,\"protocol\":\"UDP\","
		"\"hostIP\":\"192.168.1.10\"},"
		"{\"containerPort\":54,\"hostPort\":5454,\"hostIP\":\"10.1.1.1\"},"
		"{\"containerPort\":55,\"hostPort\":5555,\"hostIP\":\"127.0.0.1\"}]",
		"", RUNNING("10.244.0.5"));
	assert_int_equal(sync_all(fx), 0);

	/* Wildcard: every node address and loopback. */
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 8080, IPPROTO_TCP),
			    "10.244.0.5:80");
	assert_string_equal(host_port_backend(fx, "198.51.100.10", 8080, IPPROTO_TCP),
			    "10.244.0.5:80");
	assert_string_equal(host_port_backend(fx, "127.0.0.1", 8080, IPPROTO_TCP),
			    "10.244.0.5:80");
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 8080, IPPROTO_UDP), "");
	/* hostIP: that address only. */
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 5353, IPPROTO_UDP),
			    "10.244.0.5:53");
	assert_string_equal(host_port_backend(fx, "198.51.100.10", 5353, IPPROTO_UDP), "");
	assert_string_equal(host_port_backend(fx, "127.0.0.1", 5353, IPPROTO_UDP), "");
	assert_string_equal(host_port_backend(fx, "127.0.0.1", 5555, IPPROTO_TCP),
			    "10.244.0.5:55");
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 5555, IPPROTO_TCP), "");
	/* A hostIP the node does not have: served nowhere. */
	assert_null(slot(fx, "10.1.1.1", 5454, IPPROTO_TCP, 0));
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 5454, IPPROTO_TCP), "");
	/* 3 + 1 + 1 frontends; backends are (address, port): :80, :53, :55. */
	assert_int_equal(lb_reconciler_frontends(&fx->lb), 5);
	assert_int_equal(lb_reconciler_backends(&fx->lb), 3);

	/* The node's address changes: the frontends move with it. */
	put_node_self(fx, "192.168.1.99", "198.51.100.10");
	assert_int_equal(sync_all(fx), 0);
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 8080, IPPROTO_TCP), "");
	assert_string_equal(host_port_backend(fx, "192.168.1.99", 8080, IPPROTO_TCP),
			    "10.244.0.5:80");
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 5353, IPPROTO_UDP), "");
	assert_int_equal(fx->maps.inconsistencies, 0);
}

static void test_conflict_oldest_pod_wins(void **state)
{
	struct fixture *fx = *state;
	struct lb_service_spec spec;
	const struct store_pod *owners[LB_HOST_PORT_FRONTENDS_MAX];

	put_node_self(fx, "192.168.1.10", "198.51.100.10");
	put_pod(fx, "a-new", "2026-02-01T00:00:00Z", HP_TCP, "", RUNNING("10.244.0.7"));
	put_pod(fx, "b-old", "2026-01-01T00:00:00Z", HP_TCP, "", RUNNING("10.244.0.8"));
	assert_int_equal(sync_all(fx), 0);
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 8080, IPPROTO_TCP),
			    "10.244.0.8:80");
	assert_string_equal(host_port_backend(fx, "127.0.0.1", 8080, IPPROTO_TCP),
			    "10.244.0.8:80");
	assert_int_equal(lb_desired_host_port(&fx->store, "HostPort/TCP/8080", &spec, owners), 0);
	assert_int_equal(spec.n_frontends, 3);
	for (size_t i = 0; i < spec.n_frontends; i++)
		assert_string_equal(owners[i]->key, "shop/b-old");
	lb_service_spec_free(&spec);

	/* The holder goes: the other pod takes the port. */
	assert_int_equal(store_delete_pod(&fx->store, "shop", "b-old"), 0);
	assert_int_equal(sync_all(fx), 0);
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 8080, IPPROTO_TCP),
			    "10.244.0.7:80");

	/* Same creation time: the lower name. A hostIP claim conflicts only
	 * on its address. */
	put_pod(fx, "0-same", "2026-02-01T00:00:00Z",
		"[{\"containerPort\":80,\"hostPort\":8080,\"hostIP\":\"198.51.100.10\"}]", "",
		RUNNING("10.244.0.9"));
	assert_int_equal(sync_all(fx), 0);
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 8080, IPPROTO_TCP),
			    "10.244.0.7:80");
	assert_string_equal(host_port_backend(fx, "198.51.100.10", 8080, IPPROTO_TCP),
			    "10.244.0.9:80");
	assert_string_equal(host_port_backend(fx, "127.0.0.1", 8080, IPPROTO_TCP),
			    "10.244.0.7:80");
	assert_int_equal(fx->maps.inconsistencies, 0);
}

/* A pod's host ports follow it: no address, no frontend; finished or
 * hostNetwork, none; a changed port moves; deleted, nothing is left. */
static void test_pod_lifecycle(void **state)
{
	struct fixture *fx = *state;

	put_node_self(fx, "192.168.1.10", "198.51.100.10");
	put_pod(fx, "web", "", HP_TCP, "", "{\"phase\":\"Pending\"}");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(lb_reconciler_frontends(&fx->lb), 0);

	put_pod(fx, "web", "", HP_TCP, "", RUNNING("10.244.0.5"));
	assert_false(!store_has_dirty(&fx->store));
	assert_int_equal(sync_all(fx), 0);
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 8080, IPPROTO_TCP),
			    "10.244.0.5:80");

	/* hostPort changed: the old port's frontends go. */
	put_pod(fx, "web", "", "[{\"containerPort\":80,\"hostPort\":8081}]", "",
		RUNNING("10.244.0.5"));
	assert_int_equal(sync_all(fx), 0);
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 8080, IPPROTO_TCP), "");
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 8081, IPPROTO_TCP),
			    "10.244.0.5:80");

	put_pod(fx, "web", "", "[{\"containerPort\":80,\"hostPort\":8081}]", "",
		"{\"phase\":\"Succeeded\",\"podIP\":\"10.244.0.5\"}");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(lb_reconciler_frontends(&fx->lb), 0);

	put_pod(fx, "host", "", HP_TCP, "\"hostNetwork\":true", RUNNING("192.168.1.10"));
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(lb_reconciler_frontends(&fx->lb), 0);

	put_pod(fx, "web", "", "[{\"containerPort\":80,\"hostPort\":8081}]", "",
		RUNNING("10.244.0.5"));
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(lb_reconciler_frontends(&fx->lb), 3);
	assert_int_equal(store_delete_pod(&fx->store, "shop", "web"), 0);
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(lb_reconciler_frontends(&fx->lb), 0);
	assert_int_equal(lb_reconciler_backends(&fx->lb), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_SERVICES), 0);
	assert_int_equal(fake_count(&fx->maps, LB_MAP_BACKENDS), 0);
	assert_int_equal(fx->maps.inconsistencies, 0);
}

/* Before the kubelet reports status.podIP, the CNI's endpoint of the pod
 * gives its address. */
static void test_address_from_cni_endpoint(void **state)
{
	struct fixture *fx = *state;
	struct local_endpoint le = { .ip = ip("10.244.0.42"), .name = "shop/web" };
	struct htable cni;

	put_node_self(fx, "192.168.1.10", "198.51.100.10");
	put_pod(fx, "web", "", HP_TCP, "", "{\"phase\":\"Pending\"}");
	assert_int_equal(sync_all(fx), 0);
	assert_int_equal(lb_reconciler_frontends(&fx->lb), 0);

	assert_int_equal(ht_init(&cni), 0);
	assert_int_equal(ht_put(&cni, &le.ip, sizeof(le.ip), &le, NULL), 0);
	fx->store.cni_endpoints = &cni;
	store_mark_host_ports_dirty(&fx->store);
	assert_int_equal(sync_all(fx), 0);
	assert_string_equal(host_port_backend(fx, "192.168.1.10", 8080, IPPROTO_TCP),
			    "10.244.0.42:80");
	fx->store.cni_endpoints = NULL;
	ht_destroy(&cni);
}

/* lb_desired_service hands host port keys to hostport.c, and only those. */
static void test_host_port_key_not_a_service(void **state)
{
	struct fixture *fx = *state;
	struct lb_service_spec spec;

	put_node_self(fx, "192.168.1.10", "198.51.100.10");
	put_pod(fx, "web", "", HP_TCP, "", RUNNING("10.244.0.5"));
	/* A Service key is no host port key, whatever pods hold. */
	assert_int_equal(lb_desired_service(&fx->store, "shop/web", false, &spec), 0);
	assert_int_equal(spec.n_frontends, 0);
	assert_int_equal(lb_desired_service(&fx->store, "HostPort/TCP/8080", false, &spec), 0);
	assert_int_equal(spec.n_frontends, 3);
	lb_service_spec_free(&spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pod_host_ports_parsed),
	    cmocka_unit_test(test_pod_malformed_host_ports_skipped),
	    cmocka_unit_test(test_host_port_keys),
	    cmocka_unit_test_setup_teardown(test_frontends_on_node_addresses_and_loopback, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_conflict_oldest_pod_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pod_lifecycle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_address_from_cni_endpoint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_port_key_not_a_service, setup, teardown),
	};

	return cmocka_run_group_tests_name("lb_host_port", tests, NULL, NULL);
}
