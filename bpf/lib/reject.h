/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Refusing a connection to a service that has no backend, as kube-proxy's
 * REJECT rule does: the client learns at once (ECONNREFUSED) instead of
 * retrying into a timeout. The socket LB refuses connect()/sendmsg() itself;
 * this is for packets it did not see (pods with socket LB off, clients
 * outside the node, NodePort and LoadBalancer frontends).
 *
 * The client's packet is rewritten in place into the answer and sent back the
 * way it came:
 *   TCP  a RST (RFC 9293 3.10.7.1): to a segment with ACK, seq = its ack;
 *        otherwise RST|ACK with seq 0 and ack = its seq + its length (SYN
 *        and FIN count one). A RST is never answered.
 *   UDP  an ICMP destination unreachable, port unreachable (code 3), quoting
 *        the datagram's IPv4 header and first 8 bytes (RFC 792), from the
 *        frontend's address, TOS 0xc0 as the kernel's own errors. A datagram
 *        with IPv4 options gets no answer (the quote would be of variable
 *        length).
 * Addresses, ports and MACs are swapped, TTL 64, checksums computed whole.
 * From a pod (from_container) the answer goes into the pod with
 * bpf_redirect_peer() on the device it came in by; from the network
 * (from_netdev) out of that device with bpf_redirect().
 *
 * Rate: at most REJECT_PER_SEC answers per CPU per second (a window per
 * second in reject_limit, counted in event_limit.tokens; those held back in
 * .suppressed), the order of the kernel's own ICMP limit (icmp_msgs_per_sec
 * 1000), so a flood at a dead service cannot turn the node into a reflector.
 *
 * Verdict: an answered packet is counted once as DROP_SVC_NO_BACKEND_REJECTED
 * (the client's packet does not go on) with a drop event carrying the
 * client's packet, taken before the rewrite; dp_finish() sends no second
 * event for it. Anything not answered (no token, a RST, another L4, options,
 * a GSO packet) is the plain DROP_NO_SERVICE_BACKEND drop; a rewrite that
 * fails half way drops the packet as DROP_CSUM_UPDATE.
 */
#ifndef AXON_BPF_REJECT_H
#define AXON_BPF_REJECT_H

#include "common.h"
#include "dp.h"
#include "pkt.h"
#include "notify.h"

#define REJECT_PER_SEC	  1000
#define ICMP_PORT_UNREACH 3
#define REJECT_TTL	  64
#define REJECT_ICMP_TOS	  0xc0
#define REJECT_QUOTE_LEN  (sizeof(struct iphdr) + 8)

/* Answers sent in the current second on this CPU (see above). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct event_limit);
	__uint(max_entries, 1);
} reject_limit SEC(".maps");

struct reject4_tcp {
	struct iphdr ip;
	struct tcphdr tcp;
};

struct reject4_icmp {
	struct iphdr ip;
	struct icmphdr icmp;
	__u8 quote[REJECT_QUOTE_LEN];
};

struct reject4_pseudo {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 proto;
	__be16 len;
};

static __always_inline bool reject4_take_token(const struct dp_ctx *c)
{
	struct event_limit *lim;
	__u32 zero = 0;

	lim = bpf_map_lookup_elem(&reject_limit, &zero);
	if (!lim)
		return false;
	if (lim->last_ns != c->now) {
		lim->last_ns = c->now;
		lim->tokens = 0;
	}
	if (lim->tokens >= REJECT_PER_SEC) {
		lim->suppressed++;
		return false;
	}
	lim->tokens++;
	return true;
}

/* Fold a 32-bit one's complement sum (bpf_csum_diff()'s) into a checksum. */
static __always_inline __sum16 reject_csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__sum16)~s;
}

static __always_inline void reject4_ip(struct iphdr *ip, const struct pkt4 *p, __u16 tot_len,
				       __u8 proto, __u8 tos)
{
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(tot_len);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = REJECT_TTL;
	ip->protocol = proto;
	ip->check = 0;
	ip->saddr = p->daddr;
	ip->daddr = p->saddr;
}

/* Swap the Ethernet addresses, cut or grow the frame to @len and write @hdr
 * (@hdr_len bytes) after the Ethernet header. */
static __always_inline int reject4_write(struct __sk_buff *skb, void *hdr, __u32 hdr_len)
{
	__u8 macs[2 * ETH_ALEN], swapped[2 * ETH_ALEN];

	if (bpf_skb_load_bytes(skb, 0, macs, sizeof(macs)))
		return -DROP_INVALID_HDR;
	__builtin_memcpy(swapped, macs + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(swapped + ETH_ALEN, macs, ETH_ALEN);
	if (bpf_skb_change_tail(skb, ETH_HLEN + hdr_len, 0))
		return -DROP_CSUM_UPDATE;
	if (bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0))
		return -DROP_CSUM_UPDATE;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, hdr, hdr_len, 0))
		return -DROP_CSUM_UPDATE;
	return 0;
}

static __always_inline int reject4_tcp_rst(struct dp_ctx *c)
{
	const struct pkt4 *p = &c->pkt;
	struct reject4_pseudo ph = {};
	struct reject4_tcp out = {};
	struct tcphdr th;
	__u32 seg_len;
	__s64 sum;

	if (bpf_skb_load_bytes(c->skb, p->l4_off, &th, sizeof(th)))
		return -DROP_INVALID_HDR;
	/* Bounded by the parse: doff * 4 fits in tot_len - ihl * 4. */
	seg_len = p->tot_len - (p->l4_off - ETH_HLEN) - th.doff * 4;
	if (th.syn)
		seg_len++;
	if (th.fin)
		seg_len++;

	reject4_ip(&out.ip, p, sizeof(out), IPPROTO_TCP, 0);
	out.tcp.source = p->dport;
	out.tcp.dest = p->sport;
	out.tcp.doff = sizeof(out.tcp) / 4;
	out.tcp.rst = 1;
	if (th.ack) {
		out.tcp.seq = th.ack_seq;
	} else {
		out.tcp.ack = 1;
		out.tcp.ack_seq = bpf_htonl(bpf_ntohl(th.seq) + seg_len);
	}

	ph.saddr = out.ip.saddr;
	ph.daddr = out.ip.daddr;
	ph.proto = IPPROTO_TCP;
	ph.len = bpf_htons(sizeof(out.tcp));
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	if (sum < 0)
		return -DROP_CSUM_UPDATE;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&out.tcp, sizeof(out.tcp), (__u32)sum);
	if (sum < 0)
		return -DROP_CSUM_UPDATE;
	out.tcp.check = reject_csum_fold(sum);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&out.ip, sizeof(out.ip), 0);
	if (sum < 0)
		return -DROP_CSUM_UPDATE;
	out.ip.check = reject_csum_fold(sum);
	return reject4_write(c->skb, &out, sizeof(out));
}

static __always_inline int reject4_icmp_unreach(struct dp_ctx *c)
{
	const struct pkt4 *p = &c->pkt;
	struct reject4_icmp out = {};
	__s64 sum;

	/* The quote: the datagram's IPv4 header and its 8-byte UDP header. */
	if (bpf_skb_load_bytes(c->skb, ETH_HLEN, out.quote, sizeof(out.quote)))
		return -DROP_INVALID_HDR;
	reject4_ip(&out.ip, p, sizeof(out), IPPROTO_ICMP, REJECT_ICMP_TOS);
	out.icmp.type = ICMP_DEST_UNREACH;
	out.icmp.code = ICMP_PORT_UNREACH;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&out.icmp, sizeof(out.icmp) + sizeof(out.quote), 0);
	if (sum < 0)
		return -DROP_CSUM_UPDATE;
	out.icmp.checksum = reject_csum_fold(sum);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&out.ip, sizeof(out.ip), 0);
	if (sum < 0)
		return -DROP_CSUM_UPDATE;
	out.ip.check = reject_csum_fold(sum);
	return reject4_write(c->skb, &out, sizeof(out));
}

/*
 * The packet of @c went to a service with no backend (lb4_tc_fwd() said
 * -DROP_NO_SERVICE_BACKEND): answer it (see the contract above). @to_peer:
 * it came from a pod, answer into the pod. Returns TC_ACT_REDIRECT with
 * c->reason DROP_SVC_NO_BACKEND_REJECTED, or a drop.
 */
static __always_inline int reject4_no_backend(struct dp_ctx *c, bool to_peer)
{
	const struct pkt4 *p = &c->pkt;
	__u32 ifindex = c->skb->ifindex;
	int ret;

	if (p->proto == IPPROTO_TCP) {
		if (p->tcp_flags & TH_RST)
			return -DROP_NO_SERVICE_BACKEND;
	} else if (p->proto != IPPROTO_UDP || p->l4_off != ETH_HLEN + sizeof(struct iphdr)) {
		return -DROP_NO_SERVICE_BACKEND;
	}
	/* A GSO packet (UDP GSO from a pod) would keep its gso_size on the
	 * small answer. */
	if (c->skb->gso_size)
		return -DROP_NO_SERVICE_BACKEND;
	if (!reject4_take_token(c))
		return -DROP_NO_SERVICE_BACKEND;

	notify_event(c, EVENT_DROP, DROP_SVC_NO_BACKEND_REJECTED);
	ret = p->proto == IPPROTO_TCP ? reject4_tcp_rst(c) : reject4_icmp_unreach(c);
	if (ret)
		return ret;
	c->reason = DROP_SVC_NO_BACKEND_REJECTED;
	c->ifindex_out = ifindex;
	ret = to_peer ? bpf_redirect_peer(ifindex, 0) : bpf_redirect(ifindex, 0);
	return ret == TC_ACT_REDIRECT ? ret : -DROP_REDIRECT;
}

#endif /* AXON_BPF_REJECT_H */
