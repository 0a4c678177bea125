// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The store's cluster-scoped tables: Nodes and CiliumEndpointSlices, and "self". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_priv.h"

static void node_free(struct store_node *sn)
{
	k8s_node_free(&sn->node);
	free(sn);
}

static size_t ces_endpoints(const struct k8s_cilium_endpointslice *ces)
{
	size_t n = 0;

	for (size_t i = 0; i < ces->n_endpoints; i++)
		n += ces->endpoints[i].ipv4 != 0;
	return n;
}

static void ces_free(struct store_ces *sc)
{
	k8s_cilium_endpointslice_free(&sc->ces);
	free(sc);
}

void store_nodes_destroy(struct store *s)
{
	struct ht_entry *e;

	if (s->nodes.buckets)
		for (e = ht_first(&s->nodes); e; e = ht_next(&s->nodes, e))
			node_free(e->value);
	if (s->ces.buckets)
		for (e = ht_first(&s->ces); e; e = ht_next(&s->ces, e))
			ces_free(e->value);
	ht_destroy(&s->nodes);
	ht_destroy(&s->ces);
}

__be32 store_node_ip(const struct k8s_node *node)
{
	return node->internal_ip ? node->internal_ip : node->external_ip;
}

void store_mark_all_dirty(struct store *s)
{
	for (struct ht_entry *e = ht_first(&s->services); e; e = ht_next(&s->services, e)) {
		const struct store_service *ss = e->value;

		store_mark_dirty(s, ss->key);
	}
	store_mark_host_ports_dirty(s);
}

/* Recompute self from the Node named self_name (or its absence). */
static void self_update(struct store *s)
{
	const struct store_node *sn = s->self_name[0] ? store_get_node(s, s->self_name) : NULL;
	__be32 ips[STORE_SELF_IPS_MAX] = {};
	const char *zone = sn ? sn->node.zone : "";
	bool zone_moved;
	size_t n = 0;

	if (sn) {
		if (sn->node.internal_ip)
			ips[n++] = sn->node.internal_ip;
		if (sn->node.external_ip && sn->node.external_ip != sn->node.internal_ip)
			ips[n++] = sn->node.external_ip;
	}
	s->self_known = sn != NULL;
	s->self_ip = sn ? store_node_ip(&sn->node) : 0;
	zone_moved = strcmp(zone, s->self_zone) != 0;
	if (zone_moved)
		snprintf(s->self_zone, sizeof(s->self_zone), "%s", zone);
	if (!zone_moved && n == s->n_self_ips && !memcmp(ips, s->self_ips, sizeof(ips)))
		return;
	memcpy(s->self_ips, ips, sizeof(ips));
	s->n_self_ips = n;
	/* NodePort frontends live on these addresses; topology hints pick
	 * backends by the zone. */
	store_mark_all_dirty(s);
}

void store_set_self_name(struct store *s, const char *name)
{
	snprintf(s->self_name, sizeof(s->self_name), "%s", name);
	self_update(s);
}

const struct store_node *store_get_node(const struct store *s, const char *name)
{
	return ht_get(&s->nodes, name, strlen(name));
}

int store_set_node(struct store *s, struct k8s_node *node)
{
	struct store_node *sn, *old = NULL;
	int err;

	sn = calloc(1, sizeof(*sn));
	if (!sn)
		return -ENOMEM;
	snprintf(sn->name, sizeof(sn->name), "%s", node->meta.name);
	err = ht_put(&s->nodes, sn->name, strlen(sn->name), sn, (void **)&old);
	if (err) {
		free(sn);
		return err;
	}
	sn->node = *node;
	memset(node, 0, sizeof(*node));
	if (old)
		node_free(old);
	s->revision++;
	s->nodes_revision++;
	if (!strcmp(sn->name, s->self_name))
		self_update(s);
	return 0;
}

int store_delete_node(struct store *s, const char *name)
{
	struct store_node *sn = ht_del(&s->nodes, name, strlen(name));

	if (!sn)
		return -ENOENT;
	node_free(sn);
	s->revision++;
	s->nodes_revision++;
	if (!strcmp(name, s->self_name))
		self_update(s);
	return 0;
}

int store_set_ces(struct store *s, struct k8s_cilium_endpointslice *ces)
{
	struct store_ces *sc, *old = NULL;
	int err;

	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	snprintf(sc->name, sizeof(sc->name), "%s", ces->meta.name);
	err = ht_put(&s->ces, sc->name, strlen(sc->name), sc, (void **)&old);
	if (err) {
		free(sc);
		return err;
	}
	sc->ces = *ces;
	memset(ces, 0, sizeof(*ces));
	if (old) {
		s->n_ces_endpoints -= ces_endpoints(&old->ces);
		ces_free(old);
	}
	s->n_ces_endpoints += ces_endpoints(&sc->ces);
	s->revision++;
	s->ces_revision++;
	return 0;
}

int store_delete_ces(struct store *s, const char *name)
{
	struct store_ces *sc = ht_del(&s->ces, name, strlen(name));

	if (!sc)
		return -ENOENT;
	s->n_ces_endpoints -= ces_endpoints(&sc->ces);
	ces_free(sc);
	s->revision++;
	s->ces_revision++;
	return 0;
}
