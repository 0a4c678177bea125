/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service load balancing in tc: DNAT of a packet to a service frontend, the
 * backend recorded in conntrack, and reverse DNAT of replies. For traffic the
 * socket hooks did not translate (pods with socket LB off, clients outside
 * the node). Builds on lb.h (service lookup), shared with the socket LB.
 *
 * Contract:
 * - lb4_tc_fwd(): the packet's (daddr, dport, proto) is looked up first as a
 *   CT_SERVICE entry (the pre-DNAT tuple). A hit whose backend_id is still in
 *   lb4_backends is DNATed to it with no service lookup, whatever the
 *   service's slots say now (terminating backends keep their flows). A miss,
 *   or a recorded backend that is gone, looks the frontend up in
 *   lb4_services (scope EXT; from pods, scope INT when the service has two
 *   scopes, i.e. exactly one of EXT_LOCAL/INT_LOCAL) and picks a backend:
 *     SVC_FLAG_AFFINITY  the client's lb4_affinity backend while younger
 *                        than affinity_timeout and still the service's;
 *     SVC_FLAG2_MAGLEV   lb4_maglev[rev_nat_index].backend_ids[
 *                        lb4_flow_hash() % LB_MAGLEV_TABLE_SIZE] (random if
 *                        the table is missing);
 *     otherwise          slot (prandom % count) + 1, as lb.h.
 *   A new flow from outside to a frontend with SVC_FLAG2_SOURCE_RANGE from
 *   a client in none of its lb4_source_range prefixes: -DROP_SVC_SOURCE_RANGE.
 *   A TCP segment that is no bare SYN and has no CT_SERVICE entry is
 *   -DROP_SVC_INVALID_STATE (when the service has backends).
 *   count == 0: -DROP_NO_LOCAL_BACKEND for a service with EXT_LOCAL or
 *   INT_LOCAL, else -DROP_NO_SERVICE_BACKEND. A slot or backend missing:
 *   -DROP_BACKEND_NOT_FOUND. Returns LB_NOT_SERVICE (0), LB_TRANSLATED, or a
 *   drop; on LB_TRANSLATED the packet carries the backend as destination
 *   (checksums fixed), c->rev_nat_index and c->node_port are set, and
 *   REASON_LB_XLATED (plus REASON_NODE_PORT for a NodePort frontend) is
 *   counted.
 * - lb4_rev_dnat(): for a reply on an entry with rev_nat_index, the source
 *   becomes the frontend from lb4_reverse_nat (REASON_LB_REV_XLATED); no
 *   entry there (service gone): the packet is left alone.
 * - lb4_rev_icmp_error(): an ICMP error quoting a packet of such a flow gets
 *   the frontend back in the quote (and as its source when the backend sent
 *   it), so the client's socket matches it (REASON_LB_REV_XLATED).
 */
#ifndef AXON_BPF_LB_TC_H
#define AXON_BPF_LB_TC_H

#include "common.h"
#include "maps.h"
#include "maps_dp.h"
#include "lb.h"
#include "metrics.h"
#include "conntrack.h"
#include "lb_src_range.h"

#define LB_NOT_SERVICE 0
#define LB_TRANSLATED  1

static __always_inline __u32 lb_rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

/*
 * The Maglev flow hash: the kernel's jhash_3words(saddr, daddr, ports,
 * JHASH_INITVAL + proto), with the addresses as they sit in memory (network
 * order read as a host u32) and ports = sport | dport << 16 (likewise).
 */
static __always_inline __u32 lb4_flow_hash(const struct pkt4 *p)
{
	__u32 a, b, c;

	a = p->saddr + 0xdeadbeef + (3 << 2) + p->proto;
	b = p->daddr + 0xdeadbeef + (3 << 2) + p->proto;
	c = ((__u32)p->sport | ((__u32)p->dport << 16)) + 0xdeadbeef + (3 << 2) + p->proto;
	/* __jhash_final */
	c ^= b;
	c -= lb_rol32(b, 14);
	a ^= c;
	a -= lb_rol32(c, 11);
	b ^= a;
	b -= lb_rol32(a, 25);
	c ^= b;
	c -= lb_rol32(b, 16);
	a ^= c;
	a -= lb_rol32(c, 4);
	b ^= a;
	b -= lb_rol32(a, 14);
	c ^= b;
	c -= lb_rol32(b, 24);
	return c;
}

/* The service entry for the packet's destination, @key left pointing at its
 * scope. @internal: the client is a pod of this node. */
static __always_inline const struct lb4_service *lb4_tc_lookup(struct lb4_key *key,
							       const struct pkt4 *p, bool internal)
{
	lb4_key_init(key, p->daddr, p->dport, p->proto);
	return internal ? lb4_lookup_service_internal(key) : lb4_lookup_service(key);
}

/*
 * The backend @akey's client was last sent to, if younger than the affinity
 * timeout and still the service's: picked from a slot, that slot must still
 * name it (lb4_affinity_backend(), as the socket LB checks); picked from the
 * Maglev table (slot 0), it must still exist, since the agent rewrites the
 * table whole when backends change. Leaves @key->backend_slot at 0.
 */
static __always_inline bool aff_lookup_slot_checked(struct dp_ctx *c, struct lb4_key *key,
						    const struct lb4_service *svc,
						    const struct lb4_affinity_key *akey, __u32 *id)
{
	struct lb4_affinity_value *aff;
	const struct lb4_service *slot;
	__u32 backend_id;

	aff = bpf_map_lookup_elem(&lb4_affinity, akey);
	if (!aff || c->now - aff->last_used > svc->affinity_timeout)
		return false;
	backend_id = aff->backend_id;
	if (aff->backend_slot) {
		if (aff->backend_slot > svc->count)
			return false;
		key->backend_slot = aff->backend_slot;
		slot = bpf_map_lookup_elem(&lb4_services, key);
		key->backend_slot = 0;
		if (!slot || slot->backend_id != backend_id)
			return false;
	}
	if (!bpf_map_lookup_elem(&lb4_backends, &backend_id))
		return false;
	if (aff->last_used != c->now)
		aff->last_used = c->now;
	*id = backend_id;
	return true;
}

/* Pick a backend of @svc for the packet. Returns 0 with *@id, or a drop. */
static __always_inline int lb4_tc_select(struct dp_ctx *c, struct lb4_key *key,
					 const struct lb4_service *svc, __u32 *id)
{
	const struct pkt4 *p = &c->pkt;
	struct lb4_affinity_key akey = {};
	struct lb4_affinity_value aval = {};
	const struct lb4_maglev_table *table;
	const struct lb4_service *slot;
	__u32 rev_nat_index = svc->rev_nat_index;
	__u32 count = svc->count;
	__u32 backend_id = 0;
	__u16 slot_nr = 0;

	if (!count)
		return svc->flags & (SVC_FLAG_EXT_LOCAL | SVC_FLAG_INT_LOCAL)
			   ? -DROP_NO_LOCAL_BACKEND
			   : -DROP_NO_SERVICE_BACKEND;

	if (svc->flags & SVC_FLAG_AFFINITY) {
		akey.client = p->saddr;
		akey.rev_nat_index = rev_nat_index;
		if (aff_lookup_slot_checked(c, key, svc, &akey, id))
			return 0;
	}

	if (svc->flags2 & SVC_FLAG2_MAGLEV) {
		table = bpf_map_lookup_elem(&lb4_maglev, &rev_nat_index);
		if (table) {
			__u32 idx = lb4_flow_hash(p) % LB_MAGLEV_TABLE_SIZE;

			/* Keep the bound check: clang turns % into a
			 * multiply-subtract the verifier cannot bound. */
			asm volatile("" : "+r"(idx));
			if (idx < LB_MAGLEV_TABLE_SIZE)
				backend_id = table->backend_ids[idx];
		}
	}
	if (!backend_id) {
		slot_nr = (bpf_get_prandom_u32() % count) + 1;
		key->backend_slot = slot_nr;
		slot = bpf_map_lookup_elem(&lb4_services, key);
		key->backend_slot = 0;
		if (!slot)
			return -DROP_BACKEND_NOT_FOUND;
		backend_id = slot->backend_id;
	}
	if (!bpf_map_lookup_elem(&lb4_backends, &backend_id))
		return -DROP_BACKEND_NOT_FOUND;

	if (svc->flags & SVC_FLAG_AFFINITY) {
		aval.last_used = c->now;
		aval.backend_id = backend_id;
		aval.backend_slot = slot_nr;
		bpf_map_update_elem(&lb4_affinity, &akey, &aval, BPF_ANY);
	}
	*id = backend_id;
	return 0;
}

static __always_inline int lb4_dnat(struct dp_ctx *c, const struct lb4_backend *backend,
				    __u32 rev_nat_index, bool node_port)
{
	int ret;

	ret = pkt4_set_dst(c->skb, &c->pkt, backend->address, backend->port);
	if (ret)
		return ret;
	c->rev_nat_index = rev_nat_index;
	c->node_port = node_port;
	c->translated = 1;
	metrics_count(REASON_LB_XLATED, c->dir, c->len);
	if (node_port)
		metrics_count(REASON_NODE_PORT, c->dir, c->len);
	return LB_TRANSLATED;
}

/*
 * DNAT the packet of @c if it goes to a service frontend. @internal: the
 * client is a local pod. @may_lookup: a packet with no CT_SERVICE entry may
 * be looked up in lb4_services (the caller rules out NodePort lookups off
 * the NodePort range or with NodePort off).
 */
static __always_inline int lb4_tc_fwd(struct dp_ctx *c, bool internal, bool may_lookup)
{
	const struct pkt4 *p = &c->pkt;
	const struct lb4_service *svc;
	const struct lb4_backend *backend;
	struct ct4_entry *se, tmpl;
	struct ct4_key skey;
	struct lb4_key key;
	__u32 backend_id;
	bool node_port;
	int ret;

	if (!p->has_ports || (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return LB_NOT_SERVICE;

	ct4_key_fwd(&skey, p, CT_SERVICE);
	se = ct4_lookup(c, &skey);
	if (se) {
		backend_id = se->backend_id;
		backend = bpf_map_lookup_elem(&lb4_backends, &backend_id);
		if (backend) {
			ct4_account(c, se, CT_DIR_TX);
			return lb4_dnat(c, backend, se->rev_nat_index, se->flags & CT_F_NODE_PORT);
		}
		/* The backend is gone: the flow needs another one. */
	}
	if (!may_lookup && !se)
		return LB_NOT_SERVICE;

	svc = lb4_tc_lookup(&key, p, internal);
	if (!svc)
		return LB_NOT_SERVICE;
	if (!se && !internal && !lb4_src_range_allowed(&key, svc, p->saddr))
		return -DROP_SVC_SOURCE_RANGE;
	/* Only a SYN opens a TCP flow: anything else without an entry (one
	 * that expired or was flushed, a stray segment) would reach a backend
	 * that knows nothing of it. kube-proxy drops these as conntrack
	 * INVALID. A service without backends answers it instead (reject.h). */
	if (!se && p->proto == IPPROTO_TCP && svc->count &&
	    (p->tcp_flags & (TH_SYN | TH_ACK | TH_RST)) != TH_SYN)
		return -DROP_SVC_INVALID_STATE;
	ret = lb4_tc_select(c, &key, svc, &backend_id);
	if (ret)
		return ret;
	backend = bpf_map_lookup_elem(&lb4_backends, &backend_id);
	if (!backend)
		return -DROP_BACKEND_NOT_FOUND;
	node_port = svc->flags & SVC_FLAG_NODE_PORT;

	if (se) {
		se->backend_id = backend_id;
		se->rev_nat_index = svc->rev_nat_index;
		ct4_account(c, se, CT_DIR_TX);
	} else {
		__builtin_memset(&tmpl, 0, sizeof(tmpl));
		tmpl.backend_id = backend_id;
		tmpl.rev_nat_index = svc->rev_nat_index;
		tmpl.flags = node_port ? CT_F_NODE_PORT : 0;
		ret = ct4_create(c, &skey, &tmpl);
		if (ret)
			return ret;
	}
	return lb4_dnat(c, backend, svc->rev_nat_index, node_port);
}

/* Reverse DNAT of a reply on flow entry @e (see the contract above). */
static __always_inline int lb4_rev_dnat(struct dp_ctx *c, const struct ct4_entry *e)
{
	const struct lb4_reverse_nat *fe;
	__u32 index = e->rev_nat_index;
	int ret;

	if (!index)
		return 0;
	fe = bpf_map_lookup_elem(&lb4_reverse_nat, &index);
	if (!fe)
		return 0;
	ret = pkt4_set_src(c->skb, &c->pkt, fe->address, fe->port);
	if (ret)
		return ret;
	c->translated = 1;
	metrics_count(REASON_LB_REV_XLATED, c->dir, c->len);
	return 0;
}

/*
 * An ICMP error (destination unreachable, e.g. fragmentation needed or port
 * unreachable, or time exceeded) about a packet of a flow tc LB translated:
 * the quoted header names the backend, so the client, whose socket speaks to
 * the frontend, would never match it, and path MTU discovery through a
 * ClusterIP or NodePort would break. The quoted packet is the client's (its
 * source is this error's destination); its tuple is the flow's post-DNAT
 * conntrack key. Restores the quoted destination and port to the frontend,
 * and the outer source too when the backend itself sent the error (a router
 * on the way keeps its own). The quoted IPv4 checksum is fixed, so the ICMP
 * checksum only follows the port; a quoted UDP checksum is left stale, as
 * receivers do not check it. Returns 1 if translated, 0 if not a translated
 * flow's error, or a drop.
 */
static __always_inline int lb4_rev_icmp_error(struct dp_ctx *c)
{
	struct pkt4 *p = &c->pkt;
	__u32 in_off = p->l4_off + sizeof(struct icmphdr), l4_off, port_off;
	__u32 icmp_csum = p->l4_off + offsetof(struct icmphdr, checksum);
	const struct lb4_reverse_nat *fe;
	struct ct4_entry *e;
	struct ct4_key key;
	struct iphdr inner;
	__be16 ports[2];
	__u32 index;

	/* Services are TCP and UDP: a quoted echo is no service flow's. */
	if (pkt4_icmp_error_quote(c->skb, p, &inner, ports, &l4_off, &port_off) ||
	    inner.protocol == IPPROTO_ICMP)
		return 0;

	key.daddr = inner.daddr;
	key.saddr = inner.saddr;
	key.dport = ports[1];
	key.sport = ports[0];
	key.nexthdr = inner.protocol;
	key.flags = CT_EGRESS;		/* a local client's flow */
	key.pad = 0;
	e = ct4_lookup(c, &key);
	if (!e) {
		key.flags = CT_INGRESS;	/* a NodePort/external client's flow */
		e = ct4_lookup(c, &key);
	}
	if (!e || !(index = e->rev_nat_index))
		return 0;
	fe = bpf_map_lookup_elem(&lb4_reverse_nat, &index);
	if (!fe || (fe->address == inner.daddr && fe->port == ports[1]))
		return 0;

	if (bpf_l3_csum_replace(c->skb, in_off + offsetof(struct iphdr, check), inner.daddr,
				fe->address, sizeof(fe->address)))
		return -DROP_CSUM_UPDATE;
	if (bpf_skb_store_bytes(c->skb, in_off + offsetof(struct iphdr, daddr), &fe->address,
				sizeof(fe->address), 0))
		return -DROP_CSUM_UPDATE;
	if (bpf_l4_csum_replace(c->skb, icmp_csum, ports[1], fe->port, sizeof(fe->port)))
		return -DROP_CSUM_UPDATE;
	if (bpf_skb_store_bytes(c->skb, l4_off + 2, &fe->port, sizeof(fe->port), 0))
		return -DROP_CSUM_UPDATE;
	if (p->saddr == inner.daddr && pkt4_set_addr(c->skb, p, true, fe->address))
		return -DROP_CSUM_UPDATE;
	c->translated = 1;
	metrics_count(REASON_LB_REV_XLATED, c->dir, c->len);
	return 1;
}

#endif /* AXON_BPF_LB_TC_H */
