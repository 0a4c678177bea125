/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IPv4 BIG TCP (--enable-ipv4-big-tcp, Cilium's flag and values): the IPv4
 * GSO and GRO maximum of the devices the agent attaches to go from 64 KiB to
 * 192 KiB, so the stack builds, forwards and receives a third as many
 * packets, each three times larger (an IPv4 packet over 64 KiB carries
 * tot_len 0, which the tc parser accepts for GSO packets).
 *
 * Which devices, when (the datapath sync calls these right after attaching):
 * - a local pod's host-side device, and its veth peer, the pod's eth0, in the
 *   pod's namespace: the sending socket takes its GSO size from the pod's
 *   eth0 when it connects, so that end decides; tried on every pod device,
 *   the kernel's answer is the authority;
 * - a native device, only when its driver's tso_max_size is at least the
 *   size; otherwise it is left alone, with one warning naming it.
 * A device already at the size is not written. One that refuses is warned
 * about once (device, errno, the kernel's reason), counted, and not retried
 * until it is recreated; attaching goes on regardless. Nothing else is
 * touched: no device the agent does not attach to, and with the flag off no
 * device at all (turning it off leaves the sizes as they are; recreate the
 * pods, as Cilium documents). Kernel 6.3 or newer: on an older one the agent
 * warns once and changes nothing. Connections keep the size they started
 * with (the kernel reads it at connect).
 *
 * After a change to one of its links (big_tcp_link_changed()) a device is
 * read again at its next sync, and set again if someone lowered it; after an
 * overrun of the notifications (big_tcp_devices_changed()), every device.
 */
#ifndef AXON_BIGTCP_H
#define AXON_BIGTCP_H

#include <stdbool.h>
#include <linux/types.h>

#include "htable.h"

/* Cilium's pkg/datapath/linux/bigtcp: bigTCPGSOMaxSize, bigTCPGROMaxSize and
 * the default both go back to. */
#define BIG_TCP_IPV4_MAX_SIZE	 196608
#define BIG_TCP_DEFAULT_MAX_SIZE 65536

struct nl_sock;

struct big_tcp {
	bool enabled;	       /* --enable-ipv4-big-tcp */
	bool supported;	       /* the kernel has IPv4 BIG TCP (6.3+) */
	__u32 size;	       /* what devices get: BIG_TCP_IPV4_MAX_SIZE */
	struct nl_sock *sk;    /* the agent's namespace */
	struct htable devs;    /* "ifindex" -> struct big_tcp_dev */
	unsigned long refused; /* devices (or peers) that refused, each once */
	unsigned long skipped; /* native devices left alone (tso_max_size) */
	char last_error[200];
	char message[160]; /* why nothing is set, when so */
};

/* @enabled false: nothing is opened, every call below does nothing. With it
 * on, probes the kernel (on the loopback device, as Cilium does). Returns 0
 * or -ENOMEM; an old kernel is not an error (supported stays false). */
int big_tcp_init(struct big_tcp *bt, bool enabled);
void big_tcp_destroy(struct big_tcp *bt);

/* A local pod's host-side device and its peer. */
void big_tcp_pod_device(struct big_tcp *bt, int ifindex, const char *name);
/* A native device (--devices, or the default route's). */
void big_tcp_native_device(struct big_tcp *bt, int ifindex, const char *name);
/* Links changed: forget devices that are gone; read the others again. */
void big_tcp_devices_changed(struct big_tcp *bt);
/* One link changed: forgotten when gone, else read again at its next sync. */
void big_tcp_link_changed(struct big_tcp *bt, int ifindex);

/* Devices carrying the size now: host-side, pod-side and native ones. */
unsigned int big_tcp_devices(const struct big_tcp *bt);

#endif /* AXON_BIGTCP_H */
