// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/labels.h"

void label_split(const char *s, const char **src, size_t *srclen, const char **key)
{
	const char *colon;

	*src = NULL;
	*srclen = 0;
	*key = s;
	/* Cilium's shorthand for reserved labels: "$host". */
	if (s[0] == '$') {
		*src = LABEL_SOURCE_RESERVED;
		*srclen = strlen(LABEL_SOURCE_RESERVED);
		*key = s + 1;
		return;
	}
	colon = strchr(s, ':');
	if (!colon)
		return;
	*src = s;
	*srclen = colon - s;
	*key = colon + 1;
}

static int label_cmp(const void *x, const void *y)
{
	const struct policy_label *a = x, *b = y;
	int c = strcmp(a->key, b->key);

	return c ? c : strcmp(a->source, b->source);
}

void label_set_sort(struct policy_label *labels, size_t n)
{
	if (n > 1)
		qsort(labels, n, sizeof(*labels), label_cmp);
}

static bool source_matches(const char *want, const char *have)
{
	return !strcmp(want, LABEL_SOURCE_ANY) || !strcmp(want, have);
}

const struct policy_label *label_set_find(const struct label_set *set, const char *source,
					  const char *key)
{
	size_t lo = 0, hi = set->n;

	/* The first label with this key (sorted by key), then its sources. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(set->labels[mid].key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < set->n && !strcmp(set->labels[lo].key, key); lo++)
		if (source_matches(source, set->labels[lo].source))
			return &set->labels[lo];
	return NULL;
}

bool label_set_has_key_prefix(const struct label_set *set, const char *source, const char *prefix)
{
	size_t plen = strlen(prefix);

	for (size_t i = 0; i < set->n; i++)
		if (!strncmp(set->labels[i].key, prefix, plen) &&
		    source_matches(source, set->labels[i].source))
			return true;
	return false;
}

void label_format(const struct policy_label *l, char *buf, size_t len)
{
	if (l->value[0])
		snprintf(buf, len, "%s:%s=%s", l->source, l->key, l->value);
	else
		snprintf(buf, len, "%s:%s", l->source, l->key);
}

static const struct policy_label l_host[] = {{LABEL_SOURCE_RESERVED, "host", ""}};
static const struct policy_label l_world[] = {{LABEL_SOURCE_RESERVED, "world", ""}};
static const struct policy_label l_unmanaged[] = {{LABEL_SOURCE_RESERVED, "unmanaged", ""}};
static const struct policy_label l_health[] = {{LABEL_SOURCE_RESERVED, "health", ""}};
static const struct policy_label l_init[] = {{LABEL_SOURCE_RESERVED, "init", ""}};
static const struct policy_label l_remote_node[] = {{LABEL_SOURCE_RESERVED, "remote-node", ""}};
static const struct policy_label l_kube_apiserver[] = {
    {LABEL_SOURCE_RESERVED, "kube-apiserver", ""},
    {LABEL_SOURCE_RESERVED, "remote-node", ""},
};
static const struct policy_label l_ingress[] = {{LABEL_SOURCE_RESERVED, "ingress", ""}};

static const struct {
	const char *name;
	struct label_set labels;
} reserved[RESERVED_IDENTITY_LAST + 1] = {
    [RESERVED_IDENTITY_HOST] = {"host", {l_host, 1}},
    [RESERVED_IDENTITY_WORLD] = {"world", {l_world, 1}},
    [RESERVED_IDENTITY_UNMANAGED] = {"unmanaged", {l_unmanaged, 1}},
    [RESERVED_IDENTITY_HEALTH] = {"health", {l_health, 1}},
    [RESERVED_IDENTITY_INIT] = {"init", {l_init, 1}},
    [RESERVED_IDENTITY_REMOTE_NODE] = {"remote-node", {l_remote_node, 1}},
    [RESERVED_IDENTITY_KUBE_APISERVER] = {"kube-apiserver", {l_kube_apiserver, 2}},
    [RESERVED_IDENTITY_INGRESS] = {"ingress", {l_ingress, 1}},
};

const struct label_set *identity_reserved_labels(__u32 id)
{
	if (id == RESERVED_IDENTITY_UNKNOWN || id > RESERVED_IDENTITY_LAST)
		return NULL;
	return &reserved[id].labels;
}

const char *identity_reserved_name(__u32 id)
{
	if (id == RESERVED_IDENTITY_UNKNOWN || id > RESERVED_IDENTITY_LAST)
		return NULL;
	return reserved[id].name;
}
