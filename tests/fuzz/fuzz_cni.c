// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: axon-cni's own JSON (cni/json.c): the top-level string
 * lookup it runs on the runtime's network config, and the agent's answer it
 * reads back. Property: any string escaped into an answer reads back equal.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), v[64];
	struct buf ans = {}, out = {}, back = {};
	int code;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	json_top_str(s, "cniVersion", v, sizeof(v));
	json_top_str(s, "agent-socket", v, sizeof(v));
	json_answer(s, &code, &out);

	/* Round trip: up to the first NUL, as the plugin's strings are. */
	buf_adds(&ans, "{\"exit\": 1, \"stdout\": ");
	buf_add_json_str(&ans, s);
	buf_adds(&ans, "}");
	if (!ans.oom) {
		if (json_answer(ans.s, &code, &back) || code != 1 || strcmp(back.s, s))
			abort();
	}
	free(ans.s);
	free(out.s);
	free(back.s);
	free(s);
	return 0;
}
