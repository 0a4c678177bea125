/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The internal model of a network policy: what a NetworkPolicy, a
 * CiliumNetworkPolicy or a CiliumClusterwideNetworkPolicy says, in one form
 * the policy engine consumes (agent/k8s/netpol.c and cnp.c build it).
 *
 * A policy holds rules. A rule selects its subjects (identities) and says, per
 * direction, whether they become default-deny and which traffic an entry
 * allows or denies. An entry matches a connection when its peer matches (any
 * of its peers, OR) and its L4 matches (any of its ports or ICMP types, OR);
 * deny entries win over allow entries, as in Cilium.
 *
 *   peers       all_peers: any peer at all. Otherwise the peers listed; none
 *               listed (and not all_peers) matches nothing, as Cilium's
 *               `ingress: [{}]`, a default-deny that allows nothing.
 *   L4          no port and no ICMP type: every protocol and port.
 *
 * Selectors are in Cilium's label names (selector.h), namespace restrictions
 * already added, so the engine applies them to identities as they are:
 * a NetworkPolicy's podSelector `app: web` in namespace x selects
 * k8s:app=web AND k8s:io.kubernetes.pod.namespace=x. Entities are expanded
 * into their selectors (entity.h), each peer remembering its entity.
 *
 * What Axon's datapath cannot enforce is kept where it has meaning (an SCTP
 * port, a named port), or left out where it has none for Axon (L7 rules,
 * FQDNs), and flagged per entry and per policy (enum policy_unsupported), so
 * the engine can fail closed: an allow entry whose peer is only a toFQDNs
 * keeps no peer and so matches nothing, it never turns into "any peer".
 *
 * Everything is carved from the policy's arena; policy_free() releases it.
 */
#ifndef AXON_POLICY_RULES_H
#define AXON_POLICY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "policy/arena.h"
#include "policy/entity.h"
#include "policy/selector.h"

enum policy_kind {
	POLICY_KIND_NP = 0, /* networking.k8s.io/v1 NetworkPolicy */
	POLICY_KIND_CNP,    /* cilium.io/v2 CiliumNetworkPolicy */
	POLICY_KIND_CCNP,   /* cilium.io/v2 CiliumClusterwideNetworkPolicy */
	POLICY_KIND__NR,
};

#define POLICY_INGRESS 0x1
#define POLICY_EGRESS  0x2

/* Parts of a policy Axon keeps but cannot enforce (yet), or leaves out. */
enum policy_unsupported {
	POLICY_UNSUP_SCTP = 1u << 0,	   /* an SCTP port: the datapath parses TCP, UDP, ICMP */
	POLICY_UNSUP_PROTOCOL = 1u << 1,   /* a toPorts protocol of ICMP, ICMPv6, VRRP, IGMP */
	POLICY_UNSUP_L7 = 1u << 2,	   /* toPorts rules (HTTP, Kafka, DNS), TLS, listeners */
	POLICY_UNSUP_FQDN = 1u << 3,	   /* toFQDNs */
	POLICY_UNSUP_SERVICES = 1u << 4,   /* toServices */
	POLICY_UNSUP_GROUPS = 1u << 5,	   /* fromGroups, toGroups (cloud provider groups) */
	POLICY_UNSUP_NODES = 1u << 6,	   /* nodeSelector (host policy), fromNodes, toNodes */
	POLICY_UNSUP_AUTH = 1u << 7,	   /* authentication (mutual authentication) */
	POLICY_UNSUP_CIDR_GROUP = 1u << 8, /* cidrGroupRef, cidrGroupSelector */
	POLICY_UNSUP__LAST = POLICY_UNSUP_CIDR_GROUP,
};

struct policy_cidr {
	__u8 family;   /* AF_INET or AF_INET6 */
	__u8 len;      /* prefix length */
	__u8 addr[16]; /* network order; IPv4 in the first 4 bytes */
};

/* A CIDR peer: the prefix, minus its exceptions (each inside it). IPv6
 * prefixes are kept (they never match Axon's IPv4 traffic; dropping one
 * could leave an entry without peers). */
struct policy_cidr_rule {
	struct policy_cidr cidr;
	const struct policy_cidr *except;
	size_t n_except;
};

enum policy_peer_kind {
	POLICY_PEER_SELECTOR = 0, /* identities the selector matches */
	POLICY_PEER_CIDR,	  /* addresses in the CIDR rule */
};

struct policy_peer {
	enum policy_peer_kind kind;
	enum policy_entity entity;    /* the entity it came from, or NOT_ENTITY */
	struct policy_selector sel;   /* POLICY_PEER_SELECTOR */
	struct policy_cidr_rule cidr; /* POLICY_PEER_CIDR */
};

struct policy_port {
	__u8 proto;	  /* IPPROTO_TCP, _UDP, _SCTP, _ICMP...; 0: ANY (TCP, UDP, SCTP) */
	__u16 port;	  /* 0: every port (also when name is set: resolve it) */
	__u16 end_port;	  /* last port of the range port..end_port; 0: port alone */
	const char *name; /* a named port ("http"), "" when numeric: resolved
			   * per endpoint against its CiliumEndpointSlice
			   * named-ports */
};

struct policy_icmp {
	__u8 family; /* AF_INET (ICMP) or AF_INET6 (ICMPv6) */
	__u8 type;
};

struct policy_entry {
	bool deny; /* ingressDeny / egressDeny */
	bool all_peers;
	const struct policy_peer *peers;
	size_t n_peers;
	/* fromRequires / toRequires: Cilium ANDs these into the peers of every
	 * rule that selects the same subject (not only this entry's). */
	const struct policy_selector *requires;
	size_t n_requires;
	const struct policy_port *ports;
	size_t n_ports;
	const struct policy_icmp *icmps;
	size_t n_icmps;
	__u32 unsupported; /* enum policy_unsupported bits */
};

struct policy_rule {
	/* The subjects: endpoints whose identity the selector matches (never
	 * the host, even with no requirement); node_subject: a Cilium host
	 * policy (nodeSelector), which selects nodes, not endpoints. */
	struct policy_selector subject;
	bool node_subject;
	/* Directions (POLICY_INGRESS, POLICY_EGRESS) in which the subjects drop
	 * what no entry allows: NetworkPolicy's policyTypes, Cilium's
	 * enableDefaultDeny with its default (a direction with entries). */
	__u8 default_deny;
	const struct policy_entry *ingress; /* allow and deny, in the object's order */
	size_t n_ingress;
	const struct policy_entry *egress;
	size_t n_egress;
};

struct policy {
	struct policy_arena arena;
	enum policy_kind kind;
	const char *namespace; /* "" for a CiliumClusterwideNetworkPolicy */
	const char *name;
	const struct policy_rule *rules;
	size_t n_rules;
	__u32 unsupported; /* every entry's bits, and the rules' own */
};

/* "NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy". */
const char *policy_kind_name(enum policy_kind kind);
/* One bit's name ("SCTP", "L7 rules", ...); NULL for none. */
const char *policy_unsupported_name(__u32 bit);
/* Every set bit's name, ", "-separated; "" for none. */
void policy_unsupported_text(__u32 bits, char *buf, size_t len);
/* "10.0.0.0/8" (or IPv6). */
void policy_cidr_format(const struct policy_cidr *c, char *buf, size_t len);

/* Release everything; the struct is left zeroed. Safe on a zeroed struct. */
void policy_free(struct policy *p);

#endif /* AXON_POLICY_RULES_H */
