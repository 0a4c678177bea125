// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Devices through libnl-3 route caches (see netdev.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include "htable.h"
#include "log.h"
#include "netdev.h"
#include "nl_errno.h"

struct netdev_ctx {
	struct nl_sock *sk;	      /* requests and whole re-reads */
	struct nl_sock *events;	      /* the manager's: link/addr/route notifications */
	struct nl_cache_mngr *mngr;   /* applies each notification to its cache */
	struct nl_cache *links, *addrs, *routes; /* owned by mngr */
	struct htable peer_macs;      /* struct peer_key -> __u8[6] */
	struct htable pod_routes;     /* __be32 -> ifindex: the /32 routes pods are found by */
	struct netdev_changes *changes; /* filled while notifications are applied */
	bool stale_routes;	      /* a device went away or down: its routes silently too */
};

/* A veth's peer as the kernel names it: the same three for the same pair. */
struct peer_key {
	int ifindex, peer_ifindex;
	int32_t nsid;
};

static bool route_is(struct rtnl_route *route, __be32 dst, unsigned int len);

static void *ifindex_value(int ifindex)
{
	return (void *)(intptr_t)ifindex;
}

/* The /32 route of a pod: one nexthop, the host-side device. */
static bool pod_route(struct rtnl_route *r, __be32 *dst, int *ifindex)
{
	struct nl_addr *d = rtnl_route_get_dst(r);

	if (!d || nl_addr_get_prefixlen(d) != 32 || nl_addr_get_len(d) != 4)
		return false;
	*dst = *(__be32 *)nl_addr_get_binary_addr(d);
	if (!route_is(r, *dst, 32) || rtnl_route_get_nnexthops(r) != 1)
		return false;
	*ifindex = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0));
	return *ifindex > 0;
}

static void pod_routes_rebuild(struct netdev_ctx *ctx)
{
	struct nl_object *obj;

	for (struct ht_entry *e = ht_first(&ctx->pod_routes); e;)
		e = ht_del_iter(&ctx->pod_routes, e);
	for (obj = nl_cache_get_first(ctx->routes); obj; obj = nl_cache_get_next(obj)) {
		__be32 dst;
		int ifindex;

		/* The first route to an address wins, as a scan would find it. */
		if (pod_route((struct rtnl_route *)obj, &dst, &ifindex) &&
		    !ht_get(&ctx->pod_routes, &dst, sizeof(dst)))
			ht_put(&ctx->pod_routes, &dst, sizeof(dst), ifindex_value(ifindex), NULL);
	}
}

/* Another route to @dst, if one is left (a second metric, say). */
static void pod_route_reindex(struct netdev_ctx *ctx, __be32 dst)
{
	struct nl_object *obj;

	for (obj = nl_cache_get_first(ctx->routes); obj; obj = nl_cache_get_next(obj)) {
		__be32 d;
		int ifindex;

		if (pod_route((struct rtnl_route *)obj, &d, &ifindex) && d == dst) {
			ht_put(&ctx->pod_routes, &d, sizeof(d), ifindex_value(ifindex), NULL);
			return;
		}
	}
}

static void peer_macs_forget(struct netdev_ctx *ctx, int ifindex)
{
	for (struct ht_entry *e = ht_first(&ctx->peer_macs); e;) {
		struct peer_key k;

		memcpy(&k, e->key, sizeof(k));
		if (k.ifindex != ifindex) {
			e = ht_next(&ctx->peer_macs, e);
			continue;
		}
		free(e->value);
		e = ht_del_iter(&ctx->peer_macs, e);
	}
}

static void note(struct netdev_ctx *ctx, enum netdev_change_kind kind, int ifindex,
		 unsigned int prefixlen, bool gone)
{
	struct netdev_changes *ch = ctx->changes;

	if (!ch)
		return;
	if (ch->n == NETDEV_CHANGES_MAX) {
		ch->all = true;
		return;
	}
	ch->v[ch->n++] = (struct netdev_change){ .kind = kind, .ifindex = ifindex,
						 .prefixlen = prefixlen, .gone = gone };
}

static void link_changed(struct netdev_ctx *ctx, struct nl_object *old, struct nl_object *new,
			 int action)
{
	struct rtnl_link *l = (struct rtnl_link *)(new ? new : old);
	int ifindex = rtnl_link_get_ifindex(l);
	bool gone = action == NL_ACT_DEL;

	/* The kernel drops a device's IPv4 routes without a word when the
	 * device goes away or down: those are read again after this batch. */
	if (gone || (old && new && (rtnl_link_get_flags((struct rtnl_link *)old) & IFF_UP) &&
		     !(rtnl_link_get_flags((struct rtnl_link *)new) & IFF_UP)))
		ctx->stale_routes = true;
	if (gone)
		peer_macs_forget(ctx, ifindex);
	note(ctx, NETDEV_CHANGE_LINK, ifindex, 0, gone);
}

static void route_changed(struct netdev_ctx *ctx, struct nl_object *old, struct nl_object *new,
			  int action)
{
	struct rtnl_route *r = (struct rtnl_route *)(new ? new : old);
	struct nl_addr *d = rtnl_route_get_dst(r);
	int ifindex = 0, have;
	__be32 dst;

	if (rtnl_route_get_family(r) != AF_INET)
		return;
	if (rtnl_route_get_nnexthops(r) > 0)
		ifindex = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0));
	note(ctx, NETDEV_CHANGE_ROUTE, ifindex, d ? nl_addr_get_prefixlen(d) : 0,
	     action == NL_ACT_DEL);
	if (old && pod_route((struct rtnl_route *)old, &dst, &have)) {
		void *v = ht_get(&ctx->pod_routes, &dst, sizeof(dst));

		if (v == ifindex_value(have))
			ht_del(&ctx->pod_routes, &dst, sizeof(dst));
	}
	if (new && pod_route((struct rtnl_route *)new, &dst, &have))
		ht_put(&ctx->pod_routes, &dst, sizeof(dst), ifindex_value(have), NULL);
	else if (old && pod_route((struct rtnl_route *)old, &dst, &have) &&
		 !ht_get(&ctx->pod_routes, &dst, sizeof(dst)))
		pod_route_reindex(ctx, dst);
}

static void addr_changed(struct netdev_ctx *ctx, struct nl_object *obj, int action)
{
	note(ctx, NETDEV_CHANGE_ADDR, rtnl_addr_get_ifindex((struct rtnl_addr *)obj), 0,
	     action == NL_ACT_DEL);
}

/* libnl's v2 change callback: @old is the object before (NULL when new),
 * @new after (NULL when deleted). */
static void changed(struct nl_cache *cache, struct nl_object *old, struct nl_object *new,
		    uint64_t diff, int action, void *arg)
{
	struct netdev_ctx *ctx = arg;

	(void)diff;
	if (cache == ctx->links && new &&
	    rtnl_link_get_family((struct rtnl_link *)new) != AF_UNSPEC) {
		/* A per-family link message (IPv6's, say): a dump never holds
		 * these and no RTM_DELLINK ever removes them, so one would
		 * outlive its device under the device's name. */
		nl_cache_remove(new);
		return;
	}
	if (cache == ctx->links)
		link_changed(ctx, old, new, action);
	else if (cache == ctx->routes)
		route_changed(ctx, old, new, action);
	else if (cache == ctx->addrs)
		addr_changed(ctx, new ? new : old, action);
}

int netdev_refresh(struct netdev_ctx *ctx)
{
	int err;

	err = nl_cache_refill(ctx->sk, ctx->links);
	if (err >= 0)
		err = nl_cache_refill(ctx->sk, ctx->addrs);
	if (err >= 0)
		err = nl_cache_refill(ctx->sk, ctx->routes);
	if (err < 0) {
		pr_err("cannot read devices from netlink", "error=\"%s\"", nl_geterror(err));
		return nl_errno(err);
	}
	ctx->stale_routes = false;
	pod_routes_rebuild(ctx);
	/* Peers of devices that are gone. */
	for (struct ht_entry *e = ht_first(&ctx->peer_macs); e;) {
		struct peer_key k;
		struct rtnl_link *l;

		memcpy(&k, e->key, sizeof(k));
		l = rtnl_link_get(ctx->links, k.ifindex);

		if (l) {
			rtnl_link_put(l);
			e = ht_next(&ctx->peer_macs, e);
			continue;
		}
		free(e->value);
		e = ht_del_iter(&ctx->peer_macs, e);
	}
	return 0;
}

static int cache_add(struct netdev_ctx *ctx, const char *kind, int family, struct nl_cache **out)
{
	struct nl_cache *c;
	int err = nl_cache_alloc_name(kind, &c);

	if (err)
		return err;
	if (family)
		nl_cache_set_arg1(c, family);
	err = nl_cache_mngr_add_cache_v2(ctx->mngr, c, changed, ctx);
	if (err) {
		nl_cache_free(c);
		return err;
	}
	*out = c;
	return 0;
}

/* A burst of pods is a few notifications each: room for hundreds at once. */
#define NETDEV_EVENTS_RCVBUF (4 << 20)

int netdev_open(struct netdev_ctx **out)
{
	struct netdev_ctx *ctx = calloc(1, sizeof(*ctx));
	int err = -ENOMEM;

	if (!ctx)
		return -ENOMEM;
	if (ht_init(&ctx->peer_macs) || ht_init(&ctx->pod_routes)) {
		ht_destroy(&ctx->peer_macs);
		free(ctx);
		return -ENOMEM;
	}
	ctx->sk = nl_socket_alloc();
	ctx->events = nl_socket_alloc();
	if (!ctx->sk || !ctx->events)
		goto fail;
	err = nl_connect(ctx->sk, NETLINK_ROUTE);
	if (err)
		goto fail_nl;
	/* The manager connects the socket, subscribes each cache's groups
	 * before filling it (nothing falls between the dump and the first
	 * notification) and owns the caches from then on. */
	err = nl_cache_mngr_alloc(ctx->events, NETLINK_ROUTE, 0, &ctx->mngr);
	if (err)
		goto fail_nl;
	nl_socket_set_buffer_size(ctx->events, NETDEV_EVENTS_RCVBUF, 0);
	err = cache_add(ctx, "route/link", 0, &ctx->links);
	if (!err)
		err = cache_add(ctx, "route/addr", 0, &ctx->addrs);
	if (!err)
		err = cache_add(ctx, "route/route", AF_INET, &ctx->routes);
	if (err)
		goto fail_nl;
	pod_routes_rebuild(ctx);
	*out = ctx;
	return 0;
fail_nl:
	pr_err("cannot open netlink socket", "error=\"%s\"", nl_geterror(err));
	err = nl_errno(err);
fail:
	netdev_close(ctx);
	return err;
}

void netdev_close(struct netdev_ctx *ctx)
{
	if (!ctx)
		return;
	ht_destroy_with(&ctx->peer_macs, free);
	ht_destroy(&ctx->pod_routes);
	/* The manager frees its caches and closes, not frees, our socket. */
	if (ctx->mngr)
		nl_cache_mngr_free(ctx->mngr);
	if (ctx->events)
		nl_socket_free(ctx->events);
	if (ctx->sk)
		nl_socket_free(ctx->sk);
	free(ctx);
}

/* The first IPv4 address of @ifindex, 0 if none. */
static __be32 first_ipv4(struct netdev_ctx *ctx, int ifindex)
{
	struct nl_object *obj;

	for (obj = nl_cache_get_first(ctx->addrs); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_addr *addr = (struct rtnl_addr *)obj;
		struct nl_addr *local = rtnl_addr_get_local(addr);

		if (rtnl_addr_get_ifindex(addr) != ifindex ||
		    rtnl_addr_get_family(addr) != AF_INET || !local || nl_addr_get_len(local) != 4)
			continue;
		return *(__be32 *)nl_addr_get_binary_addr(local);
	}
	return 0;
}

static void fill(struct netdev_ctx *ctx, struct rtnl_link *link, struct netdev *out)
{
	struct nl_addr *mac = rtnl_link_get_addr(link);

	memset(out, 0, sizeof(*out));
	out->ifindex = rtnl_link_get_ifindex(link);
	snprintf(out->name, sizeof(out->name), "%s", rtnl_link_get_name(link));
	if (mac && nl_addr_get_len(mac) == 6)
		memcpy(out->mac, nl_addr_get_binary_addr(mac), 6);
	out->ipv4 = first_ipv4(ctx, out->ifindex);
	out->mtu = rtnl_link_get_mtu(link);
}

int netdev_by_name(struct netdev_ctx *ctx, const char *name, struct netdev *out)
{
	struct rtnl_link *link = rtnl_link_get_by_name(ctx->links, name);

	if (!link)
		return -ENODEV;
	fill(ctx, link, out);
	rtnl_link_put(link);
	return 0;
}

int netdev_by_index(struct netdev_ctx *ctx, int ifindex, struct netdev *out)
{
	struct rtnl_link *link = rtnl_link_get(ctx->links, ifindex);

	if (!link)
		return -ENODEV;
	fill(ctx, link, out);
	rtnl_link_put(link);
	return 0;
}

/* Is @route an IPv4 main-table unicast route to exactly @dst/@len? */
static bool route_is(struct rtnl_route *route, __be32 dst, unsigned int len)
{
	struct nl_addr *d = rtnl_route_get_dst(route);

	if (rtnl_route_get_family(route) != AF_INET ||
	    rtnl_route_get_table(route) != RT_TABLE_MAIN ||
	    rtnl_route_get_type(route) != RTN_UNICAST || !d || nl_addr_get_prefixlen(d) != len)
		return false;
	if (len == 0)
		return true;
	return nl_addr_get_len(d) == 4 && *(__be32 *)nl_addr_get_binary_addr(d) == dst;
}

static int add_unique(struct netdev_ctx *ctx, int ifindex, struct netdev *out, int n, int max)
{
	for (int i = 0; i < n; i++) {
		if (out[i].ifindex == ifindex)
			return n;
	}
	if (n == max || netdev_by_index(ctx, ifindex, &out[n]))
		return n;
	return n + 1;
}

int netdev_native(struct netdev_ctx *ctx, const char *devices, struct netdev *out, int max)
{
	struct nl_object *obj;
	__u32 best_prio = UINT32_MAX;
	struct rtnl_route *best = NULL;
	int n = 0;

	if (devices && *devices) {
		char *list = strdup(devices), *save = NULL, *name;

		if (!list)
			return -ENOMEM;
		for (name = strtok_r(list, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
			if (n == max)
				break;
			if (netdev_by_name(ctx, name, &out[n])) {
				pr_err("native device not found", "device=%s", name);
				free(list);
				return -ENODEV;
			}
			n++;
		}
		free(list);
		return n;
	}
	/* The default route with the lowest metric; every device of its
	 * nexthops (a multipath default spreads over several). */
	for (obj = nl_cache_get_first(ctx->routes); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_route *route = (struct rtnl_route *)obj;

		if (route_is(route, 0, 0) && rtnl_route_get_priority(route) < best_prio) {
			best = route;
			best_prio = rtnl_route_get_priority(route);
		}
	}
	if (!best) {
		pr_err("no IPv4 default route to find the native device by", "hint=%s",
		       "--devices");
		return -ENOENT;
	}
	for (int i = 0; i < rtnl_route_get_nnexthops(best); i++)
		n = add_unique(ctx, rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(best, i)), out,
			       n, max);
	return n ? n : -ENODEV;
}

struct peer_mac_req {
	__u8 *mac;
	bool found;
};

static int peer_mac_parse(struct nl_msg *msg, void *arg)
{
	struct peer_mac_req *req = arg;
	struct nlattr *tb[IFLA_MAX + 1];

	if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL))
		return NL_SKIP;
	if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == 6) {
		memcpy(req->mac, nla_data(tb[IFLA_ADDRESS]), 6);
		req->found = true;
	}
	return NL_OK;
}

/* The MAC of the veth peer of @link, which lives in another namespace: the
 * kernel reports the peer's index (IFLA_LINK) and that namespace's id as seen
 * from ours (IFLA_LINK_NETNSID), and RTM_GETLINK with IFLA_TARGET_NETNSID
 * reads a link over there without entering it. */
static int peer_mac(struct rtnl_link *link, __u8 mac[6])
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct peer_mac_req req = {.mac = mac};
	struct nl_sock *sk = NULL;
	struct nl_msg *msg = NULL;
	struct nl_cb *cb = NULL;
	int32_t nsid;
	int err;

	ifi.ifi_index = rtnl_link_get_link(link);
	if (!ifi.ifi_index || rtnl_link_get_link_netnsid(link, &nsid) || nsid < 0)
		return -ENOENT;
	/* A socket of its own: nothing of this exchange can be left over for
	 * the next cache fill to trip on. */
	sk = nl_socket_alloc();
	msg = nlmsg_alloc_simple(RTM_GETLINK, 0);
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!sk || !msg || !cb) {
		err = -NLE_NOMEM;
		goto cleanup;
	}
	err = nl_connect(sk, NETLINK_ROUTE);
	if (!err)
		err = nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
	if (!err)
		err = nla_put_s32(msg, IFLA_TARGET_NETNSID, nsid);
	if (!err)
		err = nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, peer_mac_parse, &req);
	if (!err)
		err = nl_send_auto(sk, msg);
	if (err >= 0)
		err = nl_recvmsgs(sk, cb);
cleanup:
	nlmsg_free(msg);
	nl_cb_put(cb);
	if (sk)
		nl_socket_free(sk);
	if (err < 0)
		return nl_errno(err);
	return req.found ? 0 : -ENOENT;
}

/*
 * peer_mac(), asked once per pair: every endpoints pass looks up every pod's
 * device, and a netlink exchange per pod per pass made each new pod cost
 * more than the last. A pod's MAC is learned when its device is first seen
 * (as the CNI result reports it); the entry goes with the device.
 */
static int peer_mac_cached(struct netdev_ctx *ctx, struct rtnl_link *link, __u8 mac[6])
{
	struct peer_key k = { .ifindex = rtnl_link_get_ifindex(link),
			      .peer_ifindex = rtnl_link_get_link(link) };
	__u8 *have, *copy;
	int err;

	if (rtnl_link_get_link_netnsid(link, &k.nsid))
		k.nsid = -1;
	have = ht_get(&ctx->peer_macs, &k, sizeof(k));
	if (have) {
		memcpy(mac, have, 6);
		return 0;
	}
	err = peer_mac(link, mac);
	if (err)
		return err;
	copy = malloc(6);
	if (copy) {
		memcpy(copy, mac, 6);
		if (ht_put(&ctx->peer_macs, &k, sizeof(k), copy, NULL))
			free(copy);
	}
	return 0;
}

int netdev_pod_device(struct netdev_ctx *ctx, __be32 pod_ip, struct netdev *host_dev,
		      __u8 pod_mac[6])
{
	int ifindex = (int)(intptr_t)ht_get(&ctx->pod_routes, &pod_ip, sizeof(pod_ip));
	struct rtnl_link *link;

	if (pod_mac)
		memset(pod_mac, 0, 6);
	if (!ifindex)
		return -ENOENT;
	link = rtnl_link_get(ctx->links, ifindex);
	if (!link)
		return -ENODEV;
	fill(ctx, link, host_dev);
	if (pod_mac && peer_mac_cached(ctx, link, pod_mac)) {
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &pod_ip, ip, sizeof(ip));
		pr_debug("pod MAC not learned from the veth peer", "pod=%s dev=%s", ip,
			 host_dev->name);
	}
	rtnl_link_put(link);
	return 0;
}

int netdev_fd(struct netdev_ctx *ctx)
{
	return nl_cache_mngr_get_fd(ctx->mngr);
}

int netdev_process(struct netdev_ctx *ctx, struct netdev_changes *ch)
{
	int ret;

	memset(ch, 0, sizeof(*ch));
	ctx->changes = ch;
	/* Each notification is applied to its cache as it is read: a pod's
	 * device costs its own few messages, not a dump of every device. */
	ret = nl_cache_mngr_data_ready(ctx->mngr);
	ctx->changes = NULL;
	if (ret == -NLE_NOMEM || ret == -NLE_DUMP_INTR) {
		/* The socket overran (ENOBUFS): some changes are lost, so
		 * everything is read again and counts as changed. */
		ch->all = true;
		return netdev_refresh(ctx);
	}
	if (ret < 0)
		return nl_errno(ret);
	if (ctx->stale_routes) {
		ret = nl_cache_refill(ctx->sk, ctx->routes);
		if (ret < 0)
			return nl_errno(ret);
		ctx->stale_routes = false;
		pod_routes_rebuild(ctx);
	}
	return 0;
}
