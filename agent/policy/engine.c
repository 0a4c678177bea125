// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The policy engine (engine.h): selected rules, their peers' identities
 * from the selector cache, their L4 items as trie entries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "policy/engine.h"

#define REQS_MAX 64

static int add_entries(struct selector_cache *sc, const struct policy_rule_entry *e, size_t n)
{
	int err = 0;

	for (size_t i = 0; i < n; i++) {
		for (size_t p = 0; p < e[i].n_peers; p++) {
			const struct policy_peer *peer = &e[i].peers[p];

			if (peer->kind == POLICY_PEER_CIDR ? !sc_add_cidr(sc, &peer->cidr, &err)
							   : !sc_add(sc, &peer->sel, &err))
				return err;
		}
		for (size_t r = 0; r < e[i].n_requires; r++)
			if (!sc_add(sc, &e[i].requires[r], &err))
				return err;
	}
	return 0;
}

int engine_register(struct selector_cache *sc, const struct policy *const *pols, size_t n)
{
	int err = 0;

	for (size_t i = 0; i < n; i++) {
		for (size_t r = 0; r < pols[i]->n_rules; r++) {
			const struct policy_rule *rule = &pols[i]->rules[r];

			if (rule->node_subject)
				continue;
			if (!sc_add(sc, &rule->subject, &err))
				return err;
			err = add_entries(sc, rule->ingress, rule->n_ingress);
			if (!err)
				err = add_entries(sc, rule->egress, rule->n_egress);
			if (err)
				return err;
		}
	}
	return 0;
}

void engine_result_free(struct engine_result *res)
{
	free(res->entries);
	memset(res, 0, sizeof(*res));
}

size_t engine_port_blocks(__u16 first, __u16 last, struct policy_map_entry *out, size_t max)
{
	__u32 p = first, end = last;
	size_t n = 0;

	while (p <= end && n < max) {
		unsigned int bits = 0;

		/* The widest block aligned at p that ends inside the range. */
		while (bits < 16 && !(p & ((1u << (bits + 1)) - 1)) &&
		       p + (1u << (bits + 1)) - 1 <= end)
			bits++;
		out[n].port = (__u16)p;
		out[n].port_prefix = (__u8)(16 - bits);
		n++;
		p += 1u << bits;
	}
	return n;
}

struct emit {
	const struct selector_cache *sc;
	const struct engine_endpoint *ep;
	struct engine_result *res;
	__u8 dir;
	bool deny;
};

static int push(struct emit *em, __u32 id, __u8 proto, __u16 port, __u8 prefix)
{
	struct engine_result *res = em->res;
	struct policy_map_entry *e;

	if (res->n == res->cap) {
		size_t cap = res->cap ? res->cap * 2 : 64;
		struct policy_map_entry *n = realloc(res->entries, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		res->entries = n;
		res->cap = cap;
	}
	e = &res->entries[res->n++];
	memset(e, 0, sizeof(*e));
	e->identity = id;
	e->dir = em->dir;
	e->proto = proto;
	e->port = prefix ? port : 0;
	e->port_prefix = proto ? prefix : 0;
	e->deny = em->deny;
	return 0;
}

static int push_range(struct emit *em, __u32 id, __u8 proto, __u16 first, __u16 last)
{
	struct policy_map_entry blocks[32];
	size_t n = engine_port_blocks(first, last, blocks, 32);
	int err;

	for (size_t i = 0; i < n; i++) {
		err = push(em, id, proto, blocks[i].port, blocks[i].port_prefix);
		if (err)
			return err;
	}
	return 0;
}

/* A port resolved against the endpoint: *first..*last and *proto, or false. */
static bool port_resolve(const struct emit *em, const struct policy_port *pp, __u8 *proto,
			 __u16 *first, __u16 *last)
{
	if (pp->proto == IPPROTO_SCTP)
		return false;
	if (!pp->name || !pp->name[0]) {
		*proto = pp->proto;
		*first = pp->port;
		*last = pp->end_port > pp->port ? pp->end_port : pp->port;
		return true;
	}
	/* A named port names the destination's port: the endpoint's own on
	 * ingress; on egress the peer's (emit_peer_named()). */
	if (em->dir != POLICY_DIR_INGRESS)
		return false;
	for (size_t i = 0; i < em->ep->n_named_ports; i++) {
		const struct k8s_named_port *np = &em->ep->named_ports[i];

		if (strcmp(np->name, pp->name) || (pp->proto && np->proto != pp->proto))
			continue;
		if (np->proto != IPPROTO_TCP && np->proto != IPPROTO_UDP)
			continue;
		*proto = np->proto;
		*first = *last = np->port;
		return true;
	}
	return false;
}

static bool egress_named(const struct emit *em, const struct policy_port *pp)
{
	return em->dir == POLICY_DIR_EGRESS && pp->name && pp->name[0] && pp->proto != IPPROTO_SCTP;
}

static bool peer_port_matches(const struct engine_peer_port *it, const struct policy_port *pp)
{
	return !strcmp(it->np.name, pp->name) && (!pp->proto || it->np.proto == pp->proto) &&
	       (it->np.proto == IPPROTO_TCP || it->np.proto == IPPROTO_UDP);
}

static int peer_port_cmp(const void *a, const void *b)
{
	const struct engine_peer_port *x = a, *y = b;
	int c;

	if (x->identity != y->identity)
		return x->identity < y->identity ? -1 : 1;
	c = strcmp(x->np.name, y->np.name);
	if (c)
		return c;
	if (x->np.proto != y->np.proto)
		return x->np.proto < y->np.proto ? -1 : 1;
	return x->np.port < y->np.port ? -1 : x->np.port > y->np.port;
}

size_t engine_peer_ports_sort(struct engine_peer_port *pp, size_t n)
{
	size_t k = 0;

	if (!n)
		return 0;
	qsort(pp, n, sizeof(*pp), peer_port_cmp);
	for (size_t i = 1; i < n; i++)
		if (peer_port_cmp(&pp[k], &pp[i]))
			pp[++k] = pp[i];
	return k + 1;
}

/*
 * An egress named port names the destination's port: for peer id, what the
 * name is on the endpoints of that identity; for id 0 (any peer), on those
 * of every identity, each allowed to its own. Resolved nowhere: nothing.
 */
static int emit_peer_named(struct emit *em, const struct policy_port *pp, __u32 id)
{
	const struct engine_peer_port *it = em->ep->peer_ports, *end = it + em->ep->n_peer_ports;
	int err = 0;

	if (id) {
		size_t lo = 0, hi = em->ep->n_peer_ports;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (it[mid].identity < id)
				lo = mid + 1;
			else
				hi = mid;
		}
		it += lo;
	}
	for (; it < end && (!id || it->identity == id) && !err; it++)
		if (peer_port_matches(it, pp))
			err = push(em, it->identity, it->np.proto, it->np.port, 16);
	return err;
}

static bool peer_named_resolves(const struct emit *em, const struct policy_port *pp)
{
	for (size_t i = 0; i < em->ep->n_peer_ports; i++)
		if (peer_port_matches(&em->ep->peer_ports[i], pp))
			return true;
	return false;
}

static int emit_l4(struct emit *em, const struct policy_rule_entry *e, __u32 id)
{
	int err = 0;

	if (!e->n_ports && !e->n_icmps)
		return push(em, id, 0, 0, 0);
	for (size_t i = 0; i < e->n_ports && !err; i++) {
		__u16 first, last;
		__u8 proto;

		if (egress_named(em, &e->ports[i])) {
			err = emit_peer_named(em, &e->ports[i], id);
			continue;
		}
		if (!port_resolve(em, &e->ports[i], &proto, &first, &last))
			continue;
		if (!first && !proto) {
			err = push(em, id, 0, 0, 0);
		} else if (!first) {
			err = push(em, id, proto, 0, 0);
		} else if (proto) {
			err = push_range(em, id, proto, first, last);
		} else {
			/* ANY: every protocol with ports the datapath parses. */
			err = push_range(em, id, IPPROTO_TCP, first, last);
			if (!err)
				err = push_range(em, id, IPPROTO_UDP, first, last);
		}
	}
	for (size_t i = 0; i < e->n_icmps && !err; i++)
		if (e->icmps[i].family == AF_INET)
			err = push(em, id, IPPROTO_ICMP, e->icmps[i].type, 16);
	return err;
}

/* What of the entry the engine does not enforce, counted once per entry. */
static unsigned int entry_skipped(const struct emit *em, const struct policy_rule_entry *e)
{
	unsigned int n = 0;
	__u16 first, last;
	__u8 proto;

	for (size_t i = 0; i < e->n_ports; i++)
		n += egress_named(em, &e->ports[i])
			 ? !peer_named_resolves(em, &e->ports[i])
			 : !port_resolve(em, &e->ports[i], &proto, &first, &last);
	for (size_t i = 0; i < e->n_icmps; i++)
		n += e->icmps[i].family != AF_INET;
	return n;
}

static bool required(const struct sc_selector *const *reqs, size_t n_reqs, __u32 id)
{
	for (size_t i = 0; i < n_reqs; i++)
		if (!sc_selects(reqs[i], id))
			return false;
	return true;
}

/*
 * A CIDR peer: the CIDR identities its selector selects (cidr.h), under the
 * requirements like any allowed peer. A selector with a prefix that has no
 * working identity fails closed: an allow allows nothing of it, a deny
 * denies every identity on its ports.
 */
static int emit_cidr_peer(struct emit *em, const struct policy_rule_entry *e,
			  const struct policy_peer *peer, const struct sc_selector *const *reqs,
			  size_t n_reqs)
{
	const struct sc_selector *s = sc_lookup_cidr(em->sc, &peer->cidr);
	int err = 0;

	if (!s)
		return -ENOENT;
	if (s->broken) {
		em->res->skipped++;
		return e->deny ? emit_l4(em, e, 0) : 0;
	}
	for (size_t i = 0; i < s->n_ids && !err; i++)
		if (required(reqs, n_reqs, s->ids[i]))
			err = emit_l4(em, e, s->ids[i]);
	return err;
}

static int emit_entry(struct emit *em, const struct policy_rule_entry *e,
		      const struct sc_selector *const *reqs, size_t n_reqs)
{
	const struct selector_cache *sc = em->sc;
	int err = 0;

	em->deny = e->deny;
	/* Requirements restrict what is allowed, never what is denied. */
	if (e->deny)
		n_reqs = 0;
	em->res->skipped += entry_skipped(em, e);

	for (size_t p = 0; p < e->n_peers + e->all_peers && !err; p++) {
		const struct sc_selector *s = NULL;
		bool all = e->all_peers && p == e->n_peers;

		if (!all) {
			const struct policy_peer *peer = &e->peers[p];

			if (peer->kind == POLICY_PEER_CIDR) {
				err = emit_cidr_peer(em, e, peer, reqs, n_reqs);
				continue;
			}
			all = !peer->sel.n_reqs;
			s = sc_lookup(sc, &peer->sel);
			if (!s)
				return -ENOENT;
		}
		if (all && !n_reqs) {
			err = emit_l4(em, e, 0);
			continue;
		}
		if (all) {
			for (size_t i = 0; i < sc->n_ids && !err; i++)
				if (required(reqs, n_reqs, sc->ids[i].id))
					err = emit_l4(em, e, sc->ids[i].id);
			continue;
		}
		for (size_t i = 0; i < s->n_ids && !err; i++)
			if (required(reqs, n_reqs, s->ids[i]))
				err = emit_l4(em, e, s->ids[i]);
	}
	return err;
}

static bool rule_selects(const struct selector_cache *sc, const struct policy_rule *rule, __u32 id,
			 int *err)
{
	const struct sc_selector *s;

	if (rule->node_subject)
		return false;
	s = sc_lookup(sc, &rule->subject);
	if (!s) {
		*err = -ENOENT;
		return false;
	}
	return sc_selects(s, id);
}

/* The requirements of direction dir of every rule selecting the endpoint. */
static int gather_requires(const struct selector_cache *sc, const struct policy *const *pols,
			   size_t n, __u32 id, bool egress, const struct sc_selector **reqs,
			   size_t *n_reqs)
{
	int err = 0;

	*n_reqs = 0;
	for (size_t i = 0; i < n; i++) {
		for (size_t r = 0; r < pols[i]->n_rules; r++) {
			const struct policy_rule *rule = &pols[i]->rules[r];
			const struct policy_rule_entry *e = egress ? rule->egress : rule->ingress;
			size_t ne = egress ? rule->n_egress : rule->n_ingress;

			if (!rule_selects(sc, rule, id, &err)) {
				if (err)
					return err;
				continue;
			}
			for (size_t k = 0; k < ne; k++) {
				for (size_t q = 0; q < e[k].n_requires; q++) {
					const struct sc_selector *s =
					    sc_lookup(sc, &e[k].requires[q]);

					if (!s)
						return -ENOENT;
					/* More than REQS_MAX: fail closed, nothing allowed. */
					if (*n_reqs == REQS_MAX)
						return -E2BIG;
					reqs[(*n_reqs)++] = s;
				}
			}
		}
	}
	return 0;
}

int engine_compute(const struct selector_cache *sc, const struct policy *const *pols, size_t n,
		   const struct engine_endpoint *ep, struct engine_result *res)
{
	const struct sc_selector *reqs[2][REQS_MAX];
	size_t n_reqs[2];
	struct emit em = {.sc = sc, .ep = ep, .res = res};
	int err = 0;

	res->n = 0;
	res->enforce = 0;
	res->rules = 0;
	res->skipped = 0;
	for (int d = 0; d < 2; d++) {
		err = gather_requires(sc, pols, n, ep->identity, d, reqs[d], &n_reqs[d]);
		if (err)
			return err;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t r = 0; r < pols[i]->n_rules; r++) {
			const struct policy_rule *rule = &pols[i]->rules[r];

			if (!rule_selects(sc, rule, ep->identity, &err)) {
				if (err)
					return err;
				continue;
			}
			res->rules++;
			res->enforce |= rule->default_deny & (POLICY_INGRESS | POLICY_EGRESS);
			em.dir = POLICY_DIR_INGRESS;
			for (size_t k = 0; k < rule->n_ingress && !err; k++)
				err = emit_entry(&em, &rule->ingress[k], reqs[0], n_reqs[0]);
			em.dir = POLICY_DIR_EGRESS;
			for (size_t k = 0; k < rule->n_egress && !err; k++)
				err = emit_entry(&em, &rule->egress[k], reqs[1], n_reqs[1]);
			if (err)
				return err;
		}
	}
	return 0;
}
