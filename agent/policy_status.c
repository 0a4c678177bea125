// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The "policy" section of `agentctl status`: the policies the agent holds, by
 * kind, the identities and namespaces it knows, and the policies with parts
 * Axon does not enforce (each with what), so an operator sees at once that a
 * policy is only partly in effect. The policy engine adds its own health.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

/* Status stays small: the rest is `agentctl` policy output (api/policy.c). */
#define UNSUPPORTED_LISTED 32

static int key_cmp(const void *x, const void *y)
{
	const struct store_policy *a = *(const struct store_policy *const *)x;
	const struct store_policy *b = *(const struct store_policy *const *)y;

	return strcmp(a->key, b->key);
}

static cJSON *unsupported_list(struct agent *a)
{
	const struct htable *h = &a->store.policies;
	const struct store_policy **v = calloc(h->count + 1, sizeof(*v));
	cJSON *arr = cJSON_CreateArray();
	size_t n = 0;

	if (!v)
		return arr;
	for (struct ht_entry *e = ht_first(h); e; e = ht_next(h, e)) {
		const struct store_policy *sp = e->value;

		if (sp->pol.unsupported)
			v[n++] = sp;
	}
	qsort(v, n, sizeof(*v), key_cmp);
	for (size_t i = 0; i < n && i < UNSUPPORTED_LISTED; i++) {
		const struct policy *p = &v[i]->pol;
		cJSON *o = cJSON_CreateObject();
		char name[STORE_KEY_MAX], what[256];

		snprintf(name, sizeof(name), "%s%s%s", p->namespace, p->namespace[0] ? "/" : "",
			 p->name);
		policy_unsupported_text(p->unsupported, what, sizeof(what));
		cJSON_AddStringToObject(o, "kind", policy_kind_name(p->kind));
		cJSON_AddStringToObject(o, "name", name);
		cJSON_AddStringToObject(o, "unsupported", what);
		cJSON_AddItemToArray(arr, o);
	}
	free(v);
	return arr;
}

cJSON *agent_policy_status(struct agent *a)
{
	const struct store *s = &a->store;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "network_policies", s->n_policies[POLICY_KIND_NP]);
	cJSON_AddNumberToObject(o, "cilium_network_policies", s->n_policies[POLICY_KIND_CNP]);
	cJSON_AddNumberToObject(o, "cilium_clusterwide_network_policies",
				s->n_policies[POLICY_KIND_CCNP]);
	cJSON_AddNumberToObject(o, "identities", s->identities.count);
	cJSON_AddNumberToObject(o, "namespaces", s->namespaces.count);
	cJSON_AddNumberToObject(o, "unsupported", s->n_policies_unsupported);
	cJSON_AddItemToObject(o, "unsupported_policies", unsupported_list(a));
	return o;
}
