// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>

#include "axon/maps.h"
#include "map_ops.h"

static const char *const map_names[] = {
	MAP_LB4_SERVICES, MAP_LB4_BACKENDS, MAP_LB4_REVERSE_NAT, MAP_LB4_MAGLEV,
	MAP_ENDPOINTS,	  MAP_IPCACHE,	    MAP_CT4_TCP,	 MAP_CT4_ANY,
	MAP_NAT4,	  MAP_LB4_SOURCE_RANGE, "other",
};

#define N_MAPS (sizeof(map_names) / sizeof(map_names[0]))

static const char *const op_names[MAP_OP__NR] = {
	[MAP_OP_UPDATE] = "update",
	[MAP_OP_DELETE] = "delete",
};

static uint64_t counters[N_MAPS][MAP_OP__NR][2];	/* [..][0]: success, [1]: fail */
static uint64_t batches[N_MAPS][2];

static size_t map_index(const char *name)
{
	size_t i;

	for (i = 0; i < N_MAPS - 1; i++)
		if (!strcmp(map_names[i], name))
			break;
	return i;
}

void map_ops_count_n(const char *name, enum map_op op, int err, uint64_t n)
{
	if (op >= MAP_OP__NR || !n)
		return;
	if (op == MAP_OP_DELETE && err == -ENOENT)
		err = 0;
	__atomic_fetch_add(&counters[map_index(name)][op][err ? 1 : 0], n, __ATOMIC_RELAXED);
}

void map_ops_count(const char *name, enum map_op op, int err)
{
	map_ops_count_n(name, op, err, 1);
}

void map_ops_count_batch(const char *name, int err)
{
	__atomic_fetch_add(&batches[map_index(name)][err ? 1 : 0], 1, __ATOMIC_RELAXED);
}

void map_ops_visit(map_ops_visit_fn fn, void *ctx)
{
	for (size_t i = 0; i < N_MAPS; i++)
		for (int op = 0; op < MAP_OP__NR; op++)
			for (int o = 0; o < 2; o++) {
				uint64_t v = __atomic_load_n(&counters[i][op][o],
							     __ATOMIC_RELAXED);

				if (v)
					fn(ctx, map_names[i], op_names[op],
					   o ? "fail" : "success", v);
			}
}

void map_batches_visit(map_batches_visit_fn fn, void *ctx)
{
	for (size_t i = 0; i < N_MAPS; i++)
		for (int o = 0; o < 2; o++) {
			uint64_t v = __atomic_load_n(&batches[i][o], __ATOMIC_RELAXED);

			if (v)
				fn(ctx, map_names[i], o ? "fail" : "success", v);
		}
}
