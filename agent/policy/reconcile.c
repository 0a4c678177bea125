// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The policy reconciler (reconcile.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "backoff.h"
#include "endpoints/desired.h"
#include "log.h"
#include "policy/map.h"
#include "policy/reconcile.h"

#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS	30000

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return fnv(h, s, strlen(s) + 1);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The selectors of one policy held in the cache, as engine_register()
 * added them (by the policy's pointers, which may be freed by the store
 * before they are unreferenced). */
struct pol_reg {
	const void **sels; /* selectors and CIDR rules */
	size_t n;
};

static void reg_free(void *p)
{
	struct pol_reg *reg = p;

	free(reg->sels);
	free(reg);
}

int pol_reconciler_init(struct pol_reconciler *r, int outer_fd, __u32 map_max)
{
	int err;

	memset(r, 0, sizeof(*r));
	sc_init(&r->sc);
	r->used_ids = calloc(65536 / 8, 1);
	policy_maps_init(&r->pm, outer_fd, map_max);
	if (!r->used_ids)
		return -ENOMEM;
	err = ht_init(&r->endpoints);
	if (!err)
		err = ht_init(&r->regs);
	if (!err)
		err = cidr_ids_init(&r->cidr, CIDR_IDS_MAX);
	if (err)
		return err;
	/* The reserved identities: built in, never change. */
	for (__u32 id = 1; id <= RESERVED_IDENTITY_LAST; id++) {
		const struct label_set *set = identity_reserved_labels(id);

		if (set && (err = sc_identity_set(&r->sc, id, &set, 1)))
			return err;
	}
	return 0;
}

static void endpoint_free(void *p)
{
	struct pol_endpoint *pe = p;

	policy_map_realized_free(&pe->real);
	free(pe->pols);
	free(pe);
}

void pol_reconciler_destroy(struct pol_reconciler *r)
{
	if (r->endpoints.buckets)
		ht_destroy_with(&r->endpoints, endpoint_free);
	if (r->regs.buckets)
		ht_destroy_with(&r->regs, reg_free);
	sc_destroy(&r->sc);
	cidr_ids_destroy(&r->cidr);
	peer_ports_free(&r->peer_ports);
	free(r->used_ids);
	free(r->pols);
	free(r->pol_hashes);
	free(r->sel_pols);
	free(r->rules);
	free(r->dep_sels);
	memset(r, 0, sizeof(*r));
}

static uint64_t key_hash(const void *key, size_t len)
{
	return fnv(1469598103934665603ull, key, len);
}

static size_t entry_deps(const struct selector_cache *sc, const struct policy_rule_entry *e,
			 size_t n, const struct sc_selector **out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		/* The wildcard peer is none: the engine writes it as identity 0. */
		for (size_t p = 0; p < e[i].n_peers; p++) {
			const struct policy_peer *peer = &e[i].peers[p];

			if (peer->kind == POLICY_PEER_CIDR) {
				if (out)
					out[k] = sc_lookup_cidr(sc, &peer->cidr);
				k++;
				continue;
			}
			if (peer->kind != POLICY_PEER_SELECTOR || !peer->sel.n_reqs)
				continue;
			if (out)
				out[k] = sc_lookup(sc, &peer->sel);
			k++;
		}
		for (size_t q = 0; q < e[i].n_requires; q++) {
			if (out)
				out[k] = sc_lookup(sc, &e[i].requires[q]);
			k++;
		}
	}
	return k;
}

static bool egress_named(const struct policy_rule *rule)
{
	for (size_t i = 0; i < rule->n_egress; i++)
		for (size_t k = 0; k < rule->egress[i].n_ports; k++)
			if (rule->egress[i].ports[k].name && rule->egress[i].ports[k].name[0])
				return true;
	return false;
}

/* Every rule's selectors looked up once, after the policies are registered. */
static int rules_index(struct pol_reconciler *r)
{
	size_t n_rules = 0, n_deps = 0, k = 0, d = 0;

	for (size_t i = 0; i < r->n_pols; i++) {
		for (size_t j = 0; j < r->pols[i]->n_rules; j++) {
			const struct policy_rule *rule = &r->pols[i]->rules[j];

			n_rules++;
			n_deps += entry_deps(&r->sc, rule->ingress, rule->n_ingress, NULL) +
				  entry_deps(&r->sc, rule->egress, rule->n_egress, NULL);
		}
	}
	free(r->rules);
	free(r->dep_sels);
	r->n_rules = 0;
	r->rules = calloc(n_rules ? n_rules : 1, sizeof(*r->rules));
	r->dep_sels = calloc(n_deps ? n_deps : 1, sizeof(*r->dep_sels));
	if (!r->rules || !r->dep_sels)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_pols; i++) {
		for (size_t j = 0; j < r->pols[i]->n_rules; j++) {
			const struct policy_rule *rule = &r->pols[i]->rules[j];
			struct pol_rule_ref *ref = &r->rules[k++];

			ref->pol = i;
			ref->subject =
			    rule->node_subject ? NULL : sc_lookup(&r->sc, &rule->subject);
			ref->deps = d;
			d += entry_deps(&r->sc, rule->ingress, rule->n_ingress, r->dep_sels + d);
			d += entry_deps(&r->sc, rule->egress, rule->n_egress, r->dep_sels + d);
			ref->n_deps = d - ref->deps;
			ref->egress_named = egress_named(rule);
		}
	}
	r->n_rules = k;
	return 0;
}

static void reg_drop(struct pol_reconciler *r, struct pol_reg *reg)
{
	for (size_t i = 0; i < reg->n; i++)
		sc_unref(&r->sc, reg->sels[i]);
	reg_free(reg);
}

static int reg_add(struct pol_reconciler *r, const void *key, size_t klen, const struct policy *p)
{
	struct sc_capture cap = {0};
	struct pol_reg *reg;
	int err;

	sc_capture(&r->sc, &cap);
	err = engine_register(&r->sc, &p, 1);
	sc_capture(&r->sc, NULL);
	reg = malloc(sizeof(*reg));
	if (!reg) {
		for (size_t i = 0; i < cap.n; i++)
			sc_unref(&r->sc, cap.ptrs[i]);
		free(cap.ptrs);
		return -ENOMEM;
	}
	reg->sels = cap.ptrs;
	reg->n = cap.n;
	if (!err)
		err = ht_put(&r->regs, key, klen, reg, NULL);
	if (err)
		reg_drop(r, reg);
	return err;
}

/*
 * The policies' selectors in the cache, from what changed: the selectors of
 * every changed policy (set or deleted since the last pass) unreferenced
 * first, then those of the ones in the store referenced, then the ones left
 * without a reference dropped. A selector still in use by another policy,
 * or by the policy's new version, is never evaluated again. On a full pass,
 * every policy is a changed one.
 */
static int policies_register(struct pol_reconciler *r, const struct store *s, bool full)
{
	const struct htable *keys = full ? &s->policies : &s->pol_changed;
	struct ht_entry *e;
	int err = 0;

	if (full) {
		for (e = ht_first(&r->regs); e;) {
			reg_drop(r, e->value);
			e = ht_del_iter(&r->regs, e);
		}
	}
	for (e = ht_first(keys); e; e = ht_next(keys, e)) {
		struct pol_reg *reg = ht_del(&r->regs, e->key, e->klen);

		if (reg)
			reg_drop(r, reg);
	}
	for (e = ht_first(keys); e && !err; e = ht_next(keys, e)) {
		const struct store_policy *sp = ht_get(&s->policies, e->key, e->klen);

		if (sp)
			err = reg_add(r, e->key, e->klen, &sp->pol);
	}
	sc_sweep(&r->sc);
	return err;
}

static int policies_sync(struct pol_reconciler *r, const struct store *s, bool full)
{
	size_t n = 0;
	int err;

	if (s->policies.count > r->cap_pols) {
		size_t cap = s->policies.count;
		const struct policy **p = realloc(r->pols, cap * sizeof(*p));
		uint64_t *h;

		if (!p)
			return -ENOMEM;
		r->pols = p;
		h = realloc(r->pol_hashes, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		r->pol_hashes = h;
		p = realloc(r->sel_pols, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->sel_pols = p;
		r->cap_pols = cap;
	}
	for (struct ht_entry *e = ht_first(&s->policies); e; e = ht_next(&s->policies, e)) {
		r->pol_hashes[n] = key_hash(e->key, e->klen);
		r->pols[n++] = &((const struct store_policy *)e->value)->pol;
	}
	r->n_pols = n;
	err = policies_register(r, s, full);
	return err ? err : rules_index(r);
}

/* The label sets selectors see for an identity, as store_identity_selected(). */
static size_t ident_sets(const struct store *s, const struct k8s_identity *ident,
			 const struct label_set **sets)
{
	const struct k8s_namespace *ns;
	size_t n = 0;

	sets[n++] = &ident->labels;
	if (ident->namespace[0] &&
	    !label_set_has_key_prefix(&ident->labels, LABEL_SOURCE_K8S, LABEL_NAMESPACE_LABELS)) {
		ns = store_get_namespace(s, ident->namespace);
		if (ns)
			sets[n++] = &ns->labels;
	}
	return n;
}

struct id_list {
	__u32 *ids; /* sorted, unique once ids_collect() returns */
	size_t n, cap;
};

static int id_push(struct id_list *l, __u32 id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		__u32 *n = realloc(l->ids, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		l->ids = n;
		l->cap = cap;
	}
	l->ids[l->n++] = id;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static bool id_listed(const struct id_list *l, __u32 id)
{
	return l->n && bsearch(&id, l->ids, l->n, sizeof(id), u32_cmp);
}

/*
 * The identities whose labels, as selectors see them, may have changed: set
 * or deleted in the store, or in a namespace set or deleted. On a full pass,
 * every identity held and every identity in the store.
 */
static int ids_collect(const struct pol_reconciler *r, const struct store *s, bool full,
		       struct id_list *l)
{
	struct ht_entry *e;
	size_t out = 0;
	int err = 0;

	if (full) {
		/* The CIDR identities are cidr_ids_sync()'s. */
		for (size_t i = 0; i < r->sc.n_ids && !err; i++)
			if (!r->sc.ids[i].has_prefix)
				err = id_push(l, r->sc.ids[i].id);
		for (e = ht_first(&s->identities); e && !err; e = ht_next(&s->identities, e))
			err = id_push(l, ((const struct store_identity *)e->value)->ident.id);
	} else {
		for (e = ht_first(&s->ids_changed); e && !err; e = ht_next(&s->ids_changed, e)) {
			__u32 id;

			memcpy(&id, e->key, sizeof(id));
			err = id_push(l, id);
		}
		/* A namespace's labels are part of its identities' (ident_sets()). */
		for (e = s->ns_changed.count ? ht_first(&s->identities) : NULL; e && !err;
		     e = ht_next(&s->identities, e)) {
			const struct k8s_identity *ident =
			    &((const struct store_identity *)e->value)->ident;

			if (ident->namespace[0] &&
			    ht_get(&s->ns_changed, ident->namespace, strlen(ident->namespace)))
				err = id_push(l, ident->id);
		}
	}
	if (err)
		return err;
	if (l->n)
		qsort(l->ids, l->n, sizeof(*l->ids), u32_cmp);
	for (size_t i = 0; i < l->n; i++)
		if (!out || l->ids[out - 1] != l->ids[i])
			l->ids[out++] = l->ids[i];
	l->n = out;
	return 0;
}

/* The label sets id has now: its CiliumIdentity's, else a reserved one's. */
static size_t id_sets(const struct store *s, __u32 id, const struct label_set **sets)
{
	const struct store_identity *si = ht_get(&s->identities, &id, sizeof(id));

	if (si)
		return ident_sets(s, &si->ident, sets);
	if (id <= RESERVED_IDENTITY_LAST && (sets[0] = identity_reserved_labels(id)))
		return 1;
	return 0;
}

/*
 * Changed identities in two steps around the policies' registration, so
 * that no evaluation ever reads labels the store has freed: first each held
 * one is pointed at its new labels, or taken out when it is gone (nothing
 * evaluated); then, with the selectors registered again, each is set (every
 * selector evaluated once against it), which stamps only the selectors whose
 * sets it really enters or leaves. The others keep pointing at the store's
 * labels, which have not moved.
 */
static void identities_repoint(struct pol_reconciler *r, const struct store *s,
			       const struct id_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct label_set *sets[SC_SETS_MAX];
		size_t n = id_sets(s, l->ids[i], sets);

		if (!n)
			sc_identity_delete(&r->sc, l->ids[i]);
		else
			sc_identity_repoint(&r->sc, l->ids[i], sets, n); /* -ENOENT: new */
	}
}

static int identities_set(struct pol_reconciler *r, const struct store *s, const struct id_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct label_set *sets[SC_SETS_MAX];
		size_t n = id_sets(s, l->ids[i], sets);
		int err;

		if (!n)
			continue;
		err = sc_identity_set(&r->sc, l->ids[i], sets, n);
		if (err)
			return err;
	}
	return 0;
}

static __u16 id_alloc(struct pol_reconciler *r, __u16 hint)
{
	if (hint && !(r->used_ids[hint / 8] & (1u << (hint % 8)))) {
		r->used_ids[hint / 8] |= 1u << (hint % 8);
		return hint;
	}
	for (__u32 id = 1; id <= POL_ENDPOINTS_MAX; id++) {
		if (!(r->used_ids[id / 8] & (1u << (id % 8)))) {
			r->used_ids[id / 8] |= 1u << (id % 8);
			return (__u16)id;
		}
	}
	return 0;
}

static void id_free(struct pol_reconciler *r, __u16 id)
{
	r->used_ids[id / 8] &= ~(1u << (id % 8));
}

/* Each local endpoint's CiliumEndpoint (the first with its address), in one
 * walk of the slices. */
static void ces_find(struct pol_reconciler *r, const struct store *s)
{
	for (struct ht_entry *e = ht_first(&s->ces); e; e = ht_next(&s->ces, e)) {
		const struct k8s_cilium_endpointslice *c = &((struct store_ces *)e->value)->ces;

		for (size_t i = 0; i < c->n_endpoints; i++) {
			struct pol_endpoint *pe = ht_get(&r->endpoints, &c->endpoints[i].ipv4,
							 sizeof(c->endpoints[i].ipv4));

			if (pe && pe->seen && !pe->cep)
				pe->cep = &c->endpoints[i];
		}
	}
}

static uint64_t ports_hash(const struct k8s_cilium_endpoint *cep)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; cep && i < cep->n_named_ports; i++) {
		h = fnv_str(h, cep->named_ports[i].name);
		h = fnv(h, &cep->named_ports[i].proto, sizeof(cep->named_ports[i].proto));
		h = fnv(h, &cep->named_ports[i].port, sizeof(cep->named_ports[i].port));
	}
	return h;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The policies with a rule selecting pe now, into r->sel_pols (*n): all
 * the engine needs to compute it, and the ones whose change may change its
 * result (pe->pols). */
static int endpoint_pols(struct pol_reconciler *r, struct pol_endpoint *pe, size_t *n)
{
	uint64_t *h = NULL;

	*n = 0;
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct pol_rule_ref *ref = &r->rules[i];

		if (!ref->subject || !sc_selects(ref->subject, pe->identity))
			continue;
		if (*n && r->sel_pols[*n - 1] == r->pols[ref->pol])
			continue; /* another rule of the same policy */
		r->sel_pols[(*n)++] = r->pols[ref->pol];
	}
	if (*n) {
		h = malloc(*n * sizeof(*h));
		if (!h)
			return -ENOMEM;
		/* Rules are in their policies' order: each policy's first rule. */
		for (size_t i = 0, k = 0; i < r->n_rules && k < *n; i++)
			if (r->pols[r->rules[i].pol] == r->sel_pols[k])
				h[k++] = r->pol_hashes[r->rules[i].pol];
		qsort(h, *n, sizeof(*h), u64_cmp);
	}
	free(pe->pols);
	pe->pols = h;
	pe->n_pols = *n;
	return 0;
}

static bool endpoint_had_pol(const struct pol_endpoint *pe, uint64_t h)
{
	return pe->n_pols && bsearch(&h, pe->pols, pe->n_pols, sizeof(h), u64_cmp);
}

/* Mark the endpoints @sel selects (a rule's subject). */
static void mark_selected(struct pol_reconciler *r, const struct policy_rule *rule)
{
	const struct sc_selector *sel;

	if (rule->node_subject || !(sel = sc_lookup(&r->sc, &rule->subject)))
		return;
	for (struct ht_entry *e = ht_first(&r->endpoints); e; e = ht_next(&r->endpoints, e)) {
		struct pol_endpoint *pe = e->value;

		if (pe->seen && !pe->stale && sc_selects(sel, pe->identity))
			pe->stale = true;
	}
}

/* Endpoints a changed policy selected before (their record of it) or selects now. */
static void mark_policies_changed(struct pol_reconciler *r, const struct store *s)
{
	for (struct ht_entry *c = ht_first(&s->pol_changed); c; c = ht_next(&s->pol_changed, c)) {
		uint64_t h = key_hash(c->key, c->klen);
		const struct store_policy *sp = ht_get(&s->policies, c->key, c->klen);

		for (struct ht_entry *e = ht_first(&r->endpoints); e;
		     e = ht_next(&r->endpoints, e)) {
			struct pol_endpoint *pe = e->value;

			if (endpoint_had_pol(pe, h))
				pe->stale = true;
		}
		for (size_t k = 0; sp && k < sp->pol.n_rules; k++)
			mark_selected(r, &sp->pol.rules[k]);
	}
}

/* Egress named ports resolve against every CiliumEndpoint's: when what
 * they resolve to changes, the endpoints with a rule naming a port on egress
 * are computed again (mark_selections_moved()). */
static int peer_ports_sync(struct pol_reconciler *r, const struct store *s)
{
	struct peer_ports pp = {0};
	int err = peer_ports_build(&pp, s);
	bool same = pp.n == r->peer_ports.n;

	if (err)
		return err;
	for (size_t i = 0; same && i < pp.n; i++) {
		const struct engine_peer_port *a = &pp.items[i], *b = &r->peer_ports.items[i];

		same = a->identity == b->identity && a->np.proto == b->np.proto &&
		       a->np.port == b->np.port && !strcmp(a->np.name, b->np.name);
	}
	r->peer_ports_moved |= !same;
	peer_ports_free(&r->peer_ports);
	r->peer_ports = pp;
	return 0;
}

/* Endpoints selected by a rule whose peers' (or requirements') identities
 * moved since the last pass, or that names a port on egress when what those
 * resolve to moved. */
static void mark_selections_moved(struct pol_reconciler *r)
{
	if (r->sc.revision == r->sc_seen_rev && !r->peer_ports_moved)
		return;
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct pol_rule_ref *ref = &r->rules[i];
		bool moved = ref->subject && r->peer_ports_moved && ref->egress_named;

		for (size_t k = 0; ref->subject && k < ref->n_deps && !moved; k++) {
			const struct sc_selector *dep = r->dep_sels[ref->deps + k];

			moved = !dep || dep->revision > r->sc_seen_rev;
		}
		for (struct ht_entry *e = moved ? ht_first(&r->endpoints) : NULL; e;
		     e = ht_next(&r->endpoints, e)) {
			struct pol_endpoint *pe = e->value;

			if (pe->seen && !pe->stale && sc_selects(ref->subject, pe->identity))
				pe->stale = true;
		}
	}
}

static int endpoint_sync(struct pol_reconciler *r, struct pol_endpoint *pe,
			 struct engine_result *res)
{
	struct engine_endpoint ep = {.identity = pe->identity,
				     .peer_ports = r->peer_ports.items,
				     .n_peer_ports = r->peer_ports.n};
	struct policy_map_result mres = {0};
	size_t n_pols;
	uint64_t t0;
	int err;

	if (pe->cep) {
		ep.named_ports = pe->cep->named_ports;
		ep.n_named_ports = pe->cep->n_named_ports;
	}
	t0 = mono_ns();
	err = endpoint_pols(r, pe, &n_pols);
	if (!err)
		err = engine_compute(&r->sc, r->sel_pols, n_pols, &ep, res);
	r->compute_ns += mono_ns() - t0;
	r->computations++;
	r->last_computed++;
	if (err)
		return err;
	pe->rules = res->rules;
	pe->skipped = res->skipped;
	pe->ports_hash = ports_hash(pe->cep);
	if (!pe->id) {
		pe->err = -ENOSPC; /* no id left: not enforced, no slot */
		return pe->err;
	}
	err = policy_map_update(&r->pm, pe->id, &pe->real, res->entries, res->n, &mres);
	if (mres.added + mres.updated + mres.deleted) {
		r->writes++;
		r->entries_written += mres.added + mres.updated + mres.deleted;
	}
	/* Enforced either way: a failed write keeps the old trie, or an
	 * empty slot, which denies everything. */
	if (pe->enforce != res->enforce) {
		__u8 want = err ? res->enforce | pe->enforce : res->enforce;

		if (want != pe->enforce) {
			pe->enforce = want;
			r->enforcement_changed = true;
		}
	}
	if (err) {
		if (pe->err != err) {
			char a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &pe->ip, a, sizeof(a));
			pr_warn("endpoint policy not realized; keeping the old one",
				"endpoint=%s ip=%s id=%u entries=%zu error=\"%s\"", pe->name, a,
				pe->id, res->n, strerror(-err));
		}
		pe->err = err;
		r->errors++;
		return err;
	}
	if (mres.added + mres.updated + mres.deleted)
		r->revision++;
	pe->err = 0;
	pe->n_entries = res->n;
	return 0;
}

/* The desired local endpoints into r->endpoints (new ones with an id),
 * marking those to compute for what the endpoint itself changed. */
static int endpoints_take(struct pol_reconciler *r, const struct store *s,
			  const struct local_endpoint *want, size_t n, const struct id_list *ids,
			  bool ces_moved, pol_id_hint_fn hint, void *hint_ctx)
{
	struct ht_entry *e;

	for (e = ht_first(&r->endpoints); e; e = ht_next(&r->endpoints, e)) {
		struct pol_endpoint *pe = e->value;

		pe->seen = false;
		pe->cep = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct local_endpoint *le = &want[i];
		struct pol_endpoint *pe = ht_get(&r->endpoints, &le->ip, sizeof(le->ip));

		if (!pe) {
			pe = calloc(1, sizeof(*pe));
			if (!pe || ht_put(&r->endpoints, &le->ip, sizeof(le->ip), pe, NULL)) {
				free(pe);
				return -ENOMEM;
			}
			pe->ip = le->ip;
			pe->id = id_alloc(r, hint ? hint(hint_ctx, le->ip) : 0);
			pe->err = -EAGAIN; /* never written */
			pe->stale = true;
			r->enforcement_changed = true;
		}
		pe->seen = true;
		snprintf(pe->name, sizeof(pe->name), "%s", le->name);
		if (pe->identity != le->identity || pe->err || id_listed(ids, le->identity))
			pe->stale = true;
		pe->identity = le->identity;
	}
	ces_find(r, s);
	for (e = ces_moved ? ht_first(&r->endpoints) : NULL; e; e = ht_next(&r->endpoints, e)) {
		struct pol_endpoint *pe = e->value;

		if (pe->seen && ports_hash(pe->cep) != pe->ports_hash)
			pe->stale = true;
	}
	return 0;
}

int pol_reconcile(struct pol_reconciler *r, struct store *s, pol_id_hint_fn hint, void *hint_ctx,
		  uint64_t now_ms, uint64_t *next_ms)
{
	struct engine_result res = {0};
	struct local_endpoint *want = NULL;
	struct id_list ids = {0};
	bool moved, full, pols_moved, ces_moved, cidr_moved;
	uint64_t pol_rev = s->policies_revision, rev = pol_revision(s);
	int failing = 0, err;
	size_t n = 0;
	uint64_t t0;

	*next_ms = UINT64_MAX;
	pols_moved = s->policies_revision != r->seen_pol_rev;
	ces_moved = s->ces_revision != r->seen_ces_rev;
	moved = !r->ran || r->need_full || pols_moved || ces_moved ||
		s->identities_revision != r->seen_id_rev ||
		s->namespaces_revision != r->seen_ns_rev || r->cidr.dirty ||
		s->cni_revision != r->seen_cni_rev;
	if (!moved && !(r->next_retry_ms && r->next_retry_ms <= now_ms)) {
		if (r->next_retry_ms)
			*next_ms = r->next_retry_ms;
		return r->failing; /* still failing until the retry */
	}
	full = !r->ran || r->need_full || s->changes_lost;
	r->passes++;
	r->compute_ns = 0;
	r->last_computed = 0;
	t0 = mono_ns();
	cidr_moved = r->cidr.dirty;
	err = ids_collect(r, s, full, &ids);
	if (!err) {
		identities_repoint(r, s, &ids);
		if (full || pols_moved)
			err = policies_sync(r, s, full);
	}
	/* The policies' prefixes' identities, set in the cache like any other
	 * (their selectors' revisions mark what they reach). */
	if (!err && (full || pols_moved || cidr_moved))
		err = cidr_ids_sync(&r->cidr, &r->sc, r->pols, r->n_pols) < 0 ? -ENOMEM : 0;
	if (!err)
		err = identities_set(r, s, &ids);
	if (!err && (full || ces_moved))
		err = peer_ports_sync(r, s);
	r->compute_ns = mono_ns() - t0;
	if (!err)
		err = local_endpoints_desired(s, &want, &n);
	if (!err)
		err = endpoints_take(r, s, want, n, &ids, full || ces_moved, hint, hint_ctx);
	if (err) {
		pr_warn("policy pass failed", "error=\"%s\"", strerror(-err));
		r->need_full = true;
		failing = 1;
		goto retry;
	}
	/* What the changes reach; from here on it is kept on the endpoints. */
	mark_policies_changed(r, s);
	mark_selections_moved(r);
	for (struct ht_entry *e = full ? ht_first(&r->endpoints) : NULL; e;
	     e = ht_next(&r->endpoints, e))
		((struct pol_endpoint *)e->value)->stale = true;
	store_policy_changes_clear(s);
	r->sc_seen_rev = r->sc.revision;
	r->peer_ports_moved = false;
	r->ran = true;
	r->need_full = false;
	r->seen_pol_rev = s->policies_revision;
	r->seen_id_rev = s->identities_revision;
	r->seen_ns_rev = s->namespaces_revision;
	r->seen_ces_rev = s->ces_revision;
	r->seen_cni_rev = s->cni_revision;

	for (size_t i = 0; i < n; i++) {
		struct pol_endpoint *pe = ht_get(&r->endpoints, &want[i].ip, sizeof(want[i].ip));

		if (!pe->stale)
			continue;
		if (endpoint_sync(r, pe, &res))
			failing++;
		else
			pe->stale = false;
	}
	/* Endpoints gone: their slot emptied (the endpoints reconciler removes
	 * their entry in the same turn). */
	for (struct ht_entry *e = ht_first(&r->endpoints); e;) {
		struct pol_endpoint *pe = e->value;

		if (pe->seen) {
			e = ht_next(&r->endpoints, e);
			continue;
		}
		if (pe->id && policy_map_delete(&r->pm, pe->id)) {
			failing++;
			e = ht_next(&r->endpoints, e);
			continue;
		}
		if (pe->id)
			id_free(r, pe->id);
		r->enforcement_changed = true;
		endpoint_free(pe);
		e = ht_del_iter(&r->endpoints, e);
	}
	if (!failing) {
		r->realized_pol_rev = pol_rev;
		r->realized_rev = rev;
	}
retry:
	r->failing = failing;
	free(ids.ids);
	free(want);
	engine_result_free(&res);
	if (failing) {
		r->backoff_attempts++;
		r->next_retry_ms =
		    now_ms + backoff_delay_ms(BACKOFF_BASE_MS, BACKOFF_MAX_MS, r->backoff_attempts);
		*next_ms = r->next_retry_ms;
	} else {
		r->backoff_attempts = 0;
		r->next_retry_ms = 0;
	}
	return failing;
}

bool pol_reconciler_lookup(const struct pol_reconciler *r, __be32 ip, __u16 *id, __u8 *enforce)
{
	const struct pol_endpoint *pe = ht_get(&r->endpoints, &ip, sizeof(ip));

	if (!pe)
		return false;
	*id = pe->id;
	*enforce = pe->enforce;
	return true;
}

static void add_dirs(cJSON *o, const char *name, __u8 enforce, __u8 bit)
{
	cJSON_AddStringToObject(o, name, enforce & bit ? "enabled" : "disabled");
}

cJSON *pol_reconciler_status(const struct pol_reconciler *r)
{
	cJSON *o = cJSON_CreateObject(), *eps, *failed;
	size_t n_failed = 0;

	if (!o)
		return NULL;
	eps = cJSON_AddArrayToObject(o, "endpoints");
	failed = cJSON_AddArrayToObject(o, "failed");
	for (struct ht_entry *e = ht_first(&r->endpoints); e; e = ht_next(&r->endpoints, e)) {
		const struct pol_endpoint *pe = e->value;
		cJSON *j = cJSON_CreateObject();
		char a[INET_ADDRSTRLEN];

		if (!j)
			break;
		inet_ntop(AF_INET, &pe->ip, a, sizeof(a));
		cJSON_AddNumberToObject(j, "id", pe->id);
		cJSON_AddStringToObject(j, "pod", pe->name);
		cJSON_AddStringToObject(j, "ip", a);
		cJSON_AddNumberToObject(j, "identity", pe->identity);
		add_dirs(j, "ingress", pe->enforce, POLICY_INGRESS);
		add_dirs(j, "egress", pe->enforce, POLICY_EGRESS);
		cJSON_AddNumberToObject(j, "rules", pe->rules);
		cJSON_AddNumberToObject(j, "entries", (double)pe->n_entries);
		cJSON_AddNumberToObject(j, "not_enforced", pe->skipped);
		cJSON_AddStringToObject(j, "error",
					pe->err && pe->err != -EAGAIN ? strerror(-pe->err) : "");
		if (pe->err && pe->err != -EAGAIN) {
			cJSON *f = cJSON_CreateObject();

			if (f) {
				cJSON_AddStringToObject(f, "pod", pe->name);
				cJSON_AddNumberToObject(f, "id", pe->id);
				cJSON_AddStringToObject(f, "error", strerror(-pe->err));
				cJSON_AddItemToArray(failed, f);
			}
			n_failed++;
		}
		cJSON_AddItemToArray(eps, j);
	}
	cJSON_AddStringToObject(o, "state", n_failed ? "degraded" : "ok");
	cJSON_AddNumberToObject(o, "policy_revision", (double)r->seen_pol_rev);
	cJSON_AddNumberToObject(o, "policy_revision_realized", (double)r->realized_pol_rev);
	cJSON_AddNumberToObject(o, "policies", (double)r->n_pols);
	cJSON_AddNumberToObject(o, "selectors", (double)r->sc.n_sels);
	cJSON_AddNumberToObject(o, "identities", (double)r->sc.n_ids);
	cJSON_AddNumberToObject(o, "selector_evaluations", (double)r->sc.evaluations);
	cJSON_AddNumberToObject(o, "writes", (double)r->writes);
	cJSON_AddNumberToObject(o, "computations", (double)r->computations);
	cJSON_AddNumberToObject(o, "errors", (double)r->errors);
	cJSON_AddItemToObject(o, "cidr", cidr_ids_status(&r->cidr));
	return o;
}

cJSON *pol_reconciler_selectors(const struct pol_reconciler *r)
{
	cJSON *arr = cJSON_CreateArray();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < r->sc.n_sels; i++) {
		const struct sc_selector *s = r->sc.sels[i];
		cJSON *o = cJSON_CreateObject(), *ids;
		char text[1024] = "", req[512];
		size_t off = 0;

		if (!o)
			break;
		if (s->cidr && sc_cidr_key(s->cidr, text, sizeof(text)))
			snprintf(text + sizeof(text) - 4, 4, "...");
		for (size_t k = 0; s->sel && k < s->sel->n_reqs; k++) {
			sel_req_format(&s->sel->reqs[k], req, sizeof(req));
			off += (size_t)snprintf(text + off,
						off < sizeof(text) ? sizeof(text) - off : 0, "%s%s",
						k ? ", " : "", req);
			if (off >= sizeof(text))
				break;
		}
		cJSON_AddStringToObject(o, "selector", text[0] ? text : "(all)");
		ids = cJSON_AddArrayToObject(o, "identities");
		for (size_t k = 0; k < s->n_ids; k++)
			cJSON_AddItemToArray(ids, cJSON_CreateNumber(s->ids[k]));
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}
