// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "ipam.h"
#include "log.h"
#include "pin.h"

/* ---- the files ---- */

static void alloc_path(const struct ipam *p, __be32 ip, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ip, a, sizeof(a));
	snprintf(buf, len, "%s/%s", p->dir, a);
}

/* Written to a temporary file and renamed: a crash leaves the old record or
 * the new, never half of one. Not fsync'd: the record has to outlive the
 * agent (a crash, a restart), which the page cache gives; a node that loses
 * power loses every pod's network namespace with it, and a record damaged
 * by that is ignored on load. An fsync per ADD cost milliseconds on disk. */
static int alloc_save(const struct ipam *p, const struct ipam_alloc *a)
{
	char path[512], tmp[520];
	FILE *f;
	int err = 0;

	if (!p->dir[0] || !strcmp(a->owner, IPAM_ROUTER_OWNER))
		return 0;	/* the router's follows from the pool */
	alloc_path(p, a->ip, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* The directory is made on the first allocation (an agent no pod was
	 * added through writes nothing); after that the open alone finds it. */
	f = fopen(tmp, "we");
	if (!f && errno == ENOENT && !(err = mkdir_p(p->dir)))
		f = fopen(tmp, "we");
	if (!f)
		return err ? err : -errno;
	if (fprintf(f, "%s\n%s\n%s\n", a->owner, a->ifname, a->pod) < 0 || fflush(f))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static void alloc_forget(const struct ipam *p, __be32 ip)
{
	char path[512];

	if (!p->dir[0])
		return;
	alloc_path(p, ip, path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		pr_warn("cannot remove IPAM record", "path=%s error=\"%s\"", path,
			strerror(errno));
}

static void chomp(char *s)
{
	s[strcspn(s, "\n")] = '\0';
}

/* Truncating copy (a record is ours, so it fits; a damaged one is cut). */
static void copy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int alloc_load(struct ipam *p, const char *name)
{
	char path[512], line[3][IPAM_POD_MAX];
	struct ipam_alloc *a;
	struct in_addr in;
	FILE *f;

	if (inet_pton(AF_INET, name, &in) != 1)
		return 0;	/* a temporary file left by a crash, or not ours */
	snprintf(path, sizeof(path), "%s/%s", p->dir, name);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	memset(line, 0, sizeof(line));
	for (int i = 0; i < 3 && fgets(line[i], sizeof(line[i]), f); i++)
		chomp(line[i]);
	fclose(f);
	if (!line[0][0]) {
		pr_warn("ignoring IPAM record without an owner", "path=%s", path);
		return 0;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->ip = in.s_addr;
	copy(a->owner, sizeof(a->owner), line[0]);
	copy(a->ifname, sizeof(a->ifname), line[1]);
	copy(a->pod, sizeof(a->pod), line[2]);
	if (ht_put(&p->allocs, &a->ip, sizeof(a->ip), a, NULL)) {
		free(a);
		return -ENOMEM;
	}
	return 0;
}

int ipam_init(struct ipam *p, const char *dir)
{
	struct dirent *de;
	DIR *d;
	int err;

	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	err = ht_init(&p->allocs);
	if (err || !dir)
		return err;
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	d = opendir(p->dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) && !err)
		err = alloc_load(p, de->d_name);
	closedir(d);
	if (!err && p->allocs.count)
		pr_info("IPAM allocations restored", "dir=%s count=%zu", p->dir, p->allocs.count);
	return err;
}

void ipam_destroy(struct ipam *p)
{
	ht_destroy_with(&p->allocs, free);
	pthread_mutex_destroy(&p->lock);
}

/* ---- the pool ---- */

static __u32 pool_first(const struct ipv4_prefix *pool)
{
	return ntohl(pool->addr) & (pool->len ? ~0u << (32 - pool->len) : 0);
}

static __u32 pool_size(const struct ipv4_prefix *pool)
{
	return pool->len ? 1u << (32 - pool->len) : 0;
}

static bool in_pool(const struct ipam *p, __be32 ip)
{
	__u32 h = ntohl(ip), first = pool_first(&p->pool);

	return p->pool.len && h > first && h < first + pool_size(&p->pool) - 1;
}

static int reserve(struct ipam *p, __be32 ip, const char *owner, const char *ifname,
		   const char *pod)
{
	struct ipam_alloc *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return -ENOMEM;
	a->ip = ip;
	snprintf(a->owner, sizeof(a->owner), "%s", owner);
	snprintf(a->ifname, sizeof(a->ifname), "%s", ifname);
	snprintf(a->pod, sizeof(a->pod), "%s", pod ? pod : "");
	err = alloc_save(p, a);
	if (!err && ht_put(&p->allocs, &a->ip, sizeof(a->ip), a, NULL))
		err = -ENOMEM;
	if (err) {
		alloc_forget(p, ip);
		free(a);
	}
	return err;
}

int ipam_set_pool(struct ipam *p, const struct ipv4_prefix *pool)
{
	__be32 router;
	int err = 0;

	if (pool->len > 30)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	if (p->pool.len == pool->len && pool_first(&p->pool) == pool_first(pool))
		goto out;
	p->pool = (struct ipv4_prefix){ .addr = htonl(pool_first(pool)), .len = pool->len };
	p->last = pool_first(pool) + 1;
	router = htonl(pool_first(pool) + 1);
	/* A new CIDR: the old one's router address goes (pods keep theirs). */
	for (struct ht_entry *e = ht_first(&p->allocs); e;) {
		struct ipam_alloc *a = e->value;

		if (strcmp(a->owner, IPAM_ROUTER_OWNER) || a->ip == router) {
			e = ht_next(&p->allocs, e);
			continue;
		}
		free(a);
		e = ht_del_iter(&p->allocs, e);
	}
	if (!ht_get(&p->allocs, &router, sizeof(router)))
		err = reserve(p, router, IPAM_ROUTER_OWNER, "", "");
	/* Resume after the highest address in use, as before the restart. */
	for (struct ht_entry *e = ht_first(&p->allocs); e; e = ht_next(&p->allocs, e)) {
		const struct ipam_alloc *a = e->value;

		if (in_pool(p, a->ip) && ntohl(a->ip) > p->last)
			p->last = ntohl(a->ip);
	}
out:
	pthread_mutex_unlock(&p->lock);
	return err;
}

static struct ipam_alloc *find_owner(struct ipam *p, const char *owner, const char *ifname)
{
	for (struct ht_entry *e = ht_first(&p->allocs); e; e = ht_next(&p->allocs, e)) {
		struct ipam_alloc *a = e->value;

		if (!strcmp(a->owner, owner) && !strcmp(a->ifname, ifname))
			return a;
	}
	return NULL;
}

static size_t allocated_in_pool(struct ipam *p)
{
	size_t n = 0;

	for (struct ht_entry *e = ht_first(&p->allocs); e; e = ht_next(&p->allocs, e))
		n += in_pool(p, ((struct ipam_alloc *)e->value)->ip);
	return n;
}

static void pool_str(const struct ipam *p, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];

	if (!p->pool.len) {
		snprintf(buf, len, "%s", "");
		return;
	}
	inet_ntop(AF_INET, &p->pool.addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->pool.len);
}

int ipam_allocate(struct ipam *p, const char *owner, const char *ifname, const char *pod,
		  __be32 *ip, char *err, size_t errlen)
{
	struct ipam_alloc *have;
	__u32 first, size;
	int ret = -ENOSPC;

	pthread_mutex_lock(&p->lock);
	have = find_owner(p, owner, ifname);
	if (have) {
		/* A retried ADD gets the address it was given. */
		*ip = have->ip;
		ret = 0;
		goto out;
	}
	if (!p->pool.len) {
		snprintf(err, errlen, "no pod CIDR for this node yet");
		ret = -EAGAIN;
		goto out;
	}
	first = pool_first(&p->pool);
	size = pool_size(&p->pool);
	/* Host addresses are first+1 .. first+size-2; the scan starts after
	 * the last one handed out and wraps. */
	for (__u32 i = 1; i <= size - 2; i++) {
		__u32 h = first + 1 + (p->last - first - 1 + i) % (size - 2);
		__be32 cand = htonl(h);

		if (ht_get(&p->allocs, &cand, sizeof(cand)))
			continue;
		ret = reserve(p, cand, owner, ifname, pod);
		if (ret) {
			snprintf(err, errlen, "cannot keep the allocation of %s: %s",
				 inet_ntoa((struct in_addr){ cand }), strerror(-ret));
			goto out;
		}
		p->last = h;
		*ip = cand;
		goto out;
	}
	{
		char range[INET_ADDRSTRLEN + 4];

		pool_str(p, range, sizeof(range));
		snprintf(err, errlen, "no IP addresses available in range %s (%zu allocated)", range,
			 allocated_in_pool(p));
	}
out:
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int ipam_release(struct ipam *p, __be32 ip)
{
	struct ipam_alloc *a;
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	a = ht_get(&p->allocs, &ip, sizeof(ip));
	if (!a || !strcmp(a->owner, IPAM_ROUTER_OWNER)) {
		ret = a ? -EPERM : -ENOENT;
		goto out;
	}
	alloc_forget(p, ip);
	free(ht_del(&p->allocs, &ip, sizeof(ip)));
out:
	pthread_mutex_unlock(&p->lock);
	return ret;
}

__be32 ipam_lookup(struct ipam *p, const char *owner, const char *ifname)
{
	struct ipam_alloc *a;
	__be32 ip;

	pthread_mutex_lock(&p->lock);
	a = find_owner(p, owner, ifname);
	ip = a ? a->ip : 0;
	pthread_mutex_unlock(&p->lock);
	return ip;
}

void ipam_usage(struct ipam *p, size_t *allocated, size_t *capacity)
{
	pthread_mutex_lock(&p->lock);
	*allocated = allocated_in_pool(p);
	*capacity = p->pool.len ? pool_size(&p->pool) - 2 : 0;
	pthread_mutex_unlock(&p->lock);
}

static int cmp_alloc(const void *x, const void *y)
{
	__u32 a = ntohl(((const struct ipam_alloc *)x)->ip);
	__u32 b = ntohl(((const struct ipam_alloc *)y)->ip);

	return a < b ? -1 : a > b;
}

int ipam_list(struct ipam *p, struct ipam_alloc **out, size_t *n)
{
	size_t i = 0;

	pthread_mutex_lock(&p->lock);
	*n = p->allocs.count;
	*out = calloc(*n ? *n : 1, sizeof(**out));
	if (!*out) {
		pthread_mutex_unlock(&p->lock);
		return -ENOMEM;
	}
	for (struct ht_entry *e = ht_first(&p->allocs); e; e = ht_next(&p->allocs, e))
		(*out)[i++] = *(struct ipam_alloc *)e->value;
	pthread_mutex_unlock(&p->lock);
	qsort(*out, *n, sizeof(**out), cmp_alloc);
	return 0;
}

void ipam_pool_str(struct ipam *p, char *buf, size_t len)
{
	pthread_mutex_lock(&p->lock);
	pool_str(p, buf, len);
	pthread_mutex_unlock(&p->lock);
}
