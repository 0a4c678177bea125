// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl service list: every Service frontend as the agent derives it from
 * the cluster (one row per address:port/protocol), its backends with their
 * state, and whether the load-balancing maps hold it exactly so. Where
 * `bpf lb list` shows what the maps hold, this shows what the cluster asks
 * for and whether the two agree. Services Axon does not serve (another proxy's
 * service-proxy-name label, headless, ExternalName, IPv6-only, no ports) are
 * rows of their own with SERVED "no: <reason>". Pods' host ports follow, type
 * HostPort, named after the pod.
 */
#include <stdio.h>

#include "cli.h"
#include "cmd_util.h"

static void backends_text(const cJSON *arr, char *buf, size_t len)
{
	const cJSON *b;
	size_t off = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(b, arr)
	{
		int n = snprintf(buf + off, len - off, "%s%s:%d (%s)", off ? ", " : "",
				 json_str(b, "address"), json_int(b, "port"), json_str(b, "state"));

		if (n < 0 || (size_t)n >= len - off)
			break;
		off += n;
	}
	if (!off)
		snprintf(buf, len, "(none)");
}

static void services_text(const cJSON *doc)
{
	struct table *t =
	    table_new(6, "SERVICE", "TYPE", "FRONTEND", "BACKENDS", "REALIZED", "SERVED");
	const cJSON *fe;
	char backends[4096], served[128];

	cJSON_ArrayForEach(fe, doc)
	{
		if (cJSON_IsFalse(cJSON_GetObjectItem(fe, "served"))) {
			snprintf(served, sizeof(served), "no: %s", json_str(fe, "reason"));
			table_row(t, json_str(fe, "service"), json_str(fe, "type"), "-", "-", "-",
				  served);
			continue;
		}
		backends_text(cJSON_GetObjectItem(fe, "backends"), backends, sizeof(backends));
		table_row(t, json_str(fe, "service"), json_str(fe, "type"),
			  json_str(fe, "frontend"), backends,
			  cJSON_IsTrue(cJSON_GetObjectItem(fe, "realized")) ? "yes" : "no", "yes");
	}
	table_print(t);
}

int cmd_service_list(int argc, char **argv)
{
	return cli_agent_list_command(argc, argv, "services", "services", services_text);
}
