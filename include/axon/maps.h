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

/* Default capacities (entries). Cilium's defaults for the same maps. */
#define LB4_SERVICES_MAX	65536
#define LB4_BACKENDS_MAX	65536
#define LB4_REVERSE_NAT_MAX	65536
#define LB4_SOCK_REV_MAX	262144
#define METRICS_MAX		1024

#endif /* AXON_MAPS_H */
