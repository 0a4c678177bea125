// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

#include "addr.h"

const char *proto_name(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:	return "TCP";
	case IPPROTO_UDP:	return "UDP";
	case IPPROTO_SCTP:	return "SCTP";
	case IPPROTO_ICMP:	return "ICMP";
	case 0:			return "ANY";
	default:		return "?";
	}
}

char *format_addr(char *buf, size_t len, __be32 addr)
{
	struct in_addr in = { .s_addr = addr };

	if (!inet_ntop(AF_INET, &in, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

char *format_addr_port(char *buf, size_t len, __be32 addr, __be16 port, __u8 proto)
{
	char a[INET_ADDRSTRLEN];

	snprintf(buf, len, "%s:%u/%s", format_addr(a, sizeof(a), addr), ntohs(port),
		 proto_name(proto));
	return buf;
}
