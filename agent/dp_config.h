/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The tc programs' load-time configuration (include/axon/config.h) from the
 * agent's flags and this node's address. A pure function: the caller
 * compares the result with what is loaded and reloads the programs when it
 * differs.
 */
#ifndef AXON_DP_CONFIG_H
#define AXON_DP_CONFIG_H

#include <stdbool.h>

#include "axon/config.h"
#include "config.h"

/* Masquerade source ports: the kernel's ephemeral range, moved above the
 * NodePort range when they overlap. */
#define NAT_PORT_MIN_DEFAULT	32768
#define NAT_PORT_MAX_DEFAULT	65535
#define EVENTS_RATE_DEFAULT	1000	/* per second per CPU */
#define EVENTS_BURST_DEFAULT	1000

void datapath_config_build(const struct agent_config *c, __be32 node_ip,
			   struct datapath_config *out);
bool datapath_config_equal(const struct datapath_config *a, const struct datapath_config *b);

#endif /* AXON_DP_CONFIG_H */
