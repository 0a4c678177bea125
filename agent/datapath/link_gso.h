/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A link's packet aggregation limits over rtnetlink (libnl-3's message API:
 * libnl 3.7 has no getter or setter for the IPv4 ones): the IPv4 GSO and GRO
 * maximum sizes (kernel 6.3+), the driver's TSO maximum, and for a veth the
 * peer (index and namespace id). Used by BIG TCP (bigtcp.h).
 *
 * Namespaces: reading works across them (RTM_GETLINK takes
 * IFLA_TARGET_NETNSID), changing does not (RTM_NEWLINK and RTM_SETLINK look
 * the index up in the sender's own namespace and ignore IFLA_TARGET_NETNSID
 * for that: measured on 6.18, the request is acknowledged and nothing
 * changes, or it fails with ENODEV). So a change in a pod's namespace goes
 * through a socket opened inside it: link_gso_netns_open() finds the
 * namespace with a given id among /var/run/netns/ (where ip-netns, containerd
 * and CRI-O pin pod namespaces) and /proc/<pid>/ns/net, and a short-lived
 * thread enters it to create the socket; the caller's threads never change
 * namespace.
 *
 * Every call returns 0 or a negative errno (the kernel's own for a refused
 * change, with its extended-ack text in @why when it gave one).
 */
#ifndef AXON_LINK_GSO_H
#define AXON_LINK_GSO_H

#include <stdbool.h>
#include <stddef.h>
#include <net/if.h>
#include <linux/types.h>

/* linux/if_link.h of kernel 6.3 (Debian 12's headers predate them); checked
 * against /sys/kernel/btf/vmlinux. Own names: newer headers define the
 * originals as enumerators. */
#define AXON_IFLA_TSO_MAX_SIZE	    59
#define AXON_IFLA_GSO_IPV4_MAX_SIZE 63
#define AXON_IFLA_GRO_IPV4_MAX_SIZE 64
#define AXON_IFLA_MAX		    64

struct nl_sock;

struct link_gso {
	int ifindex;
	char name[IFNAMSIZ];
	__u32 gso_ipv4_max; /* 0: not reported (kernel < 6.3) */
	__u32 gro_ipv4_max;
	__u32 tso_max;	  /* 0: not reported */
	bool veth;	  /* IFLA_INFO_KIND "veth": peer_* name its other end */
	int peer_ifindex; /* IFLA_LINK: a veth's peer, a VLAN's lower device; 0 none */
	int peer_netnsid; /* IFLA_LINK_NETNSID; -1 when that is in this namespace */
};

/* An rtnetlink socket in the caller's namespace. */
int link_gso_open(struct nl_sock **out);
/* One in the namespace whose id, as seen from @sk's, is @netnsid. -ENOENT
 * when no visible namespace has that id. */
int link_gso_netns_open(struct nl_sock *sk, int netnsid, struct nl_sock **out);
void link_gso_close(struct nl_sock *sk);

/* Read @ifindex in @sk's namespace, or, when @netnsid >= 0, in the
 * namespace with that id (as seen from @sk's). -ENODEV when absent. */
int link_gso_read(struct nl_sock *sk, int netnsid, int ifindex, struct link_gso *out);

/* Set the IPv4 GSO and GRO maximum of @ifindex in @sk's namespace to @size
 * (one request: both or neither). The kernel refuses a GSO size above the
 * device's tso_max_size (-EINVAL, "too big gso_ipv4_max_size"). */
int link_gso_set_ipv4(struct nl_sock *sk, int ifindex, __u32 size, char *why, size_t whylen);

#endif /* AXON_LINK_GSO_H */
