/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy engine: from the policies, the identities known and one local
 * endpoint, what the endpoint's policy trie must hold (struct policy_map_entry,
 * policy/map.h) and in which directions it is enforced. Pure computation: no
 * map, no store.
 *
 * engine_register() puts every selector of the policies (rule subjects,
 * peers, requirements) in the selector cache, once per policy change; the
 * cache then answers which identities each selects, and keeps that current
 * as identities come and go (selector_cache.h). engine_compute() reads only
 * the cache:
 *
 *   enforcement  a direction is enforced when a rule selecting the
 *                endpoint's identity has default_deny in it; selected by
 *                no such rule, the direction allows everything.
 *   entries      for every rule selecting the endpoint, every entry of a
 *                direction, every identity its peers select (all_peers: 0,
 *                any identity; a peer with the wildcard selector, the
 *                "all" entity: 0 as well) times every L4 item:
 *                  no port, no ICMP      protocol 0 (any protocol and port)
 *                  protocol, port 0      the protocol, any port
 *                  port (range)          the range split into prefix-aligned
 *                                        blocks (8080-8090: 8080/13,
 *                                        8088/15, 8090/16); protocol ANY is
 *                                        TCP and UDP
 *                  named port            ingress: resolved against the
 *                                        endpoint's named ports; egress:
 *                                        per peer identity, against the
 *                                        named ports of the endpoints that
 *                                        have it (engine_peer_port); for
 *                                        "any peer", every identity that
 *                                        has the name. Unresolved allows
 *                                        nothing (fail closed)
 *                  ICMP type             protocol ICMP, the type as port /16
 *                Deny entries (ingressDeny, egressDeny) become deny entries;
 *                policy_map_set() keeps deny over allow.
 *   fromRequires / toRequires of any entry of a rule selecting the endpoint
 *                restrict the allow entries of that direction: a peer
 *                identity must also be selected by every requirement, and
 *                all_peers becomes the identities every requirement selects.
 *
 * CIDR peers (ipBlock, fromCIDR/toCIDR, fromCIDRSet/toCIDRSet with except)
 *                select CIDR identities (policy/cidr.h): the identities of
 *                the prefixes the policies name that lie inside the CIDR and
 *                outside its excepts (a /0 also selects world), never a
 *                pod's identity, as in Cilium; an ipBlock on pod addresses
 *                does not match the pods.
 *
 * Not enforced, counted in engine_result.skipped (fail closed for allows:
 * nothing is allowed for them):
 *   - CIDR peers with a prefix inside that has no working CIDR identity (none
 *     left, or its ipcache entry could not be written): an allow allows
 *     nothing for that peer, a deny denies everything on its ports.
 *   - named ports in egress that no peer identity resolves: nothing allowed.
 *   - SCTP ports, ICMPv6 types: the datapath parses neither.
 *   - host policies (nodeSelector subjects): they select no endpoint.
 */
#ifndef AXON_POLICY_ENGINE_H
#define AXON_POLICY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "k8s/objects.h"
#include "policy/map.h"
#include "policy/rules.h"
#include "policy/selector_cache.h"

/* A named port of the endpoints that have one identity (their
 * CiliumEndpointSlice named-ports): what an egress named port resolves to
 * when that identity is the peer. Endpoints of one identity may name
 * different ports alike; each (identity, name, proto, port) is one item. */
struct engine_peer_port {
	__u32 identity;
	struct k8s_named_port np;
};

struct engine_endpoint {
	__u32 identity;
	const struct k8s_named_port *named_ports;
	size_t n_named_ports;
	/* Sorted by identity (engine_peer_ports_sort()); none: every egress
	 * named port allows nothing. */
	const struct engine_peer_port *peer_ports;
	size_t n_peer_ports;
};

struct engine_result {
	__u8 enforce; /* POLICY_INGRESS | POLICY_EGRESS */
	struct policy_map_entry *entries;
	size_t n, cap;
	unsigned int rules;   /* rules selecting the endpoint */
	unsigned int skipped; /* peers or ports not enforced (see above) */
};

/* Every selector of pols into the cache (between sc_begin and sc_end). */
int engine_register(struct selector_cache *sc, const struct policy *const *pols, size_t n);

/* The endpoint's enforcement and entries into *res (reset first). -ENOMEM,
 * or -ENOENT when a selector was not registered. */
int engine_compute(const struct selector_cache *sc, const struct policy *const *pols, size_t n,
		   const struct engine_endpoint *ep, struct engine_result *res);

void engine_result_free(struct engine_result *res);

/* Sort by identity, name, protocol, port and drop duplicates; returns how
 * many are left. */
size_t engine_peer_ports_sort(struct engine_peer_port *pp, size_t n);

/* Split first..last into prefix-aligned blocks (at most 32): out[i].port and
 * out[i].port_prefix; returns how many. */
size_t engine_port_blocks(__u16 first, __u16 last, struct policy_map_entry *out, size_t max);

#endif /* AXON_POLICY_ENGINE_H */
