// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The LB reconciler's periodic full pass (reconcile.h): the maps read back
 * and compared with the mirror, drift repaired in the write order the
 * datapath relies on.
 *
 * Reading marks what is found as the mirror says (resync_seen); what the
 * mirror does not hold is collected (not deleted while the map is being
 * walked: get_next_key would restart). Then: backends, rev-NAT entries and
 * backend slots not seen are rewritten, Maglev tables recomputed from the
 * slots, slot 0 rewritten last; stale entries are deleted service entries
 * (slot 0) first, then slots, tables, rev-NAT entries and backends, so no
 * reader ever follows a slot to a missing backend.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "axon/maps.h"
#include "log.h"
#include "maglev.h"
#include "reconcile_priv.h"

struct stale_key {
	enum lb_map_id map;
	_Alignas(8) unsigned char key[16];
};

struct resync {
	struct lb_reconciler *r;
	struct htable by_revnat;	/* __u32 rev_nat -> struct lb_frontend */
	struct stale_key *stale;
	size_t n_stale, cap_stale;
	unsigned long wrong[LB_MAP__NR];	/* found with another value */
};

static int stale_add(struct resync *rs, enum lb_map_id map, const void *key, size_t len)
{
	if (rs->n_stale == rs->cap_stale) {
		size_t cap = rs->cap_stale ? rs->cap_stale * 2 : 64;
		struct stale_key *p = realloc(rs->stale, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		rs->stale = p;
		rs->cap_stale = cap;
	}
	rs->stale[rs->n_stale].map = map;
	memset(rs->stale[rs->n_stale].key, 0, sizeof(rs->stale[rs->n_stale].key));
	memcpy(rs->stale[rs->n_stale].key, key, len);
	rs->n_stale++;
	return 0;
}

/* What the mirror says is at slot @slot of @rf; false if nothing. */
static bool slot_expected(const struct lb_frontend *rf, __u16 slot, struct lb4_service *v)
{
	memset(v, 0, sizeof(*v));
	if (slot == 0) {
		if (!rf->has_slot0)
			return false;
		*v = (struct lb4_service){
			.affinity_timeout = rf->affinity_timeout, .count = rf->count,
			.rev_nat_index = rf->rev_nat, .flags = rf->flags, .flags2 = rf->flags2,
		};
		return true;
	}
	if (slot > rf->n_slots || !rf->slots[slot - 1])
		return false;
	v->backend_id = rf->slots[slot - 1];
	v->rev_nat_index = rf->rev_nat;
	return true;
}

static int seen_service(void *ctx, const void *key, const void *value)
{
	struct resync *rs = ctx;
	const struct lb4_key *k = key;
	struct lb_fe_key fk = { .addr = k->address, .port = k->dport, .proto = k->proto,
				.scope = k->scope };
	struct lb_frontend *rf = ht_get(&rs->r->frontends, &fk, sizeof(fk));
	struct lb4_service want;
	struct lb4_key canon;

	if (rf)
		canon = lb_slot_key(rf, k->backend_slot);
	/* Another scope, stray padding, a slot the mirror does not have. */
	if (!rf || memcmp(&canon, k, sizeof(canon)) ||
	    !slot_expected(rf, k->backend_slot, &want))
		return stale_add(rs, LB_MAP_SERVICES, key, sizeof(*k));
	if (memcmp(&want, value, sizeof(want)))
		rs->wrong[LB_MAP_SERVICES]++;
	else
		rf->resync_seen[k->backend_slot] = 1;
	return 0;
}

static struct lb4_backend backend_value(const struct lb_backend *b)
{
	return (struct lb4_backend){
		.address = b->addr, .port = b->port, .proto = b->proto, .state = b->state,
	};
}

static int seen_backend(void *ctx, const void *key, const void *value)
{
	struct resync *rs = ctx;
	__u32 id = *(const __u32 *)key;
	struct lb_backend *b = lb_backend_by_id(rs->r, id);
	struct lb4_backend want;

	if (!b)
		return stale_add(rs, LB_MAP_BACKENDS, key, sizeof(id));
	want = backend_value(b);
	if (memcmp(&want, value, sizeof(want)))
		rs->wrong[LB_MAP_BACKENDS]++;
	else
		b->resync_seen = true;
	return 0;
}

static int seen_revnat(void *ctx, const void *key, const void *value)
{
	struct resync *rs = ctx;
	__u32 id = *(const __u32 *)key;
	struct lb_frontend *rf = ht_get(&rs->by_revnat, &id, sizeof(id));
	struct lb4_reverse_nat want;

	if (!rf || !rf->revnat_written)
		return stale_add(rs, LB_MAP_REVNAT, key, sizeof(id));
	want = (struct lb4_reverse_nat){ .address = rf->key.addr, .port = rf->key.port };
	if (memcmp(&want, value, sizeof(want)))
		rs->wrong[LB_MAP_REVNAT]++;
	else
		rf->revnat_seen = true;
	return 0;
}

static int seen_maglev(void *ctx, const void *key, const void *value)
{
	struct resync *rs = ctx;
	__u32 id = *(const __u32 *)key;
	struct lb_frontend *rf = ht_get(&rs->by_revnat, &id, sizeof(id));
	const struct lb4_maglev_table *t = value;

	if (!rf || !rf->maglev_written)
		return stale_add(rs, LB_MAP_MAGLEV, key, sizeof(id));
	if (maglev_digest(t->backend_ids, LB_MAGLEV_TABLE_SIZE) != rf->maglev_digest)
		rs->wrong[LB_MAP_MAGLEV]++;
	else
		rf->maglev_seen = true;
	return 0;
}

/* Start of a pass: clear the marks, index frontends by rev-NAT id. */
static int marks_reset(struct resync *rs)
{
	struct lb_reconciler *r = rs->r;
	int err = ht_init(&rs->by_revnat);

	if (err)
		return err;
	for (struct ht_entry *e = ht_first(&r->backends); e; e = ht_next(&r->backends, e))
		((struct lb_backend *)e->value)->resync_seen = false;
	for (struct ht_entry *e = ht_first(&r->frontends); e; e = ht_next(&r->frontends, e)) {
		struct lb_frontend *rf = e->value;

		free(rf->resync_seen);
		rf->resync_seen = calloc(rf->n_slots + 1, 1);
		rf->revnat_seen = rf->maglev_seen = false;
		if (!rf->resync_seen)
			return -ENOMEM;
		if (rf->rev_nat && (err = ht_put(&rs->by_revnat, &rf->rev_nat,
						 sizeof(rf->rev_nat), rf, NULL)))
			return err;
	}
	return 0;
}

static void marks_free(struct resync *rs)
{
	struct lb_reconciler *r = rs->r;

	for (struct ht_entry *e = ht_first(&r->frontends); e; e = ht_next(&r->frontends, e)) {
		struct lb_frontend *rf = e->value;

		free(rf->resync_seen);
		rf->resync_seen = NULL;
	}
	ht_destroy(&rs->by_revnat);
	free(rs->stale);
}

/* Rewrite @rf's Maglev table from the backends its slots name: the table
 * is a function of that set (maglev.h), the one the incremental path wrote. */
static int maglev_rewrite(struct lb_reconciler *r, struct lb_frontend *rf)
{
	struct maglev_backend *mb = calloc(rf->n_slots + 1, sizeof(*mb));
	struct lb4_maglev_table *t = malloc(sizeof(*t));
	size_t n = 0;
	int err = -ENOMEM;

	if (!mb || !t)
		goto out;
	for (size_t i = 0; i < rf->n_slots; i++) {
		struct lb_backend *b = lb_backend_by_id(r, rf->slots[i]);

		if (b)
			mb[n++] = (struct maglev_backend){
				.addr = b->addr, .port = b->port, .proto = b->proto, .id = b->id,
			};
	}
	err = n ? maglev_fill(mb, n, t->backend_ids, LB_MAGLEV_TABLE_SIZE) : -EINVAL;
	if (!err)
		err = lb_map_update(r, LB_MAP_MAGLEV, &rf->rev_nat, t);
	if (!err)
		rf->maglev_digest = maglev_digest(t->backend_ids, LB_MAGLEV_TABLE_SIZE);
out:
	free(mb);
	free(t);
	return err;
}

struct repair_count {
	unsigned long n[LB_MAP__NR];
	int err;
};

static void counted(struct repair_count *c, enum lb_map_id map, int err)
{
	if (err)
		c->err = c->err ? c->err : err;
	else
		c->n[map]++;
}

/* Entries the mirror holds that were not found as it says, in write order. */
static void rewrite_missing(struct lb_reconciler *r, struct repair_count *c)
{
	struct ht_entry *e;

	for (e = ht_first(&r->backends); e; e = ht_next(&r->backends, e)) {
		struct lb_backend *b = e->value;
		struct lb4_backend v = backend_value(b);

		if (!b->resync_seen)
			counted(c, LB_MAP_BACKENDS, lb_map_update(r, LB_MAP_BACKENDS, &b->id, &v));
	}
	for (e = ht_first(&r->frontends); e; e = ht_next(&r->frontends, e)) {
		struct lb_frontend *rf = e->value;
		struct lb4_reverse_nat v = { .address = rf->key.addr, .port = rf->key.port };

		if (rf->revnat_written && !rf->revnat_seen)
			counted(c, LB_MAP_REVNAT, lb_map_update(r, LB_MAP_REVNAT, &rf->rev_nat, &v));
	}
	for (e = ht_first(&r->frontends); e; e = ht_next(&r->frontends, e)) {
		struct lb_frontend *rf = e->value;

		for (__u16 s = 1; s <= rf->n_slots; s++) {
			struct lb4_key k = lb_slot_key(rf, s);
			struct lb4_service v;

			if (!rf->resync_seen[s] && slot_expected(rf, s, &v))
				counted(c, LB_MAP_SERVICES, lb_map_update(r, LB_MAP_SERVICES, &k, &v));
		}
		if (rf->maglev_written && !rf->maglev_seen)
			counted(c, LB_MAP_MAGLEV, maglev_rewrite(r, rf));
	}
	for (e = ht_first(&r->frontends); e; e = ht_next(&r->frontends, e)) {
		struct lb_frontend *rf = e->value;
		struct lb4_key k = lb_slot_key(rf, 0);
		struct lb4_service v;

		if (!rf->resync_seen[0] && slot_expected(rf, 0, &v))
			counted(c, LB_MAP_SERVICES, lb_map_update(r, LB_MAP_SERVICES, &k, &v));
	}
}

static int stale_rank(const struct stale_key *s)
{
	const struct lb4_key *k = (const void *)s->key;

	switch (s->map) {
	case LB_MAP_SERVICES:	return k->backend_slot ? 1 : 0;
	case LB_MAP_MAGLEV:	return 2;
	case LB_MAP_REVNAT:	return 3;
	default:		return 4;	/* backends: nothing points at them now */
	}
}

static void delete_stale(struct resync *rs, struct repair_count *c)
{
	for (int rank = 0; rank <= 4; rank++)
		for (size_t i = 0; i < rs->n_stale; i++)
			if (stale_rank(&rs->stale[i]) == rank)
				counted(c, rs->stale[i].map,
					lb_map_delete(rs->r, rs->stale[i].map, rs->stale[i].key));
}

int lb_reconciler_resync(struct lb_reconciler *r)
{
	static const lb_dump_cb seen[LB_MAP__NR] = {
		[LB_MAP_SERVICES] = seen_service, [LB_MAP_BACKENDS] = seen_backend,
		[LB_MAP_REVNAT] = seen_revnat, [LB_MAP_MAGLEV] = seen_maglev,
	};
	struct resync rs = { .r = r };
	struct repair_count c = {};
	unsigned long total = 0;
	int err;

	/* Before the prune, unclaimed restored state is not stale yet. */
	if (!r->pruned)
		return 0;
	err = marks_reset(&rs);
	for (int m = 0; !err && m < LB_MAP__NR; m++) {
		err = r->ops->dump(r->ops_ctx, m, seen[m], &rs);
		/* No Maglev map without the tc datapath: nothing to check. */
		if (err == -ENOENT && m == LB_MAP_MAGLEV)
			err = 0;
		if (err)
			pr_warn("full reconcile: cannot read map", "map=%s error=\"%s\"",
				lb_map_name(m), strerror(-err));
	}
	if (err) {
		marks_free(&rs);
		return err;
	}
	rewrite_missing(r, &c);
	delete_stale(&rs, &c);
	for (int m = 0; m < LB_MAP__NR; m++) {
		if (!c.n[m])
			continue;
		total += c.n[m];
		pr_warn("full reconcile repaired drift", "map=%s repaired=%lu changed=%lu",
			lb_map_name(m), c.n[m], rs.wrong[m]);
	}
	marks_free(&rs);
	/* loadBalancerSourceRanges: its own map, outside the ops (src_range.h). */
	err = lb_src_ranges_resync(&r->src_ranges);
	if (err > 0)
		total += err;
	else if (err < 0 && !c.err)
		c.err = err;
	r->stats.resyncs++;
	r->stats.repairs += total;
	r->stats.last_repairs = total;
	return c.err ? c.err : (int)total;
}
