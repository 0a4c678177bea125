// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl monitor [--type drop|trace|policy-verdict] [-o json]: stream the
 * datapath's drop, trace and policy-verdict events (include/axon/events.h)
 * from the pinned "events" ring buffer until SIGINT or SIGTERM, one line per
 * event:
 *
 *   12:00:01.123456 drop (Invalid packet header, 134) INGRESS ifindex=5 (veth0)
 *       identity 0->0 len=60: 10.244.1.10:1234 -> 10.96.0.10:80 tcp SYN
 *   12:00:01.200000 trace (Delivered to local endpoint, 5) EGRESS ifindex=5 (veth0)
 *       to ifindex=7 (lxc1) identity 2->1234 len=74: 10.96.0.10:80 -> 10.244.1.10:1234 tcp ACK
 *
 * (one line each): local time, type, reason name and code, direction, the
 * device the program ran on (its name when it exists in agentctl's network
 * namespace), for traces the device the packet went to, the identities, the
 * packet's length, and a summary of the captured headers (cli/pkt_summary.h;
 * "[truncated]" and the like when the capture is short or malformed).
 * A policy verdict (the first packet of a flow an enforced policy decided)
 * is printed after the time in the layout of Cilium's monitor:
 *
 *   12:00:01.300000 Policy verdict log: flow 0x3c1e5a77 local EP ID 12,
 *       remote ID world, proto 6, ingress, action allow, auth: disabled,
 *       match L3-L4, 203.0.113.10:40000 -> 10.244.1.12:8080 tcp SYN
 *
 * (one line; a reserved remote identity by its name). The listening notice
 * and the closing count go to stderr. With -o json each event is one JSON
 * object on its own line, with the parsed packet fields (and, for policy
 * verdicts, endpoint_id, remote_identity, policy_direction, action, match).
 *
 * A BPF ring buffer has a single consumer position, stored in the map: two
 * monitors on one node split the events between them, and events sent while
 * no monitor runs wait in the ring (up to its size) for the next one.
 */
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/libbpf.h>

#include "axon/events.h"
#include "axon/ipcache.h"
#include "axon/maps.h"
#include "axon/policy.h"
#include "axon/reasons.h"
#include "cli.h"
#include "cmd_util.h"
#include "map_read.h"
#include "pkt_summary.h"

#define EVENT_HDR_LEN	offsetof(struct event_hdr, data)

static volatile sig_atomic_t stop;

struct monitor {
	int type;		/* EVENT_* to show, 0 for all */
	__s64 mono_to_real_ns;	/* add to a CLOCK_MONOTONIC stamp for wall time */
	unsigned long seen, shown;
};

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static __s64 ts_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (__s64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *event_type_name(__u8 type)
{
	switch (type) {
	case EVENT_DROP:		return "drop";
	case EVENT_TRACE:		return "trace";
	case EVENT_POLICY_VERDICT:	return "policy-verdict";
	default:			return NULL;
	}
}

/* Cilium's names for how a policy entry matched. */
static const char *match_name(__u8 match)
{
	switch (match) {
	case POLICY_MATCH_NONE:		return "none";
	case POLICY_MATCH_L3_ONLY:	return "L3-Only";
	case POLICY_MATCH_L3_L4:	return "L3-L4";
	case POLICY_MATCH_L4_ONLY:	return "L4-Only";
	case POLICY_MATCH_ALL:		return "all";
	case POLICY_MATCH_L3_PROTO:	return "L3-Proto";
	case POLICY_MATCH_PROTO_ONLY:	return "Proto-Only";
	default:			return "unknown";
	}
}

/* A policy verdict's extra fields. */
static void verdict_json(cJSON *o, const struct event_hdr *e)
{
	const char *name = axon_identity_reserved_name(e->remote_identity);
	char num[16];

	snprintf(num, sizeof(num), "%u", e->remote_identity);
	cJSON_AddNumberToObject(o, "endpoint_id", e->endpoint_id);
	cJSON_AddNumberToObject(o, "remote_identity", e->remote_identity);
	cJSON_AddStringToObject(o, "remote_identity_name", name ? name : num);
	cJSON_AddStringToObject(o, "policy_direction",
				e->dir == METRIC_DIR_EGRESS ? "egress" : "ingress");
	cJSON_AddStringToObject(o, "action", e->action == POLICY_ACTION_ALLOW ? "allow" : "deny");
	cJSON_AddStringToObject(o, "match", match_name(e->match_type));
	cJSON_AddNumberToObject(o, "match_type", e->match_type);
	cJSON_AddNumberToObject(o, "flow_hash", e->flow_hash);
}

static void format_time(const struct monitor *m, __u64 mono_ns, char *text, size_t tlen,
			char *iso, size_t ilen)
{
	/* Unsigned: a garbage stamp wraps instead of overflowing. */
	__u64 real = mono_ns + (__u64)m->mono_to_real_ns;
	time_t sec = (time_t)(real / 1000000000);
	unsigned int usec = (unsigned int)(real % 1000000000 / 1000);
	struct tm tm;

	localtime_r(&sec, &tm);
	snprintf(text, tlen, "%02d:%02d:%02d.%06u", tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
	gmtime_r(&sec, &tm);
	snprintf(iso, ilen, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
}

static void add_ifindex(cJSON *o, const char *key, const char *name_key, __u32 ifindex)
{
	char ifname[IF_NAMESIZE];

	cJSON_AddNumberToObject(o, key, ifindex);
	if (ifindex && if_indextoname(ifindex, ifname))
		cJSON_AddStringToObject(o, name_key, ifname);
	else
		cJSON_AddNullToObject(o, name_key);
}

static cJSON *packet_json(const struct pkt_summary *p)
{
	cJSON *o = cJSON_CreateObject();
	char a[INET_ADDRSTRLEN], flags[48];

	cJSON_AddNumberToObject(o, "ethertype", p->ethertype);
	if (p->ipv4) {
		inet_ntop(AF_INET, &p->saddr, a, sizeof(a));
		cJSON_AddStringToObject(o, "source", a);
		inet_ntop(AF_INET, &p->daddr, a, sizeof(a));
		cJSON_AddStringToObject(o, "destination", a);
		cJSON_AddNumberToObject(o, "protocol", p->proto);
		cJSON_AddBoolToObject(o, "fragment", p->fragment);
	}
	if (p->has_ports) {
		cJSON_AddNumberToObject(o, "source_port", p->sport);
		cJSON_AddNumberToObject(o, "destination_port", p->dport);
	}
	if (p->has_tcp_flags)
		cJSON_AddStringToObject(o, "tcp_flags",
					tcp_flags_str(p->tcp_flags, flags, sizeof(flags)));
	if (p->has_icmp) {
		cJSON_AddNumberToObject(o, "icmp_type", p->icmp_type);
		cJSON_AddNumberToObject(o, "icmp_code", p->icmp_code);
	}
	cJSON_AddBoolToObject(o, "truncated", p->truncated);
	cJSON_AddBoolToObject(o, "malformed", p->malformed);
	return o;
}

static void print_json(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	if (s)
		puts(s);
	free(s);
	cJSON_Delete(o);
}

/* The whole event as a JSON object; the text line is rendered from it, so
 * the two forms cannot disagree. */
static cJSON *event_json(const struct monitor *m, const struct event_hdr *e, size_t size)
{
	size_t cap = e->cap_len;
	char text_time[64], iso[96], summary[256], type_buf[16];
	const char *type = event_type_name(e->type);
	struct pkt_summary p;
	cJSON *o = cJSON_CreateObject();

	/* Trust neither cap_len nor the sample size alone. */
	if (cap > EVENT_CAPTURE_LEN)
		cap = EVENT_CAPTURE_LEN;
	if (cap > size - EVENT_HDR_LEN)
		cap = size - EVENT_HDR_LEN;
	pkt_summarize(e->data, cap, &p, summary, sizeof(summary));
	format_time(m, e->ts_ns, text_time, sizeof(text_time), iso, sizeof(iso));
	if (!type) {
		snprintf(type_buf, sizeof(type_buf), "type-%u", e->type);
		type = type_buf;
	}
	cJSON_AddStringToObject(o, "time", iso);
	cJSON_AddStringToObject(o, "time_local", text_time);
	cJSON_AddNumberToObject(o, "ts_ns", e->ts_ns);
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddNumberToObject(o, "reason", e->reason);
	cJSON_AddStringToObject(o, "reason_name", axon_reason_name(e->reason));
	cJSON_AddNumberToObject(o, "dir", e->dir);
	cJSON_AddStringToObject(o, "direction", axon_metric_dir_name(e->dir));
	add_ifindex(o, "ifindex", "ifname", e->ifindex);
	add_ifindex(o, "ifindex_out", "ifname_out", e->ifindex_out);
	cJSON_AddNumberToObject(o, "src_identity", e->src_identity);
	cJSON_AddNumberToObject(o, "dst_identity", e->dst_identity);
	cJSON_AddNumberToObject(o, "orig_len", e->orig_len);
	cJSON_AddNumberToObject(o, "cap_len", e->cap_len);
	cJSON_AddStringToObject(o, "summary", summary);
	cJSON_AddItemToObject(o, "packet", packet_json(&p));
	if (e->type == EVENT_POLICY_VERDICT)
		verdict_json(o, e);
	return o;
}

static void print_verdict(const cJSON *o)
{
	const cJSON *proto = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "packet"), "protocol");

	printf("%s Policy verdict log: flow 0x%x local EP ID %d, remote ID %s, proto %d, %s, "
	       "action %s, auth: disabled, match %s, %s\n",
	       json_str(o, "time_local"), (unsigned int)json_num(o, "flow_hash"),
	       json_int(o, "endpoint_id"), json_str(o, "remote_identity_name"),
	       cJSON_IsNumber(proto) ? proto->valueint : 0, json_str(o, "policy_direction"),
	       json_str(o, "action"), json_str(o, "match"), json_str(o, "summary"));
}

static void print_text(const cJSON *o)
{
	const cJSON *ifname = cJSON_GetObjectItem(o, "ifname");
	const cJSON *ifname_out = cJSON_GetObjectItem(o, "ifname_out");

	if (!strcmp(json_str(o, "type"), "policy-verdict")) {
		print_verdict(o);
		return;
	}
	printf("%s %s (%s, %d) %s ifindex=%d", json_str(o, "time_local"), json_str(o, "type"),
	       json_str(o, "reason_name"), json_int(o, "reason"), json_str(o, "direction"),
	       json_int(o, "ifindex"));
	if (cJSON_IsString(ifname))
		printf(" (%s)", ifname->valuestring);
	if (json_int(o, "ifindex_out")) {
		printf(" to ifindex=%d", json_int(o, "ifindex_out"));
		if (cJSON_IsString(ifname_out))
			printf(" (%s)", ifname_out->valuestring);
	}
	printf(" identity %.0f->%.0f len=%.0f: %s\n", json_num(o, "src_identity"),
	       json_num(o, "dst_identity"), json_num(o, "orig_len"), json_str(o, "summary"));
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct monitor *m = ctx;
	const struct event_hdr *e = data;
	cJSON *o;

	m->seen++;
	if (size < EVENT_HDR_LEN) {
		/* Not from a datapath this build knows; say so, keep going. */
		if (m->type)
			return 0;
		m->shown++;
		if (cli.json) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "error", "short event");
			cJSON_AddNumberToObject(o, "size", size);
			print_json(o);
		} else {
			printf("short event: %zu bytes, a header is %zu\n", size, EVENT_HDR_LEN);
		}
		fflush(stdout);
		return 0;
	}
	if (m->type && e->type != m->type)
		return 0;
	m->shown++;
	o = event_json(m, e, size);
	if (cli.json) {
		print_json(o);
	} else {
		print_text(o);
		cJSON_Delete(o);
	}
	/* Lines reach a pipe (grep, a test) as they happen, not when a buffer fills. */
	fflush(stdout);
	return 0;
}

/* Take --type out of argv; the rest goes to the common flag parser. */
static int parse_type(int *argc, char **argv, int *type)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		const char *v = NULL;

		if (!strcmp(argv[i], "--type")) {
			if (i + 1 >= *argc)
				return cli_usage_error("%s: --type needs drop, trace or policy-verdict",
						       cli.command);
			v = argv[++i];
		} else if (!strncmp(argv[i], "--type=", 7)) {
			v = argv[i] + 7;
		} else {
			argv[out++] = argv[i];
			continue;
		}
		if (!strcmp(v, "drop"))
			*type = EVENT_DROP;
		else if (!strcmp(v, "trace"))
			*type = EVENT_TRACE;
		else if (!strcmp(v, "policy-verdict"))
			*type = EVENT_POLICY_VERDICT;
		else
			return cli_usage_error("%s: --type takes drop, trace or policy-verdict, "
					       "not '%s'", cli.command, v);
	}
	*argc = out;
	return 0;
}

int cmd_monitor(int argc, char **argv)
{
	struct monitor m = {};
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART: poll returns */
	struct ring_buffer *rb;
	int fd, ret;

	ret = parse_type(&argc, argv, &m.type);
	if (ret)
		return ret;
	ret = cmd_flags(argc, argv, NULL, NULL, 0);
	if (ret)
		return ret;
	/* A ring buffer map has neither key nor value. */
	ret = cli_map_open(MAP_EVENTS, 0, 0, &fd);
	if (ret)
		return ret;
	rb = ring_buffer__new(fd, on_event, &m, NULL);
	if (!rb) {
		ret = -errno;
		close(fd);
		return cli_error("%s/%s/%s: cannot read the ring buffer: %s", cli.bpf_root,
				 AXON_MAPS_DIR, MAP_EVENTS, strerror(-ret));
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	m.mono_to_real_ns = ts_ns(CLOCK_REALTIME) - ts_ns(CLOCK_MONOTONIC);
	fprintf(stderr, "Listening for %s events on %s/%s/%s (Ctrl-C to stop)\n",
		m.type ? event_type_name(m.type) : "drop, trace and policy-verdict", cli.bpf_root,
		AXON_MAPS_DIR,
		MAP_EVENTS);
	ret = 0;
	while (!stop) {
		int n = ring_buffer__poll(rb, 200);

		if (n < 0 && n != -EINTR) {
			ret = cli_error("reading events: %s", strerror(-n));
			break;
		}
	}
	ring_buffer__free(rb);
	close(fd);
	fprintf(stderr, "%lu event(s) received, %lu shown\n", m.seen, m.shown);
	return ret;
}
