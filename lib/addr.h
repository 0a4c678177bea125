/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Printing addresses the way operators read them: "10.96.0.10:53/UDP". */
#ifndef AXON_ADDR_H
#define AXON_ADDR_H

#include <stddef.h>
#include <linux/types.h>

#define ADDR_STR_MAX 32	/* "255.255.255.255:65535/SCTP" + NUL */

const char *proto_name(__u8 proto);
/* addr and port in network order. */
char *format_addr_port(char *buf, size_t len, __be32 addr, __be16 port, __u8 proto);
char *format_addr(char *buf, size_t len, __be32 addr);

#endif /* AXON_ADDR_H */
