// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "backoff.h"
#include "addr.h"
#include "log.h"
#include "reconcile.h"

int ep_reconciler_init(struct ep_reconciler *r, const struct ep_map_ops *ops, void *ops_ctx,
		       const struct ep_dev_ops *dev, void *dev_ctx)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->ops = ops;
	r->ops_ctx = ops_ctx;
	r->dev = dev;
	r->dev_ctx = dev_ctx;
	r->backoff_base_ms = 500;
	r->backoff_max_ms = 30000;
	if ((err = ht_init(&r->ipcache)) || (err = ht_init(&r->endpoints)) ||
	    (err = ht_init(&r->pending)) || (err = ht_init(&r->failures))) {
		ep_reconciler_destroy(r);
		return err;
	}
	return 0;
}

void ep_reconciler_destroy(struct ep_reconciler *r)
{
	ht_destroy_with(&r->ipcache, free);
	ht_destroy_with(&r->endpoints, free);
	ht_destroy_with(&r->pending, free);
	ht_destroy_with(&r->failures, free);
}

static const char *errstr(int err)
{
	return err == -E2BIG || err == -ENOSPC ? "map full" : strerror(-err);
}

static int map_update(struct ep_reconciler *r, enum ep_map_id m, const void *k, const void *v)
{
	int err = r->ops->update(r->ops_ctx, m, k, v);

	if (err)
		r->stats.errors++;
	else
		r->stats.updates++;
	return err;
}

static int map_delete(struct ep_reconciler *r, enum ep_map_id m, const void *k)
{
	int err = r->ops->delete(r->ops_ctx, m, k);

	if (err == -ENOENT)
		err = 0;	/* already gone is what we wanted */
	if (err)
		r->stats.errors++;
	else
		r->stats.deletes++;
	return err;
}

/* ---- failures, kept per entry for status ---- */

static void failure_set(struct ep_reconciler *r, const char *what, int err, const char *op)
{
	struct ep_failure *f = ht_get(&r->failures, what, strlen(what));

	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f || ht_put(&r->failures, what, strlen(what), f, NULL)) {
			free(f);
			return;
		}
		snprintf(f->what, sizeof(f->what), "%s", what);
	}
	f->err = err;
	if (f->attempts++)
		r->stats.retries++;	/* it was failing already: this was a retry */
	f->seen = true;
	snprintf(f->msg, sizeof(f->msg), "%s: %s: %s", what, op, errstr(err));
	if (f->attempts == 1)
		pr_warn("endpoint state not realized", "error=\"%s\"", f->msg);
}

static void failure_clear(struct ep_reconciler *r, const char *what)
{
	struct ep_failure *f = ht_del(&r->failures, what, strlen(what));

	if (f) {
		r->stats.retries++;
		pr_info("endpoint state realized after failure", "what=\"%s\" attempts=%u",
			what, f->attempts);
		free(f);
	}
}

/* ---- ipcache ---- */

static void ipcache_what(char *buf, size_t len, const struct ipcache_key *k)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &k->address, a, sizeof(a));
	snprintf(buf, len, "ipcache %s/%u", a, k->prefixlen);
}

/* A CIDR prefix's write, for the policies to fail closed on (policy/cidr.h). */
static void cidr_outcome(struct ep_reconciler *r, const struct ipcache_key *k,
			 const struct ipcache_value *v, int err)
{
	if (r->cidr && v->identity >= IDENTITY_LOCAL_FLAG)
		cidr_ids_written(r->cidr, k->address, (__u8)k->prefixlen, err);
}

static int ipcache_pass(struct ep_reconciler *r, const struct store *s)
{
	struct htable want;
	struct ht_entry *e;
	int failing = 0, err;
	char what[64];

	err = ht_init(&want);
	if (!err)
		err = ipcache_desired(s, &want);
	if (!err && r->cidr)
		err = ipcache_desired_cidr(r->cidr, &want);
	if (err) {
		ipcache_desired_free(&want);
		return err;
	}
	for (e = ht_first(&want); e; e = ht_next(&want, e)) {
		const struct ipcache_desired_entry *d = e->value;
		const struct ipcache_key *k = (const void *)e->key;
		struct ipcache_value *have = ht_get(&r->ipcache, k, sizeof(*k));

		if (have && !memcmp(have, &d->value, sizeof(*have)))
			continue;
		err = map_update(r, EP_MAP_IPCACHE, k, &d->value);
		/* Named only when there is a failure to set or clear: 50,000
		 * inet_ntop+snprintf at the initial sync for nothing otherwise. */
		if (err || r->failures.count)
			ipcache_what(what, sizeof(what), k);
		if (err) {
			failure_set(r, what, err, "update");
			cidr_outcome(r, k, &d->value, err);
			failing++;
			continue;
		}
		cidr_outcome(r, k, &d->value, 0);
		if (!have) {
			have = malloc(sizeof(*have));
			if (!have || ht_put(&r->ipcache, k, sizeof(*k), have, NULL)) {
				free(have);
				failing++;
				continue;
			}
		}
		*have = d->value;
		if (r->failures.count)
			failure_clear(r, what);
	}
	for (e = ht_first(&r->ipcache); e;) {
		const struct ipcache_key *k = (const void *)e->key;

		if (ht_get(&want, k, sizeof(*k))) {
			e = ht_next(&r->ipcache, e);
			continue;
		}
		ipcache_what(what, sizeof(what), k);
		err = map_delete(r, EP_MAP_IPCACHE, k);
		if (err) {
			failure_set(r, what, err, "delete");
			failing++;
			e = ht_next(&r->ipcache, e);
			continue;
		}
		failure_clear(r, what);
		free(e->value);
		e = ht_del_iter(&r->ipcache, e);
	}
	ipcache_desired_free(&want);
	return failing;
}

/* ---- local endpoints ---- */

static void pending_set(struct ep_reconciler *r, const struct local_endpoint *le, int err)
{
	struct ep_pending *p = ht_get(&r->pending, &le->ip, sizeof(le->ip));
	char a[INET_ADDRSTRLEN];

	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p || ht_put(&r->pending, &le->ip, sizeof(le->ip), p, NULL)) {
			free(p);
			return;
		}
		p->ip = le->ip;
	}
	snprintf(p->name, sizeof(p->name), "%s", le->name);
	p->err = err;
	if (p->logged)
		return;
	/* Once: a pod whose CNI has not finished is normal for a moment. */
	inet_ntop(AF_INET, &le->ip, a, sizeof(a));
	pr_info("local endpoint has no device yet; waiting", "endpoint=%s ip=%s error=\"%s\"",
		le->name, a, strerror(-err));
	p->logged = true;
}

static void pending_clear(struct ep_reconciler *r, __be32 ip)
{
	free(ht_del(&r->pending, &ip, sizeof(ip)));
}

static int endpoint_apply(struct ep_reconciler *r, const struct local_endpoint *le)
{
	struct ep_local *have = ht_get(&r->endpoints, &le->ip, sizeof(le->ip));
	struct endpoint_key k = { .address = le->ip };
	struct ep_host_dev dev = {};
	struct endpoint_info info;
	char what[64], a[INET_ADDRSTRLEN];
	int err;

	inet_ntop(AF_INET, &le->ip, a, sizeof(a));
	snprintf(what, sizeof(what), "endpoint %s", a);
	err = r->dev->pod_device(r->dev_ctx, le->ip, &dev);
	if (err) {
		/* A device that went away: the entry would redirect into
		 * nothing, so it goes until the device is back. */
		if (have) {
			if (map_delete(r, EP_MAP_ENDPOINTS, &k))
				return -EIO;
			free(ht_del(&r->endpoints, &le->ip, sizeof(le->ip)));
		}
		pending_set(r, le, err);
		return 0;
	}
	pending_clear(r, le->ip);
	info = (struct endpoint_info){ .ifindex = dev.ifindex, .identity = le->identity };
	if (r->policy_of && !r->policy_of(r->policy_ctx, le->ip, &info.id, &info.policy))
		info.id = info.policy = 0;
	memcpy(info.mac, dev.pod_mac, sizeof(info.mac));
	memcpy(info.node_mac, dev.mac, sizeof(info.node_mac));
	if (have && !memcmp(&have->info, &info, sizeof(info))) {
		/* Restored entries learn their device's name here. */
		snprintf(have->ifname, sizeof(have->ifname), "%s", dev.ifname);
		snprintf(have->name, sizeof(have->name), "%s", le->name);
		return 0;
	}
	err = map_update(r, EP_MAP_ENDPOINTS, &k, &info);
	if (err) {
		failure_set(r, what, err, "update");
		return err;
	}
	if (!have) {
		have = calloc(1, sizeof(*have));
		if (!have || ht_put(&r->endpoints, &le->ip, sizeof(le->ip), have, NULL)) {
			free(have);
			return -ENOMEM;
		}
	}
	have->ip = le->ip;
	have->info = info;
	snprintf(have->ifname, sizeof(have->ifname), "%s", dev.ifname);
	snprintf(have->name, sizeof(have->name), "%s", le->name);
	failure_clear(r, what);
	return 0;
}

static bool wanted(const struct local_endpoint *v, size_t n, __be32 ip)
{
	size_t lo = 0, hi = n;

	/* v is sorted by host-order address. */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ntohl(v[mid].ip) == ntohl(ip))
			return true;
		if (ntohl(v[mid].ip) < ntohl(ip))
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int endpoints_pass(struct ep_reconciler *r, const struct store *s)
{
	struct local_endpoint *want;
	struct ht_entry *e;
	size_t n;
	int failing = 0, err;

	err = local_endpoints_desired(s, &want, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++)
		if (endpoint_apply(r, &want[i]))
			failing++;
	for (e = ht_first(&r->endpoints); e;) {
		struct ep_local *l = e->value;
		struct endpoint_key k = { .address = l->ip };
		char what[64], a[INET_ADDRSTRLEN];

		if (wanted(want, n, l->ip)) {
			e = ht_next(&r->endpoints, e);
			continue;
		}
		inet_ntop(AF_INET, &l->ip, a, sizeof(a));
		snprintf(what, sizeof(what), "endpoint %s", a);
		err = map_delete(r, EP_MAP_ENDPOINTS, &k);
		if (err) {
			failure_set(r, what, err, "delete");
			failing++;
			e = ht_next(&r->endpoints, e);
			continue;
		}
		failure_clear(r, what);
		free(l);
		e = ht_del_iter(&r->endpoints, e);
	}
	for (e = ht_first(&r->pending); e;) {
		struct ep_pending *p = e->value;

		if (wanted(want, n, p->ip)) {
			e = ht_next(&r->pending, e);
			continue;
		}
		free(p);
		e = ht_del_iter(&r->pending, e);
	}
	free(want);
	return failing;
}

/* Failures of one pass: "ipcache ..." or "endpoint ..." (failure_set's what). */
static bool failure_of_ipcache(const struct ep_failure *f)
{
	return !strncmp(f->what, "ipcache ", 8);
}

int ep_reconcile(struct ep_reconciler *r, const struct store *s, uint64_t now_ms,
		 uint64_t *next_ms)
{
	/* The ipcache follows the slices, the Nodes and the CIDR identities;
	 * the endpoints map also the CNI's endpoints and the devices. A pod
	 * added on this node moves only the latter: rebuilding the whole
	 * cluster's ipcache for it made each ADD cost more with every
	 * endpoint in the cluster. */
	bool ipc_moved = !r->ran || r->seen_nodes_rev != s->nodes_revision ||
			 r->seen_ces_rev != s->ces_revision || r->seen_self_ip != s->self_ip ||
			 (r->cidr && r->cidr->revision != r->seen_cidr_rev);
	bool moved = ipc_moved || r->seen_cni_rev != s->cni_revision;
	bool retry = r->next_retry_ms && r->next_retry_ms <= now_ms;
	bool ipcache = ipc_moved || retry;
	uint64_t held_retry = 0;
	int failing = 0, held = 0, ret;

	*next_ms = r->next_retry_ms ? r->next_retry_ms : UINT64_MAX;
	if (!moved && !retry && !r->devices_changed)
		return r->failures.count;
	r->ran = true;
	r->devices_changed = false;
	r->seen_nodes_rev = s->nodes_revision;
	r->seen_ces_rev = s->ces_revision;
	r->seen_cni_rev = s->cni_revision;
	r->seen_self_ip = s->self_ip;
	r->seen_cidr_rev = r->cidr ? r->cidr->revision : 0;
	r->stats.passes++;
	for (struct ht_entry *e = ht_first(&r->failures); e; e = ht_next(&r->failures, e)) {
		struct ep_failure *f = e->value;

		/* A pass not run keeps its failures, and they still count. */
		if (ipcache || !failure_of_ipcache(f))
			f->seen = false;
		else
			held++;
	}
	/* ... and the retry already due for them keeps its time. */
	if (held)
		held_retry = r->next_retry_ms;

	if (ipcache) {
		ret = ipcache_pass(r, s);
		failing += ret < 0 ? 1 : ret;
	}
	ret = endpoints_pass(r, s);
	failing += ret < 0 ? 1 : ret;
	/* Failures whose entry is no longer wanted are moot. */
	for (struct ht_entry *e = ht_first(&r->failures); e;) {
		if (((struct ep_failure *)e->value)->seen) {
			e = ht_next(&r->failures, e);
			continue;
		}
		free(e->value);
		e = ht_del_iter(&r->failures, e);
	}
	if (failing || r->pending.count) {
		uint64_t delay;

		/* Pending devices are also looked up again on a slow retry, in
		 * case a netlink notification was missed. */
		r->backoff_attempts += failing ? 1 : 0;
		delay = failing ? backoff_delay_ms(r->backoff_base_ms, r->backoff_max_ms,
						   r->backoff_attempts)
				: r->backoff_max_ms;
		r->next_retry_ms = now_ms + delay;
	} else if (!held) {
		r->backoff_attempts = 0;
		r->next_retry_ms = 0;
	}
	if (held_retry && (!r->next_retry_ms || held_retry < r->next_retry_ms))
		r->next_retry_ms = held_retry;
	*next_ms = r->next_retry_ms ? r->next_retry_ms : UINT64_MAX;
	return failing + held;
}

/* ---- restart ---- */

static int restore_ipcache(void *ctx, const void *key, const void *value)
{
	struct ep_reconciler *r = ctx;
	struct ipcache_value *v = malloc(sizeof(*v));

	if (!v)
		return -ENOMEM;
	memcpy(v, value, sizeof(*v));
	if (ht_put(&r->ipcache, key, sizeof(struct ipcache_key), v, NULL)) {
		free(v);
		return -ENOMEM;
	}
	/* A CIDR prefix keeps its identity: the policies computed before the
	 * first ipcache write use the same numbers the maps hold. */
	if (r->cidr && v->identity >= IDENTITY_LOCAL_FLAG) {
		const struct ipcache_key *k = key;
		int err = cidr_ids_restore(r->cidr, k->address, (__u8)k->prefixlen, v->identity);

		if (err && err != -ENOMEM) {
			char what[64];

			ipcache_what(what, sizeof(what), k);
			pr_warn("CIDR identity not restored",
				"entry=\"%s\" identity=%u error=\"%s\"", what, v->identity,
				strerror(-err));
		}
		return err == -ENOMEM ? err : 0;
	}
	return 0;
}

static int restore_endpoint(void *ctx, const void *key, const void *value)
{
	struct ep_reconciler *r = ctx;
	const struct endpoint_key *k = key;
	struct ep_local *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->ip = k->address;
	memcpy(&l->info, value, sizeof(l->info));
	if (ht_put(&r->endpoints, &l->ip, sizeof(l->ip), l, NULL)) {
		free(l);
		return -ENOMEM;
	}
	return 0;
}

int ep_reconciler_restore(struct ep_reconciler *r)
{
	int err = r->ops->dump(r->ops_ctx, EP_MAP_IPCACHE, restore_ipcache, r);

	if (!err)
		err = r->ops->dump(r->ops_ctx, EP_MAP_ENDPOINTS, restore_endpoint, r);
	if (!err)
		pr_info("restored endpoint state from pinned maps", "ipcache=%zu endpoints=%zu",
			r->ipcache.count, r->endpoints.count);
	return err;
}
