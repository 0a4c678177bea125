/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket LB termination: the contract between the agent and the socket
 * iterators of bpf/sock_term.bpf.c.
 *
 * A connected socket the socket LB translated (connect() to a frontend) talks
 * to its backend directly: its remote address is the backend's, and no later
 * change of the service reaches it. When a backend leaves a frontend (its
 * service's endpoints, or the service is deleted), the agent writes the pair
 * (backend, the frontend's rev_nat_index) into lb4_sock_term and runs the
 * iterators (iter/tcp, iter/udp) in every network namespace; they destroy
 * (bpf_sock_destroy(), ECONNABORTED for the application) each socket whose
 * remote is a listed backend and whose lb4_sock_rev peer entry names that
 * backend and that rev_nat_index, i.e. a socket the socket LB connected there
 * through that frontend. A socket through another service to the same backend
 * stays. rev_nat_index 0 lists the backend for every frontend (it left the
 * load balancer). A socket that connected to the pod address itself is left
 * alone. The agent empties the map after the run.
 */
#ifndef AXON_SOCK_TERM_H
#define AXON_SOCK_TERM_H

#include "types.h"

#define MAP_LB4_SOCK_TERM	"lb4_sock_term"

/* (backend, frontend) pairs at once, at most (the agent splits larger sets). */
#define SOCK_TERM_MAX		1024

struct sock_term_key {
	__be32 address;		/* backend IPv4 */
	__be16 port;		/* backend L4 port */
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
	__u32 rev_nat_index;	/* the frontend's lb4_reverse_nat id; 0: any */
};

/* Indexes of the iterators' counters (sock_term.bpf.c's globals). */
#define SOCK_TERM_TCP	0
#define SOCK_TERM_UDP	1

#endif /* AXON_SOCK_TERM_H */
