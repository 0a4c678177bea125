// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl bpf ct list [global] / bpf ct flush [global]: the conntrack maps
 * (include/axon/ct.h) read from the pins, in the layout of
 * `cilium-dbg bpf ct list global`:
 *
 *   TCP OUT 10.0.0.1:4321 -> 10.96.0.10:80 expires=17013 (remaining: 7999 sec(s))
 *   RxPackets=1 RxBytes=60 RxFlagsSeen=0x12 TxPackets=1 TxBytes=74 TxFlagsSeen=0x02
 *   LastReport=0 Flags=0x0004 [ SeenNonSyn ] RevNAT=5 SourceSecurityID=0 BackendID=3
 *
 * (one line). expires= is the entry's lifetime as stored, a CLOCK_MONOTONIC
 * second; "remaining" is that minus now, negative once expired and not yet
 * collected, as Cilium prints it. Axon keeps one last_report per entry, so
 * there is one LastReport= where Cilium has LastRxReport/LastTxReport. An
 * entry that was source-NATed ends with SNAT=addr:port.
 *
 * "global" is accepted for the operators' muscle memory; Axon has only the
 * global tables.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "axon/ct.h"
#include "axon/maps.h"
#include "axon/nat.h"
#include "addr.h"
#include "cli.h"
#include "cmd_util.h"
#include "map_read.h"
#include "pin.h"

static const struct {
	__u16 bit;
	const char *name;
} ct_flag_names[] = {
	{ CT_F_RX_CLOSING, "RxClosing" },	{ CT_F_TX_CLOSING, "TxClosing" },
	{ CT_F_SEEN_NON_SYN, "SeenNonSyn" },	{ CT_F_NODE_PORT, "NodePort" },
	{ CT_F_SNAT, "SNAT" },			{ CT_F_DSR_LOCAL, "DSRLocal" },
	{ CT_F_PROXY_REDIRECT, "ProxyRedirect" },
	{ CT_F_INGRESS_ALLOWED, "IngressAllowed" },	{ CT_F_EGRESS_ALLOWED, "EgressAllowed" },
};

static const char *ct_dir_name(__u8 dir)
{
	switch (dir) {
	case CT_EGRESS:		return "OUT";
	case CT_INGRESS:	return "IN";
	case CT_SERVICE:	return "SVC";
	default:		return "?";
	}
}

static int ct_key_cmp(const void *pa, const void *pb)
{
	const struct ct4_key *a = pa, *b = pb;

	if (a->saddr != b->saddr)
		return ntohl(a->saddr) < ntohl(b->saddr) ? -1 : 1;
	if (a->sport != b->sport)
		return ntohs(a->sport) < ntohs(b->sport) ? -1 : 1;
	if (a->daddr != b->daddr)
		return ntohl(a->daddr) < ntohl(b->daddr) ? -1 : 1;
	if (a->dport != b->dport)
		return ntohs(a->dport) < ntohs(b->dport) ? -1 : 1;
	if (a->nexthdr != b->nexthdr)
		return a->nexthdr < b->nexthdr ? -1 : 1;
	return a->flags < b->flags ? -1 : a->flags > b->flags;
}

static cJSON *ct_entry_json(const char *map, const struct ct4_key *k,
			    const struct ct4_entry *e, __u64 now)
{
	cJSON *o = cJSON_CreateObject(), *names;
	char a[ADDR_STR_MAX], proto[8];

	cJSON_AddStringToObject(o, "map", map);
	cJSON_AddStringToObject(o, "protocol", cli_proto_name(k->nexthdr, proto, sizeof(proto)));
	cJSON_AddNumberToObject(o, "nexthdr", k->nexthdr);
	cJSON_AddStringToObject(o, "direction", ct_dir_name(k->flags));
	cJSON_AddNumberToObject(o, "direction_code", k->flags);
	cJSON_AddStringToObject(o, "source", format_addr(a, sizeof(a), k->saddr));
	cJSON_AddNumberToObject(o, "source_port", ntohs(k->sport));
	cJSON_AddStringToObject(o, "destination", format_addr(a, sizeof(a), k->daddr));
	cJSON_AddNumberToObject(o, "destination_port", ntohs(k->dport));
	cJSON_AddNumberToObject(o, "expires", e->lifetime);
	cJSON_AddNumberToObject(o, "remaining", (double)e->lifetime - (double)now);
	cJSON_AddNumberToObject(o, "rx_packets", e->rx_packets);
	cJSON_AddNumberToObject(o, "rx_bytes", e->rx_bytes);
	cJSON_AddNumberToObject(o, "rx_flags_seen", e->rx_flags_seen);
	cJSON_AddNumberToObject(o, "tx_packets", e->tx_packets);
	cJSON_AddNumberToObject(o, "tx_bytes", e->tx_bytes);
	cJSON_AddNumberToObject(o, "tx_flags_seen", e->tx_flags_seen);
	cJSON_AddNumberToObject(o, "last_report", e->last_report);
	cJSON_AddNumberToObject(o, "flags", e->flags);
	names = cJSON_AddArrayToObject(o, "flag_names");
	for (size_t i = 0; i < ARRAY_SIZE(ct_flag_names); i++)
		if (e->flags & ct_flag_names[i].bit)
			cJSON_AddItemToArray(names, cJSON_CreateString(ct_flag_names[i].name));
	cJSON_AddNumberToObject(o, "rev_nat_id", e->rev_nat_index);
	cJSON_AddNumberToObject(o, "source_identity", e->src_identity);
	cJSON_AddNumberToObject(o, "backend_id", e->backend_id);
	if (e->flags & CT_F_SNAT) {
		cJSON_AddStringToObject(o, "nat_address", format_addr(a, sizeof(a), e->nat_addr));
		cJSON_AddNumberToObject(o, "nat_port", ntohs(e->nat_port));
	}
	return o;
}

static void ct_text(const cJSON *doc)
{
	const cJSON *o, *f;

	cJSON_ArrayForEach(o, doc) {
		printf("%s %s %s:%d -> %s:%d expires=%.0f (remaining: %.0f sec(s)) RxPackets=%.0f "
		       "RxBytes=%.0f RxFlagsSeen=0x%02x TxPackets=%.0f TxBytes=%.0f "
		       "TxFlagsSeen=0x%02x LastReport=%.0f Flags=0x%04x [ ",
		       json_str(o, "protocol"), json_str(o, "direction"), json_str(o, "source"),
		       json_int(o, "source_port"), json_str(o, "destination"),
		       json_int(o, "destination_port"), json_num(o, "expires"),
		       json_num(o, "remaining"), json_num(o, "rx_packets"), json_num(o, "rx_bytes"),
		       json_int(o, "rx_flags_seen"), json_num(o, "tx_packets"),
		       json_num(o, "tx_bytes"), json_int(o, "tx_flags_seen"),
		       json_num(o, "last_report"), json_int(o, "flags"));
		cJSON_ArrayForEach(f, cJSON_GetObjectItem(o, "flag_names"))
			printf("%s ", f->valuestring);
		printf("] RevNAT=%.0f SourceSecurityID=%.0f BackendID=%.0f",
		       json_num(o, "rev_nat_id"), json_num(o, "source_identity"),
		       json_num(o, "backend_id"));
		if (cJSON_GetObjectItem(o, "nat_address"))
			printf(" SNAT=%s:%d", json_str(o, "nat_address"), json_int(o, "nat_port"));
		putchar('\n');
	}
}

static const char *const ct_maps[] = { MAP_CT4_TCP, MAP_CT4_ANY };

/* "global" may follow the command word; drop it so the flag parser sees flags only. */
static int skip_global(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "global")) {
		memmove(&argv[1], &argv[2], (argc - 2) * sizeof(*argv));
		argc--;
	}
	return argc;
}

int cmd_bpf_ct_list(int argc, char **argv)
{
	int fds[ARRAY_SIZE(ct_maps)], ret;
	__u64 now = mono_now_s();
	cJSON *arr;

	argc = skip_global(argc, argv);
	ret = cmd_flags(argc, argv, NULL, NULL, 0);
	if (ret)
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(ct_maps); i++) {
		ret = cli_map_open(ct_maps[i], sizeof(struct ct4_key), sizeof(struct ct4_entry),
				   &fds[i]);
		if (ret) {
			while (i--)
				close(fds[i]);
			return ret;
		}
	}
	arr = cJSON_CreateArray();
	for (size_t i = 0; i < ARRAY_SIZE(ct_maps); i++) {
		struct map_dump d;
		int err = map_dump_read(fds[i], sizeof(struct ct4_key), sizeof(struct ct4_entry),
					&d);

		close(fds[i]);
		if (err) {
			for (size_t j = i + 1; j < ARRAY_SIZE(ct_maps); j++)
				close(fds[j]);
			cJSON_Delete(arr);
			return cli_error("reading %s: %s", ct_maps[i], strerror(-err));
		}
		map_dump_sort(&d, ct_key_cmp);
		for (size_t n = 0; n < d.n; n++)
			cJSON_AddItemToArray(arr, ct_entry_json(ct_maps[i], map_dump_key(&d, n),
								map_dump_value(&d, n), now));
		map_dump_free(&d);
	}
	return cli_print(arr, ct_text);
}

static void flush_text(const cJSON *doc)
{
	const cJSON *o;

	cJSON_ArrayForEach(o, cJSON_GetObjectItem(doc, "maps"))
		printf("Flushed %.0f entries from %s\n", json_num(o, "deleted"),
		       json_str(o, "path"));
}

/* Conntrack and NAT go together: a NAT pair outliving its CT entry would
 * hold a source port nothing will ever free except the LRU. */
int cmd_bpf_ct_flush(int argc, char **argv)
{
	static const struct {
		const char *name;
		__u32 key_size, value_size;
	} maps[] = {
		{ MAP_CT4_TCP, sizeof(struct ct4_key), sizeof(struct ct4_entry) },
		{ MAP_CT4_ANY, sizeof(struct ct4_key), sizeof(struct ct4_entry) },
		{ MAP_NAT4, sizeof(struct nat4_key), sizeof(struct nat4_entry) },
	};
	int fds[ARRAY_SIZE(maps)], ret;
	cJSON *doc, *arr;
	double total = 0;

	argc = skip_global(argc, argv);
	ret = cmd_flags(argc, argv, NULL, NULL, 0);
	if (ret)
		return ret;
	/* Open all first: a missing map should fail before anything is deleted. */
	for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
		ret = cli_map_open(maps[i].name, maps[i].key_size, maps[i].value_size, &fds[i]);
		if (ret) {
			while (i--)
				close(fds[i]);
			return ret;
		}
	}
	doc = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(doc, "maps");
	for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
		long n = map_flush(fds[i], maps[i].key_size);
		char path[4096];
		cJSON *o;

		close(fds[i]);
		if (n < 0) {
			for (size_t j = i + 1; j < ARRAY_SIZE(maps); j++)
				close(fds[j]);
			cJSON_Delete(doc);
			return cli_error("flushing %s: %s", maps[i].name, strerror(-n));
		}
		pin_map_path(path, sizeof(path), cli.bpf_root, maps[i].name);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "map", maps[i].name);
		cJSON_AddStringToObject(o, "path", path);
		cJSON_AddNumberToObject(o, "deleted", n);
		cJSON_AddItemToArray(arr, o);
		total += n;
	}
	cJSON_AddNumberToObject(doc, "deleted", total);
	return cli_print(doc, flush_text);
}
