// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "backoff.h"
#include "log.h"
#include "routes_sync.h"

#define ROUTES_LIST_MAX 4096

static int cmp_want(const void *a, const void *b)
{
	const struct route_want *x = a, *y = b;
	__u32 xa = ntohl(x->route.dst.addr), ya = ntohl(y->route.dst.addr);

	if (xa != ya)
		return xa < ya ? -1 : 1;
	return (int)x->route.dst.len - (int)y->route.dst.len;
}

int node_routes_desired(const struct store *s, struct route_want **out, size_t *n)
{
	struct route_want *v = NULL;
	size_t cnt = 0, cap = 0, w = 0;

	*out = NULL;
	*n = 0;
	for (struct ht_entry *e = ht_first(&s->nodes); e; e = ht_next(&s->nodes, e)) {
		const struct store_node *sn = e->value;
		__be32 via = store_node_ip(&sn->node);

		if (!strcmp(sn->name, s->self_name) || !via)
			continue;
		for (size_t i = 0; i < sn->node.n_pod_cidrs; i++) {
			if (cnt == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct route_want *p = realloc(v, nc * sizeof(*p));

				if (!p) {
					free(v);
					return -ENOMEM;
				}
				v = p;
				cap = nc;
			}
			v[cnt] = (struct route_want){
				.route = { .dst = sn->node.pod_cidrs[i], .via = via },
			};
			snprintf(v[cnt].node, sizeof(v[cnt].node), "%s", sn->name);
			cnt++;
		}
	}
	if (!cnt)
		return 0;
	qsort(v, cnt, sizeof(*v), cmp_want);
	/* Two nodes claiming one CIDR: the first by prefix order wins; the
	 * other would flap the route. */
	for (size_t i = 0; i < cnt; i++)
		if (!w || cmp_want(&v[w - 1], &v[i]))
			v[w++] = v[i];
	*out = v;
	*n = w;
	return 0;
}

int route_sync_init(struct route_sync *rs, const struct route_ops *ops, void *ctx, bool enabled)
{
	int err;

	memset(rs, 0, sizeof(*rs));
	rs->ops = ops;
	rs->ops_ctx = ctx;
	rs->enabled = enabled;
	if ((err = ht_init(&rs->routes)) || (err = ht_init(&rs->failures)))
		route_sync_destroy(rs);
	return err;
}

void route_sync_destroy(struct route_sync *rs)
{
	ht_destroy_with(&rs->routes, free);
	ht_destroy_with(&rs->failures, free);
}

/* The hash key for a prefix, padding zeroed: written through a pointer, as a
 * struct returned by value need not carry its padding bytes along. */
static void pfx_key(struct ipv4_prefix *k, const struct ipv4_prefix *p)
{
	memset(k, 0, sizeof(*k));
	k->addr = p->addr;
	k->len = p->len;
}

static void route_what(char *buf, size_t len, const struct ipv4_prefix *p)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &p->addr, a, sizeof(a));
	snprintf(buf, len, "route %s/%u", a, p->len);
}

static void failure_set(struct route_sync *rs, const char *what, int err, const char *fmt_msg)
{
	struct route_failure *f = ht_get(&rs->failures, what, strlen(what));

	rs->errors++;
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f || ht_put(&rs->failures, what, strlen(what), f, NULL)) {
			free(f);
			return;
		}
		snprintf(f->what, sizeof(f->what), "%s", what);
	}
	f->err = err;
	f->attempts++;
	snprintf(f->msg, sizeof(f->msg), "%s", fmt_msg);
	if (f->attempts == 1)
		pr_warn("node route not realized", "error=\"%s\"", f->msg);
}

static void failure_clear(struct route_sync *rs, const char *what)
{
	free(ht_del(&rs->failures, what, strlen(what)));
}

/* Start-up: learn what is installed from the kernel (ours only). */
static int list_installed(struct route_sync *rs)
{
	struct node_route *have = calloc(ROUTES_LIST_MAX, sizeof(*have));
	int n;

	if (!have)
		return -ENOMEM;
	n = rs->ops->list(rs->ops_ctx, have, ROUTES_LIST_MAX);
	for (int i = 0; i < n; i++) {
		struct ipv4_prefix k;
		struct route_want *w = calloc(1, sizeof(*w));

		pfx_key(&k, &have[i].dst);
		if (!w || ht_put(&rs->routes, &k, sizeof(k), w, NULL)) {
			free(w);
			free(have);
			return -ENOMEM;
		}
		w->route = have[i];
	}
	free(have);
	return n < 0 ? n : 0;
}

static int apply(struct route_sync *rs, struct route_want *want)
{
	struct route_want *have;
	char what[64], msg[256], a[INET_ADDRSTRLEN];
	struct ipv4_prefix k;
	int ifindex, err;

	pfx_key(&k, &want->route.dst);
	have = ht_get(&rs->routes, &k, sizeof(k));

	route_what(what, sizeof(what), &want->route.dst);
	inet_ntop(AF_INET, &want->route.via, a, sizeof(a));
	ifindex = rs->ops->device_for(rs->ops_ctx, want->route.via);
	if (ifindex <= 0) {
		err = ifindex ? ifindex : -ENETUNREACH;
		snprintf(msg, sizeof(msg), "%s via %s (node %.120s): no native device reaches %s",
			 what, a, want->node, a);
		failure_set(rs, what, err, msg);
		return err;
	}
	want->route.ifindex = ifindex;
	if (have && have->route.via == want->route.via && have->route.ifindex == ifindex) {
		snprintf(have->node, sizeof(have->node), "%s", want->node);
		failure_clear(rs, what);
		return 0;
	}
	err = rs->ops->replace(rs->ops_ctx, &want->route);
	if (err) {
		snprintf(msg, sizeof(msg), "%s via %s (node %.120s): %s", what, a, want->node,
			 strerror(-err));
		failure_set(rs, what, err, msg);
		return err;
	}
	rs->replaced++;
	if (!have) {
		have = calloc(1, sizeof(*have));
		if (!have || ht_put(&rs->routes, &k, sizeof(k), have, NULL)) {
			free(have);
			return -ENOMEM;
		}
	}
	*have = *want;
	failure_clear(rs, what);
	pr_info("node route installed", "dst=%s via=%s ifindex=%d node=%s", what + 6, a, ifindex,
		want->node);
	return 0;
}

static bool is_wanted(const struct route_want *v, size_t n, const struct ipv4_prefix *p)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].route.dst.addr == p->addr && v[i].route.dst.len == p->len)
			return true;
	return false;
}

int route_sync_run(struct route_sync *rs, const struct store *s, uint64_t now_ms,
		   uint64_t *next_ms)
{
	bool moved = !rs->ran || rs->seen_nodes_rev != s->nodes_revision;
	bool retry = rs->next_retry_ms && rs->next_retry_ms <= now_ms;
	struct route_want *want = NULL;
	size_t n = 0;
	int failing = 0, err;

	*next_ms = rs->next_retry_ms ? rs->next_retry_ms : UINT64_MAX;
	if (!moved && !retry && !rs->devices_changed)
		return rs->failures.count;
	if (!rs->listed) {
		err = list_installed(rs);
		if (err) {
			failure_set(rs, "routes", err, "listing Axon's routes failed");
			failing++;
			goto out;
		}
		failure_clear(rs, "routes");
		rs->listed = true;
	}
	rs->ran = true;
	rs->devices_changed = false;
	rs->seen_nodes_rev = s->nodes_revision;
	if (rs->enabled) {
		err = node_routes_desired(s, &want, &n);
		if (err)
			return err;
	}
	for (size_t i = 0; i < n; i++)
		if (apply(rs, &want[i]))
			failing++;
	for (struct ht_entry *e = ht_first(&rs->routes); e;) {
		struct route_want *have = e->value;
		char what[64], msg[256];

		if (is_wanted(want, n, &have->route.dst)) {
			e = ht_next(&rs->routes, e);
			continue;
		}
		route_what(what, sizeof(what), &have->route.dst);
		err = rs->ops->delete(rs->ops_ctx, &have->route.dst);
		if (err && err != -ENOENT) {
			snprintf(msg, sizeof(msg), "%s: delete: %s", what, strerror(-err));
			failure_set(rs, what, err, msg);
			failing++;
			e = ht_next(&rs->routes, e);
			continue;
		}
		rs->deleted++;
		failure_clear(rs, what);
		pr_info("node route removed", "dst=%s", what + 6);
		free(have);
		e = ht_del_iter(&rs->routes, e);
	}
	/* Failures of routes no longer wanted are moot. */
	for (struct ht_entry *e = ht_first(&rs->failures); e;) {
		struct route_failure *f = e->value;
		bool keep = !strcmp(f->what, "routes");

		for (size_t i = 0; i < n && !keep; i++) {
			char what[64];

			route_what(what, sizeof(what), &want[i].route.dst);
			keep = !strcmp(what, f->what);
		}
		for (struct ht_entry *h = ht_first(&rs->routes); h && !keep; h = ht_next(&rs->routes, h)) {
			char what[64];

			route_what(what, sizeof(what), &((struct route_want *)h->value)->route.dst);
			keep = !strcmp(what, f->what);
		}
		if (keep) {
			e = ht_next(&rs->failures, e);
			continue;
		}
		free(f);
		e = ht_del_iter(&rs->failures, e);
	}
out:
	free(want);
	if (failing) {
		/* The endpoints reconciler's schedule: 500 ms doubling to 30 s. */
		uint64_t delay = backoff_delay_ms(500, 30000, ++rs->attempts);

		rs->next_retry_ms = now_ms + delay;
	} else {
		rs->attempts = 0;
		rs->next_retry_ms = 0;
	}
	*next_ms = rs->next_retry_ms ? rs->next_retry_ms : UINT64_MAX;
	return failing;
}

/* ---- the full pass ---- */

static bool route_same(const struct node_route *a, const struct node_route *b)
{
	return a->dst.addr == b->dst.addr && a->dst.len == b->dst.len && a->via == b->via &&
	       a->ifindex == b->ifindex;
}

int route_sync_resync(struct route_sync *rs)
{
	struct node_route *have;
	struct htable ok;
	int n, repaired = 0, first_err = 0, err;

	if (!rs->ran || !rs->listed)
		return 0;
	have = calloc(ROUTES_LIST_MAX, sizeof(*have));
	if (!have)
		return -ENOMEM;
	err = ht_init(&ok);
	n = err ? err : rs->ops->list(rs->ops_ctx, have, ROUTES_LIST_MAX);
	if (n < 0) {
		err = n;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		struct route_want *w;
		struct ipv4_prefix k;
		char what[64];

		pfx_key(&k, &have[i].dst);
		w = ht_get(&rs->routes, &k, sizeof(k));

		if (w && route_same(&w->route, &have[i])) {
			if ((err = ht_put(&ok, &k, sizeof(k), w, NULL)))
				goto out;
			continue;
		}
		if (w)
			continue;	/* changed: replaced below */
		/* Ours (proto axon) but no node wants it. */
		route_what(what, sizeof(what), &have[i].dst);
		err = rs->ops->delete(rs->ops_ctx, &have[i].dst);
		if (err && err != -ENOENT) {
			rs->errors++;
			first_err = first_err ? first_err : err;
			continue;
		}
		rs->deleted++;
		repaired++;
		pr_warn("full reconcile removed a stray route", "dst=%s", what + 6);
	}
	for (struct ht_entry *e = ht_first(&rs->routes); e; e = ht_next(&rs->routes, e)) {
		struct route_want *w = e->value;
		char what[64];

		if (ht_get(&ok, e->key, e->klen))
			continue;
		route_what(what, sizeof(what), &w->route.dst);
		err = rs->ops->replace(rs->ops_ctx, &w->route);
		if (err) {
			rs->errors++;
			first_err = first_err ? first_err : err;
			continue;
		}
		rs->replaced++;
		repaired++;
		pr_warn("full reconcile restored a node route", "dst=%s node=%s", what + 6, w->node);
	}
	err = first_err;
out:
	ht_destroy(&ok);
	free(have);
	rs->resyncs++;
	rs->repairs += repaired;
	rs->last_repairs = repaired;
	return err ? err : repaired;
}

const struct route_want *route_sync_installed(const struct route_sync *rs,
					      const struct ipv4_prefix *dst)
{
	struct ipv4_prefix k;

	pfx_key(&k, dst);
	return ht_get(&rs->routes, &k, sizeof(k));
}

const struct route_failure *route_sync_failure(const struct route_sync *rs,
					       const struct ipv4_prefix *dst)
{
	char what[64];

	route_what(what, sizeof(what), dst);
	return ht_get(&rs->failures, what, strlen(what));
}
