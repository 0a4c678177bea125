// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cilium.io/v2 CiliumIdentity -> struct k8s_identity: metadata.name is the
 * identity's number (decimal, 256 and up: below that Cilium reserves them,
 * policy/labels.h), security-labels its labels, "source:key": "value".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "k8s/policy_priv.h"

void k8s_identity_free(struct k8s_identity *id)
{
	policy_arena_free(&id->arena);
	memset(id, 0, sizeof(*id));
}

static int parse_number(const char *name, __u32 *id, char *err, size_t errlen)
{
	unsigned long long v = 0;
	char shown[64];
	size_t len = strlen(name);

	k8s_json_quote(shown, sizeof(shown), name);
	/* Canonical decimal only: "0123" or "+5" would be a second name for one id. */
	if (!len || len > 10 || name[0] == '0' || strspn(name, "0123456789") != len)
		return k8s_json_fail(err, errlen, "metadata", "name",
				     "\"%s\" is not an identity number", shown);
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (unsigned)(name[i] - '0');
	if (v > 0xffffffffULL)
		return k8s_json_fail(err, errlen, "metadata", "name",
				     "%llu is not a 32-bit identity", v);
	if (v < ALLOCATED_IDENTITY_MIN)
		return k8s_json_fail(err, errlen, "metadata", "name",
				     "%llu is in Cilium's reserved range (1-255)", v);
	*id = (__u32)v;
	return 0;
}

/* The labels of a security-labels object: "source:key": "value". */
static int parse_labels(const cJSON *obj, const char *path, struct policy_arena *a,
			struct label_set *out, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	struct policy_label *labels;
	const cJSON *it;
	size_t n = 0, i = 0;
	int ret;

	cJSON_ArrayForEach(it, obj) n++;
	if (n > K8S_MAX_LABELS)
		return k8s_json_fail(err, errlen, path, NULL, "more than %d labels",
				     K8S_MAX_LABELS);
	labels = policy_arena_alloc(a, n, sizeof(*labels));
	if (!labels)
		return -ENOMEM;
	cJSON_ArrayForEach(it, obj)
	{
		struct policy_label *l = &labels[i++];
		const char *src, *key;
		size_t srclen;

		k8s_json_path(p, sizeof(p), path, it->string ? it->string : "?");
		if (!it->string || !cJSON_IsString(it) || !it->valuestring)
			return k8s_json_fail(err, errlen, p, NULL, "expected a string value");
		label_split(it->string, &src, &srclen, &key);
		/* Cilium's NewLabel: a key without a source is "unspec". */
		if (!src) {
			src = LABEL_SOURCE_UNSPEC;
			srclen = strlen(src);
		}
		if ((ret = k8s_label_source_check(src, srclen, p, err, errlen)) ||
		    (ret = k8s_label_key_check(key, p, err, errlen)) ||
		    (ret = k8s_label_value_check(it->valuestring, p, err, errlen)))
			return ret;
		l->source = policy_arena_strndup(a, src, srclen);
		l->key = policy_arena_strdup(a, key);
		l->value = policy_arena_strdup(a, it->valuestring);
		if (!l->source || !l->key || !l->value)
			return -ENOMEM;
	}
	label_set_sort(labels, n);
	for (i = 1; i < n; i++)
		if (!strcmp(labels[i].key, labels[i - 1].key) &&
		    !strcmp(labels[i].source, labels[i - 1].source))
			return k8s_json_fail(err, errlen, path, NULL, "label %s:%s given twice",
					     labels[i].source, labels[i].key);
	out->labels = labels;
	out->n = n;
	return 0;
}

int k8s_identity_from_json(const cJSON *obj, struct k8s_identity *id, char *err, size_t errlen)
{
	const struct policy_label *ns;
	const cJSON *sl;
	struct k8s_meta m;
	int ret;

	memset(id, 0, sizeof(*id));
	ret = k8s_meta_from_json(obj, &m, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_number(m.name, &id->id, err, errlen);
	if (ret)
		goto cleanup;
	ret = k8s_json_object(obj, NULL, "security-labels", true, &sl, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_labels(sl, "security-labels", &id->arena, &id->labels, err, errlen);
	if (ret)
		goto cleanup;
	ns = label_set_find(&id->labels, LABEL_SOURCE_K8S, LABEL_POD_NAMESPACE);
	id->namespace = ns ? ns->value : "";
	return 0;
cleanup:
	if (ret == -ENOMEM)
		k8s_policy_nomem(err, errlen);
	k8s_identity_free(id);
	return ret;
}
