// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_priv.h"

int store_key(char *buf, size_t len, const char *ns, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", ns, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int store_init(struct store *s)
{
	int err;

	memset(s, 0, sizeof(*s));
	if ((err = ht_init(&s->services)) || (err = ht_init(&s->slices)) ||
	    (err = ht_init(&s->slices_by_svc)) || (err = ht_init(&s->dirty)) ||
	    (err = ht_init(&s->nodes)) || (err = ht_init(&s->ces)) ||
	    (err = ht_init(&s->policies)) || (err = ht_init(&s->identities)) ||
	    (err = ht_init(&s->namespaces)) || (err = ht_init(&s->pol_changed)) ||
	    (err = ht_init(&s->ids_changed)) || (err = ht_init(&s->ns_changed)) ||
	    (err = ht_init(&s->pods))) {
		store_destroy(s);
		return err;
	}
	return 0;
}

static void service_free(struct store_service *ss)
{
	k8s_service_free(&ss->svc);
	free(ss);
}

static size_t slice_endpoints(const struct k8s_endpointslice *eps)
{
	size_t n = 0;

	for (size_t i = 0; i < eps->n_endpoints; i++)
		n += eps->endpoints[i].n_addrs;
	return n;
}

static void slice_free(struct store_slice *sl)
{
	k8s_endpointslice_free(&sl->eps);
	free(sl);
}

void store_destroy(struct store *s)
{
	struct ht_entry *e;

	if (s->services.buckets)
		for (e = ht_first(&s->services); e; e = ht_next(&s->services, e))
			service_free(e->value);
	if (s->slices.buckets)
		for (e = ht_first(&s->slices); e; e = ht_next(&s->slices, e))
			slice_free(e->value);
	if (s->slices_by_svc.buckets)
		for (e = ht_first(&s->slices_by_svc); e; e = ht_next(&s->slices_by_svc, e)) {
			struct store_slice_set *set = e->value;

			free(set->slices);
			free(set);
		}
	store_nodes_destroy(s);
	store_policy_destroy(s);
	store_pods_destroy(s);
	ht_destroy(&s->services);
	ht_destroy(&s->slices);
	ht_destroy(&s->slices_by_svc);
	ht_destroy(&s->dirty);
}

int store_mark_dirty(struct store *s, const char *key)
{
	return ht_put(&s->dirty, key, strlen(key), (void *)1, NULL);
}

void store_clear_dirty(struct store *s, const char *key)
{
	ht_del(&s->dirty, key, strlen(key));
}

const struct store_service *store_get_service(const struct store *s, const char *key)
{
	return ht_get(&s->services, key, strlen(key));
}

const struct store_slice_set *store_service_slices(const struct store *s, const char *key)
{
	return ht_get(&s->slices_by_svc, key, strlen(key));
}

int store_set_service(struct store *s, struct k8s_service *svc)
{
	return store_set_service_algo(s, svc, STORE_LB_ALGO_DEFAULT);
}

/* Length of "ns/name" with its NUL; -ENAMETOOLONG past STORE_KEY_MAX. */
static int key_size(const char *ns, const char *name, size_t *size)
{
	*size = strlen(ns) + 1 + strlen(name) + 1;
	return *size > STORE_KEY_MAX ? -ENAMETOOLONG : 0;
}

/* "ns/name" into buf, sized by key_size(). */
static void key_write(char *buf, const char *ns, const char *name)
{
	size_t n = strlen(ns);

	memcpy(buf, ns, n);
	buf[n] = '/';
	strcpy(buf + n + 1, name);
}

int store_set_service_algo(struct store *s, struct k8s_service *svc,
			   enum store_lb_algorithm algo)
{
	struct store_service *ss, *old;
	size_t klen;
	int err;

	err = key_size(svc->meta.namespace, svc->meta.name, &klen);
	if (err)
		return err;
	ss = calloc(1, sizeof(*ss) + klen);
	if (!ss)
		return -ENOMEM;
	key_write(ss->key, svc->meta.namespace, svc->meta.name);
	err = ht_put(&s->services, ss->key, strlen(ss->key), ss, (void **)&old);
	if (err)
		goto fail;
	ss->svc = *svc;
	ss->lb_algorithm = algo;
	memset(svc, 0, sizeof(*svc));
	if (old)
		service_free(old);
	s->revision++;
	/* If marking fails the service is realized on the next full pass. */
	store_mark_dirty(s, ss->key);
	return 0;
fail:
	free(ss);
	return err;
}

int store_delete_service(struct store *s, const char *ns, const char *name)
{
	char key[STORE_KEY_MAX];
	struct store_service *ss;
	int err;

	err = store_key(key, sizeof(key), ns, name);
	if (err)
		return err;
	ss = ht_del(&s->services, key, strlen(key));
	if (!ss)
		return -ENOENT;
	service_free(ss);
	s->revision++;
	store_mark_dirty(s, key);
	return 0;
}

static int slice_set_add(struct store *s, struct store_slice *sl)
{
	struct store_slice_set *set = ht_get(&s->slices_by_svc, sl->svc_key, strlen(sl->svc_key));
	int err;

	if (!set) {
		set = calloc(1, sizeof(*set));
		if (!set)
			return -ENOMEM;
		err = ht_put(&s->slices_by_svc, sl->svc_key, strlen(sl->svc_key), set, NULL);
		if (err) {
			free(set);
			return err;
		}
	}
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 2;
		struct store_slice **p = realloc(set->slices, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		set->slices = p;
		set->cap = cap;
	}
	set->slices[set->n++] = sl;
	return 0;
}

static void slice_set_remove(struct store *s, struct store_slice *sl)
{
	struct store_slice_set *set = ht_get(&s->slices_by_svc, sl->svc_key, strlen(sl->svc_key));

	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		if (set->slices[i] != sl)
			continue;
		set->slices[i] = set->slices[--set->n];
		break;
	}
	if (set->n == 0) {
		ht_del(&s->slices_by_svc, sl->svc_key, strlen(sl->svc_key));
		free(set->slices);
		free(set);
	}
}

/* Unlink and free a held slice, marking its service dirty. */
static void slice_drop(struct store *s, struct store_slice *sl)
{
	if (sl->svc_key[0]) {
		slice_set_remove(s, sl);
		store_mark_dirty(s, sl->svc_key);
	}
	s->n_endpoints -= slice_endpoints(&sl->eps);
	slice_free(sl);
}

int store_set_slice(struct store *s, struct k8s_endpointslice *eps)
{
	struct store_slice *sl, *old;
	size_t klen, sklen = 1;
	int err;

	err = key_size(eps->meta.namespace, eps->meta.name, &klen);
	if (!err && eps->service_name[0])
		err = key_size(eps->meta.namespace, eps->service_name, &sklen);
	if (err)
		return err;
	sl = calloc(1, sizeof(*sl) + klen + sklen);
	if (!sl)
		return -ENOMEM;
	key_write(sl->key, eps->meta.namespace, eps->meta.name);
	sl->svc_key = sl->key + klen;
	if (eps->service_name[0])
		key_write(sl->key + klen, eps->meta.namespace, eps->service_name);
	if (sl->svc_key[0]) {
		err = slice_set_add(s, sl);
		if (err)
			goto fail;
	}
	old = ht_del(&s->slices, sl->key, strlen(sl->key));
	if (old)
		slice_drop(s, old);
	err = ht_put(&s->slices, sl->key, strlen(sl->key), sl, NULL);
	if (err) {
		if (sl->svc_key[0])
			slice_set_remove(s, sl);
		goto fail;
	}
	sl->eps = *eps;
	memset(eps, 0, sizeof(*eps));
	s->n_endpoints += slice_endpoints(&sl->eps);
	s->revision++;
	if (sl->svc_key[0])
		store_mark_dirty(s, sl->svc_key);
	return 0;
fail:
	free(sl);
	return err;
}

int store_delete_slice(struct store *s, const char *ns, const char *name)
{
	char key[STORE_KEY_MAX];
	struct store_slice *sl;
	int err;

	err = store_key(key, sizeof(key), ns, name);
	if (err)
		return err;
	sl = ht_del(&s->slices, key, strlen(key));
	if (!sl)
		return -ENOENT;
	slice_drop(s, sl);
	s->revision++;
	return 0;
}
