// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The "policy" section of `agentctl status`: the policies the agent holds, by
 * kind, the identities and namespaces it knows, and the policies with parts
 * Axon does not enforce (each with what), so an operator sees at once that a
 * policy is only partly in effect. The policy engine adds its own health:
 * the revision of what policy is computed from (pol_revision(): one more with
 * every policy, identity or namespace change) and the one every endpoint's
 * trie realizes, and the endpoints whose policy failed (fail closed: each
 * keeps its old trie, or none), each with its error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

/* Status stays small: the rest is `agentctl` policy output (api/policy.c). */
#define UNSUPPORTED_LISTED 32
#define FAILED_LISTED	   32

static int key_cmp(const void *x, const void *y)
{
	const struct store_policy *a = *(const struct store_policy *const *)x;
	const struct store_policy *b = *(const struct store_policy *const *)y;

	return strcmp(a->key, b->key);
}

static int endpoint_cmp(const void *x, const void *y)
{
	const struct pol_endpoint *a = *(const struct pol_endpoint *const *)x;
	const struct pol_endpoint *b = *(const struct pol_endpoint *const *)y;

	return strcmp(a->name, b->name);
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

static cJSON *failed_list(const struct pol_reconciler *r, size_t *n_enforcing)
{
	const struct pol_endpoint **v = calloc(r->endpoints.count + 1, sizeof(*v));
	cJSON *arr = cJSON_CreateArray();
	size_t n = 0;

	*n_enforcing = 0;
	if (!v)
		return arr;
	for (struct ht_entry *e = ht_first(&r->endpoints); e; e = ht_next(&r->endpoints, e)) {
		const struct pol_endpoint *pe = e->value;

		*n_enforcing += pe->enforce != 0;
		/* -EAGAIN: not written yet, not a failure. */
		if (pe->err && pe->err != -EAGAIN)
			v[n++] = pe;
	}
	qsort(v, n, sizeof(*v), endpoint_cmp);
	for (size_t i = 0; i < n && i < FAILED_LISTED; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "pod", v[i]->name);
		cJSON_AddNumberToObject(o, "id", v[i]->id);
		cJSON_AddNumberToObject(o, "entries", (double)v[i]->n_entries);
		cJSON_AddStringToObject(o, "error", strerror(-v[i]->err));
		cJSON_AddItemToArray(arr, o);
	}
	free(v);
	return arr;
}

cJSON *agent_policy_status(struct agent *a)
{
	const struct store *s = &a->store;
	cJSON *o = cJSON_CreateObject(), *failed;
	size_t n_enforcing;

	cJSON_AddNumberToObject(o, "network_policies", s->n_policies[POLICY_KIND_NP]);
	cJSON_AddNumberToObject(o, "cilium_network_policies", s->n_policies[POLICY_KIND_CNP]);
	cJSON_AddNumberToObject(o, "cilium_clusterwide_network_policies",
				s->n_policies[POLICY_KIND_CCNP]);
	cJSON_AddNumberToObject(o, "identities", s->identities.count);
	cJSON_AddNumberToObject(o, "namespaces", s->namespaces.count);
	cJSON_AddNumberToObject(o, "unsupported", s->n_policies_unsupported);
	cJSON_AddItemToObject(o, "unsupported_policies", unsupported_list(a));
	failed = failed_list(&a->dpx.pol, &n_enforcing);
	cJSON_AddStringToObject(o, "health", a->dpx.pol_failing > 0 ? "degraded" : "ok");
	cJSON_AddNumberToObject(o, "revision", (double)pol_revision(s));
	cJSON_AddNumberToObject(o, "revision_realized", (double)a->dpx.pol.realized_rev);
	cJSON_AddNumberToObject(o, "endpoints", a->dpx.pol.endpoints.count);
	cJSON_AddNumberToObject(o, "endpoints_enforcing", n_enforcing);
	cJSON_AddNumberToObject(o, "endpoints_failed", a->dpx.pol_failing);
	cJSON_AddItemToObject(o, "failed_endpoints", failed);
	return o;
}
