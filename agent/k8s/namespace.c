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

static int parse_labels(const cJSON *md, struct k8s_namespace *ns, char *err, size_t errlen)
{
	const size_t plen = strlen(LABEL_NAMESPACE_LABELS);
	struct policy_label *labels;
	char p[K8S_PATH_MAX];
	const cJSON *obj, *it;
	size_t n = 0, i = 0;
	int ret;

	ret = k8s_json_object(md, "metadata", "labels", false, &obj, err, errlen);
	if (ret)
		return ret;
	cJSON_ArrayForEach(it, obj) n++;
	if (n > K8S_MAX_LABELS)
		return k8s_json_fail(err, errlen, "metadata.labels", NULL, "more than %d labels",
				     K8S_MAX_LABELS);
	labels = policy_arena_alloc(&ns->arena, n, sizeof(*labels));
	if (!labels)
		return -ENOMEM;
	cJSON_ArrayForEach(it, obj)
	{
		struct policy_label *l = &labels[i++];
		size_t klen;
		char *key;

		k8s_json_path(p, sizeof(p), "metadata.labels", it->string ? it->string : "?");
		if (!it->string || !cJSON_IsString(it) || !it->valuestring)
			return k8s_json_fail(err, errlen, p, NULL, "expected a string value");
		if ((ret = k8s_label_key_check(it->string, p, err, errlen)) ||
		    (ret = k8s_label_value_check(it->valuestring, p, err, errlen)))
			return ret;
		klen = strlen(it->string);
		if (plen + klen > LABEL_KEY_MAX)
			return k8s_json_fail(err, errlen, p, NULL,
					     "label key longer than %zu bytes",
					     LABEL_KEY_MAX - plen);
		key = policy_arena_alloc(&ns->arena, plen + klen + 1, 1);
		l->value = policy_arena_strdup(&ns->arena, it->valuestring);
		if (!key || !l->value)
			return -ENOMEM;
		memcpy(key, LABEL_NAMESPACE_LABELS, plen);
		memcpy(key + plen, it->string, klen);
		l->key = key;
		l->source = LABEL_SOURCE_K8S;
	}
	label_set_sort(labels, n);
	ns->labels.labels = labels;
	ns->labels.n = n;
	return 0;
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
	ret = parse_labels(md, ns, err, errlen);
	if (ret)
		goto cleanup;
	return 0;
cleanup:
	if (ret == -ENOMEM)
		k8s_policy_nomem(err, errlen);
	k8s_namespace_free(ns);
	return ret;
}
