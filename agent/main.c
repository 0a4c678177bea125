// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * axon-agent: programs the node's eBPF datapath from the Kubernetes API.
 *
 * One thread: the k8s client's poll waits on apiserver traffic, the API
 * socket and a signalfd; after each wake-up the reconciler realizes what
 * changed. On SIGTERM the agent leaves the datapath pinned and running, so
 * an upgrade does not interrupt traffic; --flush-on-exit removes it instead.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/signalfd.h>

#include "axon/maps.h"
#include "agent.h"
#include "bpffs.h"
#include "log.h"

static const char usage_text[] =
	"Usage: axon-agent [options]\n"
	"\n"
	"  --kubeconfig FILE         kubeconfig to reach the apiserver (default: in-cluster)\n"
	"  --k8s-api-server URL      apiserver URL, overriding the kubeconfig's\n"
	"  --bpf-root DIR            bpffs directory for pins (default " AXON_DEFAULT_BPF_ROOT ")\n"
	"  --cgroup-root DIR         cgroup v2 to attach socket hooks to\n"
	"                            (default: the cgroup v2 hierarchy's root)\n"
	"  --socket PATH             local API socket (default " AXON_DEFAULT_SOCKET ")\n"
	"  --bpf-lb-map-max N        entries in the service and backend maps (default 65536)\n"
	"  --bpf-sock-rev-map-max N  entries in the socket reverse-NAT map (default 262144)\n"
	"  --flush-on-exit           remove all programs, links and maps on exit\n"
	"  --debug                   verbose logs\n"
	"  --config-dir DIR          one file per flag (name = flag, content = value), as a\n"
	"                            ConfigMap mounts it; command-line flags win\n"
	"  -h, --help\n";

enum {
	OPT_KUBECONFIG = 256,
	OPT_API_SERVER,
	OPT_BPF_ROOT,
	OPT_CGROUP_ROOT,
	OPT_SOCKET,
	OPT_LB_MAP_MAX,
	OPT_SOCK_REV_MAX,
	OPT_FLUSH,
	OPT_DEBUG,
	OPT_CONFIG_DIR,
};

static const struct option options[] = {
	{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
	{ "k8s-api-server", required_argument, NULL, OPT_API_SERVER },
	{ "bpf-root", required_argument, NULL, OPT_BPF_ROOT },
	{ "cgroup-root", required_argument, NULL, OPT_CGROUP_ROOT },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "bpf-lb-map-max", required_argument, NULL, OPT_LB_MAP_MAX },
	{ "bpf-sock-rev-map-max", required_argument, NULL, OPT_SOCK_REV_MAX },
	{ "flush-on-exit", no_argument, NULL, OPT_FLUSH },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ "config-dir", required_argument, NULL, OPT_CONFIG_DIR },
	{ "help", no_argument, NULL, 'h' },
	{},
};

static int parse_u32(const char *flag, const char *s, __u32 min, __u32 *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > UINT32_MAX) {
		fprintf(stderr, "axon-agent: --%s: '%s' is not a number >= %u\n", flag, s, min);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Flags from a directory of files go before the command line's, so the
 * command line wins. Returns a new argv (leaked on purpose: it lives as long
 * as the config that points into it). */
static char **config_dir_args(const char *dir, int argc, char **argv, int *argc_out)
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
		fprintf(stderr, "axon-agent: --config-dir %s: %s\n", dir, strerror(errno));
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
		if (!strcmp(value, "false"))
			continue;
		if (asprintf(&out[n], !strcmp(value, "true") ? "--%s" : "--%s=%s", de->d_name,
			     value) < 0)
			break;
		n++;
	}
	closedir(d);
	for (int i = 1; i < argc; i++)
		out[n++] = argv[i];
	*argc_out = n;
	return out;
}

static int parse_args(int argc, char **argv, struct agent_config *cfg)
{
	int opt;

	for (int i = 1; i < argc; i++) {
		const char *dir = NULL;

		if (!strncmp(argv[i], "--config-dir=", 13))
			dir = argv[i] + 13;
		else if (!strcmp(argv[i], "--config-dir") && i + 1 < argc)
			dir = argv[i + 1];
		if (!dir)
			continue;
		argv = config_dir_args(dir, argc, argv, &argc);
		if (!argv)
			return -EINVAL;
		break;
	}

	*cfg = (struct agent_config){
		.bpf_root = AXON_DEFAULT_BPF_ROOT,
		.cgroup_root = "/sys/fs/cgroup/unified",
		.socket_path = AXON_DEFAULT_SOCKET,
		.lb_map_max = LB4_SERVICES_MAX,
		.sock_rev_max = LB4_SOCK_REV_MAX,
	};
	/* On a pure cgroup v2 host the hierarchy's root is /sys/fs/cgroup. */
	if (access("/sys/fs/cgroup/unified", F_OK))
		cfg->cgroup_root = "/sys/fs/cgroup";
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case OPT_KUBECONFIG:	cfg->kubeconfig = optarg; break;
		case OPT_API_SERVER:	cfg->k8s_server = optarg; break;
		case OPT_BPF_ROOT:	cfg->bpf_root = optarg; break;
		case OPT_CGROUP_ROOT:	cfg->cgroup_root = optarg; break;
		case OPT_SOCKET:	cfg->socket_path = optarg; break;
		case OPT_FLUSH:		cfg->flush_on_exit = true; break;
		case OPT_DEBUG:		cfg->debug = true; break;
		case OPT_CONFIG_DIR:	break;	/* expanded above */
		case OPT_LB_MAP_MAX:
			if (parse_u32("bpf-lb-map-max", optarg, 16, &cfg->lb_map_max))
				return -EINVAL;
			break;
		case OPT_SOCK_REV_MAX:
			if (parse_u32("bpf-sock-rev-map-max", optarg, 16, &cfg->sock_rev_max))
				return -EINVAL;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			fputs(usage_text, stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "axon-agent: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int k8s_connect(struct agent *a)
{
	struct k8s_client_config kc = {};
	char err[256] = "";
	int ret;

	if (a->cfg.kubeconfig)
		ret = k8s_config_from_kubeconfig(a->cfg.kubeconfig, &kc, err, sizeof(err));
	else
		ret = k8s_config_in_cluster(NULL, &kc, err, sizeof(err));
	if (ret) {
		pr_err("no apiserver configuration", "source=%s error=\"%s\"",
		       a->cfg.kubeconfig ? a->cfg.kubeconfig : "in-cluster", err);
		return ret;
	}
	if (a->cfg.k8s_server) {
		for (size_t i = 0; i < kc.n_servers; i++)
			free(kc.servers[i]);
		free(kc.servers);
		kc.servers = malloc(sizeof(*kc.servers));
		if (!kc.servers || !(kc.servers[0] = strdup(a->cfg.k8s_server))) {
			k8s_config_free(&kc);
			return -ENOMEM;
		}
		kc.n_servers = 1;
	}
	k8s_config_defaults(&kc);
	a->k8s = k8s_client_new(&kc, err, sizeof(err));
	k8s_config_free(&kc);
	if (!a->k8s) {
		pr_err("cannot create apiserver client", "error=\"%s\"", err);
		return -EINVAL;
	}
	return agent_watches_add(a);
}

static int signals_open(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int run(struct agent *a, int sig_fd)
{
	for (;;) {
		struct curl_waitfd extra[2] = {
			{ .fd = a->api.fd, .events = CURL_WAIT_POLLIN },
			{ .fd = sig_fd, .events = CURL_WAIT_POLLIN },
		};
		int timeout = agent_reconcile(a), err;

		if (timeout < 0 || timeout > 1000)
			timeout = 1000;
		err = k8s_client_run_once(a->k8s, extra, 2, timeout);
		if (err) {
			pr_err("apiserver client failed", "error=\"%s\"", strerror(-err));
			return err;
		}
		if (extra[1].revents) {
			struct signalfd_siginfo si;

			if (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
				pr_info("signal received, exiting", "signal=%s",
					strsignal(si.ssi_signo));
				return 0;
			}
		}
		if (extra[0].revents)
			api_server_serve_one(&a->api, agent_api_handle, a);
	}
}

int main(int argc, char **argv)
{
	struct loader_config dcfg;
	static struct agent agent;
	struct agent *a = &agent;
	int sig_fd, err;

	if (parse_args(argc, argv, &a->cfg))
		return 2;
	log_set_level(a->cfg.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	log_hook_libbpf();
	a->started = time(NULL);
	a->api.fd = -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);

	sig_fd = signals_open();
	if (sig_fd < 0) {
		pr_err("cannot set up signals", "error=\"%s\"", strerror(-sig_fd));
		return 1;
	}
	err = store_init(&a->store);
	if (err)
		goto out;
	dcfg = (struct loader_config){
		.bpf_root = a->cfg.bpf_root,
		.cgroup_root = a->cfg.cgroup_root,
		.lb_map_max = a->cfg.lb_map_max,
		.sock_rev_max = a->cfg.sock_rev_max,
	};
	err = datapath_load(&a->dp, &dcfg);
	if (err)
		goto out;
	err = lb_reconciler_init(&a->lb, &lb_bpf_ops, &a->dp.lb);
	if (!err)
		err = lb_reconciler_restore(&a->lb);
	if (err) {
		pr_err("cannot read pinned load-balancing maps", "error=\"%s\"", strerror(-err));
		goto out;
	}
	err = api_server_open(&a->api, a->cfg.socket_path);
	if (err) {
		pr_err("cannot open API socket", "path=%s error=\"%s\"", a->cfg.socket_path,
		       strerror(-err));
		goto out;
	}
	err = k8s_connect(a);
	if (err)
		goto out;
	pr_info("agent started", "bpf_root=%s cgroup=%s socket=%s", a->cfg.bpf_root,
		a->cfg.cgroup_root, a->cfg.socket_path);
	err = run(a, sig_fd);
out:
	api_server_close(&a->api);
	k8s_client_free(a->k8s);
	lb_reconciler_destroy(&a->lb);
	datapath_close(&a->dp);
	store_destroy(&a->store);
	if (a->cfg.flush_on_exit) {
		int links, maps, ferr = bpffs_flush(a->cfg.bpf_root, &links, &maps);

		pr_info("flushed datapath", "links=%d maps=%d%s", links, maps,
			ferr ? " error=incomplete" : "");
	}
	close(sig_fd);
	curl_global_cleanup();
	return err ? 1 : 0;
}
