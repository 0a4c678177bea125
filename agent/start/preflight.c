// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "start/cgroup2.h"
#include "errmsg.h"
#include "start/preflight.h"

static int check_cgroup_root(const struct agent_config *cfg, char *err, size_t errlen)
{
	char why[512];
	int ret;

	if (!cfg->cgroup_root[0])
		return errmsg_invalid(
		    err, errlen,
		    "--cgroup-root: not given, and neither /sys/fs/cgroup/unified nor "
		    "/sys/fs/cgroup is a cgroup v2 mount: give the cgroup v2 "
		    "directory to attach the socket hooks to");
	ret = cgroup2_check(cfg->cgroup_root, why, sizeof(why));
	if (ret)
		snprintf(err, errlen, "--cgroup-root: %s", why);
	return ret;
}

/* Devices are looked up again (and followed) while the agent runs; a name
 * that is not there at start is a typo far more often than a device still
 * to come, and attaching to the wrong set is worse than not starting. */
static int check_devices(const char *list, char *err, size_t errlen)
{
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, ",");
		char name[IF_NAMESIZE];

		snprintf(name, sizeof(name), "%.*s", (int)len, p);
		if (!if_nametoindex(name)) {
			int ret = -errno;

			snprintf(err, errlen,
				 "--devices: '%s': %s in the agent's network namespace", name,
				 ret == -ENODEV ? "no such device" : strerror(-ret));
			return ret;
		}
		p += len + (p[len] == ',');
	}
	return 0;
}

int agent_preflight(const struct agent_config *cfg, char *err, size_t errlen)
{
	int ret = check_cgroup_root(cfg, err, errlen);

	if (!ret)
		ret = check_devices(cfg->devices, err, errlen);
	return ret;
}
