/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A pod's security identity labels, in Cilium's form and with Cilium's
 * default filter (pkg/labelsfilter, defaultLabelPrefixCfg):
 *
 *   k8s:<pod label>=<value>                        the pod's labels that pass the filter
 *   k8s:io.kubernetes.pod.namespace=<ns>
 *   k8s:io.cilium.k8s.namespace.labels.<key>=<v>   each of the Namespace's labels
 *   k8s:io.cilium.k8s.policy.serviceaccount=<sa>
 *   k8s:io.cilium.k8s.policy.cluster=<cluster>
 *
 * The filter drops labels that would give every pod an identity of its own
 * (hashes, indexes, pod names) and Kubernetes' own: a label is dropped when
 * an ignore pattern matches at the start of its key and no include pattern
 * matches a longer part of it (Cilium's rule, with its regular expressions
 * matched at the key's start).
 *
 * Two label sets are the same identity when their canonical keys are equal:
 * the sorted "source:key=value" strings joined by '\x1e' (a byte no label
 * holds: k8s_label_*_check refuse control characters).
 */
#ifndef AXON_IDENTITY_LABELS_H
#define AXON_IDENTITY_LABELS_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "k8s/pod.h"
#include "k8s/policy_objects.h"
#include "policy/arena.h"
#include "policy/labels.h"

#define IDENT_CLUSTER_DEFAULT "default"

struct ident_labels {
	struct policy_arena arena;
	struct label_set set; /* sorted */
	const char *key;      /* canonical key, in the arena */
};

/* Whether a k8s: label key takes part in the identity (Cilium's default filter). */
bool ident_label_relevant(const char *key);

/* The identity labels of pod in namespace ns (its labels, or NULL when it has
 * none). 0 or -ENOMEM; out is to be freed with ident_labels_free(). */
int ident_labels_from_pod(const struct k8s_pod *pod, const struct k8s_namespace *ns,
			  const char *cluster, struct ident_labels *out);
void ident_labels_free(struct ident_labels *l);

/* The canonical key of a sorted set, malloc'ed; NULL when out of memory. */
char *ident_labels_key(const struct label_set *set);

/* A CiliumIdentity named id with these labels as security-labels. */
cJSON *ident_labels_object(const struct label_set *set, __u32 id);

#endif /* AXON_IDENTITY_LABELS_H */
