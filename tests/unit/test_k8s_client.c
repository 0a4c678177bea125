// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The client and informer state machine against a scripted HTTP server (a
 * forked child answering canned responses on 127.0.0.1): LIST, WATCH, a
 * malformed watch line (resume from the last good resourceVersion), an ERROR
 * 410 event (relist, with deletions); watch-list (the initial state streamed,
 * the annotated bookmark ending it, a stream cut before it, a server that
 * refuses it with 422); plus configuration errors, wakeup and the caller's
 * extra file descriptors; callers' own requests (a GET that fails over to the
 * next server, a PATCH with its body, a 422, a cancelled call). The full
 * protocol runs end to end in tests/e2e/test_k8s_client.py against the test
 * apiserver.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "k8s/client.h"

/* ---- the scripted server ---- */

struct script {
	const char *match;    /* substring of the request line */
	const char *response; /* whole HTTP response; the connection is closed after */
	bool hold;	      /* keep the connection open afterwards (a live watch) */
};

#define LIST1_BODY                                                                                 \
	"{\"kind\":\"ServiceList\",\"metadata\":{\"resourceVersion\":\"10\"},\"items\":["          \
	"{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\",\"resourceVersion\":\"5\"}},"           \
	"{\"metadata\":{\"name\":\"c\",\"namespace\":\"n\",\"resourceVersion\":\"6\"}}]}"
#define LIST2_BODY                                                                                 \
	"{\"kind\":\"ServiceList\",\"metadata\":{\"resourceVersion\":\"20\"},\"items\":["          \
	"{\"metadata\":{\"name\":\"b\",\"namespace\":\"n\",\"resourceVersion\":\"11\"}},"          \
	"{\"metadata\":{\"name\":\"c\",\"namespace\":\"n\",\"resourceVersion\":\"6\"}}]}"
#define HTTP_200 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
#define WATCH_LIST "GET /api/v1/services?watch=1&sendInitialEvents=true"
/* What a 1.33 apiserver (WatchList gate off) answers a watch-list. */
#define REFUSE_WATCH_LIST                                                                          \
	"HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json\r\n"                  \
	"Connection: close\r\n\r\n"                                                                \
	"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"          \
	"\"ListOptions.meta.k8s.io \\\"\\\" is invalid: sendInitialEvents: Forbidden: "             \
	"sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled\","  \
	"\"reason\":\"Invalid\",\"code\":422}"

/* A server without watch-list: each LIST falls back to pages. */
static const struct script paged_script[] = {
    {WATCH_LIST, REFUSE_WATCH_LIST, false},
    {"GET /api/v1/services?limit=2 ", HTTP_200 "\r\n" LIST1_BODY, false},
    /* A good event, then garbage: the watch must resume from rv 11. */
    {"resourceVersion=10",
     HTTP_200 "\r\n{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"b\","
	      "\"namespace\":\"n\",\"resourceVersion\":\"11\"}}}\n"
	      "this is not json\n",
     false},
    {"resourceVersion=11",
     HTTP_200 "\r\n{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
	      "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}\n",
     false},
    {WATCH_LIST, REFUSE_WATCH_LIST, false},
    {"GET /api/v1/services?limit=2 ", HTTP_200 "\r\n" LIST2_BODY, false},
    {"resourceVersion=20", HTTP_200 "\r\n", true},
};

#define EV(type, name, rv)                                                                         \
	"{\"type\":\"" type "\",\"object\":{\"metadata\":{\"name\":\"" name                          \
	"\",\"namespace\":\"n\",\"resourceVersion\":\"" rv "\"}}}\n"
#define END_BOOKMARK(rv)                                                                           \
	"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\",\"apiVersion\":\"v1\","             \
	"\"metadata\":{\"resourceVersion\":\"" rv "\",\"annotations\":"                               \
	"{\"k8s.io/initial-events-end\":\"true\"}}}}\n"

/* A server with watch-list. */
static const struct script streamed_script[] = {
    /* The state and its end; then the connection closes. */
    {WATCH_LIST "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
		"&timeoutSeconds=300 HTTP",
     HTTP_200 "\r\n" EV("ADDED", "a", "5") EV("ADDED", "c", "6") END_BOOKMARK("10"), false},
    /* Resumed at the bookmark's rv: a live change. */
    {"&resourceVersion=10 ", HTTP_200 "\r\n" EV("MODIFIED", "c", "12"), false},
    /* Resumed after the live change, and told it is too old. */
    {"resourceVersion=12",
     HTTP_200 "\r\n{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
	      "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}\n",
     false},
    /* The relist is cut before its end: nothing may be swept yet, and
     * the retry is by pages (client-go's fallback). */
    {WATCH_LIST, HTTP_200 "\r\n" EV("ADDED", "b", "11"), false},
    {"GET /api/v1/services?limit=2 ", HTTP_200 "\r\n" LIST2_BODY, false},
    {"resourceVersion=20", HTTP_200 "\r\n", true},
    /* (LIST2 holds c at rv 6: the list's c@6 replaces the watch's c@12.) */
};

static const struct script *script;
static size_t n_script;

struct server {
	pid_t pid;
	int port;
	int log_fd;	/* request lines, one per line, from the child */
	char log[8192]; /* what has been read of them */
	size_t len;
};

/* A request with a body (a call's PATCH): log its Content-Type and the body,
 * read whole first (closing on unread bytes would reset the connection). */
static void log_body(int fd, const char *req, size_t len, int log_fd)
{
	const char *hdr_end = strstr(req, "\r\n\r\n"), *cl = strcasestr(req, "\r\nContent-Length:");
	const char *ct = strcasestr(req, "\r\nContent-Type:");
	char body[4096];
	size_t want, have;

	if (!hdr_end || !cl || cl > hdr_end)
		return;
	want = strtoul(cl + 17, NULL, 10);
	have = len - (hdr_end + 4 - req);
	if (want >= sizeof(body) || have > want)
		return;
	memcpy(body, hdr_end + 4, have);
	while (have < want) {
		ssize_t n = read(fd, body + have, want - have);

		if (n <= 0)
			return;
		have += n;
	}
	body[have] = '\0';
	if (ct && ct < hdr_end)
		dprintf(log_fd, "%.*s\n", (int)strcspn(ct + 2, "\r"), ct + 2);
	dprintf(log_fd, "BODY %s\n", body);
}

static void serve(int lfd, int log_fd)
{
	size_t next = 0;
	int n_held = 0;

	for (;;) {
		char req[4096];
		size_t len = 0;
		ssize_t n;
		int fd = accept(lfd, NULL, NULL);
		char *eol;

		if (fd < 0)
			_exit(1);
		while (len < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
			n = read(fd, req + len, sizeof(req) - 1 - len);
			if (n <= 0)
				break;
			len += n;
			req[len] = '\0';
		}
		req[len] = '\0';
		log_body(fd, req, len, log_fd);
		eol = strstr(req, "\r\n");
		if (eol)
			*eol = '\0';
		dprintf(log_fd, "%s\n", req);
		/* /version whenever asked; the rest in the script's order. */
		if (strstr(req, "GET /version ")) {
			static const char v[] = HTTP_200 "\r\n{\"gitVersion\":\"v1.26.99\"}";

			if (write(fd, v, sizeof(v) - 1) < 0)
				_exit(1);
		} else if (next < n_script && strstr(req, script[next].match)) {
			const struct script *s = &script[next++];

			if (write(fd, s->response, strlen(s->response)) < 0)
				_exit(1);
			/* Leave a live watch open until we are killed. */
			if (s->hold && n_held++ < 8)
				continue;
		} else {
			static const char nf[] = "HTTP/1.1 500 Internal Server Error\r\n"
						 "Connection: close\r\nContent-Length: 8\r\n\r\n"
						 "unscript";
			if (write(fd, nf, sizeof(nf) - 1) < 0)
				_exit(1);
		}
		close(fd);
	}
}

static void server_start(struct server *s, const struct script *sc, size_t n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int lfd, p[2];

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(pipe(p), 0);
	memset(s, 0, sizeof(*s));
	s->port = ntohs(a.sin_port);
	script = sc;
	n_script = n;
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (!s->pid) {
		/* A failed assertion in the parent must not leave us behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		serve(lfd, p[1]);
		_exit(0);
	}
	close(p[1]);
	close(lfd);
	s->log_fd = p[0];
}

static void server_read_log(struct server *s)
{
	ssize_t n = read(s->log_fd, s->log + s->len, sizeof(s->log) - 1 - s->len);

	if (n > 0)
		s->len += n;
	s->log[s->len] = '\0';
}

static char *server_stop(struct server *s)
{
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	while (s->len < sizeof(s->log) - 1) {
		size_t before = s->len;

		server_read_log(s);
		if (s->len == before)
			break;
	}
	close(s->log_fd);
	return s->log;
}

/* Run the client until the server has seen a request containing what. The
 * log pipe rides along as one of run_once's extra fds. */
static void pump_until_request(struct k8s_client *c, struct server *s, const char *what)
{
	struct curl_waitfd extra = {.fd = s->log_fd, .events = CURL_WAIT_POLLIN};

	for (int i = 0; i < 500 && !strstr(s->log, what); i++) {
		extra.revents = 0;
		assert_int_equal(k8s_client_run_once(c, &extra, 1, 20), 0);
		if (extra.revents & CURL_WAIT_POLLIN)
			server_read_log(s);
	}
	if (!strstr(s->log, what))
		fail_msg("server never saw \"%s\"; log:\n%s", what, s->log);
}

/* ---- informer callbacks, recorded as text ---- */

struct record {
	char text[4096];
	size_t len;
	int synced;
};

static void rec(struct record *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rec(struct record *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r->len += vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
	va_end(ap);
}

static int on_upsert(void *ctx, const cJSON *obj)
{
	const cJSON *md = cJSON_GetObjectItem(obj, "metadata");

	rec(ctx, "U %s/%s@%s;", cJSON_GetObjectItem(md, "namespace")->valuestring,
	    cJSON_GetObjectItem(md, "name")->valuestring,
	    cJSON_GetObjectItem(md, "resourceVersion")->valuestring);
	return 0;
}

static int on_delete(void *ctx, const char *ns, const char *name)
{
	rec(ctx, "D %s/%s;", ns, name);
	return 0;
}

static void on_synced(void *ctx)
{
	struct record *r = ctx;

	r->synced++;
	rec(r, "S;");
}

static const struct k8s_informer_ops ops = {on_upsert, on_delete, on_synced};

static struct k8s_client *client_for(int port, struct k8s_client_config *cfg, char *url,
				     size_t urllen)
{
	char err[256];
	struct k8s_client *c;

	snprintf(url, urllen, "http://127.0.0.1:%d/", port);
	cfg->servers = &url;
	cfg->n_servers = 1;
	cfg->list_limit = 2;
	cfg->backoff_base_ms = 10;
	cfg->backoff_max_ms = 50;
	cfg->qps = 1000;
	cfg->burst = 1000;
	c = k8s_client_new(cfg, err, sizeof(err));
	if (!c)
		fail_msg("k8s_client_new: %s", err);
	return c;
}

static void run_until(struct k8s_client *c, struct record *r, int synced, int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		assert_int_equal(k8s_client_run_once(c, NULL, 0, 20), 0);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (r->synced < synced &&
		 (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static void test_list_watch_malformed_410_relist(void **state)
{
	struct k8s_client_config cfg = {};
	struct k8s_informer_status st;
	struct k8s_informer *inf, *all[4];
	struct record r = {};
	struct server srv;
	struct k8s_client *c;
	char url[64], *log;

	(void)state;
	server_start(&srv, paged_script, sizeof(paged_script) / sizeof(paged_script[0]));
	c = client_for(srv.port, &cfg, url, sizeof(url));
	inf = k8s_informer_add(c, "services", "/api/v1/services", NULL, &ops, &r);
	assert_non_null(inf);
	assert_int_equal(k8s_client_informers(c, all, 4), 1);
	assert_ptr_equal(all[0], inf);
	k8s_informer_status(inf, &st);
	assert_int_equal(st.state, K8S_INF_LISTING);
	assert_false(st.synced);
	assert_string_equal(st.name, "services");
	assert_string_equal(st.path, "/api/v1/services");

	run_until(c, &r, 2, 5000);
	pump_until_request(c, &srv, "&resourceVersion=20 ");

	/* Listed a and c; the watch added b, then broke; resumed at b's rv and
	 * got a 410; the relist found a gone and b, c unchanged. */
	assert_string_equal(r.text, "U n/a@5;U n/c@6;S;U n/b@11;D n/a;S;");
	k8s_informer_status(inf, &st);
	assert_int_equal(st.state, K8S_INF_WATCHING);
	assert_true(st.synced);
	assert_int_equal(st.objects, 2);
	assert_int_equal(st.lists, 2);
	assert_false(st.list_streamed);
	assert_int_equal(st.events, 2); /* ADDED and the ERROR; not the garbage */
	assert_int_equal(st.errors, 1); /* the garbage line */
	assert_string_equal(st.resource_version, "20");
	assert_string_equal(st.last_error, "");
	assert_true(st.last_event > 0);
	assert_string_equal(k8s_client_version(c), "v1.26.99");
	assert_true(k8s_client_connected(c));
	/* The trailing '/' is dropped: paths are appended. */
	assert_int_equal(strlen(k8s_client_server(c)), strlen(url) - 1);
	assert_memory_equal(k8s_client_server(c), url, strlen(url) - 1);

	k8s_client_free(c);
	log = server_stop(&srv);
	/* Pages of 2, bookmarks asked for, resumed from the last good rv. */
	assert_non_null(strstr(log, "GET /api/v1/services?limit=2 HTTP/1.1\n"));
	assert_non_null(strstr(log, "GET /api/v1/services?watch=1&allowWatchBookmarks=true"
				    "&timeoutSeconds=300&resourceVersion=10 "));
	assert_non_null(strstr(log, "&resourceVersion=11 "));
	assert_non_null(strstr(log, "&resourceVersion=20 "));
	assert_null(strstr(log, "unscript"));
}

static void test_watch_list(void **state)
{
	struct k8s_client_config cfg = {};
	struct k8s_informer_status st;
	struct k8s_informer *inf;
	struct record r = {};
	struct server srv;
	struct k8s_client *c;
	char url[64], *log;

	(void)state;
	server_start(&srv, streamed_script, sizeof(streamed_script) / sizeof(streamed_script[0]));
	c = client_for(srv.port, &cfg, url, sizeof(url));
	inf = k8s_informer_add(c, "services", "/api/v1/services", NULL, &ops, &r);
	assert_non_null(inf);
	/* Listed a and c, synced at the bookmark, resumed at the bookmark's
	 * rv (not that of any object in the list), then c changed. */
	pump_until_request(c, &srv, "&resourceVersion=12 ");
	assert_memory_equal(r.text, "U n/a@5;U n/c@6;S;U n/c@12;", 26);

	/* After the 410 the cut relist brought b but no sync and no sweep;
	 * the paged one found a gone. */
	run_until(c, &r, 2, 5000);
	assert_string_equal(r.text, "U n/a@5;U n/c@6;S;U n/c@12;U n/b@11;U n/c@6;D n/a;S;");
	k8s_informer_status(inf, &st);
	assert_int_equal(st.state, K8S_INF_WATCHING);
	assert_int_equal(st.objects, 2);
	assert_int_equal(st.lists, 2);
	assert_false(st.list_streamed);
	assert_string_equal(st.resource_version, "20");
	assert_int_equal(st.errors, 1); /* the cut relist */
	assert_string_equal(st.last_error, "");

	k8s_client_free(c);
	log = server_stop(&srv);
	assert_non_null(strstr(log, "sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
				    "&allowWatchBookmarks=true&timeoutSeconds=300 HTTP/1.1\n"));
	assert_null(strstr(log, "unscript"));
}

static void test_watch_list_off(void **state)
{
	struct k8s_client_config cfg = {.no_watch_list = true};
	struct record r = {};
	struct server srv;
	struct k8s_client *c;
	char url[64], *log;

	(void)state;
	/* Without the refusals: a client told not to ask never does. */
	server_start(&srv, paged_script + 1, 3);
	c = client_for(srv.port, &cfg, url, sizeof(url));
	assert_non_null(k8s_informer_add(c, "services", "/api/v1/services", NULL, &ops, &r));
	run_until(c, &r, 1, 5000);
	pump_until_request(c, &srv, "&resourceVersion=11 ");
	assert_string_equal(r.text, "U n/a@5;U n/c@6;S;U n/b@11;");
	k8s_client_free(c);
	log = server_stop(&srv);
	assert_null(strstr(log, "sendInitialEvents"));
}

static volatile sig_atomic_t alarm_fired;
static struct k8s_client *alarm_client;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
	k8s_client_wakeup(alarm_client);
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_wakeup_and_extra_fds(void **state)
{
	struct k8s_client_config cfg = {};
	struct itimerval it = {.it_value = {.tv_usec = 100000}};
	struct curl_waitfd extra;
	struct timespec t0;
	struct k8s_client *c;
	char url[64];
	int p[2];

	(void)state;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int refuse;

	/* No informers: nothing but our own wakeups and fds. A port bound but
	 * not listening refuses: /version fails and backs off quietly. */
	refuse = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(refuse, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(refuse, (struct sockaddr *)&a, &alen), 0);
	c = client_for(ntohs(a.sin_port), &cfg, url, sizeof(url));
	alarm_client = c;
	signal(SIGALRM, on_alarm);
	/* Let the /version attempt fail first, so the poll below is idle. */
	for (int i = 0; i < 10; i++)
		k8s_client_run_once(c, NULL, 0, 10);
	assert_false(k8s_client_connected(c));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	setitimer(ITIMER_REAL, &it, NULL);
	while (!alarm_fired)
		assert_int_equal(k8s_client_run_once(c, NULL, 0, 5000), 0);
	assert_true(elapsed_ms(&t0) < 2000);

	/* A readable extra fd ends the wait and is reported. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	extra = (struct curl_waitfd){.fd = p[0], .events = CURL_WAIT_POLLIN};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(k8s_client_run_once(c, &extra, 1, 5000), 0);
	assert_true(elapsed_ms(&t0) < 2000);
	assert_true(extra.revents & CURL_WAIT_POLLIN);
	close(p[0]);
	close(p[1]);
	signal(SIGALRM, SIG_DFL);
	k8s_client_free(c);
	close(refuse);
}

static void test_config_errors(void **state)
{
	char *bad_url = "ftp://x", *ok = "https://127.0.0.1:6443";
	struct k8s_client_config cfg = {};
	struct k8s_client *c;
	char err[256];

	(void)state;
	assert_null(k8s_client_new(&cfg, err, sizeof(err)));
	assert_string_equal(err, "no apiserver URL configured");

	cfg.servers = &bad_url;
	cfg.n_servers = 1;
	assert_null(k8s_client_new(&cfg, err, sizeof(err)));
	assert_string_equal(err, "server 0: 'ftp://x' is not an http(s):// URL");

	cfg.servers = &ok;
	cfg.token = "abc\r\nX-Injected: 1";
	assert_null(k8s_client_new(&cfg, err, sizeof(err)));
	assert_string_equal(err, "token: line break inside");

	cfg.token = NULL;
	cfg.token_file = "/nonexistent/token";
	assert_null(k8s_client_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "token file /nonexistent/token: No such file"));

	/* A valid config, with TLS material given as data: accepted. */
	cfg.token_file = NULL;
	cfg.token = "t";
	cfg.ca_data = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
	cfg.insecure = true;
	{
		/* insecure is logged loudly, and once, however many clients. */
		char *logbuf = NULL;
		size_t loglen = 0;
		FILE *mem = open_memstream(&logbuf, &loglen);
		enum log_level level = log_get_level();
		struct k8s_client *c2;

		log_set_level(LOG_LEVEL_WARN);
		log_set_stream(mem);
		c = k8s_client_new(&cfg, err, sizeof(err));
		c2 = k8s_client_new(&cfg, err, sizeof(err));
		log_set_stream(NULL);
		log_set_level(level);
		fclose(mem);
		assert_non_null(c2);
		k8s_client_free(c2);
		assert_non_null(
		    strstr(logbuf, "level=warning msg=\"k8s TLS verification disabled\""));
		assert_null(strstr(strstr(logbuf, "TLS verification disabled") + 1,
				   "TLS verification disabled"));
		free(logbuf);
	}
	assert_non_null(c);
	/* Informer arguments are checked. */
	assert_null(k8s_informer_add(c, "x", "api/v1/services", NULL, &ops, NULL));
	assert_null(k8s_informer_add(c, "x", "/api/v1/services", NULL, NULL, NULL));
	assert_non_null(k8s_informer_add(c, "x", "/api/v1/services", "app=web", &ops, NULL));
	assert_string_equal(k8s_client_version(c), "");
	assert_false(k8s_client_connected(c));
	assert_string_equal(k8s_informer_state_name(K8S_INF_BACKOFF), "backoff");
	k8s_client_free(c);
	k8s_client_free(NULL);
}

/* ---- callers' own requests (k8s_call_start) ---- */

#define NODE_BODY "{\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\",\"resourceVersion\":\"7\"}}"
#define PATCH_BODY "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"6\"}]"

static const struct script call_script[] = {
    {"GET /api/v1/nodes/n1 ", HTTP_200 "\r\n" NODE_BODY, false},
    {"PATCH /api/v1/nodes/n1 ",
     "HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json\r\n"
     "Connection: close\r\n\r\n"
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
     "\"testing value /metadata/resourceVersion failed\",\"reason\":\"Invalid\",\"code\":422}",
     false},
    {"PATCH /api/v1/nodes/n1 ", HTTP_200 "\r\n" NODE_BODY, false},
};

struct call_record {
	int done;
	long status;
	char body[256];
	char error[320];
};

static void on_call_done(void *ctx, const struct k8s_call_result *res)
{
	struct call_record *r = ctx;

	r->done++;
	r->status = res->status;
	snprintf(r->body, sizeof(r->body), "%s", res->body);
	snprintf(r->error, sizeof(r->error), "%s", res->error);
}

static void run_until_done(struct k8s_client *c, struct call_record *r)
{
	for (int i = 0; i < 500 && !r->done; i++)
		assert_int_equal(k8s_client_run_once(c, NULL, 0, 20), 0);
	assert_int_equal(r->done, 1);
}

/* A port bound but not listening: connections to it are refused. */
static int refusing_port(int *fd)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &alen), 0);
	return ntohs(a.sin_port);
}

static void test_calls(void **state)
{
	struct k8s_client_config cfg = {.qps = 1000, .burst = 1000, .backoff_base_ms = 10,
					.backoff_max_ms = 50};
	struct call_record get = {}, patch = {}, patch2 = {}, cancelled = {};
	char dead[64], live[64], *urls[2] = {dead, live}, err[256], *log;
	struct k8s_client *c;
	struct server s;
	int refuse_fd;

	(void)state;
	server_start(&s, call_script, sizeof(call_script) / sizeof(call_script[0]));
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", refusing_port(&refuse_fd));
	snprintf(live, sizeof(live), "http://127.0.0.1:%d", s.port);
	cfg.servers = urls;
	cfg.n_servers = 2;
	c = k8s_client_new(&cfg, err, sizeof(err));
	assert_non_null(c);

	/* A cancelled call is never sent, and its callback never runs. */
	k8s_call_cancel(c, k8s_call_start(c, "DELETE", "/api/v1/nodes/n1", NULL, NULL, 0,
					  on_call_done, &cancelled));
	/* The first server refuses: the GET goes on to the second. */
	assert_non_null(k8s_call_start(c, "GET", "/api/v1/nodes/n1", NULL, NULL, 0, on_call_done,
				       &get));
	run_until_done(c, &get);
	assert_int_equal(get.status, 200);
	assert_string_equal(get.body, NODE_BODY);
	assert_string_equal(get.error, "");
	assert_string_equal(k8s_client_server(c), live);

	/* A PATCH: method, content type and body as given; a 422's message. */
	assert_non_null(k8s_call_start(c, "PATCH", "/api/v1/nodes/n1",
				       "application/json-patch+json", PATCH_BODY,
				       strlen(PATCH_BODY), on_call_done, &patch));
	run_until_done(c, &patch);
	assert_int_equal(patch.status, 422);
	assert_string_equal(patch.error,
			    "HTTP 422: testing value /metadata/resourceVersion failed");
	assert_non_null(strstr(patch.body, "\"code\":422"));
	assert_int_equal(cancelled.done, 0);
	k8s_client_free(c);

	/* A write that no server answers is the caller's to repeat: handed
	 * back with status 0, and the client has moved to the next server. */
	urls[0] = dead;
	c = k8s_client_new(&cfg, err, sizeof(err));
	assert_non_null(c);
	memset(&patch, 0, sizeof(patch));
	assert_non_null(k8s_call_start(c, "PATCH", "/api/v1/nodes/n1",
				       "application/json-patch+json", PATCH_BODY,
				       strlen(PATCH_BODY), on_call_done, &patch));
	run_until_done(c, &patch);
	assert_int_equal(patch.status, 0);
	assert_non_null(strstr(patch.error, dead));
	assert_string_equal(k8s_client_server(c), live);
	assert_non_null(k8s_call_start(c, "PATCH", "/api/v1/nodes/n1",
				       "application/json-patch+json", PATCH_BODY,
				       strlen(PATCH_BODY), on_call_done, &patch2));
	run_until_done(c, &patch2);
	assert_int_equal(patch2.status, 200);
	k8s_client_free(c);

	log = server_stop(&s);
	assert_null(strstr(log, "DELETE"));
	assert_non_null(strstr(log, "GET /api/v1/nodes/n1 HTTP/1.1\n"));
	assert_non_null(strstr(log, "PATCH /api/v1/nodes/n1 HTTP/1.1\n"));
	assert_non_null(strstr(log, "Content-Type: application/json-patch+json\n"));
	assert_non_null(strstr(log, "BODY " PATCH_BODY "\n"));
	close(refuse_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list_watch_malformed_410_relist),
	    cmocka_unit_test(test_watch_list),
	    cmocka_unit_test(test_watch_list_off),
	    cmocka_unit_test(test_wakeup_and_extra_fds),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_calls),
	};

	/* The client logs every failure; the test output stays readable without. */
	if (!getenv("AXON_TEST_VERBOSE"))
		log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests_name("k8s_client", tests, NULL, NULL);
}
