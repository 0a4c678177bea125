// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc attachment: tcx links pinned under <bpf-root>/links, or legacy clsact
 * filters recorded in <state-dir>/tc-legacy.json (see tc_attach.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/pkt_sched.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cjson/cJSON.h>
#include <netlink/netlink.h>
#include <netlink/route/classifier.h>

#include "axon/maps.h"
#include "log.h"
#include "pin.h"
#include "tc_attach.h"

/* libbpf 1.1's uapi headers predate tcx (Linux 6.6); the values are the
 * kernel's (enum bpf_attach_type / bpf_link_type in its BTF). */
#define AXON_BPF_TCX_INGRESS   46
#define AXON_BPF_TCX_EGRESS    47
#define AXON_BPF_LINK_TYPE_TCX 11

/* Axon's legacy filter slot on a clsact hook: a priority and handle of its
 * own, so `tc filter replace` with them swaps exactly our program. */
#define TC_LEGACY_PRIORITY 0xa0
#define TC_LEGACY_HANDLE   0xa0
#define TC_LEGACY_RECORD   "tc-legacy.json"
#define TC_LEGACY_MAX	   256

/* struct bpf_link_info as Linux >= 6.6 lays it out for a tcx link. */
struct tcx_link_info {
	__u32 type;
	__u32 id;
	__u32 prog_id;
	__u32 pad;
	__u32 ifindex; /* 0 once the device is gone */
	__u32 attach_type;
	__u64 reserved[6]; /* room for the rest of the kernel's union */
};

/* One recorded legacy filter. */
struct legacy_rec {
	char ifname[IFNAMSIZ];
	int ifindex;
	enum tc_dir dir;
	__u32 handle, priority;
	char program[64];
	bool qdisc_created; /* Axon created the clsact qdisc on this device */
};

static const char *dir_name(enum tc_dir dir)
{
	return dir == TC_INGRESS ? "ingress" : "egress";
}

static int tcx_link_pin_path(char *buf, size_t len, const struct tc_attach_ctx *ctx,
			     const char *ifname, enum tc_dir dir)
{
	char name[64];

	snprintf(name, sizeof(name), "tc-%s-%s", ifname, dir_name(dir));
	return pin_link_path(buf, len, ctx->bpf_root, name);
}

/* The directory part of @path (static buffer: for the next call only). */
static const char *dirname_of(const char *path)
{
	static char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (n >= sizeof(dir))
		n = sizeof(dir) - 1;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return n ? dir : ".";
}

static int tcx_link_info(int fd, struct tcx_link_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		return -errno;
	return info->type == AXON_BPF_LINK_TYPE_TCX ? 0 : -EINVAL;
}

static void prog_name_by_id(__u32 id, char *buf, size_t len)
{
	struct bpf_prog_info info = {};
	__u32 info_len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	buf[0] = '\0';
	if (fd < 0)
		return;
	if (!bpf_obj_get_info_by_fd(fd, &info, &info_len))
		snprintf(buf, len, "%s", info.name);
	close(fd);
}

/* ---- the legacy record file ---------------------------------------------- */

static int record_path(char *buf, size_t len, const struct tc_attach_ctx *ctx)
{
	int n;

	if (!ctx->state_dir)
		return -EINVAL;
	n = snprintf(buf, len, "%s/%s", ctx->state_dir, TC_LEGACY_RECORD);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long size;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (size = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
		buf = calloc(1, size + 1);
		if (buf && fread(buf, 1, size, f) != (size_t)size) {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/* Load the record; a missing file is an empty record. Returns the count. */
static int record_load(const struct tc_attach_ctx *ctx, struct legacy_rec *recs, int max)
{
	char path[4096];
	cJSON *root, *item;
	char *text;
	int n = 0, err;

	err = record_path(path, sizeof(path), ctx);
	if (err)
		return err;
	text = read_file(path);
	if (!text)
		return errno == ENOENT ? 0 : -errno;
	root = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsArray(root)) {
		pr_warn("legacy tc record unreadable; ignoring it", "path=%s", path);
		cJSON_Delete(root);
		return 0;
	}
	cJSON_ArrayForEach(item, root)
	{
		const cJSON *ifname = cJSON_GetObjectItem(item, "ifname");
		const cJSON *prog = cJSON_GetObjectItem(item, "program");
		const cJSON *dir = cJSON_GetObjectItem(item, "dir");
		struct legacy_rec *r;

		if (n == max)
			break;
		if (!cJSON_IsString(ifname) || !cJSON_IsString(dir))
			continue;
		r = &recs[n++];
		memset(r, 0, sizeof(*r));
		snprintf(r->ifname, sizeof(r->ifname), "%s", ifname->valuestring);
		snprintf(r->program, sizeof(r->program), "%s",
			 cJSON_IsString(prog) ? prog->valuestring : "");
		r->dir = strcmp(dir->valuestring, "egress") ? TC_INGRESS : TC_EGRESS;
		r->ifindex = cJSON_GetNumberValue(cJSON_GetObjectItem(item, "ifindex"));
		r->handle = cJSON_GetNumberValue(cJSON_GetObjectItem(item, "handle"));
		r->priority = cJSON_GetNumberValue(cJSON_GetObjectItem(item, "priority"));
		r->qdisc_created = cJSON_IsTrue(cJSON_GetObjectItem(item, "qdisc_created"));
	}
	cJSON_Delete(root);
	return n;
}

/* Write the record atomically (temp file + rename), so a crash leaves the old
 * or the new record, never half of one. */
static int record_save(const struct tc_attach_ctx *ctx, const struct legacy_rec *recs, int n)
{
	char path[4096], tmp[4200];
	cJSON *root = cJSON_CreateArray();
	char *text = NULL;
	FILE *f = NULL;
	int err = 0;

	err = record_path(path, sizeof(path), ctx);
	if (!err)
		err = mkdir_p(ctx->state_dir);
	if (err || !root)
		goto cleanup;
	for (int i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		if (!o) {
			err = -ENOMEM;
			goto cleanup;
		}
		cJSON_AddItemToArray(root, o);
		cJSON_AddStringToObject(o, "ifname", recs[i].ifname);
		cJSON_AddNumberToObject(o, "ifindex", recs[i].ifindex);
		cJSON_AddStringToObject(o, "dir", dir_name(recs[i].dir));
		cJSON_AddNumberToObject(o, "handle", recs[i].handle);
		cJSON_AddNumberToObject(o, "priority", recs[i].priority);
		cJSON_AddStringToObject(o, "program", recs[i].program);
		cJSON_AddBoolToObject(o, "qdisc_created", recs[i].qdisc_created);
	}
	text = cJSON_Print(root);
	if (!text) {
		err = -ENOMEM;
		goto cleanup;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fflush(f) || fsync(fileno(f))) {
		err = -errno;
		goto cleanup;
	}
	fclose(f);
	f = NULL;
	if (rename(tmp, path))
		err = -errno;
cleanup:
	if (f)
		fclose(f);
	free(text);
	cJSON_Delete(root);
	if (err)
		pr_err("cannot write legacy tc record", "dir=%s error=\"%s\"",
		       ctx->state_dir ? ctx->state_dir : "(none)", strerror(-err));
	return err;
}

static int record_find(const struct legacy_rec *recs, int n, const char *ifname, enum tc_dir dir)
{
	for (int i = 0; i < n; i++) {
		if (!strcmp(recs[i].ifname, ifname) && recs[i].dir == dir)
			return i;
	}
	return -1;
}

/* ---- legacy tc ------------------------------------------------------------ */

/* libbpf checks that the bytes past the fields it knows are zero, padding
 * included: fill a zeroed hook in place. */
static void legacy_hook(struct bpf_tc_hook *hook, int ifindex, enum tc_dir dir)
{
	memset(hook, 0, sizeof(*hook));
	hook->sz = sizeof(*hook);
	hook->ifindex = ifindex;
	hook->attach_point = dir == TC_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS;
}

/* Filters of anyone on the clsact qdisc of @ifindex, both directions. */
static int clsact_filter_count(int ifindex)
{
	static const __u32 parents[] = {
	    TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
	    TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS),
	};
	struct nl_sock *sk = nl_socket_alloc();
	int count = 0, err;

	if (!sk)
		return -ENOMEM;
	err = nl_connect(sk, NETLINK_ROUTE);
	for (size_t i = 0; !err && i < sizeof(parents) / sizeof(parents[0]); i++) {
		struct nl_cache *cache;

		err = rtnl_cls_alloc_cache(sk, ifindex, parents[i], &cache);
		if (err)
			break;
		count += nl_cache_nitems(cache);
		nl_cache_free(cache);
	}
	nl_socket_free(sk);
	return err ? -EIO : count;
}

static int legacy_detach_rec(struct legacy_rec *recs, int *n, int idx)
{
	struct legacy_rec r = recs[idx];
	struct bpf_tc_hook hook;
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = r.handle, .priority = r.priority);
	bool qdisc_ours = r.qdisc_created;
	int err;

	legacy_hook(&hook, r.ifindex, r.dir);
	/* Only if the device is still the one we attached to. */
	if (if_nametoindex(r.ifname) == (unsigned int)r.ifindex) {
		err = bpf_tc_detach(&hook, &opts);
		if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
			return err;
	}
	recs[idx] = recs[--*n];
	for (int i = 0; i < *n; i++) {
		if (recs[i].ifindex == r.ifindex)
			qdisc_ours = qdisc_ours || recs[i].qdisc_created;
	}
	/* Remove the clsact qdisc only when Axon created it and nobody (Axon
	 * included) has a filter left on it. */
	if (qdisc_ours && if_nametoindex(r.ifname) == (unsigned int)r.ifindex &&
	    clsact_filter_count(r.ifindex) == 0) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		err = bpf_tc_hook_destroy(&hook);
		if (err && err != -ENOENT)
			pr_warn("cannot remove clsact qdisc", "dev=%s error=\"%s\"", r.ifname,
				strerror(-err));
	} else if (qdisc_ours) {
		/* Someone still uses it: pass the ownership on to a record of ours. */
		for (int i = 0; i < *n; i++) {
			if (recs[i].ifindex == r.ifindex)
				recs[i].qdisc_created = true;
		}
	}
	return 0;
}

static int legacy_attach(struct tc_attach_ctx *ctx, int prog_fd, const char *program, int ifindex,
			 const char *ifname, enum tc_dir dir, struct tc_attachment *out)
{
	struct legacy_rec recs[TC_LEGACY_MAX];
	struct bpf_tc_hook hook;
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, query, .handle = TC_LEGACY_HANDLE,
			    .priority = TC_LEGACY_PRIORITY);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = TC_LEGACY_HANDLE,
			    .priority = TC_LEGACY_PRIORITY, .prog_fd = prog_fd,
			    .flags = BPF_TC_F_REPLACE);
	bool qdisc_created = false;
	int n, idx, err;

	legacy_hook(&hook, ifindex, dir);
	n = record_load(ctx, recs, TC_LEGACY_MAX);
	if (n < 0)
		return n;
	idx = record_find(recs, n, ifname, dir);
	if (idx >= 0 && recs[idx].ifindex != ifindex) {
		/* The device was recreated: its old filters went with it. */
		pr_info("dropping stale legacy tc record", "dev=%s old_ifindex=%d ifindex=%d",
			ifname, recs[idx].ifindex, ifindex);
		recs[idx] = recs[--n];
		idx = -1;
	}
	err = bpf_tc_hook_create(&hook);
	if (!err)
		qdisc_created = true;
	else if (err != -EEXIST)
		return err;
	/* Our slot is taken by someone else's filter: refuse rather than
	 * replace a program Axon did not attach. */
	if (idx < 0 && !bpf_tc_query(&hook, &query)) {
		pr_err("legacy tc slot in use by a filter Axon did not record", "dev=%s dir=%s",
		       ifname, dir_name(dir));
		return -EBUSY;
	}
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		return err;
	if (out)
		out->updated = idx >= 0;
	if (idx < 0) {
		if (n == TC_LEGACY_MAX)
			return -E2BIG;
		idx = n++;
		memset(&recs[idx], 0, sizeof(recs[idx]));
	}
	snprintf(recs[idx].ifname, sizeof(recs[idx].ifname), "%s", ifname);
	snprintf(recs[idx].program, sizeof(recs[idx].program), "%s", program);
	recs[idx].ifindex = ifindex;
	recs[idx].dir = dir;
	recs[idx].handle = TC_LEGACY_HANDLE;
	recs[idx].priority = TC_LEGACY_PRIORITY;
	recs[idx].qdisc_created = recs[idx].qdisc_created || qdisc_created;
	return record_save(ctx, recs, n);
}

static int legacy_detach(struct tc_attach_ctx *ctx, const char *ifname, enum tc_dir dir)
{
	struct legacy_rec recs[TC_LEGACY_MAX];
	int n, idx, err;

	n = record_load(ctx, recs, TC_LEGACY_MAX);
	if (n < 0)
		return n;
	idx = record_find(recs, n, ifname, dir);
	if (idx < 0)
		return -ENOENT;
	err = legacy_detach_rec(recs, &n, idx);
	if (err)
		return err;
	return record_save(ctx, recs, n);
}

/* ---- tcx ------------------------------------------------------------------- */

static int tcx_attach(struct tc_attach_ctx *ctx, int prog_fd, int ifindex, const char *ifname,
		      enum tc_dir dir, struct tc_attachment *out)
{
	enum bpf_attach_type type = dir == TC_INGRESS ? AXON_BPF_TCX_INGRESS : AXON_BPF_TCX_EGRESS;
	struct tcx_link_info info;
	char path[4096];
	int fd, err;

	err = tcx_link_pin_path(path, sizeof(path), ctx, ifname, dir);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		bool same = !tcx_link_info(fd, &info) && (int)info.ifindex == ifindex &&
			    info.attach_type == type;

		if (same && !bpf_link_update(fd, prog_fd, NULL)) {
			close(fd);
			if (out)
				out->updated = true;
			return 0;
		}
		/* Ours (pinned under our root) but for a device that is gone or
		 * was recreated: re-create it. */
		pr_info("replacing pinned tcx link", "dev=%s dir=%s reason=%s", ifname,
			dir_name(dir), same ? "update failed" : "device changed");
		bpf_link_detach(fd);
		close(fd);
		unlink(path);
	}
	fd = bpf_link_create(prog_fd, ifindex, type, NULL);
	if (fd < 0)
		return fd;
	err = bpf_obj_pin(fd, path) ? -errno : 0;
	/* The links directory is made once, by the first pin that lacks it. */
	if (err == -ENOENT) {
		err = mkdir_p(dirname_of(path));
		if (!err)
			err = bpf_obj_pin(fd, path) ? -errno : 0;
	}
	close(fd); /* the pin holds the link now; an error detaches it */
	return err;
}

static int tcx_detach(struct tc_attach_ctx *ctx, const char *ifname, enum tc_dir dir)
{
	char path[4096];
	int fd, err;

	err = tcx_link_pin_path(path, sizeof(path), ctx, ifname, dir);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	bpf_link_detach(fd); /* fails harmlessly when the device is gone */
	close(fd);
	return unlink(path) ? -errno : 0;
}

/* ---- the interface ------------------------------------------------------------ */

int tc_probe_tcx(struct tc_attach_ctx *ctx, int probe_ifindex)
{
	/* r0 = -1 (TC_ACT_UNSPEC: tcx goes on to the next program); exit */
	const struct bpf_insn insns[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -1},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	int prog_fd, link_fd;

	if (ctx->mode != TC_MODE_AUTO)
		return 0;
	prog_fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "axon_probe", "GPL", insns, 2, NULL);
	if (prog_fd < 0)
		return prog_fd;
	link_fd = bpf_link_create(prog_fd, probe_ifindex, AXON_BPF_TCX_INGRESS, NULL);
	ctx->mode = link_fd >= 0 ? TC_MODE_TCX : TC_MODE_LEGACY;
	if (link_fd >= 0)
		close(link_fd); /* unpinned: closing it detaches the probe */
	else
		pr_info("tcx not available, using legacy tc", "error=\"%s\"", strerror(-link_fd));
	close(prog_fd);
	return 0;
}

int tc_attach(struct tc_attach_ctx *ctx, int prog_fd, const char *program, int ifindex,
	      const char *ifname, enum tc_dir dir, struct tc_attachment *out)
{
	int err;

	if (ctx->mode == TC_MODE_AUTO)
		return -EINVAL; /* tc_probe_tcx() first */
	if (out) {
		memset(out, 0, sizeof(*out));
		snprintf(out->ifname, sizeof(out->ifname), "%s", ifname);
		snprintf(out->program, sizeof(out->program), "%s", program);
		out->ifindex = ifindex;
		out->dir = dir;
		out->mode = ctx->mode;
	}
	if (ctx->mode == TC_MODE_TCX) {
		err = tcx_attach(ctx, prog_fd, ifindex, ifname, dir, out);
		/* A legacy filter of ours from an earlier mode: the tcx program
		 * runs first now, so removing the filter leaves no gap. */
		if (!err && ctx->state_dir)
			legacy_detach(ctx, ifname, dir);
	} else {
		err = legacy_attach(ctx, prog_fd, program, ifindex, ifname, dir, out);
		if (!err)
			tcx_detach(ctx, ifname, dir);
	}
	if (err)
		pr_err("tc attach failed", "dev=%s dir=%s program=%s mode=%s error=\"%s\"", ifname,
		       dir_name(dir), program, ctx->mode == TC_MODE_TCX ? "tcx" : "legacy",
		       strerror(-err));
	return err;
}

int tc_detach(struct tc_attach_ctx *ctx, const char *ifname, enum tc_dir dir)
{
	int err_tcx, err_legacy = -ENOENT;

	err_tcx = tcx_detach(ctx, ifname, dir);
	if (ctx->state_dir)
		err_legacy = legacy_detach(ctx, ifname, dir);
	if (err_tcx == -ENOENT && err_legacy == -ENOENT)
		return -ENOENT;
	if (err_tcx && err_tcx != -ENOENT)
		return err_tcx;
	return err_legacy == -ENOENT ? 0 : err_legacy;
}

/* "tc-<ifname>-<dir>" -> ifname, dir */
static bool parse_link_pin(const char *name, char *ifname, size_t len, enum tc_dir *dir)
{
	size_t n = strlen(name);
	const char *end;

	if (strncmp(name, "tc-", 3))
		return false;
	if (n > 3 + 8 && !strcmp(name + n - 8, "-ingress")) {
		*dir = TC_INGRESS;
		end = name + n - 8;
	} else if (n > 3 + 7 && !strcmp(name + n - 7, "-egress")) {
		*dir = TC_EGRESS;
		end = name + n - 7;
	} else {
		return false;
	}
	if ((size_t)(end - name - 3) >= len)
		return false;
	memcpy(ifname, name + 3, end - name - 3);
	ifname[end - name - 3] = '\0';
	return true;
}

int tc_list(struct tc_attach_ctx *ctx, struct tc_attachment *out, int max)
{
	struct legacy_rec recs[TC_LEGACY_MAX];
	char dir_path[4096], path[4400];
	struct dirent *de;
	int count = 0, n;
	DIR *d;

	snprintf(dir_path, sizeof(dir_path), "%s/%s", ctx->bpf_root, AXON_LINKS_DIR);
	d = opendir(dir_path);
	while (d && (de = readdir(d)) && count < max) {
		struct tc_attachment *a = &out[count];
		struct tcx_link_info info;
		int fd;

		memset(a, 0, sizeof(*a));
		if (!parse_link_pin(de->d_name, a->ifname, sizeof(a->ifname), &a->dir))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir_path, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (!tcx_link_info(fd, &info)) {
			a->ifindex = info.ifindex;
			a->mode = TC_MODE_TCX;
			prog_name_by_id(info.prog_id, a->program, sizeof(a->program));
			count++;
		}
		close(fd);
	}
	if (d)
		closedir(d);
	if (!ctx->state_dir)
		return count;
	n = record_load(ctx, recs, TC_LEGACY_MAX);
	for (int i = 0; i < n && count < max; i++) {
		struct tc_attachment *a = &out[count++];

		memset(a, 0, sizeof(*a));
		memcpy(a->ifname, recs[i].ifname, sizeof(a->ifname));
		memcpy(a->program, recs[i].program, sizeof(a->program));
		a->ifindex = recs[i].ifindex;
		a->dir = recs[i].dir;
		a->mode = TC_MODE_LEGACY;
	}
	return count;
}

int tc_detach_all(struct tc_attach_ctx *ctx)
{
	struct tc_attachment have[TC_LEGACY_MAX];
	int n, removed = 0, first_err = 0;

	n = tc_list(ctx, have, TC_LEGACY_MAX);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		int err = tc_detach(ctx, have[i].ifname, have[i].dir);

		if (!err)
			removed++;
		else if (err != -ENOENT && !first_err)
			first_err = err;
	}
	return first_err ? first_err : removed;
}
