/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maglev lookup tables (Eisenbud et al., NSDI 2016, section 3.4): each
 * backend has a permutation of the M table slots derived from two hashes of
 * its identity (offset, skip); backends take turns claiming their next
 * preferred free slot until the table is full. Every backend gets M/N slots
 * give or take one, and removing a backend moves few slots of the others, so
 * flows keep their backend when the set changes.
 *
 * A backend's identity for hashing is its address, port and protocol, not
 * its id, and backends are taken in that order: the same backend set gives
 * the same table in every agent and across restarts.
 */
#ifndef AXON_LB_MAGLEV_H
#define AXON_LB_MAGLEV_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

struct maglev_backend {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u32 id;		/* what the table holds */
};

/* Fill table[0..m-1] (m prime) with the ids of backends[0..n-1]; n >= 1.
 * Returns 0, -EINVAL (n == 0 or m < 2) or -ENOMEM. */
int maglev_fill(const struct maglev_backend *backends, size_t n, __u32 *table, __u32 m);

/* A digest of a table, to tell whether a pinned table needs rewriting. */
uint64_t maglev_digest(const __u32 *table, __u32 m);

#endif /* AXON_LB_MAGLEV_H */
