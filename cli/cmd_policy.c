// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl policy selectors: every distinct selector the policies use and
 * the identities it selects now (the agent's selector cache).
 * agentctl endpoint list: every local endpoint, sorted by policy id then pod:
 * its policy id (slot in the "policy" map, 0 before the policy engine has
 * it), pod, namespace, address, identity (the one enforced), state
 * (waiting-for-identity until the identity resolved for its Pod is the one
 * enforced, then ready; disconnecting: "-" for one the agent does not manage
 * the Pod of), the directions enforced, how many rules select it and entries
 * it holds, and the error of a policy that could not be realized (the
 * endpoint keeps its old one).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_util.h"

static void selectors_text(const cJSON *doc)
{
	struct table *t = table_new(2, "SELECTOR", "IDENTITIES");
	const cJSON *s;

	cJSON_ArrayForEach(s, doc)
	{
		char ids[1024] = "";
		size_t off = 0;
		const cJSON *id;

		cJSON_ArrayForEach(id, cJSON_GetObjectItem(s, "identities"))
		{
			int n = snprintf(ids + off, sizeof(ids) - off, "%s%u", off ? "," : "",
					 (unsigned int)id->valuedouble);

			if (n < 0 || (size_t)n >= sizeof(ids) - off)
				break;
			off += (size_t)n;
		}
		table_row(t, json_str(s, "selector"), off ? ids : "-");
	}
	table_print(t);
}

int cmd_policy_selectors(int argc, char **argv)
{
	return cli_agent_list_command(argc, argv, "policy selectors", "selectors", selectors_text);
}

static void endpoints_text(const cJSON *doc)
{
	struct table *t = table_new(10, "ID", "POD", "IP", "IDENTITY", "STATE", "INGRESS", "EGRESS",
				    "RULES", "ENTRIES", "ERROR");
	const cJSON *e;

	cJSON_ArrayForEach(e, doc)
	{
		char id[16], ident[16], rules[16], entries[16];
		const char *err = json_str(e, "error");

		snprintf(id, sizeof(id), "%u", (unsigned int)json_num(e, "id"));
		snprintf(ident, sizeof(ident), "%u", (unsigned int)json_num(e, "identity"));
		snprintf(rules, sizeof(rules), "%u", (unsigned int)json_num(e, "rules"));
		snprintf(entries, sizeof(entries), "%u", (unsigned int)json_num(e, "entries"));
		const char *state = json_str(e, "state");

		table_row(t, id, json_str(e, "pod"), json_str(e, "ip"), ident, *state ? state : "-",
			  *json_str(e, "ingress") ? json_str(e, "ingress") : "-",
			  *json_str(e, "egress") ? json_str(e, "egress") : "-", rules, entries,
			  *err ? err : "-");
	}
	table_print(t);
}

int cmd_endpoint_list(int argc, char **argv)
{
	return cli_agent_list_command(argc, argv, "endpoints", "endpoints", endpoints_text);
}
