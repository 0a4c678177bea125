/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One-line summaries of the packet bytes a datapath event captured
 * (include/axon/events.h: the first EVENT_CAPTURE_LEN bytes from the Ethernet
 * header), for `agentctl monitor`.
 *
 * The capture is untrusted: the packet was often dropped precisely because its
 * headers are short or wrong, and the capture may be cut anywhere. The parser
 * reads only within [data, data + len), never fails, and says what it could
 * not parse ("[truncated]", "[bad IPv4 header]") instead of guessing.
 */
#ifndef AXON_CLI_PKT_SUMMARY_H
#define AXON_CLI_PKT_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct pkt_summary {
	__u16 ethertype;	/* host order, after VLAN tags; 0 if the L2 header is cut */
	bool ipv4;		/* saddr/daddr/proto valid */
	__be32 saddr, daddr;
	__u8 proto;
	bool fragment;		/* offset != 0 or more-fragments set */
	bool has_ports;		/* sport/dport valid (TCP, UDP, SCTP) */
	__u16 sport, dport;	/* host order */
	bool has_tcp_flags;
	__u8 tcp_flags;
	bool has_icmp;
	__u8 icmp_type, icmp_code;
	bool truncated;		/* the capture ended inside a header */
	bool malformed;		/* a header was inconsistent */
};

/* Parse data[0..len) into *p and write a summary like
 * "10.0.0.1:1234 -> 10.96.0.10:80 tcp SYN" into buf (always terminated). */
void pkt_summarize(const __u8 *data, size_t len, struct pkt_summary *p, char *buf,
		   size_t buflen);

/* "SYN, ACK" for TCP flag bits (FIN SYN RST PSH ACK URG ECE CWR) into buf. */
char *tcp_flags_str(__u8 flags, char *buf, size_t len);

#endif /* AXON_CLI_PKT_SUMMARY_H */
