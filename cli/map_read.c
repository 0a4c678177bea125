// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "cli.h"
#include "map_read.h"
#include "pin.h"

int cli_map_open(const char *name, __u32 key_size, __u32 value_size, int *fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[4096];
	int ret;

	if (pin_map_path(path, sizeof(path), cli.bpf_root, name))
		return cli_error("--bpf-root %s: path too long", cli.bpf_root);
	ret = pin_map_open(cli.bpf_root, name);
	if (ret == -ENOENT)
		return cli_error("%s: not found (is the agent running with --bpf-root %s?)", path,
				 cli.bpf_root);
	if (ret < 0)
		return cli_error("%s: %s", path, strerror(-ret));
	if (bpf_obj_get_info_by_fd(ret, &info, &len)) {
		int err = errno;

		close(ret);
		return cli_error("%s: cannot read map info: %s", path, strerror(err));
	}
	/* Sizes are the ABI between the agent that pinned and this binary. */
	if (info.key_size != key_size || info.value_size != value_size) {
		close(ret);
		return cli_error("%s: key/value size %u/%u, this agentctl expects %u/%u (agent and "
				 "agentctl from different builds?)", path, info.key_size,
				 info.value_size, key_size, value_size);
	}
	*fd = ret;
	return 0;
}

int map_dump_read(int fd, size_t key_size, size_t value_len, struct map_dump *d)
{
	unsigned char *key = malloc(key_size), *next = malloc(key_size);
	size_t cap = 0;
	void *prev = NULL;
	int ret = 0;

	memset(d, 0, sizeof(*d));
	d->key_size = key_size;
	d->value_len = value_len;
	if (!key || !next) {
		ret = -ENOMEM;
		goto cleanup;
	}
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, key_size);
		prev = key;
		if (d->n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			unsigned char *k = realloc(d->keys, ncap * key_size);
			unsigned char *v;

			if (k)
				d->keys = k;
			v = k ? realloc(d->values, ncap * value_len) : NULL;
			if (!v) {
				ret = -ENOMEM;
				goto cleanup;
			}
			d->values = v;
			cap = ncap;
		}
		if (bpf_map_lookup_elem(fd, key, map_dump_value(d, d->n)))
			continue;	/* deleted since we listed it */
		memcpy(map_dump_key(d, d->n), key, key_size);
		d->n++;
	}
	if (errno != ENOENT)
		ret = -errno;
cleanup:
	free(key);
	free(next);
	if (ret)
		map_dump_free(d);
	return ret;
}

/* qsort() has no context argument: sort an index, then permute. */
static int (*sort_cmp)(const void *, const void *);
static const struct map_dump *sort_dump;

static int index_cmp(const void *a, const void *b)
{
	return sort_cmp(map_dump_key(sort_dump, *(const size_t *)a),
			map_dump_key(sort_dump, *(const size_t *)b));
}

void map_dump_sort(struct map_dump *d, int (*cmp)(const void *ka, const void *kb))
{
	size_t *idx = malloc(d->n * sizeof(*idx) + 1);
	unsigned char *keys = malloc(d->n * d->key_size + 1);
	unsigned char *values = malloc(d->n * d->value_len + 1);

	if (!idx || !keys || !values)
		goto cleanup;	/* unsorted output beats none */
	for (size_t i = 0; i < d->n; i++)
		idx[i] = i;
	sort_cmp = cmp;
	sort_dump = d;
	qsort(idx, d->n, sizeof(*idx), index_cmp);
	for (size_t i = 0; i < d->n; i++) {
		memcpy(keys + i * d->key_size, map_dump_key(d, idx[i]), d->key_size);
		memcpy(values + i * d->value_len, map_dump_value(d, idx[i]), d->value_len);
	}
	free(d->keys);
	free(d->values);
	d->keys = keys;
	d->values = values;
	keys = values = NULL;
cleanup:
	free(idx);
	free(keys);
	free(values);
}

void map_dump_free(struct map_dump *d)
{
	free(d->keys);
	free(d->values);
	d->keys = d->values = NULL;
	d->n = 0;
}

int cli_map_list(const char *name, __u32 key_size, __u32 value_size,
		 int (*cmp)(const void *ka, const void *kb), map_entry_json_fn to_json,
		 const void *ctx, void (*text)(const cJSON *doc))
{
	struct map_dump d;
	cJSON *arr;
	int fd, ret;

	ret = cli_map_open(name, key_size, value_size, &fd);
	if (ret)
		return ret;
	ret = map_dump_read(fd, key_size, value_size, &d);
	close(fd);
	if (ret)
		return cli_error("reading %s: %s", name, strerror(-ret));
	map_dump_sort(&d, cmp);
	arr = cJSON_CreateArray();
	for (size_t i = 0; i < d.n; i++)
		cJSON_AddItemToArray(arr, to_json(map_dump_key(&d, i), map_dump_value(&d, i), ctx));
	map_dump_free(&d);
	return cli_print(arr, text);
}

long map_flush(int fd, size_t key_size)
{
	unsigned char *keys = NULL, *key = malloc(key_size);
	size_t n = 0, cap = 0;
	void *prev = NULL;
	long deleted = 0;

	if (!key)
		return -ENOMEM;
	while (!bpf_map_get_next_key(fd, prev, key)) {
		if (n == cap) {
			unsigned char *p;

			cap = cap ? cap * 2 : 1024;
			p = realloc(keys, cap * key_size);
			if (!p) {
				deleted = -ENOMEM;
				goto cleanup;
			}
			keys = p;
		}
		memcpy(keys + n * key_size, key, key_size);
		prev = keys + n * key_size;
		n++;
	}
	for (size_t i = 0; i < n; i++)
		if (!bpf_map_delete_elem(fd, keys + i * key_size))
			deleted++;
cleanup:
	free(key);
	free(keys);
	return deleted;
}

__u64 mono_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}
