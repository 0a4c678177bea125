/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet crafting and checking for BPF_PROG_TEST_RUN tests, header-only.
 *
 * pkt_build() writes one Ethernet frame described by a struct pkt_spec:
 * Ethernet / IPv4 (optionally with options and fragment bits) / TCP, UDP,
 * ICMP echo or an opaque payload for any other protocol, every checksum
 * correct. Tests that need a malformed packet build a good one and break it
 * (pkt_view gives the offsets; pkt_fix_ip_csum() keeps the IP checksum right
 * so only the intended fault remains).
 *
 * pkt_parse() reads a frame back (e.g. a program's data_out) into a pkt_view;
 * pkt_verify() also checks the IP header checksum and the L4 checksum (TCP
 * and UDP over the pseudo header, ICMP over its message) and returns NULL or
 * a sentence saying what is wrong, so a test can print it.
 *
 * Addresses are network order (__be32); ports, EtherType and frag are host
 * order in the spec and the view.
 */
#ifndef AXON_TESTS_PKT_CRAFT_H
#define AXON_TESTS_PKT_CRAFT_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <linux/icmp.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/types.h>
#include <linux/udp.h>

/* TCP header flag bits (byte 13). */
#define PKT_FIN 0x01
#define PKT_SYN 0x02
#define PKT_RST 0x04
#define PKT_PSH 0x08
#define PKT_ACK 0x10

#define PKT_IP_MF      0x2000
#define PKT_IP_DF      0x4000
#define PKT_IP_OFFMASK 0x1fff

#define PKT_TCP_HLEN  20
#define PKT_UDP_HLEN  8
#define PKT_ICMP_HLEN 8
#define PKT_MAX	      1514

struct pkt_spec {
	__u8 src_mac[ETH_ALEN];
	__u8 dst_mac[ETH_ALEN];
	__u16 eth_proto; /* 0: ETH_P_IP; anything else: the frame is just the payload */
	__be32 saddr;
	__be32 daddr;
	__u8 proto;	/* IPPROTO_TCP/UDP/ICMP, or any other (payload follows IP) */
	__u8 ttl;	/* 0: 64 */
	__u8 opt_len;	/* IPv4 option bytes: multiple of 4, <= 40 (NOPs then EOL) */
	__u8 tcp_flags; /* PKT_SYN, ... */
	__u16 frag;	/* IPv4 frag_off field: PKT_IP_MF | offset (8-byte units) */
	__u16 sport;	/* ICMP echo: the identifier */
	__u16 dport;
	__u8 icmp_type;	   /* ICMP_ECHO (default) or ICMP_ECHOREPLY */
	__u16 payload_len; /* bytes after the L4 header (pattern-filled) */
	__u32 seq;	   /* TCP sequence / ICMP echo sequence */
};

struct pkt_view {
	size_t len; /* frame length */
	size_t l3;  /* offset of the IPv4 header (ETH_HLEN) */
	size_t l4;  /* offset of the L4 header */
	__u16 eth_proto;
	struct iphdr *ip; /* NULL unless IPv4 */
	__be32 saddr, daddr;
	__u8 proto;
	__u8 tcp_flags;
	__u16 sport, dport; /* ICMP echo: both are the identifier */
	__u8 icmp_type;
	__u16 frag;
	size_t l4_len; /* tot_len - ihl * 4 */
};

/* ---- checksums ---------------------------------------------------------- */

static inline __u32 pkt_csum_add(__u32 sum, const void *data, size_t len)
{
	const __u8 *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (__u32)p[0] << 8 | p[1];
	if (len)
		sum += (__u32)p[0] << 8;
	return sum;
}

static inline __u16 pkt_csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum; /* host order; store with htons() */
}

/* Sum of the TCP/UDP pseudo header. */
static inline __u32 pkt_pseudo_sum(__be32 saddr, __be32 daddr, __u8 proto, size_t l4_len)
{
	__u32 sum = 0;

	sum = pkt_csum_add(sum, &saddr, 4);
	sum = pkt_csum_add(sum, &daddr, 4);
	sum += proto;
	sum += (__u32)l4_len;
	return sum;
}

static inline void pkt_fix_ip_csum(struct iphdr *ip)
{
	ip->check = 0;
	ip->check = htons(pkt_csum_fold(pkt_csum_add(0, ip, ip->ihl * 4u)));
}

/* Offset of the checksum field inside the L4 header, or -1 if none. */
static inline int pkt_l4_csum_off(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return 16;
	case IPPROTO_UDP:
		return 6;
	case IPPROTO_ICMP:
		return 2;
	default:
		return -1;
	}
}

static inline __u16 pkt_l4_csum(const struct iphdr *ip, const __u8 *l4, size_t l4_len)
{
	__u32 sum = 0;

	if (ip->protocol != IPPROTO_ICMP)
		sum = pkt_pseudo_sum(ip->saddr, ip->daddr, ip->protocol, l4_len);
	return pkt_csum_fold(pkt_csum_add(sum, l4, l4_len));
}

/* Recompute the L4 checksum of an IPv4 frame (after a test edited it). */
static inline void pkt_fix_l4_csum(__u8 *frame, const struct pkt_view *v)
{
	int off = pkt_l4_csum_off(v->proto);
	__u16 csum;

	if (off < 0)
		return;
	memset(frame + v->l4 + off, 0, 2);
	csum = pkt_l4_csum(v->ip, frame + v->l4, v->l4_len);
	if (v->proto == IPPROTO_UDP && !csum)
		csum = 0xffff; /* 0 means "no checksum" in UDP */
	csum = htons(csum);
	memcpy(frame + v->l4 + off, &csum, 2);
}

/* ---- parsing ------------------------------------------------------------ */

/* Read @frame into @v. Returns 0, or -1 if it is not a complete Ethernet/IPv4
 * frame with a complete L4 header (non-IPv4 frames return 0 with v->ip NULL). */
static inline int pkt_parse(__u8 *frame, size_t len, struct pkt_view *v)
{
	const __u8 *l4;
	size_t ihl, tot;
	__u16 be16;

	memset(v, 0, sizeof(*v));
	v->len = len;
	if (len < ETH_HLEN)
		return -1;
	memcpy(&be16, frame + 12, 2);
	v->eth_proto = ntohs(be16);
	if (v->eth_proto != ETH_P_IP)
		return 0;
	v->l3 = ETH_HLEN;
	if (len < v->l3 + sizeof(struct iphdr))
		return -1;
	v->ip = (struct iphdr *)(frame + v->l3);
	ihl = v->ip->ihl * 4u;
	tot = ntohs(v->ip->tot_len);
	if (ihl < sizeof(struct iphdr) || tot < ihl || v->l3 + tot > len)
		return -1;
	v->saddr = v->ip->saddr;
	v->daddr = v->ip->daddr;
	v->proto = v->ip->protocol;
	v->frag = ntohs(v->ip->frag_off);
	v->l4 = v->l3 + ihl;
	v->l4_len = tot - ihl;
	l4 = frame + v->l4;
	switch (v->proto) {
	case IPPROTO_TCP:
		if (v->l4_len < PKT_TCP_HLEN)
			return -1;
		v->tcp_flags = l4[13];
		break;
	case IPPROTO_UDP:
		if (v->l4_len < PKT_UDP_HLEN)
			return -1;
		break;
	case IPPROTO_ICMP:
		if (v->l4_len < PKT_ICMP_HLEN)
			return -1;
		v->icmp_type = l4[0];
		memcpy(&be16, l4 + 4, 2);
		v->sport = v->dport = ntohs(be16);
		return 0;
	default:
		return 0;
	}
	memcpy(&be16, l4, 2);
	v->sport = ntohs(be16);
	memcpy(&be16, l4 + 2, 2);
	v->dport = ntohs(be16);
	return 0;
}

/* Parse @frame and check its checksums. NULL if it is a well-formed IPv4
 * frame with a valid IP header checksum and L4 checksum; else what is wrong. */
static inline const char *pkt_verify(__u8 *frame, size_t len, struct pkt_view *v)
{
	int off;

	if (pkt_parse(frame, len, v))
		return "not a complete Ethernet/IPv4/L4 frame";
	if (!v->ip)
		return "not IPv4";
	if (pkt_csum_fold(pkt_csum_add(0, v->ip, v->ip->ihl * 4u)))
		return "bad IPv4 header checksum";
	off = pkt_l4_csum_off(v->proto);
	if (off < 0 || (v->frag & PKT_IP_OFFMASK) || (v->frag & PKT_IP_MF))
		return NULL;
	if (v->proto == IPPROTO_UDP && !frame[v->l4 + 6] && !frame[v->l4 + 7])
		return NULL; /* UDP without checksum */
	if (pkt_l4_csum(v->ip, frame + v->l4, v->l4_len))
		return v->proto == IPPROTO_TCP	 ? "bad TCP checksum"
		       : v->proto == IPPROTO_UDP ? "bad UDP checksum"
						 : "bad ICMP checksum";
	return NULL;
}

/* ---- building ----------------------------------------------------------- */

static inline size_t pkt_l4_hlen(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return PKT_TCP_HLEN;
	case IPPROTO_UDP:
		return PKT_UDP_HLEN;
	case IPPROTO_ICMP:
		return PKT_ICMP_HLEN;
	default:
		return 0;
	}
}

/* Write the frame @s describes into @buf (@cap bytes). Returns its length, or
 * 0 if it does not fit or the spec is impossible. */
static inline size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap)
{
	__u16 eth_proto = s->eth_proto ? s->eth_proto : ETH_P_IP;
	size_t ihl = sizeof(struct iphdr) + s->opt_len;
	size_t l4h = pkt_l4_hlen(s->proto);
	size_t len, i;
	struct pkt_view v;
	struct iphdr *ip;
	__u8 *l4, *pl;
	__u16 be16;
	__u32 be32;

	if (eth_proto != ETH_P_IP) {
		len = ETH_HLEN + s->payload_len;
		if (len > cap)
			return 0;
		memset(buf, 0, len);
		memcpy(buf, s->dst_mac, ETH_ALEN);
		memcpy(buf + ETH_ALEN, s->src_mac, ETH_ALEN);
		be16 = htons(eth_proto);
		memcpy(buf + 12, &be16, 2);
		for (i = 0; i < s->payload_len; i++)
			buf[ETH_HLEN + i] = (__u8)(i * 7 + 1);
		return len;
	}
	if (s->opt_len % 4 || s->opt_len > 40)
		return 0;
	len = ETH_HLEN + ihl + l4h + s->payload_len;
	if (len > cap)
		return 0;
	memset(buf, 0, len);
	memcpy(buf, s->dst_mac, ETH_ALEN);
	memcpy(buf + ETH_ALEN, s->src_mac, ETH_ALEN);
	be16 = htons(ETH_P_IP);
	memcpy(buf + 12, &be16, 2);

	ip = (struct iphdr *)(buf + ETH_HLEN);
	ip->version = 4;
	ip->ihl = ihl / 4;
	ip->tot_len = htons(ihl + l4h + s->payload_len);
	ip->id = htons(0x1234);
	ip->frag_off = htons(s->frag);
	ip->ttl = s->ttl ? s->ttl : 64;
	ip->protocol = s->proto;
	ip->saddr = s->saddr;
	ip->daddr = s->daddr;
	if (s->opt_len) {
		/* NOPs, then an End of Option List: options a parser must skip. */
		memset((__u8 *)ip + sizeof(*ip), 1, s->opt_len - 1);
		((__u8 *)ip)[ihl - 1] = 0;
	}
	pkt_fix_ip_csum(ip);

	l4 = (__u8 *)ip + ihl;
	pl = l4 + l4h;
	for (i = 0; i < s->payload_len; i++)
		pl[i] = (__u8)(i * 7 + 1);
	switch (s->proto) {
	case IPPROTO_TCP:
		be16 = htons(s->sport);
		memcpy(l4, &be16, 2);
		be16 = htons(s->dport);
		memcpy(l4 + 2, &be16, 2);
		be32 = htonl(s->seq);
		memcpy(l4 + 4, &be32, 4);
		if (s->tcp_flags & PKT_ACK) {
			be32 = htonl(0x1000);
			memcpy(l4 + 8, &be32, 4);
		}
		l4[12] = (PKT_TCP_HLEN / 4) << 4;
		l4[13] = s->tcp_flags;
		be16 = htons(64240);
		memcpy(l4 + 14, &be16, 2);
		break;
	case IPPROTO_UDP:
		be16 = htons(s->sport);
		memcpy(l4, &be16, 2);
		be16 = htons(s->dport);
		memcpy(l4 + 2, &be16, 2);
		be16 = htons(PKT_UDP_HLEN + s->payload_len);
		memcpy(l4 + 4, &be16, 2);
		break;
	case IPPROTO_ICMP:
		l4[0] = s->icmp_type ? s->icmp_type : ICMP_ECHO;
		be16 = htons(s->sport);
		memcpy(l4 + 4, &be16, 2);
		be16 = htons((__u16)s->seq);
		memcpy(l4 + 6, &be16, 2);
		break;
	}
	/* A fragment gets a checksum over its own part: bytes, not meaning. */
	if (!pkt_parse(buf, len, &v))
		pkt_fix_l4_csum(buf, &v);
	return len;
}

#endif /* AXON_TESTS_PKT_CRAFT_H */
