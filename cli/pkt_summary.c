// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pkt_summary.h"

#define ETH_HDR_LEN	14
#define VLAN_HDR_LEN	4
#define IPV4_HDR_MIN	20
#define IPV6_HDR_LEN	40
#define ETHERTYPE_IPV4	0x0800
#define ETHERTYPE_ARP	0x0806
#define ETHERTYPE_VLAN	0x8100
#define ETHERTYPE_QINQ	0x88a8
#define ETHERTYPE_IPV6	0x86dd
#define IPV4_MF		0x2000
#define IPV4_OFFSET	0x1fff

/* Appending to a fixed buffer: output is cut, never overflowed. */
struct out {
	char *buf;
	size_t len, off;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->len == 0 || o->off >= o->len - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->off, o->len - o->off, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->off = o->off + n < o->len ? o->off + n : o->len - 1;
}

static __u16 get16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

char *tcp_flags_str(__u8 flags, char *buf, size_t len)
{
	static const char *const names[] = { "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE",
					     "CWR" };
	struct out o = { buf, len, 0 };

	if (len)
		buf[0] = '\0';
	for (int i = 0; i < 8; i++)
		if (flags & (1 << i))
			put(&o, "%s%s", o.off ? ", " : "", names[i]);
	return buf;
}

static const char *icmp_type_name(__u8 type)
{
	switch (type) {
	case 0:		return "EchoReply";
	case 3:		return "DestinationUnreachable";
	case 5:		return "Redirect";
	case 8:		return "EchoRequest";
	case 11:	return "TimeExceeded";
	default:	return NULL;
	}
}

static const char *l4_name(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:	return "tcp";
	case IPPROTO_UDP:	return "udp";
	case IPPROTO_SCTP:	return "sctp";
	case IPPROTO_ICMP:	return "icmp";
	default:		return NULL;
	}
}

/* After the IPv4 header: ports, TCP flags or ICMP type, as far as captured. */
static void summarize_l4(const __u8 *l4, size_t len, bool first_frag, struct pkt_summary *p,
			 struct out *o)
{
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], flags[48];
	struct in_addr s = { .s_addr = p->saddr }, d = { .s_addr = p->daddr };
	const char *name = l4_name(p->proto);
	bool ports = p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP ||
		     p->proto == IPPROTO_SCTP;

	inet_ntop(AF_INET, &s, a, sizeof(a));
	inet_ntop(AF_INET, &d, b, sizeof(b));
	if (ports && first_frag && len >= 4) {
		p->has_ports = true;
		p->sport = get16(l4);
		p->dport = get16(l4 + 2);
		put(o, "%s:%u -> %s:%u %s", a, p->sport, b, p->dport, name);
	} else {
		put(o, "%s -> %s ", a, b);
		if (name)
			put(o, "%s", name);
		else
			put(o, "proto %u", p->proto);
	}
	if (!first_frag) {
		put(o, " [fragment]");
		return;
	}
	if (p->proto == IPPROTO_TCP) {
		/* flags live in byte 13 of the TCP header */
		if (len < 14) {
			p->truncated = true;
			put(o, " [truncated]");
			return;
		}
		p->has_tcp_flags = true;
		p->tcp_flags = l4[13];
		put(o, " %s", p->tcp_flags ? tcp_flags_str(p->tcp_flags, flags, sizeof(flags))
					   : "[no flags]");
	} else if (p->proto == IPPROTO_ICMP) {
		const char *t;

		if (len < 2) {
			p->truncated = true;
			put(o, " [truncated]");
			return;
		}
		p->has_icmp = true;
		p->icmp_type = l4[0];
		p->icmp_code = l4[1];
		t = icmp_type_name(p->icmp_type);
		if (t)
			put(o, " %s", t);
		else
			put(o, " type %u", p->icmp_type);
		if (p->icmp_code)
			put(o, " code %u", p->icmp_code);
		if ((p->icmp_type == 0 || p->icmp_type == 8) && len >= 6)
			put(o, " id=%u", get16(l4 + 4));
	} else if (ports && len < 4) {
		p->truncated = true;
		put(o, " [truncated]");
	}
	if (p->fragment)
		put(o, " [fragment]");
}

static void summarize_ipv4(const __u8 *ip, size_t len, struct pkt_summary *p, struct out *o)
{
	size_t ihl, tot;
	__u16 frag;

	if (len < IPV4_HDR_MIN) {
		p->truncated = true;
		put(o, "IPv4 [truncated: %zu of %d header bytes]", len, IPV4_HDR_MIN);
		return;
	}
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	if (ip[0] >> 4 != 4 || ihl < IPV4_HDR_MIN) {
		p->malformed = true;
		put(o, "IPv4 [bad header: version %u ihl %u]", ip[0] >> 4, ip[0] & 0x0f);
		return;
	}
	p->ipv4 = true;
	memcpy(&p->saddr, ip + 12, 4);
	memcpy(&p->daddr, ip + 16, 4);
	p->proto = ip[9];
	frag = get16(ip + 6);
	p->fragment = frag & (IPV4_MF | IPV4_OFFSET);
	tot = get16(ip + 2);
	if (ihl > len) {
		/* Options cut by the capture: addresses are known, L4 is not. */
		struct in_addr s = { .s_addr = p->saddr }, d = { .s_addr = p->daddr };
		char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];

		p->truncated = true;
		inet_ntop(AF_INET, &s, a, sizeof(a));
		inet_ntop(AF_INET, &d, b, sizeof(b));
		put(o, "%s -> %s proto %u [truncated]", a, b, p->proto);
		return;
	}
	/* Bytes past tot_len are padding, not L4; a tot_len shorter than the
	 * header is itself the malformation worth showing. */
	if (tot < ihl) {
		p->malformed = true;
		summarize_l4(ip + ihl, 0, !(frag & IPV4_OFFSET), p, o);
		put(o, " [bad total length %zu]", tot);
		return;
	}
	summarize_l4(ip + ihl, (tot < len ? tot : len) - ihl, !(frag & IPV4_OFFSET), p, o);
	if (ihl > IPV4_HDR_MIN)
		put(o, " [IP options]");
}

static void summarize_ipv6(const __u8 *ip, size_t len, struct out *o)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

	if (len < IPV6_HDR_LEN) {
		put(o, "IPv6 [truncated]");
		return;
	}
	inet_ntop(AF_INET6, ip + 8, a, sizeof(a));
	inet_ntop(AF_INET6, ip + 24, b, sizeof(b));
	put(o, "IPv6 %s -> %s next-header %u", a, b, ip[6]);
}

void pkt_summarize(const __u8 *data, size_t len, struct pkt_summary *p, char *buf,
		   size_t buflen)
{
	struct out o = { buf, buflen, 0 };
	size_t off = ETH_HDR_LEN;
	__u16 type;

	memset(p, 0, sizeof(*p));
	if (buflen)
		buf[0] = '\0';
	if (len == 0) {
		put(&o, "[no packet bytes captured]");
		return;
	}
	if (len < ETH_HDR_LEN) {
		p->truncated = true;
		put(&o, "[truncated Ethernet header: %zu bytes]", len);
		return;
	}
	type = get16(data + 12);
	/* At most two tags (802.1ad + 802.1Q); more is not a packet we route. */
	for (int tags = 0; tags < 2 && (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ);
	     tags++) {
		if (len < off + VLAN_HDR_LEN) {
			p->truncated = true;
			put(&o, "VLAN [truncated]");
			return;
		}
		type = get16(data + off + 2);
		off += VLAN_HDR_LEN;
	}
	p->ethertype = type;
	switch (type) {
	case ETHERTYPE_IPV4:
		summarize_ipv4(data + off, len - off, p, &o);
		break;
	case ETHERTYPE_IPV6:
		summarize_ipv6(data + off, len - off, &o);
		break;
	case ETHERTYPE_ARP:
		put(&o, "ARP");
		break;
	default:
		put(&o, "ethertype 0x%04x", type);
	}
}
