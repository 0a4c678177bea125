// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * policy_bench: the policy control plane at scale, in process, through the
 * agent's own code: objects parsed from apiserver JSON (k8s/policy_objects.h)
 * into a store, the policy reconciler (policy/reconcile.h: selector cache,
 * engine, policy_map_set) writing real BPF maps the tool creates itself (an
 * ARRAY_OF_MAPS of LPM tries, as the loader pins; nothing of an agent's).
 *
 *   policy_bench [POLICIES [IDENTITIES [ENDPOINTS [CHANGES]]]]
 *                (default 1000 10000 100 200; needs root)
 *
 * The cluster: 50 namespaces (labels team, env), IDENTITIES identities spread
 * over them (app, tier, version, the namespace's labels, as Cilium's
 * identities carry them), ENDPOINTS local endpoints on this node (two
 * CiliumEndpointSlices' worth per namespace), POLICIES policies, 20 per
 * namespace in turn:
 *   - NetworkPolicies selecting an app (or, every fifth, tier In [web, api])
 *     with ingress from the namespace's web tier, from an app in the
 *     namespaces of the same team (namespaceSelector AND podSelector), and
 *     from an app in every prod namespace (matchExpressions), on a TCP port,
 *     443 and a port range; every third also egress to the db tier on 5432
 *     and UDP 53;
 *   - every fourth a CiliumNetworkPolicy instead: fromEndpoints by tier,
 *     toEndpoints by namespace list (matchExpressions), and every tenth of
 *     those an ingressDeny of port 22 from the next namespace.
 *
 * Reported: the first full computation (the pass's engine time, its wall
 * time with every trie written, selector evaluations), ru_maxrss, entries
 * per endpoint (min, median, max) and endpoints failing, then the time to
 * enforce CHANGES single-policy changes (a policy's port moved: the event
 * parsed into the store, the pass, the affected tries written) and CHANGES
 * new identities, p50, p99 and max, and the CPU time of each (this thread's:
 * what the change costs apart from waiting for a shared CPU).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <sys/resource.h>

#include "axon/policy.h"
#include "k8s/policy_objects.h"
#include "policy/reconcile.h"
#include "store/store.h"

#define N_NS	 50
#define MAP_MAX	 16384 /* --bpf-policy-map-max's default */
#define JSON_MAX 4096
#define ID_BASE	 1000

static const char *const tiers[] = {"web", "api", "db", "cache"};
static const char *const envs[] = {"prod", "staging", "dev"};

static struct store store;
static struct pol_reconciler rec;
static unsigned int n_ids;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The CPU this thread used: the work of a change apart from the waits of a
 * shared machine. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "policy_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

/* Parse one object as its informer would deliver it and apply it to the store. */
static void put(const char *kind, const char *json)
{
	cJSON *j = cJSON_Parse(json);
	char err[256] = "";
	int ret;

	if (!j)
		die("%s: bad JSON: %s", kind, json);
	if (!strcmp(kind, "Node")) {
		struct k8s_node o = {};

		ret = k8s_node_from_json(j, &o, err, sizeof(err));
		if (!ret)
			ret = store_set_node(&store, &o);
		k8s_node_free(&o);
	} else if (!strcmp(kind, "CES")) {
		struct k8s_cilium_endpointslice o = {};

		ret = k8s_cilium_endpointslice_from_json(j, &o, err, sizeof(err));
		if (!ret)
			ret = store_set_ces(&store, &o);
		k8s_cilium_endpointslice_free(&o);
	} else if (!strcmp(kind, "Namespace")) {
		struct k8s_namespace o = {};

		ret = k8s_namespace_from_json(j, &o, err, sizeof(err));
		if (!ret)
			ret = store_set_namespace(&store, &o);
		k8s_namespace_free(&o);
	} else if (!strcmp(kind, "Identity")) {
		struct k8s_identity o = {};

		ret = k8s_identity_from_json(j, &o, err, sizeof(err));
		if (!ret)
			ret = store_set_identity(&store, &o);
		k8s_identity_free(&o);
	} else {
		struct policy p = {};

		ret = !strcmp(kind, "NetworkPolicy")
			  ? k8s_network_policy_from_json(j, &p, err, sizeof(err))
			  : k8s_cilium_policy_from_json(j, false, &p, err, sizeof(err));
		if (!ret)
			ret = store_set_policy(&store, &p);
		policy_free(&p);
	}
	cJSON_Delete(j);
	if (ret)
		die("%s: %s (%s): %s", kind, err[0] ? err : "", strerror(-ret), json);
}

static void put_namespace(unsigned int n)
{
	char js[JSON_MAX];

	snprintf(js, sizeof(js),
		 "{\"metadata\":{\"name\":\"ns-%u\",\"resourceVersion\":\"1\",\"labels\":{"
		 "\"kubernetes.io/metadata.name\":\"ns-%u\",\"team\":\"t%u\",\"env\":\"%s\"}}}",
		 n, n, n % 10, envs[n % 3]);
	put("Namespace", js);
}

/* Identity i: namespace i % N_NS, app (i / N_NS) % 40, version (i / N_NS / 40). */
static void put_identity(unsigned int i, unsigned int version)
{
	unsigned int n = i % N_NS, app = (i / N_NS) % 40;
	char js[JSON_MAX];

	snprintf(js, sizeof(js),
		 "{\"metadata\":{\"name\":\"%u\",\"resourceVersion\":\"1\"},\"security-labels\":{"
		 "\"k8s:app\":\"app-%u\",\"k8s:tier\":\"%s\",\"k8s:version\":\"v%u\","
		 "\"k8s:io.kubernetes.pod.namespace\":\"ns-%u\","
		 "\"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name\":\"ns-%u\","
		 "\"k8s:io.cilium.k8s.namespace.labels.team\":\"t%u\","
		 "\"k8s:io.cilium.k8s.namespace.labels.env\":\"%s\","
		 "\"k8s:io.cilium.k8s.policy.serviceaccount\":\"app-%u\","
		 "\"k8s:io.cilium.k8s.policy.cluster\":\"default\"}}",
		 ID_BASE + i, app, tiers[app % 4], version, n, n, n % 10, envs[n % 3], app);
	put("Identity", js);
}

/* Policy k (namespace k % N_NS, m = k / N_NS); port_shift moves its ports (a change). */
static void put_policy(unsigned int k, unsigned int port_shift)
{
	unsigned int n = k % N_NS, m = k / N_NS, app = (m * 2 + n % 2) % 40;
	unsigned int port = 8000 + m + port_shift;
	char js[JSON_MAX], subj[256];

	if (m % 5 == 4)
		snprintf(subj, sizeof(subj),
			 "{\"matchExpressions\":[{\"key\":\"tier\","
			 "\"operator\":\"In\",\"values\":[\"web\",\"api\"]}]}");
	else
		snprintf(subj, sizeof(subj), "{\"matchLabels\":{\"app\":\"app-%u\"}}", app);
	if (m % 4 == 1) {
		char deny[512] = "";

		if (m % 10 == 9 || k % 40 == 21)
			snprintf(deny, sizeof(deny),
				 "\"ingressDeny\":[{\"fromEndpoints\":[{\"matchLabels\":{"
				 "\"k8s:io.kubernetes.pod.namespace\":\"ns-%u\"}}],\"toPorts\":"
				 "[{\"ports\":[{\"port\":\"22\",\"protocol\":\"TCP\"}]}]}],",
				 (n + 1) % N_NS);
		snprintf(js, sizeof(js),
			 "{\"metadata\":{\"name\":\"cnp-%u\",\"namespace\":\"ns-%u\","
			 "\"resourceVersion\":\"1\"},\"spec\":{\"endpointSelector\":"
			 "{\"matchLabels\":{\"app\":\"app-%u\"}},"
			 "\"ingress\":[{\"fromEndpoints\":[{\"matchLabels\":{\"tier\":\"%s\"}}],"
			 "\"toPorts\":[{\"ports\":[{\"port\":\"%u\",\"protocol\":\"TCP\"}]}]}],"
			 "%s"
			 "\"egress\":[{\"toEndpoints\":[{\"matchExpressions\":[{\"key\":"
			 "\"k8s:io.kubernetes.pod.namespace\",\"operator\":\"In\",\"values\":"
			 "[\"ns-%u\",\"ns-%u\"]}]}],\"toPorts\":[{\"ports\":[{\"port\":\"%u\","
			 "\"protocol\":\"ANY\"}]}]}]}}",
			 k, n, app, tiers[m % 4], port, deny, (n + 1) % N_NS, (n + 7) % N_NS,
			 6000 + m + port_shift);
		put("CiliumNetworkPolicy", js);
		return;
	}
	snprintf(
	    js, sizeof(js),
	    "{\"metadata\":{\"name\":\"np-%u\",\"namespace\":\"ns-%u\",\"resourceVersion\":"
	    "\"1\"},\"spec\":{\"podSelector\":%s,\"policyTypes\":[\"Ingress\"%s],"
	    "\"ingress\":[{\"from\":["
	    "{\"podSelector\":{\"matchLabels\":{\"tier\":\"web\"}}},"
	    "{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"t%u\"}},"
	    "\"podSelector\":{\"matchLabels\":{\"app\":\"app-%u\"}}},"
	    "{\"namespaceSelector\":{\"matchExpressions\":[{\"key\":\"env\",\"operator\":"
	    "\"In\",\"values\":[\"prod\"]}]},\"podSelector\":{\"matchExpressions\":[{\"key\":"
	    "\"app\",\"operator\":\"In\",\"values\":[\"app-%u\",\"app-%u\"]}]}}],"
	    "\"ports\":[{\"protocol\":\"TCP\",\"port\":%u},{\"protocol\":\"TCP\",\"port\":443},"
	    "{\"protocol\":\"TCP\",\"port\":9000,\"endPort\":9015}]}]%s}}",
	    k, n, subj, m % 3 == 0 ? ",\"Egress\"" : "", n % 10, (m + 1) % 40, (m + 3) % 40,
	    (m + 5) % 40, port,
	    m % 3 == 0 ? ",\"egress\":[{\"to\":[{\"podSelector\":{\"matchLabels\":{\"tier\":"
			 "\"db\"}}}],\"ports\":[{\"protocol\":\"TCP\",\"port\":5432}]},"
			 "{\"ports\":[{\"protocol\":\"UDP\",\"port\":53}]}]"
		       : "");
	put("NetworkPolicy", js);
}

/* ENDPOINTS local pods (this node, 192.168.1.10), one slice per namespace,
 * each pod on an identity of its namespace. */
static void put_endpoints(unsigned int n_eps)
{
	for (unsigned int n = 0; n < N_NS; n++) {
		char js[JSON_MAX * 4];
		size_t off;

		off = snprintf(js, sizeof(js),
			       "{\"metadata\":{\"name\":\"ces-%u\",\"resourceVersion\":\"1\"},"
			       "\"namespace\":\"ns-%u\",\"endpoints\":[",
			       n, n);
		for (unsigned int e = n, first = 1; e < n_eps; e += N_NS, first = 0) {
			/* app 3e % 40, version e % 5 when there are that many */
			unsigned int ident =
			    n + N_NS * ((e * 3 % 40 + 40 * (e % 5)) % (n_ids / N_NS));

			off += snprintf(js + off, sizeof(js) - off,
					"%s{\"name\":\"pod-%u\",\"id\":%u,\"networking\":{"
					"\"addressing\":[{\"ipv4\":\"10.244.%u.%u\"}],"
					"\"node\":\"192.168.1.10\"}}",
					first ? "" : ",", e, ID_BASE + ident, e / 250, e % 250 + 2);
		}
		snprintf(js + off, sizeof(js) - off, "]}");
		put("CES", js);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_ms(uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (n - 1) + 0.5);

	return v[i] / 1e6;
}

static int pass(uint64_t *wall_ns)
{
	uint64_t next, t0 = now_ns();
	int failing = pol_reconcile(&rec, &store, NULL, NULL, 1000, &next);

	*wall_ns = now_ns() - t0;
	return failing;
}

static void report_changes(const char *what, uint64_t *v, uint64_t *cpu, size_t n,
			   unsigned long computed, unsigned long computed_max, unsigned long written)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	qsort(cpu, n, sizeof(*cpu), cmp_u64);
	printf("  time to enforce, %s (%zu): p50 %.2f ms  p99 %.2f ms  max %.2f ms; "
	       "CPU p50 %.2f ms  p99 %.2f ms\n",
	       what, n, pct_ms(v, n, 0.5), pct_ms(v, n, 0.99), v[n - 1] / 1e6, pct_ms(cpu, n, 0.5),
	       pct_ms(cpu, n, 0.99));
	printf("    endpoints computed per change: mean %.1f  max %lu; trie entries written or "
	       "deleted per change: mean %.1f\n",
	       (double)computed / n, computed_max, (double)written / n);
}

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, oopts);
	unsigned int n_pols = argc > 1 ? atoi(argv[1]) : 1000;
	unsigned int n_eps = argc > 3 ? atoi(argv[3]) : 100;
	unsigned int n_changes = argc > 4 ? atoi(argv[4]) : 200;
	uint64_t *lat, *cpu, wall, t0, c0, evals;
	unsigned long computed, computed_max, written;
	size_t *ents, n_ents = 0, total = 0, enforced = 0;
	struct rusage ru;
	int tmpl, outer, failing;
	long rss0;

	n_ids = argc > 2 ? atoi(argv[2]) : 10000;
	if (n_ids < N_NS || n_eps < 1 || n_eps > 250 * 250 || !n_changes)
		die("usage: policy_bench [POLICIES [IDENTITIES>=%d [ENDPOINTS [CHANGES>0]]]]",
		    N_NS);
	getrusage(RUSAGE_SELF, &ru);
	rss0 = ru.ru_maxrss;
	tmpl = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "tmpl", sizeof(struct policy_key),
			      sizeof(struct policy_entry), 1, &opts);
	if (tmpl < 0)
		die("creating an LPM trie: %s (run as root)", strerror(errno));
	oopts.inner_map_fd = tmpl;
	outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "policy", sizeof(__u32), sizeof(__u32),
			       n_eps + 1, &oopts);
	close(tmpl);
	if (outer < 0)
		die("creating the array of maps: %s", strerror(errno));
	if (store_init(&store) || pol_reconciler_init(&rec, outer, MAP_MAX))
		die("out of memory");

	t0 = now_ns();
	store_set_self_name(&store, "node-a");
	put("Node", "{\"metadata\":{\"name\":\"node-a\",\"resourceVersion\":\"1\"},"
		    "\"spec\":{\"podCIDRs\":[\"10.244.0.0/16\"]},\"status\":{\"addresses\":"
		    "[{\"type\":\"InternalIP\",\"address\":\"192.168.1.10\"}]}}");
	for (unsigned int n = 0; n < N_NS; n++)
		put_namespace(n);
	for (unsigned int i = 0; i < n_ids; i++)
		put_identity(i, i / N_NS / 40);
	put_endpoints(n_eps);
	for (unsigned int k = 0; k < n_pols; k++)
		put_policy(k, 0);
	printf("policy_bench: %u policies, %u identities, %u local endpoints, %u namespaces, "
	       "policy maps of %u entries\n",
	       n_pols, n_ids, n_eps, N_NS, MAP_MAX);
	printf("  objects parsed into the store: %.1f ms\n", (now_ns() - t0) / 1e6);

	failing = pass(&wall);
	evals = rec.sc.evaluations;
	printf("  full computation: engine %.1f ms, pass with every trie written %.1f ms, "
	       "%zu selectors, %lu selector evaluations\n",
	       rec.compute_ns / 1e6, wall / 1e6, rec.sc.n_sels, evals);

	ents = calloc(rec.endpoints.count + 1, sizeof(*ents));
	if (!ents)
		die("out of memory");
	for (struct ht_entry *e = ht_first(&rec.endpoints); e; e = ht_next(&rec.endpoints, e)) {
		const struct pol_endpoint *pe = e->value;

		enforced += pe->enforce != 0;
		if (!pe->err) {
			ents[n_ents++] = pe->n_entries;
			total += pe->n_entries;
		}
	}
	if (!n_ents)
		die("no endpoint realized (%d failing)", failing);
	qsort(ents, n_ents, sizeof(*ents), cmp_u64);
	printf("  entries per endpoint: min %zu  median %zu  max %zu  total %zu; "
	       "endpoints enforced %zu, failing %d, of %zu\n",
	       ents[0], ents[n_ents / 2], ents[n_ents - 1], total, enforced, failing,
	       rec.endpoints.count);
	free(ents);
	getrusage(RUSAGE_SELF, &ru);
	printf("  ru_maxrss %.1f MiB (%.1f MiB before the objects)\n", ru.ru_maxrss / 1024.0,
	       rss0 / 1024.0);

	lat = calloc(n_changes, sizeof(*lat));
	cpu = calloc(n_changes, sizeof(*cpu));
	if (!lat || !cpu)
		die("out of memory");
	evals = rec.sc.evaluations;
	computed = rec.computations;
	computed_max = 0;
	written = rec.entries_written;
	for (unsigned int c = 0; c < n_changes; c++) {
		/* Any policy (most select no local endpoint), its ports moved. */
		unsigned int k = (c * 7919) % n_pols;

		t0 = now_ns();
		c0 = cpu_ns();
		put_policy(k, 1 + c % 50);
		if (pass(&wall))
			die("change %u: endpoints failing", c);
		lat[c] = now_ns() - t0;
		cpu[c] = cpu_ns() - c0;
		if (rec.last_computed > computed_max)
			computed_max = rec.last_computed;
	}
	report_changes("one policy changed", lat, cpu, n_changes, rec.computations - computed,
		       computed_max, rec.entries_written - written);
	printf("  selector evaluations over the policy changes: %lu\n", rec.sc.evaluations - evals);
	evals = rec.sc.evaluations;
	computed = rec.computations;
	computed_max = 0;
	written = rec.entries_written;
	for (unsigned int c = 0; c < n_changes; c++) {
		t0 = now_ns();
		c0 = cpu_ns();
		put_identity(n_ids + c, 100 + c);
		if (pass(&wall))
			die("identity %u: endpoints failing", c);
		lat[c] = now_ns() - t0;
		cpu[c] = cpu_ns() - c0;
		if (rec.last_computed > computed_max)
			computed_max = rec.last_computed;
	}
	report_changes("one identity added", lat, cpu, n_changes, rec.computations - computed,
		       computed_max, rec.entries_written - written);
	printf("  selector evaluations over the identity adds: %lu (%zu selectors)\n",
	       rec.sc.evaluations - evals, rec.sc.n_sels);
	free(lat);
	free(cpu);
	pol_reconciler_destroy(&rec);
	store_destroy(&store);
	close(outer);
	return 0;
}
