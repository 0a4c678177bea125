// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The store's Pods: this node's, keyed "namespace/name". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_priv.h"

static void pod_free(struct store_pod *sp)
{
	k8s_pod_free(&sp->pod);
	free(sp);
}

void store_pods_destroy(struct store *s)
{
	if (s->pods.buckets)
		for (struct ht_entry *e = ht_first(&s->pods); e; e = ht_next(&s->pods, e))
			pod_free(e->value);
	ht_destroy(&s->pods);
}

int store_host_port_key(char *buf, size_t len, __u16 port, __u8 proto)
{
	int n = snprintf(buf, len, "HostPort/%s/%u", k8s_proto_name(proto), port);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The pod's host ports must be realized again (it came, changed or went). */
static int host_ports_dirty(struct store *s, const struct k8s_pod *pod)
{
	char key[STORE_KEY_MAX];
	int ret = 0;

	for (size_t i = 0; i < pod->n_host_ports && !ret; i++) {
		ret = store_host_port_key(key, sizeof(key), pod->host_ports[i].host_port,
					  pod->host_ports[i].proto);
		if (!ret)
			ret = store_mark_dirty(s, key);
	}
	return ret;
}

void store_mark_host_ports_dirty(struct store *s)
{
	for (struct ht_entry *e = ht_first(&s->pods); e; e = ht_next(&s->pods, e))
		host_ports_dirty(s, &((const struct store_pod *)e->value)->pod);
}

int store_set_pod(struct store *s, struct k8s_pod *pod)
{
	char key[STORE_KEY_MAX];
	struct store_pod *sp;
	void *old = NULL;
	size_t klen;
	int ret;

	ret = store_key(key, sizeof(key), pod->namespace, pod->name);
	if (ret)
		return ret;
	klen = strlen(key);
	sp = malloc(sizeof(*sp) + klen + 1);
	if (!sp)
		return -ENOMEM;
	memcpy(sp->key, key, klen + 1);
	sp->pod = *pod;
	ret = ht_put(&s->pods, sp->key, klen, sp, &old);
	if (ret) {
		free(sp);
		return ret;
	}
	memset(pod, 0, sizeof(*pod));
	if (old) {
		ret = host_ports_dirty(s, &((struct store_pod *)old)->pod);
		pod_free(old);
	}
	if (!ret)
		ret = host_ports_dirty(s, &sp->pod);
	s->pods_revision++;
	return ret;
}

int store_delete_pod(struct store *s, const char *ns, const char *name)
{
	char key[STORE_KEY_MAX];
	struct store_pod *sp;
	int ret;

	ret = store_key(key, sizeof(key), ns, name);
	if (ret)
		return ret;
	sp = ht_del(&s->pods, key, strlen(key));
	if (!sp)
		return -ENOENT;
	ret = host_ports_dirty(s, &sp->pod);
	pod_free(sp);
	s->pods_revision++;
	return ret;
}

const struct store_pod *store_get_pod(const struct store *s, const char *key)
{
	return ht_get(&s->pods, key, strlen(key));
}
