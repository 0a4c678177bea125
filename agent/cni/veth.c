// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include "datapath/nl_errno.h"
#include "veth.h"

/* libnl's result as 0 or -errno (nl_errno() takes errors only). */
static int nlerr(int ret)
{
	return ret < 0 ? nl_errno(ret) : 0;
}

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;
	size_t off;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	off = strlen(err);
	if (ret && off < errlen)
		snprintf(err + off, errlen - off, ": %s", strerror(-ret));
	return ret ? ret : -EINVAL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The time since *t into out->step_ns[step]; *t moves on to now. */
static void step_done(struct veth_info *out, enum veth_step step, uint64_t *t)
{
	uint64_t now = now_ns();

	out->step_ns[step] = now - *t;
	*t = now;
}

static struct nl_sock *sock_here(void)
{
	struct nl_sock *sk = nl_socket_alloc();

	if (sk && nl_connect(sk, NETLINK_ROUTE)) {
		nl_socket_free(sk);
		sk = NULL;
	}
	return sk;
}

/* A netlink socket bound to the namespace at path: opened there, used from
 * here (a socket keeps the namespace it was created in). */
static int sock_in(const char *path, struct nl_sock **out)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int ns = open(path, O_RDONLY | O_CLOEXEC);
	int err = 0;

	*out = NULL;
	if (self < 0 || ns < 0) {
		err = -errno;
		goto out;
	}
	if (setns(ns, CLONE_NEWNET)) {
		err = -errno;
		goto out;
	}
	*out = sock_here();
	if (setns(self, CLONE_NEWNET))
		err = -errno;	/* cannot happen short of a kernel bug */
	if (!*out && !err)
		err = -ENOMEM;
out:
	if (ns >= 0)
		close(ns);
	if (self >= 0)
		close(self);
	return err;
}

static int link_get(struct nl_sock *sk, const char *name, struct rtnl_link **l)
{
	return nlerr(rtnl_link_get_kernel(sk, 0, name, l));
}

static int link_up(struct nl_sock *sk, struct rtnl_link *l)
{
	struct rtnl_link *chg = rtnl_link_alloc();
	int err;

	if (!chg)
		return -ENOMEM;
	rtnl_link_set_flags(chg, IFF_UP);
	err = nlerr(rtnl_link_change(sk, l, chg, 0));
	rtnl_link_put(chg);
	return err;
}

static struct nl_addr *addr4(__be32 ip, int len)
{
	struct nl_addr *a = nl_addr_build(AF_INET, &ip, sizeof(ip));

	if (a)
		nl_addr_set_prefixlen(a, len);
	return a;
}

/* dst/len dev ifindex [via gw]; scope link without a gateway. */
static int route_add(struct nl_sock *sk, __be32 dst, int len, int ifindex, __be32 gw)
{
	struct rtnl_route *r = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *d = addr4(dst, len), *g = gw ? addr4(gw, 32) : NULL;
	int err = -ENOMEM;

	if (!r || !nh || !d || (gw && !g))
		goto out;
	rtnl_route_set_family(r, AF_INET);
	rtnl_route_set_table(r, RT_TABLE_MAIN);
	rtnl_route_set_scope(r, gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
	rtnl_route_set_dst(r, d);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	if (g)
		rtnl_route_nh_set_gateway(nh, g);
	rtnl_route_add_nexthop(r, nh);
	nh = NULL;
	err = nlerr(rtnl_route_add(sk, r, NLM_F_CREATE | NLM_F_REPLACE));
out:
	if (nh)
		rtnl_route_nh_free(nh);
	if (r)
		rtnl_route_put(r);
	nl_addr_put(d);
	nl_addr_put(g);
	return err;
}

static int addr_add(struct nl_sock *sk, int ifindex, __be32 ip)
{
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local = addr4(ip, 32);
	int err = -ENOMEM;

	if (a && local) {
		rtnl_addr_set_ifindex(a, ifindex);
		rtnl_addr_set_local(a, local);
		err = nlerr(rtnl_addr_add(sk, a, 0));
		if (err == -EEXIST)
			err = 0;
	}
	nl_addr_put(local);
	if (a)
		rtnl_addr_put(a);
	return err;
}

/* Proxy ARP answers the pod's ARP for the gateway at once (no proxy_delay). */
static int sysctl_dev(const char *fmt, const char *dev, const char *val)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), fmt, dev);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static void mac_of(struct rtnl_link *l, __u8 mac[6])
{
	struct nl_addr *a = rtnl_link_get_addr(l);

	memset(mac, 0, 6);
	if (a && nl_addr_get_len(a) == 6)
		memcpy(mac, nl_addr_get_binary_addr(a), 6);
}

static int veth_add(struct nl_sock *host, const struct veth_spec *s, int ns_fd)
{
	struct rtnl_link *l = rtnl_link_veth_alloc(), *peer;
	int err;

	if (!l)
		return -ENOMEM;
	peer = rtnl_link_veth_get_peer(l);
	rtnl_link_set_name(l, s->host_if);
	rtnl_link_set_name(peer, s->ifname);
	if (s->mtu) {
		rtnl_link_set_mtu(l, s->mtu);
		rtnl_link_set_mtu(peer, s->mtu);
	}
	rtnl_link_set_ns_fd(peer, ns_fd);
	err = nlerr(rtnl_link_add(host, l, NLM_F_CREATE | NLM_F_EXCL));
	rtnl_link_put(peer);
	rtnl_link_veth_release(l);
	return err;
}

static int pod_side(struct nl_sock *pod, const struct veth_spec *s, struct veth_info *out,
		    char *err, size_t errlen)
{
	struct rtnl_link *l = NULL;
	struct in_addr gw;
	int ret;

	inet_pton(AF_INET, CNI_GATEWAY, &gw);
	ret = link_get(pod, s->ifname, &l);
	if (ret)
		return fail(err, errlen, ret, "pod interface %s", s->ifname);
	out->pod_ifindex = rtnl_link_get_ifindex(l);
	mac_of(l, out->pod_mac);
	ret = link_up(pod, l);
	rtnl_link_put(l);
	if (ret)
		return fail(err, errlen, ret, "setting %s up in the pod", s->ifname);
	ret = addr_add(pod, out->pod_ifindex, s->ip);
	if (ret)
		return fail(err, errlen, ret, "adding the pod's address");
	ret = route_add(pod, gw.s_addr, 32, out->pod_ifindex, 0);
	if (ret)
		return fail(err, errlen, ret, "adding the route to the gateway in the pod");
	ret = route_add(pod, 0, 0, out->pod_ifindex, gw.s_addr);
	if (ret)
		return fail(err, errlen, ret, "adding the default route in the pod");
	return 0;
}

int veth_create(const struct veth_spec *s, struct veth_info *out, char *err, size_t errlen)
{
	struct nl_sock *host = NULL, *pod = NULL;
	struct rtnl_link *l = NULL;
	uint64_t t = now_ns();
	int ns_fd = -1, ret;

	memset(out, 0, sizeof(*out));
	ns_fd = open(s->netns, O_RDONLY | O_CLOEXEC);
	if (ns_fd < 0) {
		ret = fail(err, errlen, -errno, "network namespace %s", s->netns);
		goto out;
	}
	host = sock_here();
	ret = host ? sock_in(s->netns, &pod) : -ENOMEM;
	if (ret) {
		fail(err, errlen, ret, "netlink");
		goto out;
	}
	step_done(out, VETH_STEP_SOCKETS, &t);
	/* An earlier attempt's device: its peer may hold the pod's name (a
	 * pair goes as one, so no host end means no peer either). */
	if (veth_exists(s->host_if))
		veth_delete(s->host_if);
	ret = veth_add(host, s, ns_fd);
	if (ret) {
		fail(err, errlen, ret, "creating veth %s/%s", s->host_if, s->ifname);
		goto out;
	}
	step_done(out, VETH_STEP_CREATE, &t);
	ret = link_get(host, s->host_if, &l);
	if (ret) {
		fail(err, errlen, ret, "host device %s", s->host_if);
		goto undo;
	}
	out->host_ifindex = rtnl_link_get_ifindex(l);
	mac_of(l, out->host_mac);
	ret = link_up(host, l);
	if (!ret)
		ret = sysctl_dev("/proc/sys/net/ipv4/conf/%s/proxy_arp", s->host_if, "1");
	if (!ret)
		ret = sysctl_dev("/proc/sys/net/ipv4/neigh/%s/proxy_delay", s->host_if, "0");
	if (ret) {
		fail(err, errlen, ret, "setting up host device %s", s->host_if);
		goto undo;
	}
	step_done(out, VETH_STEP_HOST, &t);
	ret = pod_side(pod, s, out, err, errlen);
	if (ret)
		goto undo;
	step_done(out, VETH_STEP_POD, &t);
	/* Last: the route is what the endpoints reconciler finds the pod by. */
	ret = route_add(host, s->ip, 32, out->host_ifindex, 0);
	if (ret) {
		fail(err, errlen, ret, "adding the route to the pod");
		goto undo;
	}
	step_done(out, VETH_STEP_ROUTE, &t);
	goto out;
undo:
	veth_delete(s->host_if);
out:
	if (l)
		rtnl_link_put(l);
	if (pod)
		nl_socket_free(pod);
	if (host)
		nl_socket_free(host);
	if (ns_fd >= 0)
		close(ns_fd);
	return ret;
}

int veth_delete(const char *host_if)
{
	struct nl_sock *sk = sock_here();
	struct rtnl_link *l;
	int err;

	if (!sk)
		return -ENOMEM;
	l = rtnl_link_alloc();
	if (!l) {
		nl_socket_free(sk);
		return -ENOMEM;
	}
	rtnl_link_set_name(l, host_if);
	err = nlerr(rtnl_link_delete(sk, l));
	rtnl_link_put(l);
	nl_socket_free(sk);
	return err == -ENODEV || err == -ENOENT ? 0 : err;
}

bool veth_exists(const char *host_if)
{
	return if_nametoindex(host_if) != 0;
}

/* ---- CHECK ---- */

struct route_find {
	__be32 dst;
	int len, ifindex;
	bool found;
};

static void route_match(struct nl_object *obj, void *arg)
{
	struct rtnl_route *r = (struct rtnl_route *)obj;
	struct route_find *f = arg;
	struct nl_addr *d = rtnl_route_get_dst(r);
	__be32 dst = 0;

	if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_nnexthops(r) != 1)
		return;
	if (d && nl_addr_get_len(d) == 4)
		memcpy(&dst, nl_addr_get_binary_addr(d), 4);
	if ((int)nl_addr_get_prefixlen(d) == f->len && dst == f->dst &&
	    rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0)) == f->ifindex)
		f->found = true;
}

static bool route_present(struct nl_sock *sk, __be32 dst, int len, int ifindex)
{
	struct route_find f = { .dst = dst, .len = len, .ifindex = ifindex };
	struct nl_cache *c;

	if (rtnl_route_alloc_cache(sk, AF_INET, 0, &c))
		return false;
	nl_cache_foreach(c, route_match, &f);
	nl_cache_free(c);
	return f.found;
}

struct addr_find {
	__be32 ip;
	int ifindex;
	bool found;
};

static void addr_match(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct nl_addr *local = rtnl_addr_get_local(a);
	struct addr_find *f = arg;

	if (rtnl_addr_get_ifindex(a) == f->ifindex && local && nl_addr_get_len(local) == 4 &&
	    !memcmp(nl_addr_get_binary_addr(local), &f->ip, 4) &&
	    nl_addr_get_prefixlen(local) == 32)
		f->found = true;
}

static bool addr_present(struct nl_sock *sk, int ifindex, __be32 ip)
{
	struct addr_find f = { .ip = ip, .ifindex = ifindex };
	struct nl_cache *c;

	if (rtnl_addr_alloc_cache(sk, &c))
		return false;
	nl_cache_foreach(c, addr_match, &f);
	nl_cache_free(c);
	return f.found;
}

int veth_check(const struct veth_spec *s, char *err, size_t errlen)
{
	struct nl_sock *host = sock_here(), *pod = NULL;
	struct rtnl_link *hl = NULL, *pl = NULL;
	char ip[INET_ADDRSTRLEN];
	int ret;

	inet_ntop(AF_INET, &s->ip, ip, sizeof(ip));
	ret = host ? sock_in(s->netns, &pod) : -ENOMEM;
	if (ret) {
		fail(err, errlen, ret, "network namespace %s", s->netns);
		goto out;
	}
	ret = link_get(host, s->host_if, &hl);
	if (ret) {
		fail(err, errlen, ret, "host device %s", s->host_if);
		goto out;
	}
	ret = link_get(pod, s->ifname, &pl);
	if (ret) {
		fail(err, errlen, ret, "interface %s in the pod", s->ifname);
		goto out;
	}
	ret = -ENOENT;
	if (!(rtnl_link_get_flags(hl) & IFF_UP) || !(rtnl_link_get_flags(pl) & IFF_UP))
		fail(err, errlen, 0, "%s or %s is down", s->host_if, s->ifname);
	else if (!addr_present(pod, rtnl_link_get_ifindex(pl), s->ip))
		fail(err, errlen, 0, "interface %s in the pod lacks %s/32", s->ifname, ip);
	else if (!route_present(pod, 0, 0, rtnl_link_get_ifindex(pl)))
		fail(err, errlen, 0, "the pod has no default route via %s", s->ifname);
	else if (!route_present(host, s->ip, 32, rtnl_link_get_ifindex(hl)))
		fail(err, errlen, 0, "the node has no route %s/32 dev %s", ip, s->host_if);
	else
		ret = 0;
out:
	if (hl)
		rtnl_link_put(hl);
	if (pl)
		rtnl_link_put(pl);
	if (pod)
		nl_socket_free(pod);
	if (host)
		nl_socket_free(host);
	return ret;
}
