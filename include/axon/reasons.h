/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Verdict reasons: one table for the datapath, the agent and agentctl.
 *
 * A reason is a small positive number. Below REASON_DROP_BASE are notable
 * non-drop verdicts (traces); from REASON_DROP_BASE up are drops. Inside the
 * tc programs a helper that decides to drop returns the drop reason negated
 * (-130 and below), which never collides with a TC_ACT_* value (those are
 * -1..8), so one int carries "go on", a TC_ACT_* verdict or why to drop; the
 * entry program turns a negative code into a counted drop, an event and
 * TC_ACT_SHOT.
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
	REASON_LB_XLATED		= 3,	/* tc DNAT of a service frontend to a backend */
	REASON_LB_REV_XLATED		= 4,	/* tc reverse DNAT of a reply to the frontend */
	REASON_TO_ENDPOINT		= 5,	/* delivered into a local pod (redirect_peer) */
	REASON_FIB_FORWARDED		= 6,	/* routed by FIB lookup and redirect_neigh */
	REASON_TO_STACK			= 7,	/* handed to the kernel's stack on purpose */
	REASON_SNAT			= 8,	/* source translated (masquerade, NodePort SNAT) */
	REASON_REV_SNAT			= 9,	/* reply's destination translated back */
	REASON_CT_NEW			= 10,	/* first packet of a flow: conntrack entry created */
	REASON_CT_REOPENED		= 11,	/* SYN on a closing entry reopened it */
	REASON_UNKNOWN_L4_PASSED	= 12,	/* L4 Axon does not parse: routed on L3 alone */
	REASON_NODE_PORT		= 13,	/* NodePort frontend translated */
	REASON_EVENTS_SUPPRESSED	= 14,	/* an event the rate limiter did not send */
	REASON_TO_STACK_MTU		= 15,	/* too long for the FIB's way out: to the stack (ICMP/fragments) */
	REASON_POLICY_ALLOWED		= 16,	/* a new flow an enforced network policy allowed */

	REASON_DROP_BASE		= 130,
	DROP_NO_SERVICE_BACKEND		= 130,	/* service has no usable backend */
	DROP_BACKEND_NOT_FOUND		= 131,	/* slot points to a missing backend (transient) */
	DROP_SOCK_REV_MAP_FULL		= 132,	/* reverse-translation map full */
	DROP_SOCK_STORAGE_FAIL		= 133,	/* could not allocate per-socket state */
	DROP_INVALID_HDR		= 134,	/* truncated or inconsistent L3/L4 header */
	DROP_FRAG_NOT_SUPPORTED		= 135,	/* IPv4 fragment to a service or needing NAT */
	DROP_UNKNOWN_L3			= 136,	/* EtherType the program cannot handle */
	DROP_IP_OPTIONS			= 137,	/* IPv4 options where they cannot be handled */
	DROP_NO_LOCAL_BACKEND		= 138,	/* externalTrafficPolicy/internalTrafficPolicy Local, none here */
	DROP_NAT_NO_PORT		= 139,	/* no free source port after the retries */
	DROP_NAT_MAP_UPDATE		= 140,	/* NAT entry could not be written */
	DROP_CT_MAP_UPDATE		= 141,	/* conntrack entry could not be written */
	DROP_FIB_LOOKUP			= 142,	/* FIB lookup failed (no route, blackhole, ...) */
	DROP_CSUM_UPDATE		= 143,	/* checksum or header rewrite failed */
	DROP_TTL_EXCEEDED		= 144,	/* reserved: TTL expires here (the stack answers it) */
	DROP_UNKNOWN_L4			= 145,	/* L4 protocol not allowed where it was seen */
	DROP_REDIRECT			= 146,	/* bpf_redirect*() refused the packet */
	DROP_NODE_PORT_RANGE		= 147,	/* port in the NodePort range but no such service */
	DROP_POLICY			= 148,	/* enforced network policy: no entry allows it (or no map) */
	DROP_POLICY_DENY		= 149,	/* enforced network policy: a deny entry matched */
	DROP_SVC_NO_BACKEND_REJECTED	= 150,	/* no backend: answered with a TCP RST / ICMP unreachable */
	DROP_SVC_INVALID_STATE		= 151,	/* TCP non-SYN to a service frontend without a flow entry */
	DROP_SVC_SOURCE_RANGE		= 152,	/* client outside a LoadBalancer's source ranges */

	REASON_MAX			= 256,
};

/* Where a verdict was taken (metrics_key.dir). */
enum axon_metric_dir {
	METRIC_DIR_UNKNOWN	= 0,
	METRIC_DIR_INGRESS	= 1,
	METRIC_DIR_EGRESS	= 2,
	METRIC_DIR_SERVICE	= 3,	/* socket-level load balancer */
	METRIC_DIR_FORWARD	= 4,	/* reserved */
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
	case REASON_LB_XLATED:		return "Service translated";
	case REASON_LB_REV_XLATED:	return "Service reverse translated";
	case REASON_TO_ENDPOINT:	return "Delivered to local endpoint";
	case REASON_FIB_FORWARDED:	return "Forwarded by FIB";
	case REASON_TO_STACK:		return "Passed to stack";
	case REASON_SNAT:		return "Source NAT";
	case REASON_REV_SNAT:		return "Reverse source NAT";
	case REASON_CT_NEW:		return "Conntrack entry created";
	case REASON_CT_REOPENED:	return "Conntrack entry reopened";
	case REASON_UNKNOWN_L4_PASSED:	return "Unknown L4 protocol routed on L3";
	case REASON_NODE_PORT:		return "NodePort translated";
	case REASON_EVENTS_SUPPRESSED:	return "Event suppressed by rate limit";
	case REASON_TO_STACK_MTU:	return "Passed to stack: over egress MTU";
	case REASON_POLICY_ALLOWED:	return "Allowed by policy";
	case DROP_INVALID_HDR:		return "Invalid packet header";
	case DROP_FRAG_NOT_SUPPORTED:	return "Fragment not supported";
	case DROP_UNKNOWN_L3:		return "Unknown L3 protocol";
	case DROP_IP_OPTIONS:		return "IPv4 options not supported";
	case DROP_NO_LOCAL_BACKEND:	return "No local backend (traffic policy Local)";
	case DROP_NAT_NO_PORT:		return "No free NAT source port";
	case DROP_NAT_MAP_UPDATE:	return "NAT map update failed";
	case DROP_CT_MAP_UPDATE:	return "Conntrack map update failed";
	case DROP_FIB_LOOKUP:		return "FIB lookup failed";
	case DROP_CSUM_UPDATE:		return "Checksum or header rewrite failed";
	case DROP_TTL_EXCEEDED:		return "TTL exceeded";
	case DROP_UNKNOWN_L4:		return "Unknown L4 protocol";
	case DROP_REDIRECT:		return "Redirect failed";
	case DROP_NODE_PORT_RANGE:	return "No service on NodePort";
	case DROP_POLICY:		return "Policy denied";
	case DROP_POLICY_DENY:		return "Policy denied by denylist";
	case DROP_SVC_NO_BACKEND_REJECTED: return "Service backend not found (rejected)";
	case DROP_SVC_INVALID_STATE:	return "Service flow in invalid state (no conntrack entry)";
	case DROP_SVC_SOURCE_RANGE:	return "Service source range check failed";
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
