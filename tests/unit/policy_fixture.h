/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the policy engine tests share: policies written as the apiserver
 * sends them, with the subject fixed (app=b in ns1), and the check of one
 * entry in an engine result.
 */
#ifndef AXON_TESTS_POLICY_FIXTURE_H
#define AXON_TESTS_POLICY_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/engine.h"

/* A NetworkPolicy "p" and a CiliumNetworkPolicy "c" in ns1 selecting app=b;
 * spec: the rest of the spec object. */
#define NP(spec)                                                                                   \
	"{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"p\",\"namespace\":\"ns1\"},"         \
	"\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"b\"}}," spec "}}"
#define CNP(spec)                                                                                  \
	"{\"kind\":\"CiliumNetworkPolicy\",\"metadata\":{\"name\":\"c\",\"namespace\":\"ns1\"},"   \
	"\"spec\":{\"endpointSelector\":{\"matchLabels\":{\"app\":\"b\"}}," spec "}}"

/* Whether res holds exactly this entry. */
static inline bool result_has(const struct engine_result *res, __u32 id, __u8 dir, __u8 proto,
			      __u16 port, __u8 prefix, bool deny)
{
	for (size_t i = 0; i < res->n; i++) {
		const struct policy_map_entry *e = &res->entries[i];

		if (e->identity == id && e->dir == dir && e->proto == proto && e->port == port &&
		    e->port_prefix == prefix && e->deny == deny)
			return true;
	}
	return false;
}

#endif /* AXON_TESTS_POLICY_FIXTURE_H */
