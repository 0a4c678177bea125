/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Labels as Cilium names them, and the identities it reserves.
 *
 * A label is source:key=value (cilium/cilium pkg/labels): "k8s:app=web",
 * "reserved:host". A CiliumIdentity's security-labels are such labels, keyed
 * "source:key"; policies select identities by them, so the names below are
 * Cilium's exactly: a pod's namespace is k8s:io.kubernetes.pod.namespace, its
 * namespace's labels are k8s:io.cilium.k8s.namespace.labels.<key>, its service
 * account k8s:io.cilium.k8s.policy.serviceaccount, its cluster
 * k8s:io.cilium.k8s.policy.cluster.
 *
 * A label set is sorted by key, then source, and never owns its strings (they
 * live in the arena of whatever holds the set).
 */
#ifndef AXON_POLICY_LABELS_H
#define AXON_POLICY_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define LABEL_SOURCE_K8S      "k8s"
#define LABEL_SOURCE_RESERVED "reserved"
/* In a selector only: a key without a source matches labels of every source. */
#define LABEL_SOURCE_ANY "any"
/* A label written without a source (Cilium's NewLabel). */
#define LABEL_SOURCE_UNSPEC "unspec"

#define LABEL_POD_NAMESPACE	    "io.kubernetes.pod.namespace"
#define LABEL_NAMESPACE_LABELS	    "io.cilium.k8s.namespace.labels."
#define LABEL_POLICY_SERVICEACCOUNT "io.cilium.k8s.policy.serviceaccount"
#define LABEL_POLICY_CLUSTER	    "io.cilium.k8s.policy.cluster"
/* Axon has no --cluster-name: the cluster entity matches Cilium's default. */
#define POLICY_CLUSTER_NAME "default"

/* Longest label source, key and value accepted from the cluster: a Kubernetes
 * key is at most 317 bytes (253 prefix, '/', 63 name), and Cilium adds the
 * 31-byte namespace-labels prefix; values are at most 63. Generous margins. */
#define LABEL_SOURCE_MAX 63
#define LABEL_KEY_MAX	 511
#define LABEL_VALUE_MAX	 255

struct policy_label {
	const char *source; /* "k8s", "reserved", "unspec", ... */
	const char *key;
	const char *value; /* "" for reserved labels */
};

struct label_set {
	const struct policy_label *labels; /* sorted: label_set_sort() */
	size_t n;
};

/*
 * Split a label or selector key into its source and key, as Cilium's
 * parseSource does: "k8s:app" -> "k8s", "app"; "$host" -> "reserved", "host";
 * "app" (no ':') -> *src NULL, *srclen 0 (the caller's default applies).
 */
void label_split(const char *s, const char **src, size_t *srclen, const char **key);

void label_set_sort(struct policy_label *labels, size_t n);
/* The first label of source (LABEL_SOURCE_ANY: any source) and key, or NULL. */
const struct policy_label *label_set_find(const struct label_set *set, const char *source,
					  const char *key);
/* Whether any label's key starts with prefix (any source when source is "any"). */
bool label_set_has_key_prefix(const struct label_set *set, const char *source, const char *prefix);
/* "k8s:app=web", or "reserved:host" for an empty value; truncated to fit. */
void label_format(const struct policy_label *l, char *buf, size_t len);

/*
 * Cilium's reserved identities (pkg/identity/numericidentity.go): numbers
 * below 256 that no CiliumIdentity names, each with its reserved: labels.
 * kube-apiserver also carries reserved:remote-node, as in Cilium (the
 * apiserver runs on a node that is not this one).
 */
enum {
	RESERVED_IDENTITY_UNKNOWN = 0,
	RESERVED_IDENTITY_HOST = 1,
	RESERVED_IDENTITY_WORLD = 2,
	RESERVED_IDENTITY_UNMANAGED = 3,
	RESERVED_IDENTITY_HEALTH = 4,
	RESERVED_IDENTITY_INIT = 5,
	RESERVED_IDENTITY_REMOTE_NODE = 6,
	RESERVED_IDENTITY_KUBE_APISERVER = 7,
	RESERVED_IDENTITY_INGRESS = 8,
	RESERVED_IDENTITY_LAST = RESERVED_IDENTITY_INGRESS,
	/* The first number a CiliumIdentity may carry. */
	ALLOCATED_IDENTITY_MIN = 256,
};

/* The labels of reserved identity id, or NULL if Axon knows no such one. */
const struct label_set *identity_reserved_labels(__u32 id);
/* "host", "world", ...; NULL for a number that is not reserved. */
const char *identity_reserved_name(__u32 id);

#endif /* AXON_POLICY_LABELS_H */
