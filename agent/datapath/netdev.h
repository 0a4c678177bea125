/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The node's network devices, as libnl-3 sees them in the agent's network
 * namespace.
 *
 * Native devices (where from_netdev/to_netdev attach) come from --devices or,
 * when none are given, from the device of the IPv4 default route. A pod's
 * host-side device is found by the route to its address: the CNI installs
 * one /32 route per pod via that device.
 *
 * The caches are filled once and then kept current by libnl's cache manager:
 * netdev_fd() is its netlink socket, subscribed to link, address and route
 * changes, readable when something changed (the main loop polls it and calls
 * netdev_process(), which applies each notification to its cache and says
 * what changed). A new pod therefore costs its own few notifications, not a
 * dump of every device and route on the node. netdev_refresh() reads all
 * again (after an overrun). Every call returns 0 or a negative errno.
 */
#ifndef AXON_NETDEV_H
#define AXON_NETDEV_H

#include <stdbool.h>
#include <net/if.h>
#include <linux/types.h>

#define NETDEV_MAX_NATIVE 8

struct netdev {
	int ifindex;
	char name[IFNAMSIZ];
	__u8 mac[6];
	__be32 ipv4;			/* first IPv4 address, 0 if none */
	unsigned int mtu;
};

struct netdev_ctx;

int netdev_open(struct netdev_ctx **ctx);
void netdev_close(struct netdev_ctx *ctx);
/* Re-read links, addresses and routes from the kernel. */
int netdev_refresh(struct netdev_ctx *ctx);

/* Native devices: the comma-separated names in @devices, or the default
 * route's device when @devices is NULL or "". Fills up to @max; returns the
 * count, -ENODEV naming the missing device in the log when one does not
 * exist, -ENOENT when there is no default route to go by. */
int netdev_native(struct netdev_ctx *ctx, const char *devices, struct netdev *out, int max);

/* The host-side device of the pod at @pod_ip (the /32 route's device), and
 * the pod's MAC when it can be learned (the veth peer's address, through
 * IFLA_LINK_NETNSID; zeroes otherwise). -ENOENT when there is no such route. */
int netdev_pod_device(struct netdev_ctx *ctx, __be32 pod_ip, struct netdev *host_dev,
		      __u8 pod_mac[6]);

/* By name or index (from the cache). -ENODEV when absent. */
int netdev_by_name(struct netdev_ctx *ctx, const char *name, struct netdev *out);
int netdev_by_index(struct netdev_ctx *ctx, int ifindex, struct netdev *out);

enum netdev_change_kind {
	NETDEV_CHANGE_LINK,
	NETDEV_CHANGE_ADDR,
	NETDEV_CHANGE_ROUTE,	/* IPv4 */
};

struct netdev_change {
	enum netdev_change_kind kind;
	int ifindex;		/* the link, the address's, the route's first nexthop's */
	unsigned int prefixlen;	/* routes: of the destination */
	bool gone;		/* deleted */
};

#define NETDEV_CHANGES_MAX 256

/* What one netdev_process() applied. @all: more than fit, or everything read
 * again after an overrun: every device may have changed. */
struct netdev_changes {
	bool all;
	unsigned int n;
	struct netdev_change v[NETDEV_CHANGES_MAX];
};

/* Change notifications: a pollable fd; netdev_process() drains it into the
 * caches and fills *ch (n == 0 and !all: nothing changed). */
int netdev_fd(struct netdev_ctx *ctx);
int netdev_process(struct netdev_ctx *ctx, struct netdev_changes *ch);

#endif /* AXON_NETDEV_H */
