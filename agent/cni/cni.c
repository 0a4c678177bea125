// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The CNI module's state: loaded at start, kept up each loop turn. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include "agent.h"
#include "cni.h"
#include "lb/reconcile.h"
#include "log.h"

int agent_cni_init(struct agent *a)
{
	struct agent_cni *c = &a->cni;
	char dir[256];
	int err;

	memset(c, 0, sizeof(*c));
	snprintf(dir, sizeof(dir), "%s/cni/ipam", a->cfg.state_dir);
	snprintf(c->dir, sizeof(c->dir), "%s/cni/endpoints", a->cfg.state_dir);
	err = ht_init(&c->eps);
	if (!err)
		err = ht_init(&c->by_ip);
	if (!err)
		err = ipam_init(&c->ipam, dir);
	if (!err)
		err = cni_registry_load(c, &a->store);
	if (err) {
		snprintf(c->conf_error, sizeof(c->conf_error), "%s: %s", a->cfg.state_dir,
			 strerror(-err));
		pr_err("cannot load the CNI state", "dir=%s/cni error=\"%s\"", a->cfg.state_dir,
		       strerror(-err));
		return err;
	}
	c->inited = true;
	return 0;
}

void agent_cni_close(struct agent *a)
{
	struct agent_cni *c = &a->cni;

	if (!c->eps.buckets)
		return;
	a->store.cni_endpoints = NULL;
	ht_destroy_with(&c->eps, free);
	ht_destroy_with(&c->by_ip, free);
	ipam_destroy(&c->ipam);
	c->inited = false;
}

/* The pool is this Node's first IPv4 pod CIDR. */
static void pool_follow(struct agent *a)
{
	const struct store_node *self = store_get_node(&a->store, a->store.self_name);
	int err;

	if (!self || !self->node.n_pod_cidrs)
		return;
	err = ipam_set_pool(&a->cni.ipam, &self->node.pod_cidrs[0]);
	if (err)
		pr_warn("cannot use this node's pod CIDR for IPAM", "node=%s error=\"%s\"",
			a->store.self_name, strerror(-err));
}

/*
 * Whether ep's Pod has been missing from this node's Pods at two checks in a
 * row. The kubelet runs ADD for a Pod already bound here, so a Pod the synced
 * watch does not hold was deleted (or moved) without a DEL; one check would
 * race a Pod created just before its ADD whose event has not arrived yet.
 */
static bool pod_gone(struct agent *a, struct cni_endpoint *ep)
{
	bool missing;

	if (!ep->pod[0] || !a->pods.informer || !a->pods.synced)
		return false;
	missing = !store_get_pod(&a->store, ep->pod);
	if (!missing) {
		ep->pod_missing_checks = 0;
		return false;
	}
	return ++ep->pod_missing_checks >= 2;
}

/* Endpoints whose namespace is gone, or whose Pod is: the runtime removed
 * the pod without a DEL (or with one the agent never got). */
static void leak_check(struct agent *a)
{
	struct agent_cni *c = &a->cni;
	struct ipam_alloc *al = NULL;
	size_t n = 0, released = 0;
	struct stat st;

	for (struct ht_entry *e = ht_first(&c->eps); e;) {
		struct cni_endpoint *ep = e->value;

		e = ht_next(&c->eps, e);
		if (!stat(ep->netns, &st) || errno != ENOENT) {
			if (!pod_gone(a, ep))
				continue;
			pr_info("CNI endpoint's Pod is no longer on this node; releasing it",
				"container=%s pod=%s", ep->id, ep->pod);
		} else {
			pr_info("CNI endpoint's network namespace is gone; releasing it",
				"container=%s pod=%s netns=%s", ep->id, ep->pod, ep->netns);
		}
		cni_release(a, ep);
		released++;
	}
	/* Allocations no endpoint holds (an ADD cut short by a crash): ADDs run
	 * on this thread, so none is in progress now. */
	if (!ipam_list(&c->ipam, &al, &n)) {
		for (size_t i = 0; i < n; i++) {
			if (!strcmp(al[i].owner, IPAM_ROUTER_OWNER) ||
			    cni_registry_get(c, al[i].owner, al[i].ifname))
				continue;
			pr_info("IPAM allocation without an endpoint; releasing it",
				"ip=%s container=%s", inet_ntoa((struct in_addr){ al[i].ip }),
				al[i].owner);
			ipam_release(&c->ipam, al[i].ip);
			released++;
		}
		free(al);
	}
	c->leaks_released += released;
}

void agent_cni_tick(struct agent *a)
{
	struct agent_cni *c = &a->cni;
	uint64_t now = lb_now_ms();

	if (!c->inited)
		return;
	pool_follow(a);
	cni_conf_tick(a);
	if (now >= c->next_leak_check_ms) {
		if (c->next_leak_check_ms)
			leak_check(a);
		c->next_leak_check_ms = now + CNI_LEAK_CHECK_MS;
	}
}

cJSON *agent_cni_ipam_status(struct agent *a)
{
	struct agent_cni *c = &a->cni;
	cJSON *o = cJSON_CreateObject(), *arr;
	struct ipam_alloc *al = NULL;
	size_t used = 0, cap = 0, n = 0;
	char pool[INET_ADDRSTRLEN + 4];

	if (!c->inited)
		return o;
	ipam_pool_str(&c->ipam, pool, sizeof(pool));
	ipam_usage(&c->ipam, &used, &cap);
	cJSON_AddStringToObject(o, "pool", pool);
	cJSON_AddNumberToObject(o, "allocated", (double)used);
	cJSON_AddNumberToObject(o, "capacity", (double)cap);
	cJSON_AddNumberToObject(o, "endpoints", (double)c->eps.count);
	cJSON_AddNumberToObject(o, "leaks_released", (double)c->leaks_released);
	arr = cJSON_AddArrayToObject(o, "allocations");
	if (ipam_list(&c->ipam, &al, &n))
		return o;
	for (size_t i = 0; i < n; i++) {
		cJSON *e = cJSON_CreateObject();
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &al[i].ip, ip, sizeof(ip));
		cJSON_AddStringToObject(e, "ip", ip);
		cJSON_AddStringToObject(e, "owner", al[i].owner);
		cJSON_AddStringToObject(e, "pod", al[i].pod);
		cJSON_AddItemToArray(arr, e);
	}
	free(al);
	return o;
}
