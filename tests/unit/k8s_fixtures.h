/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Loading the recorded apiserver responses for the k8s unit tests. The
 * fixtures live in tests/fixtures/k8s, found relative to the repository root
 * (tests run from there, as tests/run.sh does); AXON_FIXTURES overrides the
 * directory.
 */
#ifndef AXON_TEST_K8S_FIXTURES_H
#define AXON_TEST_K8S_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#define K8S_FIXTURES_DIR "tests/fixtures/k8s"

static inline char *fixture_read(const char *name, size_t *len)
{
	const char *dir = getenv("AXON_FIXTURES");
	char path[4096];
	char *buf = NULL;
	long size;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : K8S_FIXTURES_DIR, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr,
			"fixture %s: cannot open (run from the repo root, or set AXON_FIXTURES)\n",
			path);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto out;
	buf = malloc(size + 1);
	if (!buf)
		goto out;
	if (fread(buf, 1, size, f) != (size_t)size) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[size] = '\0';
	if (len)
		*len = size;
out:
	fclose(f);
	return buf;
}

static inline cJSON *fixture_json(const char *name)
{
	char *text = fixture_read(name, NULL);
	cJSON *j;

	if (!text)
		return NULL;
	j = cJSON_Parse(text);
	free(text);
	return j;
}

#endif /* AXON_TEST_K8S_FIXTURES_H */
