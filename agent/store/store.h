/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The desired-state store: what the cluster asks for, as decoded Kubernetes
 * objects, joined the way the datapath needs them.
 *
 * Watch handlers write it (set/delete); reconcilers read it. Every write bumps
 * the revision and marks the services whose derived state may have changed
 * as dirty; a reconciler takes dirty keys, realizes them, and clears them.
 * EndpointSlices are joined to their Service by the kubernetes.io/service-name
 * label, so a slice may arrive before or after its Service.
 *
 * Keys are "namespace/name".
 */
#ifndef AXON_STORE_H
#define AXON_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "htable.h"
#include "k8s/objects.h"

#define STORE_KEY_MAX (K8S_NS_MAX + K8S_NAME_MAX)

struct store_service {
	char key[STORE_KEY_MAX];
	struct k8s_service svc;
};

struct store_slice {
	char key[STORE_KEY_MAX];
	char svc_key[STORE_KEY_MAX];	/* "" when the slice names no service */
	struct k8s_endpointslice eps;
};

/* The slices that name one service (index, not owner). */
struct store_slice_set {
	struct store_slice **slices;
	size_t n, cap;
};

struct store {
	struct htable services;		/* key -> struct store_service */
	struct htable slices;		/* key -> struct store_slice */
	struct htable slices_by_svc;	/* service key -> struct store_slice_set */
	struct htable dirty;		/* service key -> (void *)1 */
	uint64_t revision;
	size_t n_endpoints;		/* IPv4 addresses across all slices */
};

int store_init(struct store *s);
void store_destroy(struct store *s);

/* Take ownership of *svc's contents (svc is zeroed). */
int store_set_service(struct store *s, struct k8s_service *svc);
int store_delete_service(struct store *s, const char *ns, const char *name);
/* Take ownership of *eps's contents (eps is zeroed). */
int store_set_slice(struct store *s, struct k8s_endpointslice *eps);
int store_delete_slice(struct store *s, const char *ns, const char *name);

const struct store_service *store_get_service(const struct store *s, const char *key);
const struct store_slice_set *store_service_slices(const struct store *s, const char *key);

/* Mark a service key dirty (also used to retry). */
int store_mark_dirty(struct store *s, const char *key);
void store_clear_dirty(struct store *s, const char *key);
static inline bool store_has_dirty(const struct store *s)
{
	return s->dirty.count > 0;
}

int store_key(char *buf, size_t len, const char *ns, const char *name);

#endif /* AXON_STORE_H */
