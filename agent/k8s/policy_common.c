// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* CIDRs and port names, as the policy parsers (netpol.c, cnp.c) read them. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "k8s/policy_priv.h"

/* Keep the first len bits of addr (of bytes bytes). */
static void mask(__u8 *addr, size_t bytes, unsigned int len)
{
	for (size_t i = 0; i < bytes; i++) {
		unsigned int bits = len > i * 8 ? len - i * 8 : 0;

		if (bits < 8)
			addr[i] &= (__u8)(0xff << (8 - bits));
	}
}

int k8s_policy_cidr(const cJSON *item, const char *path, bool bare_ip, struct policy_cidr *out,
		    char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 1], shown[64];
	struct policy_cidr c = {};
	const char *s, *slash;
	unsigned int len = 0;
	size_t alen;

	if (!cJSON_IsString(item) || !item->valuestring)
		return k8s_json_fail(err, errlen, path, NULL, "expected a CIDR string");
	s = item->valuestring;
	k8s_json_quote(shown, sizeof(shown), s);
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen >= sizeof(buf))
		goto bad;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, c.addr) == 1)
		c.family = AF_INET;
	else if (inet_pton(AF_INET6, buf, c.addr) == 1)
		c.family = AF_INET6;
	else
		goto bad;
	if (!slash) {
		if (!bare_ip)
			goto bad;
		c.len = c.family == AF_INET ? 32 : 128;
		*out = c;
		return 0;
	}
	/* Digits only: strtol would take a sign, spaces, or hex. */
	if (!slash[1] || strlen(slash + 1) > 3)
		goto bad;
	for (const char *p = slash + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		len = len * 10 + (unsigned int)(*p - '0');
	}
	if (len > (c.family == AF_INET ? 32u : 128u))
		goto bad;
	c.len = (__u8)len;
	mask(c.addr, c.family == AF_INET ? 4 : 16, len);
	*out = c;
	return 0;
bad:
	return k8s_json_fail(err, errlen, path, NULL, "\"%s\" is not a CIDR%s", shown,
			     bare_ip ? " or an IP address" : "");
}

bool k8s_policy_cidr_contains(const struct policy_cidr *cidr, const struct policy_cidr *except,
			      bool strict)
{
	struct policy_cidr e = *except;

	if (e.family != cidr->family || e.len < cidr->len || (strict && e.len == cidr->len))
		return false;
	mask(e.addr, e.family == AF_INET ? 4 : 16, cidr->len);
	return !memcmp(e.addr, cidr->addr, sizeof(e.addr));
}

int k8s_policy_cidr_except(const cJSON *obj, const char *path, const char *key, bool strict,
			   struct policy_arena *a, struct policy_cidr_rule *r, char *err,
			   size_t errlen)
{
	char p[K8S_PATH_MAX], ip[K8S_PATH_MAX], in[64], out[64];
	struct policy_cidr *except;
	const cJSON *arr, *it;
	size_t n, i = 0;
	int ret;

	ret = k8s_json_array(obj, path, key, false, K8S_MAX_CIDR_EXCEPT, &arr, &n, err, errlen);
	if (ret || !n)
		return ret;
	except = policy_arena_alloc(a, n, sizeof(*except));
	if (!except)
		return -ENOMEM;
	k8s_json_path(p, sizeof(p), path, key);
	cJSON_ArrayForEach(it, arr)
	{
		k8s_json_index(ip, sizeof(ip), p, i);
		ret = k8s_policy_cidr(it, ip, false, &except[i], err, errlen);
		if (ret)
			return ret;
		if (!k8s_policy_cidr_contains(&r->cidr, &except[i], strict)) {
			policy_cidr_format(&except[i], in, sizeof(in));
			policy_cidr_format(&r->cidr, out, sizeof(out));
			return k8s_json_fail(err, errlen, ip, NULL, "%s is not %sinside %s", in,
					     strict ? "strictly " : "", out);
		}
		i++;
	}
	r->except = except;
	r->n_except = n;
	return 0;
}

bool k8s_port_name_valid(const char *s, bool ignore_case)
{
	size_t len = strlen(s);
	bool letter = false;

	if (!len || len > 15 || s[0] == '-' || s[len - 1] == '-' || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (ignore_case && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c >= 'a' && c <= 'z')
			letter = true;
		else if (!(c >= '0' && c <= '9') && c != '-')
			return false;
	}
	return letter;
}

int k8s_labels_from_meta(const cJSON *md, struct policy_arena *arena, const char *key_prefix,
			 struct label_set *out, char *err, size_t errlen)
{
	const size_t plen = strlen(key_prefix);
	struct policy_label *labels;
	char p[K8S_PATH_MAX];
	const cJSON *obj, *it;
	size_t n = 0, i = 0;
	int ret;

	ret = k8s_json_object(md, "metadata", "labels", false, &obj, err, errlen);
	if (ret)
		return ret;
	cJSON_ArrayForEach(it, obj) n++;
	if (n > K8S_MAX_LABELS)
		return k8s_json_fail(err, errlen, "metadata.labels", NULL, "more than %d labels",
				     K8S_MAX_LABELS);
	labels = policy_arena_alloc(arena, n, sizeof(*labels));
	if (!labels)
		return -ENOMEM;
	cJSON_ArrayForEach(it, obj)
	{
		struct policy_label *l = &labels[i++];
		size_t klen;
		char *key;

		k8s_json_path(p, sizeof(p), "metadata.labels", it->string ? it->string : "?");
		if (!it->string || !cJSON_IsString(it) || !it->valuestring)
			return k8s_json_fail(err, errlen, p, NULL, "expected a string value");
		if ((ret = k8s_label_key_check(it->string, p, err, errlen)) ||
		    (ret = k8s_label_value_check(it->valuestring, p, err, errlen)))
			return ret;
		klen = strlen(it->string);
		if (plen + klen > LABEL_KEY_MAX)
			return k8s_json_fail(err, errlen, p, NULL,
					     "label key longer than %zu bytes",
					     LABEL_KEY_MAX - plen);
		key = policy_arena_alloc(arena, plen + klen + 1, 1);
		l->value = policy_arena_strdup(arena, it->valuestring);
		if (!key || !l->value)
			return -ENOMEM;
		memcpy(key, key_prefix, plen);
		memcpy(key + plen, it->string, klen + 1);
		l->key = key;
		l->source = LABEL_SOURCE_K8S;
	}
	label_set_sort(labels, n);
	out->labels = labels;
	out->n = n;
	return 0;
}
