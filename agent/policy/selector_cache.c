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

static bool evaluate(struct selector_cache *sc, const struct sc_selector *s,
		     const struct sc_identity *ident)
{
	sc->evaluations++;
	return selector_matches_sets(s->sel, ident->sets, ident->n_sets);
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

int sc_identity_set(struct selector_cache *sc, __u32 id, const struct label_set *const *sets,
		    size_t n_sets)
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

	sc->revision++;
	for (size_t k = 0; k < sc->n_sels; k++) {
		err = sel_update(sc, sc->sels[k], id, evaluate(sc, sc->sels[k], ident));
		if (err)
			return err;
	}
	return 0;
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
	}
	if (sc->by_ptr.buckets)
		ht_destroy(&sc->by_ptr);
	memset(&sc->by_ptr, 0, sizeof(sc->by_ptr));
}

/* Remembered by pointer, when memory allows (sc_lookup() falls back to the key). */
static void by_ptr_put(struct selector_cache *sc, const struct policy_selector *sel,
		       struct sc_selector *s)
{
	if (!sc->by_ptr.buckets && ht_init(&sc->by_ptr)) {
		memset(&sc->by_ptr, 0, sizeof(sc->by_ptr));
		return;
	}
	ht_put(&sc->by_ptr, &sel, sizeof(sel), s, NULL);
}

static const struct sc_selector *capture_ref(struct selector_cache *sc,
					     const struct policy_selector *sel, int *err);

const struct sc_selector *sc_add(struct selector_cache *sc, const struct policy_selector *sel,
				 int *err)
{
	char key[SC_KEY_MAX];
	struct sc_selector *s;
	bool found;
	size_t i;

	if (sc->capture)
		return capture_ref(sc, sel, err);
	*err = sc_selector_key(sel, key, sizeof(key));
	if (*err)
		return NULL;
	i = sel_find(sc, key, &found);
	if (found) {
		s = sc->sels[i];
		s->used = true;
		s->sel = sel;
		by_ptr_put(sc, sel, s);
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
	s->used = true;
	s->revision = sc->revision;
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
	by_ptr_put(sc, sel, s);
	return s;
nomem:
	*err = -ENOMEM;
	return NULL;
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

static int ptr_push(struct sc_selector *s, const struct policy_selector *sel)
{
	if (s->refs == s->cap_ptrs) {
		size_t cap = s->cap_ptrs ? s->cap_ptrs * 2 : 4;
		const struct policy_selector **n = realloc(s->ptrs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->ptrs = n;
		s->cap_ptrs = cap;
	}
	s->ptrs[s->refs++] = sel;
	return 0;
}

const struct sc_selector *sc_ref(struct selector_cache *sc, const struct policy_selector *sel,
				 int *err)
{
	struct sc_selector *s;

	if (!sc->by_ptr.buckets && (*err = ht_init(&sc->by_ptr))) {
		memset(&sc->by_ptr, 0, sizeof(sc->by_ptr));
		return NULL;
	}
	/* sc_add() finds or creates (and evaluates) it, and maps the pointer. */
	s = (struct sc_selector *)sc_add(sc, sel, err);
	if (!s)
		return NULL;
	if (ht_get(&sc->by_ptr, &sel, sizeof(sel)) != s || (*err = ptr_push(s, sel))) {
		if (!*err)
			*err = -ENOMEM;
		ht_del(&sc->by_ptr, &sel, sizeof(sel));
		s->used = s->refs > 0;
		return NULL;
	}
	/* Evaluations read the first live pointer. */
	s->sel = s->ptrs[0];
	return s;
}

void sc_unref(struct selector_cache *sc, const struct policy_selector *sel)
{
	struct sc_selector *s = sc->by_ptr.buckets ? ht_del(&sc->by_ptr, &sel, sizeof(sel)) : NULL;

	if (!s)
		return;
	for (size_t i = 0; i < s->refs; i++) {
		if (s->ptrs[i] != sel)
			continue;
		s->ptrs[i] = s->ptrs[--s->refs];
		break;
	}
	s->sel = s->refs ? s->ptrs[0] : NULL;
	s->used = s->refs > 0;
}

void sc_sweep(struct selector_cache *sc)
{
	sc_end(sc);
}

void sc_capture(struct selector_cache *sc, struct sc_capture *cap)
{
	sc->capture = cap;
}

static const struct sc_selector *capture_ref(struct selector_cache *sc,
					     const struct policy_selector *sel, int *err)
{
	struct sc_capture *c = sc->capture;
	const struct sc_selector *s;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		const struct policy_selector **n = realloc(c->ptrs, cap * sizeof(*n));

		if (!n) {
			*err = -ENOMEM;
			return NULL;
		}
		c->ptrs = n;
		c->cap = cap;
	}
	sc->capture = NULL; /* sc_ref() adds through sc_add() */
	s = sc_ref(sc, sel, err);
	sc->capture = c;
	if (s)
		c->ptrs[c->n++] = sel;
	return s;
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

bool sc_selects(const struct sc_selector *s, __u32 id)
{
	bool found;

	id_find(s->ids, s->n_ids, id, &found);
	return found;
}
