// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cni_burst: run one CNI command for several containers at once, the way a
 * container runtime runs a plugin (containerd's libcni: the plugin exec'd
 * with the CNI_* environment, the network config written to its stdin, its
 * stdout read to EOF, its exit status reaped), and print each invocation's
 * latency, for the CNI benchmark (tests/bench/bench_cni.py).
 *
 *   cni_burst PLUGIN CONFIG_FILE COMMAND CNI_PATH POD_NS < jobs
 *
 * jobs, one a line: "CONTAINER_ID NETNS_PATH". Every plugin is started at
 * once (one posix_spawn after the other, as fast as they go), then all are
 * waited for together. Output, one line per job in input order:
 * "CONTAINER_ID MS EXIT" with MS from just before that job's spawn to its
 * exit, reaped. A job that fails prints its stdout on stderr. Exit 0 when
 * every plugin exited 0, 1 otherwise, 2 on a usage or system error.
 *
 * Written in C rather than driven from the Python benchmark because the
 * driver shares the machine's cores with what it measures: spawning from
 * Python threads costs several times the CPU of a posix_spawn, and at 20 at
 * once that cost lands inside every other invocation's latency.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#define MAX_JOBS 256
#define OUT_MAX 65536

extern char **environ;

struct job {
	char id[128], netns[256];
	pid_t pid;
	int out_fd;		/* the plugin's stdout; -1 once at EOF */
	char out[OUT_MAX];
	size_t out_len;
	int status;
	bool reaped;
	double start_ms, end_ms;
};

static struct job jobs[MAX_JOBS];

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = f ? malloc(OUT_MAX) : NULL;

	if (!buf) {
		if (f)
			fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, OUT_MAX - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* Started with stdin a pipe already holding the config (it fits the pipe's
 * buffer, so the write cannot block), stdout a pipe read later. */
static int spawn(struct job *j, char *plugin, char *const env[], const char *conf, size_t len)
{
	posix_spawn_file_actions_t fa;
	int in[2], out[2], err;
	char *argv[] = { plugin, NULL };

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -errno;
	if (write(in[1], conf, len) != (ssize_t)len)
		return -EIO;
	close(in[1]);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	err = posix_spawn(&j->pid, plugin, &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	if (err) {
		close(out[0]);
		return -err;
	}
	j->out_fd = out[0];
	fcntl(j->out_fd, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Read what the running plugins wrote; reap those at EOF. Returns how many
 * are still running. */
static int collect(int n)
{
	struct pollfd p[MAX_JOBS];
	int idx[MAX_JOBS], np = 0, running = 0;

	for (int i = 0; i < n; i++) {
		if (jobs[i].out_fd >= 0) {
			p[np] = (struct pollfd){ .fd = jobs[i].out_fd, .events = POLLIN };
			idx[np++] = i;
		}
	}
	if (np && poll(p, np, 1000) < 0 && errno != EINTR)
		return -errno;
	for (int k = 0; k < np; k++) {
		struct job *j = &jobs[idx[k]];
		ssize_t r;

		if (!p[k].revents)
			continue;
		r = read(j->out_fd, j->out + j->out_len, OUT_MAX - 1 - j->out_len);
		if (r > 0) {
			j->out_len += r;
			continue;
		}
		if (r < 0 && errno == EAGAIN)
			continue;
		close(j->out_fd);
		j->out_fd = -1;
		waitpid(j->pid, &j->status, 0);
		j->end_ms = now_ms();
		j->reaped = true;
	}
	for (int i = 0; i < n; i++)
		running += !jobs[i].reaped;
	return running;
}

int main(int argc, char **argv)
{
	char env_cmd[64], env_id[160], env_ns[300], env_path[300], env_args[600];
	char *env[] = { env_cmd, env_id, env_ns, "CNI_IFNAME=eth0", env_path, env_args,
			"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	char line[512], *conf;
	size_t conf_len;
	int n = 0, failed = 0, left;

	if (argc != 6) {
		fprintf(stderr, "usage: %s PLUGIN CONFIG_FILE COMMAND CNI_PATH POD_NS < jobs\n",
			argv[0]);
		return 2;
	}
	conf = read_file(argv[2], &conf_len);
	if (!conf) {
		fprintf(stderr, "cni_burst: %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	while (n < MAX_JOBS && fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "%127s %255s", jobs[n].id, jobs[n].netns) == 2)
			jobs[n].out_fd = -1, n++;
	}
	snprintf(env_cmd, sizeof(env_cmd), "CNI_COMMAND=%s", argv[3]);
	snprintf(env_path, sizeof(env_path), "CNI_PATH=%s", argv[4]);
	for (int i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		int err;

		/* posix_spawn copies the environment: the buffers are reused. */
		snprintf(env_id, sizeof(env_id), "CNI_CONTAINERID=%.127s", j->id);
		snprintf(env_ns, sizeof(env_ns), "CNI_NETNS=%.255s", j->netns);
		snprintf(env_args, sizeof(env_args),
			 "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=%.63s;K8S_POD_NAME=%.127s", argv[5],
			 j->id);
		j->start_ms = now_ms();
		err = spawn(j, argv[1], env, conf, conf_len);
		if (err) {
			fprintf(stderr, "cni_burst: starting %s: %s\n", argv[1], strerror(-err));
			return 2;
		}
	}
	do {
		left = collect(n);
		if (left < 0) {
			fprintf(stderr, "cni_burst: poll: %s\n", strerror(-left));
			return 2;
		}
	} while (left > 0);
	for (int i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		int code = WIFEXITED(j->status) ? WEXITSTATUS(j->status) : 128;

		printf("%s %.3f %d\n", j->id, j->end_ms - j->start_ms, code);
		if (code) {
			failed = 1;
			j->out[j->out_len] = '\0';
			fprintf(stderr, "%s %s %s: %s\n", argv[1], argv[3], j->id, j->out);
		}
	}
	free(conf);
	return failed;
}
