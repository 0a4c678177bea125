// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/endpoints.h"
#include "log.h"

int lep_mgr_init(struct lep_mgr *m, struct k8s_client *c, ident_call_start_fn start,
		 ident_call_cancel_fn cancel, const struct store *s, const char *node,
		 uint32_t gc_interval_ms, uint32_t gc_timeout_ms)
{
	int ret;

	memset(m, 0, sizeof(*m));
	m->store = s;
	m->gc_interval_ms = gc_interval_ms;
	m->gc_timeout_ms = gc_timeout_ms;
	if ((ret = ident_alloc_init(&m->alloc, c, start, cancel, s)) ||
	    (ret = ces_pub_init(&m->pub, c, start, cancel, s, node)) ||
	    (ret = ces_orphans_init(&m->orphans, c, start, cancel, s, node)) ||
	    (ret = ht_init(&m->eps)) ||
	    (ret = ht_init(&m->unused)) || (ret = ht_init(&m->gc_queue))) {
		lep_mgr_destroy(m);
		return ret;
	}
	return 0;
}

void lep_mgr_destroy(struct lep_mgr *m)
{
	if (m->eps.buckets)
		for (struct ht_entry *e = ht_first(&m->eps); e; e = ht_next(&m->eps, e))
			free(e->value);
	if (m->gc_call)
		m->alloc.call_cancel(m->alloc.c, m->gc_call);
	m->gc_call = NULL;
	ht_destroy(&m->eps);
	ht_destroy(&m->unused);
	ht_destroy(&m->gc_queue);
	ces_orphans_destroy(&m->orphans);
	ces_pub_destroy(&m->pub);
	ident_alloc_destroy(&m->alloc);
}

const char *lep_state_name(enum lep_state s)
{
	switch (s) {
	case LEP_WAITING:
		return "waiting-for-identity";
	case LEP_READY:
		return "ready";
	case LEP_DISCONNECTING:
		return "disconnecting";
	}
	return "unknown";
}

static bool eligible(const struct k8s_pod *pod)
{
	return pod->ipv4 && !pod->host_network && !k8s_pod_finished(pod);
}

static struct lep *lep_get(struct lep_mgr *m, const char *key)
{
	struct lep *ep = ht_get(&m->eps, key, strlen(key));
	size_t nslen;

	if (ep)
		return ep;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	snprintf(ep->key, sizeof(ep->key), "%s", key);
	nslen = strcspn(ep->key, "/");
	ep->ns = ep->key;
	ep->name = ep->key + nslen + 1;
	ep->key[nslen] = '\0'; /* ns, then name: the key is rebuilt for lookups */
	if (ht_puts(&m->eps, key, strlen(key), ep)) {
		free(ep);
		return NULL;
	}
	return ep;
}

/* One Pod: its labels' identity, its state, what it publishes. */
static void derive(struct lep_mgr *m, const struct k8s_pod *pod, const char *key, uint64_t now_ms)
{
	const struct k8s_namespace *ns = store_get_namespace(m->store, pod->namespace);
	struct lep *ep = lep_get(m, key);
	struct ident_labels l;
	__u32 id = 0;

	if (!ep)
		return;
	ep->pass = m->pass;
	ep->ip = pod->ipv4;
	ep->reason[0] = '\0';
	if (!ns) {
		snprintf(ep->reason, sizeof(ep->reason), "namespace %s not seen yet",
			 pod->namespace);
	} else if (ident_labels_from_pod(pod, ns, IDENT_CLUSTER_DEFAULT, &l)) {
		snprintf(ep->reason, sizeof(ep->reason), "out of memory");
	} else {
		id = ident_alloc_lookup(&m->alloc, &l, now_ms);
		if (!id) {
			const char *err = ident_alloc_error(&m->alloc, l.key);

			snprintf(ep->reason, sizeof(ep->reason), "allocating%s%s", *err ? ": " : "",
				 err);
		}
		ident_labels_free(&l);
	}
	/* Until the new identity exists the old one stays. */
	if (id && id != ep->identity) {
		if (ep->identity)
			pr_info("endpoint identity changed", "pod=%s/%s from=%u to=%u", ep->ns,
				ep->name, ep->identity, id);
		ep->identity = id;
	}
	ep->state = pod->deleting ? LEP_DISCONNECTING : ep->identity ? LEP_READY : LEP_WAITING;
	if (ep->identity)
		ces_pub_set(&m->pub, pod->namespace, pod->name, pod->ipv4, ep->identity,
			    pod->named_ports, pod->n_named_ports, now_ms);
	else
		ces_pub_remove(&m->pub, pod->namespace, pod->name, now_ms);
}

static void pass(struct lep_mgr *m, uint64_t now_ms)
{
	const struct htable *pods = &m->store->pods;

	m->pass++;
	for (struct ht_entry *e = ht_first(pods); e; e = ht_next(pods, e)) {
		const struct store_pod *sp = e->value;

		if (eligible(&sp->pod))
			derive(m, &sp->pod, sp->key, now_ms);
	}
	for (struct ht_entry *e = ht_first(&m->eps); e;) {
		struct lep *ep = e->value;

		if (ep->pass == m->pass) {
			e = ht_next(&m->eps, e);
			continue;
		}
		ces_pub_remove(&m->pub, ep->ns, ep->name, now_ms);
		e = ht_del_iter(&m->eps, e);
		free(ep);
	}
}

static void gc_next(struct lep_mgr *m);

static void gc_deleted(void *ctx, const struct k8s_call_result *res)
{
	struct lep_mgr *m = ctx;

	m->gc_call = NULL;
	if (res->status == 200 || res->status == 202 || res->status == 404)
		m->gc_deleted += res->status != 404;
	else
		pr_warn("cannot delete unused identity", "error=\"%s\"", res->error);
	gc_next(m);
}

static void gc_next(struct lep_mgr *m)
{
	struct ht_entry *e = ht_first(&m->gc_queue);
	char path[sizeof(IDENT_PATH) + 16];
	__u32 id;

	if (!e || m->gc_call)
		return;
	memcpy(&id, e->key, sizeof(id));
	ht_del_iter(&m->gc_queue, e);
	snprintf(path, sizeof(path), IDENT_PATH "/%u", id);
	pr_info("deleting unused identity", "number=%u", id);
	m->gc_call = m->alloc.call_start(m->alloc.c, "DELETE", path, NULL, NULL, 0, gc_deleted, m);
}

static bool id_used(const struct lep_mgr *m, const struct htable *used, __u32 id)
{
	if (ht_get(used, &id, sizeof(id)))
		return true;
	for (struct ht_entry *e = ht_first(&m->alloc.created); e; e = ht_next(&m->alloc.created, e))
		if ((uintptr_t)e->value == id)
			return true;
	return false;
}

static void gc_run(struct lep_mgr *m, uint64_t now_ms, uint64_t *next_ms)
{
	const struct store *s = m->store;
	struct htable used;

	if (!m->gc_interval_ms)
		return;
	if (now_ms < m->gc_next_ms) {
		if (m->gc_next_ms < *next_ms)
			*next_ms = m->gc_next_ms;
		return;
	}
	m->gc_next_ms = now_ms + m->gc_interval_ms;
	if (ht_init(&used))
		return;
	m->gc_runs++;
	for (struct ht_entry *e = ht_first(&s->ces); e; e = ht_next(&s->ces, e)) {
		const struct store_ces *sc = e->value;

		for (size_t i = 0; i < sc->ces.n_endpoints; i++)
			ht_puts((struct htable *)&used,
				(const char *)&sc->ces.endpoints[i].identity, sizeof(__u32),
				(void *)1);
	}
	for (struct ht_entry *e = ht_first(&m->eps); e; e = ht_next(&m->eps, e)) {
		const struct lep *ep = e->value;

		ht_puts(&used, (const char *)&ep->identity, sizeof(__u32), (void *)1);
	}
	for (struct ht_entry *e = ht_first(&s->identities); e; e = ht_next(&s->identities, e)) {
		const struct store_identity *si = e->value;
		__u32 id = si->ident.id;
		uintptr_t since = (uintptr_t)ht_get(&m->unused, &id, sizeof(id));

		if (id_used(m, &used, id)) {
			if (since)
				ht_del(&m->unused, &id, sizeof(id));
		} else if (!since) {
			ht_put(&m->unused, &id, sizeof(id), (void *)(uintptr_t)(now_ms + 1), NULL);
		} else if (now_ms + 1 - since >= m->gc_timeout_ms) {
			ht_del(&m->unused, &id, sizeof(id));
			ht_put(&m->gc_queue, &id, sizeof(id), (void *)1, NULL);
		}
	}
	/* Marks of identities that are gone. */
	for (struct ht_entry *e = ht_first(&m->unused); e;) {
		if (ht_get(&s->identities, e->key, e->klen))
			e = ht_next(&m->unused, e);
		else
			e = ht_del_iter(&m->unused, e);
	}
	ht_destroy(&used);
	gc_next(m);
	if (m->gc_next_ms < *next_ms)
		*next_ms = m->gc_next_ms;
}

void lep_mgr_run(struct lep_mgr *m, bool synced, uint64_t now_ms, uint64_t *next_ms)
{
	const struct store *s = m->store;

	if (!synced)
		return;
	if (!m->started) {
		ces_pub_adopt(&m->pub, now_ms);
		m->started = true;
		m->gc_next_ms = now_ms + m->gc_interval_ms;
	}
	if (m->seen_pods != s->pods_revision || m->seen_ns != s->namespaces_revision ||
	    m->seen_ids != s->identities_revision || m->seen_gen != m->alloc.generation ||
	    m->pass == 0) {
		m->seen_pods = s->pods_revision;
		m->seen_ns = s->namespaces_revision;
		m->seen_ids = s->identities_revision;
		m->seen_gen = m->alloc.generation;
		pass(m, now_ms);
		if (m->pass == 1)
			ces_pub_forget_hints(&m->pub);
	}
	ident_alloc_run(&m->alloc, now_ms, next_ms);
	ces_pub_run(&m->pub, now_ms, next_ms);
	ces_orphans_run(&m->orphans, now_ms, next_ms);
	gc_run(m, now_ms, next_ms);
}

static int lep_cmp(const void *a, const void *b)
{
	const struct lep *x = a, *y = b;
	int r = strcmp(x->ns, y->ns);

	return r ? r : strcmp(x->name, y->name);
}

cJSON *lep_mgr_json(const struct lep_mgr *m)
{
	void **v = ht_sorted_values(&m->eps, lep_cmp);
	cJSON *arr = cJSON_CreateArray();
	char ip[INET_ADDRSTRLEN];

	if (!v || !arr) {
		free(v);
		cJSON_Delete(arr);
		return NULL;
	}
	for (size_t i = 0; v[i]; i++) {
		const struct lep *ep = v[i];
		cJSON *j = cJSON_CreateObject();

		if (!j)
			break;
		inet_ntop(AF_INET, &ep->ip, ip, sizeof(ip));
		cJSON_AddStringToObject(j, "pod", ep->name);
		cJSON_AddStringToObject(j, "namespace", ep->ns);
		cJSON_AddStringToObject(j, "address", ip);
		cJSON_AddNumberToObject(j, "identity", ep->identity);
		cJSON_AddStringToObject(j, "state", lep_state_name(ep->state));
		cJSON_AddStringToObject(j, "reason", ep->reason);
		cJSON_AddItemToArray(arr, j);
	}
	free(v);
	return arr;
}

cJSON *lep_mgr_status(const struct lep_mgr *m)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "endpoints", (double)m->eps.count);
	cJSON_AddNumberToObject(o, "slices", (double)m->pub.slices.count);
	cJSON_AddNumberToObject(o, "slice_creates", (double)m->pub.creates);
	cJSON_AddNumberToObject(o, "slice_updates", (double)m->pub.updates);
	cJSON_AddNumberToObject(o, "slice_deletes", (double)m->pub.deletes);
	cJSON_AddNumberToObject(o, "slice_writes_skipped", (double)m->pub.skipped);
	cJSON_AddNumberToObject(o, "slice_errors", (double)m->pub.errors);
	cJSON_AddStringToObject(o, "slice_last_error", m->pub.last_error);
	cJSON_AddNumberToObject(o, "orphan_slices_deleted", (double)m->orphans.deleted);
	cJSON_AddNumberToObject(o, "orphan_slices_pending", (double)m->orphans.since.count);
	cJSON_AddNumberToObject(o, "identity_creates", (double)m->alloc.creates);
	cJSON_AddNumberToObject(o, "identity_conflicts", (double)m->alloc.conflicts);
	cJSON_AddNumberToObject(o, "identity_adopted", (double)m->alloc.adopted);
	cJSON_AddNumberToObject(o, "identity_errors", (double)m->alloc.errors);
	cJSON_AddNumberToObject(o, "identity_gc_deleted", (double)m->gc_deleted);
	cJSON_AddNumberToObject(o, "identity_gc_marked", (double)m->unused.count);
	return o;
}
