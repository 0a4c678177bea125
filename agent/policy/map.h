/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One endpoint's network policy into its trie (layout in
 * include/axon/policy.h). The policy engine computes the whole set of
 * entries an endpoint needs; policy_map_set() makes the endpoint's trie hold
 * exactly that set and writes only what differs, so the entries that stay
 * keep their counters and the datapath never sees a half-written policy more
 * permissive than the old one or the new one.
 *
 * Contract of policy_map_set(pm, id, entries, n, res):
 * - Entries are validated first; an invalid one (a direction other than
 *   POLICY_DIR_*, a port without a protocol, port_prefix above 16, port bits
 *   beyond port_prefix) is -EINVAL, res->bad its index, nothing written.
 *   id 0 is -EINVAL (the datapath never has a map there).
 * - The same key twice: one entry, a deny if either is. An allow under a
 *   deny of the same identity and direction whose protocol-and-port range
 *   contains it is left out (res->shadowed): the trie returns the longest
 *   match only, and that allow would hide the deny (Cilium's deny
 *   precedence). Proxy port and auth type are written 0 (neither L7
 *   redirect nor mutual authentication is supported).
 * - More entries than pm->map_max: -ENOSPC, the endpoint's trie untouched
 *   (it keeps its old policy). Per endpoint: other endpoints are unaffected.
 * - No trie yet: one is created (pm->map_max entries) with the set and put
 *   in the endpoint's slot. Otherwise the trie is diffed and written in
 *   place, in an order where every intermediate state is at least as
 *   restrictive as the new policy or the old one: stale allows deleted, new
 *   and changed denies written, stale denies deleted, new and changed allows
 *   written. An entry whose value changes is rewritten (its counters start
 *   again); unchanged entries are not touched. When the trie has another
 *   size than pm->map_max, or the transition would need more room than it
 *   has, a new trie is filled instead (unchanged entries' counters copied)
 *   and swapped into the slot in one update (res->replaced).
 * - Returns 0, -EINVAL, -ENOSPC (also when the trie fills midway, which
 *   only a concurrent writer can cause: what was written by then is never
 *   more permissive than the old policy), or another -errno from the kernel.
 *
 * policy_map_update(pm, id, real, entries, n, res): the same, against what
 * the reconciler keeps of the trie in memory (*real: its entries, sorted)
 * instead of reading the trie: the trie is read once, when *real is not
 * known yet (at start, the pinned map being the truth, or after a failed
 * write), and nothing is written, nor any syscall made, when the new set
 * equals *real. On success *real is the new set; on failure it is dropped
 * (known false), so the next update reads the trie again. Counters of
 * unchanged entries are read from the trie when a new one is swapped in.
 *
 * policy_map_delete(): the endpoint's slot emptied (the trie goes with its
 * last reference); 0 also when there was none. A still enforced endpoint
 * then denies everything.
 */
#ifndef AXON_POLICY_MAP_H
#define AXON_POLICY_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "axon/policy.h"

struct policy_maps {
	int outer_fd;  /* the pinned "policy" array of maps (not owned) */
	__u32 map_max; /* entries per endpoint trie: --bpf-policy-map-max */
};

/* One entry as the engine states it. */
struct policy_map_entry {
	__u32 identity;	  /* remote identity; 0: any */
	__u8 dir;	  /* POLICY_DIR_INGRESS / POLICY_DIR_EGRESS */
	__u8 proto;	  /* IPPROTO_*; 0: any protocol (port and port_prefix 0) */
	__u16 port;	  /* host order: the range's first port (ICMP: the type) */
	__u8 port_prefix; /* leading bits of port that must match: 16 one port,
			   * 13 eight (8080/13: 8080-8087), 0 any port */
	bool deny;
};

/* What policy_map_set() did. */
struct policy_map_result {
	unsigned int added, updated, deleted, unchanged;
	unsigned int shadowed; /* allows left out under a deny */
	bool replaced;	       /* a new trie was swapped in */
	size_t bad;	       /* -EINVAL: index of the first invalid entry */
};

/* One trie entry as written: its key and its value's verdict (the
 * counters are the datapath's). */
struct policy_map_slot {
	struct policy_key k;
	__be16 proxy_port;
	__u8 flags;
	__u8 auth_type;
	__u8 lpm_prefix_length;
};

/* What an endpoint's trie holds, as far as its writer knows. */
struct policy_map_realized {
	struct policy_map_slot *slots; /* sorted by key (map.c: slot_cmp) */
	size_t n;
	__u32 max_entries; /* the trie's size */
	bool known;	   /* false: read the trie first */
	bool exists;	   /* the slot has a trie */
};

void policy_maps_init(struct policy_maps *pm, int outer_fd, __u32 map_max);

int policy_map_set(const struct policy_maps *pm, __u16 id, const struct policy_map_entry *entries,
		   size_t n, struct policy_map_result *res);

int policy_map_update(const struct policy_maps *pm, __u16 id, struct policy_map_realized *real,
		      const struct policy_map_entry *entries, size_t n,
		      struct policy_map_result *res);
void policy_map_realized_free(struct policy_map_realized *real);

int policy_map_delete(const struct policy_maps *pm, __u16 id);

#endif /* AXON_POLICY_MAP_H */
