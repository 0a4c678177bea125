// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The store's network-policy tables: policies, CiliumIdentities, Namespaces. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_priv.h"

static void policy_entry_free(struct store_policy *sp)
{
	policy_free(&sp->pol);
	free(sp);
}

static void identity_entry_free(struct store_identity *si)
{
	k8s_identity_free(&si->ident);
	free(si);
}

static void namespace_entry_free(struct store_namespace *sn)
{
	k8s_namespace_free(&sn->ns);
	free(sn);
}

void store_policy_destroy(struct store *s)
{
	struct ht_entry *e;

	if (s->policies.buckets)
		for (e = ht_first(&s->policies); e; e = ht_next(&s->policies, e))
			policy_entry_free(e->value);
	if (s->identities.buckets)
		for (e = ht_first(&s->identities); e; e = ht_next(&s->identities, e))
			identity_entry_free(e->value);
	if (s->namespaces.buckets)
		for (e = ht_first(&s->namespaces); e; e = ht_next(&s->namespaces, e))
			namespace_entry_free(e->value);
	ht_destroy(&s->policies);
	ht_destroy(&s->identities);
	ht_destroy(&s->namespaces);
	ht_destroy(&s->pol_changed);
	ht_destroy(&s->ids_changed);
	ht_destroy(&s->ns_changed);
}

/* Note a change for the policy reconciler; when that fails it looks at everything. */
static void changed(struct store *s, struct htable *h, const void *key, size_t klen)
{
	if (!s->changes_lost && ht_put(h, key, klen, (void *)1, NULL))
		s->changes_lost = true;
}

static void changes_empty(struct htable *h)
{
	for (struct ht_entry *e = ht_first(h); e;)
		e = ht_del_iter(h, e);
}

void store_policy_changes_clear(struct store *s)
{
	changes_empty(&s->pol_changed);
	changes_empty(&s->ids_changed);
	changes_empty(&s->ns_changed);
	s->changes_lost = false;
}

/* "<Kind>/<ns>/<name>": one table for the three kinds, which may share names. */
static int policy_key(char *buf, size_t len, enum policy_kind kind, const char *ns,
		      const char *name)
{
	int n = snprintf(buf, len, "%s/%s/%s", policy_kind_name(kind), ns, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

#define POLICY_KEY_MAX (32 + STORE_KEY_MAX)

/* Keep the counts in status in step with the table. */
static void policy_count(struct store *s, const struct policy *p, int delta)
{
	s->n_policies[p->kind] += delta;
	if (p->unsupported)
		s->n_policies_unsupported += delta;
}

int store_set_policy(struct store *s, struct policy *p)
{
	struct store_policy *sp, *old = NULL;
	char key[POLICY_KEY_MAX];
	int klen, err;

	if ((unsigned)p->kind >= POLICY_KIND__NR)
		return -EINVAL;
	klen = policy_key(key, sizeof(key), p->kind, p->namespace, p->name);
	if (klen < 0)
		return klen;
	sp = calloc(1, sizeof(*sp) + klen + 1);
	if (!sp)
		return -ENOMEM;
	memcpy(sp->key, key, klen + 1);
	err = ht_put(&s->policies, sp->key, klen, sp, (void **)&old);
	if (err) {
		free(sp);
		return err;
	}
	sp->pol = *p;
	memset(p, 0, sizeof(*p));
	if (old) {
		policy_count(s, &old->pol, -1);
		policy_entry_free(old);
	}
	policy_count(s, &sp->pol, 1);
	changed(s, &s->pol_changed, sp->key, klen);
	s->revision++;
	s->policies_revision++;
	return 0;
}

int store_delete_policy(struct store *s, enum policy_kind kind, const char *ns, const char *name)
{
	char key[POLICY_KEY_MAX];
	struct store_policy *sp;
	int klen = policy_key(key, sizeof(key), kind, ns, name);

	if (klen < 0)
		return klen;
	sp = ht_del(&s->policies, key, klen);
	if (!sp)
		return -ENOENT;
	policy_count(s, &sp->pol, -1);
	policy_entry_free(sp);
	changed(s, &s->pol_changed, key, klen);
	s->revision++;
	s->policies_revision++;
	return 0;
}

const struct store_policy *store_get_policy(const struct store *s, enum policy_kind kind,
					    const char *ns, const char *name)
{
	char key[POLICY_KEY_MAX];
	int klen = policy_key(key, sizeof(key), kind, ns, name);

	return klen < 0 ? NULL : ht_get(&s->policies, key, klen);
}

int store_set_identity(struct store *s, struct k8s_identity *id)
{
	struct store_identity *si, *old = NULL;
	int err;

	si = calloc(1, sizeof(*si));
	if (!si)
		return -ENOMEM;
	si->ident = *id;
	err = ht_put(&s->identities, &si->ident.id, sizeof(si->ident.id), si, (void **)&old);
	if (err) {
		free(si);
		return err;
	}
	memset(id, 0, sizeof(*id));
	if (old)
		identity_entry_free(old);
	changed(s, &s->ids_changed, &si->ident.id, sizeof(si->ident.id));
	s->revision++;
	s->identities_revision++;
	return 0;
}

int store_delete_identity(struct store *s, __u32 id)
{
	struct store_identity *si = ht_del(&s->identities, &id, sizeof(id));

	if (!si)
		return -ENOENT;
	identity_entry_free(si);
	changed(s, &s->ids_changed, &id, sizeof(id));
	s->revision++;
	s->identities_revision++;
	return 0;
}

int store_set_namespace(struct store *s, struct k8s_namespace *ns)
{
	struct store_namespace *sn, *old = NULL;
	int err;

	sn = calloc(1, sizeof(*sn));
	if (!sn)
		return -ENOMEM;
	sn->ns = *ns;
	err = ht_put(&s->namespaces, sn->ns.name, strlen(sn->ns.name), sn, (void **)&old);
	if (err) {
		free(sn);
		return err;
	}
	memset(ns, 0, sizeof(*ns));
	if (old)
		namespace_entry_free(old);
	changed(s, &s->ns_changed, sn->ns.name, strlen(sn->ns.name));
	s->revision++;
	s->namespaces_revision++;
	return 0;
}

int store_delete_namespace(struct store *s, const char *name)
{
	struct store_namespace *sn = ht_del(&s->namespaces, name, strlen(name));

	if (!sn)
		return -ENOENT;
	namespace_entry_free(sn);
	changed(s, &s->ns_changed, name, strlen(name));
	s->revision++;
	s->namespaces_revision++;
	return 0;
}

const struct k8s_namespace *store_get_namespace(const struct store *s, const char *name)
{
	const struct store_namespace *sn = ht_get(&s->namespaces, name, strlen(name));

	return sn ? &sn->ns : NULL;
}

static const struct k8s_identity *identity(const struct store *s, __u32 id)
{
	const struct store_identity *si = ht_get(&s->identities, &id, sizeof(id));

	return si ? &si->ident : NULL;
}

const struct label_set *store_identity_labels(const struct store *s, __u32 id)
{
	const struct k8s_identity *ident;

	if (id < ALLOCATED_IDENTITY_MIN)
		return identity_reserved_labels(id);
	ident = identity(s, id);
	return ident ? &ident->labels : NULL;
}

bool store_identity_selected(const struct store *s, __u32 id, const struct policy_selector *sel)
{
	const struct label_set *sets[2];
	const struct k8s_identity *ident;
	const struct k8s_namespace *ns;
	size_t n = 0;

	if (id < ALLOCATED_IDENTITY_MIN) {
		sets[n] = identity_reserved_labels(id);
		return sets[n] && selector_matches(sel, sets[n]);
	}
	ident = identity(s, id);
	if (!ident)
		return false;
	sets[n++] = &ident->labels;
	if (ident->namespace[0] &&
	    !label_set_has_key_prefix(&ident->labels, LABEL_SOURCE_K8S, LABEL_NAMESPACE_LABELS)) {
		ns = store_get_namespace(s, ident->namespace);
		if (ns)
			sets[n++] = &ns->labels;
	}
	return selector_matches_sets(sel, sets, n);
}
