/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the policy parsers share (netpol.c, cnp.c, identity.c, namespace.c):
 * label selectors, label keys and values, CIDRs, ports. Internal to agent/k8s.
 */
#ifndef AXON_K8S_POLICY_PRIV_H
#define AXON_K8S_POLICY_PRIV_H

#include "k8s/json.h"
#include "k8s/objects.h"
#include "k8s/policy_objects.h"

/* Caps on list lengths: far above any real policy, they only bound what a
 * hostile object makes us allocate. Cilium's own: 40 ports per PortRule and
 * 40 ICMP fields per ICMPRule. */
#define K8S_MAX_POLICY_RULES   1024 /* a CNP's specs */
#define K8S_MAX_POLICY_ENTRIES 1024 /* ingress/egress rules of one rule */
#define K8S_MAX_POLICY_PEERS   1024 /* from/to, fromEndpoints, fromCIDR... */
#define K8S_MAX_POLICY_PORTS   1024 /* NetworkPolicy ports; CNP toPorts */
#define K8S_MAX_CNP_PORTS      40
#define K8S_MAX_CNP_ICMP       40
#define K8S_MAX_CIDR_EXCEPT    1024
#define K8S_MAX_SEL_REQS       256 /* matchLabels, matchExpressions */
#define K8S_MAX_SEL_VALUES     256
#define K8S_MAX_LABELS	       1024 /* an identity's or a namespace's labels */

/* How a LabelSelector's keys become Cilium label keys. */
struct k8s_sel_opts {
	/* Every key's source (a NetworkPolicy's keys are Kubernetes labels:
	 * "k8s"); NULL: the key names its own ("k8s:app", "$host") or has
	 * none, which selects any source (Cilium's endpoint selectors). */
	const char *source;
	/* Prepended to every key (NetworkPolicy namespaceSelector:
	 * io.cilium.k8s.namespace.labels.). */
	const char *key_prefix;
	/* Leave out a matchLabels entry on k8s:io.kubernetes.pod.namespace:
	 * the caller sets the namespace itself (Cilium's AddMatch replaces it). */
	bool drop_namespace_match;
};

/* A selector being assembled in the arena: room for cap requirements. */
struct k8s_sel_build {
	struct sel_req *reqs;
	size_t n, cap;
};

/* metadata.labels of md as k8s-source labels, each key after key_prefix
 * ("" for a Pod's own; io.cilium.k8s.namespace.labels. for a Namespace's),
 * allocated in arena and sorted into *out. 0 or -errno (err says why). */
int k8s_labels_from_meta(const cJSON *md, struct policy_arena *arena, const char *key_prefix,
			 struct label_set *out, char *err, size_t errlen);

/* Requirements in the LabelSelector obj at path (checks the shape). */
int k8s_sel_count(const cJSON *obj, const char *path, size_t *n, char *err, size_t errlen);
int k8s_sel_build_init(struct k8s_sel_build *b, struct policy_arena *a, size_t cap);
/* Add obj's requirements (room from k8s_sel_count). */
int k8s_sel_add(struct k8s_sel_build *b, struct policy_arena *a, const cJSON *obj, const char *path,
		const struct k8s_sel_opts *o, char *err, size_t errlen);
/* Add source:key In (value), or source:key Exists when value is NULL. */
int k8s_sel_add_req(struct k8s_sel_build *b, struct policy_arena *a, const char *source,
		    const char *key, const char *value);
/* Sort into canonical order and hand over as a selector. */
void k8s_sel_finish(struct k8s_sel_build *b, struct policy_selector *out);

/* A label's source (after label_split), key and value: lengths, and bytes
 * that would make the printed forms ("k8s:app=web", "k8s:t in (a,b)")
 * ambiguous. */
int k8s_label_source_check(const char *src, size_t len, const char *path, char *err, size_t errlen);
int k8s_label_key_check(const char *key, const char *path, char *err, size_t errlen);
int k8s_label_value_check(const char *value, const char *path, char *err, size_t errlen);

/* "10.0.0.0/8" (bare_ip: also "10.1.2.3", a /32). The address is masked to
 * the prefix. */
int k8s_policy_cidr(const cJSON *item, const char *path, bool bare_ip, struct policy_cidr *out,
		    char *err, size_t errlen);
/* except inside cidr (strict: and smaller), same family. */
bool k8s_policy_cidr_contains(const struct policy_cidr *cidr, const struct policy_cidr *except,
			      bool strict);
/* The except list at obj.key, each inside r->cidr. */
int k8s_policy_cidr_except(const cJSON *obj, const char *path, const char *key, bool strict,
			   struct policy_arena *a, struct policy_cidr_rule *r, char *err,
			   size_t errlen);

/* A port name as Kubernetes and Cilium accept it (IANA service name: 1-15
 * of [a-z0-9-], a letter among them, no leading, trailing or double '-');
 * ignore_case: Cilium's, which lowercases it. */
bool k8s_port_name_valid(const char *s, bool ignore_case);

/*
 * A CiliumNetworkPolicy rule's toPorts (PortRule, or PortDenyRule when deny)
 * and icmps at obj (cnp_ports.c): the entry's ports and ICMP types, and
 * *given when either list had an item, which makes an entry without L3
 * peers match any peer (Cilium's L4-only rule).
 */
int k8s_cnp_l4(const cJSON *obj, const char *path, bool deny, struct policy_arena *a,
	       struct policy_rule_entry *e, bool *given, char *err, size_t errlen);

/* Out of memory, said once the same way everywhere. */
int k8s_policy_nomem(char *err, size_t errlen);

#endif /* AXON_K8S_POLICY_PRIV_H */
