// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Devices through libnl-3 route caches (see netdev.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
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
	struct nl_sock *sk;	/* requests and cache fills */
	struct nl_sock *events; /* subscribed to link/addr/route groups */
	struct nl_cache *links, *addrs, *routes;
	struct htable peer_macs; /* struct peer_key -> __u8[6] */
};

/* A veth's peer as the kernel names it: the same three for the same pair. */
struct peer_key {
	int ifindex, peer_ifindex;
	int32_t nsid;
};

static void caches_free(struct netdev_ctx *ctx)
{
	if (ctx->links)
		nl_cache_free(ctx->links);
	if (ctx->addrs)
		nl_cache_free(ctx->addrs);
	if (ctx->routes)
		nl_cache_free(ctx->routes);
	ctx->links = ctx->addrs = ctx->routes = NULL;
}

int netdev_refresh(struct netdev_ctx *ctx)
{
	struct nl_cache *links = NULL, *addrs = NULL, *routes = NULL;
	int err;

	err = rtnl_link_alloc_cache(ctx->sk, AF_UNSPEC, &links);
	if (!err)
		err = rtnl_addr_alloc_cache(ctx->sk, &addrs);
	if (!err)
		err = rtnl_route_alloc_cache(ctx->sk, AF_INET, 0, &routes);
	if (err) {
		pr_err("cannot read devices from netlink", "error=\"%s\"", nl_geterror(err));
		if (links)
			nl_cache_free(links);
		if (addrs)
			nl_cache_free(addrs);
		return nl_errno(err);
	}
	caches_free(ctx);
	ctx->links = links;
	ctx->addrs = addrs;
	ctx->routes = routes;
	/* Peers of devices that are gone. */
	for (struct ht_entry *e = ht_first(&ctx->peer_macs); e;) {
		struct peer_key k;
		struct rtnl_link *l;

		memcpy(&k, e->key, sizeof(k));
		l = rtnl_link_get(links, k.ifindex);

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

int netdev_open(struct netdev_ctx **out)
{
	struct netdev_ctx *ctx = calloc(1, sizeof(*ctx));
	int err = -ENOMEM;

	if (!ctx)
		return -ENOMEM;
	if (ht_init(&ctx->peer_macs)) {
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
	/* Notifications carry no sequence numbers of ours. */
	nl_socket_disable_seq_check(ctx->events);
	err = nl_connect(ctx->events, NETLINK_ROUTE);
	if (!err)
		err = nl_socket_add_memberships(ctx->events, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
						RTNLGRP_IPV4_ROUTE, 0);
	if (!err)
		err = nl_socket_set_nonblocking(ctx->events);
	if (err)
		goto fail_nl;
	err = netdev_refresh(ctx);
	if (err)
		goto fail;
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
	caches_free(ctx);
	ht_destroy_with(&ctx->peer_macs, free);
	if (ctx->sk)
		nl_socket_free(ctx->sk);
	if (ctx->events)
		nl_socket_free(ctx->events);
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
	struct rtnl_link *link;
	struct nl_object *obj;
	int ifindex = 0;

	for (obj = nl_cache_get_first(ctx->routes); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_route *route = (struct rtnl_route *)obj;

		if (route_is(route, pod_ip, 32) && rtnl_route_get_nnexthops(route) == 1) {
			ifindex = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(route, 0));
			break;
		}
	}
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
	return nl_socket_get_fd(ctx->events);
}

int netdev_process(struct netdev_ctx *ctx, bool *changed)
{
	char buf[8192];
	int fd = nl_socket_get_fd(ctx->events);

	*changed = false;
	/* What changed is read again from the kernel as a whole: cheaper to
	 * reason about than applying each notification, and these are rare. */
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0) {
			*changed = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			*changed = true; /* overrun: we missed some; refresh anyway */
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		break;
	}
	return *changed ? netdev_refresh(ctx) : 0;
}
