// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The lb4_source_range map, per service (src_range.h has the order). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "axon/maps.h"
#include "lb/src_range.h"
#include "log.h"
#include "metrics/map_ops.h"

struct lb_src_range_set {
	struct lb4_src_range_key *keys;
	size_t n;
};

static void set_free(void *v)
{
	struct lb_src_range_set *set = v;

	if (set)
		free(set->keys);
	free(set);
}

int lb_src_ranges_init(struct lb_src_ranges *sr)
{
	int err;

	memset(sr, 0, sizeof(*sr));
	sr->fd = -1;
	err = ht_init(&sr->by_service);
	if (!err)
		err = ht_init(&sr->restored);
	return err;
}

void lb_src_ranges_destroy(struct lb_src_ranges *sr)
{
	ht_destroy_with(&sr->by_service, set_free);
	if (sr->restored.buckets)
		ht_destroy(&sr->restored);
}

static struct lb4_src_range_key src_key(const struct lb_frontend_spec *fe,
					const struct ipv4_prefix *pfx)
{
	struct lb4_src_range_key k = {
	    .prefixlen = LB_SRC_RANGE_PREFIX(pfx->len),
	    .fe_address = fe->addr,
	    .fe_port = fe->port,
	    .proto = fe->proto,
	};

	/* The trie keys on the prefix's bits alone: the host bits are zero. */
	k.client = pfx->len ? pfx->addr & htonl(~0u << (32 - pfx->len)) : 0;
	return k;
}

int lb_src_ranges_open(struct lb_src_ranges *sr, int fd)
{
	struct lb4_src_range_key k, next;
	bool first = true;

	sr->fd = fd;
	while (!bpf_map_get_next_key(fd, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		/* A value marks presence only: the key is the set member. */
		if (ht_put(&sr->restored, &k, sizeof(k), (void *)1, NULL))
			return -ENOMEM;
	}
	return errno == ENOENT ? 0 : -errno;
}

/* Each write and delete is counted in the map-operation metrics. */
static int entry_write(struct lb_src_ranges *sr, const struct lb4_src_range_key *k)
{
	__u8 one = 1;
	int err = bpf_map_update_elem(sr->fd, k, &one, BPF_ANY) ? -errno : 0;

	map_ops_count(MAP_LB4_SOURCE_RANGE, MAP_OP_UPDATE, err);
	return err;
}

static int entry_delete(struct lb_src_ranges *sr, const struct lb4_src_range_key *k)
{
	int err = bpf_map_delete_elem(sr->fd, k) ? -errno : 0;

	if (err == -ENOENT)
		err = 0;
	map_ops_count(MAP_LB4_SOURCE_RANGE, MAP_OP_DELETE, err);
	return err;
}

static bool set_has(const struct lb_src_range_set *set, const struct lb4_src_range_key *k)
{
	for (size_t i = 0; set && i < set->n; i++)
		if (!memcmp(&set->keys[i], k, sizeof(*k)))
			return true;
	return false;
}

/* Every entry the spec wants, in one array (NULL with *n 0 for none). */
static int wanted(const struct lb_service_spec *spec, struct lb4_src_range_key **out, size_t *n)
{
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < spec->n_frontends; i++)
		if (spec->frontends[i].flags2 & SVC_FLAG2_SOURCE_RANGE)
			cap += spec->frontends[i].n_src_ranges;
	if (!cap)
		return 0;
	*out = calloc(cap, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < spec->n_frontends; i++) {
		const struct lb_frontend_spec *fe = &spec->frontends[i];

		if (!(fe->flags2 & SVC_FLAG2_SOURCE_RANGE))
			continue;
		for (size_t j = 0; j < fe->n_src_ranges; j++)
			(*out)[(*n)++] = src_key(fe, &fe->src_ranges[j]);
	}
	return 0;
}

/* The service's set, created empty when it has none; NULL when out of memory. */
static struct lb_src_range_set *set_get(struct lb_src_ranges *sr, const char *svc_key)
{
	struct lb_src_range_set *set = ht_get(&sr->by_service, svc_key, strlen(svc_key));

	if (set)
		return set;
	set = calloc(1, sizeof(*set));
	if (set && ht_puts(&sr->by_service, svc_key, strlen(svc_key), set)) {
		free(set);
		set = NULL;
	}
	return set;
}

static int set_append(struct lb_src_range_set *set, const struct lb4_src_range_key *k)
{
	struct lb4_src_range_key *p;

	if (set_has(set, k))
		return 0;
	p = realloc(set->keys, (set->n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	set->keys = p;
	set->keys[set->n++] = *k;
	return 0;
}

/* Write what the spec wants and the service's set does not hold yet; the set
 * records each entry written, so whatever a failed pass left behind is still
 * the service's to delete. */
int lb_src_ranges_add(struct lb_src_ranges *sr, const char *svc_key,
		      const struct lb_service_spec *spec)
{
	struct lb_src_range_set *set;
	struct lb4_src_range_key *keys;
	size_t n;
	int err;

	if (!lb_src_ranges_available(sr))
		return 0;
	err = wanted(spec, &keys, &n);
	if (err || !n)
		return err;
	set = set_get(sr, svc_key);
	if (!set)
		err = -ENOMEM;
	for (size_t i = 0; !err && i < n; i++) {
		/* Written before and recorded: still there, unless something
		 * else deleted it, which the full pass repairs (and counts). */
		if (set_has(set, &keys[i]))
			continue;
		err = entry_write(sr, &keys[i]);
		if (!err)
			err = set_append(set, &keys[i]);
	}
	free(keys);
	return err;
}

int lb_src_ranges_commit(struct lb_src_ranges *sr, const char *svc_key,
			 const struct lb_service_spec *spec)
{
	struct lb_src_range_set *set = ht_get(&sr->by_service, svc_key, strlen(svc_key));
	struct lb_src_range_set keep;
	int err, first_err = 0;

	if (!lb_src_ranges_available(sr))
		return 0;
	err = wanted(spec, &keep.keys, &keep.n);
	if (err)
		return err;
	for (size_t i = 0; i < keep.n; i++)
		ht_del(&sr->restored, &keep.keys[i], sizeof(keep.keys[i]));
	/* Entries no longer wanted; one that cannot be deleted stays recorded
	 * for the service's retry. */
	for (size_t i = 0; set && i < set->n; i++) {
		if (set_has(&keep, &set->keys[i]))
			continue;
		err = entry_delete(sr, &set->keys[i]);
		if (err && !first_err)
			first_err = err;
		if (err && set_append(&keep, &set->keys[i]) && !first_err)
			first_err = -ENOMEM;
	}
	if (first_err)
		pr_warn("loadBalancerSourceRanges: entry not deleted", "service=%s error=\"%s\"",
			svc_key, strerror(-first_err));
	if (!set && keep.n)
		set = set_get(sr, svc_key);
	if (!set) {
		free(keep.keys);
		return keep.n ? -ENOMEM : first_err;
	}
	free(set->keys);
	*set = keep;
	if (!set->n)
		set_free(ht_del(&sr->by_service, svc_key, strlen(svc_key)));
	return first_err;
}

int lb_src_ranges_prune(struct lb_src_ranges *sr)
{
	struct ht_entry *e = ht_first(&sr->restored);
	int first_err = 0;

	while (e) {
		int err = entry_delete(sr, (const void *)e->key);

		if (err && !first_err)
			first_err = err;
		e = ht_del_iter(&sr->restored, e);
	}
	return first_err;
}

/* Whether some service's set holds k. */
static bool claimed(const struct lb_src_ranges *sr, const struct lb4_src_range_key *k)
{
	for (struct ht_entry *e = ht_first(&sr->by_service); e; e = ht_next(&sr->by_service, e))
		if (set_has(e->value, k))
			return true;
	return false;
}

static void first_error(int *first, int err)
{
	if (err && !*first)
		*first = err;
}

int lb_src_ranges_resync(struct lb_src_ranges *sr)
{
	struct lb4_src_range_key k, next, *stray = NULL;
	size_t n_stray = 0, cap = 0;
	struct htable found;
	bool first = true;
	int first_err = 0, repaired = 0, err;

	if (!lb_src_ranges_available(sr))
		return 0;
	err = ht_init(&found);
	if (err)
		return err;
	/* Collect first, delete after: deleting while walking restarts the walk. */
	while (!bpf_map_get_next_key(sr->fd, first ? NULL : &k, &next)) {
		first = false;
		k = next;
		err = ht_put(&found, &k, sizeof(k), (void *)1, NULL);
		if (!err && !claimed(sr, &k) && !ht_get(&sr->restored, &k, sizeof(k))) {
			if (n_stray == cap) {
				struct lb4_src_range_key *p;

				cap = cap ? cap * 2 : 8;
				p = realloc(stray, cap * sizeof(*p));
				if (!p)
					err = -ENOMEM;
				else
					stray = p;
			}
			if (!err)
				stray[n_stray++] = k;
		}
		if (err)
			goto out;
	}
	if (errno != ENOENT) {
		err = -errno;
		goto out;
	}
	for (struct ht_entry *e = ht_first(&sr->by_service); e; e = ht_next(&sr->by_service, e)) {
		const struct lb_src_range_set *set = e->value;

		for (size_t i = 0; i < set->n; i++) {
			if (ht_get(&found, &set->keys[i], sizeof(set->keys[i])))
				continue;
			err = entry_write(sr, &set->keys[i]);
			first_error(&first_err, err);
			repaired += !err;
		}
	}
	for (size_t i = 0; i < n_stray; i++) {
		err = entry_delete(sr, &stray[i]);
		first_error(&first_err, err);
		repaired += !err;
	}
	err = 0;
out:
	free(stray);
	ht_destroy(&found);
	if (err)
		return err;
	if (repaired)
		pr_warn("full reconcile repaired drift", "map=lb4_source_range repaired=%d",
			repaired);
	return first_err ? first_err : repaired;
}
