// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "identity/alloc.h"
#include "k8s/policy_objects.h"
#include "log.h"

#define RETRY_BASE_MS 200
#define RETRY_MAX_MS  30000
#define IDENT_RANGE   (IDENT_MAX - IDENT_MIN + 1)

uint64_t ident_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

__u32 ident_alloc_first(const char *key)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return IDENT_MIN + h % IDENT_RANGE;
}

static __u32 next_number(__u32 id)
{
	return id >= IDENT_MAX ? IDENT_MIN : id + 1;
}

int ident_alloc_init(struct ident_alloc *a, struct k8s_client *c, ident_call_start_fn start,
		     ident_call_cancel_fn cancel, const struct store *s)
{
	int ret;

	memset(a, 0, sizeof(*a));
	a->c = c;
	a->call_start = start;
	a->call_cancel = cancel;
	a->store = s;
	a->seen_rev = UINT64_MAX;
	if ((ret = ht_init(&a->by_key)) || (ret = ht_init(&a->created)) ||
	    (ret = ht_init(&a->reqs))) {
		ident_alloc_destroy(a);
		return ret;
	}
	return 0;
}

static void req_free(struct ident_req *r)
{
	if (r->call)
		r->alloc->call_cancel(r->alloc->c, r->call);
	ident_labels_free(&r->labels);
	free(r);
}

void ident_alloc_destroy(struct ident_alloc *a)
{
	if (a->reqs.buckets)
		for (struct ht_entry *e = ht_first(&a->reqs); e; e = ht_next(&a->reqs, e))
			req_free(e->value);
	ht_destroy(&a->by_key);
	ht_destroy(&a->created);
	ht_destroy(&a->reqs);
}

/* by_key from the store's identities, when they changed. */
static void sync_index(struct ident_alloc *a)
{
	const struct htable *ids = &a->store->identities;

	if (a->seen_rev == a->store->identities_revision)
		return;
	ht_destroy(&a->by_key);
	if (ht_init(&a->by_key))
		return; /* retried on the next call: seen_rev is not updated */
	for (struct ht_entry *e = ht_first(ids); e; e = ht_next(ids, e)) {
		const struct store_identity *si = e->value;
		char *key = ident_labels_key(&si->ident.labels);
		uintptr_t old;

		if (!key)
			return;
		old = (uintptr_t)ht_get(&a->by_key, key, strlen(key));
		if (!old || si->ident.id < old)
			ht_puts(&a->by_key, key, strlen(key), (void *)(uintptr_t)si->ident.id);
		free(key);
	}
	/* What we created and the watch has delivered is known from the store now. */
	for (struct ht_entry *e = ht_first(&a->created); e;) {
		if (ht_get(&a->by_key, e->key, e->klen))
			e = ht_del_iter(&a->created, e);
		else
			e = ht_next(&a->created, e);
	}
	a->seen_rev = a->store->identities_revision;
}

bool ident_alloc_taken(const struct ident_alloc *a, __u32 id)
{
	if (ht_get(&a->store->identities, &id, sizeof(id)))
		return true;
	for (struct ht_entry *e = ht_first(&a->created); e; e = ht_next(&a->created, e))
		if ((uintptr_t)e->value == id)
			return true;
	for (struct ht_entry *e = ht_first(&a->reqs); e; e = ht_next(&a->reqs, e)) {
		const struct ident_req *r = e->value;

		if (r->call && r->candidate == id)
			return true;
	}
	return false;
}

static void finish(struct ident_req *r, __u32 id)
{
	struct ident_alloc *a = r->alloc;
	const char *key = r->labels.key;

	r->call = NULL;
	ht_puts(&a->created, key, strlen(key), (void *)(uintptr_t)id);
	a->generation++;
	ht_del(&a->reqs, key, strlen(key));
	req_free(r);
}

static void fail(struct ident_req *r, const char *why)
{
	struct ident_alloc *a = r->alloc;
	uint64_t delay = RETRY_BASE_MS << (r->failures < 8 ? r->failures : 8);

	r->call = NULL;
	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	r->failures++;
	a->errors++;
	a->generation++;	/* the waiting endpoints show why */
	r->due_ms = ident_now_ms() + delay;
	snprintf(r->error, sizeof(r->error), "%s", why);
	pr_warn("cannot allocate identity", "number=%u error=\"%s\" retry_ms=%llu", r->candidate,
		why, (unsigned long long)delay);
}

static void start_create(struct ident_req *r);

static void got_existing(void *ctx, const struct k8s_call_result *res)
{
	struct ident_req *r = ctx;
	struct k8s_identity id = {};
	char err[256] = "", *key = NULL;
	cJSON *obj;
	int ret;

	r->call = NULL;
	if (res->status == 404) {
		/* Deleted since our POST: try the same number again. */
		start_create(r);
		return;
	}
	if (res->status != 200) {
		fail(r, res->error);
		return;
	}
	obj = cJSON_ParseWithLength(res->body, res->len);
	ret = obj ? k8s_identity_from_json(obj, &id, err, sizeof(err)) : -EINVAL;
	cJSON_Delete(obj);
	if (!ret)
		key = ident_labels_key(&id.labels);
	if (key && !strcmp(key, r->labels.key)) {
		/* Another agent created the same labels under this number first. */
		free(key);
		k8s_identity_free(&id);
		r->alloc->adopted++;
		pr_info("identity adopted", "number=%u", r->candidate);
		finish(r, r->candidate);
		return;
	}
	free(key);
	k8s_identity_free(&id);
	r->candidate = next_number(r->candidate);
	r->probes++;
	start_create(r);
}

static void created(void *ctx, const struct k8s_call_result *res)
{
	struct ident_req *r = ctx;
	char path[sizeof(IDENT_PATH) + 16];

	r->call = NULL;
	if (res->status == 200 || res->status == 201) {
		r->alloc->creates++;
		pr_info("identity created", "number=%u", r->candidate);
		finish(r, r->candidate);
		return;
	}
	if (res->status != 409) {
		fail(r, res->error);
		return;
	}
	/* AlreadyExists: whose labels? */
	r->alloc->conflicts++;
	snprintf(path, sizeof(path), IDENT_PATH "/%u", r->candidate);
	r->call = r->alloc->call_start(r->alloc->c, "GET", path, NULL, NULL, 0, got_existing, r);
	if (!r->call)
		fail(r, "out of memory");
}

static void start_create(struct ident_req *r)
{
	struct ident_alloc *a = r->alloc;
	cJSON *obj;
	char *body;

	if (!r->probes) {
		r->candidate = ident_alloc_first(r->labels.key);
		r->probes = 1;
	}
	while (ident_alloc_taken(a, r->candidate) && r->probes <= IDENT_RANGE) {
		r->candidate = next_number(r->candidate);
		r->probes++;
	}
	if (r->probes > IDENT_RANGE) {
		r->probes = 0;
		fail(r, "every identity number of 256..65535 is taken");
		return;
	}
	obj = ident_labels_object(&r->labels.set, r->candidate);
	body = obj ? cJSON_PrintUnformatted(obj) : NULL;
	cJSON_Delete(obj);
	if (body)
		r->call = a->call_start(a->c, "POST", IDENT_PATH, "application/json", body,
					strlen(body), created, r);
	free(body);
	if (!r->call)
		fail(r, "out of memory");
}

static int labels_copy(struct ident_labels *dst, const struct ident_labels *src)
{
	struct policy_label *labels;

	memset(dst, 0, sizeof(*dst));
	labels = policy_arena_alloc(&dst->arena, src->set.n, sizeof(*labels));
	if (!labels)
		goto fail;
	for (size_t i = 0; i < src->set.n; i++) {
		labels[i].source = policy_arena_strdup(&dst->arena, src->set.labels[i].source);
		labels[i].key = policy_arena_strdup(&dst->arena, src->set.labels[i].key);
		labels[i].value = policy_arena_strdup(&dst->arena, src->set.labels[i].value);
		if (!labels[i].source || !labels[i].key || !labels[i].value)
			goto fail;
	}
	dst->set.labels = labels;
	dst->set.n = src->set.n;
	dst->key = policy_arena_strdup(&dst->arena, src->key);
	if (!dst->key)
		goto fail;
	return 0;
fail:
	ident_labels_free(dst);
	return -ENOMEM;
}

__u32 ident_alloc_lookup(struct ident_alloc *a, const struct ident_labels *l, uint64_t now_ms)
{
	size_t klen = strlen(l->key);
	struct ident_req *r;
	uintptr_t id;

	sync_index(a);
	id = (uintptr_t)ht_get(&a->by_key, l->key, klen);
	if (!id)
		id = (uintptr_t)ht_get(&a->created, l->key, klen);
	if (id)
		return (__u32)id;
	if (ht_get(&a->reqs, l->key, klen))
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return 0;
	r->alloc = a;
	r->due_ms = now_ms;
	if (labels_copy(&r->labels, l) || ht_puts(&a->reqs, r->labels.key, klen, r)) {
		ident_labels_free(&r->labels);
		free(r);
		return 0;
	}
	start_create(r);
	return 0;
}

void ident_alloc_run(struct ident_alloc *a, uint64_t now_ms, uint64_t *next_ms)
{
	sync_index(a);
	for (struct ht_entry *e = ht_first(&a->reqs); e; e = ht_next(&a->reqs, e)) {
		struct ident_req *r = e->value;

		if (r->call)
			continue;
		if (r->due_ms <= now_ms)
			start_create(r);
		else if (r->due_ms < *next_ms)
			*next_ms = r->due_ms;
	}
}

const char *ident_alloc_error(const struct ident_alloc *a, const char *key)
{
	const struct ident_req *r = ht_get(&a->reqs, key, strlen(key));

	return r ? r->error : "";
}
