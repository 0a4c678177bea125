// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "policy/rules.h"

static const char *const kind_names[POLICY_KIND__NR] = {
    [POLICY_KIND_NP] = "NetworkPolicy",
    [POLICY_KIND_CNP] = "CiliumNetworkPolicy",
    [POLICY_KIND_CCNP] = "CiliumClusterwideNetworkPolicy",
};

const char *policy_kind_name(enum policy_kind kind)
{
	return (unsigned)kind < POLICY_KIND__NR ? kind_names[kind] : "?";
}

const char *policy_unsupported_name(__u32 bit)
{
	switch (bit) {
	case POLICY_UNSUP_SCTP:
		return "SCTP";
	case POLICY_UNSUP_PROTOCOL:
		return "protocol other than TCP, UDP, SCTP, ANY in toPorts";
	case POLICY_UNSUP_L7:
		return "L7 rules";
	case POLICY_UNSUP_FQDN:
		return "toFQDNs";
	case POLICY_UNSUP_SERVICES:
		return "toServices";
	case POLICY_UNSUP_GROUPS:
		return "cloud groups";
	case POLICY_UNSUP_NODES:
		return "node selectors";
	case POLICY_UNSUP_AUTH:
		return "authentication";
	case POLICY_UNSUP_CIDR_GROUP:
		return "CIDR groups";
	default:
		return NULL;
	}
}

void policy_unsupported_text(__u32 bits, char *buf, size_t len)
{
	size_t off = 0;

	if (!len)
		return;
	buf[0] = '\0';
	for (__u32 bit = 1; bit && bit <= POLICY_UNSUP__LAST; bit <<= 1) {
		const char *name = policy_unsupported_name(bit);
		int n;

		if (!(bits & bit) || !name || off >= len)
			continue;
		n = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", name);
		if (n < 0)
			return;
		off += (size_t)n;
	}
}

void policy_cidr_format(const struct policy_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(c->family == AF_INET6 ? AF_INET6 : AF_INET, c->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%u", a, c->len);
}

void policy_free(struct policy *p)
{
	policy_arena_free(&p->arena);
	memset(p, 0, sizeof(*p));
}
