/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The local API's commands beside status: each builds its answer from the
 * agent's state on the agent's thread, between events, and never writes.
 *
 *   services  one object per Service frontend: the service, its type, the
 *             frontend, its backends with their state, and whether the maps
 *             hold it exactly so (agentctl service list)
 *   nodes     the Nodes the agent holds: addresses, pod CIDRs, and the route
 *             to each CIDR (agentctl node list)
 *   config    every setting of the options table, its effective value and
 *             its source: flag, config-dir or default (agentctl config view)
 *   policies  every network policy as the parsed model the policy engine
 *             consumes: subjects, entries, peers, ports, what is unsupported
 *   identities  every identity (reserved ones built in, CiliumIdentities)
 *             and its labels
 *
 * Each answers {"<command>": [...]}: the CLI prints the array.
 */
#ifndef AXON_API_COMMANDS_H
#define AXON_API_COMMANDS_H

#include <cjson/cJSON.h>

struct agent;

cJSON *api_cmd_services(struct agent *a);
cJSON *api_cmd_nodes(struct agent *a);
cJSON *api_cmd_config(struct agent *a);
cJSON *api_cmd_policies(struct agent *a);
cJSON *api_cmd_identities(struct agent *a);
/* agent/api/policy_engine.c: the selector cache, and the local endpoints' policy. */
cJSON *api_cmd_policy_selectors(struct agent *a);
cJSON *api_cmd_endpoints(struct agent *a);
/* Into eps (the policy engine's endpoints) the managed ones of leps
 * (lep_mgr_json), each with its state; sorted by id, then pod. */
void api_endpoints_merge(cJSON *eps, cJSON *leps);

#endif /* AXON_API_COMMANDS_H */
