// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Direct node routes through libnl-3 (see routes.h). Each call opens its own
 * short-lived netlink socket: routes change when Nodes do, which is rare.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>

#include "log.h"
#include "routes.h"
#include "nl_errno.h"

static int open_sock(struct nl_sock **out)
{
	struct nl_sock *sk = nl_socket_alloc();
	int err;

	*out = NULL;
	if (!sk)
		return -ENOMEM;
	err = nl_connect(sk, NETLINK_ROUTE);
	if (err) {
		nl_socket_free(sk);
		return nl_errno(err);
	}
	*out = sk;
	return 0;
}

static bool route_dst_is(struct rtnl_route *route, const struct ipv4_prefix *dst)
{
	struct nl_addr *d = rtnl_route_get_dst(route);

	return rtnl_route_get_family(route) == AF_INET &&
	       rtnl_route_get_table(route) == RT_TABLE_MAIN && d &&
	       nl_addr_get_prefixlen(d) == dst->len && nl_addr_get_len(d) == 4 &&
	       *(__be32 *)nl_addr_get_binary_addr(d) == dst->addr;
}

static bool route_is_ours(struct rtnl_route *route)
{
	return rtnl_route_get_family(route) == AF_INET &&
	       rtnl_route_get_table(route) == RT_TABLE_MAIN &&
	       rtnl_route_get_protocol(route) == RTPROT_AXON;
}

static const char *prefix_str(const struct ipv4_prefix *p, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &p->addr, ip, sizeof(ip));
	snprintf(buf, len, "%s/%u", ip, p->len);
	return buf;
}

int node_route_replace(const struct node_route *r)
{
	struct rtnl_route *route = NULL;
	struct rtnl_nexthop *nh = NULL;
	struct nl_addr *dst = NULL, *gw = NULL;
	struct nl_cache *cache = NULL;
	struct nl_object *obj;
	struct nl_sock *sk;
	char pfx[32];
	int err;

	err = open_sock(&sk);
	if (err)
		return err;
	/* NLM_F_REPLACE would replace any route to the prefix at the same
	 * metric, whoever installed it: refuse when it is not ours. */
	err = rtnl_route_alloc_cache(sk, AF_INET, 0, &cache);
	if (err)
		goto cleanup;
	for (obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_route *cur = (struct rtnl_route *)obj;

		if (route_dst_is(cur, &r->dst) && !route_is_ours(cur) &&
		    rtnl_route_get_priority(cur) == 0) {
			pr_err("route to node pod CIDR exists and is not Axon's; leaving it",
			       "dst=%s protocol=%u", prefix_str(&r->dst, pfx, sizeof(pfx)),
			       rtnl_route_get_protocol(cur));
			err = -NLE_EXIST;
			goto cleanup;
		}
	}
	route = rtnl_route_alloc();
	nh = rtnl_route_nh_alloc();
	dst = nl_addr_build(AF_INET, &r->dst.addr, 4);
	gw = nl_addr_build(AF_INET, &r->via, 4);
	if (!route || !nh || !dst || !gw) {
		err = -NLE_NOMEM;
		goto cleanup;
	}
	nl_addr_set_prefixlen(dst, r->dst.len);
	rtnl_route_set_family(route, AF_INET);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_protocol(route, RTPROT_AXON);
	rtnl_route_set_scope(route, RT_SCOPE_UNIVERSE);
	rtnl_route_set_type(route, RTN_UNICAST);
	err = rtnl_route_set_dst(route, dst);
	if (err)
		goto cleanup;
	rtnl_route_nh_set_ifindex(nh, r->ifindex);
	rtnl_route_nh_set_gateway(nh, gw);
	rtnl_route_add_nexthop(route, nh);
	nh = NULL; /* the route owns it */
	err = rtnl_route_add(sk, route, NLM_F_REPLACE);
cleanup:
	if (err)
		pr_err("cannot install node route", "dst=%s error=\"%s\"",
		       prefix_str(&r->dst, pfx, sizeof(pfx)), nl_geterror(err));
	if (nh)
		rtnl_route_nh_free(nh);
	if (route)
		rtnl_route_put(route);
	nl_addr_put(dst);
	nl_addr_put(gw);
	if (cache)
		nl_cache_free(cache);
	nl_socket_free(sk);
	return err ? nl_errno(err) : 0;
}

int node_route_delete(const struct ipv4_prefix *dst)
{
	struct nl_cache *cache = NULL;
	struct nl_object *obj;
	struct nl_sock *sk;
	int err, found = 0;

	err = open_sock(&sk);
	if (err)
		return err;
	err = rtnl_route_alloc_cache(sk, AF_INET, 0, &cache);
	for (obj = err ? NULL : nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_route *route = (struct rtnl_route *)obj;

		if (!route_is_ours(route) || !route_dst_is(route, dst))
			continue;
		/* The cached object carries our protocol and metric, so the
		 * kernel deletes exactly this route. */
		err = rtnl_route_delete(sk, route, 0);
		if (err)
			break;
		found++;
	}
	if (cache)
		nl_cache_free(cache);
	nl_socket_free(sk);
	if (err)
		return nl_errno(err);
	return found ? 0 : -ENOENT;
}

int node_routes_list(struct node_route *out, int max)
{
	struct nl_cache *cache = NULL;
	struct nl_object *obj;
	struct nl_sock *sk;
	int err, n = 0;

	err = open_sock(&sk);
	if (err)
		return err;
	err = rtnl_route_alloc_cache(sk, AF_INET, 0, &cache);
	for (obj = err ? NULL : nl_cache_get_first(cache); obj && n < max;
	     obj = nl_cache_get_next(obj)) {
		struct rtnl_route *route = (struct rtnl_route *)obj;
		struct nl_addr *d = rtnl_route_get_dst(route), *gw;
		struct rtnl_nexthop *nh;

		if (!route_is_ours(route) || !d || nl_addr_get_len(d) != 4)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		out[n].dst.addr = *(__be32 *)nl_addr_get_binary_addr(d);
		out[n].dst.len = nl_addr_get_prefixlen(d);
		if (rtnl_route_get_nnexthops(route) > 0) {
			nh = rtnl_route_nexthop_n(route, 0);
			out[n].ifindex = rtnl_route_nh_get_ifindex(nh);
			gw = rtnl_route_nh_get_gateway(nh);
			if (gw && nl_addr_get_len(gw) == 4)
				out[n].via = *(__be32 *)nl_addr_get_binary_addr(gw);
		}
		n++;
	}
	if (cache)
		nl_cache_free(cache);
	nl_socket_free(sk);
	return err ? nl_errno(err) : n;
}
