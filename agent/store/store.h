/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The desired-state store: what the cluster asks for, as decoded Kubernetes
 * objects, joined the way the datapath needs them.
 *
 * Watch handlers write it (set/delete); reconcilers read it. Every write bumps
 * the revision and marks the services whose derived state may have changed
 * as dirty; a reconciler takes dirty keys, realizes them, and clears them.
 * EndpointSlices are joined to their Service by the kubernetes.io/service-name
 * label, so a slice may arrive before or after its Service.
 *
 * Keys are "namespace/name".
 *
 * Nodes and CiliumEndpointSlices (cluster-scoped, keyed by name) are tables
 * of their own. Their consumers (ipcache, local endpoints, node routes)
 * derive their whole desired state from them, so instead of dirty keys each
 * table has a revision bumped on every change: a consumer remembers the
 * revision it realized and works again when it moved.
 *
 * Network policies (NetworkPolicy, CiliumNetworkPolicy, CCNP), CiliumIdentities
 * and Namespaces are tables of their own too (store/policy.c), each with its
 * revision: the policy engine derives everything from them. Identity labels
 * come from here: the reserved identities built in (policy/labels.h), the
 * others from their CiliumIdentity; an endpoint's identity is its
 * CiliumEndpointSlice entry's id.
 *
 * Pods are this node's only (the watch selects spec.nodeName): a table keyed
 * "namespace/name" with its revision, read by the local endpoint manager
 * (agent/identity/endpoints.c), which derives identities and the
 * CiliumEndpointSlices it publishes from them. Their host ports are load
 * balanced like Services (lb/hostport.h): a pseudo-service per (hostPort,
 * protocol), keyed store_host_port_key(), marked dirty when a pod that has
 * or had that host port changes.
 *
 * "Self" is this node: the Node named store->self_name gives its addresses,
 * pod CIDRs and zone. When its addresses or its zone change every service is
 * marked dirty (NodePort frontends live on them; topology hints follow the zone).
 */
#ifndef AXON_STORE_H
#define AXON_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "htable.h"
#include "k8s/objects.h"
#include "k8s/pod.h"
#include "k8s/policy_objects.h"

#define STORE_KEY_MAX (K8S_NS_MAX + K8S_NAME_MAX)

/* Keys are sized to content: there is one of these per object in the cluster. */
struct store_service {
	struct k8s_service svc;
	__u8 lb_algorithm;		/* enum store_lb_algorithm */
	char key[];
};

struct store_slice {
	const char *svc_key;		/* "" when the slice names no service; after key */
	struct k8s_endpointslice eps;
	char key[];			/* key, then svc_key */
};

/* The slices that name one service (index, not owner). */
struct store_slice_set {
	struct store_slice **slices;
	size_t n, cap;
};

struct store_node {
	char name[K8S_NAME_MAX];
	struct k8s_node node;
};

struct store_ces {
	char name[K8S_NAME_MAX];
	struct k8s_cilium_endpointslice ces;
};

/* Keyed "<Kind>/<namespace>/<name>" ("CiliumClusterwideNetworkPolicy//name"). */
struct store_policy {
	struct policy pol;
	char key[];
};

struct store_identity {
	struct k8s_identity ident;
};

struct store_namespace {
	struct k8s_namespace ns;
};

struct store_pod {
	struct k8s_pod pod;
	char key[];			/* "namespace/name" */
};

/* Service options that come from annotations rather than the spec. */
enum store_lb_algorithm {
	STORE_LB_ALGO_DEFAULT = 0,	/* --bpf-lb-algorithm */
	STORE_LB_ALGO_RANDOM,
	STORE_LB_ALGO_MAGLEV,
};

#define STORE_SELF_IPS_MAX 2

struct store {
	struct htable services;		/* key -> struct store_service */
	struct htable slices;		/* key -> struct store_slice */
	struct htable slices_by_svc;	/* service key -> struct store_slice_set */
	struct htable dirty;		/* service key -> (void *)1 */
	uint64_t revision;
	size_t n_endpoints;		/* IPv4 addresses across all slices */

	struct htable nodes;		/* name -> struct store_node */
	struct htable ces;		/* name -> struct store_ces */
	uint64_t nodes_revision;	/* bumped by every node change */
	uint64_t ces_revision;		/* bumped by every CiliumEndpointSlice change */
	size_t n_ces_endpoints;

	struct htable policies;		/* "<Kind>/ns/name" -> struct store_policy */
	struct htable identities;	/* __u32 id -> struct store_identity */
	struct htable namespaces;	/* name -> struct store_namespace */
	uint64_t policies_revision;	/* bumped by every policy change */
	uint64_t identities_revision;	/* ... every CiliumIdentity change */
	uint64_t namespaces_revision;	/* ... every Namespace change */
	size_t n_policies[POLICY_KIND__NR];
	/* What changed since the policy reconciler (their one consumer) last
	 * took the changes: it recomputes only what they can affect. */
	struct htable pol_changed;	/* policy key -> (void *)1 */
	struct htable ids_changed;	/* __u32 id -> (void *)1, set or deleted */
	struct htable ns_changed;	/* namespace name -> (void *)1 */
	bool changes_lost;		/* a change could not be noted (no memory):
					 * the consumer must look at everything */
	size_t n_policies_unsupported;	/* policies with a part Axon cannot enforce */

	struct htable pods;		/* "ns/name" -> struct store_pod (this node's) */
	uint64_t pods_revision;		/* bumped by every Pod change */

	char self_name[K8S_NAME_MAX];	/* this node's Node name */
	bool self_known;		/* the Node named self_name is held */
	__be32 self_ip;			/* its InternalIP, else ExternalIP; 0 if none */
	__be32 self_ips[STORE_SELF_IPS_MAX];	/* InternalIP and ExternalIP (NodePort) */
	size_t n_self_ips;
	char self_zone[64];		/* its topology.kubernetes.io/zone, "" if none */

	/* Endpoints the CNI plugin created on this node (agent/cni/), owned
	 * there: __be32 address -> struct local_endpoint; NULL: none. Their
	 * consumers work again when cni_revision moved. */
	const struct htable *cni_endpoints;
	uint64_t cni_revision;
};

int store_init(struct store *s);
void store_destroy(struct store *s);

/* Take ownership of *svc's contents (svc is zeroed). */
int store_set_service(struct store *s, struct k8s_service *svc);
int store_delete_service(struct store *s, const char *ns, const char *name);
/* Take ownership of *eps's contents (eps is zeroed). */
int store_set_slice(struct store *s, struct k8s_endpointslice *eps);
int store_delete_slice(struct store *s, const char *ns, const char *name);

/* The same, with an annotation-derived load-balancing algorithm. */
int store_set_service_algo(struct store *s, struct k8s_service *svc,
			   enum store_lb_algorithm algo);

/* Nodes and CiliumEndpointSlices: take ownership of the object's contents. */
int store_set_node(struct store *s, struct k8s_node *node);
int store_delete_node(struct store *s, const char *name);
int store_set_ces(struct store *s, struct k8s_cilium_endpointslice *ces);
int store_delete_ces(struct store *s, const char *name);
/* Name this node (before any Node arrives). */
void store_set_self_name(struct store *s, const char *name);
const struct store_node *store_get_node(const struct store *s, const char *name);
/* A node's address: InternalIP, else ExternalIP, else 0. */
__be32 store_node_ip(const struct k8s_node *node);

/* Policies, identities, namespaces: take ownership of the object's contents. */
int store_set_policy(struct store *s, struct policy *p);
int store_delete_policy(struct store *s, enum policy_kind kind, const char *ns, const char *name);
const struct store_policy *store_get_policy(const struct store *s, enum policy_kind kind,
					    const char *ns, const char *name);
int store_set_identity(struct store *s, struct k8s_identity *id);
int store_delete_identity(struct store *s, __u32 id);
int store_set_namespace(struct store *s, struct k8s_namespace *ns);
int store_delete_namespace(struct store *s, const char *name);
const struct k8s_namespace *store_get_namespace(const struct store *s, const char *name);
/* The policy reconciler has taken pol_changed, ids_changed, ns_changed and
 * changes_lost: emptied. */
void store_policy_changes_clear(struct store *s);
/* An identity's labels: a reserved one's (built in) or its CiliumIdentity's;
 * NULL when the identity is not known (yet). */
const struct label_set *store_identity_labels(const struct store *s, __u32 id);
/* Whether sel selects identity id: over its labels, and, when they carry no
 * k8s:io.cilium.k8s.namespace.labels.* label (an identity allocated before
 * Cilium added them), its Namespace's labels. false for an unknown identity. */
bool store_identity_selected(const struct store *s, __u32 id, const struct policy_selector *sel);

/* Pods: take ownership of the object's contents. */
int store_set_pod(struct store *s, struct k8s_pod *pod);
int store_delete_pod(struct store *s, const char *ns, const char *name);
const struct store_pod *store_get_pod(const struct store *s, const char *key);
/* "HostPort/TCP/8080": the dirty key of the pods' host port 8080/TCP. Not a
 * "namespace/name", so no Service's key. 0 or -ENAMETOOLONG. */
int store_host_port_key(char *buf, size_t len, __u16 port, __u8 proto);
/* Mark the host port keys of every pod dirty (their frontends live on this
 * node's addresses; their backends may come from the CNI's endpoints). */
void store_mark_host_ports_dirty(struct store *s);

const struct store_service *store_get_service(const struct store *s, const char *key);
const struct store_slice_set *store_service_slices(const struct store *s, const char *key);

/* Mark every service dirty (what they derive from changed). */
void store_mark_all_dirty(struct store *s);
/* Mark a service key dirty (also used to retry). */
int store_mark_dirty(struct store *s, const char *key);
void store_clear_dirty(struct store *s, const char *key);
static inline bool store_has_dirty(const struct store *s)
{
	return s->dirty.count > 0;
}

int store_key(char *buf, size_t len, const char *ns, const char *name);

#endif /* AXON_STORE_H */
