/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Names and default sizes of every pinned map and link.
 *
 * Maps live under <bpf-root>/maps/<name>, links under <bpf-root>/links/<name>.
 * The BPF map variable carries the same name, so the loader finds a map in a
 * skeleton by the name it pins it under.
 */
#ifndef AXON_MAPS_H
#define AXON_MAPS_H

#define AXON_DEFAULT_BPF_ROOT	"/sys/fs/bpf/axon"
#define AXON_MAPS_DIR		"maps"
#define AXON_LINKS_DIR		"links"

#define MAP_LB4_SERVICES	"lb4_services"
#define MAP_LB4_BACKENDS	"lb4_backends"
#define MAP_LB4_REVERSE_NAT	"lb4_reverse_nat"
#define MAP_LB4_SOCK_REV	"lb4_sock_rev"
#define MAP_LB4_SOCK_TRACK	"lb4_sock_track"	/* sk_storage: which lb4_sock_rev keys a socket owns */
#define MAP_METRICS		"metrics"
#define MAP_LB4_AFFINITY	"lb4_affinity"	/* (client IP or netns, rev_nat_index) -> backend */
#define MAP_LB4_MAGLEV		"lb4_maglev"	/* rev_nat_index -> Maglev lookup table */
#define MAP_LB4_SOURCE_RANGE	"lb4_source_range" /* (frontend, client prefix) -> 1 */
#define MAP_ENDPOINTS		"endpoints"	/* include/axon/endpoint.h */
#define MAP_IPCACHE		"ipcache"	/* include/axon/ipcache.h */
#define MAP_CT4_TCP		"ct4_tcp"	/* include/axon/ct.h */
#define MAP_CT4_ANY		"ct4_any"
#define MAP_NAT4		"nat4"		/* include/axon/nat.h */
#define MAP_EVENTS		"events"	/* include/axon/events.h: ring buffer */
#define MAP_EVENTS_LIMIT	"events_limit"	/* per-CPU rate limiter state */
#define MAP_POLICY_EVENTS_LIMIT	"policy_events_limit"	/* the same, for policy verdicts */
#define MAP_POLICY		"policy"	/* include/axon/policy.h: endpoint id -> policy trie */

/* Default capacities (entries). Cilium's defaults for the same maps. */
#define LB4_SERVICES_MAX	65536
#define LB4_BACKENDS_MAX	65536
#define LB4_REVERSE_NAT_MAX	65536
#define LB4_SOCK_REV_MAX	262144
#define METRICS_MAX		1024
#define LB4_AFFINITY_MAX	65536
#define LB4_MAGLEV_MAX		1024	/* services with Maglev selection */
#define ENDPOINTS_MAX		65535
#define IPCACHE_MAX		512000

#endif /* AXON_MAPS_H */
