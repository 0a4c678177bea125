/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Checked field access for untrusted Kubernetes JSON (internal to agent/k8s).
 *
 * Every getter takes the JSON path of the parent ("spec.ports[1]") and the
 * key, so an error names the full field: "spec.ports[1].port: 70000 is not
 * in 1..65535". A JSON null counts as absent, as the apiserver writes null
 * for empty optional fields. Getters return 0, or -EINVAL with err filled;
 * on error the output is left unchanged.
 */
#ifndef AXON_K8S_JSON_H
#define AXON_K8S_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <cjson/cJSON.h>

#include "k8s/strpool.h"

/* Longest JSON path we build; deeper paths are cut, never overflowed. */
#define K8S_PATH_MAX 128

/* Write "path.key: <reason>" into err and return -EINVAL. */
int k8s_json_fail(char *err, size_t errlen, const char *path, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Join parent path and key ("spec" + "ports" -> "spec.ports") into out. */
void k8s_json_path(char *out, size_t outlen, const char *path, const char *key);
/* "spec.ports" + 3 -> "spec.ports[3]". */
void k8s_json_index(char *out, size_t outlen, const char *path, size_t i);

/* The child, or NULL when absent or null. */
const cJSON *k8s_json_get(const cJSON *obj, const char *key);

/* Copy a string field into dst (size dstlen). Absent: "" if !required, else
 * an error. Longer than dstlen - 1 or holding control characters: error. */
int k8s_json_string(const cJSON *obj, const char *path, const char *key, bool required, char *dst,
		    size_t dstlen, char *err, size_t errlen);
/* The same checks, the string copied into pool: *out points there, or to a
 * static "" when absent (or empty) and !required. maxlen: longest accepted
 * length. -ENOMEM when the pool cannot grow. */
int k8s_json_string_pool(const cJSON *obj, const char *path, const char *key, bool required,
			 size_t maxlen, struct k8s_strpool *pool, const char **out, char *err,
			 size_t errlen);
/* Borrow a string field (NULL when absent and !required). */
int k8s_json_string_ref(const cJSON *obj, const char *path, const char *key, bool required,
			const char **out, char *err, size_t errlen);
/* An integer in lo..hi. Absent leaves *out unchanged unless required. */
int k8s_json_int(const cJSON *obj, const char *path, const char *key, bool required, long long lo,
		 long long hi, long long *out, char *err, size_t errlen);
int k8s_json_bool(const cJSON *obj, const char *path, const char *key, bool *out, bool *present,
		  char *err, size_t errlen);
/* An object field (NULL when absent and !required). */
int k8s_json_object(const cJSON *obj, const char *path, const char *key, bool required,
		    const cJSON **out, char *err, size_t errlen);
/* An object's metadata.labels (NULL when it has none; metadata is required). */
int k8s_json_labels(const cJSON *obj, const cJSON **labels, char *err, size_t errlen);
/* An array field of at most max items (NULL, 0 when absent and !required). */
int k8s_json_array(const cJSON *obj, const char *path, const char *key, bool required, size_t max,
		   const cJSON **out, size_t *n, char *err, size_t errlen);

/*
 * An IP address string (item is the value itself; path names it). Sets
 * *is_v4 and, for IPv4, *addr (network order). IPv6 is valid with *is_v4
 * false; anything else is an error.
 */
int k8s_json_ip(const cJSON *item, const char *path, __be32 *addr, bool *is_v4, char *err,
		size_t errlen);
/* "10.244.0.0/24": like k8s_json_ip, plus the prefix length. */
int k8s_json_cidr(const cJSON *item, const char *path, __be32 *addr, __u8 *len, bool *is_v4,
		  char *err, size_t errlen);

/* Copy s into out for an error message: cut to fit, non-printables as '?'. */
void k8s_json_quote(char *out, size_t outlen, const char *s);

#endif /* AXON_K8S_JSON_H */
