/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the ipcache and endpoints maps should hold, derived from the store's
 * CiliumEndpointSlices and Nodes (pure functions of the store: no I/O).
 *
 * ipcache: every CiliumEndpointSlice endpoint with an IPv4 address as a /32
 *   -> { identity, tunnel_endpoint = networking.node, IPCACHE_F_LOCAL when
 *   that is this node's address }, and every other node's pod CIDRs ->
 *   { identity 0, that node's address, IPCACHE_F_POD_CIDR }. An address
 *   listed twice (a pod moving between slices) keeps the entry of the slice
 *   whose name sorts first, so the answer does not depend on event order.
 *
 * CIDR prefixes (ipcache_desired_cidr()): every prefix a policy names that
 *   has a CIDR identity (policy/cidr.h) -> { that identity, no tunnel
 *   endpoint, no flag }, unless the store already gives the same key (a
 *   pod's /32, a node's pod CIDR), which keeps its entry.
 *
 * local endpoints: the endpoints whose networking.node is this node's
 *   address, and those the CNI plugin created here (store->cni_endpoints)
 *   that no slice lists yet; the reconciler finds each one's host-side device.
 *
 * Nothing local is derived while this node's address is unknown (its Node
 * has not been seen), since "local" cannot be told apart yet.
 */
#ifndef AXON_ENDPOINTS_DESIRED_H
#define AXON_ENDPOINTS_DESIRED_H

#include <stddef.h>
#include <linux/types.h>

#include "axon/ipcache.h"
#include "htable.h"
#include "policy/cidr.h"
#include "store/store.h"

#define EP_NAME_MAX (K8S_NS_MAX + K8S_NAME_MAX)

/* Values of the htable ipcache_desired() fills (key: struct ipcache_key).
 * Valid while the store is unchanged: owner points into it. */
struct ipcache_desired_entry {
	struct ipcache_value value;
	const char *owner;		/* CES or Node name it came from */
};

struct local_endpoint {
	__be32 ip;
	__u32 identity;
	char name[EP_NAME_MAX];		/* "namespace/name" of the CiliumEndpoint */
};

/* Fill out (initialized, empty) with the desired ipcache. 0 or -ENOMEM. */
int ipcache_desired(const struct store *s, struct htable *out);
/* Add the CIDR prefixes of c to a table ipcache_desired() filled. 0, -ENOMEM. */
int ipcache_desired_cidr(const struct cidr_ids *c, struct htable *out);
/* Free the values of a table filled by ipcache_desired() and destroy it. */
void ipcache_desired_free(struct htable *h);

/* The local endpoints, sorted by address; *out is malloc'ed. */
int local_endpoints_desired(const struct store *s, struct local_endpoint **out, size_t *n);

static inline struct ipcache_key ipcache_key_of(__be32 addr, __u8 len)
{
	return (struct ipcache_key){ .prefixlen = IPCACHE_PREFIX_LEN(len), .address = addr };
}

#endif /* AXON_ENDPOINTS_DESIRED_H */
