/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy reconciler: every local endpoint's policy trie and enforcement
 * from the store's policies, CiliumIdentities and Namespaces (engine.h).
 *
 * A pass runs when the store's policy, identity, namespace or CES revision
 * moved, or when a retry is due:
 *   - policies changed: their selectors are registered in the selector cache
 *     again (a selector already held is not evaluated again);
 *   - identities or namespaces changed: only the identities whose labels (or
 *     whose namespace's labels) differ are set in the cache again, each
 *     evaluated once per distinct selector; deleted ones are taken out;
 *   - every local endpoint's result is computed from the cache (no selector
 *     evaluation) and compared with what was realized: only an endpoint
 *     whose enforcement or entries differ is written (policy_map_set(),
 *     itself writing only the entries that differ).
 * Each local endpoint has an id (its slot in the "policy" array of maps):
 * the one its endpoints map entry already carries (kept across restarts),
 * else the lowest free one. The endpoints reconciler writes the id and the
 * enforcement into endpoint_info (pol_reconciler_lookup()); the trie is
 * written first, so a direction is never enforced with a policy older than
 * the one being realized, except on failure, when it keeps the old trie (or,
 * with none yet, an empty slot, which denies everything): fail closed.
 * A failed write (-ENOSPC: more entries than --bpf-policy-map-max) is kept
 * on the endpoint for status and retried with exponential backoff.
 */
#ifndef AXON_POLICY_RECONCILE_H
#define AXON_POLICY_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <linux/types.h>

#include "htable.h"
#include "policy/engine.h"
#include "policy/selector_cache.h"
#include "store/store.h"

#define POL_ENDPOINTS_MAX 65535

struct pol_endpoint {
	__be32 ip;
	char name[K8S_NS_MAX + K8S_NAME_MAX];
	__u32 identity;
	__u16 id;
	__u8 enforce;	  /* realized: POLICY_INGRESS | POLICY_EGRESS */
	uint64_t digest;  /* of the realized enforcement and entries */
	size_t n_entries; /* realized */
	unsigned int rules, skipped;
	int err; /* last write's error, 0 when realized */
	bool seen;
};

struct pol_ident {
	uint64_t digest; /* of its labels and its namespace's */
	bool seen;	 /* in the store at this sync */
	bool held;	 /* set in the selector cache with these labels */
};

struct pol_reconciler {
	struct policy_maps pm;
	struct selector_cache sc;
	struct htable endpoints; /* __be32 ip -> struct pol_endpoint */
	struct htable idents;	 /* __u32 id -> struct pol_ident */
	const struct policy **pols;
	size_t n_pols, cap_pols;
	__u8 *used_ids; /* bitmap of endpoint ids in use */
	uint64_t seen_pol_rev, seen_id_rev, seen_ns_rev, seen_ces_rev, seen_cni_rev;
	bool ran;
	bool enforcement_changed; /* an endpoint's id or enforcement moved */
	uint64_t next_retry_ms;
	unsigned int backoff_attempts;
	uint64_t revision;	   /* passes that changed something */
	uint64_t realized_pol_rev; /* the policy revision every endpoint realizes */
	unsigned long writes, errors;
	uint64_t passes;     /* passes run (a retry or a store change each) */
	uint64_t compute_ns; /* the last pass's engine work: selector cache updates
			      * and engine_compute() of every endpoint, no map write */
};

/* id_hint(ctx, ip): the id an endpoints map entry already gives ip, 0 if none. */
typedef __u16 (*pol_id_hint_fn)(void *ctx, __be32 ip);

int pol_reconciler_init(struct pol_reconciler *r, int outer_fd, __u32 map_max);
void pol_reconciler_destroy(struct pol_reconciler *r);
/* Returns the number of endpoints failing; *next_ms: the next retry. */
int pol_reconcile(struct pol_reconciler *r, const struct store *s, pol_id_hint_fn hint,
		  void *hint_ctx, uint64_t now_ms, uint64_t *next_ms);
/* ip's endpoint id and enforcement (ENDPOINT_POLICY_* bits); false if none. */
bool pol_reconciler_lookup(const struct pol_reconciler *r, __be32 ip, __u16 *id, __u8 *enforce);

/* For status and `agentctl policy selectors` / `endpoint list`. */
cJSON *pol_reconciler_status(const struct pol_reconciler *r);
cJSON *pol_reconciler_selectors(const struct pol_reconciler *r);

#endif /* AXON_POLICY_RECONCILE_H */
