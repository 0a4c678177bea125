/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HostPort: a container port with spec.containers[].ports[].hostPort makes
 * this node forward (node address, hostPort, protocol) to (pod IP,
 * containerPort), as the CNI portmap plugin does with iptables and Cilium's
 * kube-proxy replacement with services of type HostPort.
 *
 * Axon realizes the pods' host ports as pseudo-services, one per (hostPort,
 * protocol), keyed store_host_port_key() ("HostPort/TCP/8080"), through the
 * same desired/realized/reconcile path as Services (lb_desired_service hands
 * such keys here). Each has a frontend per address the port is served on,
 * with SVC_FLAG_HOST_PORT and the pod as its single backend:
 *   - each of this node's addresses (store->self_ips, the NodePort list):
 *     the native devices' tc path serves clients outside the node, the
 *     socket LB pods and the host;
 *   - 127.0.0.1, for the socket LB: kube-proxy with portmap serves host
 *     ports on localhost too.
 * A hostIP (other than 0.0.0.0) limits the port to that one address, if it
 * is one of those; a hostIP the node does not have is served nowhere.
 *
 * Candidates are this node's pods (the Pod watch) that have an IPv4 address
 * (status.podIP, else the CNI's endpoint of that name), are not
 * hostNetwork (those bind the host's port themselves) and have not finished.
 * Two pods wanting the same address, hostPort and protocol: the one created
 * first wins (then the lower namespace/name); lb_host_port_log_pod() says so.
 */
#ifndef AXON_LB_HOSTPORT_H
#define AXON_LB_HOSTPORT_H

#include <stdbool.h>
#include <linux/types.h>

#include "lb/desired.h"
#include "store/store.h"

/* At most one frontend per node address and one on 127.0.0.1. */
#define LB_HOST_PORT_FRONTENDS_MAX (STORE_SELF_IPS_MAX + 1)

/* Is key a host port key (store_host_port_key)? Fills port and proto. */
bool lb_host_port_key(const char *key, __u16 *port, __u8 *proto);

/* Fill spec with the frontends of host port key (lb_desired_service's
 * contract). owners (optional, LB_HOST_PORT_FRONTENDS_MAX entries) receives
 * the pod behind each frontend. Returns 0 or -ENOMEM. */
int lb_desired_host_port(const struct store *s, const char *key, struct lb_service_spec *spec,
			 const struct store_pod **owners);

/* Log what of pod's host ports is not served: the one the parser left out,
 * and each (address, port) another pod holds. */
void lb_host_port_log_pod(const struct store *s, const struct k8s_pod *pod);

#endif /* AXON_LB_HOSTPORT_H */
