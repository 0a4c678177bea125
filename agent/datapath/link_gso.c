// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Link GSO/GRO/TSO limits over rtnetlink with libnl-3's message API (see
 * link_gso.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/handlers.h>
#include <netlink/socket.h>

#include "link_gso.h"
#include "nl_errno.h"

/* ---- one request, its replies, and the kernel's verdict ---- */

struct exchange {
	int (*parse)(struct nl_msg *msg, void *arg); /* each reply message */
	void *arg;
	bool done; /* the ACK or the error arrived */
	int err;   /* the kernel's errno, negative; 0 = acknowledged */
	char *why; /* its extended-ack text, when asked for and given */
	size_t whylen;
};

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct exchange *x = arg;

	return x->parse ? x->parse(msg, x->arg) : NL_OK;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
	struct exchange *x = arg;

	(void)msg;
	x->done = true;
	return NL_STOP;
}

/* The text the kernel attached to an error (NLMSGERR_ATTR_MSG), if any. */
static void extack_text(const struct nlmsgerr *e, char *buf, size_t len)
{
	const struct nlmsghdr *h = (const void *)((const char *)e - NLMSG_HDRLEN);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = sizeof(*e);

	if (!buf || !len || !(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	/* Unless capped, the request itself is echoed before the TLVs. */
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	if (h->nlmsg_len < NLMSG_HDRLEN + off)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)e + off),
		      h->nlmsg_len - NLMSG_HDRLEN - off, NULL))
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(buf, len, "%.*s", nla_len(tb[NLMSGERR_ATTR_MSG]),
			 (const char *)nla_data(tb[NLMSGERR_ATTR_MSG]));
}

static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct exchange *x = arg;

	(void)nla;
	x->done = true;
	x->err = e->error < 0 ? e->error : -EIO;
	extack_text(e, x->why, x->whylen);
	return NL_STOP;
}

/* Send @msg (freed here) and read until the kernel acknowledged it or
 * refused it: libnl asks for an ACK on every request, so a socket kept open
 * has nothing left over for the next exchange. */
static int transact(struct nl_sock *sk, struct nl_msg *msg, struct exchange *x)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int err;

	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, x);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, x);
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, x);
	err = nl_send_auto(sk, msg);
	nlmsg_free(msg);
	while (err >= 0 && !x->done)
		err = nl_recvmsgs(sk, cb);
	nl_cb_put(cb);
	if (x->err)
		return x->err;
	return err < 0 ? nl_errno(err) : 0;
}

/* ---- sockets ---- */

int link_gso_open(struct nl_sock **out)
{
	struct nl_sock *sk = nl_socket_alloc();
	int one = 1;

	if (!sk)
		return -ENOMEM;
	if (nl_connect(sk, NETLINK_ROUTE)) {
		nl_socket_free(sk);
		return -EIO;
	}
	/* The kernel's reason for a refusal ("too big gso_ipv4_max_size"). */
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	*out = sk;
	return 0;
}

void link_gso_close(struct nl_sock *sk)
{
	if (sk)
		nl_socket_free(sk);
}

/* ---- reading a link ---- */

static int link_parse(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[AXON_IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1];
	struct link_gso *out = arg;
	struct ifinfomsg *ifi;

	if (h->nlmsg_type != RTM_NEWLINK || nlmsg_parse(h, sizeof(*ifi), tb, AXON_IFLA_MAX, NULL))
		return NL_SKIP;
	ifi = nlmsg_data(h);
	memset(out, 0, sizeof(*out));
	out->ifindex = ifi->ifi_index;
	out->peer_netnsid = -1;
	if (tb[IFLA_IFNAME])
		nla_strlcpy(out->name, tb[IFLA_IFNAME], sizeof(out->name));
	if (tb[AXON_IFLA_GSO_IPV4_MAX_SIZE])
		out->gso_ipv4_max = nla_get_u32(tb[AXON_IFLA_GSO_IPV4_MAX_SIZE]);
	if (tb[AXON_IFLA_GRO_IPV4_MAX_SIZE])
		out->gro_ipv4_max = nla_get_u32(tb[AXON_IFLA_GRO_IPV4_MAX_SIZE]);
	if (tb[AXON_IFLA_TSO_MAX_SIZE])
		out->tso_max = nla_get_u32(tb[AXON_IFLA_TSO_MAX_SIZE]);
	if (tb[IFLA_LINKINFO] && !nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) &&
	    info[IFLA_INFO_KIND])
		out->veth = !strcmp(nla_get_string(info[IFLA_INFO_KIND]), "veth");
	if (tb[IFLA_LINK])
		out->peer_ifindex = nla_get_u32(tb[IFLA_LINK]);
	if (tb[IFLA_LINK_NETNSID])
		out->peer_netnsid = nla_get_s32(tb[IFLA_LINK_NETNSID]);
	return NL_OK;
}

int link_gso_read(struct nl_sock *sk, int netnsid, int ifindex, struct link_gso *out)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
	struct exchange x = {.parse = link_parse, .arg = out};
	struct nl_msg *msg;
	int err;

	memset(out, 0, sizeof(*out));
	msg = nlmsg_alloc_simple(RTM_GETLINK, 0);
	if (!msg)
		return -ENOMEM;
	err = nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
	if (!err && netnsid >= 0)
		err = nla_put_s32(msg, IFLA_TARGET_NETNSID, netnsid);
	if (err) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	err = transact(sk, msg, &x);
	if (err)
		return err;
	return out->ifindex == ifindex ? 0 : -ENODEV;
}

/* ---- changing a link ---- */

int link_gso_set_ipv4(struct nl_sock *sk, int ifindex, __u32 size, char *why, size_t whylen)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
	struct exchange x = {.why = why, .whylen = whylen};
	struct nl_msg *msg;
	int err;

	if (why && whylen)
		why[0] = '\0';
	msg = nlmsg_alloc_simple(RTM_NEWLINK, 0);
	if (!msg)
		return -ENOMEM;
	err = nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO);
	if (!err)
		err = nla_put_u32(msg, AXON_IFLA_GSO_IPV4_MAX_SIZE, size);
	if (!err)
		err = nla_put_u32(msg, AXON_IFLA_GRO_IPV4_MAX_SIZE, size);
	if (err) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	return transact(sk, msg, &x);
}

/* ---- finding a namespace by its id ---- */

static int nsid_parse(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[NETNSA_MAX + 1];
	int *nsid = arg;

	if (h->nlmsg_type != RTM_NEWNSID ||
	    nlmsg_parse(h, sizeof(struct rtgenmsg), tb, NETNSA_MAX, NULL) || !tb[NETNSA_NSID])
		return NL_SKIP;
	*nsid = nla_get_s32(tb[NETNSA_NSID]);
	return NL_OK;
}

/* The id @sk's namespace knows the namespace of @fd by; -1 when it has none
 * (asking does not assign one). */
static int nsid_of_fd(struct nl_sock *sk, int fd)
{
	struct rtgenmsg g = {.rtgen_family = AF_UNSPEC};
	int nsid = NETNSA_NSID_NOT_ASSIGNED;
	struct exchange x = {.parse = nsid_parse, .arg = &nsid};
	struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETNSID, 0);

	if (!msg)
		return NETNSA_NSID_NOT_ASSIGNED;
	if (nlmsg_append(msg, &g, sizeof(g), NLMSG_ALIGNTO) || nla_put_u32(msg, NETNSA_FD, fd)) {
		nlmsg_free(msg);
		return NETNSA_NSID_NOT_ASSIGNED;
	}
	return transact(sk, msg, &x) ? NETNSA_NSID_NOT_ASSIGNED : nsid;
}

/* Namespaces already asked about in one search (many processes share one). */
struct ns_seen {
	ino_t *ino;
	size_t n, cap;
};

static bool ns_seen_add(struct ns_seen *s, ino_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->ino[i] == ino)
			return false;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		ino_t *p = realloc(s->ino, cap * sizeof(*p));

		if (!p)
			return true; /* ask again rather than skip it */
		s->ino = p;
		s->cap = cap;
	}
	s->ino[s->n++] = ino;
	return true;
}

/* An fd of the namespace at @path when its id (from @sk's) is @want, else -1. */
static int ns_try(struct nl_sock *sk, const char *path, int want, struct ns_seen *seen)
{
	struct stat st;
	int fd;

	if (stat(path, &st) || !ns_seen_add(seen, st.st_ino))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (nsid_of_fd(sk, fd) == want)
		return fd;
	close(fd);
	return -1;
}

static int ns_find(struct nl_sock *sk, int want)
{
	static const char *const dirs[] = {"/var/run/netns", "/proc"};
	struct ns_seen seen = {};
	struct stat self;
	int fd = -1;

	/* Our own namespace is never the one (it may have an id for itself). */
	if (!stat("/proc/thread-self/ns/net", &self))
		ns_seen_add(&seen, self.st_ino);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && fd < 0; i++) {
		bool proc = i == 1;
		DIR *d = opendir(dirs[i]);
		struct dirent *de;

		if (!d)
			continue;
		while (fd < 0 && (de = readdir(d))) {
			char path[300];

			if (de->d_name[0] == '.' ||
			    (proc && (de->d_name[0] < '0' || de->d_name[0] > '9')))
				continue;
			snprintf(path, sizeof(path), proc ? "%s/%s/ns/net" : "%s/%s", dirs[i],
				 de->d_name);
			fd = ns_try(sk, path, want, &seen);
		}
		closedir(d);
	}
	free(seen.ino);
	return fd;
}

struct ns_enter {
	int nsfd;
	struct nl_sock *sk;
	int err;
};

/* A socket belongs to the namespace of the thread that creates it: this
 * thread enters the namespace, connects, and ends. */
static void *ns_enter_connect(void *arg)
{
	struct ns_enter *r = arg;

	if (setns(r->nsfd, CLONE_NEWNET)) {
		r->err = -errno;
		return NULL;
	}
	r->err = nl_connect(r->sk, NETLINK_ROUTE) ? -EIO : 0;
	return NULL;
}

int link_gso_netns_open(struct nl_sock *sk, int netnsid, struct nl_sock **out)
{
	struct ns_enter r = {.err = -EIO};
	pthread_t t;
	int one = 1, err;

	if (netnsid < 0)
		return -EINVAL;
	r.nsfd = ns_find(sk, netnsid);
	if (r.nsfd < 0)
		return -ENOENT;
	r.sk = nl_socket_alloc();
	if (!r.sk) {
		close(r.nsfd);
		return -ENOMEM;
	}
	err = -pthread_create(&t, NULL, ns_enter_connect, &r);
	if (!err) {
		pthread_join(t, NULL);
		err = r.err;
	}
	close(r.nsfd);
	if (err) {
		nl_socket_free(r.sk);
		return err;
	}
	setsockopt(nl_socket_get_fd(r.sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	*out = r.sk;
	return 0;
}
