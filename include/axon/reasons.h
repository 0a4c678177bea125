/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Verdict reasons: one table for the datapath, the agent and agentctl.
 *
 * A reason is a small positive number. Below REASON_DROP_BASE are notable
 * non-drop verdicts (traces); from REASON_DROP_BASE up are drops. A tc program
 * that drops returns the drop reason negated, which never collides with a
 * TC_ACT_* value (those are -1..8), so the code alone says why.
 *
 * Numbers are ABI: they are stored in pinned maps that outlive the agent.
 * Append; never renumber.
 */
#ifndef AXON_REASONS_H
#define AXON_REASONS_H

#include "types.h"

enum axon_reason {
	REASON_FORWARDED		= 0,	/* passed on unchanged */
	REASON_SOCK_LB_XLATED		= 1,	/* socket hook translated a service address */
	REASON_SOCK_LB_REV_XLATED	= 2,	/* socket hook restored the service address */

	REASON_DROP_BASE		= 130,
	DROP_NO_SERVICE_BACKEND		= 130,	/* service has no usable backend */
	DROP_BACKEND_NOT_FOUND		= 131,	/* slot points to a missing backend (transient) */
	DROP_SOCK_REV_MAP_FULL		= 132,	/* reverse-translation map full */
	DROP_SOCK_STORAGE_FAIL		= 133,	/* could not allocate per-socket state */

	REASON_MAX			= 256,
};

/* Where a verdict was taken (metrics_key.dir). */
enum axon_metric_dir {
	METRIC_DIR_UNKNOWN	= 0,
	METRIC_DIR_INGRESS	= 1,
	METRIC_DIR_EGRESS	= 2,
	METRIC_DIR_SERVICE	= 3,	/* socket-level load balancer */
	METRIC_DIR_MAX,
};

/* Per-CPU metrics map: (reason, direction) -> packets/bytes. For socket hooks
 * "packets" counts calls (connects, sendmsgs) and bytes stays zero. */
struct metrics_key {
	__u8 reason;	/* enum axon_reason */
	__u8 dir;	/* enum axon_metric_dir */
	__u16 pad;
};

struct metrics_value {
	__u64 packets;
	__u64 bytes;
};

#ifndef __bpf__
static inline const char *axon_reason_name(unsigned int reason)
{
	switch (reason) {
	case REASON_FORWARDED:		return "Forwarded";
	case REASON_SOCK_LB_XLATED:	return "Service translated (socket)";
	case REASON_SOCK_LB_REV_XLATED:	return "Service reverse translated (socket)";
	case DROP_NO_SERVICE_BACKEND:	return "Service backend not found";
	case DROP_BACKEND_NOT_FOUND:	return "Backend slot points to missing backend";
	case DROP_SOCK_REV_MAP_FULL:	return "Socket reverse-NAT map full";
	case DROP_SOCK_STORAGE_FAIL:	return "Socket storage allocation failed";
	default:			return "Unknown reason";
	}
}

static inline const char *axon_metric_dir_name(unsigned int dir)
{
	switch (dir) {
	case METRIC_DIR_INGRESS:	return "INGRESS";
	case METRIC_DIR_EGRESS:		return "EGRESS";
	case METRIC_DIR_SERVICE:	return "SERVICE";
	default:			return "UNKNOWN";
	}
}

static inline int axon_reason_is_drop(unsigned int reason)
{
	return reason >= REASON_DROP_BASE;
}
#endif

#endif /* AXON_REASONS_H */
