/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The network-policy objects, decoded from the apiserver's JSON into the
 * policy model (policy/rules.h) and the identity labels it selects on
 * (policy/labels.h):
 *
 *   networking.k8s.io/v1 NetworkPolicy        -> struct policy (netpol.c)
 *   cilium.io/v2 CiliumNetworkPolicy,
 *   CiliumClusterwideNetworkPolicy            -> struct policy (cnp.c)
 *   cilium.io/v2 CiliumIdentity               -> struct k8s_identity (identity.c)
 *   v1 Namespace                              -> struct k8s_namespace (namespace.c)
 *
 * The contract of objects.h holds: a *_from_json() fills the whole struct and
 * returns 0, or returns -EINVAL (or -ENOMEM) with a one-line reason naming the
 * field ("spec.ingress[0].from[1].ipBlock.except[0]: 10.1.0.0/16 is not
 * inside 192.168.0.0/16") and leaves nothing allocated. Input is untrusted.
 * What each kind accepts, and how it becomes the model, is in
 * docs/control-plane.md, "Network policy: objects and selectors".
 */
#ifndef AXON_K8S_POLICY_OBJECTS_H
#define AXON_K8S_POLICY_OBJECTS_H

#include <cjson/cJSON.h>

#include "policy/arena.h"
#include "policy/labels.h"
#include "policy/rules.h"

int k8s_network_policy_from_json(const cJSON *obj, struct policy *p, char *err, size_t errlen);
/* clusterwide: a CiliumClusterwideNetworkPolicy (no namespace). */
int k8s_cilium_policy_from_json(const cJSON *obj, bool clusterwide, struct policy *p, char *err,
				size_t errlen);

struct k8s_identity {
	struct policy_arena arena;
	__u32 id;		 /* metadata.name, 256 and up */
	struct label_set labels; /* security-labels: "k8s:app": "web" -> k8s:app=web */
	const char *namespace;	 /* its k8s:io.kubernetes.pod.namespace, "" if none */
};

int k8s_identity_from_json(const cJSON *obj, struct k8s_identity *id, char *err, size_t errlen);
void k8s_identity_free(struct k8s_identity *id);

struct k8s_namespace {
	struct policy_arena arena;
	const char *name;
	/* metadata.labels as a pod's identity carries them:
	 * k8s:io.cilium.k8s.namespace.labels.<key>=<value>. */
	struct label_set labels;
};

int k8s_namespace_from_json(const cJSON *obj, struct k8s_namespace *ns, char *err, size_t errlen);
void k8s_namespace_free(struct k8s_namespace *ns);

#endif /* AXON_K8S_POLICY_OBJECTS_H */
