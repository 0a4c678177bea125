/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service lookup and backend selection (IPv4).
 *
 * Contract (include/axon/lb.h): slot 0 of a frontend is the service entry with
 * count; slots 1..count hold backend ids; the agent raises count only after
 * the slots exist and lowers it before deleting them. So a reader picking
 * slot (random % count) + 1 normally finds a slot and a backend; when it does
 * not, an update is in flight and the caller fails this one connection.
 */
#ifndef AXON_BPF_LB_H
#define AXON_BPF_LB_H

#include "common.h"
#include "maps.h"

static __always_inline void lb4_key_init(struct lb4_key *key, __be32 address, __be16 dport,
					 __u8 proto)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->address = address;
	key->dport = dport;
	key->proto = proto;
	key->scope = LB_SCOPE_EXT;
}

/* The service entry (slot 0) of frontend @key, or NULL if it is not a service.
 * @key->backend_slot must be 0. */
static __always_inline const struct lb4_service *lb4_lookup_service(const struct lb4_key *key)
{
	return bpf_map_lookup_elem(&lb4_services, key);
}

/* Exactly one of the traffic policies is Local: the frontend has a second
 * scope, LB_SCOPE_INT, for clients on this node. */
static __always_inline bool lb4_svc_two_scopes(const struct lb4_service *svc)
{
	return !(svc->flags & SVC_FLAG_EXT_LOCAL) != !(svc->flags & SVC_FLAG_INT_LOCAL);
}

/* The service entry for a client on this node (a local pod or the host):
 * the internal scope when the frontend has one, else as lb4_lookup_service().
 * @key is left pointing at the scope found. */
static __always_inline const struct lb4_service *lb4_lookup_service_internal(struct lb4_key *key)
{
	const struct lb4_service *svc, *isvc;

	svc = lb4_lookup_service(key);
	if (!svc || !lb4_svc_two_scopes(svc))
		return svc;
	key->scope = LB_SCOPE_INT;
	isvc = lb4_lookup_service(key);
	if (isvc)
		return isvc;
	key->scope = LB_SCOPE_EXT;
	return svc;
}

/*
 * Pick one backend of @svc uniformly at random. @key is the frontend's key (it
 * is used to look up the slot and left with backend_slot set). Returns the
 * backend, or NULL with *reason set:
 *   DROP_NO_SERVICE_BACKEND  the service has no backend slots (count == 0);
 *   DROP_BACKEND_NOT_FOUND   the chosen slot or its backend is missing, i.e.
 *                            the agent is in the middle of an update.
 */
static __always_inline const struct lb4_backend *
lb4_select_backend(struct lb4_key *key, const struct lb4_service *svc, __u8 *reason)
{
	const struct lb4_service *slot;
	const struct lb4_backend *backend;
	__u32 count = svc->count;
	__u32 backend_id;

	if (!count) {
		*reason = DROP_NO_SERVICE_BACKEND;
		return NULL;
	}

	key->backend_slot = (bpf_get_prandom_u32() % count) + 1;
	slot = bpf_map_lookup_elem(&lb4_services, key);
	if (!slot) {
		*reason = DROP_BACKEND_NOT_FOUND;
		return NULL;
	}

	backend_id = slot->backend_id;
	backend = bpf_map_lookup_elem(&lb4_backends, &backend_id);
	if (!backend) {
		*reason = DROP_BACKEND_NOT_FOUND;
		return NULL;
	}
	return backend;
}

#endif /* AXON_BPF_LB_H */
