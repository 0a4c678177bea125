// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>

#include "axon/endpoint.h"
#include "axon/maps.h"
#include "agent.h"
#include "dp_config.h"
#include "log.h"
#include "metrics/collect.h"
#include "metrics/map_ops.h"
#include "pin.h"

/* ---- ops on the real maps and devices ---- */

static const size_t ep_key_size[EP_MAP__NR] = {
	[EP_MAP_IPCACHE] = sizeof(struct ipcache_key),
	[EP_MAP_ENDPOINTS] = sizeof(struct endpoint_key),
};

static const char *const ep_map_names[EP_MAP__NR] = {
	[EP_MAP_IPCACHE] = MAP_IPCACHE,
	[EP_MAP_ENDPOINTS] = MAP_ENDPOINTS,
};

static int ep_bpf_update(void *ctx, enum ep_map_id map, const void *key, const void *value)
{
	struct ep_bpf_maps *m = ctx;

	int err;

	if (m->fd[map] < 0)
		return -ENOENT;
	err = bpf_map_update_elem(m->fd[map], key, value, BPF_ANY) ? -errno : 0;
	map_ops_count(ep_map_names[map], MAP_OP_UPDATE, err);
	return err;
}

static int ep_bpf_delete(void *ctx, enum ep_map_id map, const void *key)
{
	struct ep_bpf_maps *m = ctx;

	int err;

	if (m->fd[map] < 0)
		return -ENOENT;
	err = bpf_map_delete_elem(m->fd[map], key) ? -errno : 0;
	map_ops_count(ep_map_names[map], MAP_OP_DELETE, err);
	return err;
}

static int ep_bpf_dump(void *ctx, enum ep_map_id map, ep_dump_cb cb, void *cb_ctx)
{
	struct ep_bpf_maps *m = ctx;
	_Alignas(8) unsigned char key[16], next[16], value[32];
	void *prev = NULL;
	int err = 0;

	if (m->fd[map] < 0)
		return -ENOENT;
	while (!bpf_map_get_next_key(m->fd[map], prev, next)) {
		memcpy(key, next, ep_key_size[map]);
		prev = key;
		if (bpf_map_lookup_elem(m->fd[map], key, value))
			continue;
		err = cb(cb_ctx, key, value);
		if (err)
			return err;
	}
	return errno == ENOENT ? 0 : -errno;
}

static const struct ep_map_ops ep_bpf_ops = {
	.update = ep_bpf_update,
	.delete = ep_bpf_delete,
	.dump = ep_bpf_dump,
};

static int pod_device(void *ctx, __be32 ip, struct ep_host_dev *out)
{
	struct agent_dp *d = ctx;
	struct netdev host = {};
	int err;

	if (!d->nd)
		return -ENODEV;
	err = netdev_pod_device(d->nd, ip, &host, out->pod_mac);
	if (err)
		return err;
	out->ifindex = host.ifindex;
	snprintf(out->ifname, sizeof(out->ifname), "%s", host.name);
	memcpy(out->mac, host.mac, sizeof(out->mac));
	return 0;
}

static const struct ep_dev_ops ep_dev_real = { .pod_device = pod_device };

static int route_replace(void *ctx, const struct node_route *r)
{
	(void)ctx;
	return node_route_replace(r);
}

static int route_delete(void *ctx, const struct ipv4_prefix *dst)
{
	(void)ctx;
	return node_route_delete(dst);
}

static int route_list(void *ctx, struct node_route *out, int max)
{
	(void)ctx;
	return node_routes_list(out, max);
}

/* The native device the kernel would use to reach @via (libnl route lookup),
 * which must be one of ours: a node reached through some other device is not
 * a direct-routing neighbour. */
static int route_device_for(void *ctx, __be32 via)
{
	struct agent_dp *d = ctx;
	struct rtnl_route *result = NULL;
	struct nl_sock *sk = NULL;
	struct nl_addr *dst = NULL;
	int ifindex = -ENETUNREACH;

	if (d->n_native == 1) {
		/* One native device: the only way out. */
		return d->native[0].ifindex;
	}
	sk = nl_socket_alloc();
	if (!sk || nl_connect(sk, NETLINK_ROUTE))
		goto out;
	dst = nl_addr_build(AF_INET, &via, sizeof(via));
	if (!dst || rtnl_route_lookup(sk, dst, &result) || !result)
		goto out;
	if (rtnl_route_get_nnexthops(result) > 0) {
		int dev = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(result, 0));

		for (int i = 0; i < d->n_native; i++)
			if (d->native[i].ifindex == dev)
				ifindex = dev;
	}
out:
	if (result)
		rtnl_route_put(result);
	nl_addr_put(dst);
	nl_socket_free(sk);
	return ifindex;
}

static const struct route_ops route_real = {
	.replace = route_replace,
	.delete = route_delete,
	.list = route_list,
	.device_for = route_device_for,
};

/* ---- init ---- */

/* --bpf-lb-sock=false: the tc programs translate pods' service traffic, so
 * the socket hooks the loader attached (links pinned under our root: ours)
 * are detached again. The loader has no switch for this yet; with one, this
 * goes. */
static void sock_lb_detach(struct agent *a)
{
	for (int i = 0; i < a->dp.n_attach; i++) {
		char path[4096];
		int fd;

		if (pin_link_path(path, sizeof(path), a->cfg.bpf_root, a->dp.attach[i].program))
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (bpf_link_detach(fd))
			pr_warn("cannot detach socket LB link", "program=%s error=\"%s\"",
				a->dp.attach[i].program, strerror(errno));
		close(fd);
		unlink(path);
	}
	if (a->dp.n_attach)
		pr_info("socket LB detached (--bpf-lb-sock=false)", "links=%d", a->dp.n_attach);
	a->dp.n_attach = 0;
}

static void preload(struct agent *a);

/* Before the policy watches have synced, an endpoint keeps the id and
 * enforcement its entry already has (a restarted agent enforces what the
 * previous run did, never less). */
static bool ep_policy_of(void *ctx, __be32 ip, __u16 *id, __u8 *enforce)
{
	struct agent_dp *d = ctx;
	const struct ep_local *l;

	if (d->pol.ran)
		return pol_reconciler_lookup(&d->pol, ip, id, enforce);
	l = ht_get(&d->ep.endpoints, &ip, sizeof(ip));
	if (!l)
		return false;
	*id = l->info.id;
	*enforce = l->info.policy;
	return true;
}

/* After the tries (pol_reconcile) and endpoint_info (ep_reconcile) are
 * written: the pass's engine time, and the time since the oldest event it
 * enforces once every endpoint's policy is realized. */
static void policy_observe(struct agent *a)
{
	struct agent_dp *d = &a->dpx;

	if (d->pol.passes == d->pol_passes_seen)
		return;
	d->pol_passes_seen = d->pol.passes;
	metrics_hist_observe(&d->pol_compute, metrics_pol_seconds_bounds, metrics_pol_seconds_n,
			     d->pol.compute_ns / 1e9);
	if (a->pol_event_ns && !d->pol_failing) {
		metrics_hist_observe(&d->pol_enforce, metrics_pol_seconds_bounds,
				     metrics_pol_seconds_n,
				     (agent_mono_ns() - a->pol_event_ns) / 1e9);
		a->pol_event_ns = 0;
	}
}

static bool policy_watches_synced(struct agent *a)
{
	struct agent_watch *w[] = {&a->netpols, &a->cnps, &a->ccnps, &a->identities,
				   &a->namespaces};

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (!w[i]->synced && !agent_watch_not_installed(w[i]))
			return false;
	return true;
}

/* The id the endpoints map already gives ip (restored at start): an
 * endpoint keeps its policy slot across restarts. */
static __u16 pol_id_hint(void *ctx, __be32 ip)
{
	const struct ep_local *l = ht_get(&((struct agent_dp *)ctx)->ep.endpoints, &ip, sizeof(ip));

	return l ? l->info.id : 0;
}

int agent_datapath_init(struct agent *a)
{
	struct agent_dp *d = &a->dpx;
	int err;

	memset(d, 0, sizeof(*d));
	/* The Maglev map belongs to the tc object: absent until it is loaded. */
	a->dp.lb.fd[LB_MAP_MAGLEV] = -1;
	for (int i = 0; i < EP_MAP__NR; i++)
		d->ep_maps.fd[i] = -1;
	for (int i = 0; i < 3; i++)
		d->ct_fds[i] = -1;
	d->tc = (struct tc_attach_ctx){
		.bpf_root = a->cfg.bpf_root, .state_dir = a->cfg.state_dir,
		.mode = a->cfg.enable_tcx ? TC_MODE_AUTO : TC_MODE_LEGACY,
	};
	d->native_dirty = true;
	store_set_self_name(&a->store, a->cfg.node_name);
	a->lb.maglev_default = a->cfg.lb_algorithm == LB_ALGO_MAGLEV;
	a->lb.maglev_available = false;
	if (!a->cfg.bpf_lb_sock)
		sock_lb_detach(a);
	err = ht_init(&d->attached);
	if (!err)
		err = big_tcp_init(&d->big_tcp, a->cfg.enable_ipv4_big_tcp);
	if (!err)
		err = ep_reconciler_init(&d->ep, &ep_bpf_ops, &d->ep_maps, &ep_dev_real, d);
	if (!err)
		err = pol_reconciler_init(&d->pol, a->dp.policy_fd, a->cfg.policy_map_max);
	if (!err) {
		d->ep.policy_of = ep_policy_of;
		d->ep.policy_ctx = d;
		d->ep.cidr = &d->pol.cidr;
	}
	if (!err)
		err = route_sync_init(&d->routes, &route_real, d, a->cfg.auto_direct_node_routes);
	if (err)
		return err;
	/* A restart: the Maglev map pinned by the previous run is used at once,
	 * so Maglev services keep their tables (and flag) throughout. */
	{
		int fd = pin_map_open(a->cfg.bpf_root, MAP_LB4_MAGLEV);

		if (fd >= 0) {
			a->dp.lb.fd[LB_MAP_MAGLEV] = fd;
			a->lb.maglev_available = true;
			lb_reconciler_restore_maglev(&a->lb);
		}
		/* Likewise the source ranges: read in before any service claims them. */
		fd = pin_map_open(a->cfg.bpf_root, MAP_LB4_SOURCE_RANGE);
		if (fd >= 0 && lb_src_ranges_open(&a->lb.src_ranges, fd))
			pr_warn("cannot read the pinned map", "map=%s", MAP_LB4_SOURCE_RANGE);
	}
	err = netdev_open(&d->nd);
	if (err) {
		/* Retried by the sync, so a transient netlink error is not fatal. */
		pr_warn("cannot open netlink for devices", "error=\"%s\"", strerror(-err));
		d->nd = NULL;
	}
	snprintf(d->state, sizeof(d->state), "waiting for the Node and CiliumEndpointSlice watches");
	preload(a);
	return 0;
}

void agent_datapath_close(struct agent *a)
{
	struct agent_dp *d = &a->dpx;

	if (!d->attached.buckets)
		return;		/* never initialized */
	route_sync_destroy(&d->routes);
	ep_reconciler_destroy(&d->ep);
	pol_reconciler_destroy(&d->pol);
	ht_destroy_with(&d->attached, free);
	big_tcp_destroy(&d->big_tcp);
	for (int i = 0; i < EP_MAP__NR; i++)
		if (d->ep_maps.fd[i] >= 0)
			close(d->ep_maps.fd[i]);
	for (int i = 0; i < 3; i++)
		if (d->ct_fds[i] >= 0)
			close(d->ct_fds[i]);
	if (a->dp.lb.fd[LB_MAP_MAGLEV] >= 0)
		close(a->dp.lb.fd[LB_MAP_MAGLEV]);
	if (a->lb.src_ranges.fd >= 0)
		close(a->lb.src_ranges.fd);
	if (d->nd)
		netdev_close(d->nd);
	d->nd = NULL;
}

int agent_datapath_fd(struct agent *a)
{
	return a->dpx.nd ? netdev_fd(a->dpx.nd) : -1;
}

static bool is_native(const struct agent_dp *d, int ifindex)
{
	for (int i = 0; i < d->n_native; i++)
		if (d->native[i].ifindex == ifindex)
			return true;
	return false;
}

/* Is ifindex's name one of --devices? */
static bool named_native(struct agent *a, int ifindex)
{
	struct netdev dev;
	const char *list = a->cfg.devices, *p;
	size_t len;

	if (!list[0] || netdev_by_index(a->dpx.nd, ifindex, &dev))
		return false;
	len = strlen(dev.name);
	for (p = strstr(list, dev.name); p; p = strstr(p + 1, dev.name))
		if ((p == list || p[-1] == ',' || p[-1] == ' ') &&
		    (p[len] == '\0' || p[len] == ',' || p[len] == ' '))
			return true;
	return false;
}

/*
 * Whether a change can move the native devices or the routes to other
 * nodes: a native device itself (or one --devices names), its addresses or
 * routes, or a route wider than a pod's /32 (the default route decides the
 * native device without --devices; a subnet route, which device reaches a
 * node). A pod's veth and its /32 route are not: those only concern the
 * endpoints, and re-resolving every node's route for each new pod made an
 * ADD cost more with every node in the cluster.
 */
static bool node_level(struct agent *a, const struct netdev_change *c)
{
	switch (c->kind) {
	case NETDEV_CHANGE_LINK:
		return is_native(&a->dpx, c->ifindex) || named_native(a, c->ifindex);
	case NETDEV_CHANGE_ADDR:
		return is_native(&a->dpx, c->ifindex);
	case NETDEV_CHANGE_ROUTE:
		return c->prefixlen < 32 || is_native(&a->dpx, c->ifindex);
	}
	return true;
}

void agent_datapath_netdev_event(struct agent *a)
{
	struct agent_dp *d = &a->dpx;
	struct netdev_changes *ch = &d->nd_changes;
	bool node = false;

	if (!d->nd || netdev_process(d->nd, ch) || (!ch->all && !ch->n))
		return;
	for (unsigned int i = 0; i < ch->n && !ch->all && !node; i++)
		node = node_level(a, &ch->v[i]);
	if (ch->all || node) {
		d->native_dirty = true;
		route_sync_devices_changed(&d->routes);
	}
	if (ch->all) {
		big_tcp_devices_changed(&d->big_tcp);
	} else {
		for (unsigned int i = 0; i < ch->n; i++)
			if (ch->v[i].kind == NETDEV_CHANGE_LINK)
				big_tcp_link_changed(&d->big_tcp, ch->v[i].ifindex);
	}
	ep_reconciler_devices_changed(&d->ep);
}

/* ---- programs ---- */

static int open_pinned(struct agent *a, const char *name)
{
	int fd = pin_map_open(a->cfg.bpf_root, name);

	if (fd < 0)
		pr_err("pinned map missing after loading the tc datapath", "map=%s error=\"%s\"",
		       name, strerror(-fd));
	return fd;
}

static void reopen(int *fd, int nfd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = nfd;
}

/* (Re)load the tc programs for node_ip when the config changed; open their
 * maps the first time. Returns 0 when loaded. */
static int programs_sync(struct agent *a, __be32 node_ip, uint64_t now_ms, uint64_t *next_ms)
{
	struct agent_dp *d = &a->dpx;
	struct datapath_config cfg;
	int err;

	datapath_config_build(&a->cfg, node_ip, &cfg);
	if (d->tc_loaded && datapath_config_equal(&cfg, &d->cfg))
		return 0;
	if (d->load_retry_ms > now_ms) {
		*next_ms = *next_ms < d->load_retry_ms ? *next_ms : d->load_retry_ms;
		return d->tc_loaded ? 0 : -EAGAIN;
	}
	err = datapath_tc_load(&a->dp, &cfg);
	if (err) {
		d->load_err = err;
		d->load_retry_ms = now_ms + 5000;
		*next_ms = *next_ms < d->load_retry_ms ? *next_ms : d->load_retry_ms;
		pr_err("loading the tc datapath failed", "error=\"%s\"", strerror(-err));
		return d->tc_loaded ? 0 : err;	/* the old programs keep running */
	}
	d->load_err = 0;
	d->load_retry_ms = 0;
	d->cfg = cfg;
	d->loads++;
	/* New programs: every attachment is updated in place to them. */
	d->native_dirty = true;
	for (struct ht_entry *e = ht_first(&d->attached); e;) {
		free(e->value);
		e = ht_del_iter(&d->attached, e);
	}
	if (!d->tc_loaded) {
		reopen(&d->ep_maps.fd[EP_MAP_IPCACHE], open_pinned(a, MAP_IPCACHE));
		reopen(&d->ep_maps.fd[EP_MAP_ENDPOINTS], open_pinned(a, MAP_ENDPOINTS));
		reopen(&a->dp.lb.fd[LB_MAP_MAGLEV], open_pinned(a, MAP_LB4_MAGLEV));
		reopen(&d->ct_fds[0], open_pinned(a, MAP_CT4_TCP));
		reopen(&d->ct_fds[1], open_pinned(a, MAP_CT4_ANY));
		reopen(&d->ct_fds[2], open_pinned(a, MAP_NAT4));
		if (!d->ep_restored && !ep_reconciler_restore(&d->ep))
			d->ep_restored = true;
		if (!lb_src_ranges_available(&a->lb.src_ranges)) {
			int fd = open_pinned(a, MAP_LB4_SOURCE_RANGE);

			/* Fresh: nothing to read in; services with ranges get them now. */
			if (fd >= 0) {
				lb_src_ranges_open(&a->lb.src_ranges, fd);
				store_mark_all_dirty(&a->store);
			}
		}
		if (a->dp.lb.fd[LB_MAP_MAGLEV] >= 0 && !a->lb.maglev_available) {
			lb_reconciler_restore_maglev(&a->lb);
			a->lb.maglev_available = true;
			/* Maglev services get their tables now. */
			store_mark_all_dirty(&a->store);
		}
		if (d->ct_fds[0] >= 0 && d->ct_fds[1] >= 0 && d->ct_fds[2] >= 0) {
			unsigned int min = a->cfg.ct_gc_interval_ms ? a->cfg.ct_gc_interval_ms
								    : CT_GC_MIN_INTERVAL_MS_DEFAULT;
			unsigned int max = a->cfg.ct_gc_interval_ms ? a->cfg.ct_gc_interval_ms
								    : a->cfg.ct_gc_max_interval_ms;

			ct_gc_init(&d->gc, d->ct_fds[0], d->ct_fds[1], d->ct_fds[2], min, max);
			d->gc_ready = true;
			d->gc_next_ms = now_ms + d->gc.interval_ms;
		}
	}
	d->tc_loaded = true;
	pr_info("tc datapath loaded", "node_ip=%s masquerade=%d sock_lb=%d loads=%lu",
		inet_ntoa((struct in_addr){ cfg.node_ip }), !!(cfg.flags & CFG_MASQUERADE),
		!!(cfg.flags & CFG_SOCK_LB), d->loads);
	return 0;
}

/*
 * Load the tc programs at start, before the first LIST, with the native
 * device's address as the node's (the programs take it as a constant):
 * the verifier's ~0.3 s then delays the agent's start, not its first sync
 * with the cluster. The Node object's InternalIP decides afterwards; when it
 * differs, programs_sync() loads again. Without a native device with an
 * address the load waits for the Node, as before.
 */
static void preload(struct agent *a)
{
	struct netdev native[NETDEV_MAX_NATIVE];
	struct agent_dp *d = &a->dpx;
	uint64_t next = UINT64_MAX;
	int n;

	if (!d->nd)
		return;
	n = netdev_native(d->nd, a->cfg.devices, native, NETDEV_MAX_NATIVE);
	if (n <= 0 || !native[0].ipv4)
		return;
	if (!programs_sync(a, native[0].ipv4, 0, &next))
		pr_info("tc programs loaded before the Node is known", "device=%s node_ip=%s",
			native[0].name, inet_ntoa((struct in_addr){ native[0].ipv4 }));
}

/* ---- attachments ---- */

static int attach_one(struct agent *a, const char *program, int ifindex, const char *ifname,
		      enum tc_dir dir)
{
	struct agent_dp *d = &a->dpx;
	char key[32];
	struct tc_attachment *t;
	int fd, err;

	snprintf(key, sizeof(key), "%d/%d", ifindex, dir);
	t = ht_get(&d->attached, key, strlen(key));
	if (t && !strcmp(t->program, program))
		return 0;
	fd = datapath_tc_prog_fd(&a->dp, program);
	if (fd < 0)
		return fd;
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		if (ht_put(&d->attached, key, strlen(key), t, NULL)) {
			free(t);
			return -ENOMEM;
		}
	}
	err = tc_attach(&d->tc, fd, program, ifindex, ifname, dir, t);
	if (err) {
		d->attach_errors++;
		snprintf(d->attach_error, sizeof(d->attach_error), "%s on %s %s: %s", program,
			 ifname, dir == TC_INGRESS ? "ingress" : "egress", strerror(-err));
		pr_warn("attach failed", "program=%s dev=%s error=\"%s\"", program, ifname,
			strerror(-err));
		free(ht_del(&d->attached, key, strlen(key)));
		return err;
	}
	d->attach_error[0] = '\0';
	return 0;
}

static int native_sync(struct agent *a)
{
	struct agent_dp *d = &a->dpx;
	int n, err = 0;

	if (!d->native_dirty || !d->nd)
		return d->nd ? 0 : -ENODEV;
	n = netdev_native(d->nd, a->cfg.devices, d->native, NETDEV_MAX_NATIVE);
	if (n < 0) {
		snprintf(d->native_error, sizeof(d->native_error), "%s: %s",
			 a->cfg.devices[0] ? a->cfg.devices : "default route", strerror(-n));
		d->n_native = 0;
		return n;
	}
	d->native_error[0] = '\0';
	d->n_native = n;
	if (d->tc.mode == TC_MODE_AUTO && n > 0 && tc_probe_tcx(&d->tc, d->native[0].ifindex))
		d->tc.mode = TC_MODE_LEGACY;
	for (int i = 0; i < n; i++) {
		err = attach_one(a, "from_netdev", d->native[i].ifindex, d->native[i].name,
				 TC_INGRESS) ?: err;
		err = attach_one(a, "to_netdev", d->native[i].ifindex, d->native[i].name,
				 TC_EGRESS) ?: err;
		big_tcp_native_device(&d->big_tcp, d->native[i].ifindex, d->native[i].name);
	}
	if (!err)
		d->native_dirty = false;
	return err;
}

static void endpoints_attach(struct agent *a)
{
	struct agent_dp *d = &a->dpx;

	for (struct ht_entry *e = ht_first(&d->ep.endpoints); e; e = ht_next(&d->ep.endpoints, e)) {
		const struct ep_local *l = e->value;

		if (!l->ifname[0])
			continue;
		attach_one(a, "from_container", l->info.ifindex, l->ifname, TC_INGRESS);
		attach_one(a, "to_container", l->info.ifindex, l->ifname, TC_EGRESS);
		big_tcp_pod_device(&d->big_tcp, l->info.ifindex, l->ifname);
	}
}

/* ---- the sync ---- */

static void lower(uint64_t *next, uint64_t t)
{
	if (t < *next)
		*next = t;
}

void agent_datapath_sync(struct agent *a, uint64_t now_ms, uint64_t *next_ms)
{
	struct agent_dp *d = &a->dpx;
	uint64_t t;

	/* No CiliumEndpointSlice CRD (404): Nodes alone still give NodePort,
	 * routes and pod CIDRs; endpoints appear when the CRD does. */
	if (!a->nodes.synced || (!a->ces.synced && !agent_watch_not_installed(&a->ces))) {
		snprintf(d->state, sizeof(d->state),
			 "waiting for the Node and CiliumEndpointSlice watches");
		return;
	}
	if (!a->store.self_known || !a->store.self_ip) {
		snprintf(d->state, sizeof(d->state), "waiting for Node %s%s", a->store.self_name,
			 a->store.self_known ? " to have an address" : "");
		return;
	}
	if (!d->nd && netdev_open(&d->nd)) {
		d->nd = NULL;
		snprintf(d->state, sizeof(d->state), "cannot open netlink for devices");
		lower(next_ms, now_ms + 5000);
		return;
	}
	if (programs_sync(a, a->store.self_ip, now_ms, next_ms)) {
		snprintf(d->state, sizeof(d->state), "loading the tc programs failed: %s",
			 strerror(-d->load_err));
		return;
	}
	if (native_sync(a))
		lower(next_ms, now_ms + 5000);
	/* Tries first, then the endpoints map that enforces them. */
	if (policy_watches_synced(a)) {
		d->pol_failing = pol_reconcile(&d->pol, &a->store, pol_id_hint, d, now_ms, &t);
		lower(next_ms, t);
	} else {
		a->pol_event_ns = 0; /* the initial sync is not a change to enforce */
	}
	if (d->pol.enforcement_changed) {
		d->pol.enforcement_changed = false;
		ep_reconciler_policy_changed(&d->ep);
	}
	ep_reconcile(&d->ep, &a->store, now_ms, &t);
	lower(next_ms, t);
	/* A CIDR prefix the ipcache refused (or took again): its rules fail
	 * closed (or are enforced again) in this turn, not at the next retry. */
	if (d->pol.cidr.dirty && d->pol.ran) {
		d->pol_failing = pol_reconcile(&d->pol, &a->store, pol_id_hint, d, now_ms, &t);
		lower(next_ms, t);
		if (d->pol.enforcement_changed) {
			d->pol.enforcement_changed = false;
			ep_reconciler_policy_changed(&d->ep);
			ep_reconcile(&d->ep, &a->store, now_ms, &t);
			lower(next_ms, t);
		}
	}
	policy_observe(a);
	endpoints_attach(a);
	route_sync_run(&d->routes, &a->store, now_ms, &t);
	lower(next_ms, t);
	if (d->gc_ready) {
		if (d->gc_next_ms <= now_ms) {
			int err = ct_gc_run(&d->gc, 0);

			if (err)
				pr_warn("conntrack GC pass failed", "error=\"%s\"", strerror(-err));
			d->gc_next_ms = now_ms + (d->gc.interval_ms ? d->gc.interval_ms : 1000);
		}
		lower(next_ms, d->gc_next_ms);
	}
	snprintf(d->state, sizeof(d->state), "%s",
		 d->ep.failures.count || d->routes.failures.count || d->native_error[0] ||
				 d->attach_error[0]
			 ? "degraded"
			 : "ready");
}
