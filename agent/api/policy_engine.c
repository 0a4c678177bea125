// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The local API's policy engine commands: "policy selectors" (each selector the
 * policies use and the identities it selects) and "endpoints" (each local
 * endpoint's policy id, identity and enforcement). */
#include <stdio.h>
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

/* The policy engine's endpoints (those of this node's CiliumEndpointSlices),
 * each with its Pod's namespace, address and state when the agent manages
 * the Pod; then the managed endpoints the engine does not have yet (waiting
 * for their identity, or their slice not read back yet), with id 0. */
cJSON *api_cmd_endpoints(struct agent *a)
{
	cJSON *r = pol_reconciler_status(&a->dpx.pol), *eps, *leps, *l, *next, *e;
	static const char *const copied[] = { "namespace", "address", "state", "reason" };

	if (!r || !a->leps_ready)
		return r;
	eps = cJSON_GetObjectItem(r, "endpoints");
	leps = lep_mgr_json(&a->leps);
	if (!eps || !leps) {
		cJSON_Delete(leps);
		return r;
	}
	for (l = leps->child; l; l = next) {
		char key[STORE_KEY_MAX];

		next = l->next;
		snprintf(key, sizeof(key), "%s/%s", jstr(l, "namespace"), jstr(l, "pod"));
		cJSON_ArrayForEach(e, eps)
			if (!strcmp(jstr(e, "pod"), key))
				break;
		if (e) {
			for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++)
				cJSON_AddStringToObject(e, copied[i], jstr(l, copied[i]));
			continue;
		}
		cJSON_DetachItemViaPointer(leps, l);
		cJSON_ReplaceItemInObject(l, "pod", cJSON_CreateString(key));
		cJSON_AddNumberToObject(l, "id", 0);
		cJSON_AddStringToObject(l, "ip", jstr(l, "address"));
		cJSON_AddStringToObject(l, "error", "");
		cJSON_AddItemToArray(eps, l);
	}
	cJSON_Delete(leps);
	cJSON_AddItemToObject(r, "publishing", lep_mgr_status(&a->leps));
	return r;
}
