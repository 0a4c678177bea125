// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tc datapath: host routing, service load balancing for packets that did
 * not pass the socket hooks, conntrack and NAT. Four entry points:
 *
 *   from_container  ingress of a pod's host-side device (packets from the pod)
 *   to_container    egress of a pod's host-side device (packets the stack
 *                   sends to the pod)
 *   from_netdev     ingress of a native device (packets from the network)
 *   to_netdev       egress of a native device (packets leaving the node)
 *
 * Configuration is CONFIG (include/axon/config.h), set by the agent between
 * open and load. Redirects (bpf_redirect_peer, FIB + bpf_redirect_neigh)
 * happen only with CFG_HOST_ROUTING; without it every packet is handed to the
 * stack (REASON_TO_STACK) after its conntrack and NAT.
 *
 * Metrics: every packet counts exactly one verdict reason in `metrics` by
 * (reason, dir) with skb->len bytes: REASON_TO_ENDPOINT, REASON_FIB_FORWARDED,
 * REASON_TO_STACK (from_* programs; also any non-IPv4 frame in every program),
 * REASON_TO_STACK_MTU (from_* programs: too long for the FIB's way out),
 * REASON_FORWARDED (IPv4 let through by to_container / to_netdev), or a drop.
 * Notable steps are counted in addition, once per packet they happen to:
 * REASON_CT_NEW, REASON_CT_REOPENED, REASON_LB_XLATED (+ REASON_NODE_PORT for
 * a NodePort frontend), REASON_LB_REV_XLATED, REASON_SNAT, REASON_REV_SNAT,
 * REASON_UNKNOWN_L4_PASSED (an L4 other than TCP/UDP/ICMP, routed on L3 with
 * ports 0), REASON_EVENTS_SUPPRESSED, REASON_POLICY_ALLOWED (per enforced
 * policy that allowed a new flow, in the policy's direction; a policy's
 * drops, DROP_POLICY and DROP_POLICY_DENY, are counted in its direction
 * too).
 * Directions: from_container EGRESS, to_container INGRESS, from_netdev
 * INGRESS, to_netdev EGRESS.
 *
 * Fragments: dropped (DROP_FRAG_NOT_SUPPORTED) at from_container and
 * to_container; at from_netdev unless addressed to the node itself (those go
 * to the stack, which reassembles them: REASON_TO_STACK); at to_netdev when
 * the source is a local pod (the node's own fragments pass, REASON_FORWARDED).
 * Axon keeps no fragment state (as Cilium without fragment tracking).
 *
 * Conntrack (include/axon/ct.h), who creates what:
 *   from_container  CT_EGRESS for a flow the pod opens (post-DNAT tuple for a
 *                   service, plus the CT_SERVICE pre-DNAT entry; CT_F_SNAT
 *                   to 169.254.42.1 when the pod is its own backend,
 *                   lib/lb_hairpin.h);
 *   from_netdev     CT_INGRESS for a flow towards a local pod or through a
 *                   service frontend (post-DNAT; CT_F_SNAT with nat_addr/port
 *                   when sent on to a remote backend), plus CT_SERVICE;
 *   to_container    CT_INGRESS for a flow the stack delivers to a pod (the
 *                   node's own connections to it);
 *   to_netdev       CT_EGRESS gets CT_F_SNAT when masqueraded (created if
 *                   from_container did not see the flow).
 * Network policy (lib/policy.h), on a flow's first packet, after any DNAT,
 * before its entry is created (a denied packet creates none):
 *   from_container  the source pod's egress policy; the destination pod's
 *                   ingress policy when it is delivered here (redirect_peer);
 *   to_container    the pod's ingress policy (the node itself is HOST);
 *   from_netdev     a local pod's ingress policy, also a NodePort backend's.
 * A pod's connection through a service back to itself (hairpin) is not
 * judged by either of its policies (lib/lb_hairpin.h says why).
 * The entry carries the verdicts (CT_F_*_ALLOWED): later packets and replies
 * are never looked up. An ICMP error gets no entry of its own.
 * Lookups per packet of an established flow: from the initiator's side one CT
 * lookup (and one endpoints lookup for the delivery); a service flow's
 * forward packets the CT_SERVICE entry, its backend and the post-DNAT entry;
 * replies one or two (the reversed tuple under the flags possible for where
 * the reply goes). No service lookup for a flow that has its entries.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include <axon/config.h>

const volatile struct datapath_config CONFIG = {};

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/maps_dp.h"
#include "lib/dp.h"
#include "lib/pkt.h"
#include "lib/metrics.h"
#include "lib/notify.h"
#include "lib/conntrack.h"
#include "lib/lb_tc.h"
#include "lib/reject.h"
#include "lib/snat.h"
#include "lib/lb_hairpin.h"
#include "lib/route.h"
#include "lib/identity.h"
#include "lib/policy.h"

/* The verdict of the program: count it, send its event, return it. */
static __always_inline int dp_finish(struct dp_ctx *c, int ret)
{
	if (ret < 0) {
		__u8 reason = -ret;

		metrics_count(reason, c->dir, c->len);
		notify_event(c, EVENT_DROP, reason);
		return TC_ACT_SHOT;
	}
	metrics_count(c->reason, c->dir, c->len);
	/* A packet answered in its place (reject.h) sent its drop event
	 * before it was rewritten. */
	if (c->reason >= REASON_DROP_BASE)
		return ret;
	/* Traces: the first packet of a flow, then at most one a second. */
	if (cfg_has(CFG_TRACE_EVENTS)) {
		if (!c->ct || c->ct_new) {
			notify_event(c, EVENT_TRACE, c->reason);
		} else if (c->ct->last_report != c->now) {
			c->ct->last_report = c->now;
			notify_event(c, EVENT_TRACE, c->reason);
		}
	}
	return ret;
}

static __always_inline void dp_init(struct dp_ctx *c, struct __sk_buff *skb, __u8 dir)
{
	__builtin_memset(c, 0, sizeof(*c));
	c->skb = skb;
	c->len = skb->len;
	c->dir = dir;
	c->now = bpf_ktime_get_ns() / NSEC_PER_SEC;
}

/* Parse; a non-IPv4 frame ends as TC_ACT_OK / REASON_TO_STACK (returned as
 * PKT_NOT_IPV4 for the caller to finish). */
static __always_inline int dp_parse(struct dp_ctx *c)
{
	int ret = pkt4_parse(c->skb, &c->pkt);

	if (ret == PKT_NOT_IPV4)
		c->reason = REASON_TO_STACK;
	else if (!ret && !c->pkt.has_ports && c->pkt.proto != IPPROTO_ICMP)
		metrics_count(REASON_UNKNOWN_L4_PASSED, c->dir, c->len);
	return ret;
}

/* New flow entry @flags for the packet's tuple, with rev_nat_index from a
 * DNAT done on it. An ICMP message without an identifier (an error) is no
 * flow and gets none: it belongs to the flow it quotes, or stands alone; an
 * entry keyed by the address pair alone would pass every later error
 * between the two as "established", past the policy. */
static __always_inline int dp_ct_new(struct dp_ctx *c, __u8 flags, __u16 ct_flags, __be32 nat_addr,
				     __be16 nat_port)
{
	struct ct4_entry tmpl = {};
	struct ct4_key key;

	if (c->pkt.proto == IPPROTO_ICMP && !c->pkt.has_ports)
		return 0;

	/* Identity of the source, looked up once per flow, at its creation. */
	if (!c->src_identity)
		c->src_identity = identity_ipcache(c->pkt.saddr);
	ct4_key_fwd(&key, &c->pkt, flags);
	tmpl.rev_nat_index = c->rev_nat_index;
	/* The policy verdicts policy_enforce() took on this packet. */
	tmpl.flags = ct_flags | (c->node_port ? CT_F_NODE_PORT : 0) | c->policy_ct_flags;
	tmpl.nat_addr = nat_addr;
	tmpl.nat_port = nat_port;
	return ct4_create(c, &key, &tmpl);
}

/* ---- from_container ---------------------------------------------------- */

/* Deliver to local pod @ep, or route by the FIB when there is none. */
static __always_inline int route_from_pod(struct dp_ctx *c, const struct endpoint_info *ep)
{
	if (ep)
		return route4_to_pod(c, ep);
	return route4_fib(c);
}

/*
 * A new flow out of pod @src (NULL: its address is no local endpoint) to
 * @dst (a local pod, or NULL): @src's egress policy, towards the identity of
 * the destination (after any DNAT: the backend); then @dst's ingress policy,
 * which to_container never sees when the packet is delivered with
 * redirect_peer (without host routing the stack delivers it, and
 * to_container decides).
 */
static __always_inline int from_container_policy(struct dp_ctx *c, const struct endpoint_info *src,
						 const struct endpoint_info *dst)
{
	__u32 remote;
	int ret;

	if (src && (src->policy & ENDPOINT_POLICY_EGRESS)) {
		remote = dst && dst->identity ? dst->identity : identity_local(c->pkt.daddr);
		ret = policy_enforce(c, src, POLICY_DIR_EGRESS, remote);
		if (ret)
			return ret;
	}
	if (dst && (dst->policy & ENDPOINT_POLICY_INGRESS) && cfg_has(CFG_HOST_ROUTING)) {
		remote = src && src->identity ? src->identity
					      : identity_not_host(identity_ipcache(c->pkt.saddr));
		return policy_enforce(c, dst, POLICY_DIR_INGRESS, remote);
	}
	return 0;
}

static __always_inline int from_container4(struct dp_ctx *c)
{
	struct pkt4 *p = &c->pkt;
	const struct endpoint_info *src, *dst;
	struct endpoint_key skey = {.address = p->saddr};
	struct ct4_entry *e = NULL;
	struct ct4_key key;
	int ret;

	/* The pod answering a connection it made to its own service. */
	if (p->daddr == lb4_hairpin_addr()) {
		ret = lb4_hairpin_rev(c);
		if (ret)
			return ret;
	}

	/* Needed for the delivery anyway; it also tells which replies are
	 * possible, which saves lookups on the reply path. */
	dst = route4_local_pod(p->daddr);

	/* An error a backend here sent about a translated flow's packet. */
	if (p->proto == IPPROTO_ICMP && !p->has_ports) {
		ret = lb4_rev_icmp_error(c);
		if (ret < 0)
			return ret;
		if (ret)
			return route_from_pod(c, dst);
	}

	/* A flow this pod opened. */
	ct4_key_fwd(&key, p, CT_EGRESS);
	e = ct4_lookup(c, &key);
	if (e) {
		/* Not DNATed here (that comes below), so this is a connection
		 * made to this address itself: an entry with a rev-NAT index
		 * is the tuple an earlier service connection had after its
		 * DNAT, now reused; replies must not come from the VIP. */
		ct4_set_xlate(e, 0, false);
		ct4_account(c, e, CT_DIR_TX);
		return route_from_pod(c, dst);
	}
	/* A reply: to a client elsewhere, in a flow opened towards this pod
	 * (from outside, or a NodePort/service flow served here); to a local
	 * pod, in a flow that pod opened (pod to pod, or through a service). */
	ct4_key_rev(&key, p, CT_INGRESS);
	if (!dst)
		e = ct4_lookup(c, &key);
	if (!e) {
		key.flags = CT_EGRESS;
		e = ct4_lookup(c, &key);
	}
	if (e) {
		ct4_account(c, e, CT_DIR_RX);
		ret = lb4_rev_dnat(c, e);
		if (ret)
			return ret;
		return route_from_pod(c, dst);
	}

	src = bpf_map_lookup_elem(&endpoints, &skey);
	if (src)
		c->src_identity = src->identity;

	/* A service the socket LB did not translate. */
	ret = lb4_tc_fwd(c, true, true);
	if (ret == -DROP_NO_SERVICE_BACKEND)
		return reject4_no_backend(c, true);
	if (ret < 0)
		return ret;
	if (ret == LB_TRANSLATED) {
		if (lb4_is_hairpin(p))
			return lb4_hairpin_fwd(c);
		dst = route4_local_pod(p->daddr);
		ct4_key_fwd(&key, p, CT_EGRESS);
		e = ct4_lookup(c, &key);
		if (e) {
			/* The tuple may have served a direct connection or
			 * another service: the translation is this packet's. */
			ct4_set_xlate(e, c->rev_nat_index, c->node_port);
			ct4_account(c, e, CT_DIR_TX);
			return route_from_pod(c, dst);
		}
	}

	ret = from_container_policy(c, src, dst);
	if (ret)
		return ret;
	ret = dp_ct_new(c, CT_EGRESS, 0, 0, 0);
	if (ret)
		return ret;
	return route_from_pod(c, dst);
}

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	struct dp_ctx c;
	int ret;

	dp_init(&c, skb, METRIC_DIR_EGRESS);
	ret = dp_parse(&c);
	if (ret == PKT_NOT_IPV4)
		return dp_finish(&c, TC_ACT_OK);
	if (ret < 0)
		return dp_finish(&c, ret);
	return dp_finish(&c, from_container4(&c));
}

/* ---- to_container ------------------------------------------------------ */

static __always_inline int to_container4(struct dp_ctx *c)
{
	struct pkt4 *p = &c->pkt;
	const struct endpoint_info *dst;
	struct ct4_entry *e;
	struct ct4_key key;
	int ret;

	c->reason = REASON_FORWARDED;
	ct4_key_fwd(&key, p, CT_INGRESS);
	e = ct4_lookup(c, &key);
	if (e) {
		ct4_account(c, e, CT_DIR_TX);
		return TC_ACT_OK;
	}
	/* A reply to the pod's flow: a service whose backend is the node
	 * itself comes back through the stack and needs its reverse DNAT. */
	ct4_key_rev(&key, p, CT_EGRESS);
	e = ct4_lookup(c, &key);
	if (e) {
		ct4_account(c, e, CT_DIR_RX);
		ret = lb4_rev_dnat(c, e);
		return ret ?: TC_ACT_OK;
	}
	/* A new flow the stack delivers: the destination pod's ingress
	 * policy; the node's own traffic is HOST (allowed). */
	dst = route4_local_pod(p->daddr);
	if (dst && (dst->policy & ENDPOINT_POLICY_INGRESS)) {
		ret = policy_enforce(c, dst, POLICY_DIR_INGRESS, identity_local(p->saddr));
		if (ret)
			return ret;
	}
	ret = dp_ct_new(c, CT_INGRESS, 0, 0, 0);
	return ret ?: TC_ACT_OK;
}

SEC("tc")
int to_container(struct __sk_buff *skb)
{
	struct dp_ctx c;
	int ret;

	dp_init(&c, skb, METRIC_DIR_INGRESS);
	ret = dp_parse(&c);
	if (ret == PKT_NOT_IPV4)
		return dp_finish(&c, TC_ACT_OK);
	if (ret < 0)
		return dp_finish(&c, ret);
	return dp_finish(&c, to_container4(&c));
}

/* ---- from_netdev ------------------------------------------------------- */

static __always_inline bool is_node_addr(__be32 addr)
{
	struct endpoint_key key = {.address = addr};
	const struct endpoint_info *ep;

	if (CONFIG.node_ip && addr == CONFIG.node_ip)
		return true;
	ep = bpf_map_lookup_elem(&endpoints, &key);
	return ep && (ep->flags & ENDPOINT_F_HOST);
}

/* A new flow from the network to local pod @ep: its ingress policy, the
 * source's identity from the IP cache (never HOST: it came off the wire). */
static __always_inline int from_netdev_policy(struct dp_ctx *c, const struct endpoint_info *ep)
{
	if (!(ep->policy & ENDPOINT_POLICY_INGRESS))
		return 0;
	return policy_enforce(c, ep, POLICY_DIR_INGRESS,
			      identity_not_host(identity_ipcache(c->pkt.saddr)));
}

/* After a translation on the way in: a local pod gets it directly, anything
 * else (the client of a NodePort flow) is routed back out. */
static __always_inline int route_from_netdev(struct dp_ctx *c)
{
	const struct endpoint_info *ep = route4_local_pod(c->pkt.daddr);

	if (ep)
		return route4_to_pod(c, ep);
	if (c->translated)
		return route4_fib(c);
	return route4_to_stack(c);
}

/* A reply whose destination snat4_rev() restored: a masqueraded pod's flow
 * (CT_EGRESS) or a NodePort flow sent on to a remote backend (CT_INGRESS). */
static __always_inline int from_netdev_rev_snat(struct dp_ctx *c)
{
	struct ct4_entry *e;
	struct ct4_key key;
	int ret;

	ct4_key_rev(&key, &c->pkt, CT_EGRESS);
	e = ct4_lookup(c, &key);
	if (!e) {
		key.flags = CT_INGRESS;
		e = ct4_lookup(c, &key);
	}
	if (e) {
		ct4_account(c, e, CT_DIR_RX);
		ret = lb4_rev_dnat(c, e);
		if (ret)
			return ret;
	}
	return route_from_netdev(c);
}

/* A service flow from outside, DNATed: to a local pod directly, to the node
 * itself through the stack, to a backend elsewhere with SNAT to the node. */
static __always_inline int from_netdev_service(struct dp_ctx *c)
{
	struct pkt4 *p = &c->pkt;
	const struct endpoint_info *ep;
	struct endpoint_key bkey = {.address = p->daddr};
	__be32 nat_addr = CONFIG.node_ip;
	struct ct4_entry *e;
	struct ct4_key key;
	__be16 nat_port;
	bool host;
	int ret;

	ep = bpf_map_lookup_elem(&endpoints, &bkey);
	/* A hostNetwork backend: the node's own address, whether or not the
	 * endpoints map lists it. */
	host = is_node_addr(p->daddr);
	ct4_key_fwd(&key, p, CT_INGRESS);
	e = ct4_lookup(c, &key);
	if (e) {
		/* The client's earlier connection on this tuple may have been
		 * made to the backend itself or through another frontend. */
		ct4_set_xlate(e, c->rev_nat_index, c->node_port);
		ct4_account(c, e, CT_DIR_TX);
		if (e->flags & CT_F_SNAT) {
			ret = snat4_apply(c, e->nat_addr, e->nat_port);
			if (ret)
				return ret;
		}
	} else if (ep || host || !nat_addr) {
		if (ep && !host) {
			ret = from_netdev_policy(c, ep);
			if (ret)
				return ret;
		}
		ret = dp_ct_new(c, CT_INGRESS, 0, 0, 0);
		if (ret)
			return ret;
	} else {
		snat4_drop_stale(c);
		ret = snat4_alloc(c, nat_addr, &nat_port);
		if (ret)
			return ret;
		ret = dp_ct_new(c, CT_INGRESS, CT_F_SNAT, nat_addr, nat_port);
		if (ret)
			return ret;
		ret = snat4_apply(c, nat_addr, nat_port);
		if (ret)
			return ret;
	}
	if (host)
		return route4_to_stack(c);
	if (ep)
		return route4_to_pod(c, ep);
	return route4_fib(c);
}

/* A node address's port outside the NodePort range is load balanced only
 * when it is a pod's hostPort (SVC_FLAG_HOST_PORT): the host's own services
 * on other ports never pay for more than this lookup. */
static __always_inline bool is_host_port(const struct pkt4 *p)
{
	const struct lb4_service *svc;
	struct lb4_key key;

	lb4_key_init(&key, p->daddr, p->dport, p->proto);
	svc = lb4_lookup_service(&key);
	return svc && (svc->flags & SVC_FLAG_HOST_PORT);
}

static __always_inline int from_netdev4(struct dp_ctx *c)
{
	struct pkt4 *p = &c->pkt;
	const struct endpoint_info *ep;
	struct endpoint_key ekey;
	struct ct4_entry *e;
	struct ct4_key key;
	bool node_addr, may_lookup;
	__u16 dport;
	int ret;

	ekey.address = p->daddr;
	ep = bpf_map_lookup_elem(&endpoints, &ekey);
	node_addr =
	    (CONFIG.node_ip && p->daddr == CONFIG.node_ip) || (ep && (ep->flags & ENDPOINT_F_HOST));
	if (ep && !node_addr) {
		/* An error from a remote backend, or a router on the way, about
		 * a service flow a local pod opened. */
		if (p->proto == IPPROTO_ICMP && !p->has_ports) {
			ret = lb4_rev_icmp_error(c);
			if (ret < 0)
				return ret;
			if (ret)
				return route4_to_pod(c, ep);
		}
		/* A flow towards a local pod, or a reply to one it opened. */
		ct4_key_fwd(&key, p, CT_INGRESS);
		e = ct4_lookup(c, &key);
		if (e) {
			/* Not DNATed: a connection to the pod's own address.
			 * An entry with a rev-NAT index is a NodePort (or
			 * ClusterIP) connection's tuple the client reuses;
			 * replies must not come from that frontend. */
			ct4_set_xlate(e, 0, false);
			ct4_account(c, e, CT_DIR_TX);
			return route4_to_pod(c, ep);
		}
		ct4_key_rev(&key, p, CT_EGRESS);
		e = ct4_lookup(c, &key);
		if (e) {
			ct4_account(c, e, CT_DIR_RX);
			ret = lb4_rev_dnat(c, e);
			if (ret)
				return ret;
			return route4_to_pod(c, ep);
		}
		ret = from_netdev_policy(c, ep);
		if (ret)
			return ret;
		ret = dp_ct_new(c, CT_INGRESS, 0, 0, 0);
		if (ret)
			return ret;
		return route4_to_pod(c, ep);
	}

	if (node_addr && p->has_ports) {
		ret = snat4_rev(c);
		if (ret < 0)
			return ret;
		if (ret)
			return from_netdev_rev_snat(c);
	} else if (node_addr && p->proto == IPPROTO_ICMP) {
		ret = snat4_rev_icmp_error(c);
		if (ret < 0)
			return ret;
		if (ret)
			return route_from_netdev(c);
	}

	dport = bpf_ntohs(p->dport);
	may_lookup = !node_addr ||
		     (cfg_has(CFG_NODE_PORT) &&
		      ((dport >= cfg_node_port_min() && dport <= cfg_node_port_max()) ||
		       (p->has_ports && is_host_port(p))));
	ret = lb4_tc_fwd(c, false, may_lookup);
	if (ret == -DROP_NO_SERVICE_BACKEND)
		return reject4_no_backend(c, false);
	if (ret < 0)
		return ret;
	if (ret == LB_TRANSLATED)
		return from_netdev_service(c);
	return route4_to_stack(c);
}

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	struct dp_ctx c;
	int ret;

	dp_init(&c, skb, METRIC_DIR_INGRESS);
	ret = dp_parse(&c);
	if (ret == PKT_NOT_IPV4)
		return dp_finish(&c, TC_ACT_OK);
	if (ret == -DROP_FRAG_NOT_SUPPORTED && is_node_addr(c.pkt.daddr))
		return dp_finish(&c, route4_to_stack(&c));
	if (ret < 0)
		return dp_finish(&c, ret);
	return dp_finish(&c, from_netdev4(&c));
}

/* ---- to_netdev --------------------------------------------------------- */

/* Reverse DNAT of the node's own service replies, then masquerade of a pod's
 * packet leaving the node (snat.h has the conditions). */
static __always_inline int to_netdev4(struct dp_ctx *c)
{
	struct pkt4 *p = &c->pkt;
	__be32 nat_addr = CONFIG.node_ip;
	struct nat4_entry *ne;
	struct nat4_key nkey;
	struct ct4_entry *e;
	struct ct4_key key;
	__be16 nat_port;
	int ret;

	c->reason = REASON_FORWARDED;
	/* The node itself answering a service flow from outside (a hostNetwork
	 * backend behind a NodePort, DNATed by from_netdev_service): the client
	 * connected to the frontend, so the reply comes from it. */
	if (p->has_ports && is_node_addr(p->saddr)) {
		ct4_key_rev(&key, p, CT_INGRESS);
		e = ct4_lookup(c, &key);
		if (e && e->rev_nat_index) {
			ct4_account(c, e, CT_DIR_RX);
			ret = lb4_rev_dnat(c, e);
			return ret ?: TC_ACT_OK;
		}
	}
	if (!p->has_ports || !nat_addr || !snat4_masq_wanted(p))
		return TC_ACT_OK;

	nat4_key_fwd(&nkey, p, NAT_DIR_EGRESS);
	ne = bpf_map_lookup_elem(&nat4, &nkey);
	if (ne) {
		if (ne->needed != c->now)
			ne->needed = c->now;
		ret = snat4_apply(c, ne->to_addr, ne->to_port);
		return ret ?: TC_ACT_OK;
	}
	/* A reply of a flow opened towards the pod keeps the pod's address. */
	ct4_key_rev(&key, p, CT_INGRESS);
	if (ct4_lookup(c, &key))
		return TC_ACT_OK;

	ret = snat4_alloc(c, nat_addr, &nat_port);
	if (ret)
		return ret;
	ct4_key_fwd(&key, p, CT_EGRESS);
	e = ct4_lookup(c, &key);
	if (e) {
		e->nat_addr = nat_addr;
		e->nat_port = nat_port;
		e->flags |= CT_F_SNAT;
	} else {
		ret = dp_ct_new(c, CT_EGRESS, CT_F_SNAT, nat_addr, nat_port);
		if (ret)
			return ret;
	}
	ret = snat4_apply(c, nat_addr, nat_port);
	return ret ?: TC_ACT_OK;
}

SEC("tc")
int to_netdev(struct __sk_buff *skb)
{
	struct dp_ctx c;
	int ret;

	dp_init(&c, skb, METRIC_DIR_EGRESS);
	ret = dp_parse(&c);
	if (ret == PKT_NOT_IPV4)
		return dp_finish(&c, TC_ACT_OK);
	/* The node's own fragments (not a pod's) are the stack's business. */
	if (ret == -DROP_FRAG_NOT_SUPPORTED && !snat4_src_is_local_pod(c.pkt.saddr)) {
		c.reason = REASON_FORWARDED;
		return dp_finish(&c, TC_ACT_OK);
	}
	if (ret < 0)
		return dp_finish(&c, ret);
	return dp_finish(&c, to_netdev4(&c));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
