// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "map_count.h"
#include "map_fill.h"
#include "pin.h"

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int map_fill_open(struct map_fill *mf, const char *bpf_root, const struct map_info_row *maps,
		  int n)
{
	memset(mf, 0, sizeof(*mf));
	pthread_mutex_init(&mf->lock, NULL);
	for (int i = 0; i < n && mf->n < MAP_FILL_MAX; i++) {
		struct map_fill_row *r = &mf->row[mf->n];
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		int fd = pin_map_open(bpf_root, maps[i].name);

		if (fd < 0)
			continue;	/* not pinned (internal): nothing to show */
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			close(fd);
			continue;
		}
		snprintf(r->name, sizeof(r->name), "%s", maps[i].name);
		r->type = info.type;
		r->max_entries = info.max_entries;
		r->configured = maps[i].configured;
		r->entries = map_type_countable(info.type) ? -EAGAIN : -EOPNOTSUPP;
		mf->fd[mf->n++] = fd;
	}
	return 0;
}

static bool stale(const struct map_fill_row *r, uint64_t now_us)
{
	uint64_t age_ms = r->counted_ms ? now_us / 1000 - r->counted_ms : UINT64_MAX;
	uint64_t max_age = (uint64_t)r->walk_us * MAP_FILL_COST_FACTOR / 1000;

	if (max_age < MAP_FILL_MIN_AGE_MS)
		max_age = MAP_FILL_MIN_AGE_MS;
	return r->entries != -EOPNOTSUPP && age_ms >= max_age;
}

int map_fill_read(struct map_fill *mf, struct map_fill_row *out, int max)
{
	int n;

	pthread_mutex_lock(&mf->lock);
	for (int i = 0; i < mf->n; i++) {
		struct map_fill_row *r = &mf->row[i];
		uint64_t t0 = mono_us(), t1;

		if (!stale(r, t0))
			continue;
		r->entries = map_count_entries(mf->fd[i]);
		t1 = mono_us();
		r->walk_us = t1 - t0;
		r->counted_ms = t1 / 1000;
	}
	n = mf->n < max ? mf->n : max;
	memcpy(out, mf->row, n * sizeof(*out));
	pthread_mutex_unlock(&mf->lock);
	return n;
}

void map_fill_close(struct map_fill *mf)
{
	for (int i = 0; i < mf->n; i++)
		close(mf->fd[i]);
	mf->n = 0;
	pthread_mutex_destroy(&mf->lock);
}
