/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A pod's network, as the datapath expects it (the shape of
 * tests/e2e/netlab.py's pods and of the CNI ptp plugin):
 *
 *   node  <host_if> (veth, up, proxy ARP) + route <ip>/32 dev <host_if>
 *   pod   <ifname> (its peer, up) with <ip>/32, a route to the gateway
 *         169.254.1.1 scope link, and the default route via it
 *
 * The gateway is no address of the node's: the host side answers the pod's
 * ARP for it by proxy ARP (it has a route to it elsewhere, or owns it), and
 * from_container routes everything the pod sends. Both ends get the MTU
 * given (the native device's). Operations run in the calling thread's
 * namespace for the node side and through a netlink socket opened inside
 * the pod's namespace for the pod side; the thread returns to its own
 * namespace before each returns.
 */
#ifndef AXON_CNI_VETH_H
#define AXON_CNI_VETH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include <linux/types.h>

#define CNI_GATEWAY "169.254.1.1"

struct veth_spec {
	const char *netns;		/* path of the pod's network namespace */
	const char *ifname;		/* the pod's interface */
	const char *host_if;		/* the node's end */
	__be32 ip;
	unsigned int mtu;		/* 0: the kernel's default */
};

/* veth_create's steps, timed for the ADD's log line. */
enum veth_step {
	VETH_STEP_SOCKETS,	/* netlink sockets, the pod's opened inside its namespace */
	VETH_STEP_CREATE,	/* the veth pair, its peer made in the pod's namespace */
	VETH_STEP_HOST,		/* host end up, proxy ARP */
	VETH_STEP_POD,		/* pod end up, address, gateway and default routes */
	VETH_STEP_ROUTE,	/* the node's route to the pod */
	VETH_STEP_MAX
};

struct veth_info {
	uint64_t step_ns[VETH_STEP_MAX];
	int host_ifindex;
	__u8 host_mac[6];
	int pod_ifindex;
	__u8 pod_mac[6];
};

/* Build it (replacing a host_if left by an earlier attempt). On failure
 * nothing is left behind; err says which step failed. -errno. */
int veth_create(const struct veth_spec *s, struct veth_info *out, char *err, size_t errlen);
/* Delete host_if (its peer and routes go with it). 0 also when it is gone. */
int veth_delete(const char *host_if);
/* Whether everything above is in place; err names what is not. */
int veth_check(const struct veth_spec *s, char *err, size_t errlen);
/* Whether host_if exists in this namespace. */
bool veth_exists(const char *host_if);

#endif /* AXON_CNI_VETH_H */
