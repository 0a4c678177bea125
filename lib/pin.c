// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <bpf/bpf.h>

#include "axon/maps.h"
#include "pin.h"

static int pin_path(char *buf, size_t len, const char *root, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s/%s", root, dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int pin_map_path(char *buf, size_t len, const char *root, const char *name)
{
	return pin_path(buf, len, root, AXON_MAPS_DIR, name);
}

int pin_link_path(char *buf, size_t len, const char *root, const char *name)
{
	return pin_path(buf, len, root, AXON_LINKS_DIR, name);
}

int pin_map_open(const char *root, const char *name)
{
	char path[4096];
	int err, fd;

	err = pin_map_path(path, sizeof(path), root, name);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int mkdir_p(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}
