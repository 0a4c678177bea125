/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The node's tc datapath, wired to the control plane: the one place where
 * the agent calls the datapath modules (agent/datapath/{netdev,routes,
 * tc_attach,ct_gc}.h and the loader's tc part).
 *
 * agent_datapath_sync(), after every batch of events, once the Node and
 * CiliumEndpointSlice watches have synced and this node's Node is known:
 *   1. builds the datapath_config (dp_config.h); when it differs from the
 *      loaded one, (re)loads the tc programs: datapath_tc_load();
 *   2. attaches from_netdev / to_netdev to the native devices, and
 *      from_container / to_container to each local endpoint's host device
 *      (tc_attach(), which updates an existing attachment in place); with
 *      --enable-ipv4-big-tcp, gives the same devices (and each pod's end of
 *      its veth) the BIG TCP sizes (datapath/bigtcp.h);
 *   3. reconciles every local endpoint's policy trie (policy/reconcile.h),
 *      then the ipcache and endpoints maps (endpoints/reconcile.h), which
 *      carry each endpoint's policy id and enforcement, and the node routes
 *      (nodes/routes_sync.h);
 *   4. runs a conntrack GC pass when one is due (ct_gc_run()).
 * Nothing is loaded or attached before the Node is known: without the node's
 * address the programs cannot be configured (and an agent pointed at a
 * cluster that has no Node for it touches no device).
 */
#ifndef AXON_DPSYNC_H
#define AXON_DPSYNC_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "metrics/hist.h"

#include "axon/config.h"
#include "datapath/bigtcp.h"
#include "datapath/ct_gc.h"
#include "datapath/loader.h"
#include "datapath/netdev.h"
#include "datapath/tc_attach.h"
#include "endpoints/reconcile.h"
#include "htable.h"
#include "nodes/routes_sync.h"
#include "policy/reconcile.h"

struct agent;

struct ep_bpf_maps {
	int fd[EP_MAP__NR];
};

struct agent_dp {
	char state[320];		/* one line for status: "ready", "waiting for Node n1" */
	/* Programs */
	bool tc_loaded;
	struct datapath_config cfg;	/* what is loaded */
	int load_err;
	unsigned long loads;
	uint64_t load_retry_ms;
	/* Devices */
	struct netdev_ctx *nd;
	struct netdev_changes nd_changes; /* the last netdev_process(), kept off the stack */
	struct netdev native[NETDEV_MAX_NATIVE];
	int n_native;
	bool native_dirty;
	char native_error[160];
	/* Attachments made by this agent run: "ifindex/dir" -> struct tc_attachment */
	struct tc_attach_ctx tc;
	struct htable attached;
	unsigned long attach_errors;
	char attach_error[200];
	struct big_tcp big_tcp;		/* --enable-ipv4-big-tcp on the devices above */
	/* Maps and reconcilers */
	struct ep_bpf_maps ep_maps;
	struct ep_reconciler ep;
	bool ep_restored;
	struct route_sync routes;
	struct pol_reconciler pol;	/* policy tries and enforcement (policy/reconcile.h) */
	int pol_failing;
	uint64_t pol_passes_seen;	/* pol.passes last observed */
	struct metrics_hist pol_compute, pol_enforce;	/* metrics/collect.h */
	/* Conntrack GC */
	struct ct_gc gc;
	bool gc_ready;
	uint64_t gc_next_ms;
	int ct_fds[3];			/* ct4_tcp, ct4_any, nat4 */
};

/* After datapath_load() and the LB reconciler's init; before the watches. */
int agent_datapath_init(struct agent *a);
void agent_datapath_close(struct agent *a);
/* See above. *next_ms is lowered to when this wants to run again. */
void agent_datapath_sync(struct agent *a, uint64_t now_ms, uint64_t *next_ms);
/* The netlink fd to poll for device changes (-1 when none), and what to
 * call when it is readable. */
int agent_datapath_fd(struct agent *a);
void agent_datapath_netdev_event(struct agent *a);
/* For `agentctl status` (status/datapath.c). */
cJSON *agent_datapath_status(struct agent *a);
cJSON *agent_node_status(struct agent *a);

#endif /* AXON_DPSYNC_H */
