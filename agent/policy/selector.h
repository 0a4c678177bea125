/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Label selectors over identity labels, and their evaluation.
 *
 * A selector is a conjunction of requirements, each on one (source, key):
 * a Kubernetes LabelSelector's matchLabels become In with one value, its
 * matchExpressions keep their operator. Keys are Cilium's (labels.h): the
 * parsers (agent/k8s/netpol.c, cnp.c) have already turned a NetworkPolicy's
 * `app` into k8s:app and added the namespace; a requirement whose source is
 * "any" matches labels of every source.
 *
 * Semantics, Kubernetes' over a label set in which several sources may carry
 * one key: In holds when a matching label's value is one of the values;
 * NotIn when none is (so also when the key is absent); Exists when a matching
 * label exists; DoesNotExist when none does. A selector with no requirement
 * selects every identity (Cilium's wildcard selector).
 */
#ifndef AXON_POLICY_SELECTOR_H
#define AXON_POLICY_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/labels.h"

enum sel_op {
	SEL_OP_IN = 0,
	SEL_OP_NOT_IN,
	SEL_OP_EXISTS,
	SEL_OP_DOES_NOT_EXIST,
};

struct sel_req {
	const char *source; /* "k8s", "reserved", ... or "any" */
	const char *key;
	enum sel_op op;
	const char *const *values; /* In and NotIn: at least one; sorted */
	size_t n_values;
};

struct policy_selector {
	const struct sel_req *reqs; /* sorted by key, source, operator */
	size_t n_reqs;
};

bool selector_matches(const struct policy_selector *sel, const struct label_set *labels);
/* The same over the union of sets (an identity's labels and its namespace's). */
bool selector_matches_sets(const struct policy_selector *sel, const struct label_set *const *sets,
			   size_t n_sets);

/* Cilium's EndpointSelector.HasKey / HasKeyPrefix: a requirement, of any
 * operator, on source:key, or on a key beginning with prefix. */
bool selector_has_key(const struct policy_selector *sel, const char *source, const char *key);
bool selector_has_key_prefix(const struct policy_selector *sel, const char *source,
			     const char *prefix);

/* "In", "NotIn", "Exists", "DoesNotExist" <-> enum sel_op; -1 when unknown. */
int sel_op_parse(const char *s);
const char *sel_op_name(enum sel_op op);
/* A requirement as Kubernetes prints selectors: "k8s:app=web",
 * "k8s:tier in (cache,db)", "k8s:app notin (batch)", "k8s:role",
 * "!k8s:quarantine". Truncated to fit. */
void sel_req_format(const struct sel_req *r, char *buf, size_t len);

/* Sort requirements, and a requirement's values, into their canonical order. */
void selector_sort(struct sel_req *reqs, size_t n);
void sel_values_sort(const char **values, size_t n);

#endif /* AXON_POLICY_SELECTOR_H */
