/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy reconciler: every local endpoint's policy trie and enforcement
 * from the store's policies, CiliumIdentities and Namespaces (engine.h).
 *
 * A pass runs when the store's policy, identity, namespace or CES revision
 * moved, or when a retry is due. It works from what changed (the store notes
 * the policies, identities and namespaces set or deleted since the last
 * pass), never from a scan of everything:
 *   - identities changed (or in a namespace that changed) are taken out of
 *     the selector cache and set again, each evaluated once per distinct
 *     selector; policies changed: their selectors registered again (one
 *     already held is not evaluated again);
 *   - only the endpoints whose result can change are computed again: one
 *     new, whose identity (or its labels) changed, whose named ports
 *     changed, or whose last write failed; one a changed policy selects now
 *     or selected before; one selected by a rule whose peer or requirement
 *     selectors' identity sets moved (the selector cache's revisions);
 *   - an endpoint computed again is diffed against the entries realized for
 *     it, kept in memory (policy_map_update(): the pinned trie is read once,
 *     at start), and only the entries that differ are written.
 * When a change could not be noted (no memory) or a pass failed midway,
 * the next pass computes every endpoint.
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
#include "policy/cidr.h"
#include "policy/engine.h"
#include "policy/peer_ports.h"
#include "policy/selector_cache.h"
#include "store/store.h"

#define POL_ENDPOINTS_MAX 65535

struct pol_endpoint {
	__be32 ip;
	char name[K8S_NS_MAX + K8S_NAME_MAX];
	__u32 identity;
	__u16 id;
	__u8 enforce;	  /* realized: POLICY_INGRESS | POLICY_EGRESS */
	size_t n_entries; /* realized */
	unsigned int rules, skipped;
	int err;			 /* last write's error, 0 when realized */
	struct policy_map_realized real; /* what its trie holds */
	uint64_t *pols;			 /* sorted hashes of the keys of the policies with a */
	size_t n_pols;			 /* rule selecting it, when last computed */
	uint64_t ports_hash;		 /* of its named ports, when last computed */
	const struct k8s_cilium_endpoint *cep; /* during a pass */
	bool seen;
	bool stale; /* to be computed (again) */
};

/* A rule of the policies with its selectors resolved in the cache, rebuilt
 * at every policy change: which endpoints it selects and which selections
 * its result reads, without a lookup per endpoint. */
struct pol_rule_ref {
	const struct sc_selector *subject; /* NULL: a node subject */
	size_t deps, n_deps;		   /* in dep_sels: peers but the wildcard, requirements */
	size_t pol;			   /* index in pols */
	bool egress_named;		   /* names a port on egress (peer_ports) */
};

struct pol_reconciler {
	struct policy_maps pm;
	struct selector_cache sc;
	/* The policies' prefixes' identities (policy/cidr.h). */
	struct cidr_ids cidr;
	struct htable endpoints;      /* __be32 ip -> struct pol_endpoint */
	struct peer_ports peer_ports; /* egress named ports, from the CES */
	bool peer_ports_moved;	      /* since the last pass */
	const struct policy **pols;
	uint64_t *pol_hashes; /* of each policy's store key */
	size_t n_pols, cap_pols;
	const struct policy **sel_pols; /* the policies selecting one endpoint */
	struct htable regs; /* policy store key -> struct pol_reg: its selectors in the cache */
	struct pol_rule_ref *rules;
	size_t n_rules;
	const struct sc_selector **dep_sels;
	uint64_t sc_seen_rev; /* the selector cache's revision at the last pass */
	bool need_full;	      /* compute every endpoint at the next pass */
	__u8 *used_ids;	      /* bitmap of endpoint ids in use */
	uint64_t seen_pol_rev, seen_id_rev, seen_ns_rev, seen_ces_rev, seen_cni_rev;
	bool ran;
	bool enforcement_changed; /* an endpoint's id or enforcement moved */
	uint64_t next_retry_ms;
	int failing; /* the last pass's failing endpoints */
	unsigned int backoff_attempts;
	uint64_t revision;	   /* passes that changed something */
	uint64_t realized_pol_rev; /* the policy revision every endpoint realizes */
	uint64_t realized_rev;	   /* the pol_revision() every endpoint realizes */
	unsigned long writes, errors;
	/* For tests and status: engine_compute() calls, endpoints computed by
	 * the last pass, trie entries written or deleted. */
	unsigned long computations, last_computed, entries_written;
	uint64_t passes;     /* passes run (a retry or a store change each) */
	uint64_t compute_ns; /* the last pass's engine work: selector cache updates
			      * and engine_compute() of every endpoint, no map write */
};

/* id_hint(ctx, ip): the id an endpoints map entry already gives ip, 0 if none. */
typedef __u16 (*pol_id_hint_fn)(void *ctx, __be32 ip);

/* The revision of what policy is computed from: one more with every policy,
 * CiliumIdentity or Namespace change the store takes. */
static inline uint64_t pol_revision(const struct store *s)
{
	return s->policies_revision + s->identities_revision + s->namespaces_revision;
}

int pol_reconciler_init(struct pol_reconciler *r, int outer_fd, __u32 map_max);
void pol_reconciler_destroy(struct pol_reconciler *r);
/* Returns the number of endpoints failing; *next_ms: the next retry. */
int pol_reconcile(struct pol_reconciler *r, struct store *s, pol_id_hint_fn hint, void *hint_ctx,
		  uint64_t now_ms, uint64_t *next_ms);
/* ip's endpoint id and enforcement (ENDPOINT_POLICY_* bits); false if none. */
bool pol_reconciler_lookup(const struct pol_reconciler *r, __be32 ip, __u16 *id, __u8 *enforce);

/* For status and `agentctl policy selectors` / `endpoint list`. */
cJSON *pol_reconciler_status(const struct pol_reconciler *r);
cJSON *pol_reconciler_selectors(const struct pol_reconciler *r);

#endif /* AXON_POLICY_RECONCILE_H */
