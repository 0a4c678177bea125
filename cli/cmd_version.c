// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl version: this agentctl's version and the running agent's. An
 * agent that cannot be reached is not an error here (the client's version
 * is still the answer to half the question); it is shown as unreachable.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_util.h"
#include "version.h"

static void version_text(const cJSON *doc)
{
	const cJSON *agent = cJSON_GetObjectItem(doc, "agent");

	printf("Client: agentctl %s (commit %s)\n", json_str(doc, "version"),
	       json_str(doc, "commit"));
	if (json_str(agent, "error")[0])
		printf("Agent:  unreachable (%s)\n", json_str(agent, "error"));
	else
		printf("Agent:  axon-agent %s (commit %s)\n", json_str(agent, "version"),
		       json_str(agent, "commit"));
}

int cmd_version(int argc, char **argv)
{
	cJSON *doc, *agent;
	int ret, err = 0;

	ret = cmd_flags(argc, argv, NULL, NULL, 0);
	if (ret)
		return ret;
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "version", axon_version);
	cJSON_AddStringToObject(doc, "commit", axon_git_commit);
	agent = cli_agent_request("version", &err);
	if (!agent) {
		agent = cJSON_CreateObject();
		cJSON_AddStringToObject(agent, "error", strerror(-err));
	}
	cJSON_AddItemToObject(doc, "agent", agent);
	return cli_print(doc, version_text);
}
