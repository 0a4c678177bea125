// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl bpf lb list [--revnat]: the service maps as the datapath sees them,
 * read straight from the pins (works while the agent is down). The layout is
 * the one operators know from `cilium-dbg bpf lb list`.
 *
 * agentctl bpf lb affinity list: the sessionAffinity entries, each with its
 * client (an address for the tc LB, a network namespace cookie for the socket
 * LB), the service frontend its rev-NAT id names now, the backend and its age
 * on CLOCK_MONOTONIC, the clock the datapath stamps them with.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "axon/lb.h"
#include "axon/maps.h"
#include "addr.h"
#include "cli.h"
#include "cmd_util.h"
#include "map_read.h"
#include "pin.h"

struct svc_entry {
	struct lb4_key key;
	struct lb4_service val;
};

static int key_cmp(const void *pa, const void *pb)
{
	const struct lb4_key *a = &((const struct svc_entry *)pa)->key;
	const struct lb4_key *b = &((const struct svc_entry *)pb)->key;

	if (a->address != b->address)
		return ntohl(a->address) < ntohl(b->address) ? -1 : 1;
	if (a->dport != b->dport)
		return ntohs(a->dport) < ntohs(b->dport) ? -1 : 1;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->scope != b->scope)
		return a->scope < b->scope ? -1 : 1;
	return a->backend_slot < b->backend_slot ? -1 : a->backend_slot > b->backend_slot;
}

static int read_services(int fd, struct svc_entry **out, size_t *n_out)
{
	struct lb4_key key, next, *prev = NULL;
	struct svc_entry *v = NULL;
	size_t n = 0, cap = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (n == cap) {
			struct svc_entry *p;

			cap = cap ? cap * 2 : 256;
			p = realloc(v, cap * sizeof(*p));
			if (!p) {
				free(v);
				return -ENOMEM;
			}
			v = p;
		}
		if (bpf_map_lookup_elem(fd, &key, &v[n].val))
			continue;	/* deleted meanwhile */
		v[n++].key = key;
	}
	qsort(v, n, sizeof(*v), key_cmp);
	*out = v;
	*n_out = n;
	return 0;
}

static cJSON *flags_json(__u8 flags)
{
	static const struct { __u8 bit; const char *name; } names[] = {
		{ SVC_FLAG_CLUSTER_IP, "ClusterIP" },	{ SVC_FLAG_NODE_PORT, "NodePort" },
		{ SVC_FLAG_EXTERNAL_IP, "ExternalIP" },	{ SVC_FLAG_LOAD_BALANCER, "LoadBalancer" },
		{ SVC_FLAG_AFFINITY, "sessionAffinity" }, { SVC_FLAG_EXT_LOCAL, "Local" },
		{ SVC_FLAG_INT_LOCAL, "InternalLocal" }, { SVC_FLAG_HOST_PORT, "HostPort" },
	};
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (flags & names[i].bit)
			cJSON_AddItemToArray(arr, cJSON_CreateString(names[i].name));
	return arr;
}

static const char *backend_state_name(__u8 state)
{
	switch (state) {
	case BACKEND_STATE_ACTIVE:	return "active";
	case BACKEND_STATE_TERMINATING:	return "terminating";
	case BACKEND_STATE_MAINTENANCE:	return "maintenance";
	default:			return "unknown";
	}
}

static cJSON *backend_json(int be_fd, __u16 slot, const struct lb4_service *v)
{
	cJSON *b = cJSON_CreateObject();
	struct lb4_backend be;
	char a[ADDR_STR_MAX];

	cJSON_AddNumberToObject(b, "slot", slot);
	cJSON_AddNumberToObject(b, "backend_id", v->backend_id);
	cJSON_AddNumberToObject(b, "rev_nat_id", v->rev_nat_index);
	if (bpf_map_lookup_elem(be_fd, &v->backend_id, &be)) {
		/* A slot pointing nowhere is exactly what an operator must see. */
		cJSON_AddNullToObject(b, "address");
		cJSON_AddStringToObject(b, "state", "missing");
		return b;
	}
	cJSON_AddStringToObject(b, "address", format_addr(a, sizeof(a), be.address));
	cJSON_AddNumberToObject(b, "port", ntohs(be.port));
	cJSON_AddStringToObject(b, "protocol", proto_name(be.proto));
	cJSON_AddStringToObject(b, "state", backend_state_name(be.state));
	return b;
}

/* Group entries into frontends: slot 0 carries the service, the rest its
 * backends. Slots without a slot 0 are shown too (under a null service). */
static cJSON *services_json(const struct svc_entry *v, size_t n, int be_fd)
{
	cJSON *arr = cJSON_CreateArray(), *fe = NULL, *backends = NULL;
	const struct lb4_key *cur = NULL;
	char a[ADDR_STR_MAX];

	for (size_t i = 0; i < n; i++) {
		const struct lb4_key *k = &v[i].key;

		if (!cur || k->address != cur->address || k->dport != cur->dport ||
		    k->proto != cur->proto || k->scope != cur->scope) {
			cur = k;
			fe = cJSON_CreateObject();
			cJSON_AddStringToObject(fe, "frontend",
						format_addr_port(a, sizeof(a), k->address,
								 k->dport, k->proto));
			cJSON_AddStringToObject(fe, "address", format_addr(a, sizeof(a), k->address));
			cJSON_AddNumberToObject(fe, "port", ntohs(k->dport));
			cJSON_AddStringToObject(fe, "protocol", proto_name(k->proto));
			cJSON_AddStringToObject(fe, "scope", k->scope == LB_SCOPE_INT ? "internal"
										      : "external");
			cJSON_AddItemToArray(arr, fe);
			backends = NULL;
		}
		if (k->backend_slot == 0) {
			cJSON_AddNumberToObject(fe, "rev_nat_id", v[i].val.rev_nat_index);
			cJSON_AddNumberToObject(fe, "count", v[i].val.count);
			cJSON_AddItemToObject(fe, "flags", flags_json(v[i].val.flags));
			cJSON_AddNumberToObject(fe, "affinity_timeout", v[i].val.affinity_timeout);
			continue;
		}
		if (!backends)
			backends = cJSON_AddArrayToObject(fe, "backends");
		cJSON_AddItemToArray(backends, backend_json(be_fd, k->backend_slot, &v[i].val));
	}
	return arr;
}

static void flags_text(const cJSON *flags, char *buf, size_t len)
{
	const cJSON *f;
	size_t off = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(f, flags) {
		int n = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", f->valuestring);

		if (n < 0 || (size_t)n >= len - off)
			break;
		off += n;
	}
}

static void services_text(const cJSON *doc)
{
	struct table *t = table_new(2, "SERVICE ADDRESS", "BACKEND ADDRESS (REVNAT_ID) (SLOT)");
	const cJSON *fe, *b;

	cJSON_ArrayForEach(fe, doc) {
		const cJSON *rn = cJSON_GetObjectItem(fe, "rev_nat_id");
		char left[64], right[160], flags[96];

		flags_text(cJSON_GetObjectItem(fe, "flags"), flags, sizeof(flags));
		snprintf(left, sizeof(left), "%s", cJSON_GetObjectItem(fe, "frontend")->valuestring);
		if (rn) {
			snprintf(right, sizeof(right), "0.0.0.0:0 (%d) (0) [%s]", rn->valueint,
				 flags);
			table_row(t, left, right);
			left[0] = '\0';
		}
		cJSON_ArrayForEach(b, cJSON_GetObjectItem(fe, "backends")) {
			const cJSON *addr = cJSON_GetObjectItem(b, "address");
			const char *state = cJSON_GetObjectItem(b, "state")->valuestring;

			if (cJSON_IsString(addr))
				snprintf(right, sizeof(right), "%s:%d/%s (%d) (%d)%s%s%s",
					 addr->valuestring,
					 cJSON_GetObjectItem(b, "port")->valueint,
					 cJSON_GetObjectItem(b, "protocol")->valuestring,
					 cJSON_GetObjectItem(b, "rev_nat_id")->valueint,
					 cJSON_GetObjectItem(b, "slot")->valueint,
					 strcmp(state, "active") ? " [" : "",
					 strcmp(state, "active") ? state : "",
					 strcmp(state, "active") ? "]" : "");
			else
				snprintf(right, sizeof(right), "backend %d missing (%d) (%d)",
					 cJSON_GetObjectItem(b, "backend_id")->valueint,
					 cJSON_GetObjectItem(b, "rev_nat_id")->valueint,
					 cJSON_GetObjectItem(b, "slot")->valueint);
			table_row(t, left, right);
			left[0] = '\0';
		}
	}
	table_print(t);
}

static void revnat_text(const cJSON *doc)
{
	struct table *t = table_new(2, "ID", "FRONTEND ADDRESS");
	const cJSON *e;

	cJSON_ArrayForEach(e, doc) {
		char id[16], addr[ADDR_STR_MAX + 8];

		snprintf(id, sizeof(id), "%d", cJSON_GetObjectItem(e, "id")->valueint);
		snprintf(addr, sizeof(addr), "%s:%d", cJSON_GetObjectItem(e, "address")->valuestring,
			 cJSON_GetObjectItem(e, "port")->valueint);
		table_row(t, id, addr);
	}
	table_print(t);
}

static int revnat_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int list_revnat(void)
{
	__u32 key, next, *prev = NULL, *ids = NULL;
	size_t n = 0, cap = 0;
	cJSON *arr;
	int fd, err;

	err = cli_map_open(MAP_LB4_REVERSE_NAT, sizeof(__u32), sizeof(struct lb4_reverse_nat), &fd);
	if (err)
		return err;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (n == cap) {
			__u32 *p = realloc(ids, (cap = cap ? cap * 2 : 1024) * sizeof(*p));

			if (!p) {
				free(ids);
				close(fd);
				return cli_error("out of memory");
			}
			ids = p;
		}
		ids[n++] = key;
	}
	qsort(ids, n, sizeof(*ids), revnat_cmp);
	arr = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		struct lb4_reverse_nat v;
		cJSON *o;
		char a[ADDR_STR_MAX];

		if (bpf_map_lookup_elem(fd, &ids[i], &v))
			continue;
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "id", ids[i]);
		cJSON_AddStringToObject(o, "address", format_addr(a, sizeof(a), v.address));
		cJSON_AddNumberToObject(o, "port", ntohs(v.port));
		cJSON_AddItemToArray(arr, o);
	}
	free(ids);
	close(fd);
	return cli_print(arr, revnat_text);
}

int cmd_bpf_lb_list(int argc, char **argv)
{
	static const char *const names[] = { "--revnat" };
	bool revnat = false;
	struct svc_entry *v = NULL;
	int svc_fd, be_fd, err;
	size_t n = 0;
	cJSON *doc;

	err = cmd_flags(argc, argv, names, &revnat, 1);
	if (err)
		return err;
	if (revnat)
		return list_revnat();
	err = cli_map_open(MAP_LB4_SERVICES, sizeof(struct lb4_key), sizeof(struct lb4_service),
			   &svc_fd);
	if (err)
		return err;
	err = cli_map_open(MAP_LB4_BACKENDS, sizeof(__u32), sizeof(struct lb4_backend), &be_fd);
	if (err) {
		close(svc_fd);
		return err;
	}
	err = read_services(svc_fd, &v, &n);
	if (err) {
		close(svc_fd);
		close(be_fd);
		return cli_error("reading %s: %s", MAP_LB4_SERVICES, strerror(-err));
	}
	doc = services_json(v, n, be_fd);
	free(v);
	close(svc_fd);
	close(be_fd);
	return cli_print(doc, services_text);
}

struct affinity_ctx {
	__u64 now;
	int revnat_fd, be_fd;
};

/* Address entries (tc LB) first, then netns ones; then by service. */
static int affinity_key_cmp(const void *pa, const void *pb)
{
	const struct lb4_affinity_key *a = pa, *b = pb;

	if (!a->netns_cookie != !b->netns_cookie)
		return a->netns_cookie ? 1 : -1;
	if (a->netns_cookie != b->netns_cookie)
		return a->netns_cookie < b->netns_cookie ? -1 : 1;
	if (a->client != b->client)
		return ntohl(a->client) < ntohl(b->client) ? -1 : 1;
	return a->rev_nat_index < b->rev_nat_index ? -1 : a->rev_nat_index > b->rev_nat_index;
}

static cJSON *affinity_entry_json(const void *key, const void *value, const void *ctx)
{
	const struct lb4_affinity_key *k = key;
	const struct lb4_affinity_value *v = value;
	const struct affinity_ctx *c = ctx;
	cJSON *o = cJSON_CreateObject();
	struct lb4_reverse_nat rn;
	struct lb4_backend be;
	char a[ADDR_STR_MAX], buf[ADDR_STR_MAX + 8];

	if (k->netns_cookie) {
		cJSON_AddStringToObject(o, "kind", "netns");
		cJSON_AddNullToObject(o, "client");
		cJSON_AddNumberToObject(o, "netns_cookie", (double)k->netns_cookie);
	} else {
		cJSON_AddStringToObject(o, "kind", "client-ip");
		cJSON_AddStringToObject(o, "client", format_addr(a, sizeof(a), k->client));
		cJSON_AddNullToObject(o, "netns_cookie");
	}
	cJSON_AddNumberToObject(o, "rev_nat_id", k->rev_nat_index);
	/* The rev-NAT entry says what the id stands for now: a service that is
	 * gone (its entries are never read again) shows as null. */
	if (!bpf_map_lookup_elem(c->revnat_fd, &k->rev_nat_index, &rn)) {
		snprintf(buf, sizeof(buf), "%s:%d", format_addr(a, sizeof(a), rn.address),
			 ntohs(rn.port));
		cJSON_AddStringToObject(o, "frontend", buf);
	} else {
		cJSON_AddNullToObject(o, "frontend");
	}
	cJSON_AddNumberToObject(o, "backend_id", v->backend_id);
	if (!bpf_map_lookup_elem(c->be_fd, &v->backend_id, &be)) {
		snprintf(buf, sizeof(buf), "%s:%d", format_addr(a, sizeof(a), be.address),
			 ntohs(be.port));
		cJSON_AddStringToObject(o, "backend", buf);
	} else {
		cJSON_AddNullToObject(o, "backend");
	}
	cJSON_AddNumberToObject(o, "slot", v->backend_slot);
	cJSON_AddNumberToObject(o, "last_used", (double)v->last_used);
	cJSON_AddNumberToObject(o, "age", (double)c->now - (double)v->last_used);
	return o;
}

static void affinity_text(const cJSON *doc)
{
	struct table *t = table_new(4, "CLIENT", "SERVICE (REVNAT_ID)", "BACKEND (ID)", "AGE");
	const cJSON *o;

	cJSON_ArrayForEach(o, doc) {
		const cJSON *fe = cJSON_GetObjectItem(o, "frontend");
		const cJSON *be = cJSON_GetObjectItem(o, "backend");
		char client[48], svc[64], backend[64], age[24];

		if (cJSON_IsString(cJSON_GetObjectItem(o, "client")))
			snprintf(client, sizeof(client), "%s", json_str(o, "client"));
		else
			snprintf(client, sizeof(client), "netns %.0f", json_num(o, "netns_cookie"));
		snprintf(svc, sizeof(svc), "%s (%d)", cJSON_IsString(fe) ? fe->valuestring : "gone",
			 json_int(o, "rev_nat_id"));
		snprintf(backend, sizeof(backend), "%s (%d)",
			 cJSON_IsString(be) ? be->valuestring : "missing", json_int(o, "backend_id"));
		snprintf(age, sizeof(age), "%.0fs", json_num(o, "age"));
		table_row(t, client, svc, backend, age);
	}
	table_print(t);
}

int cmd_bpf_lb_affinity_list(int argc, char **argv)
{
	struct affinity_ctx c = { .now = mono_now_s(), .revnat_fd = -1, .be_fd = -1 };
	int ret = cmd_flags(argc, argv, NULL, NULL, 0);

	if (ret)
		return ret;
	ret = cli_map_open(MAP_LB4_REVERSE_NAT, sizeof(__u32), sizeof(struct lb4_reverse_nat),
			   &c.revnat_fd);
	if (ret)
		return ret;
	ret = cli_map_open(MAP_LB4_BACKENDS, sizeof(__u32), sizeof(struct lb4_backend), &c.be_fd);
	if (ret)
		goto cleanup;
	ret = cli_map_list(MAP_LB4_AFFINITY, sizeof(struct lb4_affinity_key),
			   sizeof(struct lb4_affinity_value), affinity_key_cmp, affinity_entry_json,
			   &c, affinity_text);
cleanup:
	if (c.be_fd >= 0)
		close(c.be_fd);
	close(c.revnat_fd);
	return ret;
}
