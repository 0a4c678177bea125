// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Conntrack garbage collection (see ct_gc.h).
 *
 * A pass walks each map with bpf_map_get_next_key(), fetching the next key
 * before deleting the current one: deleting first would make the walk restart
 * from the beginning of the hash (the kernel's answer for a missing key).
 * The tc programs keep writing meanwhile; an entry they add during the pass
 * may be missed until the next one, which is harmless.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>

#include "axon/ct.h"
#include "axon/nat.h"
#include "log.h"
#include "ct_gc.h"

/* Shares of deleted/scanned that move the interval (Cilium's thresholds). */
#define GC_SPEEDUP_PERCENT  25
#define GC_SLOWDOWN_PERCENT 5
/* A flush deletes at most this many entries per map: the programs may add
 * entries as fast as we delete, and a flush must end. */
#define GC_FLUSH_MAX (4u << 20)

static __u64 mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ct_gc_init(struct ct_gc *gc, int ct_tcp_fd, int ct_any_fd, int nat_fd,
		unsigned int min_interval_ms, unsigned int max_interval_ms)
{
	memset(gc, 0, sizeof(*gc));
	gc->ct_tcp_fd = ct_tcp_fd;
	gc->ct_any_fd = ct_any_fd;
	gc->nat_fd = nat_fd;
	if (max_interval_ms < min_interval_ms)
		max_interval_ms = min_interval_ms;
	gc->min_interval_ms = min_interval_ms;
	gc->max_interval_ms = max_interval_ms;
	/* Start fast: after a restart the maps may hold a backlog. */
	gc->interval_ms = min_interval_ms;
}

/* The NAT pair of a source-NATed flow: the egress entry under the flow's
 * original tuple, and the ingress entry under the tuple its replies carry
 * (from the far end to the translated address and port). The ingress entry
 * is deleted only while it still restores this flow's source, so a port
 * already handed to another flow keeps its entry. Returns entries deleted. */
static int nat_pair_delete(int nat_fd, const struct ct4_key *ct, const struct ct4_entry *e)
{
	struct nat4_key egress = {
	    .daddr = ct->daddr,
	    .saddr = ct->saddr,
	    .dport = ct->dport,
	    .sport = ct->sport,
	    .nexthdr = ct->nexthdr,
	    .dir = NAT_DIR_EGRESS,
	};
	struct nat4_key ingress = {
	    .daddr = e->nat_addr,
	    .saddr = ct->daddr,
	    .dport = e->nat_port,
	    .sport = ct->dport,
	    .nexthdr = ct->nexthdr,
	    .dir = NAT_DIR_INGRESS,
	};
	struct nat4_entry val;
	int n = 0;

	if (nat_fd < 0)
		return 0;
	/* ICMP echo: the identifier plays both ports, and the reply carries
	 * the translated one in both. */
	if (ct->nexthdr == IPPROTO_ICMP)
		ingress.sport = e->nat_port;
	if (!bpf_map_delete_elem(nat_fd, &egress))
		n++;
	if (!bpf_map_lookup_elem(nat_fd, &ingress, &val) && val.to_addr == ct->saddr &&
	    val.to_port == ct->sport && !bpf_map_delete_elem(nat_fd, &ingress))
		n++;
	return n;
}

static int gc_map(struct ct_gc *gc, int fd, __u32 now_s)
{
	struct ct4_key cur, next;
	struct ct4_entry e;
	bool has_cur, has_next;

	if (fd < 0)
		return 0;
	has_cur = !bpf_map_get_next_key(fd, NULL, &cur);
	while (has_cur) {
		has_next = !bpf_map_get_next_key(fd, &cur, &next);
		if (!bpf_map_lookup_elem(fd, &cur, &e)) {
			gc->last_scanned++;
			if (e.lifetime < now_s && !bpf_map_delete_elem(fd, &cur)) {
				gc->last_deleted++;
				if (e.flags & CT_F_SNAT)
					gc->last_nat_deleted +=
					    nat_pair_delete(gc->nat_fd, &cur, &e);
			}
		}
		cur = next;
		has_cur = has_next;
	}
	return 0;
}

static void adapt_interval(struct ct_gc *gc)
{
	__u64 pct = gc->last_scanned ? gc->last_deleted * 100 / gc->last_scanned : 0;

	if (pct > GC_SPEEDUP_PERCENT) {
		gc->interval_ms /= 2;
		if (gc->interval_ms < gc->min_interval_ms)
			gc->interval_ms = gc->min_interval_ms;
	} else if (pct < GC_SLOWDOWN_PERCENT) {
		gc->interval_ms = gc->interval_ms > gc->max_interval_ms / 2 ? gc->max_interval_ms
									    : gc->interval_ms * 2;
	}
}

int ct_gc_run(struct ct_gc *gc, __u32 now_s)
{
	__u64 start = mono_us();

	if (!now_s)
		now_s = start / 1000000;
	gc->last_scanned = gc->last_deleted = gc->last_nat_deleted = 0;
	gc_map(gc, gc->ct_tcp_fd, now_s);
	gc_map(gc, gc->ct_any_fd, now_s);
	gc->last_duration_us = mono_us() - start;
	gc->total_deleted += gc->last_deleted;
	gc->passes++;
	adapt_interval(gc);
	pr_debug("conntrack gc pass",
		 "scanned=%llu deleted=%llu nat_deleted=%llu duration_us=%llu "
		 "next_ms=%u",
		 (unsigned long long)gc->last_scanned, (unsigned long long)gc->last_deleted,
		 (unsigned long long)gc->last_nat_deleted, (unsigned long long)gc->last_duration_us,
		 gc->interval_ms);
	return 0;
}

static int flush_map(int fd, size_t key_size)
{
	__u8 key[64];
	unsigned int n = 0;

	if (fd < 0 || key_size > sizeof(key))
		return 0;
	/* Always take the first key: each one is deleted before the next. */
	while (n < GC_FLUSH_MAX && !bpf_map_get_next_key(fd, NULL, key)) {
		if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
			return -errno;
		n++;
	}
	return 0;
}

int ct_gc_flush(struct ct_gc *gc)
{
	int err;

	err = flush_map(gc->ct_tcp_fd, sizeof(struct ct4_key));
	if (!err)
		err = flush_map(gc->ct_any_fd, sizeof(struct ct4_key));
	if (!err)
		err = flush_map(gc->nat_fd, sizeof(struct nat4_key));
	if (err)
		pr_err("conntrack flush failed", "error=\"%s\"", strerror(-err));
	return err;
}
