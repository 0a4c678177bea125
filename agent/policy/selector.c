// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/selector.h"

static const char *const op_names[] = {
    [SEL_OP_IN] = "In",
    [SEL_OP_NOT_IN] = "NotIn",
    [SEL_OP_EXISTS] = "Exists",
    [SEL_OP_DOES_NOT_EXIST] = "DoesNotExist",
};

int sel_op_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (!strcmp(s, op_names[i]))
			return (int)i;
	return -1;
}

const char *sel_op_name(enum sel_op op)
{
	return (unsigned)op < sizeof(op_names) / sizeof(op_names[0]) ? op_names[op] : "?";
}

static bool has_value(const struct sel_req *r, const char *v)
{
	for (size_t i = 0; i < r->n_values; i++)
		if (!strcmp(r->values[i], v))
			return true;
	return false;
}

/* Every label of the sets that carries the requirement's (source, key):
 * *found says whether there is one, *in whether one has a listed value. */
static void lookup(const struct sel_req *r, const struct label_set *const *sets, size_t n_sets,
		   bool *found, bool *in)
{
	*found = *in = false;
	for (size_t s = 0; s < n_sets; s++) {
		const struct label_set *set = sets[s];

		for (size_t i = 0; i < set->n; i++) {
			const struct policy_label *l = &set->labels[i];

			if (strcmp(l->key, r->key))
				continue;
			if (strcmp(r->source, LABEL_SOURCE_ANY) && strcmp(r->source, l->source))
				continue;
			*found = true;
			if (has_value(r, l->value))
				*in = true;
		}
	}
}

static bool req_matches(const struct sel_req *r, const struct label_set *const *sets, size_t n_sets)
{
	bool found, in;

	lookup(r, sets, n_sets, &found, &in);
	switch (r->op) {
	case SEL_OP_IN:
		return in;
	case SEL_OP_NOT_IN:
		return !in;
	case SEL_OP_EXISTS:
		return found;
	case SEL_OP_DOES_NOT_EXIST:
		return !found;
	}
	return false;
}

bool selector_matches_sets(const struct policy_selector *sel, const struct label_set *const *sets,
			   size_t n_sets)
{
	for (size_t i = 0; i < sel->n_reqs; i++)
		if (!req_matches(&sel->reqs[i], sets, n_sets))
			return false;
	return true;
}

bool selector_matches(const struct policy_selector *sel, const struct label_set *labels)
{
	return selector_matches_sets(sel, &labels, 1);
}

bool selector_has_key(const struct policy_selector *sel, const char *source, const char *key)
{
	for (size_t i = 0; i < sel->n_reqs; i++)
		if (!strcmp(sel->reqs[i].source, source) && !strcmp(sel->reqs[i].key, key))
			return true;
	return false;
}

bool selector_has_key_prefix(const struct policy_selector *sel, const char *source,
			     const char *prefix)
{
	size_t plen = strlen(prefix);

	for (size_t i = 0; i < sel->n_reqs; i++)
		if (!strcmp(sel->reqs[i].source, source) &&
		    !strncmp(sel->reqs[i].key, prefix, plen))
			return true;
	return false;
}

void sel_req_format(const struct sel_req *r, char *buf, size_t len)
{
	size_t off;
	int n;

	switch (r->op) {
	case SEL_OP_EXISTS:
		snprintf(buf, len, "%s:%s", r->source, r->key);
		return;
	case SEL_OP_DOES_NOT_EXIST:
		snprintf(buf, len, "!%s:%s", r->source, r->key);
		return;
	case SEL_OP_IN:
		if (r->n_values == 1) {
			snprintf(buf, len, "%s:%s=%s", r->source, r->key, r->values[0]);
			return;
		}
		break;
	case SEL_OP_NOT_IN:
		break;
	}
	n = snprintf(buf, len, "%s:%s %s (", r->source, r->key,
		     r->op == SEL_OP_IN ? "in" : "notin");
	for (size_t i = 0; n >= 0 && i < r->n_values; i++) {
		off = (size_t)n;
		if (off >= len)
			return;
		n += snprintf(buf + off, len - off, "%s%s", i ? "," : "", r->values[i]);
	}
	off = (size_t)n;
	if (n >= 0 && off < len)
		snprintf(buf + off, len - off, ")");
}

static int str_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int req_cmp(const void *x, const void *y)
{
	const struct sel_req *a = x, *b = y;
	int c = strcmp(a->key, b->key);

	if (!c)
		c = strcmp(a->source, b->source);
	if (!c)
		c = (int)a->op - (int)b->op;
	return c;
}

void sel_values_sort(const char **values, size_t n)
{
	if (n > 1)
		qsort(values, n, sizeof(*values), str_cmp);
}

void selector_sort(struct sel_req *reqs, size_t n)
{
	if (n > 1)
		qsort(reqs, n, sizeof(*reqs), req_cmp);
}
