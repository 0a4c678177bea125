// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The network-policy parsers (agent/k8s netpol.c, cnp.c, identity.c,
 * namespace.c) on the recorded list responses and on objects written for one
 * rule each: the label mapping into Cilium's names, policyTypes defaults,
 * peers (podSelector, namespaceSelector, both, ipBlock), ports, entities,
 * deny rules, and a table of malformed objects, each refused with the field.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "k8s/policy_objects.h"
#include "k8s_fixtures.h"

/* A selector as one line: its requirements, ", "-separated. */
static const char *sel(const struct policy_selector *s)
{
	static char buf[2048];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->n_reqs; i++) {
		char r[512];

		sel_req_format(&s->reqs[i], r, sizeof(r));
		off += snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? ", " : "", r);
	}
	return buf;
}

static const char *cidr(const struct policy_cidr *c)
{
	static char buf[64];

	policy_cidr_format(c, buf, sizeof(buf));
	return buf;
}

static const cJSON *find_item(const cJSON *list, const char *name)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items"))
	{
		const cJSON *md = cJSON_GetObjectItem(it, "metadata");

		if (!strcmp(cJSON_GetObjectItem(md, "name")->valuestring, name))
			return it;
	}
	fail_msg("no item %s", name);
	return NULL;
}

/* Parse a fixture item of kind ("np", "cnp", "ccnp") into p. */
static cJSON *fixture_policy(const char *file, const char *name, const char *kind, struct policy *p)
{
	cJSON *list = fixture_json(file);
	char err[256] = "";
	int ret;

	assert_non_null(list);
	if (!strcmp(kind, "np"))
		ret = k8s_network_policy_from_json(find_item(list, name), p, err, sizeof(err));
	else
		ret = k8s_cilium_policy_from_json(find_item(list, name), !strcmp(kind, "ccnp"), p,
						  err, sizeof(err));
	if (ret)
		fail_msg("%s %s: %s", file, name, err);
	return list;
}

static int parse_np(const char *json, struct policy *p, char *err, size_t errlen)
{
	cJSON *j = cJSON_Parse(json);
	int ret;

	assert_non_null(j);
	ret = k8s_network_policy_from_json(j, p, err, errlen);
	cJSON_Delete(j);
	return ret;
}

static int parse_cnp(const char *json, bool ccnp, struct policy *p, char *err, size_t errlen)
{
	cJSON *j = cJSON_Parse(json);
	int ret;

	assert_non_null(j);
	ret = k8s_cilium_policy_from_json(j, ccnp, p, err, errlen);
	cJSON_Delete(j);
	return ret;
}

static void np_ok(const char *json, struct policy *p)
{
	char err[256] = "";

	if (parse_np(json, p, err, sizeof(err)))
		fail_msg("%s", err);
}

static void cnp_ok(const char *json, bool ccnp, struct policy *p)
{
	char err[256] = "";

	if (parse_cnp(json, ccnp, p, err, sizeof(err)))
		fail_msg("%s", err);
}

/* ---- every recorded object parses ---- */

static void count_parsed(const char *file, int kind, size_t want)
{
	cJSON *list = fixture_json(file);
	const cJSON *it;
	size_t n = 0;
	char err[256];

	assert_non_null(list);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items"))
	{
		struct k8s_identity id;
		struct k8s_namespace ns;
		struct policy p;
		int ret;

		switch (kind) {
		case 0:
			ret = k8s_network_policy_from_json(it, &p, err, sizeof(err));
			policy_free(&p);
			break;
		case 1:
		case 2:
			ret = k8s_cilium_policy_from_json(it, kind == 2, &p, err, sizeof(err));
			policy_free(&p);
			break;
		case 3:
			ret = k8s_identity_from_json(it, &id, err, sizeof(err));
			k8s_identity_free(&id);
			break;
		default:
			ret = k8s_namespace_from_json(it, &ns, err, sizeof(err));
			k8s_namespace_free(&ns);
			break;
		}
		if (ret)
			fail_msg("%s: %s", file, err);
		n++;
	}
	assert_int_equal(n, want);
	cJSON_Delete(list);
}

static void test_fixtures_parse(void **state)
{
	(void)state;
	count_parsed("networkpolicies-list.json", 0, 4);
	count_parsed("ciliumnetworkpolicies-list.json", 1, 3);
	count_parsed("ciliumclusterwidenetworkpolicies-list.json", 2, 2);
	count_parsed("ciliumidentities-list.json", 3, 5);
	count_parsed("namespaces-list.json", 4, 6);
}

/* ---- NetworkPolicy ---- */

static void test_np_web_selectors_ports_ipblock(void **state)
{
	const struct policy_rule *r;
	const struct policy_entry *in, *out;
	struct policy p;
	cJSON *list;

	(void)state;
	list = fixture_policy("networkpolicies-list.json", "web", "np", &p);
	assert_int_equal(p.kind, POLICY_KIND_NP);
	assert_string_equal(p.namespace, "shop");
	assert_string_equal(p.name, "web");
	assert_int_equal(p.n_rules, 1);
	r = &p.rules[0];
	assert_false(r->node_subject);
	/* podSelector app: web in shop. */
	assert_string_equal(sel(&r->subject), "k8s:app=web, k8s:io.kubernetes.pod.namespace=shop");
	assert_int_equal(r->default_deny, POLICY_INGRESS | POLICY_EGRESS);
	assert_int_equal(r->n_ingress, 1);
	in = &r->ingress[0];
	assert_false(in->deny);
	assert_false(in->all_peers);
	assert_int_equal(in->n_peers, 2);
	/* A podSelector peer: the policy's namespace. */
	assert_int_equal(in->peers[0].kind, POLICY_PEER_SELECTOR);
	assert_string_equal(sel(&in->peers[0].sel),
			    "k8s:app=frontend, k8s:io.kubernetes.pod.namespace=shop");
	/* namespaceSelector AND podSelector in one peer: one selector, any namespace
	 * whose labels match. */
	assert_string_equal(
	    sel(&in->peers[1].sel),
	    "k8s:app=prometheus, k8s:io.cilium.k8s.namespace.labels.team=observability");
	assert_int_equal(in->n_ports, 2);
	assert_int_equal(in->ports[0].proto, IPPROTO_TCP);
	assert_int_equal(in->ports[0].port, 8080);
	assert_string_equal(in->ports[0].name, "");
	/* A named port: kept as a name, resolved later per endpoint. */
	assert_int_equal(in->ports[1].port, 0);
	assert_string_equal(in->ports[1].name, "metrics");
	assert_int_equal(in->unsupported, 0);

	assert_int_equal(r->n_egress, 1);
	out = &r->egress[0];
	assert_int_equal(out->n_peers, 1);
	assert_int_equal(out->peers[0].kind, POLICY_PEER_CIDR);
	assert_string_equal(cidr(&out->peers[0].cidr.cidr), "10.0.0.0/8");
	assert_int_equal(out->peers[0].cidr.n_except, 1);
	assert_string_equal(cidr(&out->peers[0].cidr.except[0]), "10.96.0.0/12");
	assert_int_equal(out->ports[0].proto, IPPROTO_UDP);
	assert_int_equal(out->ports[0].port, 53);
	assert_int_equal(out->ports[0].end_port, 0);
	assert_int_equal(out->ports[1].port, 5432);
	assert_int_equal(out->ports[1].end_port, 5440);
	assert_int_equal(p.unsupported, 0);
	policy_free(&p);
	cJSON_Delete(list);
}

static void test_np_db_expressions_sctp(void **state)
{
	const struct policy_entry *in;
	struct policy p;
	cJSON *list;

	(void)state;
	list = fixture_policy("networkpolicies-list.json", "db", "np", &p);
	assert_string_equal(sel(&p.rules[0].subject),
			    "k8s:io.kubernetes.pod.namespace=shop, k8s:tier in (cache,db)");
	/* policyTypes [Ingress]: not isolated for egress. */
	assert_int_equal(p.rules[0].default_deny, POLICY_INGRESS);
	assert_int_equal(p.rules[0].n_egress, 0);
	in = &p.rules[0].ingress[0];
	assert_string_equal(sel(&in->peers[0].sel),
			    "k8s:app notin (batch), k8s:io.kubernetes.pod.namespace=shop, "
			    "!k8s:quarantine, k8s:role");
	/* namespaceSelector {}: every namespace (a pod has one). */
	assert_string_equal(sel(&in->peers[1].sel),
			    "k8s:app=backup, k8s:io.kubernetes.pod.namespace");
	/* SCTP: kept, flagged on the entry and the policy. */
	assert_int_equal(in->ports[0].proto, IPPROTO_SCTP);
	assert_int_equal(in->ports[0].port, 3868);
	assert_int_equal(in->unsupported, POLICY_UNSUP_SCTP);
	assert_int_equal(p.unsupported, POLICY_UNSUP_SCTP);
	policy_free(&p);
	cJSON_Delete(list);
}

static void test_np_default_deny_and_allow_all(void **state)
{
	struct policy p;
	cJSON *list;

	(void)state;
	/* podSelector {} and both types, no rule: every pod of shop denies all. */
	list = fixture_policy("networkpolicies-list.json", "default-deny", "np", &p);
	assert_string_equal(sel(&p.rules[0].subject), "k8s:io.kubernetes.pod.namespace=shop");
	assert_int_equal(p.rules[0].default_deny, POLICY_INGRESS | POLICY_EGRESS);
	assert_int_equal(p.rules[0].n_ingress, 0);
	assert_int_equal(p.rules[0].n_egress, 0);
	policy_free(&p);
	cJSON_Delete(list);
	/* ingress: [{}]: a rule without from matches every source, every port. */
	list = fixture_policy("networkpolicies-list.json", "allow-all-ingress", "np", &p);
	assert_string_equal(p.namespace, "monitoring");
	assert_int_equal(p.rules[0].n_ingress, 1);
	assert_true(p.rules[0].ingress[0].all_peers);
	assert_int_equal(p.rules[0].ingress[0].n_peers, 0);
	assert_int_equal(p.rules[0].ingress[0].n_ports, 0);
	policy_free(&p);
	cJSON_Delete(list);
}

#define NP(spec) "{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns1\"},\"spec\":{" spec "}}"

static void test_np_policy_types_defaults(void **state)
{
	struct policy p;

	(void)state;
	/* No policyTypes, no egress: Ingress only. */
	np_ok(NP("\"podSelector\":{},\"ingress\":[{}]"), &p);
	assert_int_equal(p.rules[0].default_deny, POLICY_INGRESS);
	assert_int_equal(p.rules[0].n_ingress, 1);
	policy_free(&p);
	/* Egress rules present: both. */
	np_ok(NP("\"podSelector\":{},\"egress\":[{\"to\":[{\"podSelector\":{}}]}]"), &p);
	assert_int_equal(p.rules[0].default_deny, POLICY_INGRESS | POLICY_EGRESS);
	assert_int_equal(p.rules[0].n_ingress, 0);
	assert_int_equal(p.rules[0].n_egress, 1);
	assert_string_equal(sel(&p.rules[0].egress[0].peers[0].sel),
			    "k8s:io.kubernetes.pod.namespace=ns1");
	policy_free(&p);
	/* An empty egress list is no egress section. */
	np_ok(NP("\"podSelector\":{},\"egress\":[]"), &p);
	assert_int_equal(p.rules[0].default_deny, POLICY_INGRESS);
	policy_free(&p);
	/* Only Egress: its ingress rules do not apply. */
	np_ok(NP("\"podSelector\":{},\"policyTypes\":[\"Egress\"],\"ingress\":[{}]"), &p);
	assert_int_equal(p.rules[0].default_deny, POLICY_EGRESS);
	assert_int_equal(p.rules[0].n_ingress, 0);
	assert_int_equal(p.rules[0].n_egress, 0);
	policy_free(&p);
	/* No spec.podSelector at all reads as {}; no namespace as "default". */
	np_ok("{\"metadata\":{\"name\":\"p\"},\"spec\":{}}", &p);
	assert_string_equal(sel(&p.rules[0].subject), "k8s:io.kubernetes.pod.namespace=default");
	policy_free(&p);
}

static void test_np_label_mapping(void **state)
{
	const struct policy_entry *e;
	struct policy p;

	(void)state;
	/* The subject's own namespace label cannot reach another namespace. */
	np_ok(NP("\"podSelector\":{\"matchLabels\":{\"io.kubernetes.pod.namespace\":\"other\","
		 "\"app\":\"x\"}}"),
	      &p);
	assert_string_equal(sel(&p.rules[0].subject),
			    "k8s:app=x, k8s:io.kubernetes.pod.namespace=ns1");
	policy_free(&p);
	np_ok(NP("\"podSelector\":{},\"ingress\":[{\"from\":["
		 "{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"a\"},"
		 "\"matchExpressions\":[{\"key\":\"env\",\"operator\":\"In\","
		 "\"values\":[\"prod\",\"dev\"]}]}},"
		 "{\"podSelector\":{}},"
		 "{\"ipBlock\":{\"cidr\":\"192.168.1.7/16\"}},"
		 "{\"ipBlock\":{\"cidr\":\"2001:db8::/32\",\"except\":[\"2001:db8:1::/48\"]}}]}]"),
	      &p);
	e = &p.rules[0].ingress[0];
	assert_int_equal(e->n_peers, 4);
	/* namespaceSelector alone: namespace labels, no pod restriction. */
	assert_string_equal(sel(&e->peers[0].sel),
			    "k8s:io.cilium.k8s.namespace.labels.env in (dev,prod), "
			    "k8s:io.cilium.k8s.namespace.labels.team=a");
	/* podSelector {}: every pod of the policy's namespace. */
	assert_string_equal(sel(&e->peers[1].sel), "k8s:io.kubernetes.pod.namespace=ns1");
	/* Host bits are masked off; IPv6 is kept (it never matches IPv4). */
	assert_string_equal(cidr(&e->peers[2].cidr.cidr), "192.168.0.0/16");
	assert_int_equal(e->peers[3].cidr.cidr.family, AF_INET6);
	assert_string_equal(cidr(&e->peers[3].cidr.cidr), "2001:db8::/32");
	assert_string_equal(cidr(&e->peers[3].cidr.except[0]), "2001:db8:1::/48");
	policy_free(&p);
}

static void test_np_ports(void **state)
{
	const struct policy_entry *e;
	struct policy p;

	(void)state;
	np_ok(NP("\"podSelector\":{},\"ingress\":[{\"ports\":[{},{\"protocol\":\"UDP\"},"
		 "{\"port\":\"dns-tcp\"},{\"port\":1000,\"endPort\":1000}]}]"),
	      &p);
	e = &p.rules[0].ingress[0];
	/* No from: any peer; the ports still hold. */
	assert_true(e->all_peers);
	assert_int_equal(e->n_ports, 4);
	/* No port: every port of TCP (the default protocol). */
	assert_int_equal(e->ports[0].proto, IPPROTO_TCP);
	assert_int_equal(e->ports[0].port, 0);
	assert_int_equal(e->ports[1].proto, IPPROTO_UDP);
	assert_string_equal(e->ports[2].name, "dns-tcp");
	assert_int_equal(e->ports[3].end_port, 1000);
	policy_free(&p);
}

/* ---- CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy ---- */

static void test_cnp_web(void **state)
{
	const struct policy_rule *r;
	const struct policy_entry *e;
	struct policy p;
	cJSON *list;

	(void)state;
	list = fixture_policy("ciliumnetworkpolicies-list.json", "web", "cnp", &p);
	assert_int_equal(p.kind, POLICY_KIND_CNP);
	r = &p.rules[0];
	/* A key without a source selects any source; the namespace is added. */
	assert_string_equal(sel(&r->subject), "any:app=web, k8s:io.kubernetes.pod.namespace=shop");
	assert_int_equal(r->default_deny, POLICY_INGRESS | POLICY_EGRESS);
	/* ingress then ingressDeny. */
	assert_int_equal(r->n_ingress, 2);
	e = &r->ingress[0];
	assert_false(e->deny);
	assert_string_equal(sel(&e->peers[0].sel),
			    "any:app=frontend, k8s:io.kubernetes.pod.namespace=shop");
	assert_int_equal(e->ports[0].proto, IPPROTO_TCP);
	assert_int_equal(e->ports[0].port, 8080);
	e = &r->ingress[1];
	assert_true(e->deny);
	assert_false(e->all_peers);
	/* world: reserved:world, world-ipv4, world-ipv6. */
	assert_int_equal(e->n_peers, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(e->peers[i].entity, POLICY_ENTITY_WORLD);
	assert_string_equal(sel(&e->peers[0].sel), "reserved:world=");
	assert_int_equal(e->n_ports, 0);

	assert_int_equal(r->n_egress, 3);
	e = &r->egress[0];
	/* cluster (8 selectors) and kube-apiserver (1). */
	assert_int_equal(e->n_peers, 9);
	assert_int_equal(e->peers[0].entity, POLICY_ENTITY_CLUSTER);
	assert_string_equal(sel(&e->peers[7].sel), "k8s:io.cilium.k8s.policy.cluster=default");
	assert_int_equal(e->peers[8].entity, POLICY_ENTITY_KUBE_APISERVER);
	e = &r->egress[1];
	assert_string_equal(cidr(&e->peers[0].cidr.cidr), "192.168.0.0/16");
	assert_string_equal(cidr(&e->peers[0].cidr.except[0]), "192.168.1.0/24");
	assert_int_equal(e->ports[0].port, 443);
	e = &r->egress[2];
	assert_true(e->deny);
	assert_string_equal(cidr(&e->peers[0].cidr.cidr), "203.0.113.0/24");
	assert_int_equal(p.unsupported, 0);
	policy_free(&p);
	cJSON_Delete(list);
}

static void test_cnp_specs_named_ports_icmp(void **state)
{
	const struct policy_rule *r;
	struct policy p;
	cJSON *list;

	(void)state;
	list = fixture_policy("ciliumnetworkpolicies-list.json", "monitoring", "cnp", &p);
	assert_int_equal(p.n_rules, 2);
	r = &p.rules[0];
	assert_string_equal(sel(&r->subject), "k8s:app=web, k8s:io.kubernetes.pod.namespace=shop");
	/* The peer names its namespace: kept, not replaced by the policy's. */
	assert_string_equal(sel(&r->ingress[0].peers[0].sel),
			    "any:app=prometheus, k8s:io.kubernetes.pod.namespace=monitoring");
	assert_string_equal(r->ingress[0].ports[0].name, "metrics");
	/* Only ingress entries: default deny for ingress only. */
	assert_int_equal(r->default_deny, POLICY_INGRESS);
	r = &p.rules[1];
	assert_string_equal(sel(&r->subject), "k8s:io.kubernetes.pod.namespace=shop, k8s:tier=db");
	/* fromEndpoints [{}]: every pod of the policy's namespace. */
	assert_string_equal(sel(&r->ingress[0].peers[0].sel),
			    "k8s:io.kubernetes.pod.namespace=shop");
	assert_int_equal(r->ingress[0].n_icmps, 1);
	assert_int_equal(r->ingress[0].icmps[0].family, AF_INET);
	assert_int_equal(r->ingress[0].icmps[0].type, 8);
	/* toPorts without L3: any peer; ANY is TCP, UDP and SCTP. */
	assert_true(r->ingress[1].all_peers);
	assert_int_equal(r->ingress[1].ports[0].proto, 0);
	assert_int_equal(r->ingress[1].ports[0].port, 5432);
	assert_int_equal(r->ingress[1].ports[0].end_port, 5440);
	policy_free(&p);
	cJSON_Delete(list);
}

static void test_cnp_l7_and_fqdn_fail_closed(void **state)
{
	const struct policy_rule *r;
	struct policy p;
	cJSON *list;

	(void)state;
	list = fixture_policy("ciliumnetworkpolicies-list.json", "api-l7", "cnp", &p);
	r = &p.rules[0];
	assert_int_equal(p.unsupported, POLICY_UNSUP_FQDN | POLICY_UNSUP_L7);
	/* toFQDNs is L3 Axon cannot resolve: no peer, and not "any peer". */
	assert_int_equal(r->egress[0].unsupported, POLICY_UNSUP_FQDN);
	assert_false(r->egress[0].all_peers);
	assert_int_equal(r->egress[0].n_peers, 0);
	assert_int_equal(r->egress[0].n_ports, 1);
	/* HTTP rules: the port is kept, the entry flagged. */
	assert_int_equal(r->egress[1].unsupported, POLICY_UNSUP_L7);
	assert_int_equal(r->egress[1].ports[0].port, 8080);
	policy_free(&p);
	cJSON_Delete(list);
}

static void test_ccnp(void **state)
{
	const struct policy_rule *r;
	struct policy p;
	cJSON *list;

	(void)state;
	list =
	    fixture_policy("ciliumclusterwidenetworkpolicies-list.json", "cluster-dns", "ccnp", &p);
	assert_int_equal(p.kind, POLICY_KIND_CCNP);
	assert_string_equal(p.namespace, "");
	r = &p.rules[0];
	/* endpointSelector {}: every endpoint of the cluster. */
	assert_int_equal(r->subject.n_reqs, 0);
	assert_string_equal(sel(&r->egress[0].peers[0].sel),
			    "k8s:io.kubernetes.pod.namespace=kube-system, k8s:k8s-app=kube-dns");
	assert_int_equal(r->egress[0].ports[0].port, 53);
	/* enableDefaultDeny.egress false: the policy only adds an allow. */
	assert_int_equal(r->default_deny, 0);
	policy_free(&p);
	cJSON_Delete(list);

	list = fixture_policy("ciliumclusterwidenetworkpolicies-list.json", "host-firewall", "ccnp",
			      &p);
	r = &p.rules[0];
	assert_true(r->node_subject);
	assert_string_equal(sel(&r->subject), "any:kubernetes.io/os=linux");
	assert_int_equal(p.unsupported, POLICY_UNSUP_NODES);
	assert_int_equal(r->ingress[0].n_peers, 2);
	assert_int_equal(r->ingress[0].peers[0].entity, POLICY_ENTITY_REMOTE_NODE);
	assert_int_equal(r->ingress[0].peers[1].entity, POLICY_ENTITY_HEALTH);
	assert_string_equal(cidr(&r->ingress[1].peers[0].cidr.cidr), "192.168.50.0/24");
	assert_int_equal(r->default_deny, POLICY_INGRESS);
	policy_free(&p);
	cJSON_Delete(list);
}

#define CNP(rule)  "{\"metadata\":{\"name\":\"c\",\"namespace\":\"ns1\"},\"spec\":{" rule "}}"
#define CCNP(rule) "{\"metadata\":{\"name\":\"c\"},\"spec\":{" rule "}}"

static void test_cnp_namespaces(void **state)
{
	const struct policy_entry *e;
	struct policy p;

	(void)state;
	cnp_ok(CNP("\"endpointSelector\":{\"matchLabels\":{\"k8s:io.kubernetes.pod.namespace\":"
		   "\"other\"}},\"ingress\":[{\"fromEndpoints\":["
		   "{\"matchLabels\":{\"k8s:io.cilium.k8s.namespace.labels.team\":\"a\"}},"
		   "{\"matchLabels\":{\"reserved:host\":\"\"}},"
		   "{\"matchExpressions\":[{\"key\":\"io.kubernetes.pod.namespace\","
		   "\"operator\":\"Exists\"}]},"
		   "{\"matchLabels\":{\"$world\":\"\"}}],"
		   "\"fromRequires\":[{\"matchLabels\":{\"env\":\"prod\"}}]}]"),
	       false, &p);
	/* The subject is always in the policy's namespace. */
	assert_string_equal(sel(&p.rules[0].subject), "k8s:io.kubernetes.pod.namespace=ns1");
	e = &p.rules[0].ingress[0];
	/* Namespace labels name other namespaces: no restriction added. */
	assert_string_equal(sel(&e->peers[0].sel), "k8s:io.cilium.k8s.namespace.labels.team=a");
	/* Reserved labels are no pod's: none added either. */
	assert_string_equal(sel(&e->peers[1].sel), "reserved:host=");
	/* A namespace given (any source) is the user's choice. */
	assert_string_equal(sel(&e->peers[2].sel), "any:io.kubernetes.pod.namespace");
	assert_string_equal(sel(&e->peers[3].sel), "reserved:world=");
	/* Requirements get the namespace, even the reserved ones would. */
	assert_int_equal(e->n_requires, 1);
	assert_string_equal(sel(&e->requires[0]),
			    "any:env=prod, k8s:io.kubernetes.pod.namespace=ns1");
	policy_free(&p);

	/* Cluster-wide: a peer without namespace is any pod, not any identity. */
	cnp_ok(CCNP("\"endpointSelector\":{},\"egress\":[{\"toEndpoints\":[{}]}]"), true, &p);
	assert_string_equal(sel(&p.rules[0].egress[0].peers[0].sel),
			    "k8s:io.kubernetes.pod.namespace");
	policy_free(&p);
	/* ... unless the subject is initializing endpoints (no labels at all). */
	cnp_ok(CCNP("\"endpointSelector\":{\"matchLabels\":{\"reserved:init\":\"\"}},"
		    "\"egress\":[{\"toEndpoints\":[{}]}]"),
	       true, &p);
	assert_string_equal(sel(&p.rules[0].egress[0].peers[0].sel), "");
	policy_free(&p);
}

static void test_cnp_entries_l3_l4(void **state)
{
	const struct policy_rule *r;
	struct policy p;

	(void)state;
	cnp_ok(CNP("\"endpointSelector\":{},"
		   "\"ingress\":[{},"
		   "{\"fromCIDR\":[\"10.1.2.3\",\"10.0.0.0/8\"]},"
		   "{\"toPorts\":[{\"ports\":[]}]},"
		   "{\"fromEntities\":[\"all\"],\"toPorts\":[{\"ports\":[{\"port\":\"HTTP\","
		   "\"protocol\":\"tcp\"},{\"port\":80,\"protocol\":\"sctp\"}]}]},"
		   "{\"icmps\":[{\"fields\":[{\"type\":\"EchoRequest\",\"family\":\"IPv6\"},"
		   "{\"type\":\"TimeExceeded\"}]}]}],"
		   "\"egress\":[{\"toServices\":[{\"k8sService\":{\"serviceName\":\"x\"}}]},"
		   "{\"toCIDRSet\":[{\"cidrGroupRef\":\"g\"}],\"toPorts\":[{\"ports\":"
		   "[{\"port\":\"53\"}]}]}],"
		   "\"enableDefaultDeny\":{\"ingress\":false}"),
	       false, &p);
	r = &p.rules[0];
	/* ingress: [{}]: selects nothing (default deny is off by request). */
	assert_false(r->ingress[0].all_peers);
	assert_int_equal(r->ingress[0].n_peers, 0);
	assert_int_equal(r->default_deny, POLICY_EGRESS);
	/* A bare IP is a /32. */
	assert_string_equal(cidr(&r->ingress[1].peers[0].cidr.cidr), "10.1.2.3/32");
	assert_int_equal(r->ingress[1].n_ports, 0);
	/* toPorts whose PortRule has no port: nothing at all. */
	assert_false(r->ingress[2].all_peers);
	assert_int_equal(r->ingress[2].n_peers, 0);
	/* all: the wildcard selector; port names lowercased, protocols any case. */
	assert_int_equal(r->ingress[3].peers[0].entity, POLICY_ENTITY_ALL);
	assert_int_equal(r->ingress[3].peers[0].sel.n_reqs, 0);
	assert_string_equal(r->ingress[3].ports[0].name, "http");
	assert_int_equal(r->ingress[3].ports[0].proto, IPPROTO_TCP);
	assert_int_equal(r->ingress[3].ports[1].proto, IPPROTO_SCTP);
	assert_int_equal(r->ingress[3].unsupported, POLICY_UNSUP_SCTP);
	/* ICMP names per family. */
	assert_true(r->ingress[4].all_peers);
	assert_int_equal(r->ingress[4].icmps[0].family, AF_INET6);
	assert_int_equal(r->ingress[4].icmps[0].type, 128);
	assert_int_equal(r->ingress[4].icmps[1].family, AF_INET);
	assert_int_equal(r->ingress[4].icmps[1].type, 11);
	/* toServices and CIDR groups: L3 Axon leaves out, so no peer. */
	assert_int_equal(r->egress[0].unsupported, POLICY_UNSUP_SERVICES);
	assert_false(r->egress[0].all_peers);
	assert_int_equal(r->egress[1].unsupported, POLICY_UNSUP_CIDR_GROUP);
	assert_false(r->egress[1].all_peers);
	assert_int_equal(r->egress[1].n_peers, 0);
	assert_int_equal(p.unsupported,
			 POLICY_UNSUP_SCTP | POLICY_UNSUP_SERVICES | POLICY_UNSUP_CIDR_GROUP);
	policy_free(&p);
}

static void test_unsupported_text(void **state)
{
	char buf[128];

	(void)state;
	policy_unsupported_text(POLICY_UNSUP_SCTP | POLICY_UNSUP_L7, buf, sizeof(buf));
	assert_string_equal(buf, "SCTP, L7 rules");
	policy_unsupported_text(0, buf, sizeof(buf));
	assert_string_equal(buf, "");
	policy_unsupported_text(POLICY_UNSUP_NODES | POLICY_UNSUP_FQDN, buf, 10);
	assert_string_equal(buf, "toFQDNs, ");
	assert_string_equal(policy_kind_name(POLICY_KIND_CCNP), "CiliumClusterwideNetworkPolicy");
}

/* ---- CiliumIdentity, Namespace ---- */

static void test_identity(void **state)
{
	struct k8s_identity id;
	char err[256], buf[128];
	cJSON *list, *j;

	(void)state;
	list = fixture_json("ciliumidentities-list.json");
	assert_int_equal(k8s_identity_from_json(find_item(list, "12345"), &id, err, sizeof(err)),
			 0);
	assert_int_equal(id.id, 12345);
	assert_string_equal(id.namespace, "shop");
	assert_int_equal(id.labels.n, 7);
	/* Sorted by key: app first. */
	label_format(&id.labels.labels[0], buf, sizeof(buf));
	assert_string_equal(buf, "k8s:app=web");
	assert_string_equal(label_set_find(&id.labels, "k8s", LABEL_POLICY_SERVICEACCOUNT)->value,
			    "web");
	k8s_identity_free(&id);
	cJSON_Delete(list);

	/* A key without a source is unspec (Cilium's NewLabel); no namespace. */
	j = cJSON_Parse("{\"metadata\":{\"name\":\"4294967295\"},\"security-labels\":"
			"{\"app\":\"x\",\"$host\":\"\",\"reserved:world\":\"\"}}");
	assert_int_equal(k8s_identity_from_json(j, &id, err, sizeof(err)), 0);
	assert_int_equal(id.id, 4294967295u);
	assert_string_equal(id.namespace, "");
	assert_non_null(label_set_find(&id.labels, "unspec", "app"));
	assert_non_null(label_set_find(&id.labels, "reserved", "host"));
	k8s_identity_free(&id);
	cJSON_Delete(j);
}

static void test_namespace(void **state)
{
	struct k8s_namespace ns;
	char err[256], buf[128];
	cJSON *list;

	(void)state;
	list = fixture_json("namespaces-list.json");
	assert_int_equal(k8s_namespace_from_json(find_item(list, "shop"), &ns, err, sizeof(err)),
			 0);
	assert_string_equal(ns.name, "shop");
	/* The labels a pod's identity carries for its namespace. */
	assert_int_equal(ns.labels.n, 3);
	label_format(&ns.labels.labels[0], buf, sizeof(buf));
	assert_string_equal(buf, "k8s:io.cilium.k8s.namespace.labels.env=prod");
	label_format(&ns.labels.labels[1], buf, sizeof(buf));
	assert_string_equal(buf,
			    "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop");
	k8s_namespace_free(&ns);
	cJSON_Delete(list);
}

/* ---- malformed objects ---- */

#define IDENT(rest) "{\"metadata\":{\"name\":\"300\"}," rest "}"

static const struct bad_case {
	const char *kind; /* np, cnp, ccnp, id, ns */
	const char *json;
	const char *err;
} bad_cases[] = {
    {"np", "[]", "object: expected a JSON object"},
    {"np", "{\"metadata\":{\"name\":\"p\"}}", "spec: required field is missing"},
    {"np", NP("\"podSelector\":[]"), "spec.podSelector: expected an object, got an array"},
    {"np", NP("\"podSelector\":{\"matchLabels\":{\"app\":5}}"),
     "spec.podSelector.matchLabels.app: expected a string value"},
    {"np", NP("\"podSelector\":{\"matchLabels\":{\"a b\":\"x\"}}"),
     "spec.podSelector.matchLabels.a b: invalid byte 0x20 in label key"},
    {"np", NP("\"podSelector\":{\"matchLabels\":{\"app\":\"a,b\"}}"),
     "spec.podSelector.matchLabels.app: invalid byte 0x2c in label value"},
    {"np", NP("\"podSelector\":{\"matchLabels\":{\"\":\"x\"}}"),
     "spec.podSelector.matchLabels: empty label key"},
    {"np", NP("\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Has\"}]}"),
     "spec.podSelector.matchExpressions[0].operator: unknown operator \"Has\" (In, NotIn, "
     "Exists, DoesNotExist)"},
    {"np", NP("\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}"),
     "spec.podSelector.matchExpressions[0].values: must be non-empty for In"},
    {"np",
     NP("\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\","
	"\"values\":[\"x\"]}]}"),
     "spec.podSelector.matchExpressions[0].values: must be empty for Exists"},
    {"np", NP("\"podSelector\":{\"matchExpressions\":[{\"operator\":\"Exists\"}]}"),
     "spec.podSelector.matchExpressions[0].key: required field is missing"},
    {"np",
     NP("\"podSelector\":{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\","
	"\"values\":[1]}]}"),
     "spec.podSelector.matchExpressions[0].values[0]: expected a string"},
    {"np", NP("\"policyTypes\":[\"Both\"]"),
     "spec.policyTypes[0]: unknown policy type \"Both\" (Ingress, Egress)"},
    {"np", NP("\"ingress\":{}"), "spec.ingress: expected an array, got an object"},
    {"np", NP("\"ingress\":[{\"from\":[{}]}]"),
     "spec.ingress[0].from[0]: must specify podSelector, namespaceSelector or ipBlock"},
    {"np",
     NP("\"ingress\":[{\"from\":[{\"podSelector\":{},\"ipBlock\":{\"cidr\":\"1.0.0.0/8\"}}]}]"),
     "spec.ingress[0].from[0]: ipBlock may not be combined with podSelector or "
     "namespaceSelector"},
    {"np", NP("\"egress\":[{\"to\":[{\"ipBlock\":{}}]}]"),
     "spec.egress[0].to[0].ipBlock.cidr: required field is missing"},
    {"np", NP("\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/33\"}}]}]"),
     "spec.egress[0].to[0].ipBlock.cidr: \"10.0.0.0/33\" is not a CIDR"},
    {"np", NP("\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":\"10.0.0.1\"}}]}]"),
     "spec.egress[0].to[0].ipBlock.cidr: \"10.0.0.1\" is not a CIDR"},
    {"np",
     NP("\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"11.0.0.0/"
	"16\"]}}]}]"),
     "spec.egress[0].to[0].ipBlock.except[0]: 11.0.0.0/16 is not strictly inside 10.0.0.0/8"},
    {"np",
     NP("\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"10.0.0.0/"
	"8\"]}}]}]"),
     "spec.egress[0].to[0].ipBlock.except[0]: 10.0.0.0/8 is not strictly inside 10.0.0.0/8"},
    {"np",
     NP("\"egress\":[{\"to\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/8\",\"except\":[\"::/64\"]}}]}]"),
     "spec.egress[0].to[0].ipBlock.except[0]: ::/64 is not strictly inside 10.0.0.0/8"},
    {"np", NP("\"ingress\":[{\"ports\":[{\"port\":0}]}]"),
     "spec.ingress[0].ports[0].port: 0 is not in 1..65535"},
    {"np", NP("\"ingress\":[{\"ports\":[{\"port\":\"80\"}]}]"),
     "spec.ingress[0].ports[0].port: \"80\" is not a port name (IANA service name)"},
    {"np", NP("\"ingress\":[{\"ports\":[{\"port\":\"Http\"}]}]"),
     "spec.ingress[0].ports[0].port: \"Http\" is not a port name (IANA service name)"},
    {"np", NP("\"ingress\":[{\"ports\":[{\"port\":\"a-very-long-port-name\"}]}]"),
     "spec.ingress[0].ports[0].port: \"a-very-long-port-name\" is not a port name (IANA "
     "service name)"},
    {"np", NP("\"ingress\":[{\"ports\":[{\"protocol\":\"ICMP\"}]}]"),
     "spec.ingress[0].ports[0].protocol: unknown protocol \"ICMP\" (TCP, UDP, SCTP)"},
    {"np", NP("\"ingress\":[{\"ports\":[{\"port\":90,\"endPort\":80}]}]"),
     "spec.ingress[0].ports[0].endPort: 80 is below port 90"},
    {"np", NP("\"ingress\":[{\"ports\":[{\"port\":\"http\",\"endPort\":80}]}]"),
     "spec.ingress[0].ports[0].endPort: may only be set with a numeric port"},
    {"np", NP("\"ingress\":[{\"ports\":[{\"endPort\":80}]}]"),
     "spec.ingress[0].ports[0].endPort: may only be set with a numeric port"},
    /* CiliumNetworkPolicy */
    {"cnp", "{\"metadata\":{\"name\":\"c\"}}", "object: one of spec, specs is required"},
    {"cnp", "{\"metadata\":{\"name\":\"c\"},\"specs\":[]}",
     "object: one of spec, specs is required"},
    {"cnp", "{\"metadata\":{\"name\":\"c\"},\"specs\":{}}",
     "specs: expected an array, got an object"},
    {"cnp", "{\"metadata\":{\"name\":\"c\"},\"specs\":[{\"endpointSelector\":{}},7]}",
     "specs[1]: expected an object"},
    {"cnp", CNP("\"ingress\":[]"), "spec: rule must have one of endpointSelector or nodeSelector"},
    {"cnp", CNP("\"endpointSelector\":{},\"nodeSelector\":{}"),
     "spec: rule cannot have both endpointSelector and nodeSelector"},
    {"cnp", CNP("\"endpointSelector\":{\"matchLabels\":{\"k8s:\":\"x\"}}"),
     "spec.endpointSelector.matchLabels.k8s:: empty label key"},
    {"cnp", CNP("\"endpointSelector\":{\"matchLabels\":{\":app\":\"x\"}}"),
     "spec.endpointSelector.matchLabels.:app: empty label source before ':'"},
    {"cnp", CNP("\"endpointSelector\":{\"matchLabels\":{\"k8s:a:b\":\"x\"}}"),
     "spec.endpointSelector.matchLabels.k8s:a:b: invalid byte 0x3a in label key"},
    {"cnp", CNP("\"endpointSelector\":{},\"ingress\":[{\"fromEntities\":[\"everyone\"]}]"),
     "spec.ingress[0].fromEntities[0]: unsupported entity \"everyone\""},
    {"cnp", CNP("\"endpointSelector\":{},\"egress\":[{\"toEndpoints\":[\"app\"]}]"),
     "spec.egress[0].toEndpoints[0]: expected a label selector object"},
    {"cnp", CNP("\"endpointSelector\":{},\"ingress\":[{\"fromCIDR\":[\"10.0.0.0/40\"]}]"),
     "spec.ingress[0].fromCIDR[0]: \"10.0.0.0/40\" is not a CIDR or an IP address"},
    {"cnp", CNP("\"endpointSelector\":{},\"ingress\":[{\"fromCIDR\":[\"10.0.0.0/+8\"]}]"),
     "spec.ingress[0].fromCIDR[0]: \"10.0.0.0/+8\" is not a CIDR or an IP address"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"ingress\":[{\"fromCIDRSet\":[{\"cidr\":\"10.1.2.3\"}]}]"),
     "spec.ingress[0].fromCIDRSet[0].cidr: \"10.1.2.3\" is not a CIDR"},
    {"cnp", CNP("\"endpointSelector\":{},\"ingress\":[{\"fromCIDRSet\":[{\"except\":[]}]}]"),
     "spec.ingress[0].fromCIDRSet[0].cidr: required field is missing"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"egress\":[{\"toCIDRSet\":[{\"cidr\":\"10.0.0.0/8\","
	 "\"except\":[\"10.0.0.0/7\"]}]}]"),
     "spec.egress[0].toCIDRSet[0].except[0]: 10.0.0.0/7 is not inside 10.0.0.0/8"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"ingress\":[{\"toPorts\":[{\"ports\":[{\"port\":\"80\"}]}],"
	 "\"icmps\":[{\"fields\":[{\"type\":8}]}]}]"),
     "spec.ingress[0].icmps: may only be present without toPorts (define a separate rule for "
     "toPorts)"},
    {"cnp", CNP("\"endpointSelector\":{},\"ingress\":[{\"toPorts\":[{\"ports\":[{}]}]}]"),
     "spec.ingress[0].toPorts[0].ports[0].port: required field is missing"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"ingress\":[{\"toPorts\":[{\"ports\":[{\"port\":\"65536\"}]}]}"
	 "]"),
     "spec.ingress[0].toPorts[0].ports[0].port: 65536 is not in 0..65535"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"ingress\":[{\"toPorts\":[{\"ports\":[{\"port\":\"-1\"}]}]}]"),
     "spec.ingress[0].toPorts[0].ports[0].port: \"-1\" is neither a port number nor a port "
     "name"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"ingress\":[{\"toPorts\":[{\"ports\":[{\"port\":\"80\","
	 "\"protocol\":\"QUIC\"}]}]}]"),
     "spec.ingress[0].toPorts[0].ports[0].protocol: unknown protocol \"QUIC\" (TCP, UDP, "
     "SCTP, ANY)"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"ingress\":[{\"toPorts\":[{\"ports\":[{\"port\":\"80\","
	 "\"endPort\":79}]}]}]"),
     "spec.ingress[0].toPorts[0].ports[0].endPort: 79 is below port 80"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"ingress\":[{\"toPorts\":[{\"ports\":[{\"port\":\"0\","
	 "\"endPort\":79}]}]}]"),
     "spec.ingress[0].toPorts[0].ports[0].endPort: may only be set with a port number above 0"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"ingress\":[{\"icmps\":[{\"fields\":[{\"type\":256}]}]}]"),
     "spec.ingress[0].icmps[0].fields[0].type: 256 is not in 0..255"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"ingress\":[{\"icmps\":[{\"fields\":[{\"type\":\"PacketTooBig\"}"
	 "]}]}]"),
     "spec.ingress[0].icmps[0].fields[0].type: ICMP type \"PacketTooBig\" not found in IPv4"},
    {"cnp",
     CNP("\"endpointSelector\":{},\"ingress\":[{\"icmps\":[{\"fields\":[{\"type\":8,"
	 "\"family\":\"IPv5\"}]}]}]"),
     "spec.ingress[0].icmps[0].fields[0].family: wrong family \"IPv5\" (IPv4, IPv6)"},
    {"cnp", CNP("\"endpointSelector\":{},\"enableDefaultDeny\":{\"ingress\":\"yes\"}"),
     "spec.enableDefaultDeny.ingress: expected a boolean, got a string"},
    {"ccnp", "{\"metadata\":{\"name\":\"c\"},\"specs\":[{\"nodeSelector\":{\"matchLabels\":[]}}]}",
     "specs[0].nodeSelector.matchLabels: expected an object, got an array"},
    /* CiliumIdentity */
    {"id", "{\"metadata\":{\"name\":\"web\"},\"security-labels\":{}}",
     "metadata.name: \"web\" is not an identity number"},
    {"id", "{\"metadata\":{\"name\":\"0300\"},\"security-labels\":{}}",
     "metadata.name: \"0300\" is not an identity number"},
    {"id", "{\"metadata\":{\"name\":\"2\"},\"security-labels\":{}}",
     "metadata.name: 2 is in Cilium's reserved range (1-255)"},
    {"id", "{\"metadata\":{\"name\":\"4294967296\"},\"security-labels\":{}}",
     "metadata.name: 4294967296 is not a 32-bit identity"},
    {"id", "{\"metadata\":{\"name\":\"300\"}}", "security-labels: required field is missing"},
    {"id", IDENT("\"security-labels\":[]"), "security-labels: expected an object, got an array"},
    {"id", IDENT("\"security-labels\":{\"k8s:app\":1}"),
     "security-labels.k8s:app: expected a string value"},
    {"id", IDENT("\"security-labels\":{\"k8s:app\":\"a\\u0001\"}"),
     "security-labels.k8s:app: invalid byte 0x01 in label value"},
    {"id", IDENT("\"security-labels\":{\"k8s:app\":\"a\",\"k8s:app\":\"b\"}"),
     "security-labels: label k8s:app given twice"},
    {"id", IDENT("\"security-labels\":{\"k/8s:app\":\"a\"}"),
     "security-labels.k/8s:app: invalid byte 0x2f in label source"},
    /* Namespace */
    {"ns", "{\"metadata\":{\"name\":\"n\",\"labels\":{\"team\":[]}}}",
     "metadata.labels.team: expected a string value"},
    {"ns", "{\"metadata\":{\"name\":\"n\",\"labels\":[]}}",
     "metadata.labels: expected an object, got an array"},
    {"ns", "{\"metadata\":{\"name\":\"n\",\"labels\":{\"a=b\":\"c\"}}}",
     "metadata.labels.a=b: invalid byte 0x3d in label key"},
};

static int parse_kind(const char *kind, const cJSON *j, char *err, size_t errlen)
{
	struct k8s_namespace ns;
	struct k8s_identity id;
	struct policy p;
	int ret;

	if (!strcmp(kind, "np")) {
		ret = k8s_network_policy_from_json(j, &p, err, errlen);
		policy_free(&p);
	} else if (!strcmp(kind, "cnp") || !strcmp(kind, "ccnp")) {
		ret = k8s_cilium_policy_from_json(j, !strcmp(kind, "ccnp"), &p, err, errlen);
		policy_free(&p);
	} else if (!strcmp(kind, "id")) {
		ret = k8s_identity_from_json(j, &id, err, errlen);
		k8s_identity_free(&id);
	} else {
		ret = k8s_namespace_from_json(j, &ns, err, errlen);
		k8s_namespace_free(&ns);
	}
	return ret;
}

static void test_malformed(void **state)
{
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		cJSON *j = cJSON_Parse(c->json);
		char err[256] = "";
		int ret;

		if (!j)
			fail_msg("case %zu: not JSON: %s", i, c->json);
		ret = parse_kind(c->kind, j, err, sizeof(err));
		if (ret != -EINVAL || strcmp(err, c->err)) {
			print_error("case %zu (%s %s):\n  got  %d \"%s\"\n  want -EINVAL \"%s\"\n",
				    i, c->kind, c->json, ret, err, c->err);
			failed++;
		}
		cJSON_Delete(j);
	}
	assert_int_equal(failed, 0);
}

/* Hostile sizes are refused before anything large is allocated. */
static void test_oversize(void **state)
{
	char *buf = malloc(1 << 20), err[256];
	size_t off = 0;
	cJSON *j;

	(void)state;
	off += sprintf(buf + off, "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"podSelector\":"
				  "{\"matchLabels\":{");
	for (int i = 0; i < 300; i++)
		off += sprintf(buf + off, "%s\"k%d\":\"v\"", i ? "," : "", i);
	sprintf(buf + off, "}}}}");
	j = cJSON_Parse(buf);
	assert_int_equal(parse_kind("np", j, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "spec.podSelector.matchLabels: more than 256 labels");
	cJSON_Delete(j);

	off = sprintf(buf, "{\"metadata\":{\"name\":\"c\"},\"spec\":{\"endpointSelector\":{},"
			   "\"ingress\":[{\"toPorts\":[{\"ports\":[");
	for (int i = 0; i < 41; i++)
		off += sprintf(buf + off, "%s{\"port\":\"%d\"}", i ? "," : "", i + 1);
	sprintf(buf + off, "]}]}]}}");
	j = cJSON_Parse(buf);
	assert_non_null(j);
	assert_int_equal(parse_kind("cnp", j, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "spec.ingress[0].toPorts[0].ports: more than 40 items");
	cJSON_Delete(j);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixtures_parse),
	    cmocka_unit_test(test_np_web_selectors_ports_ipblock),
	    cmocka_unit_test(test_np_db_expressions_sctp),
	    cmocka_unit_test(test_np_default_deny_and_allow_all),
	    cmocka_unit_test(test_np_policy_types_defaults),
	    cmocka_unit_test(test_np_label_mapping),
	    cmocka_unit_test(test_np_ports),
	    cmocka_unit_test(test_cnp_web),
	    cmocka_unit_test(test_cnp_specs_named_ports_icmp),
	    cmocka_unit_test(test_cnp_l7_and_fqdn_fail_closed),
	    cmocka_unit_test(test_ccnp),
	    cmocka_unit_test(test_cnp_namespaces),
	    cmocka_unit_test(test_cnp_entries_l3_l4),
	    cmocka_unit_test(test_unsupported_text),
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_namespace),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_oversize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
