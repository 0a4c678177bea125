// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The local API's policy engine commands: "policy selectors" (each selector the
 * policies use and the identities it selects) and "endpoints" (each local
 * endpoint's policy id, identity and enforcement). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "api/commands.h"

cJSON *api_cmd_policy_selectors(struct agent *a)
{
	cJSON *r = cJSON_CreateObject();

	if (r)
		cJSON_AddItemToObject(r, "selectors", pol_reconciler_selectors(&a->dpx.pol));
	return r;
}

static const char *jstr(const cJSON *o, const char *key)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));

	return v ? v : "";
}

/* A managed endpoint's state as the datapath has it: "ready" once the
 * identity the agent resolved for its Pod is the one the policy engine
 * enforces; until the slice carrying it is read back the engine still has
 * the endpoint under reserved:init (5) or its previous identity. */
static void state_copy(cJSON *e, const cJSON *l)
{
	static const char *const copied[] = { "namespace", "address", "state", "reason" };
	unsigned int want = (unsigned int)cJSON_GetNumberValue(cJSON_GetObjectItem(l, "identity"));
	unsigned int have = (unsigned int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "identity"));
	char reason[96];

	if (!strcmp(jstr(l, "state"), "ready") && want != have) {
		snprintf(reason, sizeof(reason),
			 "identity %u resolved, the policy engine still has %u", want, have);
		cJSON_AddStringToObject(e, "namespace", jstr(l, "namespace"));
		cJSON_AddStringToObject(e, "address", jstr(l, "address"));
		cJSON_AddStringToObject(e, "state", "waiting-for-identity");
		cJSON_AddStringToObject(e, "reason", reason);
		return;
	}
	for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++)
		cJSON_AddStringToObject(e, copied[i], jstr(l, copied[i]));
}

static int by_id_then_pod(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	double ix = cJSON_GetNumberValue(cJSON_GetObjectItem(x, "id"));
	double iy = cJSON_GetNumberValue(cJSON_GetObjectItem(y, "id"));

	if (ix != iy)
		return ix < iy ? -1 : 1;
	return strcmp(jstr(x, "pod"), jstr(y, "pod"));
}

/* eps in a stable order: by policy id, then pod (id 0 first: not in the
 * engine yet). */
static void sort_endpoints(cJSON *eps)
{
	int n = cJSON_GetArraySize(eps), i = 0;
	cJSON **v, *e;

	if (n < 2)
		return;
	v = calloc(n, sizeof(*v));
	if (!v)
		return;
	while ((e = eps->child))
		v[i++] = cJSON_DetachItemViaPointer(eps, e);
	qsort(v, n, sizeof(*v), by_id_then_pod);
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(eps, v[i]);
	free(v);
}

void api_endpoints_merge(cJSON *eps, cJSON *leps)
{
	cJSON *l, *next, *e;

	for (l = leps->child; l; l = next) {
		char key[STORE_KEY_MAX];

		next = l->next;
		snprintf(key, sizeof(key), "%s/%s", jstr(l, "namespace"), jstr(l, "pod"));
		cJSON_ArrayForEach(e, eps)
			if (!strcmp(jstr(e, "pod"), key))
				break;
		if (e) {
			state_copy(e, l);
			continue;
		}
		cJSON_DetachItemViaPointer(leps, l);
		cJSON_ReplaceItemInObject(l, "pod", cJSON_CreateString(key));
		cJSON_AddNumberToObject(l, "id", 0);
		cJSON_AddStringToObject(l, "ip", jstr(l, "address"));
		cJSON_AddStringToObject(l, "error", "");
		cJSON_AddItemToArray(eps, l);
	}
	sort_endpoints(eps);
}

/* The policy engine's endpoints (those of this node's CiliumEndpointSlices),
 * each with its Pod's namespace, address and state when the agent manages
 * the Pod; then the managed endpoints the engine does not have yet (waiting
 * for their identity, or their slice not read back yet), with id 0. */
cJSON *api_cmd_endpoints(struct agent *a)
{
	cJSON *r = pol_reconciler_status(&a->dpx.pol), *eps, *leps;

	if (!r || !a->leps_ready)
		return r;
	eps = cJSON_GetObjectItem(r, "endpoints");
	leps = lep_mgr_json(&a->leps);
	if (!eps || !leps) {
		cJSON_Delete(leps);
		return r;
	}
	api_endpoints_merge(eps, leps);
	cJSON_Delete(leps);
	cJSON_AddItemToObject(r, "publishing", lep_mgr_status(&a->leps));
	return r;
}
