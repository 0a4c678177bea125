// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl config view: every setting of the running agent, its effective
 * value and where it came from: flag (its command line), config-dir (a file
 * in its --config-dir, e.g. the chart's ConfigMap) or default. Sorted by
 * name; an empty value shows as "".
 */
#include "cli.h"
#include "cmd_util.h"

static void config_text(const cJSON *doc)
{
	struct table *t = table_new(3, "NAME", "VALUE", "SOURCE");
	const cJSON *o;

	cJSON_ArrayForEach(o, doc)
	{
		const char *v = json_str(o, "value");

		table_row(t, json_str(o, "name"), *v ? v : "\"\"", json_str(o, "source"));
	}
	table_print(t);
}

int cmd_config_view(int argc, char **argv)
{
	return cli_agent_list_command(argc, argv, "config", "config", config_text);
}
