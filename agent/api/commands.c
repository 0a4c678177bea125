// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The local API's command table (api/server.h calls agent_api_handle). */
#include <string.h>

#include "agent.h"
#include "api/commands.h"
#include "version.h"

static cJSON *version(struct agent *a)
{
	cJSON *r = cJSON_CreateObject();

	(void)a;
	cJSON_AddStringToObject(r, "version", axon_version);
	cJSON_AddStringToObject(r, "commit", axon_git_commit);
	return r;
}

static const struct {
	const char *name;
	cJSON *(*fn)(struct agent *a);
} commands[] = {
    {"status", agent_status}, {"version", version},	  {"services", api_cmd_services},
    {"nodes", api_cmd_nodes}, {"config", api_cmd_config}, {"policies", api_cmd_policies},
    {"identities", api_cmd_identities}, {"policy selectors", api_cmd_policy_selectors},
    {"endpoints", api_cmd_endpoints},
};

cJSON *agent_api_handle(void *ctx, const char *cmd, const cJSON *req)
{
	if (!strncmp(cmd, "cni ", 4))
		return agent_cni_handle(ctx, cmd + 4, req);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].fn(ctx);
	return NULL;
}
