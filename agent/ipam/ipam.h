/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Pod addresses for the CNI plugin, from this node's pod CIDR (the Node's
 * spec.podCIDRs, first IPv4 one): the Kubernetes IPAM mode.
 *
 * The pool never hands out the network address, the broadcast address, or
 * the range's first host address, which is reserved as the node's router
 * address ("router" in the listing, counted as allocated, as Cilium counts
 * it): a /24 has 254 allocatable addresses, one of them the router's.
 * Addresses are handed out round-robin after the last one given, so a
 * released address is not reused at once.
 *
 * Each allocation is a file <dir>/<address> holding its owner (container id,
 * interface, pod "namespace/name"), written atomically before the address is
 * returned: an agent restart finds every allocation again (ipam_init). The
 * router's is not kept (it follows from the pool), and the directory is made
 * on the first allocation.
 * Allocations may lie outside the current pool (the Node's CIDR changed):
 * they are kept until released, and listed.
 *
 * Thread-safe: every call takes the allocator's lock (the agent serves CNI
 * requests on one thread; the lock is for the allocator API's own users).
 */
#ifndef AXON_IPAM_H
#define AXON_IPAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "htable.h"
#include "k8s/objects.h"

#define IPAM_OWNER_MAX 128	/* container id */
#define IPAM_IFNAME_MAX 16
#define IPAM_POD_MAX (K8S_NS_MAX + K8S_NAME_MAX)
#define IPAM_ROUTER_OWNER "router"

struct ipam_alloc {
	__be32 ip;
	char owner[IPAM_OWNER_MAX];	/* container id, or "router" */
	char ifname[IPAM_IFNAME_MAX];
	char pod[IPAM_POD_MAX];		/* "namespace/name", "" if unknown */
};

struct ipam {
	pthread_mutex_t lock;
	char dir[256];			/* where allocations are kept; "" = memory only */
	struct ipv4_prefix pool;	/* len 0: no pool yet */
	struct htable allocs;		/* __be32 -> struct ipam_alloc */
	__u32 last;			/* host order: the address last handed out */
};

/* Load the allocations kept in dir (none when it is missing; NULL: none kept). */
int ipam_init(struct ipam *p, const char *dir);
void ipam_destroy(struct ipam *p);
/* The range to allocate from (idempotent); reserves its router address.
 * -EINVAL for a prefix with fewer than 4 addresses (/31, /32). */
int ipam_set_pool(struct ipam *p, const struct ipv4_prefix *pool);
/* An address for (owner, ifname): the one it already holds, else a new one.
 * -EAGAIN without a pool; -ENOSPC when exhausted, with err set to
 * "no IP addresses available in range 10.244.1.0/24 (254 allocated)";
 * -errno when the allocation could not be kept. */
int ipam_allocate(struct ipam *p, const char *owner, const char *ifname, const char *pod,
		  __be32 *ip, char *err, size_t errlen);
/* Release an address (-ENOENT when not allocated). The router's is never released. */
int ipam_release(struct ipam *p, __be32 ip);
/* The address (owner, ifname) holds, or 0. */
__be32 ipam_lookup(struct ipam *p, const char *owner, const char *ifname);
/* Allocated in the pool (router included) and the pool's size; 0/0 without one. */
void ipam_usage(struct ipam *p, size_t *allocated, size_t *capacity);
/* Copy of every allocation sorted by address (*out malloc'ed). */
int ipam_list(struct ipam *p, struct ipam_alloc **out, size_t *n);
/* "10.244.1.0/24", or "" without a pool. */
void ipam_pool_str(struct ipam *p, char *buf, size_t len);

#endif /* AXON_IPAM_H */
