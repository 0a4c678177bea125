/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Counters of the agent's own BPF map operations, by map, operation and
 * outcome: axon_bpf_map_ops_total{map_name, operation, outcome}.
 *
 * Counted where the reconcilers' operations reach the kernel (lb/bpf_ops.c,
 * dpsync.c's ep_bpf_ops, the conntrack GC). Lock-free (relaxed atomics): the
 * metrics thread reads them while the agent's thread counts. A delete of an
 * entry already gone (-ENOENT) is a success: it is what was asked for.
 *
 * A batched update (BPF_MAP_UPDATE_BATCH) counts one operation per element
 * the kernel processed, plus one in axon_bpf_map_batches_total{map_name,
 * outcome} for the call itself.
 */
#ifndef AXON_METRICS_MAP_OPS_H
#define AXON_METRICS_MAP_OPS_H

#include <stdint.h>

enum map_op {
	MAP_OP_UPDATE = 0,
	MAP_OP_DELETE,
	MAP_OP__NR,
};

/* Record one operation on map @name (a MAP_* name) that returned err
 * (0 or -errno). Names outside the known set are counted as "other". */
void map_ops_count(const char *name, enum map_op op, int err);
/* The same for n operations with one outcome. */
void map_ops_count_n(const char *name, enum map_op op, int err, uint64_t n);
/* Record one batched call on map @name that returned err. */
void map_ops_count_batch(const char *name, int err);

/* Visit every counter that is not zero. */
typedef void (*map_ops_visit_fn)(void *ctx, const char *map, const char *op, const char *outcome,
				 uint64_t value);
void map_ops_visit(map_ops_visit_fn fn, void *ctx);
typedef void (*map_batches_visit_fn)(void *ctx, const char *map, const char *outcome,
				     uint64_t value);
void map_batches_visit(map_batches_visit_fn fn, void *ctx);

#endif /* AXON_METRICS_MAP_OPS_H */
