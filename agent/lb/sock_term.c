// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket LB termination and the UDP conntrack purge (sock_term.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "axon/ct.h"
#include "axon/sock_term.h"
#include "datapath/loader.h"
#include "log.h"
#include "sock_diag.h"
#include "sock_term.h"
#include "sock_lb.skel.h"
#include "sock_term.skel.h"

/* ---- the queue (agent thread) ---- */

void lb_sock_term_backend_removed(void *ctx, __u32 rev_nat, const struct lb_backend *b)
{
	struct lb_sock_term *t = ctx;
	struct lb_sock_term_item *p;

	if (!t->started)
		return;
	pthread_mutex_lock(&t->lock);
	if (t->n_pending == t->cap_pending) {
		size_t cap = t->cap_pending ? 2 * t->cap_pending : 64;

		p = realloc(t->pending, cap * sizeof(*p));
		if (!p) {
			/* Its sockets keep running into a backend that is gone
			 * (as without termination); the rest are handled. */
			pthread_mutex_unlock(&t->lock);
			pr_warn("socket termination: backend not queued", "rev_nat=%u error=\"%s\"",
				rev_nat, strerror(ENOMEM));
			return;
		}
		t->pending = p;
		t->cap_pending = cap;
	}
	t->pending[t->n_pending++] = (struct lb_sock_term_item){
		.addr = b->addr, .port = b->port, .proto = b->proto, .id = b->id,
		.rev_nat = rev_nat,
	};
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void lb_sock_term_stats(struct lb_sock_term *t, struct lb_sock_term_stats *out)
{
	if (!t->started) {
		memset(out, 0, sizeof(*out));
		snprintf(out->reason, sizeof(out->reason), "not started");
		return;
	}
	pthread_mutex_lock(&t->lock);
	*out = t->stats;
	pthread_mutex_unlock(&t->lock);
}

/* ---- the worker ---- */

struct netns_id {
	dev_t dev;
	ino_t ino;
};

struct batch {
	const struct lb_sock_term_item *items;
	size_t n;
	uint64_t destroyed[2], failed;	/* the fallback's counts */
};

/* Run both iterators in the calling thread's network namespace. */
static int iters_run(const struct lb_sock_term *t, struct batch *b)
{
	char buf[64];

	(void)b;	/* the iterators read it from lb4_sock_term */
	for (int i = 0; i < 2; i++) {
		int fd = bpf_iter_create(t->link_fd[i]);
		ssize_t n;

		if (fd < 0)
			return -errno;
		/* The programs print nothing: the first read walks every socket. */
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			;
		close(fd);
		if (n < 0)
			return -errno;
	}
	return 0;
}

static bool netns_seen(struct netns_id **seen, size_t *n, size_t *cap, const struct stat *st)
{
	struct netns_id *p;

	for (size_t i = 0; i < *n; i++) {
		if ((*seen)[i].ino == st->st_ino && (*seen)[i].dev == st->st_dev)
			return true;
	}
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 64;

		p = realloc(*seen, c * sizeof(*p));
		if (!p)
			return false;	/* visited twice at worst */
		*seen = p;
		*cap = c;
	}
	(*seen)[(*n)++] = (struct netns_id){ .dev = st->st_dev, .ino = st->st_ino };
	return false;
}

/* The fallback: the same match over sock_diag, in this namespace. */
static int diag_run(const struct lb_sock_term *t, struct batch *b)
{
	int err = sock_diag_destroy(t->rev_fd, b->items, b->n, IPPROTO_TCP,
				    &b->destroyed[SOCK_TERM_TCP], &b->failed);
	int uerr = sock_diag_destroy(t->rev_fd, b->items, b->n, IPPROTO_UDP,
				     &b->destroyed[SOCK_TERM_UDP], &b->failed);

	return err ? err : uerr;
}

typedef int (*netns_fn)(const struct lb_sock_term *t, struct batch *b);

/*
 * @fn in every distinct network namespace a process is in. This
 * thread setns()es into each (a thread's namespace is its own) and back to
 * its own at the end. Returns 0 or the first error of an iterator; a
 * namespace that vanished or cannot be entered is skipped.
 */
static int netns_walk(const struct lb_sock_term *t, netns_fn fn, struct batch *b,
		      uint64_t *n_ns)
{
	struct netns_id *seen = NULL;
	size_t n_seen = 0, cap = 0;
	struct dirent *de;
	int self, err = 0;
	char path[300];
	DIR *proc;

	*n_ns = 0;
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	proc = opendir("/proc");
	if (!proc) {
		err = -errno;
		goto out;
	}
	while ((de = readdir(proc))) {
		struct stat st;
		int fd, ierr;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", de->d_name);
		/* Gone, or a kernel thread (no namespace to name). */
		if (stat(path, &st) || netns_seen(&seen, &n_seen, &cap, &st))
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ierr = setns(fd, CLONE_NEWNET) ? -errno : 0;
		close(fd);
		if (ierr)
			continue;
		(*n_ns)++;
		ierr = fn(t, b);
		if (ierr && !err)
			err = ierr;
	}
	closedir(proc);
out:
	/* Back home: this thread must not stay in a pod's namespace. */
	if (setns(self, CLONE_NEWNET) && !err)
		err = -errno;
	close(self);
	free(seen);
	return err;
}

static struct sock_term_key item_key(const struct lb_sock_term_item *it)
{
	return (struct sock_term_key){
		.address = it->addr, .port = it->port, .proto = it->proto,
		.rev_nat_index = it->rev_nat,
	};
}

/* Sockets of the pairs items[0..n) (n <= SOCK_TERM_MAX): the iterators
 * with the batch in lb4_sock_term, or the sock_diag fallback. */
static int sockets_destroy(const struct lb_sock_term *t, struct batch *b, uint64_t *n_ns)
{
	struct sock_term_key key;
	__u8 one = 1;
	int err = 0;

	if (t->filter_fd < 0)
		return netns_walk(t, diag_run, b, n_ns);
	for (size_t i = 0; i < b->n && !err; i++) {
		key = item_key(&b->items[i]);
		err = bpf_map_update_elem(t->filter_fd, &key, &one, BPF_ANY) ? -errno : 0;
	}
	if (!err)
		err = netns_walk(t, iters_run, b, n_ns);
	for (size_t i = 0; i < b->n; i++) {
		key = item_key(&b->items[i]);
		bpf_map_delete_elem(t->filter_fd, &key);
	}
	return err;
}

/* A UDP backend of the batch and the frontend it left (0: every one). */
struct ct_pair {
	__u32 id, rev_nat;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct ct_pair *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->rev_nat < y->rev_nat ? -1 : x->rev_nat > y->rev_nat;
}

/* Does an entry for backend @id through frontend @rev_nat belong to a pair? */
static bool ct_listed(const struct ct_pair *pairs, size_t n, __u32 id, __u32 rev_nat)
{
	struct ct_pair any = { .id = id }, one = { .id = id, .rev_nat = rev_nat };

	return bsearch(&any, pairs, n, sizeof(*pairs), pair_cmp) ||
	       bsearch(&one, pairs, n, sizeof(*pairs), pair_cmp);
}

/*
 * Delete the UDP CT_SERVICE entries of ct4_any whose backend_id and
 * rev_nat_index are one of the sorted pairs. Keys are collected first and
 * deleted after the walk: deleting the key the walk stands on would restart
 * it from the beginning.
 */
static int ct_purge(int fd, const struct ct_pair *pairs, size_t n_pairs, uint64_t *deleted)
{
	struct ct4_key key, next, *del = NULL;
	size_t n_del = 0, cap = 0;
	struct ct4_entry e;
	void *prev = NULL;
	int err = 0;

	*deleted = 0;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (key.flags != CT_SERVICE || key.nexthdr != IPPROTO_UDP ||
		    bpf_map_lookup_elem(fd, &key, &e) ||
		    !ct_listed(pairs, n_pairs, e.backend_id, e.rev_nat_index))
			continue;
		if (n_del == cap) {
			size_t c = cap ? 2 * cap : 64;
			struct ct4_key *p = realloc(del, c * sizeof(*p));

			if (!p) {
				err = -ENOMEM;
				break;
			}
			del = p;
			cap = c;
		}
		del[n_del++] = key;
	}
	if (!err && errno != ENOENT)
		err = -errno;
	for (size_t i = 0; i < n_del; i++)
		*deleted += !bpf_map_delete_elem(fd, &del[i]);
	free(del);
	return err;
}

/* One batch, off the agent thread; the counters it moved go to *res. */
static void batch_run(struct lb_sock_term *t, const struct lb_sock_term_item *items, size_t n,
		      struct lb_sock_term_stats *res)
{
	__u64 tcp0 = t->destroyed ? t->destroyed[SOCK_TERM_TCP] : 0;
	__u64 udp0 = t->destroyed ? t->destroyed[SOCK_TERM_UDP] : 0;
	__u64 fail0 = t->failed ? t->failed[SOCK_TERM_TCP] + t->failed[SOCK_TERM_UDP] : 0;
	struct ct_pair *ids;
	size_t n_ids = 0;
	int err = 0;
	bool sockets = t->filter_fd >= 0 || t->rev_fd >= 0;
	struct batch b = {};

	memset(res, 0, sizeof(*res));
	for (size_t off = 0; sockets && off < n && !err; off += SOCK_TERM_MAX) {
		b.items = items + off;
		b.n = n - off < SOCK_TERM_MAX ? n - off : SOCK_TERM_MAX;
		err = sockets_destroy(t, &b, &res->netns);
	}
	res->destroyed_tcp = b.destroyed[SOCK_TERM_TCP];
	res->destroyed_udp = b.destroyed[SOCK_TERM_UDP];
	res->failed = b.failed;
	if (t->destroyed) {
		res->destroyed_tcp = t->destroyed[SOCK_TERM_TCP] - tcp0;
		res->destroyed_udp = t->destroyed[SOCK_TERM_UDP] - udp0;
		res->failed = t->failed[SOCK_TERM_TCP] + t->failed[SOCK_TERM_UDP] - fail0;
	}
	if (err)
		pr_warn("socket termination incomplete", "backends=%zu error=\"%s\"", n,
			strerror(-err));

	ids = t->ct_any_fd >= 0 ? malloc(n * sizeof(*ids)) : NULL;
	if (t->ct_any_fd >= 0 && !ids) {
		pr_warn("UDP conntrack purge skipped", "backends=%zu error=\"%s\"", n,
			strerror(ENOMEM));
		err = err ? err : -ENOMEM;
	}
	for (size_t i = 0; ids && i < n; i++) {
		if (items[i].proto == IPPROTO_UDP)
			ids[n_ids++] = (struct ct_pair){ .id = items[i].id,
							 .rev_nat = items[i].rev_nat };
	}
	if (n_ids) {
		int cerr;

		qsort(ids, n_ids, sizeof(*ids), pair_cmp);
		cerr = ct_purge(t->ct_any_fd, ids, n_ids, &res->ct_deleted);
		if (cerr)
			pr_warn("UDP conntrack purge incomplete", "backends=%zu error=\"%s\"",
				n_ids, strerror(-cerr));
		err = err ? err : cerr;
	}
	free(ids);
	res->last_err = err;
	pr_info("backends left frontends: flows terminated", "pairs=%zu netns=%llu "
		"tcp_sockets=%llu udp_sockets=%llu failed=%llu udp_ct_entries=%llu", n,
		(unsigned long long)res->netns, (unsigned long long)res->destroyed_tcp,
		(unsigned long long)res->destroyed_udp, (unsigned long long)res->failed,
		(unsigned long long)res->ct_deleted);
}

static void *worker(void *arg)
{
	struct lb_sock_term *t = arg;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct lb_sock_term_item *items;
		struct lb_sock_term_stats res;
		size_t n;

		while (!t->stop && !t->n_pending)
			pthread_cond_wait(&t->cond, &t->lock);
		if (t->stop)
			break;
		/* The first removal of a pass wakes the worker: let the rest of
		 * the pass (a node drained, a service deleted) join its batch,
		 * one iterator run per namespace for all of them. */
		pthread_mutex_unlock(&t->lock);
		usleep(SOCK_TERM_COALESCE_MS * 1000);
		pthread_mutex_lock(&t->lock);
		if (t->stop)
			break;
		items = t->pending;
		n = t->n_pending;
		t->pending = NULL;
		t->n_pending = t->cap_pending = 0;
		pthread_mutex_unlock(&t->lock);

		batch_run(t, items, n, &res);
		free(items);

		pthread_mutex_lock(&t->lock);
		t->stats.destroyed_tcp += res.destroyed_tcp;
		t->stats.destroyed_udp += res.destroyed_udp;
		t->stats.failed += res.failed;
		t->stats.ct_deleted += res.ct_deleted;
		t->stats.backends += n;
		t->stats.runs++;
		t->stats.netns = res.netns;
		t->stats.last_err = res.last_err;
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int lb_sock_term_start(struct lb_sock_term *t, const struct datapath *dp, bool sock_lb)
{
	int err = -ENOENT;	/* no socket LB object to take lb4_sock_rev from */

	memset(t, 0, sizeof(*t));
	t->filter_fd = t->rev_fd = t->ct_any_fd = -1;
	if (!sock_lb) {
		snprintf(t->stats.reason, sizeof(t->stats.reason), "socket LB disabled");
	} else if (dp->term) {
		t->filter_fd = bpf_map__fd(dp->term->maps.lb4_sock_term);
		t->link_fd[SOCK_TERM_TCP] = bpf_link__fd(dp->term_link[SOCK_TERM_TCP]);
		t->link_fd[SOCK_TERM_UDP] = bpf_link__fd(dp->term_link[SOCK_TERM_UDP]);
		t->destroyed = dp->term->bss->destroyed;
		t->failed = dp->term->bss->failed;
		t->stats.enabled = true;
		snprintf(t->stats.mode, sizeof(t->stats.mode), "bpf");
	} else if (dp->sock && !(err = sock_diag_probe())) {
		t->rev_fd = bpf_map__fd(dp->sock->maps.lb4_sock_rev);
		t->stats.enabled = true;
		snprintf(t->stats.mode, sizeof(t->stats.mode), "sock_diag");
		pr_info("socket LB termination over sock_diag", "reason=\"bpf_sock_destroy() "
			"unavailable: %s\"", strerror(-dp->term_err));
	} else {
		snprintf(t->stats.reason, sizeof(t->stats.reason),
			 "bpf_sock_destroy() unavailable: %s; sock_diag SOCK_DESTROY unavailable: %s",
			 strerror(-dp->term_err), strerror(-err));
		pr_warn("socket LB termination unavailable", "error=\"%s\"", t->stats.reason);
	}
	t->ct_any_fd = dp->ct4_any_fd;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	err = -pthread_create(&t->thread, NULL, worker, t);
	if (err) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		return err;
	}
	t->started = true;
	return 0;
}

void lb_sock_term_stop(struct lb_sock_term *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t->pending);
	t->pending = NULL;
	t->started = false;
}
