/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Helpers shared by the object parsers (service.c, endpointslice.c,
 * cilium.c, node.c); internal to agent/k8s.
 */
#ifndef AXON_K8S_OBJECTS_PRIV_H
#define AXON_K8S_OBJECTS_PRIV_H

#include "k8s/json.h"
#include "k8s/objects.h"

/*
 * Caps on list lengths. The API's own limits where it has one (EndpointSlice:
 * 1000 endpoints, 100 ports, 100 addresses), otherwise far above anything
 * real: they only stop a hostile object from making us allocate without bound.
 */
#define K8S_MAX_SVC_PORTS     1024
#define K8S_MAX_SVC_IPS	      16 /* clusterIPs: the API allows 2 */
#define K8S_MAX_EXT_IPS	      1024
#define K8S_MAX_EPS_ENDPOINTS 1000
#define K8S_MAX_EPS_PORTS     100
#define K8S_MAX_EPS_ADDRS     100
#define K8S_MAX_CES_ENDPOINTS 10000
#define K8S_MAX_NAMED_PORTS   1024
#define K8S_MAX_NODE_ADDRS    64
#define K8S_MAX_POD_CIDRS     16

/*
 * Parse {name, protocol, port} at path into the three outputs; port must be
 * in 1..65535, protocol TCP/UDP/SCTP (absent = TCP). name is optional.
 */
int k8s_port_from_json(const cJSON *obj, const char *path, char *name, size_t namelen, __u8 *proto,
		       __u16 *port, char *err, size_t errlen);

/*
 * Parse an array of IP strings (already fetched: arr, n) into a new array
 * of IPv4 addresses; IPv6 entries are checked and skipped. *out is NULL
 * when no IPv4 address remains.
 */
int k8s_ipv4_list(const cJSON *arr, size_t n, const char *path, __be32 **out, size_t *n_out,
		  char *err, size_t errlen);

#endif /* AXON_K8S_OBJECTS_PRIV_H */
