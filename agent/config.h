/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's configuration: command-line flags, the same flags from a
 * --config-dir (one file per flag, as a ConfigMap mounts it; the command line
 * wins), defaults, and validation.
 *
 * Where Cilium has a flag for the same thing Axon uses its name and value
 * syntax (durations like "8000s", "2h13m20s"; booleans as --flag,
 * --flag=true, --flag=false), so operators bring what they know.
 *
 * agent_config_parse() returns 0, or -EINVAL with one line in err naming the
 * flag ("--node-port-range: '40000-30000': the first port must not be above
 * the second"). It never prints and never exits: main() does that.
 */
#ifndef AXON_AGENT_CONFIG_H
#define AXON_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "datapath/map_sizes.h"
#include "k8s/objects.h"

enum lb_algorithm {
	LB_ALGO_RANDOM = 0,
	LB_ALGO_MAGLEV,
};

/* Where a setting's value came from (agentctl config view). */
enum config_source {
	CONFIG_SRC_DEFAULT = 0,
	CONFIG_SRC_CONFIG_DIR,		/* a file in --config-dir */
	CONFIG_SRC_FLAG,		/* the command line */
};

/* Entries of the options table config.c can track (a build-time check). */
#define AGENT_OPTIONS_MAX 128

struct agent_config {
	const char *kubeconfig;
	const char *k8s_server;		/* overrides the kubeconfig's server */
	const char *k8s_server_urls;	/* --k8s-api-server-urls: comma list, validated */
	bool k8s_prefer_service;	/* --k8s-prefer-service-address */
	double k8s_qps;			/* --k8s-client-qps */
	__u32 k8s_burst;		/* --k8s-client-burst */
	__u32 k8s_backoff_base_ms;	/* --k8s-backoff-base */
	__u32 k8s_backoff_max_ms;	/* --k8s-backoff-max */
	__u32 k8s_list_limit;		/* --k8s-list-limit */
	bool k8s_insecure;		/* --k8s-insecure-skip-tls-verify */
	bool k8s_watch_list;		/* --k8s-watch-list */
	const char *bpf_root;
	const char *cgroup_root;
	const char *socket_path;
	const char *state_dir;		/* --state-dir: records of what was attached */
	const char *write_cni_conf;	/* --write-cni-conf-when-ready; "" = off */
	bool debug;
	bool flush_on_exit;
	bool help;			/* -h: print usage and exit 0 */
	bool version;			/* --version: print it and exit 0 */
	struct map_size_flags map_size_flags;	/* as given */
	struct map_sizes map_sizes;		/* resolved: what the loader uses */
	__u32 policy_map_max;			/* --bpf-policy-map-max: per endpoint */
	const char *prometheus_addr;		/* --prometheus-serve-addr; "" = off */
	/* --kube-proxy-replacement-healthz-bind-address; "" = off */
	const char *kpr_healthz_addr;
	__u32 health_port;			/* --agent-health-port; 0 = off */
	const char *not_ready_taint_key;	/* --agent-not-ready-taint-key; "" = off */

	char node_name[K8S_NAME_MAX];	/* --node-name, else $NODE_NAME, else hostname */
	const char *devices;		/* --devices: comma list; "" = the default route's */
	bool enable_tcx;		/* false: legacy tc even where tcx exists */
	bool bpf_lb_sock;		/* attach the socket LB */
	bool enable_bpf_masquerade;
	bool enable_ipv4_big_tcp;	/* --enable-ipv4-big-tcp (datapath/bigtcp.h) */
	struct ipv4_prefix native_cidr;	/* len 0 and addr 0: not set */
	bool has_native_cidr;
	__u16 node_port_min, node_port_max;
	bool auto_direct_node_routes;
	enum lb_algorithm lb_algorithm;
	__u32 maglev_table_size;
	__u32 ct_gc_interval_ms;	/* 0: adaptive */
	__u32 ct_gc_max_interval_ms;
	__u32 ct_timeout_tcp_s;		/* --bpf-ct-timeout-regular-tcp */
	__u32 ct_timeout_syn_s;		/* --bpf-ct-timeout-regular-tcp-syn */
	__u32 ct_timeout_fin_s;		/* --bpf-ct-timeout-regular-tcp-fin */
	__u32 ct_timeout_any_s;		/* --bpf-ct-timeout-regular-any */
	__u32 reconcile_interval_ms;	/* --reconcile-interval: full pass; 0 = never */
	__u32 identity_gc_interval_ms;	/* --identity-gc-interval; 0 = no identity GC */
	__u32 identity_heartbeat_ms;	/* --identity-heartbeat-timeout */
	const char *config_dir;		/* --config-dir; NULL: none */
	/* Per entry of the options table (an alias shares its flag's entry):
	 * the source of the value that won. */
	__u8 source[AGENT_OPTIONS_MAX];
};

/* One effective setting: the flag's name (without "--"), its value as the
 * flag would take it, and where it came from. */
struct agent_setting {
	const char *name;
	char value[1024];
	enum config_source source;
	bool known;			/* false: config.c has no formatter for it */
};

/* Floor of the adaptive conntrack GC interval when --conntrack-gc-interval
 * is 0 (its default); --conntrack-gc-max-interval's default. */
#define CT_GC_MIN_INTERVAL_MS_DEFAULT	10000u
#define CT_GC_MAX_INTERVAL_MS_DEFAULT	(12u * 3600 * 1000)

#define RECONCILE_INTERVAL_MS_DEFAULT	(5u * 60 * 1000)
/* Cilium operator's defaults: look every 15m, delete after 30m unused. */
#define IDENTITY_GC_INTERVAL_MS_DEFAULT	(15u * 60 * 1000)
#define IDENTITY_HEARTBEAT_MS_DEFAULT	(30u * 60 * 1000)
/* URLs --k8s-api-server-urls takes. */
#define AGENT_K8S_SERVERS_MAX 8

extern const char agent_usage_text[];

/* argv may be rewritten (a --config-dir expands into it); strings in cfg
 * point into it and live as long as the process. */
int agent_config_parse(int argc, char **argv, struct agent_config *cfg, char *err,
		       size_t errlen);

/* Every setting of the options table (so a new flag is listed by itself;
 * aliases, --help and --version left out), sorted by name, into out (room
 * for max). Returns the count. */
int agent_config_settings(const struct agent_config *cfg, struct agent_setting *out, int max);
const char *agent_config_source_name(enum config_source src);

/* Go-style duration ("90s", "1m30s", "500ms", "2h") -> milliseconds.
 * Returns 0 or -EINVAL. */
int parse_duration_ms(const char *s, __u64 *ms);

#endif /* AXON_AGENT_CONFIG_H */
