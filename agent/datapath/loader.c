// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "axon/maps.h"
#include "bpffs.h"
#include "log.h"
#include "pin.h"
#include "loader.h"
#include "sock_lb.skel.h"

static __u32 map_size_for(const char *name, const struct loader_config *cfg)
{
	if (!strcmp(name, MAP_LB4_SERVICES) || !strcmp(name, MAP_LB4_BACKENDS) ||
	    !strcmp(name, MAP_LB4_REVERSE_NAT))
		return cfg->lb_map_max;
	if (!strcmp(name, MAP_LB4_SOCK_REV))
		return cfg->sock_rev_max;
	return 0;
}

/* Point every map at its pin; size it, unless a pinned map exists, whose size
 * is kept (libbpf reuses a pinned map only if its layout matches). */
static int maps_prepare(struct bpf_object *obj, const struct loader_config *cfg)
{
	struct bpf_map *map;
	char path[4096];
	int err;

	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		__u32 want = map_size_for(name, cfg);
		int fd;

		if (bpf_map__type(map) == BPF_MAP_TYPE_ARRAY && strchr(name, '.'))
			continue;	/* .rodata/.bss: internal, never pinned */
		err = pin_map_path(path, sizeof(path), cfg->bpf_root, name);
		if (err)
			return err;
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			struct bpf_map_info info = {};
			__u32 len = sizeof(info);

			if (!bpf_obj_get_info_by_fd(fd, &info, &len) && want &&
			    info.max_entries != want)
				pr_warn("pinned map keeps its size; run 'agentctl cleanup' to resize",
					"map=%s size=%u wanted=%u", name, info.max_entries, want);
			if (!bpf_obj_get_info_by_fd(fd, &info, &len))
				want = info.max_entries;
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

static void maps_record(struct datapath *dp, struct bpf_object *obj)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		struct map_info_row *row;

		if (!bpf_map__pin_path(map) || dp->n_maps == (int)(sizeof(dp->maps) / sizeof(dp->maps[0])))
			continue;
		row = &dp->maps[dp->n_maps++];
		snprintf(row->name, sizeof(row->name), "%s", bpf_map__name(map));
		row->max_entries = bpf_map__max_entries(map);
		row->fd = bpf_map__fd(map);
	}
}

int datapath_load(struct datapath *dp, const struct loader_config *cfg)
{
	char dir[4096];
	struct bpf_program *prog;
	__u64 cg_id = 0;
	int cg_fd = -1, err;

	memset(dp, 0, sizeof(*dp));
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

	dp->lb.fd[LB_MAP_SERVICES] = bpf_map__fd(dp->sock->maps.lb4_services);
	dp->lb.fd[LB_MAP_BACKENDS] = bpf_map__fd(dp->sock->maps.lb4_backends);
	dp->lb.fd[LB_MAP_REVNAT] = bpf_map__fd(dp->sock->maps.lb4_reverse_nat);
	dp->metrics_fd = bpf_map__fd(dp->sock->maps.metrics);
	maps_record(dp, dp->sock->obj);
	return 0;
fail:
	if (cg_fd >= 0)
		close(cg_fd);
	sock_lb__destroy(dp->sock);
	dp->sock = NULL;
	return err;
}

void datapath_close(struct datapath *dp)
{
	/* Destroying the skeleton closes fds; pinned maps and links remain. */
	sock_lb__destroy(dp->sock);
	dp->sock = NULL;
}
