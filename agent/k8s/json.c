// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/json.h"

/* Values echoed into errors are cut here: errors are single log lines. */
#define QUOTE_MAX 48

void k8s_json_quote(char *out, size_t outlen, const char *s)
{
	size_t i, max;

	if (!outlen)
		return;
	max = outlen - 1 < QUOTE_MAX ? outlen - 1 : QUOTE_MAX;
	for (i = 0; i < max && s[i]; i++) {
		unsigned char ch = s[i];

		/* Keep errors one key=value-safe line: no quotes, no controls. */
		out[i] = (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') ? '?' : ch;
	}
	out[i] = '\0';
}

/* Append s at *off, cut to fit as snprintf would. These run for every field
 * and array item the parsers visit (on success too, to name errors), so they
 * avoid snprintf's format parsing: it was 8% of the agent's initial sync. */
static void append(char *out, size_t outlen, size_t *off, const char *s, size_t n)
{
	if (*off + n >= outlen)
		n = outlen - 1 - *off;
	memcpy(out + *off, s, n);
	*off += n;
	out[*off] = '\0';
}

void k8s_json_path(char *out, size_t outlen, const char *path, const char *key)
{
	size_t off = 0;

	if (!outlen)
		return;
	out[0] = '\0';
	if (path && *path)
		append(out, outlen, &off, path, strlen(path));
	if (path && *path && key && *key)
		append(out, outlen, &off, ".", 1);
	if (key && (!path || !*path || *key))
		append(out, outlen, &off, key, strlen(key));
}

void k8s_json_index(char *out, size_t outlen, const char *path, size_t i)
{
	char num[24];
	size_t off = 0, n = sizeof(num);

	if (!outlen)
		return;
	out[0] = '\0';
	do
		num[--n] = (char)('0' + i % 10);
	while ((i /= 10) && n > 1);
	append(out, outlen, &off, path, strlen(path));
	append(out, outlen, &off, "[", 1);
	append(out, outlen, &off, num + n, sizeof(num) - n);
	append(out, outlen, &off, "]", 1);
}

int k8s_json_fail(char *err, size_t errlen, const char *path, const char *key, const char *fmt, ...)
{
	char full[K8S_PATH_MAX];
	char reason[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	k8s_json_path(full, sizeof(full), path, key);
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", full[0] ? full : "object", reason);
	return -EINVAL;
}

const cJSON *k8s_json_get(const cJSON *obj, const char *key)
{
	const cJSON *it;

	if (!cJSON_IsObject(obj))
		return NULL;
	/* Kubernetes field names are case-sensitive; cJSON's default is not. */
	it = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsNull(it) ? NULL : it;
}

static const char *type_name(const cJSON *it)
{
	if (cJSON_IsString(it))
		return "a string";
	if (cJSON_IsNumber(it))
		return "a number";
	if (cJSON_IsBool(it))
		return "a boolean";
	if (cJSON_IsArray(it))
		return "an array";
	if (cJSON_IsObject(it))
		return "an object";
	return "null";
}

static int missing(const char *path, const char *key, char *err, size_t errlen)
{
	return k8s_json_fail(err, errlen, path, key, "required field is missing");
}

int k8s_json_string_ref(const cJSON *obj, const char *path, const char *key, bool required,
			const char **out, char *err, size_t errlen)
{
	const cJSON *it = k8s_json_get(obj, key);

	if (!it) {
		if (required)
			return missing(path, key, err, errlen);
		*out = NULL;
		return 0;
	}
	if (!cJSON_IsString(it) || !it->valuestring)
		return k8s_json_fail(err, errlen, path, key, "expected a string, got %s",
				     type_name(it));
	*out = it->valuestring;
	return 0;
}

/* s fits in maxlen bytes and holds no control characters. */
static int check_string(const char *s, size_t len, size_t maxlen, const char *path, const char *key,
			char *err, size_t errlen)
{
	if (len > maxlen)
		return k8s_json_fail(err, errlen, path, key, "longer than %zu bytes", maxlen);
	for (size_t i = 0; i < len; i++) {
		/* These strings end up in logs, keys and map names. */
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return k8s_json_fail(err, errlen, path, key,
					     "control character at byte %zu", i);
	}
	return 0;
}

int k8s_json_string(const cJSON *obj, const char *path, const char *key, bool required, char *dst,
		    size_t dstlen, char *err, size_t errlen)
{
	const char *s;
	size_t len;
	int ret;

	ret = k8s_json_string_ref(obj, path, key, required, &s, err, errlen);
	if (ret)
		return ret;
	if (!s) {
		dst[0] = '\0';
		return 0;
	}
	len = strlen(s);
	ret = check_string(s, len, dstlen - 1, path, key, err, errlen);
	if (ret)
		return ret;
	memcpy(dst, s, len + 1);
	return 0;
}

int k8s_json_string_pool(const cJSON *obj, const char *path, const char *key, bool required,
			 size_t maxlen, struct k8s_strpool *pool, const char **out, char *err,
			 size_t errlen)
{
	const char *s, *copy;
	size_t len;
	int ret;

	ret = k8s_json_string_ref(obj, path, key, required, &s, err, errlen);
	if (ret)
		return ret;
	if (!s || !*s) {
		*out = "";
		return 0;
	}
	len = strlen(s);
	ret = check_string(s, len, maxlen, path, key, err, errlen);
	if (ret)
		return ret;
	copy = k8s_strpool_add(pool, s, len);
	if (!copy)
		return -ENOMEM;
	*out = copy;
	return 0;
}

int k8s_json_int(const cJSON *obj, const char *path, const char *key, bool required, long long lo,
		 long long hi, long long *out, char *err, size_t errlen)
{
	const cJSON *it = k8s_json_get(obj, key);
	double d;

	if (!it)
		return required ? missing(path, key, err, errlen) : 0;
	if (!cJSON_IsNumber(it))
		return k8s_json_fail(err, errlen, path, key, "expected an integer, got %s",
				     type_name(it));
	d = it->valuedouble;
	/* Compare as doubles first: casting an out-of-range double is UB. */
	if (!(d >= (double)lo && d <= (double)hi)) {
		if (d != d)
			return k8s_json_fail(err, errlen, path, key, "not a number");
		return k8s_json_fail(err, errlen, path, key, "%.17g is not in %lld..%lld", d, lo,
				     hi);
	}
	if ((double)(long long)d != d)
		return k8s_json_fail(err, errlen, path, key, "%.17g is not an integer", d);
	*out = (long long)d;
	return 0;
}

int k8s_json_bool(const cJSON *obj, const char *path, const char *key, bool *out, bool *present,
		  char *err, size_t errlen)
{
	const cJSON *it = k8s_json_get(obj, key);

	if (present)
		*present = it != NULL;
	if (!it)
		return 0;
	if (!cJSON_IsBool(it))
		return k8s_json_fail(err, errlen, path, key, "expected a boolean, got %s",
				     type_name(it));
	*out = cJSON_IsTrue(it);
	return 0;
}

int k8s_json_object(const cJSON *obj, const char *path, const char *key, bool required,
		    const cJSON **out, char *err, size_t errlen)
{
	const cJSON *it = k8s_json_get(obj, key);

	*out = NULL;
	if (!it)
		return required ? missing(path, key, err, errlen) : 0;
	if (!cJSON_IsObject(it))
		return k8s_json_fail(err, errlen, path, key, "expected an object, got %s",
				     type_name(it));
	*out = it;
	return 0;
}

int k8s_json_labels(const cJSON *obj, const cJSON **labels, char *err, size_t errlen)
{
	const cJSON *md;
	int ret;

	*labels = NULL;
	ret = k8s_json_object(obj, NULL, "metadata", true, &md, err, errlen);
	if (ret)
		return ret;
	return k8s_json_object(md, "metadata", "labels", false, labels, err, errlen);
}

int k8s_json_array(const cJSON *obj, const char *path, const char *key, bool required, size_t max,
		   const cJSON **out, size_t *n, char *err, size_t errlen)
{
	const cJSON *it = k8s_json_get(obj, key);
	size_t count = 0;
	const cJSON *e;

	*out = NULL;
	*n = 0;
	if (!it)
		return required ? missing(path, key, err, errlen) : 0;
	if (!cJSON_IsArray(it))
		return k8s_json_fail(err, errlen, path, key, "expected an array, got %s",
				     type_name(it));
	cJSON_ArrayForEach(e, it)
	{
		if (++count > max)
			return k8s_json_fail(err, errlen, path, key, "more than %zu items", max);
	}
	*out = it;
	*n = count;
	return 0;
}

static int parse_ip(const char *s, __be32 *addr, bool *is_v4)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		*addr = a4.s_addr;
		*is_v4 = true;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		*is_v4 = false;
		return 0;
	}
	return -EINVAL;
}

int k8s_json_ip(const cJSON *item, const char *path, __be32 *addr, bool *is_v4, char *err,
		size_t errlen)
{
	char shown[QUOTE_MAX + 1];

	if (!cJSON_IsString(item) || !item->valuestring)
		return k8s_json_fail(err, errlen, path, NULL,
				     "expected an IP address string, got %s", type_name(item));
	if (parse_ip(item->valuestring, addr, is_v4)) {
		k8s_json_quote(shown, sizeof(shown), item->valuestring);
		return k8s_json_fail(err, errlen, path, NULL, "\"%s\" is not an IP address", shown);
	}
	return 0;
}

int k8s_json_cidr(const cJSON *item, const char *path, __be32 *addr, __u8 *len, bool *is_v4,
		  char *err, size_t errlen)
{
	char shown[QUOTE_MAX + 1];
	char buf[INET6_ADDRSTRLEN + 8];
	const char *s, *slash;
	char *end;
	long plen;

	if (!cJSON_IsString(item) || !item->valuestring)
		return k8s_json_fail(err, errlen, path, NULL, "expected a CIDR string, got %s",
				     type_name(item));
	s = item->valuestring;
	k8s_json_quote(shown, sizeof(shown), s);
	slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(buf) || slash[1] < '0' || slash[1] > '9')
		goto bad;
	memcpy(buf, s, slash - s);
	buf[slash - s] = '\0';
	if (parse_ip(buf, addr, is_v4))
		goto bad;
	errno = 0;
	plen = strtol(slash + 1, &end, 10);
	if (errno || *end || plen < 0 || plen > (*is_v4 ? 32 : 128))
		goto bad;
	*len = (__u8)plen;
	return 0;
bad:
	return k8s_json_fail(err, errlen, path, NULL, "\"%s\" is not a CIDR", shown);
}
