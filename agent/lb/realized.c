// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Is a desired frontend in the maps as desired? (agentctl service list) */
#include <stdlib.h>
#include <string.h>

#include "axon/lb.h"
#include "reconcile_priv.h"

static int id_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* Each spec is a mirrored backend in its state whose id is in the sorted ids. */
static bool backends_match(const struct lb_reconciler *r, const struct lb_backend_spec *specs,
			   size_t n, const __u32 *ids, size_t n_ids)
{
	if (n != n_ids)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct lb_backend *b =
		    lb_backend_find(r, specs[i].addr, specs[i].port, specs[i].proto);

		if (!b || b->state != specs[i].state ||
		    !bsearch(&b->id, ids, n_ids, sizeof(*ids), id_cmp))
			return false;
	}
	return true;
}

static bool ids_match(const struct lb_reconciler *r, const struct lb_backend_spec *specs, size_t n,
		      const __u32 *ids, size_t n_ids)
{
	__u32 *sorted;
	bool ok;

	if (n != n_ids)
		return false;
	if (!n)
		return true;
	sorted = malloc(n_ids * sizeof(*sorted));
	if (!sorted)
		return false;
	memcpy(sorted, ids, n_ids * sizeof(*sorted));
	qsort(sorted, n_ids, sizeof(*sorted), id_cmp);
	/* A hole (id 0) or a backend twice is not what the spec asks for. */
	ok = sorted[0] != 0;
	for (size_t i = 1; ok && i < n_ids; i++)
		ok = sorted[i] != sorted[i - 1];
	ok = ok && backends_match(r, specs, n, sorted, n_ids);
	free(sorted);
	return ok;
}

bool lb_reconciler_realized(const struct lb_reconciler *r, const char *svc_key,
			    const struct lb_frontend_spec *fe)
{
	struct lb_fe_key k = {.addr = fe->addr, .port = fe->port, .proto = fe->proto,
			      .scope = fe->scope};
	const struct lb_frontend *rf = ht_get(&r->frontends, &k, sizeof(k));
	__u8 flags2 = fe->flags2;

	/* As lb_reconcile_service() writes it without the Maglev map. */
	if (!r->maglev_available)
		flags2 &= ~SVC_FLAG2_MAGLEV;
	if (!rf || !rf->svc_key || strcmp(rf->svc_key, svc_key) || !rf->has_slot0 ||
	    rf->flags != fe->flags || rf->flags2 != flags2 ||
	    rf->affinity_timeout != fe->affinity_timeout || rf->count != fe->n_backends ||
	    rf->n_slots < rf->count)
		return false;
	return ids_match(r, fe->backends, fe->n_backends, rf->slots, rf->count) &&
	       ids_match(r, fe->kept, fe->n_kept, rf->kept, rf->n_kept);
}
