// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The selector cache (selector_cache.h): sorted arrays, binary searches.
 * A node has a few hundred identities and a few hundred distinct selectors;
 * what matters is evaluating each selector once per identity change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/selector_cache.h"

#define SC_KEY_MAX 8192

void sc_init(struct selector_cache *sc)
{
	memset(sc, 0, sizeof(*sc));
}

static void sel_free(struct sc_selector *s)
{
	free(s->ptrs);
	free(s->key);
	free(s->ids);
	free(s);
}

void sc_destroy(struct selector_cache *sc)
{
	for (size_t i = 0; i < sc->n_sels; i++)
		sel_free(sc->sels[i]);
	free(sc->sels);
	free(sc->ids);
	free(sc->broken);
	if (sc->by_ptr.buckets)
		ht_destroy(&sc->by_ptr);
	memset(sc, 0, sizeof(*sc));
}

int sc_selector_key(const struct policy_selector *sel, char *buf, size_t len)
{
	size_t off = 0;

	if (!len)
		return -ENOSPC;
	buf[0] = '\0';
	for (size_t i = 0; i < sel->n_reqs; i++) {
		char req[LABEL_KEY_MAX + 64];
		size_t rl;

		/* A requirement's text is bounded by its key; values are joined
		 * here so that a long In list is never truncated. */
		const struct sel_req *r = &sel->reqs[i];

		rl = (size_t)snprintf(req, sizeof(req), "%s%s:%s %d", i ? ";" : "", r->source,
				      r->key, (int)r->op);
		if (rl >= sizeof(req) || off + rl >= len)
			return -ENOSPC;
		memcpy(buf + off, req, rl + 1);
		off += rl;
		for (size_t v = 0; v < r->n_values; v++) {
			size_t vl = strlen(r->values[v]);

			if (off + vl + 2 >= len)
				return -ENOSPC;
			buf[off++] = v ? ',' : ' ';
			memcpy(buf + off, r->values[v], vl + 1);
			off += vl;
		}
	}
	return 0;
}

int sc_cidr_key(const struct policy_cidr_rule *rule, char *buf, size_t len)
{
	char p[64];
	size_t off;

	policy_cidr_format(&rule->cidr, p, sizeof(p));
	off = (size_t)snprintf(buf, len, "cidr:%s", p);
	for (size_t i = 0; i < rule->n_except && off < len; i++) {
		policy_cidr_format(&rule->except[i], p, sizeof(p));
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : " except ", p);
	}
	return off < len ? 0 : -ENOSPC;
}

bool policy_cidr_inside(const struct policy_cidr *in, const struct policy_cidr *out)
{
	unsigned int full, rest;

	if (in->family != out->family || in->len < out->len)
		return false;
	full = out->len / 8;
	rest = out->len % 8;
	if (memcmp(in->addr, out->addr, full))
		return false;
	return !rest || !((in->addr[full] ^ out->addr[full]) & (0xff00u >> rest) & 0xff);
}

/* Index of key in sels, or where it would go (*found false). */
static size_t sel_find(const struct selector_cache *sc, const char *key, bool *found)
{
	size_t lo = 0, hi = sc->n_sels;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sc->sels[mid]->key, key);

		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t id_find(const __u32 *ids, size_t n, __u32 id, bool *found)
{
	size_t lo = 0, hi = n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ids[mid] == id) {
			*found = true;
			return mid;
		}
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t ident_find(const struct selector_cache *sc, __u32 id, bool *found)
{
	size_t lo = 0, hi = sc->n_ids;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sc->ids[mid].id == id) {
			*found = true;
			return mid;
		}
		if (sc->ids[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A CIDR selector selects a CIDR identity whose prefix is inside its CIDR and
 * inside none of its excepts; a /0 also selects world, as Cilium's 0.0.0.0/0. */
static bool cidr_selects(const struct policy_cidr_rule *rule, const struct sc_identity *ident)
{
	if (!ident->has_prefix)
		return ident->id == RESERVED_IDENTITY_WORLD && rule->cidr.family == AF_INET &&
		       !rule->cidr.len;
	if (!policy_cidr_inside(&ident->prefix, &rule->cidr))
		return false;
	for (size_t i = 0; i < rule->n_except; i++)
		if (policy_cidr_inside(&ident->prefix, &rule->except[i]))
			return false;
	return true;
}

static bool evaluate(struct selector_cache *sc, const struct sc_selector *s,
		     const struct sc_identity *ident)
{
	sc->evaluations++;
	if (s->cidr)
		return cidr_selects(s->cidr, ident);
	return selector_matches_sets(s->sel, ident->sets, ident->n_sets);
}

static void cidr_broken_eval(const struct selector_cache *sc, struct sc_selector *s)
{
	s->broken = false;
	for (size_t i = 0; s->cidr && i < sc->n_broken && !s->broken; i++)
		s->broken = policy_cidr_inside(&sc->broken[i], &s->cidr->cidr);
}

/* Put id in or take it out of s's set, stamping s when that changed it. */
static int sel_update(struct selector_cache *sc, struct sc_selector *s, __u32 id, bool in)
{
	bool found;
	size_t i = id_find(s->ids, s->n_ids, id, &found);

	if (found == in)
		return 0;
	if (!in) {
		memmove(&s->ids[i], &s->ids[i + 1], (s->n_ids - i - 1) * sizeof(*s->ids));
		s->n_ids--;
	} else {
		if (s->n_ids == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 8;
			__u32 *n = realloc(s->ids, cap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			s->ids = n;
			s->cap = cap;
		}
		memmove(&s->ids[i + 1], &s->ids[i], (s->n_ids - i) * sizeof(*s->ids));
		s->ids[i] = id;
		s->n_ids++;
	}
	s->revision = sc->revision;
	return 0;
}

static int identity_set(struct selector_cache *sc, __u32 id, const struct label_set *const *sets,
			size_t n_sets, const struct policy_cidr *prefix)
{
	struct sc_identity *ident;
	bool found;
	size_t i;
	int err;

	if (n_sets > SC_SETS_MAX)
		return -EINVAL;
	i = ident_find(sc, id, &found);
	if (!found) {
		if (sc->n_ids == sc->cap_ids) {
			size_t cap = sc->cap_ids ? sc->cap_ids * 2 : 64;
			struct sc_identity *n = realloc(sc->ids, cap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			sc->ids = n;
			sc->cap_ids = cap;
		}
		memmove(&sc->ids[i + 1], &sc->ids[i], (sc->n_ids - i) * sizeof(*sc->ids));
		sc->n_ids++;
	}
	ident = &sc->ids[i];
	memset(ident, 0, sizeof(*ident));
	ident->id = id;
	for (size_t k = 0; k < n_sets; k++)
		ident->sets[k] = sets[k];
	ident->n_sets = n_sets;
	if (prefix) {
		ident->has_prefix = true;
		ident->prefix = *prefix;
	}

	sc->revision++;
	for (size_t k = 0; k < sc->n_sels; k++) {
		err = sel_update(sc, sc->sels[k], id, evaluate(sc, sc->sels[k], ident));
		if (err)
			return err;
	}
	return 0;
}

int sc_identity_set(struct selector_cache *sc, __u32 id, const struct label_set *const *sets,
		    size_t n_sets)
{
	return identity_set(sc, id, sets, n_sets, NULL);
}

int sc_identity_set_cidr(struct selector_cache *sc, __u32 id, const struct label_set *set,
			 const struct policy_cidr *prefix)
{
	return identity_set(sc, id, &set, 1, prefix);
}

int sc_identity_repoint(struct selector_cache *sc, __u32 id, const struct label_set *const *sets,
			size_t n_sets)
{
	bool found;
	size_t i = ident_find(sc, id, &found);

	if (!found)
		return -ENOENT;
	if (n_sets > SC_SETS_MAX)
		return -EINVAL;
	for (size_t k = 0; k < n_sets; k++)
		sc->ids[i].sets[k] = sets[k];
	sc->ids[i].n_sets = n_sets;
	return 0;
}

void sc_identity_delete(struct selector_cache *sc, __u32 id)
{
	bool found;
	size_t i = ident_find(sc, id, &found);

	if (!found)
		return;
	memmove(&sc->ids[i], &sc->ids[i + 1], (sc->n_ids - i - 1) * sizeof(*sc->ids));
	sc->n_ids--;
	sc->revision++;
	/* Taking an id out never allocates. */
	for (size_t k = 0; k < sc->n_sels; k++)
		sel_update(sc, sc->sels[k], id, false);
}

const struct sc_identity *sc_identity_get(const struct selector_cache *sc, __u32 id)
{
	bool found;
	size_t i = ident_find(sc, id, &found);

	return found ? &sc->ids[i] : NULL;
}

void sc_begin(struct selector_cache *sc)
{
	for (size_t i = 0; i < sc->n_sels; i++) {
		sc->sels[i]->used = false;
		sc->sels[i]->sel = NULL;
		sc->sels[i]->cidr = NULL;
	}
	if (sc->by_ptr.buckets)
		ht_destroy(&sc->by_ptr);
	memset(&sc->by_ptr, 0, sizeof(sc->by_ptr));
}

/* Remembered by pointer, when memory allows (sc_lookup() falls back to the key). */
static void by_ptr_put(struct selector_cache *sc, const void *ptr, struct sc_selector *s)
{
	if (!sc->by_ptr.buckets && ht_init(&sc->by_ptr)) {
		memset(&sc->by_ptr, 0, sizeof(sc->by_ptr));
		return;
	}
	ht_put(&sc->by_ptr, &ptr, sizeof(ptr), s, NULL);
}

/* The selector keyed key, for sel or (a CIDR one) rule: found, or created
 * and evaluated against every identity. */
static const struct sc_selector *add_keyed(struct selector_cache *sc, const char *key,
					   const struct policy_selector *sel,
					   const struct policy_cidr_rule *rule, const void *ptr,
					   int *err)
{
	struct sc_selector *s;
	bool found;
	size_t i;

	*err = 0;
	i = sel_find(sc, key, &found);
	if (found) {
		s = sc->sels[i];
		s->used = true;
		s->sel = sel;
		s->cidr = rule;
		by_ptr_put(sc, ptr, s);
		return s;
	}
	if (sc->n_sels == sc->cap_sels) {
		size_t cap = sc->cap_sels ? sc->cap_sels * 2 : 32;
		struct sc_selector **n = realloc(sc->sels, cap * sizeof(*n));

		if (!n)
			goto nomem;
		sc->sels = n;
		sc->cap_sels = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto nomem;
	s->key = strdup(key);
	if (!s->key) {
		free(s);
		goto nomem;
	}
	s->sel = sel;
	s->cidr = rule;
	s->used = true;
	s->revision = sc->revision;
	cidr_broken_eval(sc, s);
	for (size_t k = 0; k < sc->n_ids; k++) {
		if (!evaluate(sc, s, &sc->ids[k]))
			continue;
		*err = sel_update(sc, s, sc->ids[k].id, true);
		if (*err) {
			sel_free(s);
			return NULL;
		}
	}
	memmove(&sc->sels[i + 1], &sc->sels[i], (sc->n_sels - i) * sizeof(*sc->sels));
	sc->sels[i] = s;
	sc->n_sels++;
	by_ptr_put(sc, ptr, s);
	return s;
nomem:
	*err = -ENOMEM;
	return NULL;
}

static const struct sc_selector *ref_keyed(struct selector_cache *sc, const char *key,
					   const struct policy_selector *sel,
					   const struct policy_cidr_rule *rule, const void *ptr,
					   int *err);

const struct sc_selector *sc_add(struct selector_cache *sc, const struct policy_selector *sel,
				 int *err)
{
	char key[SC_KEY_MAX];

	*err = sc_selector_key(sel, key, sizeof(key));
	if (*err)
		return NULL;
	if (sc->capture)
		return ref_keyed(sc, key, sel, NULL, sel, err);
	return add_keyed(sc, key, sel, NULL, sel, err);
}

const struct sc_selector *sc_add_cidr(struct selector_cache *sc,
				      const struct policy_cidr_rule *rule, int *err)
{
	char key[SC_KEY_MAX];

	*err = sc_cidr_key(rule, key, sizeof(key));
	if (*err)
		return NULL;
	if (sc->capture)
		return ref_keyed(sc, key, NULL, rule, rule, err);
	return add_keyed(sc, key, NULL, rule, rule, err);
}

int sc_cidr_set_broken(struct selector_cache *sc, const struct policy_cidr *v, size_t n)
{
	struct policy_cidr *copy = NULL;

	if (n && !(copy = malloc(n * sizeof(*copy))))
		return -ENOMEM;
	if (n)
		memcpy(copy, v, n * sizeof(*copy));
	free(sc->broken);
	sc->broken = copy;
	sc->n_broken = n;
	/* A selector turning broken or whole again changes what the engine
	 * writes for it: stamped like a change of its set. */
	sc->revision++;
	for (size_t i = 0; i < sc->n_sels; i++) {
		bool was = sc->sels[i]->broken;

		cidr_broken_eval(sc, sc->sels[i]);
		if (sc->sels[i]->broken != was)
			sc->sels[i]->revision = sc->revision;
	}
	return 0;
}

void sc_end(struct selector_cache *sc)
{
	size_t out = 0;

	for (size_t i = 0; i < sc->n_sels; i++) {
		if (sc->sels[i]->used)
			sc->sels[out++] = sc->sels[i];
		else
			sel_free(sc->sels[i]);
	}
	sc->n_sels = out;
}

/* Reference s by ptr: in its pointers, and the capture's when capturing. */
static int ptr_push(struct selector_cache *sc, struct sc_selector *s, const void *ptr)
{
	struct sc_capture *c = sc->capture;

	if (s->refs == s->cap_ptrs) {
		size_t cap = s->cap_ptrs ? s->cap_ptrs * 2 : 4;
		const void **n = realloc(s->ptrs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->ptrs = n;
		s->cap_ptrs = cap;
	}
	if (c && c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		const void **n = realloc(c->ptrs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->ptrs = n;
		c->cap = cap;
	}
	s->ptrs[s->refs++] = ptr;
	if (c)
		c->ptrs[c->n++] = ptr;
	return 0;
}

/* Evaluations read the first pointer still referenced. */
static void ptr_first(struct sc_selector *s, bool cidr)
{
	if (cidr)
		s->cidr = s->refs ? s->ptrs[0] : NULL;
	else
		s->sel = s->refs ? s->ptrs[0] : NULL;
	s->used = s->refs > 0;
}

static const struct sc_selector *ref_keyed(struct selector_cache *sc, const char *key,
					   const struct policy_selector *sel,
					   const struct policy_cidr_rule *rule, const void *ptr,
					   int *err)
{
	struct sc_selector *s = (struct sc_selector *)add_keyed(sc, key, sel, rule, ptr, err);

	if (!s)
		return NULL;
	if (ht_get(&sc->by_ptr, &ptr, sizeof(ptr)) != s || (*err = ptr_push(sc, s, ptr))) {
		if (!*err)
			*err = -ENOMEM;
		ht_del(&sc->by_ptr, &ptr, sizeof(ptr));
		ptr_first(s, rule);
		return NULL;
	}
	ptr_first(s, rule);
	return s;
}

const struct sc_selector *sc_ref(struct selector_cache *sc, const struct policy_selector *sel,
				 int *err)
{
	char key[SC_KEY_MAX];

	*err = sc_selector_key(sel, key, sizeof(key));
	if (*err)
		return NULL;
	return ref_keyed(sc, key, sel, NULL, sel, err);
}

void sc_unref(struct selector_cache *sc, const void *ptr)
{
	struct sc_selector *s = sc->by_ptr.buckets ? ht_del(&sc->by_ptr, &ptr, sizeof(ptr)) : NULL;
	bool cidr;

	if (!s)
		return;
	cidr = s->cidr;
	for (size_t i = 0; i < s->refs; i++) {
		if (s->ptrs[i] != ptr)
			continue;
		s->ptrs[i] = s->ptrs[--s->refs];
		break;
	}
	ptr_first(s, cidr);
}

void sc_sweep(struct selector_cache *sc)
{
	sc_end(sc);
}

void sc_capture(struct selector_cache *sc, struct sc_capture *cap)
{
	sc->capture = cap;
}

const struct sc_selector *sc_lookup(const struct selector_cache *sc,
				    const struct policy_selector *sel)
{
	char key[SC_KEY_MAX];
	struct sc_selector *s;
	bool found;
	size_t i;

	if (sc->by_ptr.buckets && (s = ht_get(&sc->by_ptr, &sel, sizeof(sel))))
		return s;
	if (sc_selector_key(sel, key, sizeof(key)))
		return NULL;
	i = sel_find(sc, key, &found);
	return found && sc->sels[i]->used ? sc->sels[i] : NULL;
}

const struct sc_selector *sc_lookup_cidr(const struct selector_cache *sc,
					 const struct policy_cidr_rule *rule)
{
	char key[SC_KEY_MAX];
	struct sc_selector *s;
	bool found;
	size_t i;

	if (sc->by_ptr.buckets && (s = ht_get(&sc->by_ptr, &rule, sizeof(rule))))
		return s;
	if (sc_cidr_key(rule, key, sizeof(key)))
		return NULL;
	i = sel_find(sc, key, &found);
	return found && sc->sels[i]->used && sc->sels[i]->cidr ? sc->sels[i] : NULL;
}

bool sc_selects(const struct sc_selector *s, __u32 id)
{
	bool found;

	id_find(s->ids, s->n_ids, id, &found);
	return found;
}
