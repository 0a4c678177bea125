/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The identities each distinct selector selects, kept up to date as
 * identities come and go (Cilium's pkg/policy/selectorcache.go).
 *
 * Policies repeat selectors (every rule of a namespace says "pods of this
 * namespace"), and an identity change would otherwise evaluate every peer of
 * every policy again. The cache holds each distinct selector once, keyed by
 * its canonical text (requirements are sorted by the parsers), with the
 * sorted set of identities it selects:
 *
 *   sc_identity_set()    an identity added or relabelled: every selector
 *                        evaluated once against it, its id put in or taken
 *                        out of each set; nothing else is evaluated.
 *   sc_identity_delete() its id taken out of every set; nothing evaluated.
 *   sc_begin() ... sc_add() ... sc_end()
 *                        the selectors in use after a policy change: one
 *                        already held keeps its set (not evaluated again), a
 *                        new one is evaluated against every identity, one no
 *                        longer added is dropped.
 *   sc_ref() ... sc_unref() ... sc_sweep()
 *                        the same one policy at a time, for a caller that
 *                        knows which policies changed: a selector counts the
 *                        caller's pointers to it; one new is evaluated against
 *                        every identity; one whose last pointer went is
 *                        dropped by sc_sweep() unless referenced again before
 *                        (a policy replaced keeps its selectors' sets without
 *                        evaluation). A pointer is unreferenced before its
 *                        memory is freed or reused; no identity is set
 *                        between sc_unref() and sc_sweep(). Not mixed with
 *                        sc_begin(). sc_capture() makes sc_add() reference
 *                        and record each pointer, so that what
 *                        engine_register() adds for one policy can be
 *                        unreferenced when the policy changes.
 *
 * An identity is its labels as one or two label sets (its own and, for an
 * identity without namespace labels, its Namespace's): the caller's pointers,
 * valid until the identity is set again or deleted. A selector is the
 * caller's too, valid until the next sc_begin().
 *
 * CIDR selectors (a CIDR peer: ipBlock, fromCIDR, toCIDRSet) are held the
 * same way, keyed by their text, and select the CIDR identities
 * (sc_identity_set_cidr(): an identity standing for one IPv4 prefix) whose
 * prefix lies inside the CIDR and inside none of its excepts; a /0 CIDR also
 * selects world (2). They never select pod identities, as in Cilium. A CIDR
 * selector is "broken" when a prefix inside its CIDR could not be given an
 * identity or written to the ipcache (sc_cidr_set_broken()): the engine then
 * fails closed for it (policy/cidr.h).
 *
 * A change to a selector's set stamps it with the cache's revision, bumped
 * by every sc_identity_set() and sc_identity_delete(), so a consumer that
 * remembers the revision it computed at can tell which selections moved.
 */
#ifndef AXON_POLICY_SELECTOR_CACHE_H
#define AXON_POLICY_SELECTOR_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "htable.h"
#include "policy/labels.h"
#include "policy/rules.h"
#include "policy/selector.h"

#define SC_SETS_MAX 2

struct sc_identity {
	__u32 id;
	const struct label_set *sets[SC_SETS_MAX];
	size_t n_sets;
	bool has_prefix; /* a CIDR identity: prefix is what it stands for */
	struct policy_cidr prefix;
};

struct sc_selector {
	char *key; /* canonical text; "" for the wildcard selector */
	const struct policy_selector *sel;
	const struct policy_cidr_rule *cidr; /* a CIDR selector (sel NULL) */
	bool broken;			     /* see sc_cidr_set_broken() */
	__u32 *ids;			     /* sorted */
	size_t n_ids, cap;
	uint64_t revision; /* the cache's revision when ids last changed */
	bool used;	   /* added since the last sc_begin(), or referenced */
	const void **ptrs; /* referenced: the pointers to it (selectors or CIDR rules) */
	size_t refs, cap_ptrs;
};

/* The pointers sc_add() referenced while capturing. */
struct sc_capture {
	const void **ptrs;
	size_t n, cap;
};

struct selector_cache {
	struct sc_selector **sels; /* sorted by key */
	size_t n_sels, cap_sels;
	struct sc_identity *ids; /* sorted by id */
	size_t n_ids, cap_ids;
	uint64_t revision;
	/* The selectors added since sc_begin(), by the caller's pointer:
	 * sc_lookup() of one of them (the engine looks up every rule's
	 * selectors for every endpoint) costs no key text. */
	struct htable by_ptr;
	struct sc_capture *capture; /* sc_capture() */
	/* Prefixes that have no working CIDR identity (sc_cidr_set_broken()). */
	struct policy_cidr *broken;
	size_t n_broken;
	/* Selector evaluations done, for tests and status. */
	unsigned long evaluations;
};

void sc_init(struct selector_cache *sc);
void sc_destroy(struct selector_cache *sc);

int sc_identity_set(struct selector_cache *sc, __u32 id, const struct label_set *const *sets,
		    size_t n_sets);
/* The same labels at new addresses (the owner copied them): nothing evaluated.
 * -ENOENT for an identity not held. */
int sc_identity_repoint(struct selector_cache *sc, __u32 id, const struct label_set *const *sets,
			size_t n_sets);
/* A CIDR identity: its labels (cidr:<prefix>, reserved:world) and prefix. */
int sc_identity_set_cidr(struct selector_cache *sc, __u32 id, const struct label_set *set,
			 const struct policy_cidr *prefix);
void sc_identity_delete(struct selector_cache *sc, __u32 id);
const struct sc_identity *sc_identity_get(const struct selector_cache *sc, __u32 id);

void sc_begin(struct selector_cache *sc);
/* The cached entry for sel (created and evaluated if new). */
const struct sc_selector *sc_add(struct selector_cache *sc, const struct policy_selector *sel,
				 int *err);
/* The same for a CIDR peer's rule (valid until the next sc_begin()). */
const struct sc_selector *sc_add_cidr(struct selector_cache *sc,
				      const struct policy_cidr_rule *rule, int *err);
void sc_end(struct selector_cache *sc);
/* The prefixes without a working identity (copied): every CIDR selector
 * with one of them inside its CIDR is marked broken. -ENOMEM. */
int sc_cidr_set_broken(struct selector_cache *sc, const struct policy_cidr *v, size_t n);

const struct sc_selector *sc_ref(struct selector_cache *sc, const struct policy_selector *sel,
				 int *err);
void sc_unref(struct selector_cache *sc, const void *ptr);
void sc_sweep(struct selector_cache *sc);
/* Until sc_capture(sc, NULL), sc_add() and sc_add_cidr() reference (as
 * sc_ref()) and append the pointer to *cap. */
void sc_capture(struct selector_cache *sc, struct sc_capture *cap);

/* The entry of sel, or NULL when it was not added. */
const struct sc_selector *sc_lookup(const struct selector_cache *sc,
				    const struct policy_selector *sel);
const struct sc_selector *sc_lookup_cidr(const struct selector_cache *sc,
					 const struct policy_cidr_rule *rule);
bool sc_selects(const struct sc_selector *s, __u32 id);

/* The canonical text of sel into buf; -ENOSPC when it does not fit. */
int sc_selector_key(const struct policy_selector *sel, char *buf, size_t len);
/* "cidr:10.0.0.0/8 except 10.1.0.0/16,10.2.0.0/16", the key and the text
 * `agentctl policy selectors` shows; -ENOSPC when it does not fit. */
int sc_cidr_key(const struct policy_cidr_rule *rule, char *buf, size_t len);
/* Whether prefix in lies inside out (or is out). */
bool policy_cidr_inside(const struct policy_cidr *in, const struct policy_cidr *out);

#endif /* AXON_POLICY_SELECTOR_CACHE_H */
