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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "axon/maps.h"
#include "agent.h"
#include "bpffs.h"
#include "log.h"
#include "start/preflight.h"
#include "start/start_undo.h"
#include "version.h"

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
		struct curl_waitfd extra[3] = {
			{ .fd = a->api.fd, .events = CURL_WAIT_POLLIN },
			{ .fd = sig_fd, .events = CURL_WAIT_POLLIN },
			{ .fd = agent_datapath_fd(a), .events = CURL_WAIT_POLLIN },
		};
		int timeout = agent_reconcile(a), err;

		agent_health_publish(a);	/* the loop turned: /livez, /healthz, the taint */
		agent_cni_tick(a);		/* IPAM pool, conflist, leaked endpoints */
		kpr_health_sync(&a->kpr, &a->store, a->health.ready);
		agent_metrics_publish(a);

		if (timeout < 0 || timeout > 1000)
			timeout = 1000;
		err = k8s_client_run_once(a->k8s, extra, extra[2].fd >= 0 ? 3 : 2, timeout);
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
			api_server_serve_pending(&a->api, agent_api_handle, a, 32);
		if (extra[2].fd >= 0 && extra[2].revents)
			agent_datapath_netdev_event(a);
	}
}

int main(int argc, char **argv)
{
	struct loader_config dcfg;
	static struct start_record start;
	static struct agent agent;
	struct agent *a = &agent;
	char errmsg[512] = "";
	int sig_fd, err;

	if (agent_config_parse(argc, argv, &a->cfg, errmsg, sizeof(errmsg))) {
		fprintf(stderr, "axon-agent: %s\n", errmsg);
		return 2;
	}
	if (a->cfg.help) {
		fputs(agent_usage_text, stdout);
		return 0;
	}
	if (a->cfg.version) {
		printf("axon-agent %s (commit %s)\n", axon_version, axon_git_commit);
		return 0;
	}
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
	/* Everything that can be refused is refused before the first pin: the
	 * apiserver configuration (kubeconfig, URLs), the cgroup, the devices. */
	err = agent_k8s_client_create(a);
	if (err)
		goto out;
	err = agent_preflight(&a->cfg, errmsg, sizeof(errmsg));
	if (err) {
		pr_err("cannot start", "error=\"%s\"", errmsg);
		goto out;
	}
	start_record_take(&start, &a->cfg);
	/* Before anything is attached: a health port in use fails the start here. */
	err = agent_health_open(a);
	if (!err)
		err = kpr_health_open(&a->kpr, a->cfg.kpr_healthz_addr);
	if (err)
		goto out;
	dcfg = (struct loader_config){
		.bpf_root = a->cfg.bpf_root,
		.cgroup_root = a->cfg.cgroup_root,
		.sizes = &a->cfg.map_sizes,
	};
	err = datapath_load(&a->dp, &dcfg);
	if (err)
		goto out;
	err = lb_sock_term_start(&a->sock_term, &a->dp, a->cfg.bpf_lb_sock);
	if (err)
		goto out;
	err = lb_reconciler_init(&a->lb, &lb_bpf_ops, &a->dp.lb);
	a->lb.backend_removed = lb_sock_term_backend_removed;
	a->lb.backend_removed_ctx = &a->sock_term;
	if (!err)
		err = lb_reconciler_restore(&a->lb);
	if (err) {
		pr_err("cannot read pinned load-balancing maps", "error=\"%s\"", strerror(-err));
		goto out;
	}
	a->lb_fresh = !lb_reconciler_frontends(&a->lb) && !lb_reconciler_backends(&a->lb);
	/* The tc datapath and its reconcilers (agent/dpsync.c). */
	err = agent_datapath_init(a);
	if (err)
		goto out;
	/* Before the first pass: the endpoints the plugin created are local ones. */
	err = agent_cni_init(a);
	if (err)
		goto out;
	map_fill_open(&a->fill, a->cfg.bpf_root, a->dp.maps, a->dp.n_maps);
	if (a->cfg.prometheus_addr[0]) {
		err = metrics_server_start(&a->metrics, a->cfg.prometheus_addr, &a->fill,
					   a->cfg.bpf_root);
		if (err) {
			pr_err("cannot serve metrics", "addr=%s error=\"%s\"",
			       a->cfg.prometheus_addr, strerror(-err));
			goto out;
		}
		pr_info("serving metrics", "addr=%s path=/metrics", a->cfg.prometheus_addr);
	}
	err = api_server_open(&a->api, a->cfg.socket_path);
	if (err) {
		pr_err("cannot open API socket", "path=%s error=\"%s\"", a->cfg.socket_path,
		       strerror(-err));
		goto out;
	}
	err = agent_watches_add(a);
	if (err)
		goto out;
	start.taken = false;	/* started: from here on a failure leaves the datapath */
	pr_info("agent started", "version=%s node=%s bpf_root=%s cgroup=%s socket=%s",
		axon_version, a->cfg.node_name, a->cfg.bpf_root, a->cfg.cgroup_root, a->cfg.socket_path);
	err = run(a, sig_fd);
out:
	agent_health_close(a);			/* before the client its taint call uses */
	kpr_health_close(&a->kpr);
	metrics_server_stop(a->metrics);	/* before the maps it reads go */
	api_server_close(&a->api);
	if (a->leps_ready)
		lep_mgr_destroy(&a->leps);	/* cancels its calls: before the client */
	k8s_client_free(a->k8s);
	agent_datapath_close(a);
	agent_cni_close(a);
	lb_reconciler_destroy(&a->lb);
	lb_sock_term_stop(&a->sock_term);	/* before the maps and links it uses */
	map_fill_close(&a->fill);
	datapath_close(&a->dp);
	store_destroy(&a->store);
	if (a->cfg.flush_on_exit) {
		/* Legacy tc filters are not pins: remove them (and unpin the tcx
		 * links) from the record before bpffs goes. */
		struct tc_attach_ctx tc = { .bpf_root = a->cfg.bpf_root,
					    .state_dir = a->cfg.state_dir };
		int filters = tc_detach_all(&tc), links, maps;
		int ferr = bpffs_flush(a->cfg.bpf_root, &links, &maps);

		pr_info("flushed datapath", "tc_attachments=%d links=%d maps=%d%s", filters,
			links, maps, ferr || filters < 0 ? " error=incomplete" : "");
	}
	if (err)
		start_record_undo(&start, &a->cfg);
	close(sig_fd);
	curl_global_cleanup();
	return err ? 1 : 0;
}
