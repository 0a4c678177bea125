// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The endpoints reconciler's full pass (reconcile.h): the ipcache and
 * endpoints maps read back and compared with the mirror. Keys found as the
 * mirror says are noted; entries the mirror does not hold are collected and
 * deleted after the walk (deleting during it would restart get_next_key);
 * mirror entries not noted are rewritten.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reconcile.h"

struct ep_stale {
	_Alignas(8) unsigned char key[16];
};

struct ep_resync {
	struct ep_reconciler *r;
	enum ep_map_id map;
	struct htable ok;		/* keys found as the mirror says (values unused) */
	struct ep_stale *stale;
	size_t n_stale, cap_stale;
	unsigned long changed;
};

static const size_t key_size[EP_MAP__NR] = {
	[EP_MAP_IPCACHE] = sizeof(struct ipcache_key),
	[EP_MAP_ENDPOINTS] = sizeof(struct endpoint_key),
};

/* The mirror's value for a map key, or NULL. */
static const void *mirror_value(const struct ep_reconciler *r, enum ep_map_id map,
				const void *key)
{
	const struct ep_local *l;

	if (map == EP_MAP_IPCACHE)
		return ht_get(&r->ipcache, key, sizeof(struct ipcache_key));
	l = ht_get(&r->endpoints, &((const struct endpoint_key *)key)->address, sizeof(__be32));
	return l ? &l->info : NULL;
}

static const size_t value_size[EP_MAP__NR] = {
	[EP_MAP_IPCACHE] = sizeof(struct ipcache_value),
	[EP_MAP_ENDPOINTS] = sizeof(struct endpoint_info),
};

static int seen(void *ctx, const void *key, const void *value)
{
	struct ep_resync *rs = ctx;
	const void *want = mirror_value(rs->r, rs->map, key);

	if (want && rs->map == EP_MAP_ENDPOINTS) {
		/* The mirror is keyed by address only: the rest of the key must
		 * be as the agent writes it. */
		struct endpoint_key canon = { .address = ((const struct endpoint_key *)key)->address };

		if (memcmp(&canon, key, sizeof(canon)))
			want = NULL;
	}
	if (!want) {
		if (rs->n_stale == rs->cap_stale) {
			size_t cap = rs->cap_stale ? rs->cap_stale * 2 : 64;
			struct ep_stale *p = realloc(rs->stale, cap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			rs->stale = p;
			rs->cap_stale = cap;
		}
		memset(&rs->stale[rs->n_stale], 0, sizeof(rs->stale[0]));
		memcpy(rs->stale[rs->n_stale++].key, key, key_size[rs->map]);
		return 0;
	}
	if (memcmp(want, value, value_size[rs->map])) {
		rs->changed++;
		return 0;
	}
	return ht_put(&rs->ok, key, key_size[rs->map], (void *)1, NULL);
}

/* One map: returns repairs, or -errno (the first failure; the rest are
 * still tried). */
static int resync_map(struct ep_reconciler *r, enum ep_map_id map)
{
	struct ep_resync rs = { .r = r, .map = map };
	struct htable *mirror = map == EP_MAP_IPCACHE ? &r->ipcache : &r->endpoints;
	int repaired = 0, first_err = 0, err;

	err = ht_init(&rs.ok);
	if (!err)
		err = r->ops->dump(r->ops_ctx, map, seen, &rs);
	if (err) {
		pr_warn("full reconcile: cannot read map", "map=%s error=\"%s\"",
			map == EP_MAP_IPCACHE ? "ipcache" : "endpoints", strerror(-err));
		goto out;
	}
	for (struct ht_entry *e = ht_first(mirror); e; e = ht_next(mirror, e)) {
		struct endpoint_key ek;
		const void *key = e->key, *value = e->value;

		if (map == EP_MAP_ENDPOINTS) {
			const struct ep_local *l = e->value;

			ek = (struct endpoint_key){ .address = l->ip };
			key = &ek;
			value = &l->info;
		}
		if (ht_get(&rs.ok, key, key_size[map]))
			continue;
		err = r->ops->update(r->ops_ctx, map, key, value);
		if (err) {
			r->stats.errors++;
			first_err = first_err ? first_err : err;
			continue;
		}
		r->stats.updates++;
		repaired++;
	}
	for (size_t i = 0; i < rs.n_stale; i++) {
		err = r->ops->delete(r->ops_ctx, map, rs.stale[i].key);
		if (err && err != -ENOENT) {
			r->stats.errors++;
			first_err = first_err ? first_err : err;
			continue;
		}
		r->stats.deletes++;
		repaired++;
	}
	if (repaired)
		pr_warn("full reconcile repaired drift", "map=%s repaired=%d changed=%lu stale=%zu",
			map == EP_MAP_IPCACHE ? "ipcache" : "endpoints", repaired, rs.changed,
			rs.n_stale);
	err = first_err ? first_err : repaired;
out:
	ht_destroy(&rs.ok);
	free(rs.stale);
	return err;
}

int ep_reconciler_resync(struct ep_reconciler *r)
{
	int total = 0, first_err = 0;

	/* Before the first pass the mirror is what the maps held at start. */
	if (!r->ran)
		return 0;
	for (int m = 0; m < EP_MAP__NR; m++) {
		int ret = resync_map(r, m);

		if (ret < 0)
			first_err = first_err ? first_err : ret;
		else
			total += ret;
	}
	r->stats.resyncs++;
	r->stats.repairs += total;
	r->stats.last_repairs = total;
	return first_err ? first_err : total;
}
