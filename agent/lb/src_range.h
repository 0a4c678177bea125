/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * loadBalancerSourceRanges in lb4_source_range (include/axon/lb.h): per
 * service, the (frontend, client prefix) entries of its frontends that carry
 * SVC_FLAG2_SOURCE_RANGE.
 *
 * Order against the services map, so the datapath never checks a frontend
 * against a partial list: lb_src_ranges_add() writes what a service's spec
 * wants before the reconciler writes its frontends (slot 0 sets the flag);
 * lb_src_ranges_commit() deletes what it no longer wants after they are
 * written (the flag cleared, or the frontend gone). Each service's set
 * records every entry written for it, also by a pass that failed later, so
 * nothing written is ever forgotten. Entries found in the map
 * at start belong to no service until one wants them; lb_src_ranges_prune()
 * (after the first full sync) deletes those still unclaimed.
 *
 * lb_src_ranges_resync() (the periodic full pass, after the prune) compares
 * the map with the sets: an entry a set holds and the map lacks is written
 * again, one no set holds is deleted.
 *
 * Without the map (fd < 0: the tc datapath is not loaded) nothing is written
 * and the reconciler leaves SVC_FLAG2_SOURCE_RANGE off; the tc programs that
 * would check it are not there either.
 */
#ifndef AXON_LB_SRC_RANGE_H
#define AXON_LB_SRC_RANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "axon/lb.h"
#include "htable.h"
#include "lb/desired.h"

struct lb_src_ranges {
	int fd;			  /* lb4_source_range, -1 if absent */
	struct htable by_service; /* service key -> struct lb_src_range_set */
	struct htable restored;	  /* struct lb4_src_range_key -> (unclaimed, found at start) */
};

int lb_src_ranges_init(struct lb_src_ranges *sr);
void lb_src_ranges_destroy(struct lb_src_ranges *sr);

/* Use the map at fd (the reconciler owns no fd: the caller closes it); its
 * entries are read in as unclaimed. Returns 0 or -errno. */
int lb_src_ranges_open(struct lb_src_ranges *sr, int fd);

static inline bool lb_src_ranges_available(const struct lb_src_ranges *sr)
{
	return sr->fd >= 0;
}

int lb_src_ranges_add(struct lb_src_ranges *sr, const char *svc_key,
		      const struct lb_service_spec *spec);
int lb_src_ranges_commit(struct lb_src_ranges *sr, const char *svc_key,
			 const struct lb_service_spec *spec);
int lb_src_ranges_prune(struct lb_src_ranges *sr);
/* The number of entries repaired, or -errno (the first error; the rest of the
 * repairs are still tried). */
int lb_src_ranges_resync(struct lb_src_ranges *sr);

#endif /* AXON_LB_SRC_RANGE_H */
