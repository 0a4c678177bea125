/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * This node's endpoints as Axon manages them: one per Pod bound to the node
 * that is not hostNetwork, has an IPv4 pod address (the kubelet writes it
 * after CNI ADD) and has not finished (phase Succeeded/Failed). Each one:
 *
 *   waiting-for-identity  its labels are known, their identity is being
 *                         allocated (or its Namespace not seen yet)
 *   ready                 it has its identity and is published in a
 *                         CiliumEndpointSlice (ces/publish.h)
 *   disconnecting         its Pod is being deleted (deletionTimestamp): still
 *                         published, so peers' policy keeps knowing it while
 *                         it terminates; gone with the Pod
 *
 * A label change allocates the new identity first and switches to it once
 * it exists: until then the endpoint keeps its old identity, so there is
 * never a moment without one.
 *
 * Identity GC (Cilium operator's --identity-gc-interval and
 * --identity-heartbeat-timeout): every interval, an identity no
 * CiliumEndpointSlice of the cluster refers to (and no endpoint here uses)
 * is marked; one still unused a heartbeat timeout after it was first marked
 * is deleted. Every agent collects; a second DELETE is a harmless 404.
 *
 * Nothing is derived before the Pod, Namespace, CiliumIdentity and
 * CiliumEndpointSlice watches have delivered their first list (a restarted
 * agent must not unpublish what it has not listed yet).
 */
#ifndef AXON_IDENTITY_ENDPOINTS_H
#define AXON_IDENTITY_ENDPOINTS_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "ces/orphans.h"
#include "ces/publish.h"
#include "identity/alloc.h"
#include "store/store.h"

enum lep_state {
	LEP_WAITING = 0,
	LEP_READY,
	LEP_DISCONNECTING,
};

struct lep {
	char key[STORE_KEY_MAX]; /* "namespace/name" */
	const char *ns, *name;	 /* into key */
	__be32 ip;
	__u32 identity; /* 0 until allocated */
	enum lep_state state;
	char reason[160];  /* why waiting, "" otherwise */
	unsigned int pass; /* last pass that saw its Pod */
};

struct lep_mgr {
	const struct store *store;
	struct ident_alloc alloc;
	struct ces_pub pub;
	struct ces_orphans orphans; /* slices of nodes that are gone */
	struct htable eps; /* key -> struct lep */
	uint64_t seen_pods, seen_ns, seen_ids, seen_gen;
	unsigned int pass;
	bool started;
	/* GC */
	uint32_t gc_interval_ms, gc_timeout_ms;
	uint64_t gc_next_ms;
	struct htable unused;	/* __u32 id -> (uintptr_t) ms first seen unused + 1 */
	struct htable gc_queue; /* __u32 id -> 1: to delete, one DELETE at a time */
	unsigned long gc_deleted, gc_runs;
	struct k8s_call *gc_call;
};

int lep_mgr_init(struct lep_mgr *m, struct k8s_client *c, ident_call_start_fn start,
		 ident_call_cancel_fn cancel, const struct store *s, const char *node,
		 uint32_t gc_interval_ms, uint32_t gc_timeout_ms);
void lep_mgr_destroy(struct lep_mgr *m);

/* After events: derive, allocate, publish, collect. synced: every watch it
 * reads has listed. *next_ms lowered to when it wants to run again. */
void lep_mgr_run(struct lep_mgr *m, bool synced, uint64_t now_ms, uint64_t *next_ms);

const char *lep_state_name(enum lep_state s);
/* Every endpoint, sorted by key: [{pod, namespace, address, identity, state, reason}]. */
cJSON *lep_mgr_json(const struct lep_mgr *m);
/* Counters for status: identities and slices written, GC. */
cJSON *lep_mgr_status(const struct lep_mgr *m);

#endif /* AXON_IDENTITY_ENDPOINTS_H */
