// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "map_count.h"

/* The kernel's "operation not supported" for maps (not in the uapi headers). */
#ifndef ENOTSUPP
#define ENOTSUPP 524
#endif

/* Bytes of keys and values one batch call may copy out. */
#define BATCH_BYTES	(4u << 20)
#define BATCH_MAX	4096u

bool map_type_countable(__u32 type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_LPM_TRIE:
		return true;
	default:
		return false;
	}
}

static bool percpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/* -EOPNOTSUPP when the map has no batch lookup; else the count or -errno. */
static long count_batched(int fd, const struct bpf_map_info *info)
{
	size_t value_len = info->value_size, per;
	unsigned char *keys = NULL, *values = NULL;
	__u64 cursor[2] = {}, next[2] = {};	/* a bucket index for hash maps */
	bool first = true;
	long n = 0;

	if (percpu(info->type)) {
		int cpus = libbpf_num_possible_cpus();

		if (cpus <= 0)
			return cpus ? cpus : -EINVAL;
		value_len = ((value_len + 7) & ~(size_t)7) * cpus;
	}
	per = BATCH_BYTES / (info->key_size + value_len);
	if (per > BATCH_MAX)
		per = BATCH_MAX;
	if (per < 64)
		per = 64;	/* a bucket holds more than one entry */
	keys = malloc(per * info->key_size);
	values = malloc(per * value_len);
	if (!keys || !values) {
		n = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 count = per;
		int err;

		err = bpf_map_lookup_batch(fd, first ? NULL : cursor, next, keys, values, &count,
					   NULL);
		err = err ? -errno : 0;
		if (err && err != -ENOENT) {
			/* Never got going: the map has no batch ops. ENOSPC: a
			 * bucket longer than the batch; both walk key by key. */
			n = first && (err == -EINVAL || err == -ENOTSUPP || err == -EOPNOTSUPP ||
				      err == -ENOSPC) ? -EOPNOTSUPP : err;
			if (!first && err == -ENOSPC)
				n = -EOPNOTSUPP;
			goto out;
		}
		n += count;
		if (err == -ENOENT)
			break;
		memcpy(cursor, next, sizeof(cursor));
		first = false;
	}
out:
	free(keys);
	free(values);
	return n;
}

static long count_by_key(int fd, const struct bpf_map_info *info)
{
	unsigned char *key = malloc(info->key_size), *next = malloc(info->key_size);
	unsigned long limit = 2ul * info->max_entries + 1;
	void *prev = NULL;
	long n = 0;

	if (!key || !next) {
		free(key);
		free(next);
		return -ENOMEM;
	}
	while ((unsigned long)n < limit && !bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, info->key_size);
		prev = key;
		n++;
	}
	free(key);
	free(next);
	return n;
}

long map_count_entries(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	long n;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (!map_type_countable(info.type))
		return -EOPNOTSUPP;
	n = info.type == BPF_MAP_TYPE_LPM_TRIE ? -EOPNOTSUPP : count_batched(fd, &info);
	if (n == -EOPNOTSUPP)
		n = count_by_key(fd, &info);
	if (n > (long)info.max_entries)
		n = info.max_entries;
	return n;
}
