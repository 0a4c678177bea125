// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "desired.h"

static bool is_self_ip(const struct store *s, __be32 ip)
{
	if (!ip)
		return false;
	for (size_t i = 0; i < s->n_self_ips; i++)
		if (s->self_ips[i] == ip)
			return true;
	return false;
}

/* Put (key -> value) unless an entry from an owner that sorts first is there. */
static int put(struct htable *out, const struct ipcache_key *k, const struct ipcache_value *v,
	       const char *owner)
{
	struct ipcache_desired_entry *e = ht_get(out, k, sizeof(*k));

	if (e) {
		if (strcmp(owner, e->owner) >= 0)
			return 0;
	} else {
		e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		if (ht_put(out, k, sizeof(*k), e, NULL)) {
			free(e);
			return -ENOMEM;
		}
	}
	e->value = *v;
	e->owner = owner;
	return 0;
}

static int pod_cidrs(const struct store *s, struct htable *out)
{
	for (struct ht_entry *e = ht_first(&s->nodes); e; e = ht_next(&s->nodes, e)) {
		const struct store_node *sn = e->value;
		__be32 ip = store_node_ip(&sn->node);
		int err;

		/* Our own pod CIDR: its pods are in the ipcache one by one. */
		if (!strcmp(sn->name, s->self_name) || !ip)
			continue;
		for (size_t i = 0; i < sn->node.n_pod_cidrs; i++) {
			const struct ipv4_prefix *p = &sn->node.pod_cidrs[i];
			struct ipcache_key k = ipcache_key_of(p->addr, p->len);
			struct ipcache_value v = {
				.identity = IDENTITY_UNKNOWN, .tunnel_endpoint = ip,
				.flags = IPCACHE_F_POD_CIDR,
			};

			err = put(out, &k, &v, sn->name);
			if (err)
				return err;
		}
	}
	return 0;
}

int ipcache_desired(const struct store *s, struct htable *out)
{
	int err;

	for (struct ht_entry *e = ht_first(&s->ces); e; e = ht_next(&s->ces, e)) {
		const struct store_ces *sc = e->value;

		for (size_t i = 0; i < sc->ces.n_endpoints; i++) {
			const struct k8s_cilium_endpoint *ep = &sc->ces.endpoints[i];
			struct ipcache_key k = ipcache_key_of(ep->ipv4, 32);
			struct ipcache_value v = {
				.identity = ep->identity, .tunnel_endpoint = ep->node_ip,
				.flags = is_self_ip(s, ep->node_ip) ? IPCACHE_F_LOCAL : 0,
			};

			if (!ep->ipv4)
				continue;
			err = put(out, &k, &v, sc->name);
			if (err)
				return err;
		}
	}
	/* /32 entries win over a pod CIDR in the LPM trie anyway; the CIDRs
	 * are keyed by prefix so they never collide with a /32. */
	return pod_cidrs(s, out);
}

int ipcache_desired_cidr(const struct cidr_ids *c, struct htable *out)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct cidr_prefix *p = c->v[i];
		struct ipcache_key k = ipcache_key_of(cidr_prefix_addr(p), p->prefix.len);
		struct ipcache_value v = {.identity = p->id};
		int err;

		/* A pod's /32 or a pod CIDR on the same key keeps its entry. */
		if (!p->id || ht_get(out, &k, sizeof(k)))
			continue;
		err = put(out, &k, &v, p->text);
		if (err)
			return err;
	}
	return 0;
}

void ipcache_desired_free(struct htable *h)
{
	if (!h->buckets)
		return;
	for (struct ht_entry *e = ht_first(h); e; e = ht_next(h, e))
		free(e->value);
	ht_destroy(h);
}

static int cmp_endpoint(const void *a, const void *b)
{
	const struct local_endpoint *x = a, *y = b;
	__u32 xa = ntohl(x->ip), ya = ntohl(y->ip);

	if (xa != ya)
		return xa < ya ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool listed(const struct local_endpoint *v, size_t n, __be32 ip)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].ip == ip)
			return true;
		if (ntohl(v[mid].ip) < ntohl(ip))
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* The CNI's endpoints that the slices (v, sorted) do not list: once its
 * CiliumEndpoint is published, a pod's slice entry (with its identity) wins. */
static int cni_endpoints_add(const struct store *s, struct local_endpoint *v, size_t n,
			     struct local_endpoint **out, size_t *nout)
{
	size_t cnt = n;
	struct local_endpoint *p;

	if (s->cni_endpoints && s->cni_endpoints->count) {
		p = realloc(v, (n + s->cni_endpoints->count) * sizeof(*p));
		if (!p) {
			free(v);
			return -ENOMEM;
		}
		v = p;
		for (struct ht_entry *e = ht_first(s->cni_endpoints); e;
		     e = ht_next(s->cni_endpoints, e)) {
			const struct local_endpoint *le = e->value;

			if (!listed(v, n, le->ip))
				v[cnt++] = *le;
		}
		qsort(v, cnt, sizeof(*v), cmp_endpoint);
	}
	if (!cnt) {
		free(v);
		v = NULL;
	}
	*out = v;
	*nout = cnt;
	return 0;
}

int local_endpoints_desired(const struct store *s, struct local_endpoint **out, size_t *n)
{
	struct local_endpoint *v = NULL;
	size_t cnt = 0, cap = 0, w = 0;

	*out = NULL;
	*n = 0;
	if (!s->n_self_ips)
		return 0;
	for (struct ht_entry *e = ht_first(&s->ces); e; e = ht_next(&s->ces, e)) {
		const struct store_ces *sc = e->value;

		for (size_t i = 0; i < sc->ces.n_endpoints; i++) {
			const struct k8s_cilium_endpoint *ep = &sc->ces.endpoints[i];

			if (!ep->ipv4 || !is_self_ip(s, ep->node_ip))
				continue;
			if (cnt == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct local_endpoint *p = realloc(v, nc * sizeof(*p));

				if (!p) {
					free(v);
					return -ENOMEM;
				}
				v = p;
				cap = nc;
			}
			v[cnt] = (struct local_endpoint){ .ip = ep->ipv4, .identity = ep->identity };
			snprintf(v[cnt].name, sizeof(v[cnt].name), "%s/%s", sc->ces.namespace,
				 ep->name);
			cnt++;
		}
	}
	if (cnt) {
		/* Sorted, then one per address (the name that sorts first). */
		qsort(v, cnt, sizeof(*v), cmp_endpoint);
		for (size_t i = 0; i < cnt; i++)
			if (!w || v[w - 1].ip != v[i].ip)
				v[w++] = v[i];
	}
	return cni_endpoints_add(s, v, w, out, n);
}
