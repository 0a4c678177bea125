/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kubernetes objects as the agent needs them, decoded from the apiserver's
 * JSON (cJSON trees) into plain C structs.
 *
 * Contract: a *_from_json() either fills the whole struct and returns 0, or
 * returns -EINVAL (or -ENOMEM), writes a one-line reason naming the offending
 * field into err (e.g. "spec.ports[1].port: 70000 is not in 1..65535") and
 * leaves nothing allocated. Input is untrusted: wrong types, missing fields,
 * bad addresses and out-of-range numbers are errors, never crashes. Fields the
 * agent does not use are ignored. IPv6 addresses are accepted and skipped
 * (Axon's datapath is IPv4 for now). Strings longer than the API allows are errors.
 * Every struct filled by a *_from_json() is released by the matching *_free(),
 * which is safe on a zeroed struct.
 *
 * Decoded objects are what the store holds for every object in the cluster,
 * so they keep only what a consumer reads, and strings sized to content in
 * the object's own pool (strs): never NULL, "" when absent.
 */
#ifndef AXON_K8S_OBJECTS_H
#define AXON_K8S_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <cjson/cJSON.h>

#include "k8s/strpool.h"

#define K8S_NAME_MAX	254	/* DNS subdomain (253) + NUL */
#define K8S_NS_MAX	64	/* DNS label (63) + NUL */
#define K8S_RV_MAX	32
#define K8S_UID_MAX	64
#define K8S_PORT_NAME_MAX 64

/* metadata as the watch layer reads it (k8s_meta_from_json), on the stack. */
struct k8s_meta {
	char namespace[K8S_NS_MAX];	/* "" for cluster-scoped objects */
	char name[K8S_NAME_MAX];
	char uid[K8S_UID_MAX];
	char resource_version[K8S_RV_MAX];
};

/* What a decoded object keeps of its metadata: the parts of its key, in the
 * object's pool (the resourceVersion is the informer's business). */
struct k8s_obj_meta {
	const char *namespace;		/* "" for cluster-scoped objects */
	const char *name;
};

struct ipv4_prefix {
	__be32 addr;
	__u8 len;
};

/* ---- core/v1 Service ---- */

enum k8s_service_type {
	K8S_SVC_CLUSTER_IP = 0,
	K8S_SVC_NODE_PORT,
	K8S_SVC_LOAD_BALANCER,
	K8S_SVC_EXTERNAL_NAME,
};

struct k8s_service_port {
	char name[K8S_PORT_NAME_MAX];	/* "" when unnamed */
	__u8 proto;			/* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	__u16 port;			/* host order, 1..65535 */
	__u16 node_port;		/* host order, 0 when none */
};

struct k8s_service {
	struct k8s_obj_meta meta;
	struct k8s_strpool strs;
	enum k8s_service_type type;
	bool headless;			/* clusterIP "None" */
	/* Labelled service.kubernetes.io/service-proxy-name (any value): another
	 * proxy serves it; kube-proxy's Service informer filters it out. */
	bool proxy_name_label;
	bool publish_not_ready;		/* spec.publishNotReadyAddresses */
	bool ipv6_only;			/* clusterIPs set, none of them IPv4 */
	__be32 *cluster_ips;		/* spec.clusterIPs (or clusterIP), IPv4 only */
	size_t n_cluster_ips;
	__be32 *external_ips;		/* spec.externalIPs */
	size_t n_external_ips;
	__be32 *lb_ips;			/* status.loadBalancer.ingress[].ip */
	size_t n_lb_ips;
	struct k8s_service_port *ports;
	size_t n_ports;
	bool affinity_client_ip;	/* sessionAffinity: ClientIP */
	__u32 affinity_timeout;		/* seconds; 10800 when ClientIP and unset */
	bool ext_traffic_local;		/* externalTrafficPolicy: Local */
	bool int_traffic_local;		/* internalTrafficPolicy: Local */
	__u16 health_check_node_port;	/* spec.healthCheckNodePort, 0 when none */
	struct ipv4_prefix *src_ranges;	/* spec.loadBalancerSourceRanges, IPv4 only */
	size_t n_src_ranges;
	/* Topology aware routing asked for: spec.trafficDistribution PreferClose,
	 * or annotation service.kubernetes.io/topology-mode (else the 1.26
	 * service.kubernetes.io/topology-aware-hints) set and not "disabled". */
	bool topology_aware;
};

int k8s_service_from_json(const cJSON *obj, struct k8s_service *svc, char *err, size_t errlen);
void k8s_service_free(struct k8s_service *svc);

/* ---- discovery.k8s.io/v1 EndpointSlice ---- */

enum k8s_address_type {
	K8S_ADDR_IPV4 = 0,
	K8S_ADDR_IPV6,
	K8S_ADDR_FQDN,
};

struct k8s_eps_port {
	char name[K8S_PORT_NAME_MAX];
	__u8 proto;
	__u16 port;			/* host order, 1..65535 */
};

/* 24 bytes: there are 100,000 of these in a 10,000-service cluster. The zone
 * is not kept (nothing reads it); the topology hints are a bitmask over the
 * slice's hint_zones. */
struct k8s_eps_endpoint {
	const __be32 *addrs;		/* IPv4 only; points into the slice's addrs */
	__u8 n_addrs;			/* at most 100 (the API's limit) */
	/* Conditions with the API's defaults applied: ready unset = true,
	 * serving unset = ready, terminating unset = false. */
	bool ready;
	bool serving;
	bool terminating;
	/* hints.forZones: bit i set names the slice's hint_zones[i]; 0 when the
	 * endpoint has no zone hint (or the slice's hints were malformed). */
	__u32 hint_zones;
	/* nodeName, "" if none; endpoints on one node share one copy. */
	const char *node_name;
};

/* Distinct zones one slice's hints may name; past that its hints are ignored. */
#define K8S_EPS_HINT_ZONES_MAX 32

struct k8s_endpointslice {
	struct k8s_obj_meta meta;
	struct k8s_strpool strs;
	const char *service_name;	/* label kubernetes.io/service-name, "" if none */
	/* Labelled service.kubernetes.io/headless (the endpointslice controller's
	 * mark for a headless Service's slices): kube-proxy's EndpointSlice
	 * informer filters it out, and so does the agent. */
	bool headless_label;
	enum k8s_address_type address_type;
	struct k8s_eps_port *ports;
	size_t n_ports;
	struct k8s_eps_endpoint *endpoints;
	size_t n_endpoints;
	__be32 *addrs;			/* every endpoint's addresses, one allocation */
	/* The zones endpoints[].hints.forZones[].name name, each once (pool). */
	const char **hint_zones;
	__u8 n_hint_zones;
	/* Why the hints were ignored (malformed), "" when they were not: the
	 * slice itself is still used, as if no endpoint had a hint. */
	const char *hints_error;
};

int k8s_endpointslice_from_json(const cJSON *obj, struct k8s_endpointslice *eps, char *err,
				size_t errlen);
void k8s_endpointslice_free(struct k8s_endpointslice *eps);

/* ---- cilium.io/v2alpha1 CiliumEndpointSlice ---- */

struct k8s_named_port {
	char name[K8S_PORT_NAME_MAX];
	__u8 proto;
	__u16 port;
};

struct k8s_cilium_endpoint {
	const char *name;		/* in the slice's pool */
	__u32 identity;			/* .id */
	__be32 ipv4;			/* first networking.addressing[].ipv4, 0 if none */
	__be32 node_ip;			/* networking.node */
	struct k8s_named_port *named_ports;
	size_t n_named_ports;
};

struct k8s_cilium_endpointslice {
	struct k8s_obj_meta meta;	/* cluster-scoped: meta.namespace is "" */
	struct k8s_strpool strs;
	const char *namespace;		/* the top-level "namespace" field */
	struct k8s_cilium_endpoint *endpoints;
	size_t n_endpoints;
};

int k8s_cilium_endpointslice_from_json(const cJSON *obj, struct k8s_cilium_endpointslice *ces,
				       char *err, size_t errlen);
void k8s_cilium_endpointslice_free(struct k8s_cilium_endpointslice *ces);

/* ---- core/v1 Node ---- */

struct k8s_node {
	struct k8s_obj_meta meta;
	struct k8s_strpool strs;
	__be32 internal_ip;		/* status.addresses InternalIP, 0 if none */
	__be32 external_ip;		/* status.addresses ExternalIP, 0 if none */
	struct ipv4_prefix *pod_cidrs;	/* spec.podCIDRs (or podCIDR), IPv4 only */
	size_t n_pod_cidrs;
	const char *zone;		/* label topology.kubernetes.io/zone, "" if none */
};

int k8s_node_from_json(const cJSON *obj, struct k8s_node *node, char *err, size_t errlen);
void k8s_node_free(struct k8s_node *node);

/* Shared helpers, also used by the watch layer. */
int k8s_meta_from_json(const cJSON *obj, struct k8s_meta *meta, char *err, size_t errlen);
/* The same, keeping namespace and name in pool. */
int k8s_obj_meta_from_json(const cJSON *obj, struct k8s_obj_meta *meta, struct k8s_strpool *pool,
			   char *err, size_t errlen);
/* "TCP"/"UDP"/"SCTP" -> IPPROTO_*; absent means TCP (the API default). */
int k8s_proto_from_string(const char *s, __u8 *proto);
const char *k8s_proto_name(__u8 proto);

#endif /* AXON_K8S_OBJECTS_H */
