// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <string.h>

#include "cli.h"
#include "cmd_util.h"

int cmd_flags(int argc, char **argv, const char *const *names, bool *found, int n)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *fmt = NULL;
		bool known = false;

		if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (i + 1 == argc)
				return cli_usage_error("option '%s' needs a value (json or table)", a);
			fmt = argv[++i];
		}
		else if (!strncmp(a, "--output=", 9))
			fmt = a + 9;
		else if (!strncmp(a, "-o", 2) && a[2])
			fmt = a + 2;
		if (fmt) {
			if (!strcmp(fmt, "json"))
				cli.json = true;
			else if (strcmp(fmt, "table") && strcmp(fmt, "text"))
				return cli_usage_error("-o takes json or table, not '%s'", fmt);
			continue;
		}
		for (int j = 0; j < n; j++) {
			if (!strcmp(a, names[j])) {
				found[j] = known = true;
				break;
			}
		}
		if (!known)
			return cli_usage_error("%s: unknown argument '%s'; run 'agentctl --help'",
					       cli.command ? cli.command : argv[0], a);
	}
	return 0;
}
