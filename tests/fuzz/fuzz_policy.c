// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the network-policy parsers (NetworkPolicy,
 * CiliumNetworkPolicy, CCNP, CiliumIdentity, Namespace) and the Pod's, whose
 * identity labels are derived with each Namespace that parsed, over one JSON input,
 * and over each item when it is a List; then every selector of every policy
 * that parsed is evaluated against the identities that did (and the reserved
 * ones) and printed, so selector code runs on what the parsers let through.
 * Each parser must succeed or fail cleanly; ASan/UBSan and LeakSanitizer
 * judge the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "identity/labels.h"
#include "k8s/pod.h"
#include "k8s/policy_objects.h"

#define MAX_IDENTITIES 8
#define MAX_POLICIES   8

struct batch {
	struct k8s_identity ids[MAX_IDENTITIES];
	size_t n_ids;
	struct policy pols[MAX_POLICIES];
	size_t n_pols;
};

static size_t sink;

static void use_selector(const struct batch *b, const struct policy_selector *sel)
{
	char buf[256];

	for (size_t i = 0; i < sel->n_reqs; i++) {
		sel_req_format(&sel->reqs[i], buf, sizeof(buf));
		sink += strlen(buf);
	}
	for (__u32 id = 1; id <= RESERVED_IDENTITY_LAST; id++)
		sink += selector_matches(sel, identity_reserved_labels(id));
	for (size_t i = 0; i < b->n_ids; i++)
		sink += selector_matches(sel, &b->ids[i].labels);
}

static void use_entry(const struct batch *b, const struct policy_rule_entry *e)
{
	char buf[64];

	for (size_t i = 0; i < e->n_peers; i++) {
		if (e->peers[i].kind == POLICY_PEER_SELECTOR) {
			use_selector(b, &e->peers[i].sel);
			continue;
		}
		policy_cidr_format(&e->peers[i].cidr.cidr, buf, sizeof(buf));
		for (size_t j = 0; j < e->peers[i].cidr.n_except; j++)
			policy_cidr_format(&e->peers[i].cidr.except[j], buf, sizeof(buf));
	}
	for (size_t i = 0; i < e->n_requires; i++)
		use_selector(b, &e->requires[i]);
	for (size_t i = 0; i < e->n_ports; i++)
		sink += e->ports[i].port + strlen(e->ports[i].name);
	policy_unsupported_text(e->unsupported, buf, sizeof(buf));
}

static void use_policy(const struct batch *b, const struct policy *p)
{
	for (size_t r = 0; r < p->n_rules; r++) {
		const struct policy_rule *rule = &p->rules[r];

		use_selector(b, &rule->subject);
		for (size_t i = 0; i < rule->n_ingress; i++)
			use_entry(b, &rule->ingress[i]);
		for (size_t i = 0; i < rule->n_egress; i++)
			use_entry(b, &rule->egress[i]);
	}
}

static void parse_one(struct batch *b, const cJSON *obj)
{
	struct k8s_namespace ns = {};
	struct ident_labels l;
	struct k8s_pod pod;
	struct policy p;
	char err[256];
	bool have_ns;

	if (b->n_ids < MAX_IDENTITIES &&
	    !k8s_identity_from_json(obj, &b->ids[b->n_ids], err, sizeof(err)))
		b->n_ids++;
	have_ns = !k8s_namespace_from_json(obj, &ns, err, sizeof(err));
	if (!k8s_pod_from_json(obj, &pod, err, sizeof(err))) {
		if (!ident_labels_from_pod(&pod, have_ns ? &ns : NULL, IDENT_CLUSTER_DEFAULT, &l)) {
			sink += strlen(l.key);
			ident_labels_free(&l);
		}
		k8s_pod_free(&pod);
	}
	if (have_ns)
		k8s_namespace_free(&ns);
	for (int kind = 0; kind < 3; kind++) {
		int ret = kind ? k8s_cilium_policy_from_json(obj, kind == 2, &p, err, sizeof(err))
			       : k8s_network_policy_from_json(obj, &p, err, sizeof(err));

		if (ret)
			continue;
		if (b->n_pols < MAX_POLICIES)
			b->pols[b->n_pols++] = p;
		else
			policy_free(&p);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct batch b = {};
	const cJSON *it;
	cJSON *root;

	root = cJSON_ParseWithLength((const char *)data, size);
	if (!root)
		return 0;
	parse_one(&b, root);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "items")) parse_one(&b, it);
	for (size_t i = 0; i < b.n_pols; i++) {
		use_policy(&b, &b.pols[i]);
		policy_free(&b.pols[i]);
	}
	for (size_t i = 0; i < b.n_ids; i++)
		k8s_identity_free(&b.ids[i]);
	cJSON_Delete(root);
	return 0;
}
