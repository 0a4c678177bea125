// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kubernetes LabelSelectors (matchLabels, matchExpressions) into selectors
 * over Cilium label keys (policy/selector.h), and the checks every label key
 * and value of the policy objects passes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "k8s/policy_priv.h"

int k8s_policy_nomem(char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

int k8s_label_source_check(const char *src, size_t len, const char *path, char *err, size_t errlen)
{
	if (!len)
		return k8s_json_fail(err, errlen, path, NULL, "empty label source before ':'");
	if (len > LABEL_SOURCE_MAX)
		return k8s_json_fail(err, errlen, path, NULL, "label source longer than %d bytes",
				     LABEL_SOURCE_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = src[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return k8s_json_fail(err, errlen, path, NULL,
					     "invalid byte 0x%02x in label source",
					     (unsigned char)c);
	}
	return 0;
}

/* Bytes no Kubernetes label has and that would make a printed selector
 * ambiguous, or a log line or JSON string awkward. */
static bool bad_byte(unsigned char c, bool key)
{
	if (c <= 0x20 || c >= 0x7f)
		return true;
	if (c == '"' || c == '\\' || c == ',' || c == '(' || c == ')')
		return true;
	return key && (c == '=' || c == '!' || c == ':');
}

static int check_chars(const char *s, bool key, const char *what, const char *path, char *err,
		       size_t errlen)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (bad_byte(*p, key))
			return k8s_json_fail(err, errlen, path, NULL, "invalid byte 0x%02x in %s",
					     *p, what);
	return 0;
}

int k8s_label_key_check(const char *key, const char *path, char *err, size_t errlen)
{
	size_t len = strlen(key);

	if (!len)
		return k8s_json_fail(err, errlen, path, NULL, "empty label key");
	if (len > LABEL_KEY_MAX)
		return k8s_json_fail(err, errlen, path, NULL, "label key longer than %d bytes",
				     LABEL_KEY_MAX);
	return check_chars(key, true, "label key", path, err, errlen);
}

int k8s_label_value_check(const char *value, const char *path, char *err, size_t errlen)
{
	if (strlen(value) > LABEL_VALUE_MAX)
		return k8s_json_fail(err, errlen, path, NULL, "label value longer than %d bytes",
				     LABEL_VALUE_MAX);
	return check_chars(value, false, "label value", path, err, errlen);
}

int k8s_sel_count(const cJSON *obj, const char *path, size_t *n, char *err, size_t errlen)
{
	const cJSON *ml, *me, *it;
	size_t nl = 0, ne;
	int ret;

	*n = 0;
	if (!obj)
		return 0;
	if (!cJSON_IsObject(obj))
		return k8s_json_fail(err, errlen, path, NULL, "expected a label selector object");
	ret = k8s_json_object(obj, path, "matchLabels", false, &ml, err, errlen);
	if (ret)
		return ret;
	cJSON_ArrayForEach(it, ml) nl++;
	ret = k8s_json_array(obj, path, "matchExpressions", false, K8S_MAX_SEL_REQS, &me, &ne, err,
			     errlen);
	if (ret)
		return ret;
	if (nl > K8S_MAX_SEL_REQS)
		return k8s_json_fail(err, errlen, path, "matchLabels", "more than %d labels",
				     K8S_MAX_SEL_REQS);
	*n = nl + ne;
	return 0;
}

int k8s_sel_build_init(struct k8s_sel_build *b, struct policy_arena *a, size_t cap)
{
	b->n = 0;
	b->cap = cap;
	b->reqs = policy_arena_alloc(a, cap, sizeof(*b->reqs));
	return b->reqs ? 0 : -ENOMEM;
}

static struct sel_req *next_req(struct k8s_sel_build *b)
{
	/* The caller counted: running out is a bug, not input. */
	return b->n < b->cap ? &b->reqs[b->n++] : NULL;
}

int k8s_sel_add_req(struct k8s_sel_build *b, struct policy_arena *a, const char *source,
		    const char *key, const char *value)
{
	struct sel_req *r = next_req(b);
	const char **values;

	if (!r)
		return -ENOSPC;
	r->source = source;
	r->key = key;
	if (!value) {
		r->op = SEL_OP_EXISTS;
		return 0;
	}
	values = policy_arena_alloc(a, 1, sizeof(*values));
	if (!values)
		return -ENOMEM;
	values[0] = value;
	r->op = SEL_OP_IN;
	r->values = values;
	r->n_values = 1;
	return 0;
}

/* The source and key a selector key stands for, copied into the arena. */
static int req_key(struct policy_arena *a, const char *raw, const char *path,
		   const struct k8s_sel_opts *o, const char **source, const char **key, char *err,
		   size_t errlen)
{
	const char *src = o->source, *k = raw, *prefix = o->key_prefix ? o->key_prefix : "";
	size_t srclen = src ? strlen(src) : 0, plen = strlen(prefix), klen;
	char *full;
	int ret;

	if (!src) {
		label_split(raw, &src, &srclen, &k);
		if (!src) {
			src = LABEL_SOURCE_ANY;
			srclen = strlen(src);
		}
		ret = k8s_label_source_check(src, srclen, path, err, errlen);
		if (ret)
			return ret;
	}
	ret = k8s_label_key_check(k, path, err, errlen);
	if (ret)
		return ret;
	klen = strlen(k);
	if (plen + klen > LABEL_KEY_MAX)
		return k8s_json_fail(err, errlen, path, NULL, "label key longer than %d bytes",
				     LABEL_KEY_MAX);
	*source = policy_arena_strndup(a, src, srclen);
	full = policy_arena_alloc(a, plen + klen + 1, 1);
	if (!*source || !full)
		return -ENOMEM;
	memcpy(full, prefix, plen);
	memcpy(full + plen, k, klen);
	*key = full;
	return 0;
}

static int add_match_labels(struct k8s_sel_build *b, struct policy_arena *a, const cJSON *ml,
			    const char *path, const struct k8s_sel_opts *o, char *err,
			    size_t errlen)
{
	char p[K8S_PATH_MAX];
	const cJSON *it;
	int ret;

	cJSON_ArrayForEach(it, ml)
	{
		const char *source, *key, *value;

		k8s_json_path(p, sizeof(p), path, it->string ? it->string : "?");
		if (!it->string)
			return k8s_json_fail(err, errlen, p, NULL, "label without a key");
		if (!cJSON_IsString(it) || !it->valuestring)
			return k8s_json_fail(err, errlen, p, NULL, "expected a string value");
		ret = req_key(a, it->string, p, o, &source, &key, err, errlen);
		if (ret)
			return ret;
		ret = k8s_label_value_check(it->valuestring, p, err, errlen);
		if (ret)
			return ret;
		/* Cilium's AddMatch of the policy's own namespace replaces it. */
		if (o->drop_namespace_match && !strcmp(source, LABEL_SOURCE_K8S) &&
		    !strcmp(key, LABEL_POD_NAMESPACE))
			continue;
		value = policy_arena_strdup(a, it->valuestring);
		if (!value)
			return -ENOMEM;
		ret = k8s_sel_add_req(b, a, source, key, value);
		if (ret)
			return ret;
	}
	return 0;
}

static int add_expression(struct k8s_sel_build *b, struct policy_arena *a, const cJSON *e,
			  const char *path, const struct k8s_sel_opts *o, char *err, size_t errlen)
{
	char vp[K8S_PATH_MAX], ip[K8S_PATH_MAX], shown[64];
	const char *raw, *opname;
	const char **values = NULL;
	const cJSON *arr, *v;
	struct sel_req *r;
	size_t n, i = 0;
	int op, ret;

	if (!cJSON_IsObject(e))
		return k8s_json_fail(err, errlen, path, NULL, "expected an object");
	ret = k8s_json_string_ref(e, path, "key", true, &raw, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_string_ref(e, path, "operator", true, &opname, err, errlen);
	if (ret)
		return ret;
	op = sel_op_parse(opname);
	if (op < 0) {
		k8s_json_quote(shown, sizeof(shown), opname);
		return k8s_json_fail(err, errlen, path, "operator",
				     "unknown operator \"%s\" (In, NotIn, Exists, DoesNotExist)",
				     shown);
	}
	ret = k8s_json_array(e, path, "values", false, K8S_MAX_SEL_VALUES, &arr, &n, err, errlen);
	if (ret)
		return ret;
	k8s_json_path(vp, sizeof(vp), path, "values");
	if ((op == SEL_OP_IN || op == SEL_OP_NOT_IN) && !n)
		return k8s_json_fail(err, errlen, vp, NULL, "must be non-empty for %s", opname);
	if ((op == SEL_OP_EXISTS || op == SEL_OP_DOES_NOT_EXIST) && n)
		return k8s_json_fail(err, errlen, vp, NULL, "must be empty for %s", opname);
	r = next_req(b);
	if (!r)
		return -ENOSPC;
	k8s_json_path(ip, sizeof(ip), path, "key");
	ret = req_key(a, raw, ip, o, &r->source, &r->key, err, errlen);
	if (ret)
		return ret;
	if (n) {
		values = policy_arena_alloc(a, n, sizeof(*values));
		if (!values)
			return -ENOMEM;
	}
	cJSON_ArrayForEach(v, arr)
	{
		k8s_json_index(ip, sizeof(ip), vp, i);
		if (!cJSON_IsString(v) || !v->valuestring)
			return k8s_json_fail(err, errlen, ip, NULL, "expected a string");
		ret = k8s_label_value_check(v->valuestring, ip, err, errlen);
		if (ret)
			return ret;
		values[i] = policy_arena_strdup(a, v->valuestring);
		if (!values[i++])
			return -ENOMEM;
	}
	sel_values_sort(values, n);
	r->op = op;
	r->values = values;
	r->n_values = n;
	return 0;
}

int k8s_sel_add(struct k8s_sel_build *b, struct policy_arena *a, const cJSON *obj, const char *path,
		const struct k8s_sel_opts *o, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX], ep[K8S_PATH_MAX];
	const cJSON *me, *e;
	size_t n, i = 0;
	int ret;

	if (!obj)
		return 0;
	/* Shape, counts and types: k8s_sel_count() ran on obj already. */
	k8s_json_path(p, sizeof(p), path, "matchLabels");
	ret = add_match_labels(b, a, k8s_json_get(obj, "matchLabels"), p, o, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_array(obj, path, "matchExpressions", false, K8S_MAX_SEL_REQS, &me, &n, err,
			     errlen);
	if (ret)
		return ret;
	k8s_json_path(p, sizeof(p), path, "matchExpressions");
	cJSON_ArrayForEach(e, me)
	{
		k8s_json_index(ep, sizeof(ep), p, i++);
		ret = add_expression(b, a, e, ep, o, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

void k8s_sel_finish(struct k8s_sel_build *b, struct policy_selector *out)
{
	selector_sort(b->reqs, b->n);
	out->reqs = b->reqs;
	out->n_reqs = b->n;
}
