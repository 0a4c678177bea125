// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/labels.h"

#define KEY_SEP '\x1e'

enum pat_kind {
	PAT_PREFIX,	/* a literal matched at the key's start */
	PAT_PREFIX_ANY, /* literal then ".*": to the end of the key */
	PAT_ANY_THEN,	/* ".*" then literal: up to its last occurrence */
};

/* Cilium's defaultLabelPrefixCfg, in its order (the reserved: include does
 * not concern k8s: labels). */
static const struct {
	const char *lit;
	enum pat_kind kind;
	bool ignore;
} patterns[] = {
    {LABEL_POD_NAMESPACE, PAT_PREFIX, false},
    {"io.cilium.k8s.namespace.labels", PAT_PREFIX, false},
    {"app.kubernetes.io", PAT_PREFIX, false},
    {LABEL_POLICY_CLUSTER, PAT_PREFIX, false},
    {"io.kubernetes", PAT_PREFIX, true},
    {"kubernetes.io", PAT_PREFIX, true},
    {"statefulset.kubernetes.io/pod-name", PAT_PREFIX, true},
    {"apps.kubernetes.io/pod-index", PAT_PREFIX, true},
    {"batch.kubernetes.io/job-completion-index", PAT_PREFIX, true},
    {"beta.kubernetes.io", PAT_ANY_THEN, true},
    {"k8s.io", PAT_PREFIX, true},
    {"pod-template-generation", PAT_PREFIX, true},
    {"pod-template-hash", PAT_PREFIX, true},
    {"controller-revision-hash", PAT_PREFIX, true},
    {"annotation", PAT_PREFIX_ANY, true},
    {"etcd_node", PAT_PREFIX, true},
};

/* Length of the match at the key's start, 0 for none. */
static size_t pat_match(const char *key, const char *lit, enum pat_kind kind)
{
	size_t n = strlen(lit);
	const char *p, *last = NULL;

	switch (kind) {
	case PAT_PREFIX:
		return strncmp(key, lit, n) ? 0 : n;
	case PAT_PREFIX_ANY:
		return strncmp(key, lit, n) ? 0 : strlen(key);
	case PAT_ANY_THEN:
		for (p = strstr(key, lit); p; p = strstr(p + 1, lit))
			last = p;
		return last ? (size_t)(last - key) + n : 0;
	}
	return 0;
}

bool ident_label_relevant(const char *key)
{
	size_t included = 0, ignored = 0;

	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		size_t m = pat_match(key, patterns[i].lit, patterns[i].kind);

		if (!m)
			continue;
		if (patterns[i].ignore) {
			if (!ignored || m < ignored)
				ignored = m;
		} else if (m > included) {
			included = m;
		}
	}
	return !ignored || included > ignored;
}

void ident_labels_free(struct ident_labels *l)
{
	policy_arena_free(&l->arena);
	memset(l, 0, sizeof(*l));
}

char *ident_labels_key(const struct label_set *set)
{
	size_t len = 1, off = 0;
	char *key;

	for (size_t i = 0; i < set->n; i++)
		len += strlen(set->labels[i].source) + strlen(set->labels[i].key) +
		       strlen(set->labels[i].value) + 3;
	key = malloc(len);
	if (!key)
		return NULL;
	key[0] = '\0';
	for (size_t i = 0; i < set->n; i++) {
		const struct policy_label *l = &set->labels[i];

		off += (size_t)snprintf(key + off, len - off, "%s%s:%s=%s", i ? "\x1e" : "",
					l->source, l->key, l->value);
	}
	return key;
}

static int add(struct ident_labels *out, struct policy_label *labels, size_t *n, const char *key,
	       const char *value)
{
	struct policy_label *l = &labels[(*n)++];

	l->source = LABEL_SOURCE_K8S;
	l->key = policy_arena_strdup(&out->arena, key);
	l->value = policy_arena_strdup(&out->arena, value);
	return l->key && l->value ? 0 : -ENOMEM;
}

int ident_labels_from_pod(const struct k8s_pod *pod, const struct k8s_namespace *ns,
			  const char *cluster, struct ident_labels *out)
{
	size_t cap = pod->labels.n + (ns ? ns->labels.n : 0) + 3, n = 0;
	struct policy_label *labels;
	char *key;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	labels = policy_arena_alloc(&out->arena, cap, sizeof(*labels));
	if (!labels)
		goto cleanup;
	for (size_t i = 0; i < pod->labels.n; i++) {
		const struct policy_label *l = &pod->labels.labels[i];

		/* The pod cannot set what the agent derives (Cilium overwrites them too). */
		if (!strcmp(l->key, LABEL_POD_NAMESPACE) ||
		    !strcmp(l->key, LABEL_POLICY_SERVICEACCOUNT) ||
		    !strcmp(l->key, LABEL_POLICY_CLUSTER) ||
		    !strncmp(l->key, LABEL_NAMESPACE_LABELS, strlen(LABEL_NAMESPACE_LABELS)) ||
		    !ident_label_relevant(l->key))
			continue;
		if (add(out, labels, &n, l->key, l->value))
			goto cleanup;
	}
	if (add(out, labels, &n, LABEL_POD_NAMESPACE, pod->namespace) ||
	    add(out, labels, &n, LABEL_POLICY_SERVICEACCOUNT, pod->service_account) ||
	    add(out, labels, &n, LABEL_POLICY_CLUSTER, cluster))
		goto cleanup;
	for (size_t i = 0; ns && i < ns->labels.n; i++)
		if (ident_label_relevant(ns->labels.labels[i].key) &&
		    add(out, labels, &n, ns->labels.labels[i].key, ns->labels.labels[i].value))
			goto cleanup;
	label_set_sort(labels, n);
	out->set.labels = labels;
	out->set.n = n;
	key = ident_labels_key(&out->set);
	if (!key)
		goto cleanup;
	out->key = policy_arena_strdup(&out->arena, key);
	free(key);
	if (!out->key)
		goto cleanup;
	return 0;
cleanup:
	ident_labels_free(out);
	return ret;
}

cJSON *ident_labels_object(const struct label_set *set, __u32 id)
{
	cJSON *o = cJSON_CreateObject(), *md, *sl;
	char name[16], k[LABEL_SOURCE_MAX + LABEL_KEY_MAX + 2];

	if (!o)
		return NULL;
	snprintf(name, sizeof(name), "%u", id);
	cJSON_AddStringToObject(o, "apiVersion", "cilium.io/v2");
	cJSON_AddStringToObject(o, "kind", "CiliumIdentity");
	md = cJSON_AddObjectToObject(o, "metadata");
	sl = cJSON_AddObjectToObject(o, "security-labels");
	if (!md || !sl || !cJSON_AddStringToObject(md, "name", name)) {
		cJSON_Delete(o);
		return NULL;
	}
	for (size_t i = 0; i < set->n; i++) {
		snprintf(k, sizeof(k), "%s:%s", set->labels[i].source, set->labels[i].key);
		if (!cJSON_AddStringToObject(sl, k, set->labels[i].value)) {
			cJSON_Delete(o);
			return NULL;
		}
	}
	return o;
}
