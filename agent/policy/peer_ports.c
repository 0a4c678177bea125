// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Egress named ports' table from the CiliumEndpointSlices (peer_ports.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/peer_ports.h"

int peer_ports_build(struct peer_ports *pp, const struct store *s)
{
	struct engine_peer_port *items;
	size_t n = 0, k = 0;

	for (struct ht_entry *e = ht_first(&s->ces); e; e = ht_next(&s->ces, e)) {
		const struct k8s_cilium_endpointslice *c = &((struct store_ces *)e->value)->ces;

		for (size_t i = 0; i < c->n_endpoints; i++)
			if (c->endpoints[i].identity)
				n += c->endpoints[i].n_named_ports;
	}
	items = calloc(n ? n : 1, sizeof(*items));
	if (!items)
		return -ENOMEM;
	for (struct ht_entry *e = ht_first(&s->ces); e; e = ht_next(&s->ces, e)) {
		const struct k8s_cilium_endpointslice *c = &((struct store_ces *)e->value)->ces;

		for (size_t i = 0; i < c->n_endpoints; i++) {
			const struct k8s_cilium_endpoint *ep = &c->endpoints[i];

			if (!ep->identity)
				continue;
			for (size_t j = 0; j < ep->n_named_ports; j++) {
				items[k].identity = ep->identity;
				items[k].np = ep->named_ports[j];
				k++;
			}
		}
	}
	free(pp->items);
	pp->items = items;
	pp->n = engine_peer_ports_sort(items, k);
	return 0;
}

void peer_ports_free(struct peer_ports *pp)
{
	free(pp->items);
	memset(pp, 0, sizeof(*pp));
}
