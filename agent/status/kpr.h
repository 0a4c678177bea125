/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kube-proxy replacement's account of itself for `agentctl status`
 * ("kube_proxy_replacement"): what Cilium's `cilium status --verbose` shows
 * under "KubeProxyReplacement Details", from the agent's configuration and
 * the native devices it attached to. Values are what this agent does, not
 * Cilium's defaults: SNAT mode (no DSR), no XDP acceleration, no NAT46/64,
 * no HostPort.
 */
#ifndef AXON_KPR_STATUS_H
#define AXON_KPR_STATUS_H

#include <cjson/cJSON.h>

struct agent;

cJSON *agent_kpr_status(struct agent *a);

#endif /* AXON_KPR_STATUS_H */
