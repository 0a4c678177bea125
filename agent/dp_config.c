// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <string.h>

#include "dp_config.h"

void datapath_config_build(const struct agent_config *c, __be32 node_ip,
			   struct datapath_config *out)
{
	unsigned int nat_min = NAT_PORT_MIN_DEFAULT, nat_max = NAT_PORT_MAX_DEFAULT;

	/* Zeroed whole: the struct is compared with memcmp. */
	memset(out, 0, sizeof(*out));
	out->node_ip = node_ip;
	if (c->has_native_cidr) {
		out->native_cidr = c->native_cidr.addr;
		out->native_cidr_len = c->native_cidr.len;
	}
	out->flags = CFG_NODE_PORT | CFG_HOST_ROUTING;
	if (c->enable_bpf_masquerade)
		out->flags |= CFG_MASQUERADE;
	if (c->bpf_lb_sock)
		out->flags |= CFG_SOCK_LB;
	out->node_port_min = c->node_port_min;
	out->node_port_max = c->node_port_max;
	/* A masqueraded flow must never take a port a NodePort listens on. */
	if (c->node_port_max >= nat_min && c->node_port_min <= nat_max) {
		if (c->node_port_max < nat_max - 1024)
			nat_min = c->node_port_max + 1;
		else
			nat_min = 1024, nat_max = c->node_port_min - 1;
	}
	out->nat_port_min = nat_min;
	out->nat_port_max = nat_max;
	out->ct_lifetime_tcp = c->ct_timeout_tcp_s;
	out->ct_lifetime_syn = c->ct_timeout_syn_s;
	out->ct_lifetime_close = c->ct_timeout_fin_s;
	out->ct_lifetime_any = c->ct_timeout_any_s;
	out->events_rate = EVENTS_RATE_DEFAULT;
	out->events_burst = EVENTS_BURST_DEFAULT;
}

bool datapath_config_equal(const struct datapath_config *a, const struct datapath_config *b)
{
	return !memcmp(a, b, sizeof(*a));
}
