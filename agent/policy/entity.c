// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <string.h>

#include "policy/entity.h"

static const char *const empty_value[] = {""};
static const char *const cluster_value[] = {POLICY_CLUSTER_NAME};

/* reserved:<name>, each the only requirement of its selector. */
static const struct sel_req r_world[] = {
    {LABEL_SOURCE_RESERVED, "world", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_world4[] = {
    {LABEL_SOURCE_RESERVED, "world-ipv4", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_world6[] = {
    {LABEL_SOURCE_RESERVED, "world-ipv6", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_host[] = {{LABEL_SOURCE_RESERVED, "host", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_init[] = {{LABEL_SOURCE_RESERVED, "init", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_ingress[] = {
    {LABEL_SOURCE_RESERVED, "ingress", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_unmanaged[] = {
    {LABEL_SOURCE_RESERVED, "unmanaged", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_remote[] = {
    {LABEL_SOURCE_RESERVED, "remote-node", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_health[] = {
    {LABEL_SOURCE_RESERVED, "health", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_none[] = {{LABEL_SOURCE_RESERVED, "none", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_apiserver[] = {
    {LABEL_SOURCE_RESERVED, "kube-apiserver", SEL_OP_IN, empty_value, 1}};
static const struct sel_req r_cluster[] = {
    {LABEL_SOURCE_K8S, LABEL_POLICY_CLUSTER, SEL_OP_IN, cluster_value, 1},
};

static const struct policy_selector s_all[] = {{NULL, 0}};
static const struct policy_selector s_world[] = {{r_world, 1}, {r_world4, 1}, {r_world6, 1}};
static const struct policy_selector s_world4[] = {{r_world4, 1}};
static const struct policy_selector s_world6[] = {{r_world6, 1}};
static const struct policy_selector s_cluster[] = {
    {r_host, 1},   {r_remote, 1},    {r_init, 1},      {r_ingress, 1},
    {r_health, 1}, {r_unmanaged, 1}, {r_apiserver, 1}, {r_cluster, 1},
};
static const struct policy_selector s_host[] = {{r_host, 1}};
static const struct policy_selector s_init[] = {{r_init, 1}};
static const struct policy_selector s_ingress[] = {{r_ingress, 1}};
static const struct policy_selector s_unmanaged[] = {{r_unmanaged, 1}};
static const struct policy_selector s_remote[] = {{r_remote, 1}};
static const struct policy_selector s_health[] = {{r_health, 1}};
static const struct policy_selector s_none[] = {{r_none, 1}};
static const struct policy_selector s_apiserver[] = {{r_apiserver, 1}};

#define ENTITY(e, name, sels) [e] = {name, sels, sizeof(sels) / sizeof(sels[0])}

static const struct {
	const char *name;
	const struct policy_selector *sels;
	size_t n;
} entities[POLICY_ENTITY__NR] = {
    ENTITY(POLICY_ENTITY_ALL, "all", s_all),
    ENTITY(POLICY_ENTITY_WORLD, "world", s_world),
    ENTITY(POLICY_ENTITY_WORLD_IPV4, "world-ipv4", s_world4),
    ENTITY(POLICY_ENTITY_WORLD_IPV6, "world-ipv6", s_world6),
    ENTITY(POLICY_ENTITY_CLUSTER, "cluster", s_cluster),
    ENTITY(POLICY_ENTITY_HOST, "host", s_host),
    ENTITY(POLICY_ENTITY_INIT, "init", s_init),
    ENTITY(POLICY_ENTITY_INGRESS, "ingress", s_ingress),
    ENTITY(POLICY_ENTITY_UNMANAGED, "unmanaged", s_unmanaged),
    ENTITY(POLICY_ENTITY_REMOTE_NODE, "remote-node", s_remote),
    ENTITY(POLICY_ENTITY_HEALTH, "health", s_health),
    ENTITY(POLICY_ENTITY_NONE, "none", s_none),
    ENTITY(POLICY_ENTITY_KUBE_APISERVER, "kube-apiserver", s_apiserver),
};

int policy_entity_parse(const char *s)
{
	for (int e = POLICY_ENTITY_ALL; e < POLICY_ENTITY__NR; e++)
		if (!strcmp(s, entities[e].name))
			return e;
	return -1;
}

const char *policy_entity_name(enum policy_entity e)
{
	return e > POLICY_ENTITY_NOT_ENTITY && e < POLICY_ENTITY__NR ? entities[e].name : "";
}

size_t policy_entity_selectors(enum policy_entity e, const struct policy_selector **out)
{
	if (e <= POLICY_ENTITY_NOT_ENTITY || e >= POLICY_ENTITY__NR) {
		*out = NULL;
		return 0;
	}
	*out = entities[e].sels;
	return entities[e].n;
}
