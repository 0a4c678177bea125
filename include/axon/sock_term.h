/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket LB termination: the contract between the agent and the socket
 * iterators of bpf/sock_term.bpf.c.
 *
 * A connected socket the socket LB translated (connect() to a frontend) talks
 * to its backend directly: its remote address is the backend's, and no later
 * change of the service reaches it. When a backend leaves the load balancer,
 * the agent writes it into lb4_sock_term and runs the iterators (iter/tcp,
 * iter/udp) in every network namespace; they destroy (bpf_sock_destroy(),
 * ECONNABORTED for the application) each socket whose remote is a listed
 * backend and whose lb4_sock_rev peer entry names that backend, i.e. a socket
 * the socket LB connected there. A socket that connected to the pod address
 * itself is left alone. The agent empties the map after the run.
 */
#ifndef AXON_SOCK_TERM_H
#define AXON_SOCK_TERM_H

#include "types.h"

#define MAP_LB4_SOCK_TERM	"lb4_sock_term"

/* Backends deleted at once, at most (the agent splits larger sets). */
#define SOCK_TERM_MAX		1024

struct sock_term_key {
	__be32 address;		/* backend IPv4 */
	__be16 port;		/* backend L4 port */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

/* Indexes of the iterators' counters (sock_term.bpf.c's globals). */
#define SOCK_TERM_TCP	0
#define SOCK_TERM_UDP	1

#endif /* AXON_SOCK_TERM_H */
