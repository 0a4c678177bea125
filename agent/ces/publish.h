/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * This node's endpoints, published as CiliumEndpointSlices (cilium.io/v2alpha1)
 * in Cilium's schema, so that every agent's CES watch (this one's included)
 * derives routes, ipcache and policy from them as from Cilium's own.
 *
 * Packing: a slice holds the endpoints of one namespace, at most
 * CES_SLICE_MAX; its name comes from the node and the namespace,
 * "axon-<node>-<8 hex of the namespace's hash>-<n>", n the lowest free index.
 * An endpoint stays in the slice it was put in for its life (a change moves
 * no other endpoint); a new one goes to the namespace's fullest slice with
 * room, so slices stay few. A slice left empty is deleted.
 *
 * Writes: a change marks its slice dirty; a dirty slice is written
 * flush_delay_ms after it first became dirty, with everything that changed
 * meanwhile (one write for a burst), one write per slice in flight at a time,
 * each paced by the k8s client's QPS/burst. A write is skipped when the
 * apiserver's copy (the store's, from the CES watch) already equals what
 * would be written: on restart the node's existing slices are adopted as they
 * are, each endpoint back in its slice, and nothing equal is rewritten.
 * Create is POST, update a merge PATCH of the whole content (the slice is this
 * node's alone), delete DELETE; 404/409 switch between create and update.
 */
#ifndef AXON_CES_PUBLISH_H
#define AXON_CES_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>
#include <cjson/cJSON.h>

#include "htable.h"
#include "identity/alloc.h"
#include "k8s/objects.h"
#include "store/store.h"

#define CES_SLICE_MAX	   100
#define CES_FLUSH_DELAY_MS 200
#define CES_PATH	   "/apis/cilium.io/v2alpha1/ciliumendpointslices"

/* What one endpoint publishes. */
struct ces_ep {
	char ns[K8S_NS_MAX];
	char name[K8S_NAME_MAX];
	__be32 ipv4;
	__u32 identity;
	struct k8s_named_port *ports; /* sorted by name; owned */
	size_t n_ports;
	struct ces_slice *slice;
};

struct ces_slice {
	char name[K8S_NAME_MAX];
	char ns[K8S_NS_MAX];
	unsigned int index;
	size_t n; /* endpoints in it */
	bool dirty;
	bool created; /* written by us since start (the watch may lag) */
	bool gone;    /* deleted, or an update got 404: create it next */
	uint64_t dirty_since;
	unsigned int failures;
	uint64_t retry_ms;     /* after a failed write */
	struct k8s_call *call; /* in flight */
	enum { CES_OP_NONE, CES_OP_CREATE, CES_OP_UPDATE, CES_OP_DELETE } op;
	struct ces_pub *pub;
};

struct ces_pub {
	struct k8s_client *c;
	ident_call_start_fn call_start;
	ident_call_cancel_fn call_cancel;
	const struct store *store;
	char node[K8S_NAME_MAX];
	char prefix[K8S_NAME_MAX]; /* "axon-<node>-" */
	unsigned int flush_delay_ms;
	struct htable eps;    /* "ns/name" -> struct ces_ep */
	struct htable slices; /* name -> struct ces_slice */
	struct htable hints;  /* "ns/name" -> slice name (adopted), until placed */
	bool adopted;
	__be32 node_ip; /* the address last published as networking.node */
	unsigned long creates, updates, deletes, skipped, errors;
	char last_error[256];
};

int ces_pub_init(struct ces_pub *p, struct k8s_client *c, ident_call_start_fn start,
		 ident_call_cancel_fn cancel, const struct store *s, const char *node);
void ces_pub_destroy(struct ces_pub *p);

/* Take over this node's slices from the store (once, after the CES watch's
 * first list): each endpoint goes back to the slice that holds it. */
void ces_pub_adopt(struct ces_pub *p, uint64_t now_ms);
/* After the first pass over the Pods: adopted endpoints that did not come back
 * are gone, their hints with them. */
void ces_pub_forget_hints(struct ces_pub *p);
/* Whether a slice name is one of this node's (prefix "axon-<node>-"). */
/* The name prefix of node's slices: "axon-<node>-" (a long name cut, with
 * its hash). */
void ces_node_prefix(const char *node, char *out, size_t len);
bool ces_slice_owned(const char *prefix, const char *name);
/* Publish (or update) an endpoint; ports are copied. */
int ces_pub_set(struct ces_pub *p, const char *ns, const char *name, __be32 ipv4, __u32 identity,
		const struct k8s_named_port *ports, size_t n_ports, uint64_t now_ms);
/* Stop publishing an endpoint (no-op when not published). */
void ces_pub_remove(struct ces_pub *p, const char *ns, const char *name, uint64_t now_ms);
/* Write the slices that are due; *next_ms lowered to the next due time. */
void ces_pub_run(struct ces_pub *p, uint64_t now_ms, uint64_t *next_ms);

/* The slice's name for (node prefix, namespace, index) into out. */
void ces_slice_name(char *out, size_t len, const char *prefix, const char *ns, unsigned int index);
/* The JSON of slice sl as it should be (endpoints sorted by name). */
cJSON *ces_slice_json(const struct ces_pub *p, const struct ces_slice *sl);
/* Whether the store's copy of the slice equals what would be written. */
bool ces_slice_equal(const struct ces_pub *p, const struct ces_slice *sl,
		     const struct k8s_cilium_endpointslice *have);
/* Writes done (creates + updates + deletes), for the metrics. */
static inline unsigned long ces_pub_writes(const struct ces_pub *p)
{
	return p->creates + p->updates + p->deletes;
}

#endif /* AXON_CES_PUBLISH_H */
