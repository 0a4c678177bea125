/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What happens to flows when a backend leaves the load balancer: socket LB
 * termination and the UDP conntrack purge. Kubernetes' kube-proxy clears the
 * UDP conntrack entries of a removed endpoint; Cilium also destroys the
 * sockets its socket LB connected there ("socket LB termination").
 *
 * Trigger: the reconciler's backend_removed hook (reconcile.h): a backend
 * left one frontend's backend set (removed from that service's endpoints; a
 * terminating backend kept for existing flows has not left, graceful
 * termination ends first), or the frontend went (service deleted: its
 * sockets go too), or the backend was deleted from lb4_backends (any
 * frontend). The pair (backend, frontend rev_nat_index) is the unit: a
 * backend removed from one service but still in another loses the sockets
 * connected through the first only, as Kubernetes expects of an endpoint
 * leaving a Service.
 *
 * The hook only queues the pair. A worker thread, off the reconciler's
 * path, waits SOCK_TERM_COALESCE_MS for the rest of the reconciler's pass to
 * queue, then (usually well within a second) for the whole batch at once:
 *  1. writes the batch into lb4_sock_term and, in every network namespace of
 *     the node (the distinct /proc/<pid>/ns/net, deduplicated by inode; one
 *     it cannot open is skipped), setns()es into it and runs the TCP and UDP
 *     socket iterators (an iterator walks the namespace of its creator), which
 *     destroy the sockets connected to those backends through those
 *     frontends by the socket LB (bpf/sock_term.bpf.c): a blocked recv() or
 *     send() fails with ECONNABORTED, and the application reconnects through
 *     the service. The sock_diag fallback makes the same match in userspace:
 *     it reads lb4_sock_rev by the cookie sock_diag reports;
 *  2. deletes the CT_SERVICE entries in ct4_any of UDP flows whose backend_id
 *     and rev_nat_index are a pair of the batch (rev_nat_index 0: any) (the
 *     tc path's and NodePort's choice of backend),
 *     so a client on a fixed port is sent to a live backend by its next
 *     datagram. The datapath already re-selects for an entry whose backend
 *     left lb4_backends (lb_tc.h); the purge frees the entries at once
 *     instead of at expiry and does not depend on that check. The
 *     per-direction entries of the old flow expire by themselves.
 *
 * A namespace that no process is in (held only by a bind mount) is not
 * visited: nothing in it went through the socket LB, which runs in the
 * connect() of processes in the cgroup. Without bpf_sock_destroy() (kernels
 * before 6.5) the iterators do not load: termination is reported
 * unavailable in status and only the conntrack purge runs.
 */
#ifndef AXON_LB_SOCK_TERM_H
#define AXON_LB_SOCK_TERM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>

#include "lb/reconcile.h"

struct datapath;

/* How long the worker lets a burst of removals gather into one batch. */
#define SOCK_TERM_COALESCE_MS	20

struct lb_sock_term_item {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u32 id;		/* lb4_backends id, for the conntrack purge */
	__u32 rev_nat;		/* the frontend's rev-NAT id; 0: every frontend */
};

struct lb_sock_term_stats {
	bool enabled;		/* the socket LB is on and sockets can be destroyed */
	char mode[16];		/* "bpf" (the iterators) or "sock_diag" (the fallback) */
	char reason[256];	/* why not, when not */
	uint64_t destroyed_tcp, destroyed_udp;	/* sockets destroyed */
	uint64_t failed;	/* bpf_sock_destroy() refused */
	uint64_t backends;	/* (backend, frontend) pairs handled */
	uint64_t runs;		/* batches handled */
	uint64_t netns;		/* namespaces the latest run walked */
	uint64_t ct_deleted;	/* UDP CT_SERVICE entries deleted */
	int last_err;		/* of the latest run; 0: none */
};

struct lb_sock_term {
	/* Set before the worker starts, read only by it. */
	int filter_fd;		/* lb4_sock_term; -1: no termination */
	int link_fd[2];		/* iterator links, SOCK_TERM_TCP/UDP */
	volatile __u64 *destroyed, *failed;	/* the object's counters */
	int rev_fd;		/* lb4_sock_rev, for the fallback; -1: no fallback */
	int ct_any_fd;		/* -1: no conntrack purge */

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool started, stop;
	struct lb_sock_term_item *pending;	/* under lock */
	size_t n_pending, cap_pending;
	struct lb_sock_term_stats stats;	/* under lock */
};

/* Start the worker over @dp's iterators (dp->term; NULL: the sock_diag
 * fallback, dp->term_err says why) and ct4_any. @sock_lb: the socket LB is on. */
int lb_sock_term_start(struct lb_sock_term *t, const struct datapath *dp, bool sock_lb);
void lb_sock_term_stop(struct lb_sock_term *t);

/* The reconciler's backend_removed hook; @ctx is the struct lb_sock_term. */
void lb_sock_term_backend_removed(void *ctx, __u32 rev_nat, const struct lb_backend *b);

/* A copy of the counters, for status and metrics. */
void lb_sock_term_stats(struct lb_sock_term *t, struct lb_sock_term_stats *out);

#endif /* AXON_LB_SOCK_TERM_H */
