/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Topology aware routing (zone hints), the rule of kube-proxy's
 * pkg/proxy/topology.go: a Service that asks for it (k8s_service.topology_aware),
 * on a node with a topology.kubernetes.io/zone label, uses only the ready
 * endpoints whose hints name that zone, provided EVERY ready endpoint of the
 * port has a zone hint and at least one names this node's zone. Otherwise
 * (an endpoint without hints, no endpoint for this zone, no zone label) every
 * ready endpoint is used, so a zone without endpoints is still served.
 *
 * Only traffic under the Cluster policy is narrowed: a Local policy already
 * picks this node's endpoints, and the caller does not call this then. The
 * serving-terminating fallback is not narrowed either (kube-proxy's neither).
 */
#ifndef AXON_LB_TOPOLOGY_H
#define AXON_LB_TOPOLOGY_H

#include "lb/desired.h"

/* Narrow fe's backends (every ready endpoint of port sp of svc, as picked by
 * desired.c) to this node's zone when the rule above says so. Never
 * allocates; the kept backends keep their order. */
void lb_topology_filter(const struct store *s, const struct store_slice_set *set,
			const struct k8s_service *svc, const struct k8s_service_port *sp,
			struct lb_frontend_spec *fe);

/* Whether the rule applies to port sp (what lb_topology_filter decides). */
bool lb_topology_applies(const struct store *s, const struct store_slice_set *set,
			 const struct k8s_service *svc, const struct k8s_service_port *sp);

#endif /* AXON_LB_TOPOLOGY_H */
