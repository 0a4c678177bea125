/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ipcache and endpoints reconciler: makes the two maps hold what
 * endpoints/desired.h derives from the store, writing only differences.
 *
 * Like the LB reconciler it keeps a mirror of what it wrote, rebuilt from the
 * pinned maps at start (ep_reconciler_restore), so a restarted agent leaves
 * still-wanted entries untouched. A pass runs when the store's node or CES
 * revision moved, when the devices changed (ep_reconciler_devices_changed),
 * or when a failed write is due for a retry; it recomputes the desired state
 * whole and diffs it against the mirror: new and changed entries first,
 * stale ones deleted last.
 *
 * A local endpoint needs its host-side device (ops->pod_device: the CNI's
 * /32 route). One whose device is not there yet is "pending": logged once,
 * kept in the pending list (status shows it), and looked up again on every
 * device change and retry. A failed map write is recorded on the entry
 * (status), counted, and retried with exponential backoff.
 *
 * The periodic full pass (ep_reconciler_resync) reads both maps back:
 * entries missing or changed behind the agent's back are rewritten from the
 * mirror, entries the mirror does not hold are deleted, each counted.
 */
#ifndef AXON_ENDPOINTS_RECONCILE_H
#define AXON_ENDPOINTS_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>
#include <net/if.h>
#include <linux/types.h>

#include "axon/endpoint.h"
#include "axon/ipcache.h"
#include "desired.h"
#include "htable.h"
#include "store/store.h"

enum ep_map_id {
	EP_MAP_IPCACHE = 0,
	EP_MAP_ENDPOINTS,
	EP_MAP__NR,
};

typedef int (*ep_dump_cb)(void *cb_ctx, const void *key, const void *value);

/* The maps: BPF maps in the agent, a fake in unit tests. 0 or -errno. */
struct ep_map_ops {
	int (*update)(void *ctx, enum ep_map_id map, const void *key, const void *value);
	int (*delete)(void *ctx, enum ep_map_id map, const void *key);
	int (*dump)(void *ctx, enum ep_map_id map, ep_dump_cb cb, void *cb_ctx);
};

/* A pod's host-side device: netdev_pod_device() in the agent. */
struct ep_host_dev {
	int ifindex;
	char ifname[IFNAMSIZ];
	__u8 mac[6];			/* the host-side device's */
	__u8 pod_mac[6];		/* the pod's interface (zero if unknown) */
};

struct ep_dev_ops {
	/* 0, -ENOENT when the pod has no device (route) yet, other -errno. */
	int (*pod_device)(void *ctx, __be32 pod_ip, struct ep_host_dev *out);
};

/* Mirror of one endpoints map entry. */
struct ep_local {
	__be32 ip;
	struct endpoint_info info;
	char ifname[IFNAMSIZ];
	char name[EP_NAME_MAX];
};

/* A local endpoint whose device was not found. */
struct ep_pending {
	__be32 ip;
	char name[EP_NAME_MAX];
	int err;
	bool logged;
};

struct ep_failure {
	char what[64];			/* "ipcache 10.0.1.5/32", "endpoint 10.0.1.5" */
	char msg[256];
	int err;
	unsigned int attempts;
	bool seen;			/* still failing in the current pass */
};

struct ep_stats {
	unsigned long updates, deletes, errors, passes;
	unsigned long retries;		/* attempts on entries already failing */
	unsigned long resyncs, repairs, last_repairs;
};

/* An endpoint's policy slot and enforced directions (the policy reconciler's
 * pol_reconciler_lookup()); false when it has none yet: id 0, not enforced. */
typedef bool (*ep_policy_fn)(void *ctx, __be32 ip, __u16 *id, __u8 *enforce);

struct ep_reconciler {
	const struct ep_map_ops *ops;
	ep_policy_fn policy_of;		/* NULL: no policy (unit tests) */
	void *policy_ctx;
	/* The policies' CIDR prefixes (policy/cidr.h): written into the
	 * ipcache, each one's outcome reported back; NULL: none. */
	struct cidr_ids *cidr;
	void *ops_ctx;
	const struct ep_dev_ops *dev;
	void *dev_ctx;
	struct htable ipcache;		/* ipcache_key -> struct ipcache_value (mirror) */
	struct htable endpoints;	/* __be32 -> struct ep_local (mirror) */
	struct htable pending;		/* __be32 -> struct ep_pending */
	struct htable failures;		/* what -> struct ep_failure */
	uint64_t seen_nodes_rev, seen_ces_rev, seen_self_ip, seen_cidr_rev, seen_cni_rev;
	bool ran, devices_changed;
	uint64_t next_retry_ms;		/* 0: none due */
	unsigned int backoff_attempts;
	unsigned int backoff_base_ms, backoff_max_ms;
	struct ep_stats stats;
};

int ep_reconciler_init(struct ep_reconciler *r, const struct ep_map_ops *ops, void *ops_ctx,
		       const struct ep_dev_ops *dev, void *dev_ctx);
void ep_reconciler_destroy(struct ep_reconciler *r);
/* Rebuild the mirror from the maps (agent start); CIDR entries (identity
 * >= IDENTITY_LOCAL_FLAG) also give r->cidr back its prefixes' identities. */
int ep_reconciler_restore(struct ep_reconciler *r);
/* Devices changed: pending endpoints (and every local one's device) are
 * looked up again on the next pass. */
static inline void ep_reconciler_devices_changed(struct ep_reconciler *r)
{
	r->devices_changed = true;
}
/* An endpoint's policy id or enforcement changed: a pass rewrites it. */
static inline void ep_reconciler_policy_changed(struct ep_reconciler *r)
{
	r->devices_changed = true;
}
/* Run a pass if anything moved or a retry is due. Returns the number of
 * entries failing (pending devices are not failures); *next_ms: when the
 * next retry is due, UINT64_MAX for none. Call only once the Node and CES
 * watches have synced (a pass deletes what the store does not hold). */
int ep_reconcile(struct ep_reconciler *r, const struct store *s, uint64_t now_ms,
		 uint64_t *next_ms);

/* The full pass (after the first ep_reconcile): returns the number of
 * entries repaired, or -errno when a map could not be read or a repair
 * failed (the next pass tries again). */
int ep_reconciler_resync(struct ep_reconciler *r);

#endif /* AXON_ENDPOINTS_RECONCILE_H */
