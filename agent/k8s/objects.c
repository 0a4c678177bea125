// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What every object parser shares: metadata, protocols, ports, address lists.
 * The per-kind parsers live in service.c, endpointslice.c, cilium.c, node.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/objects_priv.h"

/*
 * Names and namespaces become keys ("ns/name"), log fields and JSON strings in
 * status, so besides the length check we refuse the few bytes that would make
 * either ambiguous, and anything that is not printable ASCII (control bytes
 * would forge log lines; invalid UTF-8 would make status unparseable). Names
 * of the kinds Axon watches are DNS labels or subdomains, all of which pass.
 */
static int check_name(const char *s, const char *path, const char *key, char *err, size_t errlen)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p > 0x7e)
			return k8s_json_fail(err, errlen, path, key,
					     "invalid byte 0x%02x (not printable ASCII)", *p);
		if (*p == '/' || *p == ' ' || *p == '"' || *p == '\\' || *p == '=')
			return k8s_json_fail(err, errlen, path, key, "invalid character '%c'", *p);
	}
	return 0;
}

int k8s_meta_from_json(const cJSON *obj, struct k8s_meta *meta, char *err, size_t errlen)
{
	struct k8s_meta m = {};
	const cJSON *md;
	int ret;

	if (!cJSON_IsObject(obj))
		return k8s_json_fail(err, errlen, NULL, NULL, "expected a JSON object");
	ret = k8s_json_object(obj, NULL, "metadata", true, &md, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_string(md, "metadata", "name", true, m.name, sizeof(m.name), err, errlen);
	if (ret)
		return ret;
	if (!m.name[0])
		return k8s_json_fail(err, errlen, "metadata", "name", "must not be empty");
	ret = check_name(m.name, "metadata", "name", err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_string(md, "metadata", "namespace", false, m.namespace, sizeof(m.namespace),
			      err, errlen);
	if (ret)
		return ret;
	ret = check_name(m.namespace, "metadata", "namespace", err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_string(md, "metadata", "uid", false, m.uid, sizeof(m.uid), err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_string(md, "metadata", "resourceVersion", false, m.resource_version,
			      sizeof(m.resource_version), err, errlen);
	if (ret)
		return ret;
	*meta = m;
	return 0;
}

int k8s_obj_meta_from_json(const cJSON *obj, struct k8s_obj_meta *meta, struct k8s_strpool *pool,
			   char *err, size_t errlen)
{
	struct k8s_meta m;
	int ret;

	ret = k8s_meta_from_json(obj, &m, err, errlen);
	if (ret)
		return ret;
	meta->namespace = m.namespace[0] ? k8s_strpool_add(pool, m.namespace, strlen(m.namespace))
					 : "";
	meta->name = k8s_strpool_add(pool, m.name, strlen(m.name));
	if (!meta->namespace || !meta->name) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int k8s_proto_from_string(const char *s, __u8 *proto)
{
	if (!s || !strcmp(s, "TCP"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(s, "UDP"))
		*proto = IPPROTO_UDP;
	else if (!strcmp(s, "SCTP"))
		*proto = IPPROTO_SCTP;
	else
		return -EINVAL;
	return 0;
}

const char *k8s_proto_name(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	default:
		return "?";
	}
}

int k8s_port_from_json(const cJSON *obj, const char *path, char *name, size_t namelen, __u8 *proto,
		       __u16 *port, char *err, size_t errlen)
{
	char shown[64];
	const char *ps;
	long long v;
	int ret;

	if (!cJSON_IsObject(obj))
		return k8s_json_fail(err, errlen, path, NULL, "expected an object");
	ret = k8s_json_string(obj, path, "name", false, name, namelen, err, errlen);
	if (ret)
		return ret;
	ret = k8s_json_string_ref(obj, path, "protocol", false, &ps, err, errlen);
	if (ret)
		return ret;
	if (k8s_proto_from_string(ps, proto)) {
		k8s_json_quote(shown, sizeof(shown), ps);
		return k8s_json_fail(err, errlen, path, "protocol", "unknown protocol \"%s\"",
				     shown);
	}
	ret = k8s_json_int(obj, path, "port", true, 1, 65535, &v, err, errlen);
	if (ret)
		return ret;
	*port = (__u16)v;
	return 0;
}

int k8s_ipv4_list(const cJSON *arr, size_t n, const char *path, __be32 **out, size_t *n_out,
		  char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	__be32 *addrs = NULL;
	const cJSON *it;
	size_t i = 0, k = 0;
	int ret = 0;

	*out = NULL;
	*n_out = 0;
	if (!n)
		return 0;
	addrs = calloc(n, sizeof(*addrs));
	if (!addrs)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr)
	{
		__be32 a;
		bool v4;

		k8s_json_index(p, sizeof(p), path, i++);
		ret = k8s_json_ip(it, p, &a, &v4, err, errlen);
		if (ret)
			goto cleanup;
		if (v4)
			addrs[k++] = a;
	}
	if (!k)
		goto cleanup;
	*out = addrs;
	*n_out = k;
	return 0;
cleanup:
	free(addrs);
	return ret;
}
