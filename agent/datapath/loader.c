// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "axon/ct.h"
#include "axon/events.h"
#include "axon/maps.h"
#include "axon/nat.h"
#include "bpffs.h"
#include "log.h"
#include "pin.h"
#include "loader.h"
#include "sock_lb.skel.h"
#include "sock_term.skel.h"
#include "tc_datapath.skel.h"

const char *const dp_prog_names[DP_PROG_MAX] = {
	[DP_PROG_FROM_CONTAINER] = "from_container",
	[DP_PROG_TO_CONTAINER] = "to_container",
	[DP_PROG_FROM_NETDEV] = "from_netdev",
	[DP_PROG_TO_NETDEV] = "to_netdev",
};

/* Does the map pinned as @fd have another layout than @map wants? An upgrade
 * may change a map's key, value, type or flags; libbpf refuses to reuse such
 * a pin, and the agent would not start. Its entries cannot be carried over
 * without knowing both layouts, so the caller recreates the map, deliberately
 * and loudly: the LB, endpoint and ipcache maps are refilled from the cluster
 * after the first sync; conntrack, NAT and affinity entries in it are lost. */
/*
 * An array of maps fixes the layout of the maps it takes when it is created,
 * and the kernel refuses others (programs built for another one would not
 * load against it either). bpf_map_info does not tell that layout: try a
 * throwaway map of the template's layout in slot 0, which holds no
 * endpoint's map (endpoint ids start at 1). EINVAL: another layout.
 */
static bool pinned_inner_differs(int fd, struct bpf_map *map)
{
	struct bpf_map *inner = bpf_map__inner_map(map);
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	__u32 zero = 0;
	int probe, err;

	if (!inner)
		return false;
	opts.map_flags = bpf_map__map_flags(inner);
	probe = bpf_map_create(bpf_map__type(inner), "axon_probe", bpf_map__key_size(inner),
			       bpf_map__value_size(inner), 1, &opts);
	if (probe < 0)
		return false;	/* cannot tell: loading will */
	err = bpf_map_update_elem(fd, &zero, &probe, BPF_ANY) ? -errno : 0;
	if (!err)
		bpf_map_delete_elem(fd, &zero);
	close(probe);
	if (err != -EINVAL)
		return false;
	pr_warn("pinned map holds maps of another layout: recreated, its entries are lost",
		"map=%s inner_key_size=%u inner_value_size=%u", bpf_map__name(map),
		bpf_map__key_size(inner), bpf_map__value_size(inner));
	return true;
}

static bool pinned_layout_differs(int fd, struct bpf_map *map)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return false;	/* libbpf's own check decides */
	if (info.type == bpf_map__type(map) && info.key_size == bpf_map__key_size(map) &&
	    info.value_size == bpf_map__value_size(map) &&
	    info.map_flags == bpf_map__map_flags(map))
		return pinned_inner_differs(fd, map);
	pr_warn("pinned map has another layout: recreated, its entries are lost",
		"map=%s type=%u->%u key_size=%u->%u value_size=%u->%u flags=%#x->%#x",
		bpf_map__name(map), info.type, bpf_map__type(map), info.key_size,
		bpf_map__key_size(map), info.value_size, bpf_map__value_size(map),
		info.map_flags, bpf_map__map_flags(map));
	return true;
}

/*
 * Point every map at its pin and size it from cfg->sizes.
 *
 * A map already pinned keeps its size, deliberately: resizing means a new map,
 * and the programs attached to devices keep the old one until each is
 * replaced, so whatever the datapath writes meanwhile (conntrack, NAT,
 * affinity, socket reverse-NAT entries) would be lost with the old map and
 * established flows with it. libbpf reuses a pin only if max_entries matches,
 * so the pinned size is what the object is given. The mismatch is logged and
 * shown in status (configured vs max_entries); `agentctl cleanup` and a start
 * resize, at the cost of that state. A pin whose layout changed (key, value,
 * type, flags, the layout of the maps an array of maps holds: an upgrade) is
 * removed first, so that map is created anew. (The policy tries are the
 * agent's, sized by --bpf-policy-map-max: the kernel compares an inner map's
 * layout with the template's, not its size.)
 */
static int maps_prepare(struct bpf_object *obj, const struct loader_config *cfg)
{
	struct bpf_map *map;
	char path[4096];
	int err;

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		__u32 want = map_sizes_for(cfg->sizes, name);
		int fd;

		if (bpf_map__type(map) == BPF_MAP_TYPE_ARRAY && strchr(name, '.'))
			continue;	/* .rodata/.bss: internal, never pinned */
		err = pin_map_path(path, sizeof(path), cfg->bpf_root, name);
		if (err)
			return err;
		fd = bpf_obj_get(path);
		if (fd >= 0 && pinned_layout_differs(fd, map)) {
			close(fd);
			if (unlink(path))
				return -errno;
			fd = -1;
		}
		if (fd >= 0) {
			struct bpf_map_info info = {};
			__u32 len = sizeof(info);

			if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
				if (want && info.max_entries != want)
					pr_warn("pinned map keeps its size; run 'agentctl cleanup' "
						"and restart to resize (drops its entries)",
						"map=%s size=%u configured=%u", name,
						info.max_entries, want);
				want = info.max_entries;
			}
			close(fd);
		}
		if (want) {
			err = bpf_map__set_max_entries(map, want);
			if (err)
				return err;
		}
		err = bpf_map__set_pin_path(map, path);
		if (err)
			return err;
	}
	return 0;
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* The cookie of the agent's network namespace (the node's), which the socket
 * LB tells the node's sockets from pods' by. 0 when the kernel cannot say
 * (before 5.14): loopback host ports are then not served. */
static __u64 own_netns_cookie(void)
{
	socklen_t len = sizeof(__u64);
	__u64 cookie = 0;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		cookie = 0;
	close(fd);
	return cookie;
}

static int cgroup_id_of(const char *path, __u64 *id)
{
	struct stat st;

	/* On cgroup v2 a cgroup's id is its directory's inode number. */
	if (stat(path, &st))
		return -errno;
	*id = st.st_ino;
	return 0;
}

/* Is the pinned link at path attached to cgroup_id with this attach type? */
static bool link_matches(int link_fd, __u64 cgroup_id, enum bpf_attach_type type)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(link_fd, &info, &len))
		return false;
	return info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroup_id &&
	       info.cgroup.attach_type == type;
}

static int attach_cgroup_prog(struct datapath *dp, struct bpf_program *prog, int cg_fd,
			      __u64 cg_id, const struct loader_config *cfg)
{
	const char *name = bpf_program__name(prog);
	enum bpf_attach_type type = bpf_program__expected_attach_type(prog);
	struct attach_point *ap;
	struct bpf_link *link;
	char path[4096];
	int err, fd;

	if (dp->n_attach == DATAPATH_MAX_ATTACH)
		return -E2BIG;
	ap = &dp->attach[dp->n_attach];
	memset(ap, 0, sizeof(*ap));
	snprintf(ap->program, sizeof(ap->program), "%s", name);
	snprintf(ap->hook, sizeof(ap->hook), "%s", bpf_program__section_name(prog));
	snprintf(ap->target, sizeof(ap->target), "%s", cfg->cgroup_root);
	err = pin_link_path(path, sizeof(path), cfg->bpf_root, name);
	if (err)
		return err;

	fd = bpf_obj_get(path);
	if (fd >= 0) {
		bool same = link_matches(fd, cg_id, type);

		if (same && !bpf_link_update(fd, bpf_program__fd(prog), NULL)) {
			close(fd);
			ap->updated = true;
			dp->n_attach++;
			return 0;
		}
		/* Ours (it is pinned under our root) but stale: replace it. */
		pr_info("replacing pinned link", "program=%s reason=%s", name,
			same ? "update failed" : "attached elsewhere");
		bpf_link_detach(fd);
		close(fd);
		unlink(path);
	}
	link = bpf_program__attach_cgroup(prog, cg_fd);
	if (!link)
		return -errno;
	err = bpf_link__pin(link, path);
	bpf_link__destroy(link);	/* the pin holds it now */
	if (err)
		return err;
	dp->n_attach++;
	return 0;
}

/* The fds of the maps the datapath owns through the tc object (see
 * tc_maps_dup); lb4_affinity is the socket LB's too, shared by its pin. */
static int *tc_map_fd_slot(struct datapath *dp, const char *name)
{
	static const struct {
		const char *name;
		size_t off;
	} slots[] = {
		{MAP_ENDPOINTS, offsetof(struct datapath, endpoints_fd)},
		{MAP_IPCACHE, offsetof(struct datapath, ipcache_fd)},
		{MAP_CT4_TCP, offsetof(struct datapath, ct4_tcp_fd)},
		{MAP_CT4_ANY, offsetof(struct datapath, ct4_any_fd)},
		{MAP_NAT4, offsetof(struct datapath, nat4_fd)},
		{MAP_LB4_AFFINITY, offsetof(struct datapath, lb4_affinity_fd)},
		{MAP_LB4_MAGLEV, offsetof(struct datapath, lb4_maglev_fd)},
		{MAP_EVENTS, offsetof(struct datapath, events_fd)},
		{MAP_POLICY, offsetof(struct datapath, policy_fd)},
	};

	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		if (!strcmp(slots[i].name, name))
			return (int *)((char *)dp + slots[i].off);
	}
	return NULL;
}

static void maps_record(struct datapath *dp, struct bpf_object *obj)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		struct map_info_row *row;
		bool seen = false;
		int *slot;

		for (int i = 0; i < dp->n_maps; i++)
			seen = seen || !strcmp(dp->maps[i].name, name);
		if (seen || !bpf_map__pin_path(map) ||
		    dp->n_maps == (int)(sizeof(dp->maps) / sizeof(dp->maps[0])))
			continue;
		row = &dp->maps[dp->n_maps++];
		snprintf(row->name, sizeof(row->name), "%s", name);
		row->max_entries = bpf_map__max_entries(map);
		row->configured = map_sizes_for(dp->cfg.sizes, name);
		slot = tc_map_fd_slot(dp, name);
		row->fd = slot && *slot >= 0 ? *slot : bpf_map__fd(map);
	}
}

void datapath_config_defaults(struct datapath_config *c)
{
	memset(c, 0, sizeof(*c));
	c->flags = CFG_SOCK_LB | CFG_HOST_ROUTING | CFG_NODE_PORT;
	c->node_port_min = NODE_PORT_MIN_DEFAULT;
	c->node_port_max = NODE_PORT_MAX_DEFAULT;
	c->nat_port_min = NAT_PORT_MIN_DEFAULT;
	c->nat_port_max = NAT_PORT_MAX_DEFAULT;
	c->ct_lifetime_tcp = CT_LIFETIME_TCP_DEFAULT;
	c->ct_lifetime_syn = CT_LIFETIME_SYN_DEFAULT;
	c->ct_lifetime_close = CT_LIFETIME_CLOSE_DEFAULT;
	c->ct_lifetime_any = CT_LIFETIME_ANY_DEFAULT;
	c->events_rate = EVENTS_RATE_DEFAULT;
	c->events_burst = EVENTS_BURST_DEFAULT;
}

/* The tc-only maps under fds of the datapath's own, so that they outlive the
 * skeleton datapath_tc_load() replaces. */
static int tc_maps_dup(struct datapath *dp)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, dp->tc->obj) {
		int *slot = tc_map_fd_slot(dp, bpf_map__name(map));

		if (!slot || *slot >= 0)
			continue;
		*slot = fcntl(bpf_map__fd(map), F_DUPFD_CLOEXEC, 3);
		if (*slot < 0)
			return -errno;
	}
	return 0;
}

static void tc_maps_close(struct datapath *dp)
{
	int *fds[] = {&dp->endpoints_fd,    &dp->ipcache_fd,	 &dp->ct4_tcp_fd,
		      &dp->ct4_any_fd,	    &dp->nat4_fd,	 &dp->lb4_affinity_fd,
		      &dp->lb4_maglev_fd,   &dp->events_fd,	 &dp->policy_fd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Open and load the tc object with @config, its maps on the shared pins. */
static int tc_object_load(const struct loader_config *cfg, const struct datapath_config *config,
			  struct tc_datapath **out)
{
	struct tc_datapath *tc;
	int err;

	tc = tc_datapath__open();
	if (!tc)
		return -errno;
	tc->rodata->CONFIG = *config;
	err = maps_prepare(tc->obj, cfg);
	if (!err)
		err = tc_datapath__load(tc);
	if (err) {
		pr_err("loading tc datapath programs failed", "error=\"%s\"", strerror(-err));
		tc_datapath__destroy(tc);
		return err;
	}
	*out = tc;
	return 0;
}

static int prog_fd_by_name(struct tc_datapath *tc, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(tc->obj, name);

	return prog ? bpf_program__fd(prog) : -ENOENT;
}

int datapath_tc_prog_fd(const struct datapath *dp, const char *program)
{
	for (int i = 0; i < DP_PROG_MAX; i++) {
		if (!strcmp(dp_prog_names[i], program))
			return dp->tc && dp->prog_fd[i] >= 0 ? dp->prog_fd[i] : -ENOENT;
	}
	return -ENOENT;
}

/* Put @tc's programs on every attachment Axon has. Attachments to devices
 * that are gone (or were recreated under the same name) are dropped: the
 * agent attaches again when it sees the device. */
static int tc_swap_attachments(struct datapath *dp, struct tc_datapath *tc)
{
	struct tc_attachment have[256];
	int n, first_err = 0;

	n = tc_list(&dp->tc_attach, have, sizeof(have) / sizeof(have[0]));
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		struct tc_attach_ctx ctx = dp->tc_attach;
		struct tc_attachment *a = &have[i];
		int prog_fd = prog_fd_by_name(tc, a->program);
		int err;

		if (!a->ifindex || if_nametoindex(a->ifname) != (unsigned int)a->ifindex ||
		    prog_fd < 0) {
			pr_info("dropping stale tc attachment", "dev=%s ifindex=%d program=%s",
				a->ifname, a->ifindex, a->program);
			tc_detach(&ctx, a->ifname, a->dir);
			continue;
		}
		ctx.mode = a->mode;	/* keep each where it is; tc_attach() moves modes */
		err = tc_attach(&ctx, prog_fd, a->program, a->ifindex, a->ifname, a->dir, NULL);
		if (err && !first_err)
			first_err = err;
	}
	return first_err;
}

static int tc_load(struct datapath *dp, const struct datapath_config *config, bool swap)
{
	struct tc_datapath *tc = NULL;
	int err, dup_err;

	err = tc_object_load(&dp->cfg, config, &tc);
	if (err)
		return err;
	if (swap)
		err = tc_swap_attachments(dp, tc);
	/* Whatever the swap did, the new programs are the current ones: the old
	 * skeleton's programs stay alive only where a link still holds them. */
	if (dp->tc)
		tc_datapath__destroy(dp->tc);
	dp->tc = tc;
	dp->tc_config = *config;
	for (int i = 0; i < DP_PROG_MAX; i++)
		dp->prog_fd[i] = prog_fd_by_name(tc, dp_prog_names[i]);
	dup_err = tc_maps_dup(dp);
	if (err)
		pr_err("tc programs not replaced everywhere", "error=\"%s\"", strerror(-err));
	return err ? err : dup_err;
}

/* The socket iterators of socket LB termination, on the shared pins
 * (lb4_sock_rev). Failing is not fatal: the kernel may lack
 * bpf_sock_destroy(); the agent reports termination unavailable. */
static void term_load(struct datapath *dp, const struct loader_config *cfg)
{
	struct sock_term *term = sock_term__open();
	int err;

	if (!term) {
		dp->term_err = -errno;
		goto fail;
	}
	err = maps_prepare(term->obj, cfg);
	/* Its own map is the agent's scratch space, filled and emptied per
	 * run: not pinned, so it neither outlives the agent nor shows in bpffs. */
	if (!err)
		err = bpf_map__set_pin_path(term->maps.lb4_sock_term, NULL);
	if (!err)
		err = sock_term__load(term);
	if (err) {
		dp->term_err = err;
		goto fail;
	}
	dp->term_link[0] = bpf_program__attach_iter(term->progs.sock_term_tcp, NULL);
	dp->term_link[1] = bpf_program__attach_iter(term->progs.sock_term_udp, NULL);
	if (!dp->term_link[0] || !dp->term_link[1]) {
		dp->term_err = -errno;
		goto fail;
	}
	dp->term = term;
	return;
fail:
	pr_warn("socket LB termination unavailable", "error=\"%s\"", strerror(-dp->term_err));
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(dp->term_link[i]);
		dp->term_link[i] = NULL;
	}
	sock_term__destroy(term);
}

int datapath_tc_load(struct datapath *dp, const struct datapath_config *config)
{
	return tc_load(dp, config, true);
}

int datapath_load(struct datapath *dp, const struct loader_config *cfg)
{
	char dir[4096];
	struct bpf_program *prog;
	__u64 cg_id = 0;
	int cg_fd = -1, err;

	memset(dp, 0, sizeof(*dp));
	dp->endpoints_fd = dp->ipcache_fd = dp->ct4_tcp_fd = dp->ct4_any_fd = dp->nat4_fd = -1;
	dp->lb4_affinity_fd = dp->lb4_maglev_fd = dp->events_fd = dp->policy_fd = -1;
	dp->cfg = *cfg;
	dp->tc_attach = (struct tc_attach_ctx){
		.bpf_root = cfg->bpf_root,
		.state_dir = cfg->state_dir,
		.mode = cfg->tc_mode,
	};
	err = bpffs_prepare(cfg->bpf_root);
	if (err) {
		pr_err("bpffs not usable", "path=%s error=\"%s\"", cfg->bpf_root, strerror(-err));
		return err;
	}
	snprintf(dir, sizeof(dir), "%s/%s", cfg->bpf_root, AXON_MAPS_DIR);
	if (!err)
		err = mkdir_p(dir);
	snprintf(dir, sizeof(dir), "%s/%s", cfg->bpf_root, AXON_LINKS_DIR);
	if (!err)
		err = mkdir_p(dir);
	if (err)
		return err;

	dp->sock = sock_lb__open();
	if (!dp->sock)
		return -errno;
	dp->sock->rodata->sock_host_netns_cookie = own_netns_cookie();
	err = maps_prepare(dp->sock->obj, cfg);
	if (!err)
		err = sock_lb__load(dp->sock);
	if (err) {
		pr_err("loading socket LB programs failed", "error=\"%s\"", strerror(-err));
		goto fail;
	}

	cg_fd = open(cfg->cgroup_root, O_RDONLY | O_DIRECTORY);
	if (cg_fd < 0 || cgroup_id_of(cfg->cgroup_root, &cg_id)) {
		err = -errno;
		pr_err("cannot open cgroup", "path=%s error=\"%s\"", cfg->cgroup_root,
		       strerror(-err));
		goto fail;
	}
	bpf_object__for_each_program(prog, dp->sock->obj) {
		err = attach_cgroup_prog(dp, prog, cg_fd, cg_id, cfg);
		if (err) {
			pr_err("attach failed", "program=%s cgroup=%s error=\"%s\"",
			       bpf_program__name(prog), cfg->cgroup_root, strerror(-err));
			goto fail;
		}
		pr_info("program attached", "program=%s hook=%s cgroup=%s mode=%s",
			dp->attach[dp->n_attach - 1].program, dp->attach[dp->n_attach - 1].hook,
			cfg->cgroup_root, dp->attach[dp->n_attach - 1].updated ? "updated" : "new");
	}
	close(cg_fd);
	cg_fd = -1;

	dp->lb.fd[LB_MAP_SERVICES] = bpf_map__fd(dp->sock->maps.lb4_services);
	dp->lb.fd[LB_MAP_BACKENDS] = bpf_map__fd(dp->sock->maps.lb4_backends);
	dp->lb.fd[LB_MAP_REVNAT] = bpf_map__fd(dp->sock->maps.lb4_reverse_nat);
	dp->metrics_fd = bpf_map__fd(dp->sock->maps.metrics);

	if (cfg->tc_config) {
		err = tc_load(dp, cfg->tc_config, true);
	} else {
		/* No configuration yet (the node's address comes later): load
		 * with defaults for the fds, but leave what runs on devices
		 * alone until datapath_tc_load() brings the real one. */
		struct datapath_config defaults;

		datapath_config_defaults(&defaults);
		err = tc_load(dp, &defaults, false);
	}
	if (err && !dp->tc)
		goto fail;
	err = 0;	/* loaded; a stale attachment was logged and dropped */
	maps_record(dp, dp->sock->obj);
	maps_record(dp, dp->tc->obj);
	term_load(dp, cfg);
	return 0;
fail:
	if (cg_fd >= 0)
		close(cg_fd);
	datapath_close(dp);
	return err;
}

void datapath_close(struct datapath *dp)
{
	/* Destroying the skeletons closes fds; pinned maps and links remain. */
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(dp->term_link[i]);
		dp->term_link[i] = NULL;
	}
	sock_term__destroy(dp->term);
	dp->term = NULL;
	sock_lb__destroy(dp->sock);
	dp->sock = NULL;
	tc_datapath__destroy(dp->tc);
	dp->tc = NULL;
	if (dp->cfg.bpf_root)	/* datapath_load() ran: the fds are ours or -1 */
		tc_maps_close(dp);
	for (int i = 0; i < DP_PROG_MAX; i++)
		dp->prog_fd[i] = -1;
}
