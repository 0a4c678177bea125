// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level service load balancer: cgroup v2 sock_addr hooks that turn a
 * connect()/sendmsg() to a service frontend into one to a backend, and show
 * the frontend again in getpeername() and UDP replies. Logic in lib/sock.h.
 *
 * Attach all five to the same cgroup: sock_release is what keeps
 * lb4_sock_rev from growing, so connect4/sendmsg4 without it leak entries.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/sock.h"

/* connect() of TCP and UDP sockets. Runs only on an unconnected socket, so a
 * socket reconnecting after a failed or dissolved connection is translated
 * afresh, and its reverse entry overwritten. */
SEC("cgroup/connect4")
int sock4_connect(struct bpf_sock_addr *ctx)
{
	int err = sock4_xlate_fwd(ctx, true);

	if (err) {
		bpf_set_retval(err);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

/* sendmsg() with a destination address on a UDP socket. */
SEC("cgroup/sendmsg4")
int sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	int err = sock4_xlate_fwd(ctx, false);

	if (err) {
		bpf_set_retval(err);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

/* recvmsg() asking for the source address on a UDP socket. Cannot fail the
 * call (no bpf_set_retval here, and the verifier only accepts 1). */
SEC("cgroup/recvmsg4")
int sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx, false);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int sock4_getpeername(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx, true);
	return SYS_PROCEED;
}

SEC("cgroup/sock_release")
int sock_release(struct bpf_sock *ctx)
{
	sock4_rev_release(ctx);
	return SYS_PROCEED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
