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

static uint64_t set_digest(uint64_t h, const struct label_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		h = fnv_str(h, set->labels[i].source);
		h = fnv_str(h, set->labels[i].key);
		h = fnv_str(h, set->labels[i].value);
	}
	return fnv(h, "|", 1);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int pol_reconciler_init(struct pol_reconciler *r, int outer_fd, __u32 map_max)
{
	int err;

	memset(r, 0, sizeof(*r));
	sc_init(&r->sc);
	r->used_ids = calloc(65536 / 8, 1);
	policy_maps_init(&r->pm, outer_fd, map_max);
	if (!r->used_ids)
		goto nomem;
	err = ht_init(&r->endpoints);
	if (!err)
		err = ht_init(&r->idents);
	if (err)
		return err;
	/* The reserved identities: built in, never change. */
	for (__u32 id = 1; id <= RESERVED_IDENTITY_LAST; id++) {
		const struct label_set *set = identity_reserved_labels(id);

		if (set && (err = sc_identity_set(&r->sc, id, &set, 1)))
			return err;
	}
	return 0;
nomem:
	return -ENOMEM;
}

void pol_reconciler_destroy(struct pol_reconciler *r)
{
	if (r->endpoints.buckets)
		ht_destroy_with(&r->endpoints, free);
	if (r->idents.buckets)
		ht_destroy_with(&r->idents, free);
	sc_destroy(&r->sc);
	free(r->used_ids);
	free(r->pols);
	memset(r, 0, sizeof(*r));
}

static int policies_sync(struct pol_reconciler *r, const struct store *s)
{
	size_t n = 0;
	int err;

	if (s->policies.count > r->cap_pols) {
		const struct policy **p = realloc(r->pols, s->policies.count * sizeof(*p));

		if (!p)
			return -ENOMEM;
		r->pols = p;
		r->cap_pols = s->policies.count;
	}
	for (struct ht_entry *e = ht_first(&s->policies); e; e = ht_next(&s->policies, e))
		r->pols[n++] = &((const struct store_policy *)e->value)->pol;
	r->n_pols = n;
	sc_begin(&r->sc);
	err = engine_register(&r->sc, r->pols, n);
	sc_end(&r->sc);
	return err;
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

/*
 * Identities in two steps around the policies' registration, so that no
 * evaluation ever reads labels or selectors the store has freed: first the
 * identities gone or changed are taken out of the cache (no evaluation) and
 * the unchanged ones repointed at the store's current copy; then, with the
 * selectors registered again, the new and changed ones are set (each
 * evaluated once per distinct selector).
 */
static int identities_take_out(struct pol_reconciler *r, const struct store *s)
{
	struct ht_entry *e;
	int err;

	for (e = ht_first(&r->idents); e; e = ht_next(&r->idents, e))
		((struct pol_ident *)e->value)->seen = false;
	for (e = ht_first(&s->identities); e; e = ht_next(&s->identities, e)) {
		const struct k8s_identity *ident =
		    &((const struct store_identity *)e->value)->ident;
		const struct label_set *sets[SC_SETS_MAX];
		size_t n = ident_sets(s, ident, sets);
		uint64_t d = 1469598103934665603ull;
		struct pol_ident *pi;

		for (size_t i = 0; i < n; i++)
			d = set_digest(d, sets[i]);
		pi = ht_get(&r->idents, &ident->id, sizeof(ident->id));
		if (!pi) {
			pi = calloc(1, sizeof(*pi));
			if (!pi || ht_put(&r->idents, &ident->id, sizeof(ident->id), pi, NULL)) {
				free(pi);
				return -ENOMEM;
			}
		}
		pi->seen = true;
		if (pi->held && pi->digest == d) {
			err = sc_identity_repoint(&r->sc, ident->id, sets, n);
			if (err)
				return err;
			continue;
		}
		if (pi->held)
			sc_identity_delete(&r->sc, ident->id);
		pi->held = false;
		pi->digest = d;
	}
	for (e = ht_first(&r->idents); e;) {
		struct pol_ident *pi = e->value;
		__u32 id;

		if (pi->seen) {
			e = ht_next(&r->idents, e);
			continue;
		}
		memcpy(&id, e->key, sizeof(id));
		sc_identity_delete(&r->sc, id);
		free(e->value);
		e = ht_del_iter(&r->idents, e);
	}
	return 0;
}

static int identities_put_in(struct pol_reconciler *r, const struct store *s)
{
	for (struct ht_entry *e = ht_first(&s->identities); e; e = ht_next(&s->identities, e)) {
		const struct k8s_identity *ident =
		    &((const struct store_identity *)e->value)->ident;
		struct pol_ident *pi = ht_get(&r->idents, &ident->id, sizeof(ident->id));
		const struct label_set *sets[SC_SETS_MAX];
		int err;

		if (!pi || pi->held)
			continue;
		err = sc_identity_set(&r->sc, ident->id, sets, ident_sets(s, ident, sets));
		if (err)
			return err;
		pi->held = true;
	}
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct policy_map_entry));
}

static uint64_t result_digest(struct engine_result *res)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < res->n; i++) {
		struct policy_map_entry *e = &res->entries[i];
		struct policy_map_entry c = {e->identity, e->dir,	  e->proto,
					     e->port,	  e->port_prefix, e->deny};

		*e = c; /* padding zeroed: entries compare as bytes */
	}
	qsort(res->entries, res->n, sizeof(*res->entries), entry_cmp);
	h = fnv(h, &res->enforce, 1);
	return fnv(h, res->entries, res->n * sizeof(*res->entries));
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

static const struct k8s_cilium_endpoint *ces_endpoint(const struct store *s, __be32 ip)
{
	for (struct ht_entry *e = ht_first(&s->ces); e; e = ht_next(&s->ces, e)) {
		const struct k8s_cilium_endpointslice *c = &((struct store_ces *)e->value)->ces;

		for (size_t i = 0; i < c->n_endpoints; i++)
			if (c->endpoints[i].ipv4 == ip)
				return &c->endpoints[i];
	}
	return NULL;
}

static int endpoint_sync(struct pol_reconciler *r, const struct store *s,
			 const struct local_endpoint *le, pol_id_hint_fn hint, void *hint_ctx,
			 struct engine_result *res)
{
	struct pol_endpoint *pe = ht_get(&r->endpoints, &le->ip, sizeof(le->ip));
	const struct k8s_cilium_endpoint *cep = ces_endpoint(s, le->ip);
	struct engine_endpoint ep = {.identity = le->identity};
	unsigned int changed = 0;
	uint64_t digest, t0;
	int err;

	if (!pe) {
		pe = calloc(1, sizeof(*pe));
		if (!pe || ht_put(&r->endpoints, &le->ip, sizeof(le->ip), pe, NULL)) {
			free(pe);
			return -ENOMEM;
		}
		pe->ip = le->ip;
		pe->id = id_alloc(r, hint ? hint(hint_ctx, le->ip) : 0);
		pe->err = -EAGAIN; /* never written */
		r->enforcement_changed = true;
	}
	pe->seen = true;
	snprintf(pe->name, sizeof(pe->name), "%s", le->name);
	pe->identity = le->identity;
	if (cep) {
		ep.named_ports = cep->named_ports;
		ep.n_named_ports = cep->n_named_ports;
	}
	t0 = mono_ns();
	err = engine_compute(&r->sc, r->pols, r->n_pols, &ep, res);
	r->compute_ns += mono_ns() - t0;
	if (err)
		return err;
	pe->rules = res->rules;
	pe->skipped = res->skipped;
	digest = result_digest(res);
	if (!pe->err && digest == pe->digest)
		return 0;
	if (!pe->id) {
		pe->err = -ENOSPC; /* no id left: not enforced, no slot */
		return pe->err;
	}
	{
		struct policy_map_result mres = {0};

		err = policy_map_set(&r->pm, pe->id, res->entries, res->n, &mres);
		changed = mres.added + mres.updated + mres.deleted;
	}
	r->writes++;
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

			inet_ntop(AF_INET, &le->ip, a, sizeof(a));
			pr_warn("endpoint policy not realized; keeping the old one",
				"endpoint=%s ip=%s id=%u entries=%zu error=\"%s\"", le->name, a,
				pe->id, res->n, strerror(-err));
		}
		pe->err = err;
		r->errors++;
		return err;
	}
	pe->err = 0;
	pe->digest = digest;
	pe->n_entries = res->n;
	if (changed)
		r->revision++;
	return 0;
}

int pol_reconcile(struct pol_reconciler *r, const struct store *s, pol_id_hint_fn hint,
		  void *hint_ctx, uint64_t now_ms, uint64_t *next_ms)
{
	struct engine_result res = {0};
	struct local_endpoint *want = NULL;
	bool moved, ids_moved;
	uint64_t pol_rev = s->policies_revision;
	int failing = 0, err;
	size_t n = 0;
	uint64_t t0;

	*next_ms = UINT64_MAX;
	moved = !r->ran || s->policies_revision != r->seen_pol_rev ||
		s->identities_revision != r->seen_id_rev ||
		s->namespaces_revision != r->seen_ns_rev || s->ces_revision != r->seen_ces_rev ||
		s->cni_revision != r->seen_cni_rev;
	if (!moved && !(r->next_retry_ms && r->next_retry_ms <= now_ms)) {
		if (r->next_retry_ms)
			*next_ms = r->next_retry_ms;
		return 0;
	}
	r->passes++;
	r->compute_ns = 0;
	t0 = mono_ns();
	ids_moved = !r->ran || s->identities_revision != r->seen_id_rev ||
		    s->namespaces_revision != r->seen_ns_rev;
	err = ids_moved ? identities_take_out(r, s) : 0;
	if (!err && (!r->ran || s->policies_revision != r->seen_pol_rev))
		err = policies_sync(r, s);
	if (!err && ids_moved)
		err = identities_put_in(r, s);
	r->compute_ns = mono_ns() - t0;
	if (!err)
		err = local_endpoints_desired(s, &want, &n);
	if (err) {
		pr_warn("policy pass failed", "error=\"%s\"", strerror(-err));
		failing = 1;
		goto retry;
	}
	r->ran = true;
	r->seen_pol_rev = s->policies_revision;
	r->seen_id_rev = s->identities_revision;
	r->seen_ns_rev = s->namespaces_revision;
	r->seen_ces_rev = s->ces_revision;
	r->seen_cni_rev = s->cni_revision;

	for (struct ht_entry *e = ht_first(&r->endpoints); e; e = ht_next(&r->endpoints, e))
		((struct pol_endpoint *)e->value)->seen = false;
	for (size_t i = 0; i < n; i++)
		if (endpoint_sync(r, s, &want[i], hint, hint_ctx, &res))
			failing++;
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
		free(pe);
		e = ht_del_iter(&r->endpoints, e);
	}
	if (!failing)
		r->realized_pol_rev = pol_rev;
retry:
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
	cJSON_AddNumberToObject(o, "errors", (double)r->errors);
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
