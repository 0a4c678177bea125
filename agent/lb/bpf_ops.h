/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The reconciler's map operations on real BPF maps (by fd). */
#ifndef AXON_LB_BPF_OPS_H
#define AXON_LB_BPF_OPS_H

#include "reconcile.h"

struct lb_bpf_maps {
	int fd[LB_MAP__NR];
};

extern const struct lb_map_ops lb_bpf_ops;

#endif /* AXON_LB_BPF_OPS_H */
