// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `policies`: every network policy the agent holds, as the model the policy
 * engine consumes (policy/rules.h), sorted by kind, namespace and name; and
 * `identities`: every identity with its labels, the reserved ones first.
 * Selectors print as Kubernetes prints requirements, in Cilium's label names
 * ("k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop").
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "api/commands.h"
#include "policy/rules.h"

static cJSON *selector_json(const struct policy_selector *sel)
{
	cJSON *arr = cJSON_CreateArray();
	char buf[1024];

	for (size_t i = 0; i < sel->n_reqs; i++) {
		sel_req_format(&sel->reqs[i], buf, sizeof(buf));
		cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
	}
	return arr;
}

static cJSON *peer_json(const struct policy_peer *p)
{
	cJSON *o = cJSON_CreateObject(), *except;
	char buf[64];

	if (p->kind == POLICY_PEER_SELECTOR) {
		cJSON_AddItemToObject(o, "selector", selector_json(&p->sel));
		if (p->entity != POLICY_ENTITY_NOT_ENTITY)
			cJSON_AddStringToObject(o, "entity", policy_entity_name(p->entity));
		return o;
	}
	policy_cidr_format(&p->cidr.cidr, buf, sizeof(buf));
	cJSON_AddStringToObject(o, "cidr", buf);
	except = cJSON_AddArrayToObject(o, "except");
	for (size_t i = 0; i < p->cidr.n_except; i++) {
		policy_cidr_format(&p->cidr.except[i], buf, sizeof(buf));
		cJSON_AddItemToArray(except, cJSON_CreateString(buf));
	}
	return o;
}

static const char *proto_name(__u8 proto)
{
	switch (proto) {
	case 0:
		return "ANY";
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	case IPPROTO_ICMP:
		return "ICMP";
	case IPPROTO_ICMPV6:
		return "ICMPv6";
	case IPPROTO_IGMP:
		return "IGMP";
	case 112:
		return "VRRP";
	default:
		return "?";
	}
}

static cJSON *entry_json(const struct policy_rule_entry *e)
{
	cJSON *o = cJSON_CreateObject(), *arr;
	char what[256];

	cJSON_AddBoolToObject(o, "deny", e->deny);
	cJSON_AddBoolToObject(o, "all_peers", e->all_peers);
	arr = cJSON_AddArrayToObject(o, "peers");
	for (size_t i = 0; i < e->n_peers; i++)
		cJSON_AddItemToArray(arr, peer_json(&e->peers[i]));
	arr = cJSON_AddArrayToObject(o, "requires");
	for (size_t i = 0; i < e->n_requires; i++)
		cJSON_AddItemToArray(arr, selector_json(&e->requires[i]));
	arr = cJSON_AddArrayToObject(o, "ports");
	for (size_t i = 0; i < e->n_ports; i++) {
		const struct policy_port *p = &e->ports[i];
		cJSON *po = cJSON_CreateObject();

		cJSON_AddStringToObject(po, "protocol", proto_name(p->proto));
		if (p->name[0])
			cJSON_AddStringToObject(po, "name", p->name);
		else
			cJSON_AddNumberToObject(po, "port", p->port);
		if (p->end_port)
			cJSON_AddNumberToObject(po, "end_port", p->end_port);
		cJSON_AddItemToArray(arr, po);
	}
	arr = cJSON_AddArrayToObject(o, "icmps");
	for (size_t i = 0; i < e->n_icmps; i++) {
		cJSON *io = cJSON_CreateObject();

		cJSON_AddStringToObject(io, "family",
					e->icmps[i].family == AF_INET6 ? "IPv6" : "IPv4");
		cJSON_AddNumberToObject(io, "type", e->icmps[i].type);
		cJSON_AddItemToArray(arr, io);
	}
	policy_unsupported_text(e->unsupported, what, sizeof(what));
	cJSON_AddStringToObject(o, "unsupported", what);
	return o;
}

static cJSON *rule_json(const struct policy_rule *r)
{
	cJSON *o = cJSON_CreateObject(), *arr;

	cJSON_AddItemToObject(o, "subject", selector_json(&r->subject));
	cJSON_AddBoolToObject(o, "node_selector", r->node_subject);
	arr = cJSON_AddArrayToObject(o, "default_deny");
	if (r->default_deny & POLICY_INGRESS)
		cJSON_AddItemToArray(arr, cJSON_CreateString("Ingress"));
	if (r->default_deny & POLICY_EGRESS)
		cJSON_AddItemToArray(arr, cJSON_CreateString("Egress"));
	arr = cJSON_AddArrayToObject(o, "ingress");
	for (size_t i = 0; i < r->n_ingress; i++)
		cJSON_AddItemToArray(arr, entry_json(&r->ingress[i]));
	arr = cJSON_AddArrayToObject(o, "egress");
	for (size_t i = 0; i < r->n_egress; i++)
		cJSON_AddItemToArray(arr, entry_json(&r->egress[i]));
	return o;
}

static cJSON *policy_json(const struct policy *p)
{
	cJSON *o = cJSON_CreateObject(), *rules;
	char what[256];

	cJSON_AddStringToObject(o, "kind", policy_kind_name(p->kind));
	cJSON_AddStringToObject(o, "namespace", p->namespace);
	cJSON_AddStringToObject(o, "name", p->name);
	policy_unsupported_text(p->unsupported, what, sizeof(what));
	cJSON_AddStringToObject(o, "unsupported", what);
	rules = cJSON_AddArrayToObject(o, "rules");
	for (size_t i = 0; i < p->n_rules; i++)
		cJSON_AddItemToArray(rules, rule_json(&p->rules[i]));
	return o;
}

cJSON *api_cmd_policies(struct agent *a)
{
	cJSON *r = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(r, "policies");
	void **v = ht_sorted_values(&a->store.policies, NULL); /* by key */

	if (!v) {
		cJSON_Delete(r);
		return NULL;
	}
	for (size_t i = 0; v[i]; i++)
		cJSON_AddItemToArray(arr, policy_json(&((const struct store_policy *)v[i])->pol));
	free(v);
	return r;
}

static cJSON *identity_json(__u32 id, const struct label_set *labels, const char *ns)
{
	cJSON *o = cJSON_CreateObject(), *arr;
	char buf[1024];

	cJSON_AddNumberToObject(o, "id", id);
	cJSON_AddBoolToObject(o, "reserved", id < ALLOCATED_IDENTITY_MIN);
	if (id < ALLOCATED_IDENTITY_MIN)
		cJSON_AddStringToObject(o, "name", identity_reserved_name(id));
	else
		cJSON_AddStringToObject(o, "namespace", ns);
	arr = cJSON_AddArrayToObject(o, "labels");
	for (size_t i = 0; i < labels->n; i++) {
		label_format(&labels->labels[i], buf, sizeof(buf));
		cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
	}
	return o;
}

static int id_cmp(const void *x, const void *y)
{
	__u32 a = ((const struct store_identity *)x)->ident.id;
	__u32 b = ((const struct store_identity *)y)->ident.id;

	return a < b ? -1 : a > b;
}

cJSON *api_cmd_identities(struct agent *a)
{
	cJSON *r = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(r, "identities");
	void **v = ht_sorted_values(&a->store.identities, id_cmp);

	if (!v) {
		cJSON_Delete(r);
		return NULL;
	}
	for (__u32 id = 1; id <= RESERVED_IDENTITY_LAST; id++)
		cJSON_AddItemToArray(arr, identity_json(id, identity_reserved_labels(id), ""));
	for (size_t i = 0; v[i]; i++) {
		const struct store_identity *si = v[i];

		cJSON_AddItemToArray(
		    arr, identity_json(si->ident.id, &si->ident.labels, si->ident.namespace));
	}
	free(v);
	return r;
}
