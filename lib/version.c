// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "version.h"
#include "version_gen.h" /* $(OUT)/version_gen.h, written by the Makefile */

const char axon_version[] = AXON_VERSION;
const char axon_git_commit[] = AXON_GIT_COMMIT;
