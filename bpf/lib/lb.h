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
 * backend, with its id in *@id, or NULL with *reason set:
 *   DROP_NO_SERVICE_BACKEND  the service has no backend slots (count == 0);
 *   DROP_BACKEND_NOT_FOUND   the chosen slot or its backend is missing, i.e.
 *                            the agent is in the middle of an update.
 */
static __always_inline const struct lb4_backend *
lb4_select_backend_id(struct lb4_key *key, const struct lb4_service *svc, __u32 *id, __u8 *reason)
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
	*id = backend_id;
	return backend;
}

static __always_inline const struct lb4_backend *
lb4_select_backend(struct lb4_key *key, const struct lb4_service *svc, __u8 *reason)
{
	__u32 id;

	return lb4_select_backend_id(key, svc, &id, reason);
}

/* CLOCK_MONOTONIC seconds, the unit of lb4_affinity_value.last_used (the tc
 * programs' dp_ctx.now is the same clock). */
static __always_inline __u64 lb_now_sec(void)
{
	return bpf_ktime_get_ns() / 1000000000ULL;
}

/*
 * The backend @akey's client was last sent to for @svc, provided that was at
 * most affinity_timeout seconds before @now and the service slot it was picked
 * from still names it: slots hold exactly the backends the agent hands out for
 * new connections, so a backend removed from the service, or an entry left by
 * a deleted service whose rev_nat_index was reused, is not followed. (A
 * surviving backend the agent moved into a removed one's slot loses its
 * clients' affinity once; the next connection records the new slot.)
 * Refreshes last_used. Returns NULL when there is none, @key->backend_slot
 * then possibly changed (callers select afresh, which sets it).
 */
static __always_inline const struct lb4_backend *
lb4_affinity_backend(struct lb4_key *key, const struct lb4_service *svc,
		     const struct lb4_affinity_key *akey, __u64 now)
{
	const struct lb4_backend *backend;
	const struct lb4_service *slot;
	struct lb4_affinity_value *aff;
	__u32 backend_id;
	__u16 slot_nr;

	aff = bpf_map_lookup_elem(&lb4_affinity, akey);
	if (!aff || now - aff->last_used > svc->affinity_timeout)
		return NULL;
	slot_nr = aff->backend_slot;
	if (!slot_nr || slot_nr > svc->count)
		return NULL;
	key->backend_slot = slot_nr;
	slot = bpf_map_lookup_elem(&lb4_services, key);
	if (!slot || slot->backend_id != aff->backend_id)
		return NULL;
	backend_id = slot->backend_id;
	backend = bpf_map_lookup_elem(&lb4_backends, &backend_id);
	if (!backend)
		return NULL;
	/* Written once a second at most: a hot service's entry is shared by
	 * every CPU its clients connect on. */
	if (aff->last_used != now)
		aff->last_used = now;
	return backend;
}

/*
 * sessionAffinity: ClientIP for a service with SVC_FLAG_AFFINITY: the
 * backend lb4_affinity_backend() finds for @akey, else a random one that is
 * then recorded for @akey (with its slot). Same returns as
 * lb4_select_backend(). Failing to record costs only the affinity (the map
 * is an LRU, so it does not fill up).
 */
static __always_inline const struct lb4_backend *
lb4_select_backend_affinity(struct lb4_key *key, const struct lb4_service *svc,
			    const struct lb4_affinity_key *akey, __u8 *reason)
{
	struct lb4_affinity_value aval;
	const struct lb4_backend *backend;
	__u64 now = lb_now_sec();
	__u32 backend_id = 0;

	backend = lb4_affinity_backend(key, svc, akey, now);
	if (backend)
		return backend;
	backend = lb4_select_backend_id(key, svc, &backend_id, reason);
	if (!backend)
		return NULL;
	__builtin_memset(&aval, 0, sizeof(aval));
	aval.last_used = now;
	aval.backend_id = backend_id;
	aval.backend_slot = key->backend_slot;
	bpf_map_update_elem(&lb4_affinity, akey, &aval, BPF_ANY);
	return backend;
}

#endif /* AXON_BPF_LB_H */
