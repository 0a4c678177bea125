// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agentctl cleanup [--force]: remove everything Axon pinned under --bpf-root. */
#include <stdio.h>
#include <string.h>

#include "bpffs.h"
#include "cli.h"
#include "cmd_util.h"

static void cleanup_text(const cJSON *doc)
{
	printf("removed %d link(s) and %d map(s) under %s\n",
	       cJSON_GetObjectItem(doc, "links")->valueint,
	       cJSON_GetObjectItem(doc, "maps")->valueint,
	       cJSON_GetObjectItem(doc, "bpf_root")->valuestring);
}

int cmd_cleanup(int argc, char **argv)
{
	static const char *const names[] = { "--force" };
	bool force = false;
	int err, links, maps;
	cJSON *doc, *probe;

	err = cmd_flags(argc, argv, names, &force, 1);
	if (err)
		return err;
	/* A running agent would recreate what we remove; say so rather than race. */
	probe = cli_agent_request("status", &err);
	if (probe && !force) {
		cJSON_Delete(probe);
		return cli_error("the agent is running (%s); stop it first, or pass --force",
				 cli.socket_path);
	}
	cJSON_Delete(probe);
	err = bpffs_flush(cli.bpf_root, &links, &maps);
	if (err)
		return cli_error("cleanup of %s incomplete: %s", cli.bpf_root, strerror(-err));
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "bpf_root", cli.bpf_root);
	cJSON_AddNumberToObject(doc, "links", links);
	cJSON_AddNumberToObject(doc, "maps", maps);
	return cli_print(doc, cleanup_text);
}
