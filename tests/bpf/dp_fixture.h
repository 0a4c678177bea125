/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Plumbing shared by the agent-datapath tests (tc attach, loader, devices,
 * routes): a private network namespace for the whole test process, a private
 * bpffs directory and a private state directory, all removed afterwards.
 *
 * The process unshares its network namespace once (dp_fx_enter()): every
 * device, route and attachment the tests make lives there and goes with the
 * process, even when it crashes; `ip`/`tc` run as children inherit it. The
 * bpffs directory /sys/fs/bpf/axon-test-<pid> and the state directory are
 * removed by dp_fx_leave(), which the group teardown runs after failed tests
 * too, and the signal handler on SIGINT/SIGTERM.
 */
#ifndef AXON_TESTS_DP_FIXTURE_H
#define AXON_TESTS_DP_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpffs.h"

struct dp_fx {
	char bpf_root[128];	     /* /sys/fs/bpf/axon-test-<pid> */
	char state_dir[128];	     /* /tmp/axon-test-<pid> */
	const char *name;	     /* test binary, for messages */
	void (*extra_cleanup)(void); /* the test's own (a cgroup), run last */
	pid_t pod_pid;		     /* dp_fx_pod_start(): holds a pod's namespace */
};

static struct dp_fx dp_fx = {.pod_pid = -1};

/* Run a shell command; 0 on exit status 0. Quiet unless it fails. */
static __attribute__((format(printf, 1, 2))) int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "%s: command failed (%d): %s\n", dp_fx.name, rc, cmd);
	return rc == 0 ? 0 : -1;
}

/* First line of a command's output into buf (whole output, up to len). */
static __attribute__((unused)) int sh_out(char *buf, size_t len, const char *cmd)
{
	FILE *p = popen(cmd, "r");
	size_t n;

	if (!p)
		return -errno;
	n = fread(buf, 1, len - 1, p);
	buf[n] = '\0';
	return pclose(p) == 0 ? 0 : -1;
}

static void dp_fx_leave(void)
{
	char cmd[300];

	if (dp_fx.bpf_root[0]) {
		bpffs_flush(dp_fx.bpf_root, NULL, NULL);
		/* Anything left that bpffs_flush does not own (none expected). */
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dp_fx.bpf_root);
		if (system(cmd) == 0)
			dp_fx.bpf_root[0] = '\0';
	}
	if (dp_fx.state_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dp_fx.state_dir);
		if (system(cmd) == 0)
			dp_fx.state_dir[0] = '\0';
	}
	if (dp_fx.extra_cleanup)
		dp_fx.extra_cleanup();
}

static void dp_fx_on_signal(int sig)
{
	dp_fx_leave();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int dp_fx_enter(const char *name)
{
	dp_fx.name = name;
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "%s: unshare(CLONE_NEWNET): %s (run as root)\n", name,
			strerror(errno));
		return -1;
	}
	if (sh("ip link set lo up"))
		return -1;
	snprintf(dp_fx.bpf_root, sizeof(dp_fx.bpf_root), "/sys/fs/bpf/axon-test-%d", getpid());
	snprintf(dp_fx.state_dir, sizeof(dp_fx.state_dir), "/tmp/axon-test-%d", getpid());
	signal(SIGINT, dp_fx_on_signal);
	signal(SIGTERM, dp_fx_on_signal);
	if (bpffs_prepare(dp_fx.bpf_root) || mkdir(dp_fx.state_dir, 0700)) {
		fprintf(stderr, "%s: cannot create %s or %s\n", name, dp_fx.bpf_root,
			dp_fx.state_dir);
		dp_fx_leave();
		return -1;
	}
	return 0;
}

/* A veth pair <name> / <name>p, both up, in the test's namespace. */
/* A "pod" network namespace held by a child that only waits (so it is not
 * under /var/run/netns, as a runtime's need not be): dp_fx.pod_pid names it
 * for `ip link set ... netns PID` and nsenter -t. dp_fx_pod_kill() ends it;
 * it also dies with the test process. */
static __attribute__((unused)) int dp_fx_pod_start(void)
{
	int ready[2];
	char c;

	if (pipe(ready))
		return -1;
	dp_fx.pod_pid = fork();
	if (dp_fx.pod_pid < 0)
		return -1;
	if (dp_fx.pod_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (unshare(CLONE_NEWNET) || write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) {
		close(ready[0]);
		return -1;
	}
	close(ready[0]);
	return 0;
}

static __attribute__((unused)) void dp_fx_pod_kill(void)
{
	if (dp_fx.pod_pid > 0) {
		kill(dp_fx.pod_pid, SIGKILL);
		waitpid(dp_fx.pod_pid, NULL, 0);
		dp_fx.pod_pid = -1;
	}
}

static __attribute__((unused)) int veth_add(const char *name)
{
	return sh("ip link add %s type veth peer name %sp && ip link set %s up && "
		  "ip link set %sp up",
		  name, name, name, name);
}

/* A trivial tc program that returns @verdict, named @name (tells programs
 * apart in link and filter queries). */
static __attribute__((unused)) int tc_prog_load(const char *name, int verdict)
{
	const struct bpf_insn insns[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = verdict},
	    {.code = BPF_JMP | BPF_EXIT},
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, name, "GPL", insns, 2, NULL);
}

static __attribute__((unused)) __u32 prog_id_of(int prog_fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(prog_fd, &info, &len) ? 0 : info.id;
}

static __attribute__((unused)) __u32 map_id_of(int map_fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(map_fd, &info, &len) ? 0 : info.id;
}

#endif /* AXON_TESTS_DP_FIXTURE_H */
