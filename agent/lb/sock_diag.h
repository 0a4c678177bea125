/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket LB termination without bpf_sock_destroy() (kernels before 6.5): the
 * same match as bpf/sock_term.bpf.c, made in userspace over sock_diag
 * (NETLINK_SOCK_DIAG): dump the namespace's connected IPv4 sockets of a
 * protocol, keep those whose remote is a listed backend and whose
 * lb4_sock_rev peer entry (looked up by the socket's cookie) names it and a
 * listed frontend's rev_nat_index (or the item is for any frontend), and
 * send SOCK_DESTROY for each, which the kernel honours with
 * CONFIG_INET_DIAG_DESTROY (ECONNABORTED for the application, as the kfunc).
 * Works in the calling thread's network namespace, like the iterators.
 */
#ifndef AXON_LB_SOCK_DIAG_H
#define AXON_LB_SOCK_DIAG_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "lb/sock_term.h"

/* Does SOCK_DESTROY work here? Destroys a throwaway connected UDP socket of
 * its own: 0, or -errno (-EOPNOTSUPP: CONFIG_INET_DIAG_DESTROY is off). */
int sock_diag_probe(void);

/* Destroy the matching sockets of @proto (IPPROTO_TCP, IPPROTO_UDP) for the
 * (backend, frontend) pairs items[0..n) of that protocol; @rev_fd is lb4_sock_rev. Adds to
 * *destroyed and *failed; returns 0 or the -errno of the dump. */
int sock_diag_destroy(int rev_fd, const struct lb_sock_term_item *items, size_t n, __u8 proto,
		      uint64_t *destroyed, uint64_t *failed);

#endif /* AXON_LB_SOCK_DIAG_H */
