/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * How many entries each sized map gets: an explicit flag, else a size derived
 * from the node's memory (--bpf-map-dynamic-size-ratio, Cilium's formula),
 * else the default in include/axon/{maps,ct,nat}.h.
 *
 * The formula (Cilium's pkg/maps/mapsize): the ratio of total memory is
 * shared among the conntrack, NAT and socket reverse-NAT maps in proportion to
 * what their defaults cost (entries x (key + value) bytes), each clamped to
 * [its floor, 16Mi]; NAT is capped at 2/3 of both conntrack maps together
 * when that is smaller. Cilium also counts its neighbour map in the sum; Axon
 * has none, so the same memory goes to the maps it has. The LB maps are not
 * derived (nor are they in Cilium): --bpf-lb-map-max and the per-map flags.
 *
 * map_sizes_resolve() is pure (memory is an argument) so it is unit-tested;
 * it returns 0, or -EINVAL with one line naming the flag in err.
 */
#ifndef AXON_MAP_SIZES_H
#define AXON_MAP_SIZES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

enum map_size_id {
	MS_LB4_SERVICES = 0,
	MS_LB4_BACKENDS,
	MS_LB4_REVERSE_NAT,
	MS_LB4_AFFINITY,
	MS_LB4_MAGLEV,
	MS_LB4_SOCK_REV,
	MS_CT4_TCP,
	MS_CT4_ANY,
	MS_NAT4,
	MS__NR,
};

/* What the flags asked for; 0 = not given. */
struct map_size_flags {
	__u32 max[MS__NR];
	__u32 lb_map_max;		/* --bpf-lb-map-max: the LB maps not given alone */
	double dynamic_ratio;		/* (0, 1]; 0 = off */
};

enum map_size_source {
	MS_SRC_DEFAULT = 0,
	MS_SRC_FLAG,
	MS_SRC_DYNAMIC,
};

struct map_sizes {
	__u32 max[MS__NR];
	enum map_size_source source[MS__NR];
	uint64_t total_memory;		/* bytes the dynamic sizes were derived from */
	double dynamic_ratio;
};

/* Cilium's clamps for derived sizes. */
#define MAP_SIZE_LIMIT_MIN	(1u << 10)
#define MAP_SIZE_LIMIT_MAX	(1u << 24)

int map_sizes_resolve(const struct map_size_flags *f, uint64_t total_memory,
		      struct map_sizes *out, char *err, size_t errlen);

/* Entries for the map pinned as @name, or 0 for a map not sized here (the
 * BPF object's own max_entries stands). s may be NULL: 0 for every map. */
__u32 map_sizes_for(const struct map_sizes *s, const char *name);

/* The map's pin name and the flag that sets it. */
const char *map_size_map_name(enum map_size_id id);
const char *map_size_flag_name(enum map_size_id id);
const char *map_size_source_name(enum map_size_source src);

/* The node's total memory in bytes (sysinfo), 0 if unknown. */
uint64_t map_sizes_total_memory(void);

#endif /* AXON_MAP_SIZES_H */
