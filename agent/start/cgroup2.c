// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "start/cgroup2.h"

static const char *fs_name(long type)
{
	switch (type) {
	case CGROUP_SUPER_MAGIC:
		return "cgroup v1";
	case TMPFS_MAGIC:
		return "tmpfs";
	case SYSFS_MAGIC:
		return "sysfs";
	case PROC_SUPER_MAGIC:
		return "proc";
	case BPF_FS_MAGIC:
		return "bpffs";
	case EXT4_SUPER_MAGIC:
		return "ext4";
	case OVERLAYFS_SUPER_MAGIC:
		return "overlayfs";
	default:
		return NULL;
	}
}

static bool is_cgroup2(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && st.f_type == CGROUP2_SUPER_MAGIC;
}

const char *cgroup2_default_root(void)
{
	if (is_cgroup2("/sys/fs/cgroup/unified"))
		return "/sys/fs/cgroup/unified";
	if (is_cgroup2("/sys/fs/cgroup"))
		return "/sys/fs/cgroup";
	return NULL;
}

int cgroup2_check(const char *path, char *err, size_t errlen)
{
	struct statfs st;
	const char *name;
	int fd, ret = 0;

	/* Opened as the attach will open it: a file, a missing or unreadable
	 * directory fails here with its own errno. */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstatfs(fd, &st)) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
	} else if (st.f_type != CGROUP2_SUPER_MAGIC) {
		ret = -EINVAL;
		name = fs_name(st.f_type);
		if (name)
			snprintf(err, errlen, "%s is on %s, not cgroup v2", path, name);
		else
			snprintf(err, errlen, "%s is not on cgroup v2 (filesystem magic %#lx)",
				 path, (unsigned long)st.f_type);
	}
	close(fd);
	return ret;
}
