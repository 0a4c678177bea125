// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * v1 Namespace -> struct k8s_namespace: its name, and its labels as a pod's
 * identity carries them (k8s:io.cilium.k8s.namespace.labels.<key>=<value>),
 * which is what a NetworkPolicy's namespaceSelector selects on.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "k8s/policy_priv.h"

void k8s_namespace_free(struct k8s_namespace *ns)
{
	policy_arena_free(&ns->arena);
	memset(ns, 0, sizeof(*ns));
}

int k8s_namespace_from_json(const cJSON *obj, struct k8s_namespace *ns, char *err, size_t errlen)
{
	const cJSON *md;
	struct k8s_meta m;
	int ret;

	memset(ns, 0, sizeof(*ns));
	ret = k8s_meta_from_json(obj, &m, err, errlen);
	if (ret)
		goto cleanup;
	ns->name = policy_arena_strdup(&ns->arena, m.name);
	if (!ns->name) {
		ret = -ENOMEM;
		goto cleanup;
	}
	md = k8s_json_get(obj, "metadata");
	ret = k8s_labels_from_meta(md, &ns->arena, LABEL_NAMESPACE_LABELS, &ns->labels, err, errlen);
	if (ret)
		goto cleanup;
	return 0;
cleanup:
	if (ret == -ENOMEM)
		k8s_policy_nomem(err, errlen);
	k8s_namespace_free(ns);
	return ret;
}
