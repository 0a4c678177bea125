// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The pod sandbox's process for tests/lib/kubelet_node.py's nodes, what the
 * pause image runs in a cluster: it holds the pod's namespaces, reaps the
 * zombies handed to it as PID 1 and exits on SIGINT or SIGTERM. Built with
 * `gcc -static` and packed as an image of one file: no registry is reachable.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig)
{
	_exit(128 + sig);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction term = {.sa_handler = on_term};
	struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};

	if (getpid() != 1)
		fprintf(stderr, "pause: not PID 1, zombies are not reaped here\n");
	if (sigaction(SIGINT, &term, NULL) || sigaction(SIGTERM, &term, NULL) ||
	    sigaction(SIGCHLD, &child, NULL)) {
		perror("pause: sigaction");
		return 1;
	}
	for (;;)
		pause();
}
