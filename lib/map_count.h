/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Counting the entries of a BPF map, for its fill in status, `agentctl map
 * list` and the pressure metric. Shared by the agent and agentctl.
 *
 * The count walks the map: there is no entry counter to read (the kernel's,
 * since 6.6, is reachable only from a BPF iterator). Hash maps are read with
 * BPF_MAP_LOOKUP_BATCH, whose cursor is a bucket index: a walk with
 * BPF_MAP_GET_NEXT_KEY restarts from the first bucket whenever the key it
 * stands on is deleted meanwhile, so on a map the datapath churns
 * (conntrack) it counts some entries many times. Maps without batch lookup
 * (LPM tries) fall back to GET_NEXT_KEY, bounded to twice max_entries steps;
 * a count is never reported above max_entries.
 *
 * Only maps addressed by key have a fill: arrays (always "full"), ring
 * buffers and socket storage answer -EOPNOTSUPP.
 */
#ifndef AXON_MAP_COUNT_H
#define AXON_MAP_COUNT_H

#include <stdbool.h>
#include <linux/types.h>

bool map_type_countable(__u32 type);

/* Entries in the map at fd, or -errno (-EOPNOTSUPP: see above). */
long map_count_entries(int fd);

#endif /* AXON_MAP_COUNT_H */
