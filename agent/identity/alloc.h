/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Security identities in Cilium's CRD mode: a label set's number is held as
 * a cluster-scoped CiliumIdentity named by the number, with the labels as
 * its security-labels. Every agent reads them all (the CiliumIdentity watch,
 * store->identities), so allocation is:
 *
 *   1. an identity with exactly these labels exists: use it, the lowest
 *      numbered when there are several (no write);
 *   2. else create one (POST) under a number of Cilium's cluster-local range
 *      (256..65535) that no identity holds. The first number tried is a
 *      hash of the labels, then the next ones in turn: two agents that race
 *      for the same labels try the same name, and the apiserver's unique
 *      names pick one winner. The loser's 409 AlreadyExists is followed by a
 *      GET of that identity: the same labels are adopted, other labels move
 *      on to the next number.
 *
 * Cilium's own allocator picks a random free number and lets the operator
 * collect duplicates; the hash makes racing agents meet on one name, and
 * rule 1's "lowest number" makes any duplicate that still happens (two
 * agents that saw different numbers taken) converge: both move to the lower
 * one, and the other is collected once unused (gc.c).
 *
 * Writes go through the k8s client's k8s_call_start() (paced by its rate
 * limit); the unit tests pass a fake of the same signature.
 */
#ifndef AXON_IDENTITY_ALLOC_H
#define AXON_IDENTITY_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

#include "htable.h"
#include "identity/labels.h"
#include "k8s/client.h"
#include "store/store.h"

#define IDENT_MIN  256u
#define IDENT_MAX  65535u
#define IDENT_PATH "/apis/cilium.io/v2/ciliumidentities"

typedef struct k8s_call *(*ident_call_start_fn)(struct k8s_client *c, const char *method,
						const char *path, const char *content_type,
						const char *body, size_t len, k8s_call_fn done,
						void *ctx);
typedef void (*ident_call_cancel_fn)(struct k8s_client *c, struct k8s_call *call);

struct ident_alloc;

/* One label set a local endpoint waits for. */
struct ident_req {
	struct ident_alloc *alloc;
	struct ident_labels labels;
	__u32 candidate;       /* number being created or read */
	unsigned int probes;   /* numbers tried */
	unsigned int failures; /* errors in a row, for backoff */
	uint64_t due_ms;       /* next attempt */
	struct k8s_call *call; /* in flight, or NULL */
	char error[160];       /* last failure, "" when none */
};

struct ident_alloc {
	struct k8s_client *c;
	ident_call_start_fn call_start;
	ident_call_cancel_fn call_cancel;
	const struct store *store;
	struct htable by_key;  /* canonical key -> (uintptr_t) lowest id */
	struct htable created; /* key -> (uintptr_t) id we created, not yet watched */
	struct htable reqs;    /* key -> struct ident_req */
	uint64_t seen_rev;     /* store identities_revision indexed */
	uint64_t generation; /* bumped when an allocation completes or fails */
	unsigned long creates, conflicts, adopted, errors;
};

int ident_alloc_init(struct ident_alloc *a, struct k8s_client *c, ident_call_start_fn start,
		     ident_call_cancel_fn cancel, const struct store *s);
void ident_alloc_destroy(struct ident_alloc *a);

/* The identity of these labels, or 0 when none is known yet: then an
 * allocation is started (once) and its completion (or failure) bumps
 * a->generation. */
__u32 ident_alloc_lookup(struct ident_alloc *a, const struct ident_labels *l, uint64_t now_ms);
/* Start what is due (retries after backoff); *next_ms lowered to the next. */
void ident_alloc_run(struct ident_alloc *a, uint64_t now_ms, uint64_t *next_ms);
/* Whether a number is held (in the store or created by us and not yet seen). */
bool ident_alloc_taken(const struct ident_alloc *a, __u32 id);
/* The pending allocation's last error for these labels, "" when none. */
const char *ident_alloc_error(const struct ident_alloc *a, const char *key);

/* CLOCK_MONOTONIC in ms (the agent loop's clock, lb_now_ms()). */
uint64_t ident_now_ms(void);

/* The first number tried for a canonical key (FNV-1a into 256..65535). */
__u32 ident_alloc_first(const char *key);

#endif /* AXON_IDENTITY_ALLOC_H */
