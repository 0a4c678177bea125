// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "backoff.h"
#include "axon/lb.h"
#include "axon/maps.h"
#include "addr.h"
#include "log.h"
#include "desired.h"
#include "maglev.h"
#include "reconcile.h"
#include "reconcile_priv.h"

#ifndef ENOTSUPP
#define ENOTSUPP 524	/* the kernel's answer for a map type without batch ops */
#endif

/* rev-NAT ids handed out: 1..REVNAT_IDS-1 (a 128 KiB bitmap). */
#define REVNAT_IDS (1u << 20)

struct lb_fe_list {
	struct lb_fe_key *keys;
	size_t n;
};

struct be_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

const char *lb_map_name(enum lb_map_id map)
{
	switch (map) {
	case LB_MAP_SERVICES:	return MAP_LB4_SERVICES;
	case LB_MAP_BACKENDS:	return MAP_LB4_BACKENDS;
	case LB_MAP_REVNAT:	return MAP_LB4_REVERSE_NAT;
	case LB_MAP_MAGLEV:	return MAP_LB4_MAGLEV;
	default:		return "?";
	}
}

uint64_t lb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int lb_reconciler_init(struct lb_reconciler *r, const struct lb_map_ops *ops, void *ops_ctx)
{
	int err;

	memset(r, 0, sizeof(*r));
	err = lb_src_ranges_init(&r->src_ranges);
	if (err)
		return err;
	r->ops = ops;
	r->ops_ctx = ops_ctx;
	r->revnat_next = 1;
	r->backend_next = 1;
	r->backoff_base_ms = 500;
	r->backoff_max_ms = 30000;
	r->maglev_available = true;
	r->revnat_used = calloc(REVNAT_IDS / 8, 1);
	if (!r->revnat_used)
		return -ENOMEM;
	if ((err = ht_init(&r->frontends)) || (err = ht_init(&r->backends)) ||
	    (err = ht_init(&r->backends_by_id)) || (err = ht_init(&r->by_service)) ||
	    (err = ht_init(&r->failures)) || (err = ht_init(&r->orphan_revnat)) ||
	    (err = ht_init(&r->orphan_maglev)) || (err = ht_init(&r->unref))) {
		lb_reconciler_destroy(r);
		return err;
	}
	return 0;
}

static void frontend_free(void *p)
{
	struct lb_frontend *rf = p;

	free(rf->svc_key);
	free(rf->slots);
	free(rf->kept);
	free(rf->resync_seen);
	free(rf);
}

static void fe_list_free(void *p)
{
	struct lb_fe_list *l = p;

	free(l->keys);
	free(l);
}

void lb_reconciler_destroy(struct lb_reconciler *r)
{
	ht_destroy_with(&r->frontends, frontend_free);
	ht_destroy_with(&r->backends, free);
	ht_destroy(&r->backends_by_id);
	ht_destroy(&r->unref);
	ht_destroy_with(&r->by_service, fe_list_free);
	ht_destroy_with(&r->failures, free);
	ht_destroy_with(&r->orphan_revnat, free);
	ht_destroy_with(&r->orphan_maglev, free);
	lb_src_ranges_destroy(&r->src_ranges);
	free(r->revnat_used);
	r->revnat_used = NULL;
}

/* ---- map operations, counted and described once ---- */

static int map_update(struct lb_reconciler *r, enum lb_map_id map, const void *key,
		      const void *value)
{
	int err = r->ops->update(r->ops_ctx, map, key, value);

	if (err)
		r->stats.errors++;
	else
		r->stats.updates++;
	return err;
}

static int map_delete(struct lb_reconciler *r, enum lb_map_id map, const void *key)
{
	int err = r->ops->delete(r->ops_ctx, map, key);

	/* Already gone is what we wanted. */
	if (err == -ENOENT)
		err = 0;
	if (err)
		r->stats.errors++;
	else
		r->stats.deletes++;
	return err;
}

/* Write n entries (keys and values packed at the map's sizes) in one batch
 * where the ops and the map allow. Returns how many leading entries are now
 * in the map: n, or fewer when the batch failed or was not used. The caller
 * writes the rest one by one with map_update, so a failure is counted and
 * attributed to its entry as without batching. */
static size_t map_update_batch(struct lb_reconciler *r, enum lb_map_id map, const void *keys,
			       const void *values, size_t n)
{
	__u32 done = 0;
	int err;

	if (!r->ops->update_batch || r->no_batch[map] || n < 2 || n > UINT32_MAX)
		return 0;
	err = r->ops->update_batch(r->ops_ctx, map, keys, values, n, &done);
	if (done > n)
		done = 0;
	r->stats.updates += done;
	if (!done && (err == -EINVAL || err == -ENOTSUPP || err == -EOPNOTSUPP)) {
		r->no_batch[map] = true;
		pr_info("map takes no batched updates: writing entries one by one",
			"map=%s error=\"%s\"", lb_map_name(map), strerror(-err));
	}
	return done;
}

static const char *errstr(int err)
{
	/* A full BPF hash map answers E2BIG; say what it means. */
	return err == -E2BIG || err == -ENOSPC ? "map full" : strerror(-err);
}

/* ---- rev-NAT ids ---- */

static bool revnat_is_used(const struct lb_reconciler *r, __u32 id)
{
	return r->revnat_used[id / 8] & (1 << (id % 8));
}

static void revnat_set(struct lb_reconciler *r, __u32 id, bool used)
{
	if (used)
		r->revnat_used[id / 8] |= 1 << (id % 8);
	else
		r->revnat_used[id / 8] &= ~(1 << (id % 8));
}

static int revnat_alloc(struct lb_reconciler *r, __u32 *id)
{
	for (unsigned int i = 0; i < REVNAT_IDS - 1; i++) {
		__u32 cand = r->revnat_next;

		r->revnat_next = cand == REVNAT_IDS - 1 ? 1 : cand + 1;
		if (!revnat_is_used(r, cand)) {
			revnat_set(r, cand, true);
			*id = cand;
			return 0;
		}
	}
	return -ENOSPC;
}

/* ---- backends ---- */

static struct lb_backend *backend_by_id(struct lb_reconciler *r, __u32 id)
{
	return id ? ht_get(&r->backends_by_id, &id, sizeof(id)) : NULL;
}

/* Keep r->unref (the sweep's candidates) equal to the backends with no
 * reference: sweeping only those keeps a service's reconcile independent of
 * how many backends the node has. */
static void backend_unref_track(struct lb_reconciler *r, struct lb_backend *b)
{
	if (b->refs) {
		ht_del(&r->unref, &b->id, sizeof(b->id));
		return;
	}
	/* Out of memory: the next sweep walks every backend instead. */
	if (ht_put(&r->unref, &b->id, sizeof(b->id), b, NULL))
		r->sweep_all = true;
}

static void backend_ref(struct lb_reconciler *r, __u32 id, int delta)
{
	struct lb_backend *b = backend_by_id(r, id);

	if (b) {
		b->refs += delta;
		if (!b->refs || b->refs == (unsigned int)delta)
			backend_unref_track(r, b);
	}
}

static struct lb4_backend backend_value(const struct lb_backend *b)
{
	return (struct lb4_backend){
		.address = b->addr, .port = b->port, .proto = b->proto, .state = b->state,
	};
}

static int backend_insert(struct lb_reconciler *r, struct lb_backend *b)
{
	struct be_key k = { .addr = b->addr, .port = b->port, .proto = b->proto };
	int err;

	err = ht_put(&r->backends, &k, sizeof(k), b, NULL);
	if (err)
		return err;
	err = ht_put(&r->backends_by_id, &b->id, sizeof(b->id), b, NULL);
	if (err) {
		ht_del(&r->backends, &k, sizeof(k));
		return err;
	}
	backend_unref_track(r, b);
	return 0;
}

static __u32 backend_id_alloc(struct lb_reconciler *r)
{
	/* 2^32 ids: wrapping is theoretical, but skip ids still in use. */
	while (!r->backend_next || backend_by_id(r, r->backend_next))
		r->backend_next++;
	return r->backend_next++;
}

/* Drop a backend that never reached the map from the mirror. */
static void backend_forget_unwritten(struct lb_reconciler *r, struct lb_backend *b)
{
	struct be_key k = { .addr = b->addr, .port = b->port, .proto = b->proto };

	ht_del(&r->backends, &k, sizeof(k));
	ht_del(&r->backends_by_id, &b->id, sizeof(b->id));
	ht_del(&r->unref, &b->id, sizeof(b->id));
	free(b);
}

/* A write backends_get owes: a new backend, or a state change (old_state). */
struct be_write {
	struct lb_backend *b;
	size_t spec;
	bool created;
	__u8 old_state;
};

/* Find or create the backends for specs[0..n) into out[]; on success the
 * map holds each with its spec's state. The new ones and the state changes
 * are written in one batch. On failure *failed is the index of the spec
 * whose write failed, the mirror holds exactly what was written, and out[]
 * is not to be used. */
static int backends_get(struct lb_reconciler *r, const struct lb_backend_spec *specs, size_t n,
			struct lb_backend **out, size_t *failed)
{
	struct be_write *w = calloc(n + 1, sizeof(*w));
	__u32 *ids = calloc(n + 1, sizeof(*ids));
	struct lb4_backend *vals = calloc(n + 1, sizeof(*vals));
	size_t n_w = 0, done = 0;
	int err = 0;

	*failed = 0;
	if (!w || !ids || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct be_key k = { .addr = specs[i].addr, .port = specs[i].port,
				    .proto = specs[i].proto };
		struct lb_backend *b = ht_get(&r->backends, &k, sizeof(k));

		if (b) {
			if (b->state != specs[i].state) {
				w[n_w] = (struct be_write){ .b = b, .spec = i,
							    .old_state = b->state };
				b->state = specs[i].state;
				ids[n_w] = b->id;
				vals[n_w++] = backend_value(b);
			}
			out[i] = b;
			continue;
		}
		/* New: in the mirror now (a duplicate spec finds it), taken
		 * out again below if its write fails. */
		b = calloc(1, sizeof(*b));
		if (!b) {
			err = -ENOMEM;
			*failed = i;
			goto out;
		}
		*b = (struct lb_backend){
			.addr = specs[i].addr, .port = specs[i].port, .proto = specs[i].proto,
			.state = specs[i].state, .id = backend_id_alloc(r),
		};
		err = backend_insert(r, b);
		if (err) {
			free(b);
			*failed = i;
			goto out;
		}
		w[n_w] = (struct be_write){ .b = b, .spec = i, .created = true };
		ids[n_w] = b->id;
		vals[n_w++] = backend_value(b);
		out[i] = b;
	}
	done = map_update_batch(r, LB_MAP_BACKENDS, ids, vals, n_w);
	for (; done < n_w; done++) {
		err = map_update(r, LB_MAP_BACKENDS, &ids[done], &vals[done]);
		if (err) {
			*failed = w[done].spec;
			break;
		}
	}
out:
	/* Undo what did not reach the map, newest first. */
	for (size_t j = n_w; err && j-- > done;) {
		if (w[j].created)
			backend_forget_unwritten(r, w[j].b);
		else
			w[j].b->state = w[j].old_state;
	}
	free(w);
	free(ids);
	free(vals);
	return err;
}

/* Delete backends no slot refers to (r->unref). Failures are retried on the
 * next sweep. */
static void backends_sweep(struct lb_reconciler *r)
{
	struct ht_entry *e;

	if (r->sweep_all) {
		r->sweep_all = false;
		for (e = ht_first(&r->backends); e; e = ht_next(&r->backends, e))
			backend_unref_track(r, e->value);
	}
	for (e = ht_first(&r->unref); e;) {
		struct lb_backend *b = e->value;
		struct be_key k = { .addr = b->addr, .port = b->port, .proto = b->proto };

		if (b->refs) {
			e = ht_del_iter(&r->unref, e);
			continue;
		}
		/* A backend found at restart may be kept by a service not yet
		 * reconciled: it waits for the prune. */
		if ((b->restored && !r->pruned) || map_delete(r, LB_MAP_BACKENDS, &b->id)) {
			e = ht_next(&r->unref, e);
			continue;
		}
		if (r->backend_removed)
			r->backend_removed(r->backend_removed_ctx, 0, b);
		ht_del(&r->backends_by_id, &b->id, sizeof(b->id));
		ht_del(&r->backends, &k, sizeof(k));
		e = ht_del_iter(&r->unref, e);
		free(b);
	}
}

/* ---- frontends ---- */

static struct lb4_key svc_key_of(const struct lb_frontend *rf, __u16 slot)
{
	return (struct lb4_key){
		.address = rf->key.addr, .dport = rf->key.port, .proto = rf->key.proto,
		.scope = rf->key.scope, .backend_slot = slot,
	};
}

static int slots_reserve(struct lb_frontend *rf, size_t n)
{
	size_t cap;
	__u32 *p;

	if (n <= rf->cap_slots)
		return 0;
	cap = rf->cap_slots ? rf->cap_slots : 4;
	while (cap < n)
		cap *= 2;
	p = realloc(rf->slots, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p + rf->cap_slots, 0, (cap - rf->cap_slots) * sizeof(*p));
	rf->slots = p;
	rf->cap_slots = cap;
	return 0;
}

static int frontend_create(struct lb_reconciler *r, const struct lb_fe_key *k,
			   struct lb_frontend **out)
{
	struct lb_frontend *rf = calloc(1, sizeof(*rf));
	int err;

	if (!rf)
		return -ENOMEM;
	rf->key = *k;
	err = ht_put(&r->frontends, k, sizeof(*k), rf, NULL);
	if (err) {
		free(rf);
		return err;
	}
	*out = rf;
	return 0;
}

static void frontend_forget(struct lb_reconciler *r, struct lb_frontend *rf)
{
	if (rf->rev_nat)
		revnat_set(r, rf->rev_nat, false);
	ht_del(&r->frontends, &rf->key, sizeof(rf->key));
	frontend_free(rf);
}

static int revnat_write(struct lb_reconciler *r, struct lb_frontend *rf)
{
	struct lb4_reverse_nat v = { .address = rf->key.addr, .port = rf->key.port };
	int err;

	if (rf->revnat_written)
		return 0;
	err = map_update(r, LB_MAP_REVNAT, &rf->rev_nat, &v);
	if (!err)
		rf->revnat_written = true;
	return err;
}

/* Order the new slot list to move as few slots as possible: keep surviving
 * backends where they are, fill holes left by removed ones with the last
 * survivor, append new ones. */
static int slot_plan(const struct lb_frontend *rf, struct lb_backend **want, size_t n_want,
		     __u32 **plan_out, size_t *n_out)
{
	__u32 *plan = calloc(rf->n_slots + n_want + 1, sizeof(*plan));
	size_t n = 0;

	if (!plan)
		return -ENOMEM;
	for (size_t i = 0; i < rf->n_slots; i++)
		plan[n++] = rf->slots[i];
	for (size_t i = 0; i < n;) {
		bool keep = false;

		for (size_t j = 0; j < n_want && !keep; j++)
			keep = want[j]->id == plan[i];
		/* A backend id may appear once only. */
		for (size_t j = 0; j < i && keep; j++)
			keep = plan[j] != plan[i];
		if (keep)
			i++;
		else
			plan[i] = plan[--n];
	}
	for (size_t j = 0; j < n_want; j++) {
		bool have = false;

		for (size_t i = 0; i < n && !have; i++)
			have = plan[i] == want[j]->id;
		if (!have)
			plan[n++] = want[j]->id;
	}
	*plan_out = plan;
	*n_out = n;
	return 0;
}

/* The mirror's side of writing slot i + 1 (slots_reserve done). */
static void slot_set(struct lb_reconciler *r, struct lb_frontend *rf, size_t i, __u32 id)
{
	if (i < rf->n_slots)
		backend_ref(r, rf->slots[i], -1);
	backend_ref(r, id, +1);
	rf->slots[i] = id;
	if (i >= rf->n_slots)
		rf->n_slots = i + 1;
}

/* Make slots 1..n name plan[0..n) (backends already in the map), writing
 * the ones that change in one batch, in slot order: slots past rf->n_slots
 * are appended contiguously whatever prefix lands. On failure *failed is the
 * index of the slot whose write failed; the mirror holds the ones before. */
static int slots_write(struct lb_reconciler *r, struct lb_frontend *rf, const __u32 *plan,
		       size_t n, size_t *failed)
{
	struct lb4_key *keys = calloc(n + 1, sizeof(*keys));
	struct lb4_service *vals = calloc(n + 1, sizeof(*vals));
	size_t *at = calloc(n + 1, sizeof(*at));
	size_t n_w = 0, done;
	int err;

	*failed = 0;
	err = !keys || !vals || !at ? -ENOMEM : slots_reserve(rf, n);
	if (err)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (i < rf->n_slots && rf->slots[i] == plan[i])
			continue;
		keys[n_w] = svc_key_of(rf, i + 1);
		vals[n_w] = (struct lb4_service){ .backend_id = plan[i],
						  .rev_nat_index = rf->rev_nat };
		at[n_w++] = i;
	}
	done = map_update_batch(r, LB_MAP_SERVICES, keys, vals, n_w);
	for (size_t j = 0; j < n_w; j++) {
		if (j >= done && (err = map_update(r, LB_MAP_SERVICES, &keys[j], &vals[j]))) {
			*failed = at[j];
			break;
		}
		slot_set(r, rf, at[j], plan[at[j]]);
	}
out:
	free(keys);
	free(vals);
	free(at);
	return err;
}

static int slot_delete_last(struct lb_reconciler *r, struct lb_frontend *rf)
{
	struct lb4_key k = svc_key_of(rf, rf->n_slots);
	int err = map_delete(r, LB_MAP_SERVICES, &k);

	if (err)
		return err;
	backend_ref(r, rf->slots[rf->n_slots - 1], -1);
	rf->slots[--rf->n_slots] = 0;
	return 0;
}

/*
 * Delete rf's slots above keep (the count no longer exposes them), highest
 * first, in one batch where the ops allow; the mirror follows what the batch
 * deleted, and whatever it left (a failure, a slot already gone) goes one by
 * one, so an error is attributed as without batching.
 */
static int slots_delete_above(struct lb_reconciler *r, struct lb_frontend *rf, size_t keep)
{
	size_t n = rf->n_slots > keep ? rf->n_slots - keep : 0;
	struct lb4_key *keys;
	__u32 done = 0;
	int err;

	if (n >= 2 && n <= UINT32_MAX && r->ops->delete_batch &&
	    !r->no_delete_batch[LB_MAP_SERVICES] && (keys = calloc(n, sizeof(*keys)))) {
		for (size_t i = 0; i < n; i++)
			keys[i] = svc_key_of(rf, rf->n_slots - i);
		err = r->ops->delete_batch(r->ops_ctx, LB_MAP_SERVICES, keys, n, &done);
		free(keys);
		if (done > n)
			done = 0;
		if (!done && (err == -EINVAL || err == -ENOTSUPP || err == -EOPNOTSUPP)) {
			r->no_delete_batch[LB_MAP_SERVICES] = true;
			pr_info("map takes no batched deletes: deleting entries one by one",
				"map=%s error=\"%s\"", lb_map_name(LB_MAP_SERVICES), strerror(-err));
		}
		r->stats.deletes += done;
		for (__u32 i = 0; i < done; i++) {
			backend_ref(r, rf->slots[rf->n_slots - 1], -1);
			rf->slots[--rf->n_slots] = 0;
		}
	}
	while (rf->n_slots > keep) {
		err = slot_delete_last(r, rf);
		if (err)
			return err;
	}
	return 0;
}

static int slot0_write(struct lb_reconciler *r, struct lb_frontend *rf, __u16 count, __u8 flags,
		       __u8 flags2, __u32 affinity)
{
	struct lb4_key k = svc_key_of(rf, 0);
	struct lb4_service v = {
		.affinity_timeout = affinity, .count = count, .rev_nat_index = rf->rev_nat,
		.flags = flags, .flags2 = flags2,
	};
	int err;

	if (rf->has_slot0 && rf->count == count && rf->flags == flags && rf->flags2 == flags2 &&
	    rf->affinity_timeout == affinity)
		return 0;
	err = map_update(r, LB_MAP_SERVICES, &k, &v);
	if (err)
		return err;
	rf->has_slot0 = true;
	rf->count = count;
	rf->flags = flags;
	rf->flags2 = flags2;
	rf->affinity_timeout = affinity;
	return 0;
}

static void describe(char *msg, size_t len, const struct lb_frontend *rf, const char *what,
		     int err);

/* Write rf's Maglev table for the backends in want (unless the same table is
 * there already). Called after the slots and before slot 0. */
static int maglev_write(struct lb_reconciler *r, struct lb_frontend *rf,
			struct lb_backend **want, size_t n)
{
	struct maglev_backend *mb = calloc(n, sizeof(*mb));
	struct lb4_maglev_table *t = malloc(sizeof(*t));
	uint64_t digest;
	int err = -ENOMEM;

	if (!mb || !t)
		goto out;
	for (size_t i = 0; i < n; i++)
		mb[i] = (struct maglev_backend){
			.addr = want[i]->addr, .port = want[i]->port, .proto = want[i]->proto,
			.id = want[i]->id,
		};
	err = maglev_fill(mb, n, t->backend_ids, LB_MAGLEV_TABLE_SIZE);
	if (err)
		goto out;
	digest = maglev_digest(t->backend_ids, LB_MAGLEV_TABLE_SIZE);
	if (rf->maglev_written && rf->maglev_digest == digest)
		goto out;
	err = map_update(r, LB_MAP_MAGLEV, &rf->rev_nat, t);
	if (!err) {
		rf->maglev_written = true;
		rf->maglev_digest = digest;
	}
out:
	free(mb);
	free(t);
	return err;
}

static int maglev_delete(struct lb_reconciler *r, struct lb_frontend *rf)
{
	int err;

	if (!rf->maglev_written)
		return 0;
	err = map_delete(r, LB_MAP_MAGLEV, &rf->rev_nat);
	if (!err)
		rf->maglev_written = false;
	return err;
}

/* Make rf's kept list hold the backends of spec's kept (found or created,
 * state terminating); references taken before old ones are dropped. */
static int kept_apply(struct lb_reconciler *r, struct lb_frontend *rf,
		      const struct lb_frontend_spec *fe, char *msg, size_t len)
{
	__u32 *ids = calloc(fe->n_kept + 1, sizeof(*ids));
	struct lb_backend **bs = calloc(fe->n_kept + 1, sizeof(*bs));
	size_t n = fe->n_kept, failed;
	int err;

	if (!ids || !bs) {
		free(ids);
		free(bs);
		return -ENOMEM;
	}
	/* On failure the old list stays: nothing is released early. */
	err = backends_get(r, fe->kept, n, bs, &failed);
	if (err) {
		char what[64], be[ADDR_STR_MAX];

		snprintf(what, sizeof(what), "kept backend %s in " MAP_LB4_BACKENDS,
			 format_addr_port(be, sizeof(be), fe->kept[failed].addr,
					  fe->kept[failed].port, fe->kept[failed].proto));
		describe(msg, len, rf, what, err);
		free(ids);
		free(bs);
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		bs[i]->refs++;
		if (bs[i]->refs == 1)
			backend_unref_track(r, bs[i]);
		ids[i] = bs[i]->id;
	}
	free(bs);
	for (size_t i = 0; i < rf->n_kept; i++)
		backend_ref(r, rf->kept[i], -1);
	free(rf->kept);
	rf->kept = ids;
	rf->n_kept = n;
	return 0;
}

static void kept_release(struct lb_reconciler *r, struct lb_frontend *rf)
{
	for (size_t i = 0; i < rf->n_kept; i++)
		backend_ref(r, rf->kept[i], -1);
	free(rf->kept);
	rf->kept = NULL;
	rf->n_kept = 0;
}

/* ---- a frontend's backend set, for the backend_removed hook ---- */

static int id_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* rf's backend set: the ids in its slots and kept list, sorted (holes and
 * duplicates do no harm). *ids NULL (out of memory): the removals of this
 * change go untold, their sockets live on as without termination. */
static void fe_set_get(const struct lb_reconciler *r, const struct lb_frontend *rf, __u32 **ids,
		       size_t *n)
{
	*n = 0;
	*ids = NULL;
	if (!r->backend_removed || !rf->rev_nat)
		return;
	*ids = malloc((rf->n_slots + rf->n_kept + 1) * sizeof(**ids));
	if (!*ids) {
		pr_warn("backend removals not told: sockets through the frontend kept",
			"error=\"%s\"", strerror(ENOMEM));
		return;
	}
	/* Either list may be empty and NULL, which memcpy() must not see. */
	if (rf->n_slots)
		memcpy(*ids, rf->slots, rf->n_slots * sizeof(**ids));
	if (rf->n_kept)
		memcpy(*ids + rf->n_slots, rf->kept, rf->n_kept * sizeof(**ids));
	*n = rf->n_slots + rf->n_kept;
	qsort(*ids, *n, sizeof(**ids), id_cmp);
}

/* Tell the hook of every backend of the old set (fe_set_get() before the
 * change) that rf's set no longer holds; frees old. Called while the
 * backends are still in the mirror (the sweep comes after). */
static void fe_set_removed(struct lb_reconciler *r, const struct lb_frontend *rf, __u32 *old,
			   size_t n_old, bool gone)
{
	size_t n_now = 0;
	__u32 *now = NULL;

	if (!old)
		return;
	if (!gone)
		fe_set_get(r, rf, &now, &n_now);
	for (size_t i = 0; i < n_old && (gone || now); i++) {
		struct lb_backend *b;

		if (!old[i] || (i && old[i] == old[i - 1]) ||
		    (n_now && bsearch(&old[i], now, n_now, sizeof(*now), id_cmp)))
			continue;
		b = backend_by_id(r, old[i]);
		if (b)
			r->backend_removed(r->backend_removed_ctx, rf->rev_nat, b);
	}
	free(now);
	free(old);
}

static void describe(char *msg, size_t len, const struct lb_frontend *rf, const char *what,
		     int err)
{
	char fe[ADDR_STR_MAX];

	snprintf(msg, len, "frontend %s: %s: %s",
		 format_addr_port(fe, sizeof(fe), rf->key.addr, rf->key.port, rf->key.proto),
		 what, errstr(err));
}

/* Make rf's slots and slot 0 match fe. */
static int frontend_apply(struct lb_reconciler *r, struct lb_frontend *rf,
			  const struct lb_frontend_spec *fe, char *msg, size_t len)
{
	struct lb_backend **want = NULL;
	__u32 *plan = NULL, *old = NULL;
	size_t n_plan = 0, failed, n_old = 0;
	char what[64];
	int err = 0;

	if (fe->n_backends > UINT16_MAX) {
		err = -E2BIG;
		describe(msg, len, rf, "more than 65535 backends", err);
		return err;
	}
	err = revnat_write(r, rf);
	if (err) {
		describe(msg, len, rf, "rev-NAT entry in " MAP_LB4_REVERSE_NAT, err);
		return err;
	}
	want = calloc(fe->n_backends + 1, sizeof(*want));
	if (!want)
		return -ENOMEM;
	fe_set_get(r, rf, &old, &n_old);
	err = backends_get(r, fe->backends, fe->n_backends, want, &failed);
	if (err) {
		char be[ADDR_STR_MAX];

		snprintf(what, sizeof(what), "backend %s in " MAP_LB4_BACKENDS,
			 format_addr_port(be, sizeof(be), fe->backends[failed].addr,
					  fe->backends[failed].port, fe->backends[failed].proto));
		describe(msg, len, rf, what, err);
		goto out;
	}
	err = slot_plan(rf, want, fe->n_backends, &plan, &n_plan);
	if (err)
		goto out;
	err = slots_write(r, rf, plan, n_plan, &failed);
	if (err) {
		snprintf(what, sizeof(what), "slot %zu in " MAP_LB4_SERVICES, failed + 1);
		describe(msg, len, rf, what, err);
		goto out;
	}
	err = kept_apply(r, rf, fe, msg, len);
	if (err)
		goto out;
	/* No slot 0 in the map yet (a first write that failed part way): no
	 * packet can reach these slots, so the stale ones go now. A frontend
	 * whose slots filled the map could otherwise never write slot 0 after
	 * a scale-down, as the stale slots are deleted after it below. */
	if (!rf->has_slot0) {
		err = slots_delete_above(r, rf, n_plan);
		if (err) {
			describe(msg, len, rf, "stale slot in " MAP_LB4_SERVICES, err);
			goto out;
		}
	}
	if ((fe->flags2 & SVC_FLAG2_MAGLEV) && n_plan) {
		/* The table names the backends in plan order's set; want holds
		 * exactly those. */
		err = maglev_write(r, rf, want, fe->n_backends);
		if (err) {
			describe(msg, len, rf, "table in " MAP_LB4_MAGLEV, err);
			goto out;
		}
	}
	err = slot0_write(r, rf, n_plan, fe->flags, fe->flags2, fe->affinity_timeout);
	if (err) {
		describe(msg, len, rf, "service entry in " MAP_LB4_SERVICES, err);
		goto out;
	}
	if (!(fe->flags2 & SVC_FLAG2_MAGLEV) || !n_plan) {
		err = maglev_delete(r, rf);
		if (err) {
			describe(msg, len, rf, "stale table in " MAP_LB4_MAGLEV, err);
			goto out;
		}
	}
	err = slots_delete_above(r, rf, n_plan);
	if (err)
		describe(msg, len, rf, "stale slot in " MAP_LB4_SERVICES, err);
out:
	/* Whatever left the set left the maps, even part way through. */
	fe_set_removed(r, rf, old, n_old, false);
	free(plan);
	free(want);
	return err;
}

/* Remove rf from the maps: slot 0 first, so no new connection picks it. */
static int frontend_remove(struct lb_reconciler *r, struct lb_frontend *rf, char *msg, size_t len)
{
	struct lb4_key k = svc_key_of(rf, 0);
	size_t n_old;
	__u32 *old;
	int err;

	/* Service deleted (or frontend stale): its sockets go too, as
	 * Cilium's do when the deletion leaves their backend unused. */
	fe_set_get(r, rf, &old, &n_old);
	if (rf->has_slot0) {
		err = map_delete(r, LB_MAP_SERVICES, &k);
		if (err) {
			describe(msg, len, rf, "delete service entry", err);
			goto fail;
		}
		rf->has_slot0 = false;
	}
	err = slots_delete_above(r, rf, 0);
	if (err) {
		describe(msg, len, rf, "delete slot", err);
		goto fail;
	}
	err = maglev_delete(r, rf);
	if (err) {
		describe(msg, len, rf, "delete table in " MAP_LB4_MAGLEV, err);
		goto fail;
	}
	kept_release(r, rf);
	if (rf->rev_nat) {
		err = map_delete(r, LB_MAP_REVNAT, &rf->rev_nat);
		if (err) {
			describe(msg, len, rf, "delete rev-NAT entry", err);
			goto fail;
		}
	}
	fe_set_removed(r, rf, old, n_old, true);
	frontend_forget(r, rf);
	return 0;
fail:
	fe_set_removed(r, rf, old, n_old, false);
	return err;
}

/* ---- services ---- */

static int fe_list_set(struct lb_reconciler *r, const char *key, struct lb_fe_key *keys, size_t n)
{
	struct lb_fe_list *l, *old = NULL;
	int err;

	if (!n) {
		old = ht_del(&r->by_service, key, strlen(key));
		if (old)
			fe_list_free(old);
		free(keys);
		return 0;
	}
	l = malloc(sizeof(*l));
	if (!l) {
		free(keys);
		return -ENOMEM;
	}
	l->keys = keys;
	l->n = n;
	err = ht_put(&r->by_service, key, strlen(key), l, (void **)&old);
	if (err) {
		fe_list_free(l);
		return err;
	}
	if (old)
		fe_list_free(old);
	return 0;
}

static void failure_set(struct lb_reconciler *r, const char *key, int err, const char *msg)
{
	struct lb_failure *f = ht_get(&r->failures, key, strlen(key));
	uint64_t delay;

	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f || ht_put(&r->failures, key, strlen(key), f, NULL)) {
			free(f);
			return;
		}
	}
	f->err = err;
	snprintf(f->msg, sizeof(f->msg), "%s", msg);
	if (f->attempts++)
		r->stats.retries++;	/* it was failing already: this was a retry */
	delay = backoff_delay_ms(r->backoff_base_ms, r->backoff_max_ms, f->attempts);
	f->next_retry_ms = lb_now_ms() + delay;
	pr_warn("service not realized", "service=%s error=\"%s\" attempt=%u retry_in_ms=%llu", key,
		msg, f->attempts, (unsigned long long)delay);
}

static void failure_clear(struct lb_reconciler *r, const char *key)
{
	struct lb_failure *f = ht_del(&r->failures, key, strlen(key));

	if (f) {
		r->stats.retries++;
		pr_info("service realized after failure", "service=%s attempts=%u", key,
			f->attempts);
		free(f);
	}
}

int lb_reconcile_service(struct lb_reconciler *r, const struct store *s, const char *key)
{
	struct lb_service_spec spec;
	struct lb_fe_list *old;
	struct lb_fe_key *keys = NULL;
	size_t n_keys = 0;
	char msg[256] = "", m[256];
	int err, first_err = 0;

	err = lb_desired_service(s, key, r->maglev_default, &spec);
	if (err)
		return err;
	for (size_t i = 0; !r->maglev_available && i < spec.n_frontends; i++)
		spec.frontends[i].flags2 &= ~SVC_FLAG2_MAGLEV;
	for (size_t i = 0; !lb_src_ranges_available(&r->src_ranges) && i < spec.n_frontends; i++)
		spec.frontends[i].flags2 &= ~SVC_FLAG2_SOURCE_RANGE;
	/* The ranges before the frontends whose slot 0 sets the flag. */
	err = lb_src_ranges_add(&r->src_ranges, key, &spec);
	if (err) {
		snprintf(msg, sizeof(msg), "writing loadBalancerSourceRanges: %s", errstr(err));
		lb_service_spec_free(&spec);
		failure_set(r, key, err, msg);
		return err;
	}
	r->gen++;
	old = ht_get(&r->by_service, key, strlen(key));
	keys = calloc(spec.n_frontends + (old ? old->n : 0) + 1, sizeof(*keys));
	if (!keys) {
		lb_service_spec_free(&spec);
		return -ENOMEM;
	}
	for (size_t i = 0; i < spec.n_frontends; i++) {
		const struct lb_frontend_spec *fe = &spec.frontends[i];
		struct lb_fe_key k = { .addr = fe->addr, .port = fe->port, .proto = fe->proto,
				       .scope = fe->scope };
		struct lb_frontend *rf = ht_get(&r->frontends, &k, sizeof(k));
		bool created = false;

		if (rf && rf->svc_key && strcmp(rf->svc_key, key)) {
			char a[ADDR_STR_MAX];

			err = -EADDRINUSE;
			snprintf(m, sizeof(m), "frontend %s is already used by service %.180s",
				 format_addr_port(a, sizeof(a), k.addr, k.port, k.proto),
				 rf->svc_key);
			goto fail_fe;
		}
		if (rf && rf->gen == r->gen)
			continue;	/* the same address listed twice in one service */
		if (!rf) {
			err = frontend_create(r, &k, &rf);
			if (!err)
				err = revnat_alloc(r, &rf->rev_nat);
			if (err) {
				snprintf(m, sizeof(m), "allocating frontend: %s", errstr(err));
				if (rf)
					frontend_forget(r, rf);
				goto fail_fe;
			}
			created = true;
		}
		if (!rf->rev_nat && (err = revnat_alloc(r, &rf->rev_nat))) {
			snprintf(m, sizeof(m), "allocating rev-NAT id: %s", errstr(err));
			goto fail_fe;
		}
		if (!rf->svc_key && !(rf->svc_key = strdup(key))) {
			err = -ENOMEM;
			snprintf(m, sizeof(m), "claiming frontend: %s", errstr(err));
			goto fail_fe;
		}
		rf->gen = r->gen;
		err = frontend_apply(r, rf, fe, m, sizeof(m));
		if (err && created && !rf->revnat_written && !rf->n_slots && !rf->has_slot0) {
			frontend_forget(r, rf);
			goto fail_fe;
		}
		keys[n_keys++] = k;
		if (!err)
			continue;
fail_fe:
		if (!first_err) {
			first_err = err;
			snprintf(msg, sizeof(msg), "%s", m);
		}
	}
	/* Frontends the service no longer has. */
	for (size_t i = 0; old && i < old->n; i++) {
		struct lb_frontend *rf = ht_get(&r->frontends, &old->keys[i], sizeof(old->keys[i]));

		if (!rf || rf->gen == r->gen || !rf->svc_key || strcmp(rf->svc_key, key))
			continue;
		err = frontend_remove(r, rf, m, sizeof(m));
		if (err) {
			keys[n_keys++] = old->keys[i];
			if (!first_err) {
				first_err = err;
				snprintf(msg, sizeof(msg), "%s", m);
			}
		}
	}
	/* Ranges no longer wanted, once every frontend is written (their flag
	 * cleared); after a failure the old ones stay until the retry. */
	if (!first_err) {
		first_err = lb_src_ranges_commit(&r->src_ranges, key, &spec);
		if (first_err)
			snprintf(msg, sizeof(msg), "deleting loadBalancerSourceRanges: %s",
				 errstr(first_err));
	}
	lb_service_spec_free(&spec);
	err = fe_list_set(r, key, keys, n_keys);
	backends_sweep(r);
	if (first_err) {
		failure_set(r, key, first_err, msg);
		return first_err;
	}
	failure_clear(r, key);
	r->stats.services_synced++;
	return err;
}

int lb_reconcile_dirty(struct lb_reconciler *r, struct store *s, uint64_t now_ms,
		       uint64_t *next_ms)
{
	struct ht_entry *e = ht_first(&s->dirty);
	int failing = 0;

	*next_ms = UINT64_MAX;
	while (e) {
		char key[STORE_KEY_MAX];
		struct lb_failure *f;

		snprintf(key, sizeof(key), "%.*s", (int)e->klen, (const char *)e->key);
		f = ht_get(&r->failures, key, strlen(key));
		if (f && f->next_retry_ms > now_ms) {
			if (f->next_retry_ms < *next_ms)
				*next_ms = f->next_retry_ms;
			failing++;
			e = ht_next(&s->dirty, e);
			continue;
		}
		if (lb_reconcile_service(r, s, key)) {
			f = ht_get(&r->failures, key, strlen(key));
			if (f && f->next_retry_ms < *next_ms)
				*next_ms = f->next_retry_ms;
			failing++;
			e = ht_next(&s->dirty, e);
			continue;
		}
		e = ht_del_iter(&s->dirty, e);
	}
	return failing;
}

/* ---- restart: rebuild the mirror from the maps ---- */

static int restore_backend(void *ctx, const void *key, const void *value)
{
	struct lb_reconciler *r = ctx;
	const struct lb4_backend *v = value;
	struct lb_backend *b = calloc(1, sizeof(*b));
	int err;

	if (!b)
		return -ENOMEM;
	*b = (struct lb_backend){
		.addr = v->address, .port = v->port, .proto = v->proto, .state = v->state,
		.id = *(const __u32 *)key, .restored = true,
	};
	err = backend_insert(r, b);
	if (err) {
		free(b);
		return err;
	}
	if (b->id >= r->backend_next)
		r->backend_next = b->id + 1;
	return 0;
}

static int restore_service(void *ctx, const void *key, const void *value)
{
	struct lb_reconciler *r = ctx;
	const struct lb4_key *k = key;
	const struct lb4_service *v = value;
	struct lb_fe_key fk = { .addr = k->address, .port = k->dport, .proto = k->proto,
				.scope = k->scope };
	struct lb_frontend *rf;
	int err;

	if (k->scope != LB_SCOPE_EXT && k->scope != LB_SCOPE_INT)
		return 0;
	rf = ht_get(&r->frontends, &fk, sizeof(fk));
	if (!rf) {
		err = frontend_create(r, &fk, &rf);
		if (err)
			return err;
	}
	if (!rf->rev_nat && v->rev_nat_index && v->rev_nat_index < REVNAT_IDS) {
		rf->rev_nat = v->rev_nat_index;
		revnat_set(r, rf->rev_nat, true);
	}
	if (k->backend_slot == 0) {
		rf->has_slot0 = true;
		rf->count = v->count;
		rf->flags = v->flags;
		rf->flags2 = v->flags2;
		rf->affinity_timeout = v->affinity_timeout;
		return 0;
	}
	err = slots_reserve(rf, k->backend_slot);
	if (err)
		return err;
	rf->slots[k->backend_slot - 1] = v->backend_id;
	backend_ref(r, v->backend_id, +1);
	if (k->backend_slot > rf->n_slots)
		rf->n_slots = k->backend_slot;
	return 0;
}

static int restore_revnat(void *ctx, const void *key, const void *value)
{
	struct lb_reconciler *r = ctx;
	const struct lb4_reverse_nat *v = value;
	__u32 id = *(const __u32 *)key;

	/* Matched against frontends once all maps are read. */
	struct lb4_reverse_nat *copy = malloc(sizeof(*copy));

	if (!copy)
		return -ENOMEM;
	*copy = *v;
	if (ht_put(&r->orphan_revnat, &id, sizeof(id), copy, NULL)) {
		free(copy);
		return -ENOMEM;
	}
	return 0;
}

static int restore_maglev(void *ctx, const void *key, const void *value)
{
	struct lb_reconciler *r = ctx;
	const struct lb4_maglev_table *t = value;
	uint64_t *digest = malloc(sizeof(*digest));
	__u32 id = *(const __u32 *)key;

	if (!digest)
		return -ENOMEM;
	*digest = maglev_digest(t->backend_ids, LB_MAGLEV_TABLE_SIZE);
	if (ht_put(&r->orphan_maglev, &id, sizeof(id), digest, NULL)) {
		free(digest);
		return -ENOMEM;
	}
	return 0;
}

int lb_reconciler_restore(struct lb_reconciler *r)
{
	int err;

	err = r->ops->dump(r->ops_ctx, LB_MAP_BACKENDS, restore_backend, r);
	if (!err)
		err = r->ops->dump(r->ops_ctx, LB_MAP_SERVICES, restore_service, r);
	if (!err)
		err = r->ops->dump(r->ops_ctx, LB_MAP_REVNAT, restore_revnat, r);
	/* Without the tc datapath there is no Maglev map: nothing to restore. */
	if (!err && r->ops->dump(r->ops_ctx, LB_MAP_MAGLEV, restore_maglev, r) == -ENOENT)
		pr_debug("no Maglev map to restore", "map=%s", MAP_LB4_MAGLEV);
	if (err)
		return err;
	/* A frontend's rev-NAT entry is in place if it names the frontend. */
	for (struct ht_entry *e = ht_first(&r->frontends); e; e = ht_next(&r->frontends, e)) {
		struct lb_frontend *rf = e->value;
		struct lb4_reverse_nat *v;

		uint64_t *digest;

		if (!rf->rev_nat)
			continue;
		digest = ht_get(&r->orphan_maglev, &rf->rev_nat, sizeof(rf->rev_nat));
		if (digest) {
			rf->maglev_written = true;
			rf->maglev_digest = *digest;
			free(ht_del(&r->orphan_maglev, &rf->rev_nat, sizeof(rf->rev_nat)));
		}
		v = ht_get(&r->orphan_revnat, &rf->rev_nat, sizeof(rf->rev_nat));
		if (v && v->address == rf->key.addr && v->port == rf->key.port) {
			rf->revnat_written = true;
			free(ht_del(&r->orphan_revnat, &rf->rev_nat, sizeof(rf->rev_nat)));
		}
	}
	pr_info("restored load-balancing state from pinned maps",
		"frontends=%zu backends=%zu", r->frontends.count, r->backends.count);
	return 0;
}

/* Delete the Maglev tables no frontend owns (found in the pinned map at
 * restore). Returns 0, or -EIO when some delete failed (kept for the next
 * sweep). */
static int orphan_maglev_sweep(struct lb_reconciler *r)
{
	struct ht_entry *e;
	int err = 0;

	for (e = ht_first(&r->orphan_maglev); e;) {
		__u32 id;

		memcpy(&id, e->key, sizeof(id));
		if (map_delete(r, LB_MAP_MAGLEV, &id)) {
			err = -EIO;
			e = ht_next(&r->orphan_maglev, e);
			continue;
		}
		free(e->value);
		e = ht_del_iter(&r->orphan_maglev, e);
	}
	return err;
}

int lb_reconciler_restore_maglev(struct lb_reconciler *r)
{
	struct ht_entry *e;
	int err;

	err = r->ops->dump(r->ops_ctx, LB_MAP_MAGLEV, restore_maglev, r);
	if (err)
		return err;
	for (e = ht_first(&r->frontends); e; e = ht_next(&r->frontends, e)) {
		struct lb_frontend *rf = e->value;
		uint64_t *digest = ht_get(&r->orphan_maglev, &rf->rev_nat, sizeof(rf->rev_nat));

		if (!rf->rev_nat || !digest)
			continue;
		rf->maglev_written = true;
		rf->maglev_digest = *digest;
		free(ht_del(&r->orphan_maglev, &rf->rev_nat, sizeof(rf->rev_nat)));
	}
	/* After the prune nobody else removes tables no frontend owns. */
	if (r->pruned)
		orphan_maglev_sweep(r);
	return 0;
}

int lb_reconciler_prune(struct lb_reconciler *r)
{
	struct ht_entry *e = ht_first(&r->frontends);
	size_t pruned = 0;
	int first_err = 0;

	while (e) {
		struct lb_frontend *rf = e->value;
		char msg[256];
		int err;

		e = ht_next(&r->frontends, e);
		if (rf->svc_key)
			continue;
		err = frontend_remove(r, rf, msg, sizeof(msg));
		if (err) {
			pr_warn("stale frontend not removed", "error=\"%s\"", msg);
			first_err = first_err ? first_err : err;
			continue;
		}
		pruned++;
	}
	for (e = ht_first(&r->orphan_revnat); e;) {
		__u32 id;

		memcpy(&id, e->key, sizeof(id));
		if (!revnat_is_used(r, id) && map_delete(r, LB_MAP_REVNAT, &id)) {
			first_err = first_err ? first_err : -EIO;
			e = ht_next(&r->orphan_revnat, e);
			continue;
		}
		free(e->value);
		e = ht_del_iter(&r->orphan_revnat, e);
	}
	if (orphan_maglev_sweep(r))
		first_err = first_err ? first_err : -EIO;
	if (lb_src_ranges_prune(&r->src_ranges))
		first_err = first_err ? first_err : -EIO;
	r->pruned = true;
	backends_sweep(r);
	if (pruned)
		pr_info("pruned stale frontends", "count=%zu", pruned);
	return first_err;
}

/* ---- for resync.c (reconcile_priv.h) ---- */

int lb_map_update(struct lb_reconciler *r, enum lb_map_id map, const void *key, const void *value)
{
	return map_update(r, map, key, value);
}

int lb_map_delete(struct lb_reconciler *r, enum lb_map_id map, const void *key)
{
	return map_delete(r, map, key);
}

struct lb4_key lb_slot_key(const struct lb_frontend *rf, __u16 slot)
{
	return svc_key_of(rf, slot);
}

struct lb_backend *lb_backend_find(const struct lb_reconciler *r, __be32 addr, __be16 port,
				   __u8 proto)
{
	struct be_key k = { .addr = addr, .port = port, .proto = proto };

	return ht_get(&r->backends, &k, sizeof(k));
}

struct lb_backend *lb_backend_by_id(struct lb_reconciler *r, __u32 id)
{
	return backend_by_id(r, id);
}

bool lb_revnat_is_used(const struct lb_reconciler *r, __u32 id)
{
	return id < REVNAT_IDS && revnat_is_used(r, id);
}
