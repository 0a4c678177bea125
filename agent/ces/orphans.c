// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ces/orphans.h"
#include "ces/publish.h"
#include "log.h"

int ces_orphans_init(struct ces_orphans *o, struct k8s_client *c, ident_call_start_fn start,
		     ident_call_cancel_fn cancel, const struct store *s, const char *self)
{
	memset(o, 0, sizeof(*o));
	o->c = c;
	o->call_start = start;
	o->call_cancel = cancel;
	o->store = s;
	snprintf(o->self, sizeof(o->self), "%s", self);
	return ht_init(&o->since);
}

void ces_orphans_destroy(struct ces_orphans *o)
{
	if (o->call)
		o->call_cancel(o->c, o->call);
	o->call = NULL;
	ht_destroy(&o->since);
}

bool ces_slice_prefix(const char *name, char *out, size_t len)
{
	const char *idx = strrchr(name, '-'), *hash;
	size_t plen;

	/* "...-<8 hex>-<n>": the prefix ends just before the 8 hex digits. */
	if (!idx || idx - name < 9 || strncmp(name, "axon-", 5))
		return false;
	hash = idx - 8;
	if (hash[-1] != '-')
		return false;
	plen = (size_t)(hash - name);
	if (plen <= 5 || plen >= len)
		return false;
	memcpy(out, name, plen);
	out[plen] = '\0';
	return ces_slice_owned(out, name);
}

/* The prefixes of every Node in the store, and whether self sorts first. */
static int live_prefixes(struct ces_orphans *o, struct htable *live, bool *first)
{
	const struct htable *nodes = &o->store->nodes;
	char prefix[K8S_NAME_MAX];
	int ret;

	*first = true;
	ret = ht_init(live);
	if (ret)
		return ret;
	for (struct ht_entry *e = ht_first(nodes); e; e = ht_next(nodes, e)) {
		const struct store_node *n = e->value;

		if (strcmp(n->name, o->self) < 0)
			*first = false;
		ces_node_prefix(n->name, prefix, sizeof(prefix));
		ret = ht_puts(live, prefix, strlen(prefix), (void *)1);
		if (ret)
			return ret;
	}
	return 0;
}

static void deleted(void *ctx, const struct k8s_call_result *res)
{
	struct ces_orphans *o = ctx;

	o->call = NULL;
	if ((res->status >= 200 && res->status < 300) || res->status == 404) {
		o->deleted++;
		pr_info("deleted the CiliumEndpointSlice of a node that is gone", "name=%s",
			o->deleting);
		ht_del(&o->since, o->deleting, strlen(o->deleting) + 1);
		return;
	}
	o->errors++;
	o->next_due_ms = ident_now_ms() + CES_ORPHAN_RETRY_MS;
	pr_warn("cannot delete the CiliumEndpointSlice of a node that is gone",
		"name=%s error=\"%s\" retry_ms=%d", o->deleting, res->error, CES_ORPHAN_RETRY_MS);
}

static void delete_one(struct ces_orphans *o, const char *name)
{
	char path[sizeof(CES_PATH) + K8S_NAME_MAX];

	snprintf(o->deleting, sizeof(o->deleting), "%s", name);
	snprintf(path, sizeof(path), CES_PATH "/%s", name);
	o->call = o->call_start(o->c, "DELETE", path, NULL, NULL, 0, deleted, o);
	if (!o->call)
		o->errors++;
}

void ces_orphans_run(struct ces_orphans *o, uint64_t now_ms, uint64_t *next_ms)
{
	const struct htable *ces = &o->store->ces;
	char prefix[K8S_NAME_MAX];
	struct htable live;
	bool first;

	/* Only when a Node or slice changed, or an orphan is due: the look is
	 * linear in slices and nodes. */
	if (o->looked && o->seen_nodes == o->store->nodes_revision &&
	    o->seen_ces == o->store->ces_revision && !o->call &&
	    (!o->next_due_ms || o->next_due_ms > now_ms)) {
		if (o->next_due_ms && o->next_due_ms < *next_ms)
			*next_ms = o->next_due_ms;
		return;
	}
	if (o->call)
		return; /* looked again once the DELETE is answered */
	o->looked = true;
	o->seen_nodes = o->store->nodes_revision;
	o->seen_ces = o->store->ces_revision;
	o->next_due_ms = 0;
	if (live_prefixes(o, &live, &first))
		goto out;
	/* Slices no longer orphaned (or gone) leave the table. */
	for (struct ht_entry *e = ht_first(&o->since); e;) {
		const char *name = (const char *)e->key; /* keys hold their NUL */
		bool keep = ht_get(ces, name, strlen(name)) &&
			    ces_slice_prefix(name, prefix, sizeof(prefix)) &&
			    !ht_get(&live, prefix, strlen(prefix));

		e = keep ? ht_next(&o->since, e) : ht_del_iter(&o->since, e);
	}
	for (struct ht_entry *e = ht_first(ces); e; e = ht_next(ces, e)) {
		const struct store_ces *sc = e->value;
		uintptr_t since;
		uint64_t due;

		if (!ces_slice_prefix(sc->name, prefix, sizeof(prefix)) ||
		    ht_get(&live, prefix, strlen(prefix)))
			continue;
		since = (uintptr_t)ht_get(&o->since, sc->name, strlen(sc->name) + 1);
		if (!since) {
			since = (uintptr_t)now_ms + 1;
			if (ht_puts(&o->since, sc->name, strlen(sc->name) + 1, (void *)since))
				continue;
		}
		due = since - 1 + (first ? CES_ORPHAN_GRACE_MS : CES_ORPHAN_FALLBACK_MS);
		if (due > now_ms) {
			if (!o->next_due_ms || due < o->next_due_ms)
				o->next_due_ms = due;
			if (due < *next_ms)
				*next_ms = due;
			continue;
		}
		if (!o->call)
			delete_one(o, sc->name);
		else if (!o->next_due_ms || now_ms < o->next_due_ms)
			o->next_due_ms = now_ms; /* the next one, after this DELETE */
	}
out:
	ht_destroy(&live);
}
