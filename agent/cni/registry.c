// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The endpoints the plugin created: in memory, in the store, on disk. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "axon/ipcache.h"
#include "cni.h"
#include "log.h"
#include "pin.h"
#include "store/store.h"

void cni_host_ifname(const char *id, const char *ifname, char *out)
{
	__u64 h = 0xcbf29ce484222325ull;	/* FNV-1a 64 */

	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	h = (h ^ '/') * 0x100000001b3ull;
	for (const char *p = ifname; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	snprintf(out, IFNAMSIZ, "lxc%012llx", (unsigned long long)(h & 0xffffffffffffull));
}

static int key_of(const char *id, const char *ifname, char *buf, size_t len)
{
	return snprintf(buf, len, "%s/%s", id, ifname);
}

static void path_of(const struct agent_cni *c, const struct cni_endpoint *ep, char *buf,
		    size_t len)
{
	snprintf(buf, len, "%s/%s.json", c->dir, ep->host_if);
}

static int save(const struct agent_cni *c, const struct cni_endpoint *ep)
{
	char path[512], tmp[520], ip[INET_ADDRSTRLEN], *text;
	cJSON *o = cJSON_CreateObject();
	FILE *f;
	int err = 0;

	inet_ntop(AF_INET, &ep->ip, ip, sizeof(ip));
	cJSON_AddStringToObject(o, "container_id", ep->id);
	cJSON_AddStringToObject(o, "ifname", ep->ifname);
	cJSON_AddStringToObject(o, "netns", ep->netns);
	cJSON_AddStringToObject(o, "host_if", ep->host_if);
	cJSON_AddStringToObject(o, "ip", ip);
	cJSON_AddStringToObject(o, "pod", ep->pod);
	text = cJSON_Print(o);
	cJSON_Delete(o);
	if (!text)
		return -ENOMEM;
	path_of(c, ep, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* The directory is made on the first endpoint (an agent without pods
	 * writes nothing); after that the open alone finds it. */
	f = fopen(tmp, "we");
	if (!f && errno == ENOENT && !(err = mkdir_p(c->dir)))
		f = fopen(tmp, "we");
	if (!f) {
		err = err ? err : -errno;
		goto out;
	}
	/* Not fsync'd, as IPAM records (ipam.c, alloc_save) are not. */
	if (fputs(text, f) < 0 || fflush(f))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
out:
	free(text);
	return err;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static void fill_le(struct cni_endpoint *ep)
{
	/* reserved:init until the pod's CiliumEndpoint gives it an identity */
	ep->le = (struct local_endpoint){ .ip = ep->ip, .identity = IDENTITY_INIT };
	snprintf(ep->le.name, sizeof(ep->le.name), "%s", ep->pod[0] ? ep->pod : ep->id);
}

static int put(struct agent_cni *c, struct store *s, struct cni_endpoint *ep)
{
	char key[IPAM_OWNER_MAX + IFNAMSIZ + 1];
	struct local_endpoint *le;
	int klen = key_of(ep->id, ep->ifname, key, sizeof(key));

	fill_le(ep);
	le = malloc(sizeof(*le));
	if (!le)
		return -ENOMEM;
	*le = ep->le;
	if (ht_put(&c->eps, key, klen, ep, NULL)) {
		free(le);
		return -ENOMEM;
	}
	if (ht_put(&c->by_ip, &le->ip, sizeof(le->ip), le, NULL)) {
		ht_del(&c->eps, key, klen);
		free(le);
		return -ENOMEM;
	}
	s->cni_endpoints = &c->by_ip;
	s->cni_revision++;
	store_mark_host_ports_dirty(s);	/* a pod's address before its status has it */
	return 0;
}

static int load_one(struct agent_cni *c, struct store *s, const char *name)
{
	char path[512], buf[2048];
	struct cni_endpoint *ep;
	struct in_addr in;
	size_t n;
	cJSON *o;
	FILE *f;
	int err;

	n = strlen(name);
	if (n < 6 || strcmp(name + n - 5, ".json"))
		return 0;	/* a temporary file left by a crash */
	snprintf(path, sizeof(path), "%s/%s", c->dir, name);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	o = cJSON_Parse(buf);
	if (!o || inet_pton(AF_INET, str(o, "ip"), &in) != 1 || !*str(o, "container_id")) {
		pr_warn("ignoring unreadable CNI endpoint record", "path=%s", path);
		cJSON_Delete(o);
		return 0;
	}
	ep = calloc(1, sizeof(*ep));
	if (!ep) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	snprintf(ep->id, sizeof(ep->id), "%s", str(o, "container_id"));
	snprintf(ep->ifname, sizeof(ep->ifname), "%s", str(o, "ifname"));
	snprintf(ep->netns, sizeof(ep->netns), "%s", str(o, "netns"));
	snprintf(ep->host_if, sizeof(ep->host_if), "%s", str(o, "host_if"));
	snprintf(ep->pod, sizeof(ep->pod), "%s", str(o, "pod"));
	ep->ip = in.s_addr;
	cJSON_Delete(o);
	err = put(c, s, ep);
	if (err)
		free(ep);
	return err;
}

int cni_registry_load(struct agent_cni *c, struct store *s)
{
	struct dirent *de;
	DIR *d = opendir(c->dir);
	int err = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) && !err)
		err = load_one(c, s, de->d_name);
	closedir(d);
	if (!err && c->eps.count)
		pr_info("CNI endpoints restored", "dir=%s count=%zu", c->dir, c->eps.count);
	return err;
}

struct cni_endpoint *cni_registry_get(struct agent_cni *c, const char *id, const char *ifname)
{
	char key[IPAM_OWNER_MAX + IFNAMSIZ + 1];
	int klen = key_of(id, ifname, key, sizeof(key));

	return ht_get(&c->eps, key, klen);
}

int cni_registry_add(struct agent_cni *c, struct store *s, const struct cni_endpoint *tmpl)
{
	struct cni_endpoint *ep = malloc(sizeof(*ep));
	int err;

	if (!ep)
		return -ENOMEM;
	*ep = *tmpl;
	/* On disk first: an endpoint the agent could forget is one DEL cannot release. */
	err = save(c, ep);
	if (!err)
		err = put(c, s, ep);
	if (err) {
		char path[512];

		path_of(c, ep, path, sizeof(path));
		unlink(path);
		free(ep);
	}
	return err;
}

void cni_registry_del(struct agent_cni *c, struct store *s, struct cni_endpoint *ep)
{
	char key[IPAM_OWNER_MAX + IFNAMSIZ + 1], path[512];
	int klen = key_of(ep->id, ep->ifname, key, sizeof(key));

	path_of(c, ep, path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		pr_warn("cannot remove CNI endpoint record", "path=%s error=\"%s\"", path,
			strerror(errno));
	free(ht_del(&c->by_ip, &ep->ip, sizeof(ep->ip)));
	ht_del(&c->eps, key, klen);
	free(ep);
	s->cni_revision++;
	store_mark_host_ports_dirty(s);
}
