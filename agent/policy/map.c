// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "policy/map.h"

/* Sets of trie entries are sorted by key, so a key is found with bsearch
 * and two sets are diffed in one walk. The order: the key's fields packed
 * into one integer (identity, direction, protocol, port, prefix length: 64
 * bits for every key the writer makes), then the direction and prefix
 * length whole (a key read from a trie with fields out of those ranges).
 * Sorting and diffing are most of an endpoint's update: no memcmp() call
 * per comparison. */
static inline __u64 key_pack(const struct policy_key *k)
{
	return (__u64)k->sec_label << 32 | (__u64)(k->egress & 1) << 31 | (__u64)k->protocol << 23 |
	       (__u64)ntohs(k->dport) << 7 | (k->prefixlen & 0x7f);
}

static int slot_cmp(const void *a, const void *b)
{
	const struct policy_map_slot *x = a, *y = b;
	__u64 px = key_pack(&x->k), py = key_pack(&y->k);

	if (px != py)
		return px < py ? -1 : 1;
	/* What the packing leaves out; equal for the writer's keys. */
	if (x->k.egress != y->k.egress)
		return x->k.egress < y->k.egress ? -1 : 1;
	if (x->k.prefixlen != y->k.prefixlen)
		return x->k.prefixlen < y->k.prefixlen ? -1 : 1;
	return 0;
}

static const struct policy_map_slot *slot_find(const struct policy_map_slot *set, size_t n,
					       const struct policy_map_slot *key)
{
	return n ? bsearch(key, set, n, sizeof(*set), slot_cmp) : NULL;
}

static bool is_deny(const struct policy_map_slot *s)
{
	return s->flags & POLICY_F_DENY;
}

/* Same verdict and matching, whatever the counters say. */
static bool same_value(const struct policy_map_slot *a, const struct policy_map_slot *b)
{
	return a->flags == b->flags && a->lpm_prefix_length == b->lpm_prefix_length &&
	       a->proxy_port == b->proxy_port && a->auth_type == b->auth_type;
}

void policy_maps_init(struct policy_maps *pm, int outer_fd, __u32 map_max)
{
	pm->outer_fd = outer_fd;
	pm->map_max = map_max ? map_max : POLICY_MAP_MAX;
}

static int entry_slot(const struct policy_map_entry *e, struct policy_map_slot *s)
{
	__u8 l4;

	if (e->dir > POLICY_DIR_EGRESS || e->port_prefix > 16)
		return -EINVAL;
	if (!e->proto && (e->port || e->port_prefix))
		return -EINVAL;
	if (e->port & (0xffffu >> e->port_prefix))
		return -EINVAL;
	l4 = e->proto ? POLICY_PREFIX_PROTO + e->port_prefix : 0;
	memset(s, 0, sizeof(*s));
	s->k.prefixlen = POLICY_KEY_PREFIXLEN(l4);
	s->k.sec_label = e->identity;
	s->k.egress = e->dir;
	s->k.protocol = e->proto;
	s->k.dport = htons(e->port);
	s->flags = e->deny ? POLICY_F_DENY : 0;
	s->lpm_prefix_length = l4;
	return 0;
}

/* Is allow @a inside a deny of @denies (sorted, denies only) with its
 * identity and direction? Each shorter prefix of @a's key is looked up: any
 * protocol, the protocol alone, then each port prefix. */
static bool shadowed(const struct policy_map_slot *denies, size_t n,
		     const struct policy_map_slot *a)
{
	unsigned int len = a->lpm_prefix_length;
	struct policy_map_slot probe = *a;
	const struct policy_map_slot *d;

	for (unsigned int p = 0; p < len; p = p ? p + 1 : POLICY_PREFIX_PROTO) {
		probe.k.prefixlen = POLICY_KEY_PREFIXLEN(p);
		probe.k.protocol = p ? a->k.protocol : 0;
		probe.k.dport = p > POLICY_PREFIX_PROTO
				    ? htons(ntohs(a->k.dport) & (__u16)(0xffffu << (24 - p)))
				    : 0;
		d = slot_find(denies, n, &probe);
		if (d)
			return true;
	}
	return false;
}

struct sort_item {
	__u64 pk;
	size_t i;
};

/* @s sorted as slot_cmp() orders it, when every key packs (entry_slot()'s
 * do): a radix sort of the packed keys, a byte per pass, passes where
 * every key has the same byte skipped. The engine's thousands of entries
 * per endpoint are sorted at every update; a comparison sort was most of
 * its cost. */
static int slots_sort(struct policy_map_slot *s, size_t n)
{
	struct sort_item *a = malloc((n ? n : 1) * sizeof(*a)),
			 *b = malloc((n ? n : 1) * sizeof(*b));
	struct policy_map_slot *out = malloc((n ? n : 1) * sizeof(*out));
	int err = 0;

	if (!a || !b || !out) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++)
		a[i] = (struct sort_item){key_pack(&s[i].k), i};
	for (unsigned int shift = 0; shift < 64; shift += 8) {
		size_t count[256] = {0}, pos = 0;
		struct sort_item *t;

		for (size_t i = 0; i < n; i++)
			count[(a[i].pk >> shift) & 0xff]++;
		if (n && count[(a[0].pk >> shift) & 0xff] == n)
			continue;
		for (unsigned int d = 0; d < 256; d++) {
			size_t c = count[d];

			count[d] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++)
			b[count[(a[i].pk >> shift) & 0xff]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = s[a[i].i];
	memcpy(s, out, n * sizeof(*s));
cleanup:
	free(a);
	free(b);
	free(out);
	return err;
}

/* The entries as the trie must hold them, sorted. */
static int desired_build(const struct policy_map_entry *e, size_t n, struct policy_map_slot **out,
			 size_t *nout, struct policy_map_result *res)
{
	struct policy_map_slot *s = calloc(n ? n : 1, sizeof(*s)), *denies = NULL;
	bool *drop = calloc(n ? n : 1, sizeof(*drop));
	size_t m = 0, k = 0, nd = 0;
	int err = 0;

	if (!s || !drop) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		if (entry_slot(&e[i], &s[i])) {
			res->bad = i;
			err = -EINVAL;
			goto cleanup;
		}
	}
	err = slots_sort(s, n);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		if (m && !slot_cmp(&s[m - 1], &s[i])) {
			s[m - 1].flags |= s[i].flags; /* deny wins */
			continue;
		}
		s[m++] = s[i];
	}
	/* The denies apart: an allow is probed against them only (few, if any). */
	for (size_t i = 0; i < m; i++)
		nd += is_deny(&s[i]);
	if (nd) {
		denies = malloc(nd * sizeof(*denies));
		if (!denies) {
			err = -ENOMEM;
			goto cleanup;
		}
		nd = 0;
		for (size_t i = 0; i < m; i++)
			if (is_deny(&s[i]))
				denies[nd++] = s[i];
	}
	for (size_t i = 0; nd && i < m; i++)
		drop[i] = !is_deny(&s[i]) && shadowed(denies, nd, &s[i]);
	for (size_t i = 0; i < m; i++) {
		if (drop[i])
			res->shadowed++;
		else
			s[k++] = s[i];
	}
	*out = s;
	*nout = k;
	s = NULL;
cleanup:
	free(s);
	free(denies);
	free(drop);
	return err;
}

/* Every entry of trie @fd, sorted. */
static int trie_read(int fd, struct policy_map_slot **out, size_t *nout)
{
	struct policy_map_slot *s = NULL, *p;
	struct policy_key key, last;
	struct policy_entry v;
	size_t n = 0, cap = 0;
	bool first = true;
	int err = 0;

	while (!bpf_map_get_next_key(fd, first ? NULL : &last, &key)) {
		first = false;
		last = key;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			p = realloc(s, cap * sizeof(*s));
			if (!p) {
				err = -ENOMEM;
				goto fail;
			}
			s = p;
		}
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue; /* deleted since it was listed */
		memset(&s[n], 0, sizeof(s[n]));
		s[n].k = key;
		s[n].proxy_port = v.proxy_port;
		s[n].flags = v.flags;
		s[n].auth_type = v.auth_type;
		s[n].lpm_prefix_length = v.lpm_prefix_length;
		n++;
	}
	if (errno != ENOENT) {
		err = -errno;
		goto fail;
	}
	if (n)
		qsort(s, n, sizeof(*s), slot_cmp);
	*out = s;
	*nout = n;
	return 0;
fail:
	free(s);
	return err;
}

static int trie_create(const struct policy_maps *pm, __u16 id)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	char name[16];
	int fd;

	snprintf(name, sizeof(name), "axon_pol_%u", id);
	fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, name, sizeof(struct policy_key),
			    sizeof(struct policy_entry), pm->map_max, &opts);
	return fd < 0 ? -errno : fd;
}

/* The trie in slot @id, -ENOENT if none. */
static int trie_open(const struct policy_maps *pm, __u32 slot)
{
	__u32 map_id;
	int fd;

	if (bpf_map_lookup_elem(pm->outer_fd, &slot, &map_id))
		return -errno;
	fd = bpf_map_get_fd_by_id(map_id);
	return fd < 0 ? -errno : fd;
}

/* Written with counters (a new entry's: 0). */
static int slot_write_counted(int fd, const struct policy_map_slot *s, __u64 packets, __u64 bytes)
{
	struct policy_entry v = {.proxy_port = s->proxy_port,
				 .flags = s->flags,
				 .auth_type = s->auth_type,
				 .lpm_prefix_length = s->lpm_prefix_length,
				 .packets = packets,
				 .bytes = bytes};

	return bpf_map_update_elem(fd, &s->k, &v, BPF_ANY) ? -errno : 0;
}

static int slot_write(int fd, const struct policy_map_slot *s)
{
	return slot_write_counted(fd, s, 0, 0);
}

static int slot_delete(int fd, const struct policy_map_slot *s)
{
	if (bpf_map_delete_elem(fd, &s->k) && errno != ENOENT)
		return -errno;
	return 0;
}

/* Write @want's entries of one verdict: new ones added, changed ones
 * rewritten (their counters start again). */
static int write_verdict(int fd, const struct policy_map_slot *want, size_t nwant,
			 const struct policy_map_slot *have, size_t nhave, bool deny,
			 struct policy_map_result *res)
{
	size_t j = 0;
	int err;

	/* Both sorted: one walk of the two. */
	for (size_t i = 0; i < nwant; i++) {
		const struct policy_map_slot *h;

		if (is_deny(&want[i]) != deny)
			continue;
		while (j < nhave && slot_cmp(&have[j], &want[i]) < 0)
			j++;
		h = j < nhave && !slot_cmp(&have[j], &want[i]) ? &have[j] : NULL;
		if (h && same_value(h, &want[i])) {
			res->unchanged++;
			continue;
		}
		err = slot_write(fd, &want[i]);
		if (err)
			return err;
		if (h)
			res->updated++;
		else
			res->added++;
	}
	return 0;
}

/* Delete @have's entries of one verdict that @want has not. */
static int delete_verdict(int fd, const struct policy_map_slot *want, size_t nwant,
			  const struct policy_map_slot *have, size_t nhave, bool deny,
			  struct policy_map_result *res)
{
	size_t j = 0;
	int err;

	for (size_t i = 0; i < nhave; i++) {
		if (is_deny(&have[i]) != deny)
			continue;
		while (j < nwant && slot_cmp(&want[j], &have[i]) < 0)
			j++;
		if (j < nwant && !slot_cmp(&want[j], &have[i]))
			continue;
		err = slot_delete(fd, &have[i]);
		if (err)
			return err;
		res->deleted++;
	}
	return 0;
}

/* The most entries a trie holding @have holds on the way to @want: all it
 * has, less the stale allows, plus the new denies. One walk of the two
 * sorted sets. */
static size_t transition_peak(const struct policy_map_slot *want, size_t nwant,
			      const struct policy_map_slot *have, size_t nhave)
{
	size_t i = 0, j = 0, peak = nhave;

	while (i < nwant || j < nhave) {
		int c = i == nwant ? 1 : j == nhave ? -1 : slot_cmp(&want[i], &have[j]);

		if (c < 0)
			peak += is_deny(&want[i++]); /* only in want */
		else if (c > 0)
			peak -= !is_deny(&have[j++]); /* only in have */
		else
			i++, j++;
	}
	return peak;
}

/* A new trie with @want in place of the old one (@have, in trie @old_fd,
 * -1 if none), in one update of the slot; unchanged entries keep the
 * counters the old trie has for them now. */
static int trie_replace(const struct policy_maps *pm, __u16 id, const struct policy_map_slot *want,
			size_t nwant, const struct policy_map_slot *have, size_t nhave, int old_fd,
			struct policy_map_result *res)
{
	__u32 slot = id;
	int fd, err = 0;

	fd = trie_create(pm, id);
	if (fd < 0)
		return fd;
	for (size_t i = 0; i < nwant && !err; i++) {
		const struct policy_map_slot *h = slot_find(have, nhave, &want[i]);
		struct policy_entry old = {0};

		if (h && same_value(h, &want[i])) {
			/* The exact key is the longest prefix a lookup of it finds. */
			if (old_fd >= 0 && bpf_map_lookup_elem(old_fd, &want[i].k, &old))
				memset(&old, 0, sizeof(old));
			res->unchanged++;
		} else if (h) {
			res->updated++;
		} else {
			res->added++;
		}
		err = slot_write_counted(fd, &want[i], old.packets, old.bytes);
	}
	for (size_t i = 0; i < nhave; i++)
		res->deleted += !slot_find(want, nwant, &have[i]);
	if (!err && bpf_map_update_elem(pm->outer_fd, &slot, &fd, BPF_ANY))
		err = -errno;
	close(fd);
	res->replaced = !err;
	return err;
}

void policy_map_realized_free(struct policy_map_realized *real)
{
	free(real->slots);
	memset(real, 0, sizeof(*real));
}

/* What slot @id holds, read from the kernel: at start, or after a failure. */
static int realized_read(const struct policy_maps *pm, __u16 id, struct policy_map_realized *real)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd, err;

	policy_map_realized_free(real);
	fd = trie_open(pm, id);
	if (fd == -ENOENT) {
		real->known = true;
		return 0;
	}
	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto cleanup;
	}
	err = trie_read(fd, &real->slots, &real->n);
	if (err)
		goto cleanup;
	real->max_entries = info.max_entries;
	real->known = true;
	real->exists = true;
cleanup:
	close(fd);
	return err;
}

static bool same_set(const struct policy_map_slot *a, size_t na, const struct policy_map_slot *b,
		     size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (slot_cmp(&a[i], &b[i]) || !same_value(&a[i], &b[i]))
			return false;
	return true;
}

/* A new trie in place of the old one (realized: *real). */
static int realized_replace(const struct policy_maps *pm, __u16 id,
			    const struct policy_map_slot *want, size_t nwant,
			    const struct policy_map_realized *real, struct policy_map_result *res)
{
	int fd, err;

	if (!real->exists)
		return trie_replace(pm, id, want, nwant, NULL, 0, -1, res);
	fd = trie_open(pm, id);
	if (fd < 0 && fd != -ENOENT)
		return fd;
	err = trie_replace(pm, id, want, nwant, real->slots, real->n, fd, res);
	if (fd >= 0)
		close(fd);
	return err;
}

int policy_map_update(const struct policy_maps *pm, __u16 id, struct policy_map_realized *real,
		      const struct policy_map_entry *entries, size_t n,
		      struct policy_map_result *res)
{
	struct policy_map_slot *want = NULL;
	const struct policy_map_slot *have;
	size_t nwant = 0, nhave, peak;
	int fd = -1, err;

	memset(res, 0, sizeof(*res));
	if (!id)
		return -EINVAL;
	err = desired_build(entries, n, &want, &nwant, res);
	if (err)
		return err;
	if (nwant > pm->map_max) {
		err = -ENOSPC;
		goto cleanup;
	}
	if (!real->known) {
		err = realized_read(pm, id, real);
		if (err)
			goto fail;
	}
	have = real->slots;
	nhave = real->n;
	if (real->exists && real->max_entries == pm->map_max &&
	    same_set(want, nwant, have, nhave)) {
		res->unchanged = nwant;
		goto cleanup;
	}

	peak = transition_peak(want, nwant, have, nhave);
	if (!real->exists || real->max_entries != pm->map_max || peak > real->max_entries) {
		err = realized_replace(pm, id, want, nwant, real, res);
		if (err)
			goto fail;
		real->max_entries = pm->map_max;
		goto realized;
	}
	fd = trie_open(pm, id);
	if (fd < 0) {
		err = fd;
		goto fail;
	}
	err = delete_verdict(fd, want, nwant, have, nhave, false, res);
	if (!err)
		err = write_verdict(fd, want, nwant, have, nhave, true, res);
	if (!err)
		err = delete_verdict(fd, want, nwant, have, nhave, true, res);
	if (!err)
		err = write_verdict(fd, want, nwant, have, nhave, false, res);
	if (err)
		goto fail;
realized:
	free(real->slots);
	real->slots = want;
	real->n = nwant;
	real->exists = true;
	want = NULL;
	goto cleanup;
fail:
	/* What the trie holds is not known any more: read it next time. */
	policy_map_realized_free(real);
cleanup:
	if (fd >= 0)
		close(fd);
	free(want);
	return err;
}

int policy_map_set(const struct policy_maps *pm, __u16 id, const struct policy_map_entry *entries,
		   size_t n, struct policy_map_result *res)
{
	struct policy_map_realized real = {0};
	int err = policy_map_update(pm, id, &real, entries, n, res);

	policy_map_realized_free(&real);
	return err;
}

int policy_map_delete(const struct policy_maps *pm, __u16 id)
{
	__u32 slot = id;

	if (!id)
		return -EINVAL;
	if (bpf_map_delete_elem(pm->outer_fd, &slot) && errno != ENOENT)
		return -errno;
	return 0;
}
