// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <bpf/bpf.h>

#include "axon/lb.h"
#include "bpf_ops.h"
#include "metrics/map_ops.h"

#ifndef ENOTSUPP
#define ENOTSUPP 524	/* the kernel's answer for a map type without batch ops */
#endif

static const size_t key_size[LB_MAP__NR] = {
	[LB_MAP_SERVICES] = sizeof(struct lb4_key),
	[LB_MAP_BACKENDS] = sizeof(__u32),
	[LB_MAP_REVNAT] = sizeof(__u32),
	[LB_MAP_MAGLEV] = sizeof(__u32),
};

/* A map whose fd is negative is not there (the Maglev map exists only once
 * the tc datapath is loaded): every operation on it fails with -ENOENT. */

static int bpf_update(void *ctx, enum lb_map_id map, const void *key, const void *value)
{
	struct lb_bpf_maps *m = ctx;

	int err;

	if (m->fd[map] < 0)
		return -ENOENT;
	err = bpf_map_update_elem(m->fd[map], key, value, BPF_ANY) ? -errno : 0;
	map_ops_count(lb_map_name(map), MAP_OP_UPDATE, err);
	return err;
}

static int bpf_delete(void *ctx, enum lb_map_id map, const void *key)
{
	struct lb_bpf_maps *m = ctx;

	int err;

	if (m->fd[map] < 0)
		return -ENOENT;
	err = bpf_map_delete_elem(m->fd[map], key) ? -errno : 0;
	map_ops_count(lb_map_name(map), MAP_OP_DELETE, err);
	return err;
}

/*
 * What a batch call did, counted: the kernel writes count back only once it
 * has walked the elements (it stops at the first that fails); a call
 * refused before that (no batch op, an older kernel, no memory) leaves it
 * at n. The element at count failed, unless the call itself was refused.
 */
static int batch_result(enum lb_map_id map, enum map_op op, __u32 n, __u32 count, int err,
			__u32 *done)
{
	const char *name = lb_map_name(map);

	if (err && count >= n)
		count = 0;
	*done = count;
	map_ops_count_n(name, op, 0, count);
	if (err && err != -EINVAL && err != -ENOTSUPP && err != -EOPNOTSUPP)
		map_ops_count(name, op, err);
	map_ops_count_batch(name, err);
	return err;
}

static int bpf_update_batch(void *ctx, enum lb_map_id map, const void *keys, const void *values,
			    __u32 n, __u32 *done)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	struct lb_bpf_maps *m = ctx;
	__u32 count = n;
	int err;

	*done = 0;
	if (m->fd[map] < 0)
		return -ENOENT;
	err = bpf_map_update_batch(m->fd[map], keys, values, &count, &opts) ? -errno : 0;
	return batch_result(map, MAP_OP_UPDATE, n, count, err, done);
}

static int bpf_delete_batch(void *ctx, enum lb_map_id map, const void *keys, __u32 n,
			    __u32 *done)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct lb_bpf_maps *m = ctx;
	__u32 count = n;
	int err;

	*done = 0;
	if (m->fd[map] < 0)
		return -ENOENT;
	err = bpf_map_delete_batch(m->fd[map], keys, &count, &opts) ? -errno : 0;
	return batch_result(map, MAP_OP_DELETE, n, count, err, done);
}

static int bpf_dump(void *ctx, enum lb_map_id map, lb_dump_cb cb, void *cb_ctx)
{
	struct lb_bpf_maps *m = ctx;
	/* Aligned: callbacks read keys and values as their structs. */
	_Alignas(8) unsigned char key[32], next[32], small[32];
	unsigned char *value = small;
	void *prev = NULL;
	int err = 0;

	_Static_assert(sizeof(struct lb4_key) <= sizeof(key), "key buffer");
	_Static_assert(sizeof(struct lb4_service) <= sizeof(small), "value buffer");
	if (m->fd[map] < 0)
		return -ENOENT;
	if (map == LB_MAP_MAGLEV) {
		value = malloc(sizeof(struct lb4_maglev_table));
		if (!value)
			return -ENOMEM;
	}
	while (!bpf_map_get_next_key(m->fd[map], prev, next)) {
		prev = key;
		for (size_t i = 0; i < key_size[map]; i++)
			key[i] = next[i];
		/* Deleted between next_key and lookup: skip it. */
		if (bpf_map_lookup_elem(m->fd[map], key, value))
			continue;
		err = cb(cb_ctx, key, value);
		if (err)
			break;
	}
	if (!err && errno != ENOENT)
		err = -errno;
	if (value != small)
		free(value);
	return err;
}

const struct lb_map_ops lb_bpf_ops = {
	.update = bpf_update,
	.update_batch = bpf_update_batch,
	.delete = bpf_delete,
	.delete_batch = bpf_delete_batch,
	.dump = bpf_dump,
};
