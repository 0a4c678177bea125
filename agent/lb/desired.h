/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a Service should look like in the load-balancing maps, derived from
 * the store: one frontend per (service address, port, protocol), each with
 * the backends the datapath may pick for new connections.
 *
 * Backend choice follows Kubernetes: endpoints whose `ready` condition is true;
 * when a port has none, endpoints that are serving and terminating (graceful
 * termination), so a rolling restart never turns a service into a black hole.
 * The backend port is the EndpointSlice port with the Service port's name and
 * protocol. Duplicate addresses across slices (seen while slices are being
 * rebalanced) are merged.
 *
 * Frontends: every ClusterIP, externalIP and LoadBalancer ingress IP; for
 * NodePort and LoadBalancer services also (node address, nodePort) on each
 * of this node's addresses (store->self_ips) with SVC_FLAG_NODE_PORT.
 * Traffic policies pick backends by the EndpointSlice endpoint's nodeName:
 * externalTrafficPolicy: Local gives the NodePort, externalIP and
 * LoadBalancer frontends only this node's backends (SVC_FLAG_EXT_LOCAL; none
 * means count 0, and the datapath drops with DROP_NO_LOCAL_BACKEND);
 * internalTrafficPolicy: Local does the same for the ClusterIP frontends
 * (SVC_FLAG_INT_LOCAL). Local means local for outside clients only: an
 * external frontend with externalTrafficPolicy: Local comes twice, scope
 * LB_SCOPE_EXT (this node's backends) and LB_SCOPE_INT (every backend, no
 * EXT_LOCAL flag, no source ranges) for the node's own pods and host, as
 * kube-proxy short-circuits them to the cluster-wide endpoints. Every other
 * frontend has scope LB_SCOPE_EXT only.
 *
 * Topology aware routing (zone hints) narrows the ready backends of Cluster
 * traffic to this node's zone, by kube-proxy's rule (lb/topology.h).
 *
 * Backends that are terminating but still serving and not picked for new
 * connections are listed in `kept`: they stay in the backends map (state
 * terminating) so existing flows keep reaching them until they stop serving.
 *
 * publishNotReadyAddresses makes every endpoint count as ready.
 *
 * loadBalancerSourceRanges (IPv4) of a LoadBalancer Service go with its
 * LoadBalancer and NodePort frontends (SVC_FLAG2_SOURCE_RANGE, src_ranges);
 * none listed: no flag, every client.
 *
 * Maglev (the service annotation service.cilium.io/lb-algorithm, else the
 * agent's --bpf-lb-algorithm) sets SVC_FLAG2_MAGLEV on every frontend.
 */
#ifndef AXON_LB_DESIRED_H
#define AXON_LB_DESIRED_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "store/store.h"

struct lb_backend_spec {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 state;	/* BACKEND_STATE_* */
};

struct lb_frontend_spec {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 scope;	/* LB_SCOPE_* */
	__u8 flags;	/* SVC_FLAG_* */
	__u8 flags2;	/* SVC_FLAG2_* */
	__u32 affinity_timeout;
	struct lb_backend_spec *backends;	/* picked for new connections (slots) */
	size_t n_backends;
	struct lb_backend_spec *kept;		/* terminating, serving, not in slots */
	size_t n_kept;
	/* loadBalancerSourceRanges (with SVC_FLAG2_SOURCE_RANGE): borrowed from
	 * the store's Service, valid while the store is unchanged. */
	const struct ipv4_prefix *src_ranges;
	size_t n_src_ranges;
};

struct lb_service_spec {
	struct lb_frontend_spec *frontends;
	size_t n_frontends;
};

/* Why Axon does not serve svc (a short phrase for people and the API), or NULL
 * when it does: labelled service.kubernetes.io/service-proxy-name, ExternalName,
 * headless, IPv6-only, no ports, no TCP or UDP port. */
const char *lb_service_unserved(const struct k8s_service *svc);

/* Fill spec for the service with this key; a service that is not in the store
 * or that Axon does not serve (lb_service_unserved) gets no frontends. A host
 * port key (store_host_port_key) gets the pods' host ports (hostport.h).
 * Returns 0 or -ENOMEM. */
int lb_desired_service(const struct store *s, const char *svc_key, bool maglev_default,
		       struct lb_service_spec *spec);
void lb_service_spec_free(struct lb_service_spec *spec);

#endif /* AXON_LB_DESIRED_H */
