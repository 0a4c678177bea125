/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Loading Axon's BPF programs and attaching them so they outlive the agent.
 *
 * Every map is pinned at <bpf-root>/maps/<name> and reused by the next agent
 * (same layout) so state survives restarts. Every attachment is a BPF link
 * pinned at <bpf-root>/links/<program>: the pins are the record of what Axon
 * attached. On start an existing link is updated in place with the new
 * program (BPF_LINK_UPDATE), so there is no moment without a program; a link
 * attached somewhere else (another cgroup) is detached and re-created.
 */
#ifndef AXON_LOADER_H
#define AXON_LOADER_H

#include <stdbool.h>
#include <linux/types.h>

#include "lb/bpf_ops.h"

struct loader_config {
	const char *bpf_root;
	const char *cgroup_root;
	__u32 lb_map_max;		/* services, backends (and rev-NAT, capped at 65536) */
	__u32 sock_rev_max;
};

#define DATAPATH_MAX_ATTACH 16

struct attach_point {
	char program[64];
	char hook[32];			/* "cgroup/connect4" */
	char target[256];		/* cgroup path or device */
	bool updated;			/* an existing link was updated in place */
};

struct map_info_row {
	char name[32];
	__u32 max_entries;
	int fd;
};

struct datapath {
	struct sock_lb *sock;
	struct lb_bpf_maps lb;
	int metrics_fd;
	struct attach_point attach[DATAPATH_MAX_ATTACH];
	int n_attach;
	struct map_info_row maps[16];
	int n_maps;
};

int datapath_load(struct datapath *dp, const struct loader_config *cfg);
/* Close our fds; pins (and so the datapath) stay. */
void datapath_close(struct datapath *dp);

#endif /* AXON_LOADER_H */
