// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "axon/maps.h"
#include "bpffs.h"
#include "datapath/tc_attach.h"
#include "log.h"
#include "start/start_undo.h"

/* Does root/sub hold anything? */
static bool dir_has_entries(const char *root, const char *sub)
{
	char path[START_PATH_MAX];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	d = opendir(path);
	if (!d)
		return false;
	while (!found && (de = readdir(d)))
		found = de->d_name[0] != '.';
	closedir(d);
	return found;
}

/* The highest missing directory on the way to path into top ("" if path exists). */
static void first_missing(const char *path, char *top, size_t len)
{
	char buf[START_PATH_MAX], parent[START_PATH_MAX];

	top[0] = '\0';
	if (!path || !path[0] || !access(path, F_OK))
		return;
	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		snprintf(parent, sizeof(parent), "%s", buf);
		dirname(parent);
		if (!strcmp(parent, buf) || !access(parent, F_OK))
			break;
		snprintf(buf, sizeof(buf), "%s", parent);
	}
	snprintf(top, len, "%s", buf);
}

/* rmdir path and its parents up to top, as long as they are empty. */
static void remove_created(const char *path, const char *top)
{
	char buf[START_PATH_MAX];

	if (!top[0])
		return;
	snprintf(buf, sizeof(buf), "%s", path);
	while (!rmdir(buf) && strcmp(buf, top)) {
		dirname(buf);
		if (!strcmp(buf, "/") || !strcmp(buf, "."))
			break;
	}
}

void start_record_take(struct start_record *r, const struct agent_config *cfg)
{
	struct tc_attach_ctx tc = {.bpf_root = cfg->bpf_root, .state_dir = cfg->state_dir};
	struct tc_attachment one;
	char sock_dir[START_PATH_MAX];

	r->taken = true;
	/* A legacy filter is recorded in the state dir, not pinned. */
	r->fresh = !dir_has_entries(cfg->bpf_root, AXON_MAPS_DIR) &&
		   !dir_has_entries(cfg->bpf_root, AXON_LINKS_DIR) && tc_list(&tc, &one, 1) <= 0;
	first_missing(cfg->bpf_root, r->bpf_top, sizeof(r->bpf_top));
	first_missing(cfg->state_dir, r->state_top, sizeof(r->state_top));
	snprintf(sock_dir, sizeof(sock_dir), "%s", cfg->socket_path);
	first_missing(dirname(sock_dir), r->sock_top, sizeof(r->sock_top));
}

void start_record_undo(const struct start_record *r, const struct agent_config *cfg)
{
	char sock_dir[START_PATH_MAX];

	if (!r->taken)
		return;
	if (r->fresh) {
		struct tc_attach_ctx tc = {.bpf_root = cfg->bpf_root, .state_dir = cfg->state_dir};
		int filters = tc_detach_all(&tc), links = 0, maps = 0;
		int err = bpffs_unpin_all(cfg->bpf_root, &links, &maps);

		pr_info("start failed on a node without a datapath: removed what it created",
			"links=%d maps=%d tc_attachments=%d%s", links, maps,
			filters > 0 ? filters : 0, err || filters < 0 ? " error=incomplete" : "");
	} else {
		pr_info("start failed: the datapath pinned before it is left in place",
			"bpf_root=%s", cfg->bpf_root);
	}
	remove_created(cfg->bpf_root, r->bpf_top);
	remove_created(cfg->state_dir, r->state_top);
	snprintf(sock_dir, sizeof(sock_dir), "%s", cfg->socket_path);
	remove_created(dirname(sock_dir), r->sock_top);
}
