// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The local API's policy engine commands: "policy selectors" (each selector the
 * policies use and the identities it selects) and "endpoints" (each local
 * endpoint's policy id, identity and enforcement). */
#include "agent.h"
#include "api/commands.h"

cJSON *api_cmd_policy_selectors(struct agent *a)
{
	cJSON *r = cJSON_CreateObject();

	if (r)
		cJSON_AddItemToObject(r, "selectors", pol_reconciler_selectors(&a->dpx.pol));
	return r;
}

cJSON *api_cmd_endpoints(struct agent *a)
{
	return pol_reconciler_status(&a->dpx.pol);
}
