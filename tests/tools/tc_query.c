// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_query: every tcx program attached to every device of the current network
 * namespace, one JSON array on stdout, for tests that must see that a start
 * attached nothing (tests/e2e/test_start_failure.py). Debian 12's bpftool
 * (7.1) does not list tcx; BPF_PROG_QUERY with BPF_TCX_INGRESS/EGRESS on the
 * ifindex does (kernel 6.6+). Legacy tc filters are `tc filter show`'s.
 *
 *   nsenter --net=/var/run/netns/NS tc_query
 *   [{"dev": "ext0", "dir": "ingress", "prog_id": 812, "name": "from_netdev"}, ...]
 *
 * Exit 0, or 1 when a query fails for another reason than "nothing attached"
 * or "no tcx in this kernel".
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

/* Not in libbpf 1.1's headers (linux/bpf.h of 6.6+). */
#define TQ_BPF_TCX_INGRESS 46
#define TQ_BPF_TCX_EGRESS  47
#define TQ_MAX_PROGS	   64

static int query(const struct if_nameindex *dev, const char *dir, int type, bool *first)
{
	__u32 ids[TQ_MAX_PROGS], cnt = TQ_MAX_PROGS, flags = 0;

	/* The query's target_fd is the ifindex for tcx (a union in bpf_attr). */
	if (bpf_prog_query((int)dev->if_index, type, 0, &flags, ids, &cnt)) {
		if (errno == EINVAL || errno == ENOENT)
			return 0;
		fprintf(stderr, "tc_query: %s %s: %s\n", dev->if_name, dir, strerror(errno));
		return -errno;
	}
	for (__u32 i = 0; i < cnt; i++) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(ids[i]);

		if (fd >= 0) {
			bpf_obj_get_info_by_fd(fd, &info, &len);
			close(fd);
		}
		printf(
		    "%s\n  {\"dev\": \"%s\", \"dir\": \"%s\", \"prog_id\": %u, \"name\": \"%s\"}",
		    *first ? "" : ",", dev->if_name, dir, ids[i], info.name);
		*first = false;
	}
	return 0;
}

int main(void)
{
	struct if_nameindex *devs = if_nameindex(), *d;
	bool first = true;
	int err = 0;

	if (!devs) {
		perror("tc_query: if_nameindex");
		return 1;
	}
	printf("[");
	for (d = devs; d->if_index; d++) {
		if (query(d, "ingress", TQ_BPF_TCX_INGRESS, &first) ||
		    query(d, "egress", TQ_BPF_TCX_EGRESS, &first))
			err = 1;
	}
	printf("\n]\n");
	if_freenameindex(devs);
	return err;
}
