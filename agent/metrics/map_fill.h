/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Size and fill of every pinned map, for `agentctl status` and the pressure
 * metric, counted from the maps themselves (lib/map_count.h), not from what
 * the agent believes it wrote: conntrack, NAT and the other maps the datapath
 * fills are counted the same way as the ones the agent fills.
 *
 * Counts are cached: a map is walked again when its count is older than
 * max(1 s, 50 x its last walk's duration), so a reader never sees a count
 * more than a second old on a small map, and walking a large full map costs
 * at most about 2% of a CPU however often status or Prometheus ask. Both the
 * agent's thread (status) and the metrics thread (scrapes) read it; one
 * mutex. The cache holds fds of its own (opened from the pins), so it does not
 * depend on the loader's skeletons, which are replaced on a reload.
 */
#ifndef AXON_METRICS_MAP_FILL_H
#define AXON_METRICS_MAP_FILL_H

#include <pthread.h>
#include <stdint.h>
#include <linux/types.h>

#include "datapath/loader.h"

#define MAP_FILL_MAX		24
#define MAP_FILL_MIN_AGE_MS	1000
#define MAP_FILL_COST_FACTOR	50

struct map_fill_row {
	char name[32];
	__u32 type;
	__u32 max_entries;
	__u32 configured;	/* what the flags asked for; 0: not sized by flags */
	long entries;		/* -errno when not counted (-EOPNOTSUPP: no fill) */
	uint64_t counted_ms;	/* CLOCK_MONOTONIC of the count; 0: never */
	uint32_t walk_us;	/* what the last count cost */
};

struct map_fill {
	pthread_mutex_t lock;
	int fd[MAP_FILL_MAX];
	struct map_fill_row row[MAP_FILL_MAX];
	int n;
};

/* Open every map of maps[] from its pin under bpf_root. */
int map_fill_open(struct map_fill *mf, const char *bpf_root, const struct map_info_row *maps,
		  int n);
/* Recount what is stale, then copy every row into out (up to max). Returns
 * the number of rows. */
int map_fill_read(struct map_fill *mf, struct map_fill_row *out, int max);
void map_fill_close(struct map_fill *mf);

#endif /* AXON_METRICS_MAP_FILL_H */
