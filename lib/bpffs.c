// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Shared by the agent (--flush-on-exit) and agentctl (cleanup). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>

#include "axon/maps.h"
#include "bpffs.h"
#include "log.h"
#include "pin.h"

static int on_bpffs(const char *path)
{
	struct statfs st;

	if (statfs(path, &st))
		return -errno;
	return st.f_type == BPF_FS_MAGIC;
}

/* Is the nearest existing ancestor of path (or path itself) on bpffs? */
static int ancestor_on_bpffs(const char *path)
{
	char buf[4096];
	char *slash;
	int ret;

	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		ret = on_bpffs(buf);
		if (ret != -ENOENT)
			return ret;
		slash = strrchr(buf, '/');
		if (!slash || slash == buf)
			return on_bpffs("/");
		*slash = '\0';
	}
}

int bpffs_prepare(const char *root)
{
	const char *target = root;
	int err;

	/* Already on bpffs, or to be created inside one: just mkdir. */
	err = ancestor_on_bpffs(root);
	if (err == 1)
		return mkdir_p(root);
	if (!strncmp(root, "/sys/fs/bpf/", 12) && on_bpffs("/sys/fs/bpf") == 0)
		target = "/sys/fs/bpf";
	err = mkdir_p(target);
	if (err)
		return err;
	if (mount("bpf", target, "bpf", 0, "mode=0700"))
		return -errno;
	pr_info("mounted bpffs", "path=%s", target);
	return mkdir_p(root);
}

/* Apply fn to every entry of root/dir, then remove the directory. */
static int flush_dir(const char *root, const char *dir, int (*fn)(const char *path), int *count)
{
	char path[4096];
	struct dirent *de;
	int err = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		int e;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", root, dir, de->d_name);
		e = fn(path);
		if (e) {
			pr_warn("could not remove pinned object", "path=%s error=\"%s\"", path,
				strerror(-e));
			err = err ? err : e;
			continue;
		}
		if (count)
			(*count)++;
	}
	closedir(d);
	snprintf(path, sizeof(path), "%s/%s", root, dir);
	if (rmdir(path) && !err)
		err = -errno;
	return err;
}

static int unpin_link(const char *path)
{
	int fd = bpf_obj_get(path);

	if (fd >= 0) {
		/* Detach now even if someone else holds the link open. */
		bpf_link_detach(fd);
		close(fd);
	}
	return unlink(path) ? -errno : 0;
}

static int unpin_map(const char *path)
{
	return unlink(path) ? -errno : 0;
}

int bpffs_unpin_all(const char *root, int *n_links, int *n_maps)
{
	int err, err2;

	if (n_links)
		*n_links = 0;
	if (n_maps)
		*n_maps = 0;
	/* Links first: programs go before the maps they read. */
	err = flush_dir(root, AXON_LINKS_DIR, unpin_link, n_links);
	err2 = flush_dir(root, AXON_MAPS_DIR, unpin_map, n_maps);
	return err ? err : err2;
}

int bpffs_flush(const char *root, int *n_links, int *n_maps)
{
	int err = bpffs_unpin_all(root, n_links, n_maps);

	/* The root goes too if it is now empty and not a mount point. */
	rmdir(root);
	return err;
}
