/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * An in-memory stand-in for the three LB maps with a log of every operation,
 * a capacity per map (to test "map full"), and a consistency check that
 * plays the datapath's part: after every single operation, every service
 * entry's slots 1..count must point at backends that exist, and a Maglev
 * service's table must exist and name only backends that exist.
 * A batched update applies its elements one at a time, each checked so.
 */
#ifndef AXON_TEST_FAKE_MAPS_H
#define AXON_TEST_FAKE_MAPS_H

#include <stdbool.h>
#include <stddef.h>

#include "axon/lb.h"
#include "lb/reconcile.h"

#define FAKE_MAX_ENTRIES 4096
#define FAKE_LOG_MAX 8192
#define FAKE_MAGLEV_MAX 32	/* Maglev tables (64 KiB each) */

struct fake_entry {
	bool used;
	_Alignas(8) unsigned char key[16];
	_Alignas(8) unsigned char value[16];
};

struct fake_op {
	char op;		/* 'U' or 'D' */
	enum lb_map_id map;
	_Alignas(8) unsigned char key[16];
};

struct fake_maps {
	struct fake_entry e[LB_MAP__NR][FAKE_MAX_ENTRIES];
	size_t capacity[LB_MAP__NR];
	size_t n_ops;
	struct fake_op log[FAKE_LOG_MAX];
	int inconsistencies;	/* readers would have seen a bad slot */
	int fail_next;		/* -errno for the next update, once */
	int fail_map_next;	/* ... and only on this map (with fail_map_set) */
	bool fail_map_set;
	/* Batched updates: calls made; the next batch on batch_fail_map stops
	 * at element batch_fail_at with batch_fail_err (once); batch_refuse
	 * makes every batch answer it without writing (a kernel without them). */
	size_t n_batches;
	size_t n_delete_batches;	/* delete_batch calls */
	int batch_fail_err;
	size_t batch_fail_at;
	enum lb_map_id batch_fail_map;
	int batch_refuse;
	/* Values of LB_MAP_MAGLEV, by the index of their entry in e[]. */
	struct lb4_maglev_table maglev[FAKE_MAGLEV_MAX];
};

extern const struct lb_map_ops fake_ops;

void fake_init(struct fake_maps *f, size_t capacity);
size_t fake_count(const struct fake_maps *f, enum lb_map_id map);
const void *fake_lookup(const struct fake_maps *f, enum lb_map_id map, const void *key);
size_t fake_ops_count(const struct fake_maps *f, char op, enum lb_map_id map);

#endif /* AXON_TEST_FAKE_MAPS_H */
