// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <arpa/inet.h>

#include "axon/config.h"
#include "axon/lb.h"
#include "axon/maps.h"
#include "axon/policy.h"
#include "api/server.h"
#include "datapath/map_sizes.h"
#include "start/cgroup2.h"
#include "health/server.h"
#include "health/taint.h"
#include "config.h"
#include "errmsg.h"
#include "k8s/client.h"

const char agent_usage_text[] =
	"Usage: axon-agent [options]\n"
	"\n"
	"  --kubeconfig FILE         kubeconfig to reach the apiserver (default: in-cluster)\n"
	"  --k8s-api-server URL      apiserver URL, overriding the kubeconfig's\n"
	"  --k8s-api-server-urls URL,URL,...  apiservers tried in turn, at start and\n"
	"                            whenever one stops answering (overrides the kubeconfig's;\n"
	"                            not together with --k8s-api-server)\n"
	"  --k8s-prefer-service-address[=BOOL]  once the default/kubernetes Service is seen,\n"
	"                            use its ClusterIP first, the URLs above on failure\n"
	"                            (default false)\n"
	"  --k8s-client-qps N        apiserver requests per second (default 10)\n"
	"  --k8s-client-burst N      requests allowed above the QPS in a burst (default 20)\n"
	"  --k8s-backoff-base D      first retry delay after a failed request (default 1s)\n"
	"  --k8s-backoff-max D       longest retry delay (default 120s); Retry-After wins\n"
	"  --k8s-list-limit N        objects per LIST page (default 500)\n"
	"  --k8s-watch-list[=BOOL]   list each resource with one streaming watch-list request\n"
	"                            (sendInitialEvents) where the apiserver serves it, pages\n"
	"                            where it refuses (default true)\n"
	"  --k8s-insecure-skip-tls-verify[=BOOL]  do not verify the apiserver's certificate\n"
	"                            (default false; logged as a warning when on)\n"
	"  --bpf-root DIR            bpffs directory for pins (default " AXON_DEFAULT_BPF_ROOT ")\n"
	"  --cgroup-root DIR         cgroup v2 directory to attach socket hooks to (default:\n"
	"                            /sys/fs/cgroup/unified if cgroup v2, else /sys/fs/cgroup)\n"
	"  --socket PATH             local API socket (default " AXON_DEFAULT_SOCKET ")\n"
	"  --state-dir DIR           agent state, e.g. legacy tc records (default /var/run/axon)\n"
	"  --write-cni-conf-when-ready PATH  write the axon-cni conflist to PATH once ready\n"
	"                            (default: none)\n"
	"  --bpf-lb-map-max N        entries in the service, backend, rev-NAT and affinity maps\n"
	"                            (default 65536); each also alone:\n"
	"  --bpf-lb-service-map-max N, --bpf-lb-service-backend-map-max N,\n"
	"  --bpf-lb-rev-nat-map-max N, --bpf-lb-affinity-map-max N,\n"
	"  --bpf-lb-maglev-map-max N (default 1024)\n"
	"  --bpf-sock-rev-map-max N  entries in the socket reverse-NAT map (default 262144)\n"
	"  --bpf-ct-global-tcp-max N conntrack entries for TCP (default 524288)\n"
	"  --bpf-ct-global-any-max N conntrack entries for other protocols (default 262144)\n"
	"  --bpf-nat-global-max N    NAT entries (default 524288)\n"
	"  --bpf-policy-map-max N    entries in each endpoint's network policy map,\n"
	"                            256..65536 (default 16384)\n"
	"  --bpf-map-dynamic-size-ratio R  size the conntrack, NAT and socket reverse-NAT\n"
	"                            maps from this share of the node's memory, (0, 1]\n"
	"                            (default 0: off); the explicit flags above win\n"
	"  --prometheus-serve-addr [HOST]:PORT  serve Prometheus metrics at /metrics\n"
	"                            (default \"\": off; the Helm chart uses :9962)\n"
	"  --kube-proxy-replacement-healthz-bind-address [HOST]:PORT  serve kube-proxy's\n"
	"                            /healthz (JSON lastUpdated, currentTime, nodeEligible;\n"
	"                            200 ready, else 503) there, e.g. 0.0.0.0:10256\n"
	"                            (default \"\": off)\n"
	"  --agent-health-port N     serve health checks on 127.0.0.1:N (default 9879; 0: off):\n"
	"                            GET /healthz 200 once every watch has synced and the\n"
	"                            datapath is programmed, else 503 and what it waits for;\n"
	"                            GET /livez 503 when the event loop has not turned for 30s\n"
	"  --agent-not-ready-taint-key KEY  once ready, remove the taints with this key (any\n"
	"                            effect) from this node's Node, once per start (default\n"
	"                            node.axon.io/agent-not-ready; \"\": off)\n"
	"  --node-name NAME          this node's Node object (default: $NODE_NAME, else hostname)\n"
	"  --devices LIST            native devices, comma-separated (default: the default\n"
	"                            route's device)\n"
	"  --enable-tcx[=BOOL]       attach with tcx links where available (default true)\n"
	"  --bpf-lb-sock[=BOOL]      socket-level LB for pods' service traffic (default true)\n"
	"  --enable-bpf-masquerade[=BOOL]  SNAT pod traffic leaving the node (default false)\n"
	"  --enable-ipv4-big-tcp[=BOOL]  IPv4 GSO/GRO maximum 196608 on the pods' veths (both\n"
	"                            ends) and on native devices whose tso_max_size allows it\n"
	"                            (default false; kernel 6.3+; false leaves sizes as they are)\n"
	"  --ipv4-native-routing-cidr CIDR  destinations not masqueraded to\n"
	"  --node-port-range MIN-MAX NodePort range (default 30000-32767)\n"
	"  --auto-direct-node-routes[=BOOL]  routes to other nodes' pod CIDRs (default false)\n"
	"  --bpf-lb-algorithm ALGO   random or maglev (default random)\n"
	"  --bpf-lb-maglev-table-size N  Maglev table size (16381, the only one supported)\n"
	"  --conntrack-gc-interval D       fixed conntrack GC interval (default 0: adaptive)\n"
	"  --conntrack-gc-max-interval D   longest adaptive interval (default 12h)\n"
	"  --bpf-ct-timeout-regular-tcp D      established TCP (default 8000s)\n"
	"  --bpf-ct-timeout-regular-tcp-syn D  TCP handshake (default 60s)\n"
	"  --bpf-ct-timeout-regular-tcp-fin D  TCP closing (default 10s)\n"
	"  --bpf-ct-timeout-regular-any D      non-TCP (default 60s)\n"
	"  --reconcile-interval D    full pass comparing the maps and routes with the desired\n"
	"                            state, repairing drift (default 5m; 0 disables)\n"
	"  --identity-gc-interval D  how often unused CiliumIdentities are looked for\n"
	"                            (default 15m; 0 disables identity GC)\n"
	"  --identity-heartbeat-timeout D  an identity unused this long is deleted\n"
	"                            (default 30m)\n"
	"  --flush-on-exit           remove all programs, links and maps on exit\n"
	"  --debug                   verbose logs\n"
	"  --config-dir DIR          one file per flag (name = flag, content = value), as a\n"
	"                            ConfigMap mounts it; command-line flags win\n"
	"  --version                 print the version and exit\n"
	"  -h, --help\n";

enum {
	OPT_KUBECONFIG = 256,
	OPT_API_SERVER,
	OPT_BPF_ROOT,
	OPT_CGROUP_ROOT,
	OPT_SOCKET,
	OPT_STATE_DIR,
	OPT_WRITE_CNI_CONF,
	OPT_LB_MAP_MAX,
	OPT_SOCK_REV_MAX,
	OPT_FLUSH,
	OPT_DEBUG,
	OPT_CONFIG_DIR,
	OPT_NODE_NAME,
	OPT_DEVICES,
	OPT_ENABLE_TCX,
	OPT_LB_SOCK,
	OPT_MASQUERADE,
	OPT_NATIVE_CIDR,
	OPT_NODE_PORT_RANGE,
	OPT_DIRECT_ROUTES,
	OPT_LB_ALGORITHM,
	OPT_MAGLEV_SIZE,
	OPT_CT_GC_INTERVAL,
	OPT_CT_GC_MAX_INTERVAL,
	OPT_CT_TCP,
	OPT_CT_SYN,
	OPT_CT_FIN,
	OPT_CT_ANY,
	OPT_MAP_RATIO,
	OPT_PROMETHEUS,
	OPT_KPR_HEALTHZ,
	OPT_RECONCILE_INTERVAL,
	OPT_API_SERVER_URLS,
	OPT_PREFER_SERVICE,
	OPT_CLIENT_QPS,
	OPT_CLIENT_BURST,
	OPT_BACKOFF_BASE,
	OPT_BACKOFF_MAX,
	OPT_LIST_LIMIT,
	OPT_INSECURE,
	OPT_WATCH_LIST,
	OPT_BIG_TCP_IPV4,
	OPT_HEALTH_PORT,
	OPT_TAINT_KEY,
	OPT_POLICY_MAP_MAX,
	OPT_IDENTITY_GC_INTERVAL,
	OPT_IDENTITY_HEARTBEAT,
	OPT_MAP_SIZE,		/* + enum map_size_id */
};

static const struct option options[] = {
	{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
	{ "k8s-api-server", required_argument, NULL, OPT_API_SERVER },
	{ "bpf-root", required_argument, NULL, OPT_BPF_ROOT },
	{ "cgroup-root", required_argument, NULL, OPT_CGROUP_ROOT },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "write-cni-conf-when-ready", required_argument, NULL, OPT_WRITE_CNI_CONF },
	{ "bpf-lb-map-max", required_argument, NULL, OPT_LB_MAP_MAX },
	{ "bpf-sock-rev-map-max", required_argument, NULL, OPT_SOCK_REV_MAX },
	{ "flush-on-exit", optional_argument, NULL, OPT_FLUSH },
	{ "debug", optional_argument, NULL, OPT_DEBUG },
	{ "config-dir", required_argument, NULL, OPT_CONFIG_DIR },
	{ "node-name", required_argument, NULL, OPT_NODE_NAME },
	{ "devices", required_argument, NULL, OPT_DEVICES },
	{ "enable-tcx", optional_argument, NULL, OPT_ENABLE_TCX },
	{ "bpf-lb-sock", optional_argument, NULL, OPT_LB_SOCK },
	{ "enable-bpf-masquerade", optional_argument, NULL, OPT_MASQUERADE },
	{ "ipv4-native-routing-cidr", required_argument, NULL, OPT_NATIVE_CIDR },
	{ "node-port-range", required_argument, NULL, OPT_NODE_PORT_RANGE },
	{ "auto-direct-node-routes", optional_argument, NULL, OPT_DIRECT_ROUTES },
	{ "bpf-lb-algorithm", required_argument, NULL, OPT_LB_ALGORITHM },
	{ "bpf-lb-maglev-table-size", required_argument, NULL, OPT_MAGLEV_SIZE },
	{ "conntrack-gc-interval", required_argument, NULL, OPT_CT_GC_INTERVAL },
	{ "conntrack-gc-max-interval", required_argument, NULL, OPT_CT_GC_MAX_INTERVAL },
	{ "bpf-ct-timeout-regular-tcp", required_argument, NULL, OPT_CT_TCP },
	{ "bpf-ct-timeout-regular-tcp-syn", required_argument, NULL, OPT_CT_SYN },
	{ "bpf-ct-timeout-regular-tcp-fin", required_argument, NULL, OPT_CT_FIN },
	{ "bpf-ct-timeout-regular-any", required_argument, NULL, OPT_CT_ANY },
	{ "bpf-map-dynamic-size-ratio", required_argument, NULL, OPT_MAP_RATIO },
	{ "map-dynamic-size-ratio", required_argument, NULL, OPT_MAP_RATIO },
	{ "prometheus-serve-addr", required_argument, NULL, OPT_PROMETHEUS },
	{ "kube-proxy-replacement-healthz-bind-address", required_argument, NULL,
	  OPT_KPR_HEALTHZ },
	{ "bpf-lb-service-map-max", required_argument, NULL, OPT_MAP_SIZE + MS_LB4_SERVICES },
	{ "bpf-lb-service-backend-map-max", required_argument, NULL,
	  OPT_MAP_SIZE + MS_LB4_BACKENDS },
	{ "bpf-lb-rev-nat-map-max", required_argument, NULL, OPT_MAP_SIZE + MS_LB4_REVERSE_NAT },
	{ "bpf-lb-affinity-map-max", required_argument, NULL, OPT_MAP_SIZE + MS_LB4_AFFINITY },
	{ "bpf-lb-maglev-map-max", required_argument, NULL, OPT_MAP_SIZE + MS_LB4_MAGLEV },
	{ "bpf-ct-global-tcp-max", required_argument, NULL, OPT_MAP_SIZE + MS_CT4_TCP },
	{ "bpf-ct-global-any-max", required_argument, NULL, OPT_MAP_SIZE + MS_CT4_ANY },
	{ "bpf-nat-global-max", required_argument, NULL, OPT_MAP_SIZE + MS_NAT4 },
	{ "bpf-policy-map-max", required_argument, NULL, OPT_POLICY_MAP_MAX },
	{ "reconcile-interval", required_argument, NULL, OPT_RECONCILE_INTERVAL },
	{ "identity-gc-interval", required_argument, NULL, OPT_IDENTITY_GC_INTERVAL },
	{ "identity-heartbeat-timeout", required_argument, NULL, OPT_IDENTITY_HEARTBEAT },
	{ "k8s-api-server-urls", required_argument, NULL, OPT_API_SERVER_URLS },
	{ "k8s-prefer-service-address", optional_argument, NULL, OPT_PREFER_SERVICE },
	{ "k8s-client-qps", required_argument, NULL, OPT_CLIENT_QPS },
	{ "k8s-client-burst", required_argument, NULL, OPT_CLIENT_BURST },
	{ "k8s-backoff-base", required_argument, NULL, OPT_BACKOFF_BASE },
	{ "k8s-backoff-max", required_argument, NULL, OPT_BACKOFF_MAX },
	{ "k8s-list-limit", required_argument, NULL, OPT_LIST_LIMIT },
	{ "k8s-insecure-skip-tls-verify", optional_argument, NULL, OPT_INSECURE },
	{ "k8s-watch-list", optional_argument, NULL, OPT_WATCH_LIST },
	{ "enable-ipv4-big-tcp", optional_argument, NULL, OPT_BIG_TCP_IPV4 },
	{ "agent-health-port", required_argument, NULL, OPT_HEALTH_PORT },
	{ "agent-not-ready-taint-key", required_argument, NULL, OPT_TAINT_KEY },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{},
};

static int parse_u32(const char *flag, const char *s, __u32 min, __u32 *out, char *err,
		     size_t errlen)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || !*s || *end || *s == '-' || v < min || v > UINT32_MAX)
		return errmsg_invalid(err, errlen, "--%s: '%s' is not a number >= %u", flag, s, min);
	*out = v;
	return 0;
}

/* --flag alone is true; --flag=true|false otherwise. */
static int parse_bool(const char *flag, const char *s, bool *out, char *err, size_t errlen)
{
	if (!s || !strcmp(s, "true") || !strcmp(s, "1")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "false") || !strcmp(s, "0")) {
		*out = false;
		return 0;
	}
	return errmsg_invalid(err, errlen, "--%s: '%s' is not true or false", flag, s);
}

int parse_duration_ms(const char *s, __u64 *ms)
{
	static const struct {
		const char *unit;
		__u64 ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
	__u64 total = 0;

	if (!s || !*s)
		return -EINVAL;
	if (!strcmp(s, "0")) {
		*ms = 0;
		return 0;
	}
	while (*s) {
		unsigned long long v;
		char *end;
		size_t i;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno || end == s || v > (1ull << 40))
			return -EINVAL;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t len = strlen(units[i].unit);

			/* "m" must not swallow the "m" of "ms". */
			if (!strncmp(end, units[i].unit, len) &&
			    !(len == 1 && end[0] == 'm' && end[1] == 's'))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		total += v * units[i].ms;
		if (total > (1ull << 42))
			return -EINVAL;
		s = end + strlen(units[i].unit);
	}
	*ms = total;
	return 0;
}

/* A duration in whole seconds within [min_s, max_s]. */
static int parse_seconds(const char *flag, const char *s, __u32 min_s, __u32 max_s, __u32 *out,
			 char *err, size_t errlen)
{
	__u64 ms;

	if (parse_duration_ms(s, &ms))
		return errmsg_invalid(err, errlen, "--%s: '%s' is not a duration (e.g. 60s, 2h13m20s)",
				      flag, s);
	if (ms % 1000 || ms / 1000 < min_s || ms / 1000 > max_s)
		return errmsg_invalid(err, errlen, "--%s: '%s' must be whole seconds in %us..%us", flag, s,
				      min_s, max_s);
	*out = ms / 1000;
	return 0;
}

static int parse_interval(const char *flag, const char *s, __u32 *out, char *err,
			  size_t errlen)
{
	__u64 ms;

	if (parse_duration_ms(s, &ms))
		return errmsg_invalid(err, errlen, "--%s: '%s' is not a duration (e.g. 30s, 5m)", flag, s);
	if (ms && (ms < 1000 || ms > 7ull * 24 * 3600 * 1000))
		return errmsg_invalid(err, errlen, "--%s: '%s' must be 0 or between 1s and 168h", flag, s);
	*out = ms;
	return 0;
}

/* A retry delay: 10ms..1h (below 10ms is a busy loop, not a backoff). */
static int parse_backoff(const char *flag, const char *s, __u32 *out, char *err, size_t errlen)
{
	__u64 ms;

	if (parse_duration_ms(s, &ms))
		return errmsg_invalid(err, errlen, "--%s: '%s' is not a duration (e.g. 500ms, 2m)", flag, s);
	if (ms < 10 || ms > 3600 * 1000)
		return errmsg_invalid(err, errlen, "--%s: '%s' must be between 10ms and 1h", flag, s);
	*out = ms;
	return 0;
}

static int parse_qps(const char *s, double *out, char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* strtod takes "nan", "inf" and hex: none of them is a rate. */
	if (errno || !*s || *end || !(v > 0 && v <= 100000) || strpbrk(s, "xXnN"))
		return errmsg_invalid(err, errlen, "--k8s-client-qps: '%s' is not a number in (0, 100000]",
				      s);
	*out = v;
	return 0;
}

/* One URL as the client will parse it, so a typo fails the start, not every request. */
static int check_url(const char *flag, const char *url, size_t len, char *err, size_t errlen)
{
	char one[1024], why[512];

	if (len >= sizeof(one))
		return errmsg_invalid(err, errlen, "--%s: '%.200s...' is longer than %zu characters",
				      flag, url, sizeof(one) - 1);
	memcpy(one, url, len);
	one[len] = '\0';
	if (k8s_url_check(one, why, sizeof(why)))
		return errmsg_invalid(err, errlen, "--%s: %s", flag, why);
	return 0;
}

/* Comma-separated http(s) URLs, each non-empty, at most AGENT_K8S_SERVERS_MAX. */
static int parse_server_urls(const char *s, char *err, size_t errlen)
{
	const char *p = s;
	int n = 0;

	if (!*s)
		return errmsg_invalid(err, errlen, "--k8s-api-server-urls: must not be empty");
	while (*p) {
		size_t len = strcspn(p, ",");

		if (!len)
			return errmsg_invalid(err, errlen, "--k8s-api-server-urls: '%s': empty URL", s);
		if ((len <= 8 || strncmp(p, "https://", 8)) && (len <= 7 || strncmp(p, "http://", 7)))
			return errmsg_invalid(err, errlen,
					      "--k8s-api-server-urls: '%.*s' is not an http(s):// URL",
					      (int)(len > 200 ? 200 : len), p);
		if (check_url("k8s-api-server-urls", p, len, err, errlen))
			return -EINVAL;
		if (++n > AGENT_K8S_SERVERS_MAX)
			return errmsg_invalid(err, errlen, "--k8s-api-server-urls: at most %d URLs",
					      AGENT_K8S_SERVERS_MAX);
		p += len;
		if (*p == ',' && !*++p)
			return errmsg_invalid(err, errlen, "--k8s-api-server-urls: '%s': trailing comma", s);
	}
	return 0;
}

static int parse_port_range(const char *s, __u16 *lo, __u16 *hi, char *err, size_t errlen)
{
	unsigned int a, b;
	int n = 0;

	if (sscanf(s, "%u-%u%n", &a, &b, &n) != 2 || s[n] || strchr(s, ' ') || s[0] == '-')
		return errmsg_invalid(err, errlen, "--node-port-range: '%s' is not MIN-MAX", s);
	if (!a || a > 65535 || !b || b > 65535)
		return errmsg_invalid(err, errlen, "--node-port-range: '%s': ports must be in 1..65535", s);
	if (a > b)
		return errmsg_invalid(err, errlen,
				      "--node-port-range: '%s': the first port must not be above the second",
				      s);
	*lo = a;
	*hi = b;
	return 0;
}

static int parse_cidr(const char *s, struct ipv4_prefix *out, char *err, size_t errlen)
{
	char addr[INET_ADDRSTRLEN + 1];
	unsigned int len;
	__be32 a, mask;
	int n = 0;

	if (sscanf(s, "%16[0-9.]/%u%n", addr, &len, &n) != 2 || s[n] || len > 32 ||
	    inet_pton(AF_INET, addr, &a) != 1)
		return errmsg_invalid(err, errlen, "--ipv4-native-routing-cidr: '%s' is not an IPv4 CIDR",
				      s);
	mask = len ? htonl(~0u << (32 - len)) : 0;
	if (a & ~mask)
		return errmsg_invalid(err, errlen,
				      "--ipv4-native-routing-cidr: '%s' has host bits set", s);
	out->addr = a;
	out->len = len;
	return 0;
}

static int parse_devices(const char *s, char *err, size_t errlen)
{
	const char *p = s;
	int n = 0;

	while (*p) {
		size_t len = strcspn(p, ",");

		if (!len || len >= 16)
			return errmsg_invalid(err, errlen,
					      "--devices: '%s': each device name must be 1..15 characters", s);
		if (++n > 8)
			return errmsg_invalid(err, errlen, "--devices: '%s': at most 8 devices", s);
		p += len;
		if (*p == ',' && !*++p)
			return errmsg_invalid(err, errlen, "--devices: '%s': trailing comma", s);
	}
	return 0;
}

static int parse_ratio(const char *flag, const char *s, double *out, char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || !*s || *end || !(v >= 0 && v <= 1))
		return errmsg_invalid(err, errlen, "--%s: '%s' is not a number in (0, 1], or 0 for off", flag,
				      s);
	*out = v;
	return 0;
}

/* "" (off), ":PORT", "HOST:PORT" or "[V6]:PORT". */
static int parse_listen_addr(const char *flag, const char *s, char *err, size_t errlen)
{
	const char *colon = strrchr(s, ':');
	unsigned long port;
	char *end;

	if (!*s)
		return 0;
	if (!colon)
		return errmsg_invalid(err, errlen, "--%s: '%s' is not [HOST]:PORT (e.g. :9962)", flag, s);
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || !colon[1] || *end || !port || port > 65535)
		return errmsg_invalid(err, errlen, "--%s: '%s': the port must be in 1..65535", flag, s);
	if (s[0] == '[' && (colon == s + 1 || colon[-1] != ']'))
		return errmsg_invalid(err, errlen, "--%s: '%s' is not [HOST]:PORT (e.g. [::1]:9962)", flag,
				      s);
	return 0;
}

static int parse_node_name(const char *s, char *out, char *err, size_t errlen)
{
	size_t len = strlen(s);

	if (!len || len >= K8S_NAME_MAX)
		return errmsg_invalid(err, errlen, "--node-name: '%s' must be 1..253 characters", s);
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.'))
			return errmsg_invalid(err, errlen,
					      "--node-name: '%s' is not a DNS subdomain (a-z, 0-9, '-', '.')",
					      s);
	memcpy(out, s, len + 1);
	return 0;
}

/* A taint key is a qualified name: [DNS-subdomain "/"] name, the name 1..63
 * of [A-Za-z0-9._-] starting and ending alphanumeric. "" is off. */
static int parse_taint_key(const char *flag, const char *s, char *err, size_t errlen)
{
	const char *slash = strchr(s, '/'), *name = slash ? slash + 1 : s;
	size_t prefix = slash ? (size_t)(slash - s) : 0, n = strlen(name);

	if (!*s)
		return 0;
	if (slash && (!prefix || prefix > 253 || strchr(name, '/')))
		return errmsg_invalid(err, errlen, "--%s: '%s': the prefix before '/' must be a DNS "
				      "subdomain", flag, s);
	for (size_t i = 0; i < prefix; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '.'))
			return errmsg_invalid(err, errlen, "--%s: '%s': the prefix before '/' must be "
					      "a DNS subdomain", flag, s);
	if (!n || n > 63)
		return errmsg_invalid(err, errlen, "--%s: '%s': the name must be 1..63 characters",
				      flag, s);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (!alnum && ((c != '-' && c != '_' && c != '.') || !i || i == n - 1))
			return errmsg_invalid(err, errlen, "--%s: '%s': the name must be alphanumerics, "
					      "'-', '_' or '.', starting and ending alphanumeric",
					      flag, s);
	}
	return 0;
}

/* The argv a --config-dir expanded into: the config points into it, so it
 * lives until the next parse (one config at a time; held here, not leaked). */
static char **expanded_argv;
static int expanded_argc;

static void expanded_free(void)
{
	/* Entries past the directory's were the caller's; ours are asprintf'ed
	 * and were counted in expanded_argc's first part. */
	for (int i = 1; expanded_argv && i < expanded_argc; i++)
		free(expanded_argv[i]);
	free(expanded_argv);
	expanded_argv = NULL;
	expanded_argc = 0;
}

/* Flags from a directory of files go before the command line's, so the
 * command line wins. Returns a new argv. */
static char **config_dir_args(const char *dir, int argc, char **argv, int *argc_out, char *err,
			      size_t errlen)
{
	char **out = calloc(argc + 256, sizeof(*out));
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (!out)
		return NULL;
	out[n++] = argv[0];
	d = opendir(dir);
	if (!d) {
		errmsg_invalid(err, errlen, "--config-dir: %s: %s", dir, strerror(errno));
		free(out);
		return NULL;
	}
	while ((de = readdir(d)) && n < 250) {
		char path[4096], value[1024] = "";
		size_t len;
		FILE *f;

		/* ConfigMap volumes hold ..data and friends: not flags. */
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		len = fread(value, 1, sizeof(value) - 1, f);
		fclose(f);
		value[len] = '\0';
		while (len && (value[len - 1] == '\n' || value[len - 1] == ' '))
			value[--len] = '\0';
		/* An empty value (a chart's unset option) leaves the default. */
		if (!len)
			continue;
		if (asprintf(&out[n], !strcmp(value, "true") ? "--%s" : "--%s=%s", de->d_name,
			     value) < 0)
			break;
		n++;
	}
	closedir(d);
	expanded_free();
	expanded_argv = out;
	expanded_argc = n;	/* out[1..n-1] are ours */
	for (int i = 1; i < argc; i++)
		out[n++] = argv[i];
	*argc_out = n;
	return out;
}

static void defaults(struct agent_config *cfg)
{
	*cfg = (struct agent_config){
		.bpf_root = AXON_DEFAULT_BPF_ROOT,
		.socket_path = AXON_DEFAULT_SOCKET,
		.state_dir = "/var/run/axon",
		.write_cni_conf = "",
		.prometheus_addr = "",
		.kpr_healthz_addr = "",
		.health_port = HEALTH_PORT_DEFAULT,
		.not_ready_taint_key = NODE_TAINT_KEY_DEFAULT,
		.devices = "",
		.enable_tcx = true,
		.bpf_lb_sock = true,
		.node_port_min = NODE_PORT_MIN_DEFAULT,
		.node_port_max = NODE_PORT_MAX_DEFAULT,
		.lb_algorithm = LB_ALGO_RANDOM,
		.maglev_table_size = LB_MAGLEV_TABLE_SIZE,
		.ct_gc_interval_ms = 0,
		.ct_gc_max_interval_ms = CT_GC_MAX_INTERVAL_MS_DEFAULT,
		.ct_timeout_tcp_s = 8000,
		.ct_timeout_syn_s = 60,
		.ct_timeout_fin_s = 10,
		.ct_timeout_any_s = 60,
		.reconcile_interval_ms = RECONCILE_INTERVAL_MS_DEFAULT,
		.identity_gc_interval_ms = IDENTITY_GC_INTERVAL_MS_DEFAULT,
		.identity_heartbeat_ms = IDENTITY_HEARTBEAT_MS_DEFAULT,
		.k8s_qps = 10,
		.k8s_burst = 20,
		.k8s_backoff_base_ms = 1000,
		.k8s_backoff_max_ms = 120000,
		.k8s_list_limit = 500,
		.k8s_watch_list = true,
		.policy_map_max = POLICY_MAP_MAX,
	};
	/* The cgroup v2 hierarchy's root: .../unified on a hybrid host,
	 * /sys/fs/cgroup on a pure v2 one; "" when neither is cgroup v2, which
	 * the start refuses unless --cgroup-root names one (preflight.c). */
	cfg->cgroup_root = cgroup2_default_root();
	if (!cfg->cgroup_root)
		cfg->cgroup_root = "";
}

static int parse_one(int opt, const char *arg, struct agent_config *cfg, char *err, size_t errlen)
{
	const char *name = NULL;

	for (const struct option *o = options; o->name; o++)
		if (o->val == opt && !name)
			name = o->name;
	switch (opt) {
	case OPT_KUBECONFIG:	cfg->kubeconfig = arg; return 0;
	case OPT_API_SERVER:
		cfg->k8s_server = arg;
		return check_url(name, arg, strlen(arg), err, errlen);
	case OPT_BPF_ROOT:	cfg->bpf_root = arg; return 0;
	case OPT_CGROUP_ROOT:	cfg->cgroup_root = arg; return 0;
	case OPT_SOCKET:	cfg->socket_path = arg; return 0;
	case OPT_WRITE_CNI_CONF:	cfg->write_cni_conf = arg; return 0;
	case OPT_CONFIG_DIR:	cfg->config_dir = arg; return 0;	/* expanded before parsing */
	case OPT_STATE_DIR:
		if (!*arg)
			return errmsg_invalid(err, errlen, "--state-dir: must not be empty");
		cfg->state_dir = arg;
		return 0;
	case OPT_FLUSH:		return parse_bool(name, arg, &cfg->flush_on_exit, err, errlen);
	case OPT_DEBUG:		return parse_bool(name, arg, &cfg->debug, err, errlen);
	case OPT_ENABLE_TCX:	return parse_bool(name, arg, &cfg->enable_tcx, err, errlen);
	case OPT_LB_SOCK:	return parse_bool(name, arg, &cfg->bpf_lb_sock, err, errlen);
	case OPT_MASQUERADE:
		return parse_bool(name, arg, &cfg->enable_bpf_masquerade, err, errlen);
	case OPT_DIRECT_ROUTES:
		return parse_bool(name, arg, &cfg->auto_direct_node_routes, err, errlen);
	case OPT_BIG_TCP_IPV4:
		return parse_bool(name, arg, &cfg->enable_ipv4_big_tcp, err, errlen);
	case OPT_LB_MAP_MAX:
		return parse_u32(name, arg, 16, &cfg->map_size_flags.lb_map_max, err, errlen);
	case OPT_POLICY_MAP_MAX:
		if (parse_u32(name, arg, 0, &cfg->policy_map_max, err, errlen))
			return -EINVAL;
		if (cfg->policy_map_max < POLICY_MAP_MAX_MIN || cfg->policy_map_max > POLICY_MAP_MAX_MAX)
			return errmsg_invalid(err, errlen, "--%s: %u must be in %u..%u", name,
					      cfg->policy_map_max, POLICY_MAP_MAX_MIN, POLICY_MAP_MAX_MAX);
		return 0;
	case OPT_SOCK_REV_MAX:
		return parse_u32(name, arg, 16, &cfg->map_size_flags.max[MS_LB4_SOCK_REV], err,
				 errlen);
	case OPT_MAP_RATIO:
		return parse_ratio(name, arg, &cfg->map_size_flags.dynamic_ratio, err, errlen);
	case OPT_PROMETHEUS:
		cfg->prometheus_addr = arg;
		return parse_listen_addr(name, arg, err, errlen);
	case OPT_KPR_HEALTHZ:
		cfg->kpr_healthz_addr = arg;
		return parse_listen_addr(name, arg, err, errlen);
	case OPT_NODE_NAME:	return parse_node_name(arg, cfg->node_name, err, errlen);
	case OPT_HEALTH_PORT:
		if (parse_u32(name, arg, 0, &cfg->health_port, err, errlen))
			return -EINVAL;
		if (cfg->health_port > 65535)
			return errmsg_invalid(err, errlen, "--%s: '%s' is not a port (0 for off)", name,
					      arg);
		return 0;
	case OPT_TAINT_KEY:
		cfg->not_ready_taint_key = arg;
		return parse_taint_key(name, arg, err, errlen);
	case OPT_DEVICES:
		cfg->devices = arg;
		return parse_devices(arg, err, errlen);
	case OPT_NATIVE_CIDR:
		cfg->has_native_cidr = true;
		return parse_cidr(arg, &cfg->native_cidr, err, errlen);
	case OPT_NODE_PORT_RANGE:
		return parse_port_range(arg, &cfg->node_port_min, &cfg->node_port_max, err,
					errlen);
	case OPT_LB_ALGORITHM:
		if (!strcmp(arg, "random"))
			cfg->lb_algorithm = LB_ALGO_RANDOM;
		else if (!strcmp(arg, "maglev"))
			cfg->lb_algorithm = LB_ALGO_MAGLEV;
		else
			return errmsg_invalid(err, errlen, "--bpf-lb-algorithm: '%s' is not random or maglev",
					      arg);
		return 0;
	case OPT_MAGLEV_SIZE:
		if (parse_u32(name, arg, 1, &cfg->maglev_table_size, err, errlen))
			return -EINVAL;
		if (cfg->maglev_table_size != LB_MAGLEV_TABLE_SIZE)
			return errmsg_invalid(err, errlen,
					      "--bpf-lb-maglev-table-size: '%s' is not supported: the "
					      "datapath is built for %u", arg, LB_MAGLEV_TABLE_SIZE);
		return 0;
	case OPT_CT_GC_INTERVAL:
		return parse_interval(name, arg, &cfg->ct_gc_interval_ms, err, errlen);
	case OPT_CT_GC_MAX_INTERVAL:
		return parse_interval(name, arg, &cfg->ct_gc_max_interval_ms, err, errlen);
	case OPT_RECONCILE_INTERVAL:
		return parse_interval(name, arg, &cfg->reconcile_interval_ms, err, errlen);
	case OPT_IDENTITY_GC_INTERVAL:
		return parse_interval(name, arg, &cfg->identity_gc_interval_ms, err, errlen);
	case OPT_IDENTITY_HEARTBEAT:
		return parse_interval(name, arg, &cfg->identity_heartbeat_ms, err, errlen);
	case OPT_CT_TCP:
		return parse_seconds(name, arg, 1, 7 * 86400, &cfg->ct_timeout_tcp_s, err, errlen);
	case OPT_CT_SYN:
		return parse_seconds(name, arg, 1, 86400, &cfg->ct_timeout_syn_s, err, errlen);
	case OPT_CT_FIN:
		return parse_seconds(name, arg, 1, 86400, &cfg->ct_timeout_fin_s, err, errlen);
	case OPT_CT_ANY:
		return parse_seconds(name, arg, 1, 7 * 86400, &cfg->ct_timeout_any_s, err, errlen);
	case OPT_API_SERVER_URLS:
		cfg->k8s_server_urls = arg;
		return parse_server_urls(arg, err, errlen);
	case OPT_PREFER_SERVICE:
		return parse_bool(name, arg, &cfg->k8s_prefer_service, err, errlen);
	case OPT_INSECURE:
		return parse_bool(name, arg, &cfg->k8s_insecure, err, errlen);
	case OPT_WATCH_LIST:
		return parse_bool(name, arg, &cfg->k8s_watch_list, err, errlen);
	case OPT_CLIENT_QPS:	return parse_qps(arg, &cfg->k8s_qps, err, errlen);
	case OPT_CLIENT_BURST:
		if (parse_u32(name, arg, 1, &cfg->k8s_burst, err, errlen))
			return -EINVAL;
		if (cfg->k8s_burst > 100000)
			return errmsg_invalid(err, errlen, "--k8s-client-burst: '%s' is above 100000", arg);
		return 0;
	case OPT_BACKOFF_BASE:
		return parse_backoff(name, arg, &cfg->k8s_backoff_base_ms, err, errlen);
	case OPT_BACKOFF_MAX:
		return parse_backoff(name, arg, &cfg->k8s_backoff_max_ms, err, errlen);
	case OPT_LIST_LIMIT:
		if (parse_u32(name, arg, 1, &cfg->k8s_list_limit, err, errlen))
			return -EINVAL;
		if (cfg->k8s_list_limit > 100000)
			return errmsg_invalid(err, errlen, "--k8s-list-limit: '%s' is above 100000", arg);
		return 0;
	default:
		/* Map sizes: a number here, checked against each map's range
		 * once every flag is in (map_sizes_resolve). */
		if (opt >= OPT_MAP_SIZE && opt < OPT_MAP_SIZE + MS__NR)
			return parse_u32(name, arg, 1, &cfg->map_size_flags.max[opt - OPT_MAP_SIZE],
					 err, errlen);
		return errmsg_invalid(err, errlen, "unknown option (see --help)");
	}
}

/* Checks across flags, and the node name's fallbacks. */
static int finish(struct agent_config *cfg, char *err, size_t errlen)
{
	if (cfg->ct_gc_max_interval_ms == 0)
		cfg->ct_gc_max_interval_ms = CT_GC_MAX_INTERVAL_MS_DEFAULT;
	if (cfg->ct_gc_interval_ms > cfg->ct_gc_max_interval_ms)
		return errmsg_invalid(err, errlen,
				      "--conntrack-gc-interval: %ums is above --conntrack-gc-max-interval "
				      "(%ums)", cfg->ct_gc_interval_ms, cfg->ct_gc_max_interval_ms);
	if (cfg->ct_timeout_syn_s > cfg->ct_timeout_tcp_s)
		return errmsg_invalid(err, errlen,
				      "--bpf-ct-timeout-regular-tcp-syn: %us is above "
				      "--bpf-ct-timeout-regular-tcp (%us)", cfg->ct_timeout_syn_s,
				      cfg->ct_timeout_tcp_s);
	if (cfg->k8s_server && cfg->k8s_server_urls)
		return errmsg_invalid(err, errlen,
				      "--k8s-api-server-urls: not together with --k8s-api-server (give every "
				      "URL in --k8s-api-server-urls)");
	if (cfg->k8s_backoff_base_ms > cfg->k8s_backoff_max_ms)
		return errmsg_invalid(err, errlen, "--k8s-backoff-base: %ums is above --k8s-backoff-max (%ums)",
				      cfg->k8s_backoff_base_ms, cfg->k8s_backoff_max_ms);
	if (map_sizes_resolve(&cfg->map_size_flags, map_sizes_total_memory(), &cfg->map_sizes,
			      err, errlen))
		return -EINVAL;
	if (!cfg->node_name[0]) {
		const char *env = getenv("NODE_NAME");
		char host[K8S_NAME_MAX] = "";

		if (env && *env) {
			if (parse_node_name(env, cfg->node_name, err, errlen))
				return errmsg_invalid(err, errlen,
						      "--node-name: not given, and NODE_NAME '%s' is not a "
						      "DNS subdomain", env);
		} else if (gethostname(host, sizeof(host) - 1) || !host[0]) {
			return errmsg_invalid(err, errlen,
					      "--node-name: not given, NODE_NAME unset, and no hostname");
		} else {
			/* Hostnames may carry capitals; Node names never do. */
			for (char *p = host; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p += 'a' - 'A';
			if (parse_node_name(host, cfg->node_name, err, errlen))
				return errmsg_invalid(err, errlen,
						      "--node-name: not given, and the hostname '%s' is not "
						      "a valid Node name", host);
		}
	}
	return 0;
}

_Static_assert(sizeof(options) / sizeof(options[0]) <= AGENT_OPTIONS_MAX,
	       "struct agent_config's source[] is too small for the options table");

/* The options-table entry that stands for option index i: its first entry
 * with the same value (an alias counts as its flag). */
static int option_entry(int i)
{
	for (int j = 0; j < i; j++)
		if (options[j].val == options[i].val)
			return j;
	return i;
}

/* Was the option getopt just returned (the argv entry before optind, or the
 * one before that when its value was a separate argument) one of the
 * --config-dir's? Those are our own strings, so the pointer tells; getopt
 * may permute argv, but it moves pointers, not strings. */
static bool from_config_dir(char **argv, bool expanded)
{
	const char *entry;

	if (!expanded)
		return false;
	entry = optarg && optind >= 2 && optarg == argv[optind - 1] ? argv[optind - 2]
								    : argv[optind - 1];
	for (int i = 1; i < expanded_argc; i++)
		if (expanded_argv[i] == entry)
			return true;
	return false;
}

int agent_config_parse(int argc, char **argv, struct agent_config *cfg, char *err,
		       size_t errlen)
{
	bool expanded = false;
	int opt, ret, index;

	for (int i = 1; i < argc; i++) {
		const char *dir = NULL;

		if (!strncmp(argv[i], "--config-dir=", 13))
			dir = argv[i] + 13;
		else if (!strcmp(argv[i], "--config-dir") && i + 1 < argc)
			dir = argv[i + 1];
		if (!dir)
			continue;
		argv = config_dir_args(dir, argc, argv, &argc, err, errlen);
		if (!argv)
			return -EINVAL;
		expanded = true;
		break;
	}

	defaults(cfg);
	optind = 0;	/* GNU: reinitialize, so the parser can run more than once */
	opterr = 0;
	while ((index = -1, opt = getopt_long(argc, argv, "h", options, &index)) != -1) {
		if (opt == 'h' || opt == 'V') {
			cfg->help = opt == 'h';
			cfg->version = opt == 'V';
			return 0;
		}
		if (opt == '?' || opt == ':') {
			const char *bad = optind > 0 && optind <= argc ? argv[optind - 1] : "?";

			return errmsg_invalid(err, errlen, "%s: unknown option, or its value is missing "
					      "(see --help)", bad);
		}
		ret = parse_one(opt, optarg, cfg, err, errlen);
		if (ret)
			return ret;
		/* The command line comes after the directory's flags, so the
		 * last word, and its source, wins. */
		if (index >= 0)
			cfg->source[option_entry(index)] = from_config_dir(argv, expanded)
								   ? CONFIG_SRC_CONFIG_DIR
								   : CONFIG_SRC_FLAG;
	}
	if (optind < argc)
		return errmsg_invalid(err, errlen, "unexpected argument '%s'", argv[optind]);
	return finish(cfg, err, errlen);
}

/* ---- effective settings (agentctl config view) ---- */

/* Milliseconds as a duration the flags take back: "5m", "2h13m20s", "1s500ms". */
static void format_duration(__u64 ms, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		__u64 ms;
	} units[] = { { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 } };
	size_t off = 0;

	if (!ms) {
		snprintf(buf, len, "0s");
		return;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && off < len; i++) {
		if (ms < units[i].ms)
			continue;
		off += snprintf(buf + off, len - off, "%llu%s",
				(unsigned long long)(ms / units[i].ms), units[i].unit);
		ms %= units[i].ms;
	}
}

static const char *bool_str(bool b)
{
	return b ? "true" : "false";
}

/* The effective value of option opt, as its flag would take it. -ENOENT for
 * an option this does not know (the unit test catches a flag added to the
 * table without a case here). */
static int option_value(const struct agent_config *cfg, int opt, char *buf, size_t len)
{
	const char *s = NULL;
	char a[INET_ADDRSTRLEN];

	switch (opt) {
	case OPT_KUBECONFIG:		s = cfg->kubeconfig; break;
	case OPT_API_SERVER:		s = cfg->k8s_server; break;
	case OPT_API_SERVER_URLS:	s = cfg->k8s_server_urls; break;
	case OPT_BPF_ROOT:		s = cfg->bpf_root; break;
	case OPT_CGROUP_ROOT:		s = cfg->cgroup_root; break;
	case OPT_SOCKET:		s = cfg->socket_path; break;
	case OPT_STATE_DIR:		s = cfg->state_dir; break;
	case OPT_WRITE_CNI_CONF:	s = cfg->write_cni_conf; break;
	case OPT_CONFIG_DIR:		s = cfg->config_dir; break;
	case OPT_NODE_NAME:		s = cfg->node_name; break;
	case OPT_DEVICES:		s = cfg->devices; break;
	case OPT_PROMETHEUS:		s = cfg->prometheus_addr; break;
	case OPT_KPR_HEALTHZ:		s = cfg->kpr_healthz_addr; break;
	case OPT_FLUSH:			s = bool_str(cfg->flush_on_exit); break;
	case OPT_DEBUG:			s = bool_str(cfg->debug); break;
	case OPT_ENABLE_TCX:		s = bool_str(cfg->enable_tcx); break;
	case OPT_LB_SOCK:		s = bool_str(cfg->bpf_lb_sock); break;
	case OPT_MASQUERADE:		s = bool_str(cfg->enable_bpf_masquerade); break;
	case OPT_DIRECT_ROUTES:		s = bool_str(cfg->auto_direct_node_routes); break;
	case OPT_BIG_TCP_IPV4:		s = bool_str(cfg->enable_ipv4_big_tcp); break;
	case OPT_PREFER_SERVICE:	s = bool_str(cfg->k8s_prefer_service); break;
	case OPT_INSECURE:		s = bool_str(cfg->k8s_insecure); break;
	case OPT_WATCH_LIST:		s = bool_str(cfg->k8s_watch_list); break;
	case OPT_LB_ALGORITHM:
		s = cfg->lb_algorithm == LB_ALGO_MAGLEV ? "maglev" : "random";
		break;
	case OPT_NATIVE_CIDR:
		if (!cfg->has_native_cidr)
			break;
		inet_ntop(AF_INET, &cfg->native_cidr.addr, a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, cfg->native_cidr.len);
		return 0;
	case OPT_NODE_PORT_RANGE:
		snprintf(buf, len, "%u-%u", cfg->node_port_min, cfg->node_port_max);
		return 0;
	case OPT_LB_MAP_MAX:
		snprintf(buf, len, "%u", cfg->map_size_flags.lb_map_max ? cfg->map_size_flags.lb_map_max
					 : LB4_SERVICES_MAX);
		return 0;
	case OPT_SOCK_REV_MAX:
		snprintf(buf, len, "%u", cfg->map_sizes.max[MS_LB4_SOCK_REV]);
		return 0;
	case OPT_TAINT_KEY:		s = cfg->not_ready_taint_key; break;
	case OPT_HEALTH_PORT:	snprintf(buf, len, "%u", cfg->health_port); return 0;
	case OPT_POLICY_MAP_MAX: snprintf(buf, len, "%u", cfg->policy_map_max); return 0;
	case OPT_MAGLEV_SIZE:	snprintf(buf, len, "%u", cfg->maglev_table_size); return 0;
	case OPT_CLIENT_BURST:	snprintf(buf, len, "%u", cfg->k8s_burst); return 0;
	case OPT_LIST_LIMIT:	snprintf(buf, len, "%u", cfg->k8s_list_limit); return 0;
	case OPT_CLIENT_QPS:	snprintf(buf, len, "%g", cfg->k8s_qps); return 0;
	case OPT_MAP_RATIO:
		snprintf(buf, len, "%g", cfg->map_size_flags.dynamic_ratio);
		return 0;
	case OPT_CT_TCP:	snprintf(buf, len, "%us", cfg->ct_timeout_tcp_s); return 0;
	case OPT_CT_SYN:	snprintf(buf, len, "%us", cfg->ct_timeout_syn_s); return 0;
	case OPT_CT_FIN:	snprintf(buf, len, "%us", cfg->ct_timeout_fin_s); return 0;
	case OPT_CT_ANY:	snprintf(buf, len, "%us", cfg->ct_timeout_any_s); return 0;
	case OPT_CT_GC_INTERVAL:
		format_duration(cfg->ct_gc_interval_ms, buf, len);
		return 0;
	case OPT_CT_GC_MAX_INTERVAL:
		format_duration(cfg->ct_gc_max_interval_ms, buf, len);
		return 0;
	case OPT_RECONCILE_INTERVAL:
		format_duration(cfg->reconcile_interval_ms, buf, len);
		return 0;
	case OPT_IDENTITY_GC_INTERVAL:
		format_duration(cfg->identity_gc_interval_ms, buf, len);
		return 0;
	case OPT_IDENTITY_HEARTBEAT:
		format_duration(cfg->identity_heartbeat_ms, buf, len);
		return 0;
	case OPT_BACKOFF_BASE:
		format_duration(cfg->k8s_backoff_base_ms, buf, len);
		return 0;
	case OPT_BACKOFF_MAX:
		format_duration(cfg->k8s_backoff_max_ms, buf, len);
		return 0;
	default:
		/* Map sizes: what the maps are given (flag, ratio or default). */
		if (opt >= OPT_MAP_SIZE && opt < OPT_MAP_SIZE + MS__NR) {
			snprintf(buf, len, "%u", cfg->map_sizes.max[opt - OPT_MAP_SIZE]);
			return 0;
		}
		buf[0] = '\0';
		return -ENOENT;
	}
	snprintf(buf, len, "%s", s ? s : "");
	return 0;
}

const char *agent_config_source_name(enum config_source src)
{
	switch (src) {
	case CONFIG_SRC_FLAG:		return "flag";
	case CONFIG_SRC_CONFIG_DIR:	return "config-dir";
	default:			return "default";
	}
}

static int setting_cmp(const void *a, const void *b)
{
	return strcmp(((const struct agent_setting *)a)->name,
		      ((const struct agent_setting *)b)->name);
}

int agent_config_settings(const struct agent_config *cfg, struct agent_setting *out, int max)
{
	int n = 0;

	for (int i = 0; options[i].name && n < max; i++) {
		struct agent_setting *st = &out[n];

		/* Actions, not settings; and an alias is its flag's row. */
		if (options[i].val == 'h' || options[i].val == 'V' || option_entry(i) != i)
			continue;
		st->name = options[i].name;
		st->known = !option_value(cfg, options[i].val, st->value, sizeof(st->value));
		st->source = cfg->source[i];
		n++;
	}
	qsort(out, n, sizeof(*out), setting_cmp);
	return n;
}
