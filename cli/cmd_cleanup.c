// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agentctl cleanup [--force]: remove everything Axon attached and pinned:
 * legacy tc filters recorded in --state-dir (they are not pins, so bpffs
 * cleanup alone would leave them), then every link and map under --bpf-root.
 * Must run in the agent's network namespace (the devices are there). */
#include <stdio.h>
#include <string.h>

#include "bpffs.h"
#include "cli.h"
#include "cmd_util.h"
#include "datapath/tc_attach.h"

static void cleanup_text(const cJSON *doc)
{
	printf("detached %d tc attachment(s) (tcx links and legacy filters); removed %d other "
	       "link(s) and %d map(s) under %s\n",
	       cJSON_GetObjectItem(doc, "tc_attachments")->valueint,
	       cJSON_GetObjectItem(doc, "links")->valueint,
	       cJSON_GetObjectItem(doc, "maps")->valueint,
	       cJSON_GetObjectItem(doc, "bpf_root")->valuestring);
}

int cmd_cleanup(int argc, char **argv)
{
	static const char *const names[] = { "--force" };
	bool force = false;
	struct tc_attach_ctx tc = { .bpf_root = cli.bpf_root, .state_dir = cli.state_dir };
	int err, links, maps, filters;
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
	/* Counts the tcx links it unpins as well as legacy filters; bpffs_flush
	 * then finds only the socket-hook links. */
	filters = tc_detach_all(&tc);
	if (filters < 0)
		return cli_error("cleanup of tc attachments incomplete: %s", strerror(-filters));
	err = bpffs_flush(cli.bpf_root, &links, &maps);
	if (err)
		return cli_error("cleanup of %s incomplete: %s", cli.bpf_root, strerror(-err));
	doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "bpf_root", cli.bpf_root);
	cJSON_AddNumberToObject(doc, "tc_attachments", filters);
	cJSON_AddNumberToObject(doc, "links", links);
	cJSON_AddNumberToObject(doc, "maps", maps);
	return cli_print(doc, cleanup_text);
}
