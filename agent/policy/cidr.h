/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * CIDR identities: what makes a CIDR peer (ipBlock, fromCIDR, toCIDR,
 * fromCIDRSet / toCIDRSet with except) enforceable, as in Cilium.
 *
 * Every IPv4 prefix the policies name (each CIDR and each except) gets a
 * local identity (Cilium's local scope: IDENTITY_CIDR_MIN and up) labelled
 * cidr:<prefix> and reserved:world. The endpoints reconciler writes each
 * prefix into the ipcache with that identity and no tunnel endpoint, so an
 * address resolves to the longest prefix that covers it: a pod's /32 (its
 * pod identity), then an except, then the CIDR; an address no prefix covers
 * stays world (2). A CIDR selector (selector_cache.h) selects the identities
 * of the prefixes inside its CIDR and outside its excepts, so an allow of
 * 10.0.0.0/8 except 10.1.0.0/16 allows 10.0.0.0/8's identity and not
 * 10.1.0.0/16's. Pods keep their own identity, so a CIDR never selects a pod
 * (Cilium's default): an ipBlock on pod addresses does not match the pods.
 *
 * Numbers are stable: a prefix keeps its identity while any policy names it
 * (a new policy never renumbers the others), new prefixes take the next free
 * number after the last one given (a released number comes back last), and
 * a prefix no policy names any more is released. At start the assignment is
 * read back from the pinned ipcache (cidr_ids_restore(): entries with an
 * identity >= IDENTITY_CIDR_MIN) before anything is written, so a restarted
 * agent writes the same ipcache entries and policy entries byte for byte.
 *
 * Failing closed: a prefix that gets no identity (more than max prefixes)
 * or whose ipcache entry could not be written is "broken"
 * (sc_cidr_set_broken()); an allow whose CIDR holds a broken prefix allows
 * nothing of it, a deny whose CIDR holds one denies everything its ports
 * say (identity 0). Both are counted in the endpoint's not-enforced peers,
 * logged, and shown by status.
 */
#ifndef AXON_POLICY_CIDR_H
#define AXON_POLICY_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <linux/types.h>

#include "axon/ipcache.h"
#include "htable.h"
#include "policy/labels.h"
#include "policy/rules.h"
#include "policy/selector_cache.h"

/* Prefixes given an identity at most (the ipcache holds IPCACHE_MAX). */
#define CIDR_IDS_MAX 65536

struct cidr_prefix {
	struct policy_cidr prefix; /* IPv4, host bits zero */
	__u32 id;		   /* 0: none could be given */
	bool used;		   /* named by a policy at the last sync */
	bool restored;		   /* read back from the ipcache, not synced yet */
	bool in_sc;		   /* set in the selector cache */
	int err;		   /* the ipcache write's error, 0 when written */
	bool written;		   /* the ipcache holds it */
	char text[32];		   /* "cidr:10.0.0.0/8" ... */
	struct policy_label labels[2];
	struct label_set set;
};

struct cidr_ids {
	struct cidr_prefix **v; /* sorted by address, then length */
	size_t n, cap;
	struct htable by_id; /* __u32 id -> struct cidr_prefix: the numbers in use */
	__u32 max;	     /* identities at most */
	__u32 last;	     /* the last number given */
	uint64_t revision;   /* bumped when a prefix or its identity changes */
	bool dirty;	     /* a prefix became (un)written: policies to recompute */
	unsigned int alloc_failures;
};

int cidr_ids_init(struct cidr_ids *c, __u32 max);
void cidr_ids_destroy(struct cidr_ids *c);

/* An ipcache entry of a previous run: prefix keeps id. 0, -EEXIST when the
 * prefix or the number is taken, -EINVAL out of range, -ENOMEM. */
int cidr_ids_restore(struct cidr_ids *c, __be32 addr, __u8 len, __u32 id);

/* The prefixes the policies name now: new ones get an identity, ones no
 * longer named are released; the selector cache gets the identities and
 * the broken prefixes. Returns the number of prefixes without identity, or
 * -ENOMEM. */
int cidr_ids_sync(struct cidr_ids *c, struct selector_cache *sc, const struct policy *const *pols,
		  size_t n);

/* The ipcache writer's outcome for a prefix (0: written). */
void cidr_ids_written(struct cidr_ids *c, __be32 addr, __u8 len, int err);

const struct cidr_prefix *cidr_ids_find(const struct cidr_ids *c, __be32 addr, __u8 len);
static inline __be32 cidr_prefix_addr(const struct cidr_prefix *p)
{
	__be32 a;

	__builtin_memcpy(&a, p->prefix.addr, 4);
	return a;
}

/* For status: {"identities", "failed": [{"prefix", "identity", "error"}]}. */
cJSON *cidr_ids_status(const struct cidr_ids *c);

#endif /* AXON_POLICY_CIDR_H */
