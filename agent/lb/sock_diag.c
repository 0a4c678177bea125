// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket LB termination over sock_diag SOCK_DESTROY (sock_diag.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <bpf/bpf.h>

#include "axon/lb.h"
#include "sock_diag.h"

/* The kernel's TCP states (include/net/tcp_states.h), as sock_diag reports
 * them; a connected UDP socket is ESTABLISHED. */
enum {
	ST_ESTABLISHED = 1, ST_SYN_SENT, ST_SYN_RECV, ST_FIN_WAIT1, ST_FIN_WAIT2, ST_TIME_WAIT,
	ST_CLOSE, ST_CLOSE_WAIT, ST_LAST_ACK, ST_LISTEN, ST_CLOSING,
};

/* An application's connection: not listeners, TIME_WAIT or closed ones. */
#define TCP_STATES                                                                              \
	((1u << ST_ESTABLISHED) | (1u << ST_SYN_SENT) | (1u << ST_SYN_RECV) |                     \
	 (1u << ST_FIN_WAIT1) | (1u << ST_FIN_WAIT2) | (1u << ST_CLOSE_WAIT) |                    \
	 (1u << ST_LAST_ACK) | (1u << ST_CLOSING))

struct diag_req {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 r;
};

static int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	struct timeval tv = {.tv_sec = 5};

	if (fd < 0)
		return -errno;
	/* A kernel that never answers must not hang the worker. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* SOCK_DESTROY of the socket @id names (its cookie included): 0 or -errno. */
static int destroy_one(int fd, __u8 proto, const struct inet_diag_sockid *id)
{
	struct diag_req req = {
		.nlh = {.nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DESTROY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK, .nlmsg_seq = 2},
		.r = {.sdiag_family = AF_INET, .sdiag_protocol = proto, .idiag_states = ~0u,
		      .id = *id},
	};
	_Alignas(struct nlmsghdr) char buf[512];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	ssize_t n;

	if (send(fd, &req, sizeof(req), 0) < 0)
		return -errno;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return -errno;
	if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != NLMSG_ERROR)
		return -EPROTO;
	return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
}

/* Was the socket (@msg) connected by the socket LB to a listed backend
 * through a listed frontend? Its lb4_sock_rev entry, found by the cookie
 * sock_diag reports, names the backend and the frontend's rev_nat_index. */
static bool matches(int rev_fd, const struct inet_diag_msg *msg,
		    const struct lb_sock_term_item *items, size_t n, __u8 proto)
{
	struct lb4_sock_rev_key key = {};
	struct lb4_sock_rev_value fe;
	bool listed = false;

	if (msg->id.idiag_cookie[0] == INET_DIAG_NOCOOKIE)
		return false;
	for (size_t i = 0; i < n && !listed; i++)
		listed = items[i].proto == proto && items[i].addr == msg->id.idiag_dst[0] &&
			 items[i].port == msg->id.idiag_dport;
	if (!listed)
		return false;
	key.cookie = (__u64)msg->id.idiag_cookie[1] << 32 | msg->id.idiag_cookie[0];
	if (bpf_map_lookup_elem(rev_fd, &key, &fe) || fe.backend_address != msg->id.idiag_dst[0] ||
	    fe.backend_port != msg->id.idiag_dport)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (items[i].proto == proto && items[i].addr == fe.backend_address &&
		    items[i].port == fe.backend_port &&
		    (!items[i].rev_nat || items[i].rev_nat == fe.rev_nat_index))
			return true;
	}
	return false;
}

/* Dump @proto's sockets into *out (the ids of the matching ones). */
static int dump_matches(int fd, int rev_fd, const struct lb_sock_term_item *items, size_t n,
			__u8 proto, struct inet_diag_sockid **out, size_t *n_out)
{
	struct diag_req req = {
		.nlh = {.nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1},
		.r = {.sdiag_family = AF_INET, .sdiag_protocol = proto,
		      .idiag_states = proto == IPPROTO_TCP ? TCP_STATES : 1u << ST_ESTABLISHED},
	};
	_Alignas(struct nlmsghdr) char buf[32768];
	size_t cap = 0;

	*out = NULL;
	*n_out = 0;
	if (send(fd, &req, sizeof(req), 0) < 0)
		return -errno;
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (len < 0)
			return -errno;
		for (; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			const struct inet_diag_msg *msg = NLMSG_DATA(h);

			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    !matches(rev_fd, msg, items, n, proto))
				continue;
			if (*n_out == cap) {
				size_t c = cap ? 2 * cap : 16;
				struct inet_diag_sockid *p = realloc(*out, c * sizeof(*p));

				if (!p)
					return -ENOMEM;
				*out = p;
				cap = c;
			}
			(*out)[(*n_out)++] = msg->id;
		}
	}
}

int sock_diag_destroy(int rev_fd, const struct lb_sock_term_item *items, size_t n, __u8 proto,
		      uint64_t *destroyed, uint64_t *failed)
{
	struct inet_diag_sockid *ids = NULL;
	size_t n_ids = 0;
	int fd, err;

	fd = nl_open();
	if (fd < 0)
		return fd;
	/* Destroyed after the dump: a dump in progress owns the socket. */
	err = dump_matches(fd, rev_fd, items, n, proto, &ids, &n_ids);
	for (size_t i = 0; !err && i < n_ids; i++) {
		if (destroy_one(fd, proto, &ids[i]))
			(*failed)++;
		else
			(*destroyed)++;
	}
	free(ids);
	close(fd);
	return err;
}

int sock_diag_probe(void)
{
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(9),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in self;
	socklen_t len = sizeof(self);
	struct inet_diag_sockid id = {};
	__u64 cookie;
	socklen_t clen = sizeof(cookie);
	int s, fd, err;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (void *)&peer, sizeof(peer)) || getsockname(s, (void *)&self, &len) ||
	    getsockopt(s, SOL_SOCKET, SO_COOKIE, &cookie, &clen)) {
		err = -errno;
		close(s);
		return err;
	}
	id.idiag_sport = self.sin_port;
	id.idiag_dport = peer.sin_port;
	id.idiag_src[0] = self.sin_addr.s_addr;
	id.idiag_dst[0] = peer.sin_addr.s_addr;
	id.idiag_cookie[0] = (__u32)cookie;
	id.idiag_cookie[1] = (__u32)(cookie >> 32);
	fd = nl_open();
	err = fd < 0 ? fd : destroy_one(fd, IPPROTO_UDP, &id);
	if (fd >= 0)
		close(fd);
	close(s);
	return err;
}
