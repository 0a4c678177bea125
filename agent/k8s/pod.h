/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * core/v1 Pod -> struct k8s_pod: what a local endpoint and its identity are
 * made of. The agent watches only the Pods bound to its node
 * (fieldSelector spec.nodeName=<node>), so there are few of these.
 *
 * The contract of objects.h holds: k8s_pod_from_json() fills the whole
 * struct and returns 0, or returns -EINVAL (or -ENOMEM) with a one-line
 * reason naming the field, leaving nothing allocated.
 */
#ifndef AXON_K8S_POD_H
#define AXON_K8S_POD_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <cjson/cJSON.h>

#include "k8s/objects.h"
#include "policy/arena.h"
#include "policy/labels.h"

/* A Pod's containers' ports that have a name: what a CiliumEndpointSlice's
 * named-ports carry (policies that name a port resolve it from there). */
#define K8S_POD_NAMED_PORTS_MAX 1024

/* A container port with a hostPort: the node serves (hostIP or each of its
 * addresses, hostPort, protocol) by forwarding to (pod IP, containerPort). */
struct k8s_host_port {
	__be32 host_ip;		/* hostIP; 0 when unset or 0.0.0.0: every node address */
	__u16 host_port;
	__u16 container_port;
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
};

struct k8s_pod {
	struct policy_arena arena;
	const char *namespace;
	const char *name;
	const char *node_name;		    /* spec.nodeName, "" when unscheduled */
	const char *service_account;	    /* spec.serviceAccountName, "default" when unset */
	const char *phase;		    /* status.phase, "" when unset */
	struct label_set labels;	    /* metadata.labels, source k8s, sorted */
	__be32 ipv4;			    /* first IPv4 of status.podIPs (or podIP), 0 if none */
	bool host_network;		    /* spec.hostNetwork */
	bool deleting;			    /* metadata.deletionTimestamp is set */
	struct k8s_named_port *named_ports; /* sorted by name, names unique */
	size_t n_named_ports;
	const char *created;		    /* metadata.creationTimestamp, "" when unset */
	/* Container ports with a hostPort, in the order the spec lists them. One
	 * that cannot be served (hostPort or hostIP malformed, an IPv6 hostIP,
	 * SCTP) is left out, and the first such is described in host_port_skipped
	 * (NULL: none) for the watcher to log: a bad hostPort must not cost the
	 * pod its endpoint. */
	struct k8s_host_port *host_ports;
	size_t n_host_ports;
	const char *host_port_skipped;
};

int k8s_pod_from_json(const cJSON *obj, struct k8s_pod *pod, char *err, size_t errlen);
void k8s_pod_free(struct k8s_pod *pod);

/* The pod's containers are done (phase Succeeded or Failed): its address may
 * be given to another pod, so it is no endpoint any more. */
bool k8s_pod_finished(const struct k8s_pod *pod);

#endif /* AXON_K8S_POD_H */
