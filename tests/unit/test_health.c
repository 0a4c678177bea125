// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Health (agent/health/): the stall detector at its edge, the endpoint over
 * loopback (a snapshot published as if by a loop that stopped 31 s ago turns
 * /livez and /healthz to 503; a port in use is refused), readiness from the
 * agent's state in the order an operator reads it, and the JSON patch that
 * removes the not-ready taint. The taint's requests against an apiserver, the
 * port inside a node's namespace and a really stuck loop are in
 * tests/e2e/test_health.py.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "agent.h"
#include "health/health.h"
#include "log.h"

static void test_stall_detector(void **state)
{
	char body[128];

	(void)state;
	assert_int_equal(health_livez(1000, 1000 + HEALTH_STALL_MS, body, sizeof(body)), 200);
	assert_string_equal(body, "ok");
	assert_int_equal(health_livez(1000, 1001 + HEALTH_STALL_MS, body, sizeof(body)), 503);
	assert_string_equal(body, "event loop stalled: no turn for 30.0s");
	assert_int_equal(health_livez(0, 95432, body, sizeof(body)), 503);
	assert_string_equal(body, "event loop stalled: no turn for 95.4s");
	/* A turn stamped after now (read in the other order) is no stall. */
	assert_int_equal(health_livez(5000, 4000, body, sizeof(body)), 200);

	assert_int_equal(health_healthz(true, "ok", 1000, 2000, body, sizeof(body)), 200);
	assert_string_equal(body, "ok");
	assert_int_equal(health_healthz(false, "waiting for initial sync: nodes", 1000, 2000, body,
					sizeof(body)),
			 503);
	assert_string_equal(body, "waiting for initial sync: nodes");
	/* What a stuck loop last said is stale: not ready either. */
	assert_int_equal(health_healthz(true, "ok", 1000, 40000, body, sizeof(body)), 503);
	assert_string_equal(body, "event loop stalled: no turn for 39.0s");
}

/* GET or another method on 127.0.0.1:port; returns the status, body in body. */
static int request(int port, const char *method, const char *path, char *body, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char req[256], resp[2048], *p;
	size_t n = 0;
	ssize_t r;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), code = 0;

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", method, path);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (n < sizeof(resp) - 1 && (r = read(fd, resp + n, sizeof(resp) - 1 - n)) > 0)
		n += r;
	resp[n] = '\0';
	close(fd);
	sscanf(resp, "HTTP/1.1 %d", &code);
	p = strstr(resp, "\r\n\r\n");
	snprintf(body, len, "%s", p ? p + 4 : "");
	return code;
}

static void test_endpoint(void **state)
{
	struct health_server *s, *again;
	char body[256], addr[32];
	int port;

	(void)state;
	assert_int_equal(health_server_start(&s, "127.0.0.1:0"), 0);
	port = health_server_port(s);
	assert_true(port > 0);
	/* Nothing published yet. */
	assert_int_equal(request(port, "GET", "/healthz", body, sizeof(body)), 503);
	assert_string_equal(body, "starting");
	assert_int_equal(request(port, "GET", "/livez", body, sizeof(body)), 200);

	health_server_publish(s, false, "datapath not programmed: waiting for Node n1",
			      health_now_ms());
	assert_int_equal(request(port, "GET", "/healthz?verbose", body, sizeof(body)), 503);
	assert_string_equal(body, "datapath not programmed: waiting for Node n1");
	health_server_publish(s, true, "ok", health_now_ms());
	assert_int_equal(request(port, "GET", "/healthz", body, sizeof(body)), 200);
	assert_string_equal(body, "ok");
	assert_int_equal(request(port, "HEAD", "/healthz", body, sizeof(body)), 200);
	assert_string_equal(body, "");

	/* The loop's last turn was 31 s ago. */
	health_server_publish(s, true, "ok", health_now_ms() - 31000);
	assert_int_equal(request(port, "GET", "/livez", body, sizeof(body)), 503);
	assert_non_null(strstr(body, "event loop stalled: no turn for 31."));
	assert_int_equal(request(port, "GET", "/healthz", body, sizeof(body)), 503);

	assert_int_equal(request(port, "GET", "/metrics", body, sizeof(body)), 404);
	assert_string_equal(body, "health checks are at /healthz and /livez");
	assert_int_equal(request(port, "POST", "/healthz", body, sizeof(body)), 405);

	/* The port is taken: a second agent's start fails on it. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(health_server_start(&again, addr), -EADDRINUSE);
	assert_null(again);
	health_server_stop(s);
	health_server_stop(NULL);
}

/* ---- readiness ---- */

static struct agent ag;

static const struct k8s_informer_ops no_ops;

static void agent_setup(struct k8s_client **c)
{
	char *url = "http://127.0.0.1:1", err[256];
	struct k8s_client_config cfg = {.servers = &url, .n_servers = 1};
	const char *names[] = {"services", "endpointslices", "nodes", "ciliumendpointslices",
			       "networkpolicies", "ciliumnetworkpolicies",
			       "ciliumclusterwidenetworkpolicies", "ciliumidentities", "namespaces",
			       "pods"};
	struct agent_watch *ws[AGENT_WATCHES];
	size_t n;

	memset(&ag, 0, sizeof(ag));
	*c = k8s_client_new(&cfg, err, sizeof(err));
	assert_non_null(*c);
	n = agent_watches(&ag, ws);
	assert_int_equal(n, 10);
	for (size_t i = 0; i < n; i++) {
		ws[i]->agent = &ag;
		ws[i]->informer = k8s_informer_add(*c, names[i], "/x", NULL, &no_ops, NULL);
		assert_non_null(ws[i]->informer);
	}
	ag.cfg.bpf_lb_sock = true;
	snprintf(ag.dpx.state, sizeof(ag.dpx.state),
		 "waiting for the Node and "
		 "CiliumEndpointSlice watches");
}

static void test_readiness(void **state)
{
	struct k8s_client *c;
	char reason[HEALTH_REASON_MAX];

	(void)state;
	agent_setup(&c);
	/* The policy watches hold readiness too, until their lists are in. */
	ag.services.synced = ag.slices.synced = ag.nodes.synced = ag.ces.synced = true;
	ag.pods.synced = true;
	ag.netpols.synced = ag.ccnps.synced = ag.namespaces.synced = true;
	assert_false(agent_ready(&ag, reason, sizeof(reason)));
	assert_string_equal(reason, "waiting for initial sync: ciliumnetworkpolicies, "
				    "ciliumidentities");
	ag.cnps.synced = ag.identities.synced = true;
	ag.slices.synced = ag.nodes.synced = ag.ces.synced = false;
	assert_false(agent_ready(&ag, reason, sizeof(reason)));
	assert_string_equal(reason, "waiting for initial sync: endpointslices, nodes, "
				    "ciliumendpointslices");
	ag.slices.synced = ag.nodes.synced = true;
	assert_false(agent_ready(&ag, reason, sizeof(reason)));
	assert_string_equal(reason, "waiting for initial sync: ciliumendpointslices");
	ag.ces.synced = true;
	assert_false(agent_ready(&ag, reason, sizeof(reason)));
	assert_string_equal(reason, "datapath not programmed: waiting for the Node and "
				    "CiliumEndpointSlice watches");
	snprintf(ag.dpx.state, sizeof(ag.dpx.state), "ready");
	assert_false(agent_ready(&ag, reason, sizeof(reason)));
	assert_string_equal(reason, "socket LB not attached (--bpf-lb-sock=true)");
	ag.dp.n_attach = 5;
	assert_false(agent_ready(&ag, reason, sizeof(reason)));
	assert_string_equal(reason, "load-balancing maps not realized yet");
	ag.pruned = true;
	ag.lb.failures.count = 2;
	assert_false(agent_ready(&ag, reason, sizeof(reason)));
	assert_string_equal(reason, "load-balancing maps: 2 service(s) not realized");
	ag.lb.failures.count = 0;
	assert_true(agent_ready(&ag, reason, sizeof(reason)));
	assert_string_equal(reason, "ok");
	/* --bpf-lb-sock=false: hooks left attached are not what was asked. */
	ag.cfg.bpf_lb_sock = false;
	assert_false(agent_ready(&ag, reason, sizeof(reason)));
	assert_string_equal(reason, "socket LB still attached (--bpf-lb-sock=false)");
	k8s_client_free(c);
}

/* ---- the taint's patch ---- */

static char *patch_for(const char *node_json, const char *key, unsigned int *removed, int *ret)
{
	cJSON *node = cJSON_Parse(node_json);
	char *patch = NULL;

	assert_non_null(node);
	*ret = node_taint_patch(node, key, &patch, removed);
	cJSON_Delete(node);
	return patch;
}

#define KEY "node.axon.io/agent-not-ready"

static void test_taint_patch(void **state)
{
	unsigned int removed;
	char *p;
	int ret;

	(void)state;
	/* Every effect of the key goes; the rest stay, in their order. */
	p = patch_for("{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"42\"},\"spec\":{"
		      "\"taints\":[{\"key\":\"" KEY "\",\"effect\":\"NoSchedule\"},"
		      "{\"key\":\"a\",\"value\":\"1\",\"effect\":\"NoExecute\"},"
		      "{\"key\":\"" KEY "\",\"effect\":\"NoExecute\"},"
		      "{\"key\":\"b\",\"effect\":\"NoSchedule\"}]}}",
		      KEY, &removed, &ret);
	assert_int_equal(ret, 0);
	assert_int_equal(removed, 2);
	assert_string_equal(
	    p, "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"42\"},"
	       "{\"op\":\"test\",\"path\":\"/spec/taints\",\"value\":["
	       "{\"key\":\"" KEY "\",\"effect\":\"NoSchedule\"},"
	       "{\"key\":\"a\",\"value\":\"1\",\"effect\":\"NoExecute\"},"
	       "{\"key\":\"" KEY "\",\"effect\":\"NoExecute\"},"
	       "{\"key\":\"b\",\"effect\":\"NoSchedule\"}]},"
	       "{\"op\":\"replace\",\"path\":\"/spec/taints\",\"value\":["
	       "{\"key\":\"a\",\"value\":\"1\",\"effect\":\"NoExecute\"},"
	       "{\"key\":\"b\",\"effect\":\"NoSchedule\"}]}]");
	free(p);

	/* The only taint: the field goes. */
	p = patch_for("{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":["
		      "{\"key\":\"" KEY "\",\"effect\":\"NoSchedule\"}]}}",
		      KEY, &removed, &ret);
	assert_int_equal(ret, 0);
	assert_int_equal(removed, 1);
	assert_string_equal(
	    p, "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"7\"},"
	       "{\"op\":\"test\",\"path\":\"/spec/taints\",\"value\":["
	       "{\"key\":\"" KEY "\",\"effect\":\"NoSchedule\"}]},"
	       "{\"op\":\"remove\",\"path\":\"/spec/taints\"}]");
	free(p);

	/* Nothing to remove: nothing to write. */
	assert_null(patch_for("{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{}}", KEY,
			      &removed, &ret));
	assert_int_equal(ret, -ENOENT);
	assert_null(patch_for("{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":"
			      "[{\"key\":\"" KEY "x\",\"effect\":\"NoSchedule\"}]}}",
			      KEY, &removed, &ret));
	assert_int_equal(ret, -ENOENT);
	assert_int_equal(removed, 0);
	/* Not a Node as the apiserver writes one. */
	assert_null(patch_for("{\"metadata\":{},\"spec\":{\"taints\":[]}}", KEY, &removed, &ret));
	assert_int_equal(ret, -EINVAL);
	assert_null(patch_for("{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":"
			      "{\"key\":\"" KEY "\"}}}",
			      KEY, &removed, &ret));
	assert_int_equal(ret, -EINVAL);
	assert_null(patch_for("{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":"
			      "[\"" KEY "\"]}}",
			      KEY, &removed, &ret));
	assert_int_equal(ret, -EINVAL);
}

static void test_taint_states(void **state)
{
	char *url = "http://127.0.0.1:1", err[256];
	struct k8s_client_config cfg = {.servers = &url, .n_servers = 1};
	struct k8s_client *c = k8s_client_new(&cfg, err, sizeof(err));
	struct node_taint t;

	(void)state;
	assert_non_null(c);
	node_taint_init(&t, "n1", "");
	assert_string_equal(node_taint_state_name(&t), "off");
	node_taint_run(&t, c, true, 0);
	assert_null(t.call);
	/* Not ready: nothing is sent; ready: the Node is read, once. */
	node_taint_init(&t, "n1", KEY);
	assert_string_equal(node_taint_state_name(&t), "waiting");
	node_taint_run(&t, c, false, 0);
	assert_null(t.call);
	assert_string_equal(node_taint_state_name(&t), "waiting");
	node_taint_run(&t, c, true, 0);
	assert_non_null(t.call);
	assert_int_equal(t.state, NODE_TAINT_READING);
	assert_string_equal(node_taint_state_name(&t), "removing");
	node_taint_run(&t, c, true, 0);
	assert_int_equal(t.reads, 1);
	node_taint_stop(&t);
	assert_null(t.call);
	k8s_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stall_detector), cmocka_unit_test(test_endpoint),
	    cmocka_unit_test(test_readiness),	   cmocka_unit_test(test_taint_patch),
	    cmocka_unit_test(test_taint_states),
	};

	if (!getenv("AXON_TEST_VERBOSE"))
		log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
