// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `config`: every setting with its effective value and source (config.h). */
#include <stdlib.h>

#include "agent.h"
#include "api/commands.h"

cJSON *api_cmd_config(struct agent *a)
{
	struct agent_setting *v = calloc(AGENT_OPTIONS_MAX, sizeof(*v));
	cJSON *r, *arr;
	int n;

	if (!v)
		return NULL;
	n = agent_config_settings(&a->cfg, v, AGENT_OPTIONS_MAX);
	r = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(r, "config");
	for (int i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "name", v[i].name);
		cJSON_AddStringToObject(o, "value", v[i].value);
		cJSON_AddStringToObject(o, "source", agent_config_source_name(v[i].source));
		cJSON_AddItemToArray(arr, o);
	}
	free(v);
	return r;
}
