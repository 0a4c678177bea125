/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 packet parsing and L3/L4 rewriting for the tc programs.
 *
 * Contract:
 * - pkt4_parse() reads the Ethernet, IPv4 and L4 headers once into a
 *   struct pkt4 of values (no packet pointers survive it, so the rewrites
 *   below, which invalidate packet pointers, never leave one dangling).
 *   It returns 0 for a parsed IPv4 packet, PKT_NOT_IPV4 for any other
 *   EtherType (the caller hands those to the stack), or a negative drop:
 *     -DROP_INVALID_HDR         frame < 14 bytes, IPv4 version != 4,
 *                               ihl < 5, tot_len < ihl * 4, tot_len beyond
 *                               the frame, truncated TCP/UDP/ICMP header,
 *                               TCP doff < 5;
 *     -DROP_FRAG_NOT_SUPPORTED  MF set or a fragment offset (Axon keeps no
 *                               fragment state; the L3 fields are filled in
 *                               and p->frag set, so a caller may still pass
 *                               the fragment on where no L4 is needed).
 *   IPv4 options are skipped: L4 is read at ihl * 4.
 * - Ports: TCP/UDP ports; ICMP echo request/reply carry the echo identifier
 *   in both sport and dport (it plays the port for conntrack and NAT); any
 *   other L4 has ports 0 and has_ports 0.
 * - The rewrites keep the IPv4 header checksum and the L4 checksum valid
 *   (bpf_l3/l4_csum_replace, BPF_F_PSEUDO_HDR for addresses, a UDP checksum
 *   of 0 stays 0) and update struct pkt4 to match. They return 0 or
 *   -DROP_CSUM_UPDATE.
 */
#ifndef AXON_BPF_PKT_H
#define AXON_BPF_PKT_H

#include "common.h"

#ifndef offsetof
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif

#ifndef TC_ACT_OK
#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT 7
#endif

#define ETH_HLEN 14
#define ETH_ALEN 6
#define ETH_P_IP 0x0800
#define AF_INET	 2

#define IPPROTO_ICMP	   1
#define ICMP_ECHOREPLY	   0
#define ICMP_ECHO	   8
#define ICMP_DEST_UNREACH  3
#define ICMP_TIME_EXCEEDED 11

#define IP_MF	  0x2000
#define IP_OFFSET 0x1fff

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

/* pkt4_parse(): not an IPv4 frame (positive, never a TC_ACT_* the programs return). */
#define PKT_NOT_IPV4 0x100

#define IP4_OFF_CHECK (ETH_HLEN + offsetof(struct iphdr, check))
#define IP4_OFF_SADDR (ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP4_OFF_DADDR (ETH_HLEN + offsetof(struct iphdr, daddr))

struct pkt4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;	/* ICMP echo: identifier */
	__be16 dport;	/* ICMP echo: identifier */
	__u16 l4_off;	/* from the start of the frame: 14 + ihl * 4 */
	__u16 tot_len;	/* IPv4 total length, host order */
	__u8 proto;	/* IPPROTO_* */
	__u8 tcp_flags; /* TH_* of a TCP segment */
	__u8 has_ports; /* TCP, UDP, ICMP echo */
	__u8 tos;
	__u8 frag;	/* a fragment (only set when parse returned the frag drop) */
	__u8 icmp_type; /* ICMP: the message type */
	__u8 ttl;
	__u8 pad;
};

/* skb->data and skb->data_end, loaded at their own offsets: clang may
 * otherwise keep &skb->data in a register and load through it, which the
 * verifier refuses (a modified ctx pointer). */
static __always_inline void *ctx_data(const struct __sk_buff *skb)
{
	void *ptr;

	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(ptr)
		     : "r"(skb), "i"(offsetof(struct __sk_buff, data)));
	return ptr;
}

static __always_inline void *ctx_data_end(const struct __sk_buff *skb)
{
	void *ptr;

	asm volatile("%0 = *(u32 *)(%1 + %2)"
		     : "=r"(ptr)
		     : "r"(skb), "i"(offsetof(struct __sk_buff, data_end)));
	return ptr;
}

/* Make the first @len bytes directly readable, pulling a non-linear skb. */
static __always_inline int pkt_ensure(struct __sk_buff *skb, __u32 len)
{
	if (ctx_data(skb) + len <= ctx_data_end(skb))
		return 0;
	if (skb->len < len)
		return -DROP_INVALID_HDR;
	if (bpf_skb_pull_data(skb, len))
		return -DROP_INVALID_HDR;
	return 0;
}

static __always_inline int pkt4_parse(struct __sk_buff *skb, struct pkt4 *p)
{
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 ihl_len, l4_need, l3_len;
	__u8 *l4;

	__builtin_memset(p, 0, sizeof(*p));
	if (pkt_ensure(skb, ETH_HLEN))
		return -DROP_INVALID_HDR;
	data = ctx_data(skb);
	data_end = ctx_data_end(skb);
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return -DROP_INVALID_HDR;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PKT_NOT_IPV4;

	if (pkt_ensure(skb, ETH_HLEN + sizeof(struct iphdr)))
		return -DROP_INVALID_HDR;
	data = ctx_data(skb);
	data_end = ctx_data_end(skb);
	ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end)
		return -DROP_INVALID_HDR;
	if (ip->version != 4 || ip->ihl < 5)
		return -DROP_INVALID_HDR;
	ihl_len = ip->ihl * 4;
	l3_len = bpf_ntohs(ip->tot_len);
	/* BIG TCP: a GSO packet over 64 KiB carries tot_len 0. */
	if (!l3_len && skb->gso_size)
		l3_len = skb->len - ETH_HLEN;
	if (l3_len < ihl_len || l3_len > skb->len - ETH_HLEN)
		return -DROP_INVALID_HDR;

	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;
	p->tos = ip->tos;
	p->ttl = ip->ttl;
	p->tot_len = l3_len;
	p->l4_off = ETH_HLEN + ihl_len;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		p->frag = 1;
		return -DROP_FRAG_NOT_SUPPORTED;
	}

	switch (p->proto) {
	case IPPROTO_TCP:
		l4_need = sizeof(struct tcphdr);
		break;
	case IPPROTO_UDP:
		l4_need = sizeof(struct udphdr);
		break;
	case IPPROTO_ICMP:
		l4_need = 8;
		break;
	default:
		return 0;
	}
	if (ihl_len + l4_need > l3_len)
		return -DROP_INVALID_HDR;
	if (pkt_ensure(skb, ETH_HLEN + ihl_len + l4_need))
		return -DROP_INVALID_HDR;

	data = ctx_data(skb);
	data_end = ctx_data_end(skb);
	/* ihl_len is 20..60: a bounded variable offset for the verifier. */
	l4 = data + ETH_HLEN + (ihl_len & 0x3c);
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;

		if ((void *)(th + 1) > data_end)
			return -DROP_INVALID_HDR;
		if (th->doff < 5 || ihl_len + th->doff * 4 > l3_len)
			return -DROP_INVALID_HDR;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		p->has_ports = 1;
	} else if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)l4;

		if ((void *)(uh + 1) > data_end)
			return -DROP_INVALID_HDR;
		p->sport = uh->source;
		p->dport = uh->dest;
		p->has_ports = 1;
	} else {
		struct icmphdr *ih = (void *)l4;

		if ((void *)ih + 8 > data_end)
			return -DROP_INVALID_HDR;
		p->icmp_type = ih->type;
		if (ih->type == ICMP_ECHO || ih->type == ICMP_ECHOREPLY) {
			p->sport = ih->un.echo.id;
			p->dport = ih->un.echo.id;
			p->has_ports = 1;
		}
	}
	return 0;
}

/* Offset of the L4 checksum, 0 when there is none to fix. */
static __always_inline __u32 pkt4_l4_csum_off(const struct pkt4 *p)
{
	switch (p->proto) {
	case IPPROTO_TCP:
		return p->l4_off + offsetof(struct tcphdr, check);
	case IPPROTO_UDP:
		return p->l4_off + offsetof(struct udphdr, check);
	case IPPROTO_ICMP:
		return p->l4_off + offsetof(struct icmphdr, checksum);
	}
	return 0;
}

/* Rewrite the source (@src) or destination address to @addr. */
static __always_inline int pkt4_set_addr(struct __sk_buff *skb, struct pkt4 *p, bool src,
					 __be32 addr)
{
	__be32 old = src ? p->saddr : p->daddr;
	__u32 csum_off, flags;

	if (old == addr)
		return 0;
	/* TCP and UDP checksum the pseudo header; ICMP does not. */
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
		csum_off = pkt4_l4_csum_off(p);
		flags = BPF_F_PSEUDO_HDR | sizeof(addr);
		if (p->proto == IPPROTO_UDP)
			flags |= BPF_F_MARK_MANGLED_0;
		if (bpf_l4_csum_replace(skb, csum_off, old, addr, flags))
			return -DROP_CSUM_UPDATE;
	}
	if (bpf_l3_csum_replace(skb, IP4_OFF_CHECK, old, addr, sizeof(addr)))
		return -DROP_CSUM_UPDATE;
	if (bpf_skb_store_bytes(skb, src ? IP4_OFF_SADDR : IP4_OFF_DADDR, &addr, sizeof(addr), 0))
		return -DROP_CSUM_UPDATE;
	if (src)
		p->saddr = addr;
	else
		p->daddr = addr;
	return 0;
}

/* Rewrite the source (@src) or destination port to @port; for ICMP echo the
 * identifier, which is both. No-op for an L4 without ports. */
static __always_inline int pkt4_set_port(struct __sk_buff *skb, struct pkt4 *p, bool src,
					 __be16 port)
{
	__be16 old = src ? p->sport : p->dport;
	__u32 off, flags = sizeof(port);

	if (old == port || !p->has_ports)
		return 0;
	switch (p->proto) {
	case IPPROTO_TCP:
		off = p->l4_off + (src ? 0 : 2);
		break;
	case IPPROTO_UDP:
		off = p->l4_off + (src ? 0 : 2);
		flags |= BPF_F_MARK_MANGLED_0;
		break;
	default:
		off = p->l4_off + offsetof(struct icmphdr, un.echo.id);
		break;
	}
	if (bpf_l4_csum_replace(skb, pkt4_l4_csum_off(p), old, port, flags))
		return -DROP_CSUM_UPDATE;
	if (bpf_skb_store_bytes(skb, off, &port, sizeof(port), 0))
		return -DROP_CSUM_UPDATE;
	if (p->proto == IPPROTO_ICMP) {
		p->sport = port;
		p->dport = port;
	} else if (src) {
		p->sport = port;
	} else {
		p->dport = port;
	}
	return 0;
}

/* Decrement the TTL of a packet routed on to another host (checksum fixed). */
static __always_inline int pkt4_dec_ttl(struct __sk_buff *skb, struct pkt4 *p)
{
	/* TTL and protocol share the 16-bit word the checksum sees. */
	__be16 old = bpf_htons(((__u16)p->ttl << 8) | p->proto);
	__be16 new = bpf_htons(((__u16)(p->ttl - 1) << 8) | p->proto);
	__u8 ttl = p->ttl - 1;

	if (bpf_l3_csum_replace(skb, IP4_OFF_CHECK, old, new, sizeof(new)))
		return -DROP_CSUM_UPDATE;
	if (bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &ttl, 1, 0))
		return -DROP_CSUM_UPDATE;
	p->ttl = ttl;
	return 0;
}

/* Rewrite source address and port together (SNAT, reverse DNAT). */
static __always_inline int pkt4_set_src(struct __sk_buff *skb, struct pkt4 *p, __be32 addr,
					__be16 port)
{
	int ret = pkt4_set_addr(skb, p, true, addr);

	if (ret)
		return ret;
	return pkt4_set_port(skb, p, true, port);
}

/* Rewrite destination address and port together (DNAT, reverse SNAT). */
static __always_inline int pkt4_set_dst(struct __sk_buff *skb, struct pkt4 *p, __be32 addr,
					__be16 port)
{
	int ret = pkt4_set_addr(skb, p, false, addr);

	if (ret)
		return ret;
	return pkt4_set_port(skb, p, false, port);
}

/*
 * The packet an ICMP error (destination unreachable, time exceeded) in @p
 * quotes, when it is one this host sent (its source is the error's
 * destination): its IPv4 header (no options) into @inner, its ports into
 * @ports (ICMP echo: the identifier as both), the offset of the quoted L4
 * header in *@l4_off and of its source port (echo: identifier) in *@port_off.
 * Returns 0, or -1 if @p is no such error or the quote is not TCP, UDP or
 * ICMP echo.
 */
static __always_inline int pkt4_icmp_error_quote(struct __sk_buff *skb, const struct pkt4 *p,
						 struct iphdr *inner, __be16 ports[2],
						 __u32 *l4_off, __u32 *port_off)
{
	__u32 in_off = p->l4_off + sizeof(struct icmphdr);

	if (p->proto != IPPROTO_ICMP || p->has_ports)
		return -1;
	if (p->icmp_type != ICMP_DEST_UNREACH && p->icmp_type != ICMP_TIME_EXCEEDED)
		return -1;
	if (bpf_skb_load_bytes(skb, in_off, inner, sizeof(*inner)))
		return -1;
	if (inner->version != 4 || inner->ihl != 5 || inner->saddr != p->daddr)
		return -1;
	*l4_off = in_off + sizeof(*inner);
	*port_off = *l4_off;
	if (inner->protocol == IPPROTO_ICMP)
		*port_off += offsetof(struct icmphdr, un.echo.id);
	else if (inner->protocol != IPPROTO_TCP && inner->protocol != IPPROTO_UDP)
		return -1;
	if (bpf_skb_load_bytes(skb, *port_off, ports, 2 * sizeof(ports[0])))
		return -1;
	if (inner->protocol == IPPROTO_ICMP)
		ports[1] = ports[0];
	return 0;
}

#endif /* AXON_BPF_PKT_H */
