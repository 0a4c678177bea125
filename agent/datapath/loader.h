/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Loading Axon's BPF programs and attaching them so they outlive the agent.
 *
 * Every map is pinned at <bpf-root>/maps/<name> and reused by the next agent
 * (same layout) so state survives restarts. The policy tries the agent puts
 * into the "policy" array of maps are not pinned themselves: the array holds
 * them, and with it the endpoints' policies outlive the agent. Every attachment is a BPF link
 * pinned at <bpf-root>/links/<program>: the pins are the record of what Axon
 * attached. On start an existing link is updated in place with the new
 * program (BPF_LINK_UPDATE), so there is no moment without a program; a link
 * attached somewhere else (another cgroup) is detached and re-created.
 *
 * Two BPF objects are loaded: the socket load balancer (sock_lb, attached to
 * the cgroup here) and the tc datapath (tc_datapath, attached to devices by
 * the agent through tc_attach.h with dp->prog_fd[] and dp->tc_attach). They
 * share every map they both declare (lb4_*, metrics) through the pins. The
 * tc object is configured with a struct datapath_config (CONFIG in its
 * .rodata) at load; datapath_tc_load() loads it again with a new one and
 * swaps the programs on every device Axon attached to in place.
 */
#ifndef AXON_LOADER_H
#define AXON_LOADER_H

#include <stdbool.h>
#include <linux/types.h>

#include "axon/config.h"
#include "datapath/map_sizes.h"
#include "datapath/tc_attach.h"
#include "lb/bpf_ops.h"

struct loader_config {
	const char *bpf_root;
	const char *cgroup_root;
	/* Entries per map (map_sizes.h); NULL: the BPF objects' defaults. A map
	 * already pinned keeps its size (see maps_prepare). */
	const struct map_sizes *sizes;
	/* The tc datapath. The strings must outlive the datapath. */
	const char *state_dir;		/* legacy tc record; NULL: no legacy tc */
	enum tc_mode tc_mode;		/* AUTO: tc_probe_tcx() decides; LEGACY: forced */
	const struct datapath_config *tc_config;	/* NULL: datapath_config_defaults() */
};

/* The tc programs, by what they attach to. */
enum dp_prog {
	DP_PROG_FROM_CONTAINER,		/* pod's host-side device, ingress */
	DP_PROG_TO_CONTAINER,		/* pod's host-side device, egress */
	DP_PROG_FROM_NETDEV,		/* native device, ingress */
	DP_PROG_TO_NETDEV,		/* native device, egress */
	DP_PROG_MAX,
};

extern const char *const dp_prog_names[DP_PROG_MAX];

#define DATAPATH_MAX_ATTACH 16

struct attach_point {
	char program[64];
	char hook[32];			/* "cgroup/connect4" */
	char target[256];		/* cgroup path or device */
	bool updated;			/* an existing link was updated in place */
};

struct map_info_row {
	char name[32];
	__u32 max_entries;		/* what the map has */
	__u32 configured;		/* what the flags asked for; 0: not sized by flags */
	int fd;
};

struct datapath {
	struct sock_lb *sock;
	struct lb_bpf_maps lb;
	int metrics_fd;
	struct attach_point attach[DATAPATH_MAX_ATTACH];
	int n_attach;
	struct map_info_row maps[24];
	int n_maps;

	/* The tc datapath. prog_fd[] changes with every datapath_tc_load();
	 * the map fds below are the datapath's own and stay valid across it. */
	struct tc_datapath *tc;
	struct datapath_config tc_config;	/* what the loaded programs were given */
	struct tc_attach_ctx tc_attach;		/* for tc_probe_tcx()/tc_attach()/tc_detach() */
	int prog_fd[DP_PROG_MAX];
	int endpoints_fd, ipcache_fd, ct4_tcp_fd, ct4_any_fd, nat4_fd;
	int lb4_affinity_fd, lb4_maglev_fd, events_fd;
	int policy_fd;	/* the array of maps: endpoint id -> policy trie */
	/* Socket LB termination (bpf/sock_term.bpf.c, agent/lb/sock_term.h):
	 * the iterators, attached (not pinned: only the agent runs them).
	 * NULL when the object did not load (bpf_sock_destroy() needs 6.5);
	 * term_err is why. Not having it stops nothing else. */
	struct sock_term *term;
	struct bpf_link *term_link[2];	/* SOCK_TERM_TCP, SOCK_TERM_UDP */
	int term_err;
	struct loader_config cfg;
};

/* Defaults for every field of the tc programs' configuration (Cilium's
 * timeouts and port ranges; flags: host routing and socket LB on). */
void datapath_config_defaults(struct datapath_config *c);

/* Load both objects (maps pinned and shared) and attach the socket LB to the
 * cgroup. With cfg->tc_config, the new tc programs also replace the ones on
 * every device Axon attached to before (pins and the legacy record: a restart
 * swaps them in place); without it the tc object is loaded with defaults (for
 * prog_fd[] and the map fds) and the devices keep their programs until
 * datapath_tc_load(). */
int datapath_load(struct datapath *dp, const struct loader_config *cfg);

/* Load the tc object again with @cfg and replace the program on every
 * attachment Axon has (tcx: BPF_LINK_UPDATE; legacy: filter replace), so no
 * device is ever without a program. On a load error the running programs
 * stay. Attachments to devices that are gone are dropped. */
int datapath_tc_load(struct datapath *dp, const struct datapath_config *cfg);

/* The fd of tc program @program ("from_container", "to_container",
 * "from_netdev", "to_netdev") of the loaded tc object, or -ENOENT. Changes
 * with every datapath_tc_load(). */
int datapath_tc_prog_fd(const struct datapath *dp, const char *program);

/* Close our fds; pins (and so the datapath) stay. */
void datapath_close(struct datapath *dp);

#endif /* AXON_LOADER_H */
