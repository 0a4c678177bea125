// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>

#include "axon/ct.h"
#include "axon/lb.h"
#include "axon/maps.h"
#include "axon/nat.h"
#include "map_sizes.h"
#include "errmsg.h"

static const struct {
	const char *map;
	const char *flag;
	__u32 def;
	__u32 min;		/* smallest value a flag may give */
} table[MS__NR] = {
	[MS_LB4_SERVICES] = { MAP_LB4_SERVICES, "bpf-lb-service-map-max", LB4_SERVICES_MAX, 16 },
	[MS_LB4_BACKENDS] = { MAP_LB4_BACKENDS, "bpf-lb-service-backend-map-max",
			      LB4_BACKENDS_MAX, 16 },
	[MS_LB4_REVERSE_NAT] = { MAP_LB4_REVERSE_NAT, "bpf-lb-rev-nat-map-max",
				 LB4_REVERSE_NAT_MAX, 16 },
	[MS_LB4_AFFINITY] = { MAP_LB4_AFFINITY, "bpf-lb-affinity-map-max", LB4_AFFINITY_MAX, 16 },
	[MS_LB4_MAGLEV] = { MAP_LB4_MAGLEV, "bpf-lb-maglev-map-max", LB4_MAGLEV_MAX, 16 },
	[MS_LB4_SOCK_REV] = { MAP_LB4_SOCK_REV, "bpf-sock-rev-map-max", LB4_SOCK_REV_MAX, 16 },
	[MS_CT4_TCP] = { MAP_CT4_TCP, "bpf-ct-global-tcp-max", CT4_TCP_MAX, MAP_SIZE_LIMIT_MIN },
	[MS_CT4_ANY] = { MAP_CT4_ANY, "bpf-ct-global-any-max", CT4_ANY_MAX, MAP_SIZE_LIMIT_MIN },
	[MS_NAT4] = { MAP_NAT4, "bpf-nat-global-max", NAT4_MAX, MAP_SIZE_LIMIT_MIN },
};

/* Floors of derived sizes (Cilium's limitTableAuto*Min). */
#define DYN_MIN_CT_TCP		(1u << 17)
#define DYN_MIN_CT_ANY		(1u << 16)
#define DYN_MIN_NAT		(1u << 17)
#define DYN_MIN_SOCK_REV	(1u << 16)

#define CT_ELEM		(sizeof(struct ct4_key) + sizeof(struct ct4_entry))
#define NAT_ELEM	(sizeof(struct nat4_key) + sizeof(struct nat4_entry))
#define SOCK_REV_ELEM	(sizeof(struct lb4_sock_rev_key) + sizeof(struct lb4_sock_rev_value))


/* def's share of the memory, as def's share of the defaults' cost. */
static __u32 derived(__u32 def, __u32 min, uint64_t avail, uint64_t default_cost)
{
	/* 128-bit: def (2^19) x avail (2^40 and up) overflows 64 bits. */
	unsigned __int128 n = (unsigned __int128)def * avail / default_cost;

	if (n < min)
		return min;
	if (n > MAP_SIZE_LIMIT_MAX)
		return MAP_SIZE_LIMIT_MAX;
	return (__u32)n;
}

int map_sizes_resolve(const struct map_size_flags *f, uint64_t total_memory,
		      struct map_sizes *out, char *err, size_t errlen)
{
	static const enum map_size_id lb_shared[] = { MS_LB4_SERVICES, MS_LB4_BACKENDS,
						      MS_LB4_REVERSE_NAT, MS_LB4_AFFINITY };
	double ratio = f->dynamic_ratio;

	memset(out, 0, sizeof(*out));
	if (ratio < 0 || ratio > 1 || ratio != ratio)
		return errmsg_invalid(err, errlen, "--bpf-map-dynamic-size-ratio: %g must be in (0, 1], "
				      "or 0 for off", ratio);
	for (int i = 0; i < MS__NR; i++)
		out->max[i] = table[i].def;
	/* --bpf-lb-map-max sizes the LB maps not given their own size (Cilium). */
	if (f->lb_map_max) {
		for (size_t i = 0; i < sizeof(lb_shared) / sizeof(lb_shared[0]); i++) {
			out->max[lb_shared[i]] = f->lb_map_max;
			out->source[lb_shared[i]] = MS_SRC_FLAG;
		}
	}
	if (ratio > 0) {
		uint64_t avail = (uint64_t)((double)total_memory * ratio);
		uint64_t cost = (uint64_t)CT4_TCP_MAX * CT_ELEM + (uint64_t)CT4_ANY_MAX * CT_ELEM +
				(uint64_t)NAT4_MAX * NAT_ELEM +
				(uint64_t)LB4_SOCK_REV_MAX * SOCK_REV_ELEM;

		if (!total_memory)
			return errmsg_invalid(err, errlen, "--bpf-map-dynamic-size-ratio: the node's memory "
					      "is unknown; give the map sizes explicitly");
		out->total_memory = total_memory;
		out->dynamic_ratio = ratio;
		out->max[MS_CT4_TCP] = derived(CT4_TCP_MAX, DYN_MIN_CT_TCP, avail, cost);
		out->max[MS_CT4_ANY] = derived(CT4_ANY_MAX, DYN_MIN_CT_ANY, avail, cost);
		out->max[MS_NAT4] = derived(NAT4_MAX, DYN_MIN_NAT, avail, cost);
		out->max[MS_LB4_SOCK_REV] = derived(LB4_SOCK_REV_MAX, DYN_MIN_SOCK_REV, avail, cost);
		out->source[MS_CT4_TCP] = out->source[MS_CT4_ANY] = MS_SRC_DYNAMIC;
		out->source[MS_NAT4] = out->source[MS_LB4_SOCK_REV] = MS_SRC_DYNAMIC;
	}
	/* Explicit flags win over everything. */
	for (int i = 0; i < MS__NR; i++) {
		if (!f->max[i])
			continue;
		if (f->max[i] < table[i].min || f->max[i] > MAP_SIZE_LIMIT_MAX)
			return errmsg_invalid(err, errlen, "--%s: %u must be in %u..%u", table[i].flag,
					      f->max[i], table[i].min, MAP_SIZE_LIMIT_MAX);
		out->max[i] = f->max[i];
		out->source[i] = MS_SRC_FLAG;
	}
	/* A NAT pair belongs to a conntrack entry: more NAT than conntrack
	 * entries can never be used. A derived NAT size is capped; an explicit
	 * one is an error. */
	if (out->max[MS_NAT4] > (uint64_t)out->max[MS_CT4_TCP] + out->max[MS_CT4_ANY]) {
		if (out->source[MS_NAT4] == MS_SRC_FLAG)
			return errmsg_invalid(err, errlen, "--bpf-nat-global-max: %u must not exceed the "
					      "conntrack maps together (%u)", out->max[MS_NAT4],
					      out->max[MS_CT4_TCP] + out->max[MS_CT4_ANY]);
		out->max[MS_NAT4] = (__u32)(((uint64_t)out->max[MS_CT4_TCP] +
					     out->max[MS_CT4_ANY]) * 2 / 3);
	}
	return 0;
}

__u32 map_sizes_for(const struct map_sizes *s, const char *name)
{
	if (!s)
		return 0;
	for (int i = 0; i < MS__NR; i++)
		if (!strcmp(table[i].map, name))
			return s->max[i];
	return 0;
}

const char *map_size_map_name(enum map_size_id id)
{
	return id < MS__NR ? table[id].map : "?";
}

const char *map_size_flag_name(enum map_size_id id)
{
	return id < MS__NR ? table[id].flag : "?";
}

const char *map_size_source_name(enum map_size_source src)
{
	switch (src) {
	case MS_SRC_FLAG:	return "flag";
	case MS_SRC_DYNAMIC:	return "dynamic";
	default:		return "default";
	}
}

uint64_t map_sizes_total_memory(void)
{
	struct sysinfo si;

	if (sysinfo(&si))
		return 0;
	return (uint64_t)si.totalram * si.mem_unit;
}
