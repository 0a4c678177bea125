/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The health checks kube-proxy answers, so that what probes kube-proxy
 * (cloud load balancers, kubelet probes in manifests made for it) works
 * against the agent unchanged.
 *
 * Service health checks: for every served LoadBalancer Service with
 * externalTrafficPolicy: Local and a spec.healthCheckNodePort, GET any path on
 * that port (every address of the node) answers kube-proxy's JSON
 *
 *   {
 *   	"service": {
 *   		"namespace": "default",
 *   		"name": "web"
 *   	},
 *   	"localEndpoints": 1,
 *   	"serviceProxyHealthy": true
 *   }
 *
 * (tab-indented, no trailing newline) with 200 while this node has at least
 * one ready endpoint of the Service and the agent is ready, else 503: a node
 * whose endpoints are all terminating takes no new load-balancer traffic.
 * Header X-Load-Balancing-Endpoint-Weight carries the count, as kube-proxy's.
 * Listeners follow the Services live: added, moved and closed as the Services
 * and their EndpointSlices change; a port another process holds is logged and
 * tried again at the next change.
 *
 * Proxy health (--kube-proxy-replacement-healthz-bind-address, Cilium's flag;
 * "" = off): GET /healthz answers kube-proxy's
 *   {"lastUpdated": "<time>","currentTime": "<time>", "nodeEligible": true}
 * with 200 while the agent is ready (health/health.h), else 503 and the time
 * it was last ready. Times are Go's time.String() form in UTC
 * ("2026-12-04 19:50:01.123456789 +0000 UTC"). nodeEligible is always true:
 * the agent does not read the node-deletion taints kube-proxy reads for it.
 *
 * Answers come from the HTTP threads (http/httpd.h); the agent's thread
 * publishes counts and readiness under one mutex, once per loop turn.
 */
#ifndef AXON_KPR_HEALTH_H
#define AXON_KPR_HEALTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

struct store;
struct httpd;
struct kpr_hc;

struct kpr_health {
	pthread_mutex_t lock; /* guards the counts and the fields below */
	bool ready;
	struct timespec last_ready; /* wall clock of the last ready turn */
	struct httpd *proxy;	    /* /healthz; NULL when off */
	struct kpr_hc *services;    /* one listener per health-check port */
	uint64_t revision;	    /* store revision the listeners follow */
	bool synced_once;
};

/* Start the proxy healthz server on addr ("" = off). Returns 0 or -errno. */
int kpr_health_open(struct kpr_health *h, const char *addr);
/* Once per loop turn, from the agent's thread: publish readiness, and when
 * the store moved, open, move and close the service listeners. */
void kpr_health_sync(struct kpr_health *h, const struct store *s, bool ready);
void kpr_health_close(struct kpr_health *h);

/* The bodies, for the handlers and tests. */
int kpr_health_service_body(char *buf, size_t len, const char *ns, const char *name, int count,
			    bool healthy);
int kpr_health_proxy_body(char *buf, size_t len, const struct timespec *last,
			  const struct timespec *now);

/* For status: the health-check ports served, and the proxy healthz address. */
cJSON *kpr_health_status(struct kpr_health *h);

#endif /* AXON_KPR_HEALTH_H */
