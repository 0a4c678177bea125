// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Zone hints narrow a Service's backends (the rule: lb/topology.h). */
#include <string.h>
#include <arpa/inet.h>

#include "axon/lb.h"
#include "lb/topology.h"

/* The slice's port for sp (same name and protocol), or NULL. */
static const struct k8s_eps_port *hint_port(const struct k8s_endpointslice *eps,
					    const struct k8s_service_port *sp)
{
	if (eps->address_type != K8S_ADDR_IPV4)
		return NULL;
	for (size_t i = 0; i < eps->n_ports; i++)
		if (eps->ports[i].proto == sp->proto && !strcmp(eps->ports[i].name, sp->name))
			return &eps->ports[i];
	return NULL;
}

/* The bit of zone in the slice's hint table; 0 when no endpoint names it. */
static __u32 zone_bit(const struct k8s_endpointslice *eps, const char *zone)
{
	for (__u8 i = 0; i < eps->n_hint_zones; i++)
		if (!strcmp(eps->hint_zones[i], zone))
			return 1u << i;
	return 0;
}

/* Ready as desired.c counts it: publishNotReadyAddresses makes all ready. */
static bool counts_ready(const struct k8s_service *svc, const struct k8s_eps_endpoint *e)
{
	return (e->ready || svc->publish_not_ready) && e->n_addrs;
}

bool lb_topology_applies(const struct store *s, const struct store_slice_set *set,
			 const struct k8s_service *svc, const struct k8s_service_port *sp)
{
	bool for_zone = false;

	if (!svc->topology_aware || !s->self_zone[0])
		return false;
	for (size_t i = 0; set && i < set->n; i++) {
		const struct k8s_endpointslice *eps = &set->slices[i]->eps;
		__u32 bit;

		if (!hint_port(eps, sp))
			continue;
		bit = zone_bit(eps, s->self_zone);
		for (size_t j = 0; j < eps->n_endpoints; j++) {
			const struct k8s_eps_endpoint *e = &eps->endpoints[j];

			if (!counts_ready(svc, e))
				continue;
			if (!e->hint_zones)
				return false;
			for_zone |= (e->hint_zones & bit) != 0;
		}
	}
	return for_zone;
}

static bool kept(const struct lb_frontend_spec *fe, size_t n, __be32 addr, __be16 port)
{
	for (size_t i = 0; i < n; i++)
		if (fe->backends[i].addr == addr && fe->backends[i].port == port)
			return true;
	return false;
}

void lb_topology_filter(const struct store *s, const struct store_slice_set *set,
			const struct k8s_service *svc, const struct k8s_service_port *sp,
			struct lb_frontend_spec *fe)
{
	size_t n = 0;

	if (!lb_topology_applies(s, set, svc, sp))
		return;
	/* The zone's endpoints are a subset of fe's backends (every ready
	 * endpoint): rewrite them in place, in slice order, merged as before. */
	for (size_t i = 0; i < set->n; i++) {
		const struct k8s_endpointslice *eps = &set->slices[i]->eps;
		const struct k8s_eps_port *ep = hint_port(eps, sp);
		__u32 bit = ep ? zone_bit(eps, s->self_zone) : 0;

		for (size_t j = 0; bit && j < eps->n_endpoints; j++) {
			const struct k8s_eps_endpoint *e = &eps->endpoints[j];

			if (!counts_ready(svc, e) || !(e->hint_zones & bit))
				continue;
			for (size_t k = 0; k < e->n_addrs; k++) {
				if (kept(fe, n, e->addrs[k], htons(ep->port)))
					continue;
				fe->backends[n++] = (struct lb_backend_spec){
					.addr = e->addrs[k],
					.port = htons(ep->port),
					.proto = sp->proto,
					.state = BACKEND_STATE_ACTIVE,
				};
			}
		}
	}
	fe->n_backends = n;
}
