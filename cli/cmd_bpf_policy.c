// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl bpf policy get <endpoint-id> | --all: an endpoint's network
 * policy trie (include/axon/policy.h), found through the pinned "policy"
 * array of maps, in the layout of `cilium-dbg bpf policy get`: the columns
 * POLICY, DIRECTION, LABELS (source:key[=value]), PORT/PROTO, PROXY PORT,
 * AUTH TYPE, BYTES, PACKETS, PREFIX, e.g. (the middle ones left out here)
 *
 *   Deny     Ingress     ANY             0-1023/TCP   ...   74      1         14
 *   Allow    Ingress     reserved:host   ANY          ...   0       0         0
 *   Allow    Ingress     1001            8080/TCP     ...   148     2         24
 *
 * Sorted as Cilium does: denies first, then ingress before egress, then by
 * identity (then protocol, port, prefix). LABELS: a reserved identity as
 * Cilium names it (reserved:host, reserved:world, ...; 0, any identity, as
 * ANY); another one by its labels from the agent's identities (the
 * "identities" API command), sorted, one per line as Cilium prints them:
 *
 *   Allow    Ingress     k8s:app=web                  80/TCP   ...
 *                        k8s:io.kubernetes.pod.namespace=default
 *
 * a CIDR identity as its prefix from the pinned ipcache (cidr:10.0.0.0/8);
 * by its number when the agent cannot be asked (the maps are read all the
 * same), does not know it, or with --numeric (-n). PORT/PROTO: the protocol
 * alone when the port is any (ANY when the protocol is too),
 * FIRST-LAST/PROTO for a port range, PORT/PROTO for one port. PREFIX: the
 * key's protocol-and-port prefix (0-24). BYTES and PACKETS count the new
 * flows the entry decided.
 *
 * --all prints every endpoint that has a trie, each as
 *   Endpoint ID: 12
 *   <table>
 * and -o json an array of {"endpoint_id", "entries"}, each entry's "labels"
 * an array of those strings. The maps are read directly, so this works
 * while the agent is down.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "axon/ipcache.h"
#include "axon/maps.h"
#include "axon/policy.h"
#include "cli.h"
#include "cmd_util.h"
#include "map_read.h"
#include "pin.h"

#define EMPTY_NOTE "Policy stats empty. Perhaps the policy enforcement is disabled?"

static bool is_deny(const struct policy_entry *v)
{
	return v->flags & POLICY_F_DENY;
}

/* Cilium's order: denies, ingress before egress, identity ascending. The
 * dump sorts keys alone, so the verdict goes into the order by index. */
static const struct map_dump *sort_dump;

static int entry_cmp(const void *pa, const void *pb)
{
	size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;
	const struct policy_key *a = map_dump_key(sort_dump, ia), *b = map_dump_key(sort_dump, ib);
	bool da = is_deny(map_dump_value(sort_dump, ia)),
	     db = is_deny(map_dump_value(sort_dump, ib));

	if (da != db)
		return da ? -1 : 1;
	if (a->egress != b->egress)
		return a->egress < b->egress ? -1 : 1;
	if (a->sec_label != b->sec_label)
		return a->sec_label < b->sec_label ? -1 : 1;
	if (a->protocol != b->protocol)
		return a->protocol < b->protocol ? -1 : 1;
	if (a->dport != b->dport)
		return ntohs(a->dport) < ntohs(b->dport) ? -1 : 1;
	return a->prefixlen < b->prefixlen ? -1 : a->prefixlen > b->prefixlen;
}

static const char *proto_name(__u8 proto, char *buf, size_t len)
{
	return proto ? cli_proto_name(proto, buf, len) : "ANY";
}

/* A CIDR identity's prefix, from the pinned ipcache that maps the prefix to
 * it (the agent gives each prefix its own): "cidr:10.0.0.0/8", or false. */
static bool cidr_label(__u32 id, char *buf, size_t len)
{
	struct map_dump d = {};
	bool found = false;
	int fd = pin_map_open(cli.bpf_root, MAP_IPCACHE);

	if (fd < 0)
		return false;
	if (!map_dump_read(fd, sizeof(struct ipcache_key), sizeof(struct ipcache_value), &d)) {
		for (size_t i = 0; i < d.n && !found; i++) {
			const struct ipcache_key *k = map_dump_key(&d, i);
			const struct ipcache_value *v = map_dump_value(&d, i);
			char a[INET_ADDRSTRLEN];

			if (v->identity != id)
				continue;
			inet_ntop(AF_INET, &k->address, a, sizeof(a));
			snprintf(buf, len, "cidr:%s/%u", a, k->prefixlen);
			found = true;
		}
	}
	map_dump_free(&d);
	close(fd);
	return found;
}

/* The agent's identities ("identities" array), NULL for numbers only. */
static const cJSON *known_identities;
/* --numeric: numbers for every identity but the reserved ones. */
static bool numeric_only;

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The agent's labels of id, sorted, into arr; false when it has none. */
static bool agent_labels(__u32 id, cJSON *arr)
{
	const cJSON *it, *labels = NULL, *l;
	const char **v;
	int n = 0;

	cJSON_ArrayForEach(it, known_identities)
	{
		if (json_num(it, "id") == id) {
			labels = cJSON_GetObjectItem(it, "labels");
			break;
		}
	}
	if (!cJSON_GetArraySize(labels))
		return false;
	v = calloc(cJSON_GetArraySize(labels), sizeof(*v));
	if (!v)
		return false;
	cJSON_ArrayForEach(l, labels)
	{
		if (cJSON_IsString(l))
			v[n++] = l->valuestring;
	}
	qsort(v, n, sizeof(*v), str_cmp);
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(v[i]));
	free(v);
	return n > 0;
}

static cJSON *identity_labels(__u32 id)
{
	const char *name = axon_identity_reserved_name(id);
	cJSON *arr = cJSON_CreateArray();
	char buf[32];

	if (!id)
		snprintf(buf, sizeof(buf), "ANY");
	else if (name)
		snprintf(buf, sizeof(buf), "reserved:%s", name);
	else if (agent_labels(id, arr))
		return arr;
	else if (numeric_only || id < IDENTITY_LOCAL_FLAG || !cidr_label(id, buf, sizeof(buf)))
		snprintf(buf, sizeof(buf), "%u", id);
	cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
	return arr;
}

static char *port_proto(const struct policy_key *k, char *buf, size_t len)
{
	unsigned int prefix = k->prefixlen - POLICY_PREFIX_STATIC;
	__u16 port = ntohs(k->dport);
	char p[16];

	if (prefix == 0 || prefix == POLICY_PREFIX_PROTO)
		snprintf(buf, len, "%s", proto_name(k->protocol, p, sizeof(p)));
	else if (prefix > POLICY_PREFIX_PROTO && prefix < POLICY_PREFIX_L4_FULL)
		snprintf(buf, len, "%u-%u/%s", port,
			 port + (0xffffu >> (prefix - POLICY_PREFIX_PROTO)),
			 proto_name(k->protocol, p, sizeof(p)));
	else if (prefix == POLICY_PREFIX_L4_FULL)
		snprintf(buf, len, "%u/%s", port, proto_name(k->protocol, p, sizeof(p)));
	else
		snprintf(buf, len, "<INVALID PREFIX LENGTH: %u>", prefix);
	return buf;
}

static cJSON *entry_json(const struct policy_key *k, const struct policy_entry *v)
{
	cJSON *o = cJSON_CreateObject();
	char buf[48];

	cJSON_AddStringToObject(o, "policy", is_deny(v) ? "Deny" : "Allow");
	cJSON_AddStringToObject(o, "direction", k->egress ? "Egress" : "Ingress");
	cJSON_AddNumberToObject(o, "identity", k->sec_label);
	cJSON_AddItemToObject(o, "labels", identity_labels(k->sec_label));
	cJSON_AddNumberToObject(o, "protocol", k->protocol);
	cJSON_AddNumberToObject(o, "port", ntohs(k->dport));
	cJSON_AddStringToObject(o, "port_proto", port_proto(k, buf, sizeof(buf)));
	cJSON_AddNumberToObject(o, "prefix", k->prefixlen - POLICY_PREFIX_STATIC);
	cJSON_AddNumberToObject(o, "proxy_port", ntohs(v->proxy_port));
	cJSON_AddStringToObject(o, "auth_type", v->auth_type ? "unknown" : "disabled");
	cJSON_AddNumberToObject(o, "bytes", v->bytes);
	cJSON_AddNumberToObject(o, "packets", v->packets);
	return o;
}

/* The trie in slot @id of the array @outer: 0 with *entries, -ENOENT when
 * the slot is empty, or another -errno. */
static int trie_entries(int outer, __u32 id, cJSON **entries)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), map_id;
	struct map_dump d;
	size_t *idx;
	int fd, err;

	if (bpf_map_lookup_elem(outer, &id, &map_id))
		return -errno;
	fd = bpf_map_get_fd_by_id(map_id);
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (info.key_size != sizeof(struct policy_key) ||
	    info.value_size != sizeof(struct policy_entry)) {
		close(fd);
		return -EPROTO;
	}
	err = map_dump_read(fd, sizeof(struct policy_key), sizeof(struct policy_entry), &d);
	close(fd);
	if (err)
		return err;
	idx = malloc((d.n + 1) * sizeof(*idx));
	if (!idx) {
		map_dump_free(&d);
		return -ENOMEM;
	}
	for (size_t i = 0; i < d.n; i++)
		idx[i] = i;
	sort_dump = &d;
	qsort(idx, d.n, sizeof(*idx), entry_cmp);
	*entries = cJSON_CreateArray();
	for (size_t i = 0; i < d.n; i++)
		cJSON_AddItemToArray(
		    *entries, entry_json(map_dump_key(&d, idx[i]), map_dump_value(&d, idx[i])));
	free(idx);
	map_dump_free(&d);
	return 0;
}

static void table_text(const cJSON *entries)
{
	struct table *t =
	    table_new(9, "POLICY", "DIRECTION", "LABELS (source:key[=value])", "PORT/PROTO",
		      "PROXY PORT", "AUTH TYPE", "BYTES", "PACKETS", "PREFIX");
	const cJSON *o;

	cJSON_ArrayForEach(o, entries)
	{
		char proxy[16] = "NONE", bytes[24], packets[24], prefix[8];
		const cJSON *labels = cJSON_GetObjectItem(o, "labels"), *l;
		const char *first = cJSON_IsString(cJSON_GetArrayItem(labels, 0))
					? cJSON_GetArrayItem(labels, 0)->valuestring
					: "";

		if (json_int(o, "proxy_port"))
			snprintf(proxy, sizeof(proxy), "%d", json_int(o, "proxy_port"));
		snprintf(bytes, sizeof(bytes), "%.0f", json_num(o, "bytes"));
		snprintf(packets, sizeof(packets), "%.0f", json_num(o, "packets"));
		snprintf(prefix, sizeof(prefix), "%d", json_int(o, "prefix"));
		table_row(t, json_str(o, "policy"), json_str(o, "direction"), first,
			  json_str(o, "port_proto"), proxy, json_str(o, "auth_type"), bytes,
			  packets, prefix);
		/* Cilium's layout: every further label on a line of its own. */
		cJSON_ArrayForEach(l, labels)
		{
			if (l != labels->child && cJSON_IsString(l))
				table_row(t, "", "", l->valuestring, "", "", "", "", "", "");
		}
	}
	table_print(t);
	if (!cJSON_GetArraySize(entries))
		printf("%s\n", EMPTY_NOTE);
}

static void all_text(const cJSON *doc)
{
	const cJSON *ep;
	bool first = true;

	if (!cJSON_GetArraySize(doc))
		printf("no maps found\n");
	cJSON_ArrayForEach(ep, doc)
	{
		if (!first)
			printf("\n");
		first = false;
		printf("Endpoint ID: %d\n\n", json_int(ep, "endpoint_id"));
		table_text(cJSON_GetObjectItem(ep, "entries"));
	}
}

static int parse_id(const char *s, __u32 *id)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || !*s || *end || *s == '-' || v == 0 || v >= POLICY_ENDPOINTS_MAX)
		return -EINVAL;
	*id = v;
	return 0;
}

static int get_all(int outer)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	cJSON *doc, *entries;

	if (bpf_obj_get_info_by_fd(outer, &info, &len))
		return cli_error("%s: cannot read map info: %s", MAP_POLICY, strerror(errno));
	doc = cJSON_CreateArray();
	for (__u32 id = 1; id < info.max_entries; id++) {
		int err = trie_entries(outer, id, &entries);
		cJSON *ep;

		if (err == -ENOENT)
			continue;
		if (err) {
			cJSON_Delete(doc);
			return cli_error("endpoint %u's policy map: %s", id, strerror(-err));
		}
		ep = cJSON_CreateObject();
		cJSON_AddNumberToObject(ep, "endpoint_id", id);
		cJSON_AddItemToObject(ep, "entries", entries);
		cJSON_AddItemToArray(doc, ep);
	}
	return cli_print(doc, all_text);
}

static int get(int outer, bool all, __u32 id)
{
	cJSON *entries;
	int err;

	if (all)
		return get_all(outer);
	err = trie_entries(outer, id, &entries);
	if (err == -ENOENT)
		return cli_error("endpoint %u has no policy map in %s/%s/%s", id, cli.bpf_root,
				 AXON_MAPS_DIR, MAP_POLICY);
	if (err == -EPROTO)
		return cli_error("endpoint %u's policy map has another layout than this agentctl "
				 "expects (agent and agentctl from different builds?)",
				 id);
	if (err)
		return cli_error("endpoint %u's policy map: %s", id, strerror(-err));
	return cli_print(entries, table_text);
}

int cmd_bpf_policy_get(int argc, char **argv)
{
	static const char *const names[] = {"--all", "--numeric", "-n"};
	bool flags[3] = {false};
	const char *id_arg = NULL;
	cJSON *idents = NULL;
	__u32 id = 0;
	int outer, ret, err;

	/* The one positional argument, anywhere among the flags. */
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' ||
		    (i > 1 && (!strcmp(argv[i - 1], "-o") || !strcmp(argv[i - 1], "--output"))))
			continue;
		if (id_arg)
			return cli_usage_error("%s: one endpoint id, not '%s' and '%s'",
					       cli.command, id_arg, argv[i]);
		id_arg = argv[i];
		memmove(&argv[i], &argv[i + 1], (argc - i - 1) * sizeof(*argv));
		argc--;
		i--;
	}
	ret = cmd_flags(argc, argv, names, flags, 3);
	if (ret)
		return ret;
	if (flags[0] == !!id_arg)
		return cli_usage_error("%s: give an endpoint id or --all", cli.command);
	if (id_arg && parse_id(id_arg, &id))
		return cli_usage_error("%s: '%s' is not an endpoint id (1-%u)", cli.command, id_arg,
				       POLICY_ENDPOINTS_MAX - 1);
	/* An array of maps: 4-byte keys, values are the maps' ids. */
	ret = cli_map_open(MAP_POLICY, sizeof(__u32), sizeof(__u32), &outer);
	if (ret)
		return ret;
	/* Labels if the agent answers; the maps are read either way. */
	if (!flags[1] && !flags[2])
		idents = cli_agent_request("identities", &err);
	known_identities = cJSON_GetObjectItem(idents, "identities");
	numeric_only = flags[1] || flags[2];
	ret = get(outer, flags[0], id);
	known_identities = NULL;
	cJSON_Delete(idents);
	close(outer);
	return ret;
}
