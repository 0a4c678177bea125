/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The verdict on an agent's status document (agentctl status): healthy when
 * Kubernetes is connected and every module's health is "ok"; otherwise the
 * first problem, in that order, as one line with what to do about it:
 *
 *   k8s-watch: waiting for sync (ciliumendpointslices: resource not installed)
 *     — install the CiliumEndpointSlice CRD
 *
 * status --brief prints the line, status prints it second, and the exit
 * code follows the verdict.
 */
#ifndef AXON_CLI_STATUS_HEALTH_H
#define AXON_CLI_STATUS_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

/* "OK" or the problem into buf; returns true when healthy. */
bool status_health(const cJSON *doc, char *buf, size_t len);

#endif /* AXON_CLI_STATUS_HEALTH_H */
