/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One trie entry as the engine computes it: the fields of policy/map.h's
 * struct policy_map_entry, which the engine cannot include: map.h brings
 * include/axon/policy.h's struct policy_entry (the map value), rules.h has a
 * struct policy_entry of its own (a rule's entry). policy/apply.c, which
 * sees only map.h, converts (and checks the layouts agree at build time).
 */
#ifndef AXON_POLICY_ENGINE_ENTRY_H
#define AXON_POLICY_ENGINE_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

/* As include/axon/policy.h. */
#define ENGINE_DIR_INGRESS 0
#define ENGINE_DIR_EGRESS  1

struct engine_entry {
	__u32 identity;	  /* remote identity; 0: any */
	__u8 dir;	  /* ENGINE_DIR_* */
	__u8 proto;	  /* IPPROTO_*; 0: any protocol */
	__u16 port;	  /* host order: the block's first port (ICMP: the type) */
	__u8 port_prefix; /* 16 one port, 13 eight, 0 any */
	bool deny;
};

#endif /* AXON_POLICY_ENGINE_ENTRY_H */
