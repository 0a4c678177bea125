/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flag parsing shared by agentctl's commands: accepts -o json after the
 * command too, as operators type it either way. */
#ifndef AXON_CLI_CMD_UTIL_H
#define AXON_CLI_CMD_UTIL_H

#include <stdbool.h>

/* Parse argv for the boolean flags named in names (e.g. {"--verbose"}),
 * setting found[i]; "-o json" / "-o table" / "--output=json" also accepted.
 * Returns 0, or an exit code after printing an error. */
int cmd_flags(int argc, char **argv, const char *const *names, bool *found, int n);

#endif /* AXON_CLI_CMD_UTIL_H */
