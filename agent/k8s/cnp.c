// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cilium.io/v2 CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy ->
 * struct policy, as Cilium reads them (pkg/policy/api, and
 * pkg/k8s/apis/cilium.io/utils ParseToCiliumRule for the namespaces):
 *
 *   spec, specs[]       one rule each (at least one of them)
 *   endpointSelector    the subjects; keys carry their source ("k8s:app",
 *                       "$host") or none (any source); a CNP adds
 *                       k8s:io.kubernetes.pod.namespace=<its namespace>,
 *                       replacing a matchLabels entry on it
 *   nodeSelector        a host policy: kept, flagged (Axon has no host
 *                       endpoint to enforce it on)
 *   ingress, ingressDeny, egress, egressDeny
 *                       entries; enableDefaultDeny, else default deny in a
 *                       direction that has entries of either kind
 *   from/toEndpoints    selectors; unless one names the namespace (or, in a
 *                       CNP, namespace labels, or is a reserved: selector) a
 *                       CNP restricts it to its own namespace, a CCNP to pods
 *                       (k8s:io.kubernetes.pod.namespace Exists) unless the
 *                       subject selects reserved:init
 *   from/toRequires     kept per entry, namespaced the same way
 *   from/toCIDR, from/toCIDRSet (except)     CIDR peers
 *   from/toEntities     entity.h's selectors
 *   fromGroups, toGroups, fromNodes, toNodes, toServices, toFQDNs
 *                       flagged; they count as L3 (never as "any peer")
 *   toPorts, icmps      cnp_ports.c; with no L3 the entry takes any peer
 *   authentication      a mode other than "disabled" is flagged
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "k8s/policy_priv.h"

struct cnp_ctx {
	struct policy *p;
	const char *ns;	   /* "" for a CiliumClusterwideNetworkPolicy */
	bool matches_init; /* the rule's subject names reserved:init */
};

/* The field names of one direction. */
struct dir_keys {
	const char *endpoints, *requires, *cidr, *cidrset, *entities;
	const char *flagged[4]; /* L3 fields Axon keeps out, and their bits */
	__u32 flagged_bits[4];
};

static const struct dir_keys ingress_keys = {
    "fromEndpoints",
    "fromRequires",
    "fromCIDR",
    "fromCIDRSet",
    "fromEntities",
    {"fromGroups", "fromNodes"},
    {POLICY_UNSUP_GROUPS, POLICY_UNSUP_NODES},
};

static const struct dir_keys egress_keys = {
    "toEndpoints",
    "toRequires",
    "toCIDR",
    "toCIDRSet",
    "toEntities",
    {"toGroups", "toNodes", "toServices", "toFQDNs"},
    {POLICY_UNSUP_GROUPS, POLICY_UNSUP_NODES, POLICY_UNSUP_SERVICES, POLICY_UNSUP_FQDN},
};

/* Whether sel has a requirement of source on a key starting with prefix. */
static bool has_prefix(const struct k8s_sel_build *b, const char *source, const char *prefix)
{
	struct policy_selector s = {b->reqs, b->n};

	return selector_has_key_prefix(&s, source, prefix);
}

static bool has_key(const struct k8s_sel_build *b, const char *source, const char *key)
{
	struct policy_selector s = {b->reqs, b->n};

	return selector_has_key(&s, source, key);
}

/* A peer selector, with the namespace Cilium's getEndpointSelector adds. */
static int endpoint_selector(struct cnp_ctx *c, const cJSON *obj, const char *path, bool peer,
			     struct policy_selector *out, char *err, size_t errlen)
{
	static const struct k8s_sel_opts opts = {};
	struct policy_arena *a = &c->p->arena;
	struct k8s_sel_build b;
	size_t n;
	int ret;

	if (!cJSON_IsObject(obj))
		return k8s_json_fail(err, errlen, path, NULL, "expected a label selector object");
	ret = k8s_sel_count(obj, path, &n, err, errlen);
	if (ret)
		return ret;
	ret = k8s_sel_build_init(&b, a, n + 1);
	if (!ret)
		ret = k8s_sel_add(&b, a, obj, path, &opts, err, errlen);
	if (ret)
		return ret;
	/* A selector of reserved labels (host, world, ...) is no pod's. */
	if (peer && has_prefix(&b, LABEL_SOURCE_RESERVED, ""))
		goto done;
	if (has_key(&b, LABEL_SOURCE_K8S, LABEL_POD_NAMESPACE) ||
	    has_key(&b, LABEL_SOURCE_ANY, LABEL_POD_NAMESPACE))
		goto done;
	if (!c->ns[0]) {
		/* Cluster-wide: any pod, but pods only (initializing endpoints
		 * have no labels yet, so no namespace either). */
		if (!c->matches_init)
			ret = k8s_sel_add_req(&b, a, LABEL_SOURCE_K8S, LABEL_POD_NAMESPACE, NULL);
	} else if (!has_prefix(&b, LABEL_SOURCE_K8S, LABEL_NAMESPACE_LABELS) &&
		   !has_prefix(&b, LABEL_SOURCE_ANY, LABEL_NAMESPACE_LABELS)) {
		ret = k8s_sel_add_req(&b, a, LABEL_SOURCE_K8S, LABEL_POD_NAMESPACE, c->ns);
	}
	if (ret)
		return ret;
done:
	k8s_sel_finish(&b, out);
	return 0;
}

/* An array of selectors at obj.key into out[] (*n of them). */
static int selector_list(struct cnp_ctx *c, const cJSON *obj, const char *path, const char *key,
			 bool peer, struct policy_selector *out, size_t *n, char *err,
			 size_t errlen)
{
	char lp[K8S_PATH_MAX], ip[K8S_PATH_MAX];
	const cJSON *arr, *it;
	size_t i = 0;
	int ret;

	ret = k8s_json_array(obj, path, key, false, K8S_MAX_POLICY_PEERS, &arr, n, err, errlen);
	if (ret || !out)
		return ret;
	k8s_json_path(lp, sizeof(lp), path, key);
	cJSON_ArrayForEach(it, arr)
	{
		k8s_json_index(ip, sizeof(ip), lp, i);
		ret = endpoint_selector(c, it, ip, peer, &out[i++], err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

static int cidr_peers(struct cnp_ctx *c, const cJSON *obj, const char *path,
		      const struct dir_keys *k, struct policy_peer *peers, size_t *np,
		      struct policy_entry *e, char *err, size_t errlen)
{
	char lp[K8S_PATH_MAX], ip[K8S_PATH_MAX], cp[K8S_PATH_MAX];
	const cJSON *arr, *it;
	size_t n, i = 0;
	int ret;

	ret =
	    k8s_json_array(obj, path, k->cidr, false, K8S_MAX_POLICY_PEERS, &arr, &n, err, errlen);
	if (ret)
		return ret;
	k8s_json_path(lp, sizeof(lp), path, k->cidr);
	cJSON_ArrayForEach(it, arr)
	{
		struct policy_peer *pe = &peers[(*np)++];

		k8s_json_index(ip, sizeof(ip), lp, i++);
		pe->kind = POLICY_PEER_CIDR;
		ret = k8s_policy_cidr(it, ip, true, &pe->cidr.cidr, err, errlen);
		if (ret)
			return ret;
	}
	ret = k8s_json_array(obj, path, k->cidrset, false, K8S_MAX_POLICY_PEERS, &arr, &n, err,
			     errlen);
	if (ret)
		return ret;
	k8s_json_path(lp, sizeof(lp), path, k->cidrset);
	i = 0;
	cJSON_ArrayForEach(it, arr)
	{
		const cJSON *cidr;

		k8s_json_index(ip, sizeof(ip), lp, i++);
		if (!cJSON_IsObject(it))
			return k8s_json_fail(err, errlen, ip, NULL, "expected an object");
		cidr = k8s_json_get(it, "cidr");
		if (!cidr) {
			/* A CiliumCIDRGroup's prefixes: Axon does not watch them. */
			if (k8s_json_get(it, "cidrGroupRef") ||
			    k8s_json_get(it, "cidrGroupSelector")) {
				e->unsupported |= POLICY_UNSUP_CIDR_GROUP;
				continue;
			}
			return k8s_json_fail(err, errlen, ip, "cidr", "required field is missing");
		}
		k8s_json_path(cp, sizeof(cp), ip, "cidr");
		peers[*np].kind = POLICY_PEER_CIDR;
		ret = k8s_policy_cidr(cidr, cp, false, &peers[*np].cidr.cidr, err, errlen);
		if (ret)
			return ret;
		ret = k8s_policy_cidr_except(it, ip, "except", false, &c->p->arena,
					     &peers[*np].cidr, err, errlen);
		if (ret)
			return ret;
		(*np)++;
	}
	return 0;
}

/* fromEntities/toEntities: the entities, checked; *n_sels their selectors. */
static int entities(const cJSON *obj, const char *path, const char *key, int *list, size_t *n,
		    size_t *n_sels, char *err, size_t errlen)
{
	char lp[K8S_PATH_MAX], ip[K8S_PATH_MAX], shown[64];
	const struct policy_selector *s;
	const cJSON *arr, *it;
	size_t i = 0;
	int ret;

	*n_sels = 0;
	ret = k8s_json_array(obj, path, key, false, POLICY_ENTITY__NR * 4, &arr, n, err, errlen);
	if (ret)
		return ret;
	k8s_json_path(lp, sizeof(lp), path, key);
	cJSON_ArrayForEach(it, arr)
	{
		int e = cJSON_IsString(it) ? policy_entity_parse(it->valuestring) : -1;

		k8s_json_index(ip, sizeof(ip), lp, i);
		if (e < 0) {
			k8s_json_quote(shown, sizeof(shown),
				       cJSON_IsString(it) ? it->valuestring : "(not a string)");
			return k8s_json_fail(err, errlen, ip, NULL, "unsupported entity \"%s\"",
					     shown);
		}
		list[i++] = e;
		*n_sels += policy_entity_selectors(e, &s);
	}
	return 0;
}

static int parse_auth(const cJSON *it, const char *path, struct policy_entry *e, char *err,
		      size_t errlen)
{
	const cJSON *auth;
	const char *mode;
	int ret;

	ret = k8s_json_object(it, path, "authentication", false, &auth, err, errlen);
	if (ret || !auth)
		return ret;
	ret = k8s_json_string_ref(auth, path, "mode", false, &mode, err, errlen);
	if (ret)
		return ret;
	if (mode && strcmp(mode, "disabled"))
		e->unsupported |= POLICY_UNSUP_AUTH;
	return 0;
}

static int parse_entry(struct cnp_ctx *c, const cJSON *it, const char *path, bool ingress,
		       bool deny, struct policy_entry *e, char *err, size_t errlen)
{
	const struct dir_keys *k = ingress ? &ingress_keys : &egress_keys;
	struct policy_arena *a = &c->p->arena;
	size_t n_ep, n_req, n_cidr, n_set, n_ent, n_sels, np = 0;
	int ents[POLICY_ENTITY__NR * 4];
	struct policy_selector *sels, *req;
	struct policy_peer *peers;
	const cJSON *arr;
	bool l3, l4;
	size_t n;
	int ret;

	if (!cJSON_IsObject(it))
		return k8s_json_fail(err, errlen, path, NULL, "expected an object");
	e->deny = deny;
	if ((ret = selector_list(c, it, path, k->endpoints, true, NULL, &n_ep, err, errlen)) ||
	    (ret = selector_list(c, it, path, k->requires, false, NULL, &n_req, err, errlen)) ||
	    (ret = k8s_json_array(it, path, k->cidr, false, K8S_MAX_POLICY_PEERS, &arr, &n_cidr,
				  err, errlen)) ||
	    (ret = k8s_json_array(it, path, k->cidrset, false, K8S_MAX_POLICY_PEERS, &arr, &n_set,
				  err, errlen)) ||
	    (ret = entities(it, path, k->entities, ents, &n_ent, &n_sels, err, errlen)))
		return ret;
	l3 = n_ep || n_cidr || n_set || n_ent;
	for (size_t i = 0; i < 4 && k->flagged[i]; i++) {
		ret = k8s_json_array(it, path, k->flagged[i], false, K8S_MAX_POLICY_PEERS, &arr, &n,
				     err, errlen);
		if (ret)
			return ret;
		if (n) {
			e->unsupported |= k->flagged_bits[i];
			l3 = true;
		}
	}
	peers = policy_arena_alloc(a, n_ep + n_cidr + n_set + n_sels, sizeof(*peers));
	sels = policy_arena_alloc(a, n_ep, sizeof(*sels));
	req = policy_arena_alloc(a, n_req, sizeof(*req));
	if (!peers || !sels || !req)
		return -ENOMEM;
	if ((ret = selector_list(c, it, path, k->endpoints, true, sels, &n_ep, err, errlen)) ||
	    (ret = selector_list(c, it, path, k->requires, false, req, &n_req, err, errlen)))
		return ret;
	for (size_t i = 0; i < n_ep; i++) {
		peers[np].kind = POLICY_PEER_SELECTOR;
		peers[np++].sel = sels[i];
	}
	ret = cidr_peers(c, it, path, k, peers, &np, e, err, errlen);
	if (ret)
		return ret;
	for (size_t i = 0; i < n_ent; i++) {
		const struct policy_selector *es;
		size_t m = policy_entity_selectors(ents[i], &es);

		for (size_t j = 0; j < m; j++) {
			peers[np].kind = POLICY_PEER_SELECTOR;
			peers[np].entity = ents[i];
			peers[np++].sel = es[j];
		}
	}
	e->peers = peers;
	e->n_peers = np;
	e->requires = req;
	e->n_requires = n_req;
	ret = k8s_cnp_l4(it, path, deny, a, e, &l4, err, errlen);
	if (ret)
		return ret;
	if (!deny) {
		ret = parse_auth(it, path, e, err, errlen);
		if (ret)
			return ret;
	}
	/* Cilium: L4 without L3 is any peer; L4 given that yields no port (a
	 * PortRule without ports) matches nothing. */
	e->all_peers = !l3 && l4;
	if (l4 && !e->n_ports && !e->n_icmps) {
		e->all_peers = false;
		e->n_peers = 0;
	}
	return 0;
}

/* ingress + ingressDeny (or egress + egressDeny): allow entries, then deny. */
static int parse_direction(struct cnp_ctx *c, const cJSON *r, const char *path, bool ingress,
			   const struct policy_entry **out, size_t *n_out, char *err, size_t errlen)
{
	const char *keys[2] = {ingress ? "ingress" : "egress",
			       ingress ? "ingressDeny" : "egressDeny"};
	char lp[K8S_PATH_MAX], ip[K8S_PATH_MAX];
	const cJSON *arr[2], *it;
	struct policy_entry *entries;
	size_t n[2], k = 0;
	int ret;

	for (int d = 0; d < 2; d++) {
		ret = k8s_json_array(r, path, keys[d], false, K8S_MAX_POLICY_ENTRIES, &arr[d],
				     &n[d], err, errlen);
		if (ret)
			return ret;
	}
	entries = policy_arena_alloc(&c->p->arena, n[0] + n[1], sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	for (int d = 0; d < 2; d++) {
		size_t i = 0;

		k8s_json_path(lp, sizeof(lp), path, keys[d]);
		cJSON_ArrayForEach(it, arr[d])
		{
			k8s_json_index(ip, sizeof(ip), lp, i++);
			ret = parse_entry(c, it, ip, ingress, d == 1, &entries[k], err, errlen);
			if (ret)
				return ret;
			c->p->unsupported |= entries[k++].unsupported;
		}
	}
	*out = entries;
	*n_out = k;
	return 0;
}

static int parse_subject(struct cnp_ctx *c, const cJSON *r, const char *path,
			 struct policy_rule *out, char *err, size_t errlen)
{
	struct k8s_sel_opts opts = {.drop_namespace_match = c->ns[0] != '\0'};
	struct policy_arena *a = &c->p->arena;
	char sp[K8S_PATH_MAX];
	const cJSON *es, *nsel;
	struct k8s_sel_build b;
	size_t n;
	int ret;

	if ((ret = k8s_json_object(r, path, "endpointSelector", false, &es, err, errlen)) ||
	    (ret = k8s_json_object(r, path, "nodeSelector", false, &nsel, err, errlen)))
		return ret;
	if (!es && !nsel)
		return k8s_json_fail(err, errlen, path, NULL,
				     "rule must have one of endpointSelector or nodeSelector");
	if (es && nsel)
		return k8s_json_fail(err, errlen, path, NULL,
				     "rule cannot have both endpointSelector and nodeSelector");
	if (nsel) {
		out->node_subject = true;
		c->p->unsupported |= POLICY_UNSUP_NODES;
		opts.drop_namespace_match = false;
	}
	k8s_json_path(sp, sizeof(sp), path, es ? "endpointSelector" : "nodeSelector");
	ret = k8s_sel_count(es ? es : nsel, sp, &n, err, errlen);
	if (!ret)
		ret = k8s_sel_build_init(&b, a, n + 1);
	if (!ret)
		ret = k8s_sel_add(&b, a, es ? es : nsel, sp, &opts, err, errlen);
	/* The subjects are the policy's own namespace's pods. */
	if (!ret && es && c->ns[0])
		ret = k8s_sel_add_req(&b, a, LABEL_SOURCE_K8S, LABEL_POD_NAMESPACE, c->ns);
	if (ret)
		return ret;
	k8s_sel_finish(&b, &out->subject);
	c->matches_init = selector_has_key(&out->subject, LABEL_SOURCE_RESERVED, "init");
	return 0;
}

/* enableDefaultDeny, else a direction with entries (Cilium's Sanitize). */
static int parse_default_deny(const cJSON *r, const char *path, struct policy_rule *out, char *err,
			      size_t errlen)
{
	bool ing = out->n_ingress > 0, egr = out->n_egress > 0;
	char p[K8S_PATH_MAX];
	const cJSON *dd;
	int ret;

	ret = k8s_json_object(r, path, "enableDefaultDeny", false, &dd, err, errlen);
	if (ret)
		return ret;
	k8s_json_path(p, sizeof(p), path, "enableDefaultDeny");
	if ((ret = k8s_json_bool(dd, p, "ingress", &ing, NULL, err, errlen)) ||
	    (ret = k8s_json_bool(dd, p, "egress", &egr, NULL, err, errlen)))
		return ret;
	out->default_deny = (ing ? POLICY_INGRESS : 0) | (egr ? POLICY_EGRESS : 0);
	return 0;
}

static int parse_rule(struct cnp_ctx *c, const cJSON *r, const char *path, struct policy_rule *out,
		      char *err, size_t errlen)
{
	int ret;

	if (!cJSON_IsObject(r))
		return k8s_json_fail(err, errlen, path, NULL, "expected an object");
	ret = parse_subject(c, r, path, out, err, errlen);
	if (!ret)
		ret =
		    parse_direction(c, r, path, true, &out->ingress, &out->n_ingress, err, errlen);
	if (!ret)
		ret = parse_direction(c, r, path, false, &out->egress, &out->n_egress, err, errlen);
	if (!ret)
		ret = parse_default_deny(r, path, out, err, errlen);
	return ret;
}

static int parse_rules(struct cnp_ctx *c, const cJSON *obj, char *err, size_t errlen)
{
	char p[K8S_PATH_MAX];
	struct policy_rule *rules;
	const cJSON *spec, *specs, *it;
	size_t n, k = 0, i = 0;
	int ret;

	if ((ret = k8s_json_object(obj, NULL, "spec", false, &spec, err, errlen)) ||
	    (ret = k8s_json_array(obj, NULL, "specs", false, K8S_MAX_POLICY_RULES - 1, &specs, &n,
				  err, errlen)))
		return ret;
	if (!spec && !n)
		return k8s_json_fail(err, errlen, NULL, NULL, "one of spec, specs is required");
	rules = policy_arena_alloc(&c->p->arena, n + (spec ? 1 : 0), sizeof(*rules));
	if (!rules)
		return -ENOMEM;
	if (spec) {
		ret = parse_rule(c, spec, "spec", &rules[k++], err, errlen);
		if (ret)
			return ret;
	}
	cJSON_ArrayForEach(it, specs)
	{
		k8s_json_index(p, sizeof(p), "specs", i++);
		ret = parse_rule(c, it, p, &rules[k++], err, errlen);
		if (ret)
			return ret;
	}
	c->p->rules = rules;
	c->p->n_rules = k;
	return 0;
}

int k8s_cilium_policy_from_json(const cJSON *obj, bool clusterwide, struct policy *p, char *err,
				size_t errlen)
{
	struct cnp_ctx c = {.p = p};
	struct k8s_meta m;
	int ret;

	memset(p, 0, sizeof(*p));
	p->kind = clusterwide ? POLICY_KIND_CCNP : POLICY_KIND_CNP;
	ret = k8s_meta_from_json(obj, &m, err, errlen);
	if (ret)
		goto cleanup;
	p->namespace = policy_arena_strdup(&p->arena, clusterwide      ? ""
						      : m.namespace[0] ? m.namespace
								       : "default");
	p->name = policy_arena_strdup(&p->arena, m.name);
	if (!p->namespace || !p->name) {
		ret = -ENOMEM;
		goto cleanup;
	}
	c.ns = p->namespace;
	ret = parse_rules(&c, obj, err, errlen);
	if (ret)
		goto cleanup;
	return 0;
cleanup:
	if (ret == -ENOMEM)
		k8s_policy_nomem(err, errlen);
	policy_free(p);
	return ret;
}
