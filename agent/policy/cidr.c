// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * CIDR identities (cidr.h): the prefixes in a sorted array, their numbers in
 * a hash table (by_id), so a sync costs one binary search per prefix a policy names
 * and an allocation one lookup per number tried.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "htable.h"
#include "log.h"
#include "policy/cidr.h"

static struct policy_cidr prefix_v4(__be32 addr, __u8 len)
{
	struct policy_cidr p = {.family = AF_INET, .len = len};
	__u32 host = ntohl(addr);

	host &= len ? ~0u << (32 - len) : 0;
	addr = htonl(host);
	memcpy(p.addr, &addr, 4);
	return p;
}

static int prefix_cmp(const struct policy_cidr *a, const struct policy_cidr *b)
{
	int c = memcmp(a->addr, b->addr, 4);

	if (c)
		return c;
	return (int)a->len - (int)b->len;
}

static size_t find(const struct cidr_ids *c, const struct policy_cidr *p, bool *found)
{
	size_t lo = 0, hi = c->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = prefix_cmp(&c->v[mid]->prefix, p);

		if (!d) {
			*found = true;
			return mid;
		}
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Cilium's CIDR identity labels: cidr:<prefix>, reserved:world. */
static void labels_fill(struct cidr_prefix *p)
{
	snprintf(p->text, sizeof(p->text), "%u.%u.%u.%u/%u", p->prefix.addr[0], p->prefix.addr[1],
		 p->prefix.addr[2], p->prefix.addr[3], p->prefix.len);
	p->labels[0] = (struct policy_label){"cidr", p->text, ""};
	p->labels[1] = (struct policy_label){LABEL_SOURCE_RESERVED, "world", ""};
	label_set_sort(p->labels, 2);
	p->set.labels = p->labels;
	p->set.n = 2;
}

static struct cidr_prefix *insert(struct cidr_ids *c, const struct policy_cidr *pfx)
{
	struct cidr_prefix *p;
	bool found;
	size_t i = find(c, pfx, &found);

	if (found)
		return c->v[i];
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct cidr_prefix **v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		c->v = v;
		c->cap = cap;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->prefix = *pfx;
	labels_fill(p);
	memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof(*c->v));
	c->v[i] = p;
	c->n++;
	c->revision++;
	return p;
}

int cidr_ids_init(struct cidr_ids *c, __u32 max)
{
	memset(c, 0, sizeof(*c));
	c->max = max;
	c->last = IDENTITY_CIDR_MIN - 1;
	return ht_init(&c->by_id);
}

void cidr_ids_destroy(struct cidr_ids *c)
{
	if (c->by_id.buckets)
		ht_destroy(&c->by_id);
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i]);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

int cidr_ids_restore(struct cidr_ids *c, __be32 addr, __u8 len, __u32 id)
{
	struct policy_cidr pfx = prefix_v4(addr, len);
	struct htable *ids = &c->by_id;
	struct cidr_prefix *p;
	bool found;

	if (id < IDENTITY_CIDR_MIN || id > IDENTITY_CIDR_MAX || len > 32)
		return -EINVAL;
	find(c, &pfx, &found);
	if (found || ht_get(ids, &id, sizeof(id)))
		return -EEXIST;
	p = insert(c, &pfx);
	if (!p)
		return -ENOMEM;
	if (ht_put(ids, &id, sizeof(id), p, NULL))
		return -ENOMEM;
	p->id = id;
	p->restored = true;
	p->written = true;
	if (id > c->last)
		c->last = id;
	return 0;
}

/* The next free number after the last one given, so a released number is
 * the last to come back (an ipcache entry whose delete failed keeps it). */
static __u32 alloc_id(struct cidr_ids *c, struct htable *ids)
{
	__u32 span = IDENTITY_CIDR_MAX - IDENTITY_CIDR_MIN + 1;

	if (ids->count >= c->max)
		return 0;
	for (__u32 k = 1; k <= span; k++) {
		__u32 id = IDENTITY_CIDR_MIN + (c->last - IDENTITY_CIDR_MIN + k) % span;

		if (!ht_get(ids, &id, sizeof(id))) {
			c->last = id;
			return id;
		}
	}
	return 0;
}

static int name_prefix(struct cidr_ids *c, const struct policy_cidr *raw)
{
	struct policy_cidr pfx;
	__be32 a;
	struct cidr_prefix *p;

	/* IPv6 prefixes never match Axon's IPv4 traffic. */
	if (raw->family != AF_INET)
		return 0;
	memcpy(&a, raw->addr, 4);
	pfx = prefix_v4(a, raw->len);
	p = insert(c, &pfx);
	if (!p)
		return -ENOMEM;
	p->used = true;
	return 0;
}

static int name_entries(struct cidr_ids *c, const struct policy_rule_entry *e, size_t n)
{
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		for (size_t k = 0; k < e[i].n_peers && !err; k++) {
			const struct policy_peer *peer = &e[i].peers[k];

			if (peer->kind != POLICY_PEER_CIDR)
				continue;
			err = name_prefix(c, &peer->cidr.cidr);
			for (size_t x = 0; x < peer->cidr.n_except && !err; x++)
				err = name_prefix(c, &peer->cidr.except[x]);
		}
	}
	return err;
}

static bool broken(const struct cidr_prefix *p)
{
	return !p->id || p->err;
}

/* Every prefix without a working identity into the selector cache. */
static int broken_sync(struct cidr_ids *c, struct selector_cache *sc)
{
	struct policy_cidr *v = NULL;
	size_t n = 0;
	int err;

	for (size_t i = 0; i < c->n; i++)
		n += broken(c->v[i]);
	if (n && !(v = malloc(n * sizeof(*v))))
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; i < c->n; i++)
		if (broken(c->v[i]))
			v[n++] = c->v[i]->prefix;
	err = sc_cidr_set_broken(sc, v, n);
	free(v);
	return err;
}

int cidr_ids_sync(struct cidr_ids *c, struct selector_cache *sc, const struct policy *const *pols,
		  size_t n)
{
	struct htable *ids = &c->by_id;
	unsigned int failed = 0;
	size_t out = 0;
	int err = 0;

	for (size_t i = 0; i < c->n; i++)
		c->v[i]->used = false;
	for (size_t i = 0; i < n && !err; i++) {
		for (size_t r = 0; r < pols[i]->n_rules && !err; r++) {
			const struct policy_rule *rule = &pols[i]->rules[r];

			if (rule->node_subject)
				continue;
			err = name_entries(c, rule->ingress, rule->n_ingress);
			if (!err)
				err = name_entries(c, rule->egress, rule->n_egress);
		}
	}
	if (err)
		return err;
	/* Released first, so their numbers count as free for the new ones. */
	for (size_t i = 0; i < c->n; i++) {
		struct cidr_prefix *p = c->v[i];

		if (p->used) {
			c->v[out++] = p;
			continue;
		}
		if (p->in_sc)
			sc_identity_delete(sc, p->id);
		if (p->id)
			ht_del(ids, &p->id, sizeof(p->id));
		free(p);
		c->revision++;
	}
	c->n = out;
	for (size_t i = 0; i < c->n; i++) {
		struct cidr_prefix *p = c->v[i];

		p->restored = false;
		if (!p->id) {
			p->id = alloc_id(c, ids);
			if (p->id && ht_put(ids, &p->id, sizeof(p->id), p, NULL)) {
				p->id = 0;
				return -ENOMEM;
			}
			if (!p->id) {
				failed++;
				continue;
			}
			c->revision++;
		}
		if (!p->in_sc) {
			err = sc_identity_set_cidr(sc, p->id, &p->set, &p->prefix);
			if (err)
				return err;
			p->in_sc = true;
		}
	}
	if (failed != c->alloc_failures && failed)
		pr_warn("CIDR prefixes left without an identity; their rules fail closed",
			"prefixes=%u max=%u", failed, c->max);
	c->alloc_failures = failed;
	c->dirty = false;
	err = broken_sync(c, sc);
	return err ? err : (int)failed;
}

void cidr_ids_written(struct cidr_ids *c, __be32 addr, __u8 len, int err)
{
	struct policy_cidr pfx = prefix_v4(addr, len);
	bool found;
	size_t i = find(c, &pfx, &found);
	struct cidr_prefix *p;

	if (!found)
		return;
	p = c->v[i];
	if (!!p->err != !!err)
		c->dirty = true;
	p->err = err;
	p->written = !err;
}

const struct cidr_prefix *cidr_ids_find(const struct cidr_ids *c, __be32 addr, __u8 len)
{
	struct policy_cidr pfx = prefix_v4(addr, len);
	bool found;
	size_t i = find(c, &pfx, &found);

	return found ? c->v[i] : NULL;
}

cJSON *cidr_ids_status(const struct cidr_ids *c)
{
	cJSON *o = cJSON_CreateObject(), *failed;
	size_t with_id = 0;

	if (!o)
		return NULL;
	failed = cJSON_AddArrayToObject(o, "failed");
	for (size_t i = 0; i < c->n; i++) {
		const struct cidr_prefix *p = c->v[i];
		cJSON *f;

		with_id += p->id != 0;
		if (!broken(p) || !(f = cJSON_CreateObject()))
			continue;
		cJSON_AddStringToObject(f, "prefix", p->text);
		cJSON_AddNumberToObject(f, "identity", p->id);
		cJSON_AddStringToObject(f, "error",
					!p->id ? "no CIDR identity left" : strerror(-p->err));
		cJSON_AddItemToArray(failed, f);
	}
	cJSON_AddNumberToObject(o, "identities", (double)with_id);
	cJSON_AddNumberToObject(o, "max", c->max);
	return o;
}
