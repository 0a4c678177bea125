/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The load-balancing reconciler: makes the services, backends and rev-NAT
 * maps hold what the store asks for, writing only differences.
 *
 * It keeps an in-memory mirror of what it has written (frontends with their
 * slots, backends with reference counts, rev-NAT ids), so a change costs map
 * operations proportional to the change, never a dump of the maps. The mirror
 * is rebuilt from the pinned maps at start (lb_reconciler_restore), so a
 * restarted agent leaves every still-wanted entry untouched and prunes only
 * what the cluster no longer holds (lb_reconciler_prune, after the first
 * full sync).
 *
 * Write order keeps every intermediate state valid for the datapath, which
 * picks slot (random % count) + 1: backends are written before slots that
 * point at them, slots before the count that exposes them, the count lowered
 * before slots are deleted, and backends deleted only when no slot refers
 * to them.
 *
 * A failed map operation leaves the mirror equal to the maps, records the
 * error on the service, and the service is retried with exponential backoff.
 *
 * Batching (BPF_MAP_UPDATE_BATCH, lb_map_ops.update_batch) stays inside one
 * frontend and one phase of the order above: the backends a frontend needs
 * (new ones and state changes) go in one batch, then the slots that change
 * in one batch; the rev-NAT entry, the Maglev table and slot 0 are single
 * writes as before, and deletes are not batched. The kernel applies a batch
 * element by element, so a packet may see any prefix of it; within a phase
 * every prefix is valid (each slot names a backend written by the phase
 * before, and slots past the count are not looked at), and the next phase
 * starts only after the whole batch is in. A batch that fails at element k
 * has written 0..k-1: the mirror takes those, and k onwards are written one
 * by one (map_update), so an error is counted and attributed to its entry
 * (backend, slot) exactly as without batching. A map or kernel that refuses
 * batches (-EINVAL, -ENOTSUPP) is written entry by entry from then on.
 * Batching across frontends would save the remaining per-frontend calls but
 * would have to carry every frontend's partial state through each phase.
 *
 * Maglev frontends: the table (lb4_maglev[rev_nat_index]) is written whole
 * after the backends and slots it names and before slot 0 sets
 * SVC_FLAG2_MAGLEV or raises the count; it is deleted only after slot 0 no
 * longer names the flag (or is gone). A digest of each table written is
 * mirrored, so an unchanged table is not rewritten, also across restarts.
 *
 * The periodic full pass (lb_reconciler_resync, resync.c) reads the maps
 * back and compares them with the mirror: an entry missing or changed
 * behind the agent's back (bpftool, a crashed writer) is rewritten, one the
 * mirror does not hold is deleted, both in the write order above, and each
 * repair is counted (stats.repairs).
 *
 * Terminating-but-serving backends a service keeps (spec `kept`) hold a
 * reference like a slot does, so they stay in the backends map for existing
 * flows. Backends found in the maps at restart are not swept before the
 * first prune, since their services may not have claimed them yet.
 */
#ifndef AXON_LB_RECONCILE_H
#define AXON_LB_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>

#include "htable.h"
#include "store/store.h"
#include "lb/desired.h"
#include "lb/src_range.h"

enum lb_map_id {
	LB_MAP_SERVICES = 0,
	LB_MAP_BACKENDS,
	LB_MAP_REVNAT,
	LB_MAP_MAGLEV,		/* __u32 rev_nat_index -> struct lb4_maglev_table */
	LB_MAP__NR,
};

typedef int (*lb_dump_cb)(void *cb_ctx, const void *key, const void *value);

/* How the reconciler reaches the maps: BPF maps in the agent, a recording
 * fake in unit tests. Each returns 0 or -errno.
 *
 * update_batch (optional) writes n entries, keys and values each packed at
 * the map's key and value size, in order, stopping at the first that fails:
 * *done is how many leading entries were written (n on success). -EINVAL or
 * -ENOTSUPP with *done 0 means the map or kernel takes no batches.
 *
 * delete_batch (optional) deletes n keys, packed at the map's key size, in
 * order, stopping at the first that fails (a missing key fails: -ENOENT);
 * *done as for update_batch. */
struct lb_map_ops {
	int (*update)(void *ctx, enum lb_map_id map, const void *key, const void *value);
	int (*update_batch)(void *ctx, enum lb_map_id map, const void *keys, const void *values,
			    __u32 n, __u32 *done);
	int (*delete)(void *ctx, enum lb_map_id map, const void *key);
	int (*delete_batch)(void *ctx, enum lb_map_id map, const void *keys, __u32 n,
			    __u32 *done);
	int (*dump)(void *ctx, enum lb_map_id map, lb_dump_cb cb, void *cb_ctx);
};

struct lb_fe_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 scope;	/* LB_SCOPE_* */
};

struct lb_frontend {
	struct lb_fe_key key;
	char *svc_key;			/* NULL while restored and not yet claimed */
	__u32 rev_nat;
	bool revnat_written;		/* rev-NAT entry known to be in the map */
	bool has_slot0;			/* slot 0 is in the map with the fields below */
	__u8 flags;
	__u8 flags2;
	bool maglev_written;		/* lb4_maglev[rev_nat] holds a table with: */
	uint64_t maglev_digest;
	__u32 *kept;			/* backend ids kept for existing flows */
	size_t n_kept;
	__u32 affinity_timeout;
	__u16 count;
	__u32 *slots;			/* slots[i]: backend id at slot i + 1; 0 = hole */
	size_t n_slots, cap_slots;
	unsigned int gen;
	/* During a full pass: which of slot 0..n_slots (and the rev-NAT
	 * entry, the Maglev table) were found as the mirror says. */
	__u8 *resync_seen;
	bool revnat_seen, maglev_seen;
};

struct lb_backend {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 state;
	__u32 id;
	unsigned int refs;		/* slots (and kept lists) pointing here */
	bool restored;			/* found at restart: not swept before prune */
	bool resync_seen;		/* found as the mirror says (full pass) */
};

struct lb_failure {
	int err;
	char msg[256];
	unsigned int attempts;
	uint64_t next_retry_ms;		/* CLOCK_MONOTONIC */
};

struct lb_stats {
	unsigned long updates;
	unsigned long deletes;
	unsigned long errors;
	unsigned long retries;		/* attempts on services already failing */
	unsigned long services_synced;
	unsigned long resyncs;		/* full passes done */
	unsigned long repairs;		/* entries rewritten or deleted by them */
	unsigned long last_repairs;	/* ... by the latest one */
};

struct lb_reconciler {
	const struct lb_map_ops *ops;
	void *ops_ctx;
	struct htable frontends;	/* lb_fe_key -> lb_frontend */
	struct htable backends;		/* (addr, port, proto) -> lb_backend */
	struct htable backends_by_id;	/* __u32 id -> lb_backend */
	struct htable unref;		/* __u32 id -> lb_backend with refs == 0 */
	bool sweep_all;			/* unref incomplete (out of memory) */
	struct htable by_service;	/* service key -> struct lb_fe_list */
	struct htable failures;		/* service key -> lb_failure */
	struct htable orphan_revnat;	/* __u32 id restored but used by no frontend */
	struct htable orphan_maglev;	/* __u32 rev_nat restored -> uint64_t digest */
	bool pruned;			/* restored backends may be swept now */
	bool maglev_default;		/* --bpf-lb-algorithm=maglev */
	/* The Maglev map exists (it comes with the tc datapath). Without it
	 * frontends are written without SVC_FLAG2_MAGLEV (random selection)
	 * rather than not at all. Default true. */
	bool maglev_available;
	struct lb_src_ranges src_ranges; /* lb4_source_range (src_range.h) */
	bool no_batch[LB_MAP__NR];	/* the map refused a batched update */
	bool no_delete_batch[LB_MAP__NR]; /* ... a batched delete */
	uint8_t *revnat_used;		/* bitmap of rev-NAT ids in use */
	__u32 revnat_next;
	__u32 backend_next;
	unsigned int gen;
	unsigned int backoff_base_ms, backoff_max_ms;
	struct lb_stats stats;
	/* Called when backend b leaves the backend set (slots and kept list)
	 * of the frontend whose rev-NAT id is rev_nat: dropped from its
	 * service's endpoints (a terminating backend kept for existing flows
	 * has not left), or the frontend removed (service deleted, or pruned
	 * as stale after a restart). Called again with rev_nat 0 ("any
	 * frontend") when b is deleted from the backends map, which also
	 * covers a backend restored at restart that no frontend names any
	 * more. Socket LB termination and the UDP conntrack purge
	 * (sock_term.h) hang here. Optional. */
	void (*backend_removed)(void *ctx, __u32 rev_nat, const struct lb_backend *b);
	void *backend_removed_ctx;
};

int lb_reconciler_init(struct lb_reconciler *r, const struct lb_map_ops *ops, void *ops_ctx);
void lb_reconciler_destroy(struct lb_reconciler *r);

/* Rebuild the mirror from the maps (agent start). */
int lb_reconciler_restore(struct lb_reconciler *r);

/* Read the Maglev tables (once the map exists: it comes with the tc
 * datapath, possibly after restore) and match them to frontends. */
int lb_reconciler_restore_maglev(struct lb_reconciler *r);

/* Realize one service (by key) as the store describes it now. */
int lb_reconcile_service(struct lb_reconciler *r, const struct store *s, const char *key);

/* Realize every dirty service that is due (not backing off). Returns the
 * number still failing; *next_ms receives when the next retry is due
 * (UINT64_MAX if none). */
int lb_reconcile_dirty(struct lb_reconciler *r, struct store *s, uint64_t now_ms,
		       uint64_t *next_ms);

/* Remove every frontend no service claims and every rev-NAT entry no
 * frontend uses: call once the store has fully synced. */
int lb_reconciler_prune(struct lb_reconciler *r);

/* The full pass: read every map back, rewrite what is missing or differs
 * from the mirror, delete what the mirror does not hold (after the prune
 * only). Returns the number of entries repaired, or -errno when a map could
 * not be read or a repair failed (the next pass tries again). */
int lb_reconciler_resync(struct lb_reconciler *r);

/* Does the mirror (equal to the maps: every write goes through it) hold
 * frontend fe for service svc_key exactly as the spec says: claimed by that
 * service, slot 0 with its flags and count, the slots naming exactly its
 * backends with their states, the kept backends present? (realized.c) */
bool lb_reconciler_realized(const struct lb_reconciler *r, const char *svc_key,
			    const struct lb_frontend_spec *fe);

static inline size_t lb_reconciler_frontends(const struct lb_reconciler *r)
{
	return r->frontends.count;
}

static inline size_t lb_reconciler_backends(const struct lb_reconciler *r)
{
	return r->backends.count;
}

const char *lb_map_name(enum lb_map_id map);
uint64_t lb_now_ms(void);

#endif /* AXON_LB_RECONCILE_H */
