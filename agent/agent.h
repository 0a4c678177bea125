/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent as a whole: configuration and the modules it wires together.
 *
 *   apiserver --(k8s informers)--> watch handlers --> store (desired state)
 *   store --(lb reconciler)--> BPF maps <-- BPF programs (loader)
 *   agentctl --(api socket)--> status
 */
#ifndef AXON_AGENT_H
#define AXON_AGENT_H

#include <stdbool.h>
#include <time.h>
#include <linux/types.h>

#include "api/server.h"
#include "cni/cni.h"
#include "config.h"
#include "dpsync.h"
#include "datapath/loader.h"
#include "health/health.h"
#include "identity/endpoints.h"
#include "k8s/client.h"
#include "kpr_health/kpr_health.h"
#include "lb/bpf_ops.h"
#include "lb/reconcile.h"
#include "lb/sock_term.h"
#include "metrics/map_fill.h"
#include "metrics/server.h"
#include "resync.h"
#include "store/store.h"

#define AGENT_SKIPPED_MAX 32

/* A malformed object the agent refused, kept for status. */
struct skipped_object {
	char kind[32];
	char name[STORE_KEY_MAX];
	char error[256];
};

struct agent_watch {
	struct agent *agent;
	struct k8s_informer *informer;
	const char *kind;		/* "Service" */
	bool synced;
};

struct agent {
	struct agent_config cfg;
	struct store store;
	struct lb_reconciler lb;
	struct lb_sock_term sock_term;	/* flows to deleted backends (lb/sock_term.h) */
	struct datapath dp;
	struct k8s_client *k8s;
	struct agent_watch services, slices, nodes, ces;
	/* Network policy: the objects and the identities they select (watchers.c). */
	struct agent_watch netpols, cnps, ccnps, identities, namespaces;
	/* This node's Pods: endpoints, identities, the CES it publishes (identity/endpoints.h). */
	struct agent_watch pods;
	struct lep_mgr leps;
	bool leps_ready;		/* leps initialized */
	bool pruned;			/* stale state removed after first full sync */
	/* The LB maps held nothing at start: services may be realized before
	 * every list is in (watchers.c), as they cannot take anything away. */
	bool lb_fresh;
	uint64_t early_rev;		/* store revision the early pass last saw */
	struct agent_dp dpx;		/* the tc datapath and its reconcilers (dpsync.h) */
	struct agent_resync resync;	/* the periodic full pass (resync.h) */
	struct api_server api;
	struct map_fill fill;		/* size and fill of every map (status, metrics) */
	struct metrics_server *metrics;	/* --prometheus-serve-addr; NULL: off */
	struct agent_health health;	/* --agent-health-port, the not-ready taint */
	struct agent_cni cni;		/* the axon-cni plugin's endpoints and IPAM (cni/cni.h) */
	/* healthCheckNodePorts, --kube-proxy-replacement-healthz-bind-address */
	struct kpr_health kpr;
	time_t started;
	/* CLOCK_MONOTONIC ns of the oldest policy, identity or namespace event
	 * not yet enforced (0: none): axon_policy_time_to_enforce_seconds. */
	uint64_t pol_event_ns;
	unsigned long skipped_total;
	struct skipped_object skipped[AGENT_SKIPPED_MAX];	/* ring of the latest */
};

/* The Service annotation service.cilium.io/lb-algorithm ("maglev", "random"). */
#define SERVICE_LB_ALGORITHM_ANNOTATION "service.cilium.io/lb-algorithm"
enum store_lb_algorithm agent_service_lb_algorithm(const cJSON *obj);

/* The watch's resource is not installed (its last request got a 404). */
bool agent_watch_not_installed(const struct agent_watch *w);

/* Every watch, in the order status lists them: ws has room for AGENT_WATCHES. */
#define AGENT_WATCHES 10
size_t agent_watches(struct agent *a, struct agent_watch **ws);

/* agent/k8s_setup.c: the apiserver client from the flags. */
int agent_k8s_client_config(const struct agent_config *cfg, struct k8s_client_config *kc,
			    char *err, size_t errlen);
/* The same with the service account's files under sa_dir (NULL: the pod's). */
int agent_k8s_client_config_sa(const struct agent_config *cfg, const char *sa_dir,
			       struct k8s_client_config *kc, char *err, size_t errlen);
/* a->k8s from the flags (nothing is requested yet); logs why not. */
int agent_k8s_client_create(struct agent *a);
/* The default/kubernetes Service's "scheme://clusterIP:port" (scheme as in
 * scheme_of, a configured URL); -ENOENT for any other or an unusable Service. */
int agent_k8s_service_url(const struct k8s_service *svc, const char *scheme_of, char *url,
			  size_t len);
/* A Service was decoded: with --k8s-prefer-service-address, default/kubernetes
 * becomes the preferred apiserver. */
void agent_k8s_service_seen(struct agent *a, const struct k8s_service *svc);
/* Add "servers": [URL, ...] to the status's kubernetes object. */
void agent_status_servers(cJSON *k, const struct k8s_client *c);

/* Register the watches: Services, EndpointSlices, Nodes, CiliumEndpointSlices;
 * NetworkPolicies, CiliumNetworkPolicies, CiliumClusterwideNetworkPolicies,
 * CiliumIdentities, Namespaces; this node's Pods. */
int agent_watches_add(struct agent *a);
/* After each batch of events: realize what changed; prune once synced.
 * Returns the ms until the next retry is due (or -1 for none). */
int agent_reconcile(struct agent *a);

/* CLOCK_MONOTONIC in ns. */
uint64_t agent_mono_ns(void);
/* A policy, identity or namespace event delivered by w: its time kept unless
 * an older one is still waiting to be enforced. Objects of a LIST (the
 * initial sync, a relist) are not counted: w is not synced while it delivers
 * them. */
void agent_policy_event(struct agent_watch *w);

/* Hand the metrics thread a copy of the agent's state (agent_metrics.c). */
void agent_metrics_publish(struct agent *a);

/* The API's command handler (api/commands.c: status, version, services, ...). */
cJSON *agent_api_handle(void *ctx, const char *cmd, const cJSON *req);
/* The answer to `agentctl status` (status/status.c). */
cJSON *agent_status(struct agent *a);
/* Its "policy" section: policies by kind, identities, what is not enforced
 * (status/policy.c). */
cJSON *agent_policy_status(struct agent *a);

#endif /* AXON_AGENT_H */
