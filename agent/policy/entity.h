/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Cilium's entities (fromEntities / toEntities, pkg/policy/api/entity.go):
 * names for peers that have no labels of their own, each standing for one or
 * more selectors over reserved labels (Cilium's EntitySelectorMapping):
 *
 *   all             every identity (the wildcard selector)
 *   world           reserved:world, reserved:world-ipv4, reserved:world-ipv6
 *   world-ipv4/-ipv6  reserved:world-ipv4 / reserved:world-ipv6
 *   cluster         host, remote-node, init, ingress, health, unmanaged,
 *                   kube-apiserver, and every identity with
 *                   k8s:io.cilium.k8s.policy.cluster=default
 *   host, init, ingress, unmanaged, remote-node, health, kube-apiserver
 *                   reserved:<name>
 *   none            reserved:none, which no identity carries
 */
#ifndef AXON_POLICY_ENTITY_H
#define AXON_POLICY_ENTITY_H

#include <stddef.h>

#include "policy/selector.h"

enum policy_entity {
	POLICY_ENTITY_NOT_ENTITY = 0, /* a peer that did not come from an entity */
	POLICY_ENTITY_ALL,
	POLICY_ENTITY_WORLD,
	POLICY_ENTITY_WORLD_IPV4,
	POLICY_ENTITY_WORLD_IPV6,
	POLICY_ENTITY_CLUSTER,
	POLICY_ENTITY_HOST,
	POLICY_ENTITY_INIT,
	POLICY_ENTITY_INGRESS,
	POLICY_ENTITY_UNMANAGED,
	POLICY_ENTITY_REMOTE_NODE,
	POLICY_ENTITY_HEALTH,
	POLICY_ENTITY_NONE,
	POLICY_ENTITY_KUBE_APISERVER,
	POLICY_ENTITY__NR,
};

/* The entity named s, or -1. */
int policy_entity_parse(const char *s);
const char *policy_entity_name(enum policy_entity e);
/* The selectors entity e stands for: *out points at n of them (static). */
size_t policy_entity_selectors(enum policy_entity e, const struct policy_selector **out);

#endif /* AXON_POLICY_ENTITY_H */
