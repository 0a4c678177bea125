// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * IPv4 BIG TCP on the devices the agent attaches to (see bigtcp.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>

#include "log.h"
#include "bigtcp.h"
#include "link_gso.h"

enum dev_state {
	DEV_UNKNOWN = 0,
	DEV_CARRIES,	/* at the size (set by us or found so) */
	DEV_REFUSED,	/* warned and counted once; not retried */
	DEV_LEFT_ALONE, /* native device whose tso_max_size is too small */
	DEV_ABSENT,	/* no pod-side peer to set (not a veth) */
};

struct big_tcp_dev {
	int ifindex;
	char name[IFNAMSIZ];
	bool native;
	bool fresh; /* read since the last link change */
	enum dev_state host, peer;
};

int big_tcp_init(struct big_tcp *bt, bool enabled)
{
	struct link_gso lo;
	int err;

	memset(bt, 0, sizeof(*bt));
	bt->enabled = enabled;
	bt->size = BIG_TCP_IPV4_MAX_SIZE;
	if (!enabled)
		return 0;
	err = ht_init(&bt->devs);
	if (err)
		return err;
	err = link_gso_open(&bt->sk);
	if (err) {
		snprintf(bt->message, sizeof(bt->message), "cannot open netlink: %s",
			 strerror(-err));
		pr_warn("IPv4 BIG TCP: cannot open netlink; no device changed", "error=\"%s\"",
			strerror(-err));
		return 0;
	}
	/* Cilium's probe: the loopback device (index 1 in every namespace)
	 * reports the IPv4 sizes only on kernels that have them. */
	err = link_gso_read(bt->sk, -1, 1, &lo);
	if (err || !lo.gso_ipv4_max || !lo.gro_ipv4_max) {
		snprintf(bt->message, sizeof(bt->message),
			 "the kernel has no IPv4 BIG TCP (needs 6.3 or newer)");
		pr_warn(
		    "--enable-ipv4-big-tcp: the kernel has no IPv4 BIG TCP (needs 6.3 or newer); "
		    "no device changed",
		    "error=\"%s\"", err ? strerror(-err) : "not reported");
		return 0;
	}
	bt->supported = true;
	pr_info("IPv4 BIG TCP on", "gso_ipv4_max_size=%u gro_ipv4_max_size=%u", bt->size, bt->size);
	return 0;
}

void big_tcp_destroy(struct big_tcp *bt)
{
	ht_destroy_with(&bt->devs, free);
	link_gso_close(bt->sk);
	bt->sk = NULL;
}

static bool active(const struct big_tcp *bt)
{
	return bt->enabled && bt->supported && bt->sk;
}

/* The record of @ifindex, new (or renewed, when the index now names another
 * device) unless it exists. NULL when out of memory. */
static struct big_tcp_dev *record(struct big_tcp *bt, int ifindex, const char *name, bool native)
{
	char key[16];
	struct big_tcp_dev *d;
	int klen = snprintf(key, sizeof(key), "%d", ifindex);

	d = ht_get(&bt->devs, key, klen);
	if (d && !strcmp(d->name, name))
		return d;
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d || ht_puts(&bt->devs, key, klen, d)) {
			free(d);
			return NULL;
		}
	}
	*d = (struct big_tcp_dev){.ifindex = ifindex, .native = native};
	snprintf(d->name, sizeof(d->name), "%s", name);
	return d;
}

static void forget(struct big_tcp *bt, int ifindex)
{
	char key[16];

	free(ht_del(&bt->devs, key, snprintf(key, sizeof(key), "%d", ifindex)));
}

/* Warned and counted once per device: the caller marks it refused. */
static enum dev_state refused(struct big_tcp *bt, const char *role, const char *dev, int err,
			      const char *why)
{
	bt->refused++;
	snprintf(bt->last_error, sizeof(bt->last_error), "%s (%s): %s%s%s", dev, role,
		 strerror(-err), why[0] ? ": " : "", why);
	pr_warn("IPv4 BIG TCP not set on a device",
		"dev=%s role=%s error=\"%s\" errno=%d reason=\"%s\"", dev, role, strerror(-err),
		-err, why);
	return DEV_REFUSED;
}

/* Bring the link @l (as read) to the size through @sk, a socket in its
 * namespace; read it back through the agent's own socket (@nsid: its id from
 * here, -1 for ours), since an acknowledged request is not proof. */
static enum dev_state apply(struct big_tcp *bt, struct nl_sock *sk, int nsid,
			    const struct link_gso *l, const char *role, const char *dev)
{
	struct link_gso after;
	char why[128] = "";
	int err;

	if (l->gso_ipv4_max == bt->size && l->gro_ipv4_max == bt->size)
		return DEV_CARRIES;
	err = link_gso_set_ipv4(sk, l->ifindex, bt->size, why, sizeof(why));
	if (!err)
		err = link_gso_read(bt->sk, nsid, l->ifindex, &after);
	if (!err && (after.gso_ipv4_max != bt->size || after.gro_ipv4_max != bt->size)) {
		snprintf(why, sizeof(why), "acknowledged, but reads back %u/%u", after.gso_ipv4_max,
			 after.gro_ipv4_max);
		err = -EIO;
	}
	if (err)
		return refused(bt, role, dev, err, why);
	pr_info("IPv4 BIG TCP set",
		"dev=%s role=%s gso_ipv4_max_size=%u gro_ipv4_max_size=%u was=%u/%u", dev, role,
		bt->size, bt->size, l->gso_ipv4_max, l->gro_ipv4_max);
	return DEV_CARRIES;
}

/* The pod's end of the veth @host, in the pod's namespace. */
static enum dev_state peer_apply(struct big_tcp *bt, const struct link_gso *host)
{
	struct nl_sock *pod_sk = NULL;
	struct link_gso peer;
	char dev[IFNAMSIZ + 24];
	enum dev_state st;
	int err;

	/* Only a veth's peer is the pod's device: another kind's IFLA_LINK is
	 * a lower device, not ours to change. */
	if (!host->veth || !host->peer_ifindex || host->peer_netnsid < 0)
		return DEV_ABSENT;
	snprintf(dev, sizeof(dev), "%s's peer", host->name);
	err = link_gso_read(bt->sk, host->peer_netnsid, host->peer_ifindex, &peer);
	if (err)
		return refused(bt, "pod-side", dev, err, "cannot read the veth peer");
	snprintf(dev, sizeof(dev), "%s@%s", peer.name, host->name);
	if (peer.gso_ipv4_max == bt->size && peer.gro_ipv4_max == bt->size)
		return DEV_CARRIES;
	err = link_gso_netns_open(bt->sk, host->peer_netnsid, &pod_sk);
	if (err)
		return refused(bt, "pod-side", dev, err,
			       err == -ENOENT ? "the pod's namespace is not under /var/run/netns "
						"or /proc/<pid>/ns/net"
					      : "cannot open netlink in the pod's namespace");
	st = apply(bt, pod_sk, host->peer_netnsid, &peer, "pod-side", dev);
	link_gso_close(pod_sk);
	return st;
}

void big_tcp_pod_device(struct big_tcp *bt, int ifindex, const char *name)
{
	struct big_tcp_dev *d;
	struct link_gso host;
	int err;

	if (!active(bt))
		return;
	d = record(bt, ifindex, name, false);
	if (!d || d->fresh)
		return;
	err = link_gso_read(bt->sk, -1, ifindex, &host);
	if (err == -ENODEV) {
		forget(bt, ifindex); /* gone since the cache was read */
		return;
	}
	d->fresh = true;
	if (d->host != DEV_REFUSED)
		d->host = err ? refused(bt, "host-side", name, err, "cannot read the device")
			      : apply(bt, bt->sk, -1, &host, "host-side", name);
	if (!err && d->peer != DEV_REFUSED)
		d->peer = peer_apply(bt, &host);
}

void big_tcp_native_device(struct big_tcp *bt, int ifindex, const char *name)
{
	struct big_tcp_dev *d;
	struct link_gso l;
	int err;

	if (!active(bt))
		return;
	d = record(bt, ifindex, name, true);
	if (!d || d->fresh)
		return;
	err = link_gso_read(bt->sk, -1, ifindex, &l);
	if (err == -ENODEV) {
		forget(bt, ifindex);
		return;
	}
	d->fresh = true;
	d->peer = DEV_ABSENT;
	if (d->host == DEV_REFUSED || d->host == DEV_LEFT_ALONE)
		return;
	if (err) {
		d->host = refused(bt, "native", name, err, "cannot read the device");
	} else if (l.tso_max < bt->size) {
		/* The driver cannot send it: a larger GSO size would only be
		 * segmented again in software (and the kernel refuses it). */
		d->host = DEV_LEFT_ALONE;
		bt->skipped++;
		pr_warn(
		    "IPv4 BIG TCP: native device left alone, its tso_max_size is below the size",
		    "dev=%s role=native tso_max_size=%u size=%u", name, l.tso_max, bt->size);
	} else {
		d->host = apply(bt, bt->sk, -1, &l, "native", name);
	}
}

void big_tcp_devices_changed(struct big_tcp *bt)
{
	if (!active(bt))
		return;
	for (struct ht_entry *e = ht_first(&bt->devs); e;) {
		struct big_tcp_dev *d = e->value;
		struct link_gso l;

		if (link_gso_read(bt->sk, -1, d->ifindex, &l) == -ENODEV ||
		    strcmp(l.name, d->name)) {
			free(d);
			e = ht_del_iter(&bt->devs, e);
			continue;
		}
		d->fresh = false;
		e = ht_next(&bt->devs, e);
	}
}

void big_tcp_link_changed(struct big_tcp *bt, int ifindex)
{
	struct big_tcp_dev *d;
	struct link_gso l;
	char key[16];

	if (!active(bt))
		return;
	snprintf(key, sizeof(key), "%d", ifindex);
	d = ht_get(&bt->devs, key, strlen(key));
	if (!d)
		return;
	if (link_gso_read(bt->sk, -1, ifindex, &l) == -ENODEV || strcmp(l.name, d->name))
		forget(bt, ifindex);
	else
		d->fresh = false;
}

unsigned int big_tcp_devices(const struct big_tcp *bt)
{
	unsigned int n = 0;

	if (!active(bt))
		return 0;
	for (struct ht_entry *e = ht_first(&bt->devs); e; e = ht_next(&bt->devs, e)) {
		const struct big_tcp_dev *d = e->value;

		n += (d->host == DEV_CARRIES) + (d->peer == DEV_CARRIES);
	}
	return n;
}
