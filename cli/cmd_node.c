// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl node list: the Nodes the agent holds, their address and pod CIDRs,
 * and the route to each CIDR (--auto-direct-node-routes): self, installed,
 * pending, failed (with the reason), off, or no address.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_util.h"

/* One state for all CIDRs when they agree, else "CIDR state" each. */
static void route_text(const cJSON *routes, char *buf, size_t len)
{
	const cJSON *r, *first = cJSON_GetArrayItem(routes, 0);
	bool same = true;
	size_t off = 0;

	cJSON_ArrayForEach(r, routes) same =
	    same && !strcmp(json_str(r, "state"), json_str(first, "state")) &&
	    !json_str(r, "error")[0];
	if (!first) {
		snprintf(buf, len, "-");
		return;
	}
	if (same) {
		snprintf(buf, len, "%s", json_str(first, "state"));
		return;
	}
	buf[0] = '\0';
	cJSON_ArrayForEach(r, routes)
	{
		const char *err = json_str(r, "error");
		int n =
		    snprintf(buf + off, len - off, "%s%s %s%s%s", off ? ", " : "",
			     json_str(r, "pod_cidr"), json_str(r, "state"), *err ? ": " : "", err);

		if (n < 0 || (size_t)n >= len - off)
			break;
		off += n;
	}
}

static void nodes_text(const cJSON *doc)
{
	struct table *t = table_new(4, "NAME", "INTERNAL-IP", "POD-CIDRS", "ROUTE");
	const cJSON *n;
	char cidrs[512], route[1024];

	cJSON_ArrayForEach(n, doc)
	{
		const char *ip = json_str(n, "internal_ip");

		cli_join_strings(cJSON_GetObjectItem(n, "pod_cidrs"), ",", cidrs, sizeof(cidrs));
		route_text(cJSON_GetObjectItem(n, "routes"), route, sizeof(route));
		table_row(t, json_str(n, "name"), *ip ? ip : "-", *cidrs ? cidrs : "-", route);
	}
	table_print(t);
}

int cmd_node_list(int argc, char **argv)
{
	return cli_agent_list_command(argc, argv, "nodes", "nodes", nodes_text);
}
