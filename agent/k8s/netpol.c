// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * networking.k8s.io/v1 NetworkPolicy -> struct policy, with the meaning the
 * NetworkPolicy API reference gives each field and the label names Cilium
 * translates it to (pkg/k8s/network_policy.go):
 *
 *   podSelector          the subjects: its labels as k8s:<key>, AND
 *                        k8s:io.kubernetes.pod.namespace=<the policy's>;
 *                        {} selects every pod of the namespace
 *   policyTypes          default_deny; absent: Ingress, and Egress when the
 *                        policy has egress rules; a direction not listed keeps
 *                        no entries (its rules do not apply)
 *   ingress[] / egress[] one entry each; no from/to: any peer; listed policy
 *                        types with no rule: deny all in that direction
 *   peer podSelector     k8s:<key> AND the policy's namespace
 *   peer namespaceSelector  k8s:io.cilium.k8s.namespace.labels.<key>, {} is
 *                        k8s:io.kubernetes.pod.namespace Exists (any
 *                        namespace); with a podSelector in the same peer
 *                        both hold (AND, one selector); peers are ORed
 *   ipBlock              a CIDR peer, except strictly inside
 *   ports[]              protocol (TCP default; SCTP kept and flagged),
 *                        port number or name (absent: every port), endPort
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "k8s/policy_priv.h"

/* One podSelector, namespaceSelector or ipBlock peer. */
static int parse_peer(struct policy *p, const cJSON *peer, const char *path,
		      struct policy_peer *out, char *err, size_t errlen)
{
	static const struct k8s_sel_opts pod_opts = {.source = LABEL_SOURCE_K8S,
						     .drop_namespace_match = true};
	static const struct k8s_sel_opts pod_any_ns = {.source = LABEL_SOURCE_K8S};
	static const struct k8s_sel_opts ns_opts = {.source = LABEL_SOURCE_K8S,
						    .key_prefix = LABEL_NAMESPACE_LABELS};
	char pp[K8S_PATH_MAX], np[K8S_PATH_MAX], bp[K8S_PATH_MAX];
	const cJSON *pod, *ns, *block;
	struct k8s_sel_build b;
	size_t n_pod, n_ns;
	int ret;

	if (!cJSON_IsObject(peer))
		return k8s_json_fail(err, errlen, path, NULL, "expected an object");
	if ((ret = k8s_json_object(peer, path, "podSelector", false, &pod, err, errlen)) ||
	    (ret = k8s_json_object(peer, path, "namespaceSelector", false, &ns, err, errlen)) ||
	    (ret = k8s_json_object(peer, path, "ipBlock", false, &block, err, errlen)))
		return ret;
	if (block && (pod || ns))
		return k8s_json_fail(err, errlen, path, NULL,
				     "ipBlock may not be combined with podSelector or "
				     "namespaceSelector");
	if (block) {
		k8s_json_path(bp, sizeof(bp), path, "ipBlock");
		out->kind = POLICY_PEER_CIDR;
		k8s_json_path(pp, sizeof(pp), bp, "cidr");
		if (!k8s_json_get(block, "cidr"))
			return k8s_json_fail(err, errlen, pp, NULL, "required field is missing");
		ret = k8s_policy_cidr(k8s_json_get(block, "cidr"), pp, false, &out->cidr.cidr, err,
				      errlen);
		if (ret)
			return ret;
		return k8s_policy_cidr_except(block, bp, "except", true, &p->arena, &out->cidr, err,
					      errlen);
	}
	if (!pod && !ns)
		return k8s_json_fail(err, errlen, path, NULL,
				     "must specify podSelector, namespaceSelector or ipBlock");
	k8s_json_path(pp, sizeof(pp), path, "podSelector");
	k8s_json_path(np, sizeof(np), path, "namespaceSelector");
	if ((ret = k8s_sel_count(pod, pp, &n_pod, err, errlen)) ||
	    (ret = k8s_sel_count(ns, np, &n_ns, err, errlen)))
		return ret;
	out->kind = POLICY_PEER_SELECTOR;
	ret = k8s_sel_build_init(&b, &p->arena, n_pod + n_ns + 1);
	if (ret)
		return ret;
	if (ns) {
		ret = k8s_sel_add(&b, &p->arena, ns, np, &ns_opts, err, errlen);
		/* {} is every namespace: any pod that has one (Cilium's
		 * allowAllNamespacesRequirement). */
		if (!ret && !b.n)
			ret = k8s_sel_add_req(&b, &p->arena, LABEL_SOURCE_K8S, LABEL_POD_NAMESPACE,
					      NULL);
		if (!ret)
			ret = k8s_sel_add(&b, &p->arena, pod, pp, &pod_any_ns, err, errlen);
	} else {
		ret = k8s_sel_add(&b, &p->arena, pod, pp, &pod_opts, err, errlen);
		if (!ret)
			ret = k8s_sel_add_req(&b, &p->arena, LABEL_SOURCE_K8S, LABEL_POD_NAMESPACE,
					      p->namespace);
	}
	if (ret)
		return ret;
	k8s_sel_finish(&b, &out->sel);
	return 0;
}

static int parse_port(const cJSON *it, const char *path, struct policy *p, struct policy_port *out,
		      __u32 *unsupported, char *err, size_t errlen)
{
	const cJSON *port;
	const char *proto;
	char shown[64];
	long long end = 0;
	int ret;

	if (!cJSON_IsObject(it))
		return k8s_json_fail(err, errlen, path, NULL, "expected an object");
	ret = k8s_json_string_ref(it, path, "protocol", false, &proto, err, errlen);
	if (ret)
		return ret;
	if (k8s_proto_from_string(proto, &out->proto)) {
		k8s_json_quote(shown, sizeof(shown), proto);
		return k8s_json_fail(err, errlen, path, "protocol",
				     "unknown protocol \"%s\" (TCP, UDP, SCTP)", shown);
	}
	if (out->proto == IPPROTO_SCTP)
		*unsupported |= POLICY_UNSUP_SCTP;
	out->name = "";
	port = k8s_json_get(it, "port");
	if (cJSON_IsString(port) && port->valuestring) {
		if (!k8s_port_name_valid(port->valuestring, false)) {
			k8s_json_quote(shown, sizeof(shown), port->valuestring);
			return k8s_json_fail(err, errlen, path, "port",
					     "\"%s\" is not a port name (IANA service name)",
					     shown);
		}
		out->name = policy_arena_strdup(&p->arena, port->valuestring);
		if (!out->name)
			return -ENOMEM;
	} else if (port) {
		long long v;

		ret = k8s_json_int(it, path, "port", true, 1, 65535, &v, err, errlen);
		if (ret)
			return ret;
		out->port = (__u16)v;
	}
	ret = k8s_json_int(it, path, "endPort", false, 1, 65535, &end, err, errlen);
	if (ret)
		return ret;
	if (!end)
		return 0;
	if (!out->port)
		return k8s_json_fail(err, errlen, path, "endPort",
				     "may only be set with a numeric port");
	if (end < out->port)
		return k8s_json_fail(err, errlen, path, "endPort", "%lld is below port %u", end,
				     out->port);
	out->end_port = (__u16)end;
	return 0;
}

/* One ingress (peers: "from") or egress ("to") rule. */
static int parse_entry(struct policy *p, const cJSON *it, const char *path, const char *peers_key,
		       struct policy_entry *e, char *err, size_t errlen)
{
	char lp[K8S_PATH_MAX], ip[K8S_PATH_MAX];
	const cJSON *arr, *x;
	struct policy_peer *peers;
	struct policy_port *ports;
	size_t n, i = 0;
	int ret;

	if (!cJSON_IsObject(it))
		return k8s_json_fail(err, errlen, path, NULL, "expected an object");
	ret =
	    k8s_json_array(it, path, peers_key, false, K8S_MAX_POLICY_PEERS, &arr, &n, err, errlen);
	if (ret)
		return ret;
	/* "If this field is empty or missing, this rule matches all sources"
	 * (destinations). */
	e->all_peers = !n;
	peers = policy_arena_alloc(&p->arena, n, sizeof(*peers));
	if (!peers)
		return -ENOMEM;
	k8s_json_path(lp, sizeof(lp), path, peers_key);
	cJSON_ArrayForEach(x, arr)
	{
		k8s_json_index(ip, sizeof(ip), lp, i);
		ret = parse_peer(p, x, ip, &peers[i++], err, errlen);
		if (ret)
			return ret;
	}
	e->peers = peers;
	e->n_peers = n;

	ret = k8s_json_array(it, path, "ports", false, K8S_MAX_POLICY_PORTS, &arr, &n, err, errlen);
	if (ret)
		return ret;
	ports = policy_arena_alloc(&p->arena, n, sizeof(*ports));
	if (!ports)
		return -ENOMEM;
	k8s_json_path(lp, sizeof(lp), path, "ports");
	i = 0;
	cJSON_ArrayForEach(x, arr)
	{
		k8s_json_index(ip, sizeof(ip), lp, i);
		ret = parse_port(x, ip, p, &ports[i++], &e->unsupported, err, errlen);
		if (ret)
			return ret;
	}
	e->ports = ports;
	e->n_ports = n;
	return 0;
}

static int parse_direction(struct policy *p, const cJSON *spec, const char *key,
			   const char *peers_key, const struct policy_entry **out, size_t *n_out,
			   char *err, size_t errlen)
{
	char lp[K8S_PATH_MAX], ip[K8S_PATH_MAX];
	struct policy_entry *entries;
	const cJSON *arr, *it;
	size_t n, i = 0;
	int ret;

	ret =
	    k8s_json_array(spec, "spec", key, false, K8S_MAX_POLICY_ENTRIES, &arr, &n, err, errlen);
	if (ret)
		return ret;
	entries = policy_arena_alloc(&p->arena, n, sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	k8s_json_path(lp, sizeof(lp), "spec", key);
	cJSON_ArrayForEach(it, arr)
	{
		k8s_json_index(ip, sizeof(ip), lp, i);
		ret = parse_entry(p, it, ip, peers_key, &entries[i++], err, errlen);
		if (ret)
			return ret;
	}
	*out = entries;
	*n_out = n;
	return 0;
}

/* spec.policyTypes, defaulted as the API does (SetDefaults_NetworkPolicySpec). */
static int parse_types(const cJSON *spec, size_t n_egress, __u8 *types, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX], shown[64];
	const cJSON *arr, *it;
	size_t n, i = 0;
	int ret;

	ret = k8s_json_array(spec, "spec", "policyTypes", false, 16, &arr, &n, err, errlen);
	if (ret)
		return ret;
	if (!n) {
		*types = POLICY_INGRESS | (n_egress ? POLICY_EGRESS : 0);
		return 0;
	}
	*types = 0;
	cJSON_ArrayForEach(it, arr)
	{
		k8s_json_index(p, sizeof(p), "spec.policyTypes", i++);
		if (cJSON_IsString(it) && !strcmp(it->valuestring, "Ingress")) {
			*types |= POLICY_INGRESS;
		} else if (cJSON_IsString(it) && !strcmp(it->valuestring, "Egress")) {
			*types |= POLICY_EGRESS;
		} else {
			k8s_json_quote(shown, sizeof(shown),
				       cJSON_IsString(it) ? it->valuestring : "(not a string)");
			return k8s_json_fail(err, errlen, p, NULL,
					     "unknown policy type \"%s\" (Ingress, Egress)", shown);
		}
	}
	return 0;
}

static int parse_spec(struct policy *p, const cJSON *spec, char *err, size_t errlen)
{
	static const struct k8s_sel_opts subject_opts = {.source = LABEL_SOURCE_K8S,
							 .drop_namespace_match = true};
	struct policy_rule *r;
	struct k8s_sel_build b;
	const cJSON *pod;
	size_t n;
	int ret;

	r = policy_arena_alloc(&p->arena, 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	p->rules = r;
	p->n_rules = 1;
	/* Required by the API; absent reads as {} (Go's zero value). */
	ret = k8s_json_object(spec, "spec", "podSelector", false, &pod, err, errlen);
	if (ret)
		return ret;
	ret = k8s_sel_count(pod, "spec.podSelector", &n, err, errlen);
	if (ret)
		return ret;
	ret = k8s_sel_build_init(&b, &p->arena, n + 1);
	if (!ret)
		ret =
		    k8s_sel_add(&b, &p->arena, pod, "spec.podSelector", &subject_opts, err, errlen);
	if (!ret)
		ret = k8s_sel_add_req(&b, &p->arena, LABEL_SOURCE_K8S, LABEL_POD_NAMESPACE,
				      p->namespace);
	if (ret)
		return ret;
	k8s_sel_finish(&b, &r->subject);
	ret = parse_direction(p, spec, "ingress", "from", &r->ingress, &r->n_ingress, err, errlen);
	if (ret)
		return ret;
	ret = parse_direction(p, spec, "egress", "to", &r->egress, &r->n_egress, err, errlen);
	if (ret)
		return ret;
	ret = parse_types(spec, r->n_egress, &r->default_deny, err, errlen);
	if (ret)
		return ret;
	/* Rules of a direction the policy does not apply to have no effect. */
	if (!(r->default_deny & POLICY_INGRESS))
		r->n_ingress = 0;
	if (!(r->default_deny & POLICY_EGRESS))
		r->n_egress = 0;
	for (size_t i = 0; i < r->n_ingress; i++)
		p->unsupported |= r->ingress[i].unsupported;
	for (size_t i = 0; i < r->n_egress; i++)
		p->unsupported |= r->egress[i].unsupported;
	return 0;
}

int k8s_network_policy_from_json(const cJSON *obj, struct policy *p, char *err, size_t errlen)
{
	struct k8s_meta m;
	const cJSON *spec;
	int ret;

	memset(p, 0, sizeof(*p));
	p->kind = POLICY_KIND_NP;
	ret = k8s_meta_from_json(obj, &m, err, errlen);
	if (ret)
		goto cleanup;
	/* A namespaced object always has one; Cilium reads none as "default". */
	p->namespace = policy_arena_strdup(&p->arena, m.namespace[0] ? m.namespace : "default");
	p->name = policy_arena_strdup(&p->arena, m.name);
	if (!p->namespace || !p->name) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = k8s_json_object(obj, NULL, "spec", true, &spec, err, errlen);
	if (ret)
		goto cleanup;
	ret = parse_spec(p, spec, err, errlen);
	if (ret)
		goto cleanup;
	return 0;
cleanup:
	if (ret == -ENOMEM)
		k8s_policy_nomem(err, errlen);
	policy_free(p);
	return ret;
}
