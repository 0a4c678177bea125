// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The client: one CURLM that carries every informer's LIST and WATCH (HTTP/2
 * multiplexed when the server speaks it), the choice of server, the bearer
 * token, the shared rate limit, and GET /version.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "k8s/internal.h"
#include "k8s/json.h"

#define TOKEN_MAX (64u << 10)
/* When run_once is asked to wait forever, still look at timers this often. */
#define IDLE_WAIT_MS 60000

uint64_t k8s_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t k8s_client_pace(struct k8s_client *c)
{
	return k8s_bucket_take(&c->bucket, k8s_now_ms());
}

uint32_t k8s_client_rand(struct k8s_client *c)
{
	return k8s_rand_next(&c->rnd);
}

/*
 * Read a token file: at most TOKEN_MAX bytes, surrounding whitespace
 * trimmed, and nothing that could end a header line inside.
 */
static int read_token(const char *path, char **out, struct stat *st, char *err, size_t errlen)
{
	char *buf = NULL;
	ssize_t n;
	size_t len = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st)) {
		ret = -errno;
		snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
		goto cleanup;
	}
	buf = malloc(TOKEN_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	while (len <= TOKEN_MAX) {
		n = read(fd, buf + len, TOKEN_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
			goto cleanup;
		}
		if (!n)
			break;
		len += n;
	}
	if (len > TOKEN_MAX) {
		ret = -EFBIG;
		snprintf(err, errlen, "token file %s: larger than 64 KiB", path);
		goto cleanup;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
		       buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7f) {
			ret = -EINVAL;
			snprintf(err, errlen, "token file %s: whitespace or control byte inside",
				 path);
			goto cleanup;
		}
	}
	if (!len) {
		ret = -EINVAL;
		snprintf(err, errlen, "token file %s: empty", path);
		goto cleanup;
	}
	*out = buf;
	buf = NULL;
	ret = 0;
cleanup:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}

static void remember_token_file(struct k8s_client *c, const struct stat *st)
{
	c->token_mtime = st->st_mtim;
	c->token_dev = st->st_dev;
	c->token_ino = st->st_ino;
	c->token_size = st->st_size;
}

void k8s_client_refresh_token(struct k8s_client *c)
{
	char err[256];
	struct stat st;
	char *tok;

	if (!c->cfg.token_file || stat(c->cfg.token_file, &st))
		return;
	/* Kubelet rotates projected tokens by swapping a symlink: inode and
	 * mtime both change. Reading only on change keeps this cheap. */
	if (st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == c->token_mtime.tv_nsec && st.st_ino == c->token_ino &&
	    st.st_dev == c->token_dev && st.st_size == c->token_size)
		return;
	if (read_token(c->cfg.token_file, &tok, &st, err, sizeof(err))) {
		/* Remember the bad version so we warn once, not per request;
		 * the old token stays in use. */
		remember_token_file(c, &st);
		pr_warn("k8s token reload failed", "error=\"%s\"", err);
		return;
	}
	remember_token_file(c, &st);
	if (c->token && !strcmp(c->token, tok)) {
		free(tok);
		return;
	}
	free(c->token);
	c->token = tok;
	pr_info("k8s token reloaded", "file=%s", c->cfg.token_file);
}

void k8s_client_note_answer(struct k8s_client *c, const struct k8s_req *r)
{
	/* An answer from a server we already moved away from says nothing
	 * about the one in use. */
	if (r->server != c->server)
		return;
	c->connected = true;
	c->servers_failed = 0;
}

bool k8s_client_note_result(struct k8s_client *c, const struct k8s_req *r)
{
	size_t n = c->cfg.n_servers;

	if (r->status) {
		k8s_client_note_answer(c, r);
		return false;
	}
	/* We cut the transfer ourselves: says nothing about the server. */
	if (r->abort != K8S_ABORT_NONE)
		return false;
	/* Another request already moved us off that server. */
	if (r->server != c->server)
		return c->servers_failed < n;
	c->connected = false;
	c->servers_failed++;
	if (n > 1) {
		c->server = (c->server + 1) % n;
		pr_warn("k8s apiserver unreachable", "server=%s next=%s error=\"%s\"",
			c->cfg.servers[r->server], c->cfg.servers[c->server], r->errbuf);
	}
	return c->servers_failed < n;
}

static void version_start(struct k8s_client *c, uint64_t now)
{
	uint64_t wait;

	if (c->version[0] || c->version_req || now < c->version_due)
		return;
	wait = k8s_client_pace(c);
	if (wait) {
		c->version_due = now + wait;
		return;
	}
	c->version_req = k8s_req_start(c, NULL, K8S_REQ_VERSION, "/version");
	if (!c->version_req)
		c->version_due = now + c->cfg.backoff_base_ms;
}

static void version_done(struct k8s_client *c, struct k8s_req *r, CURLcode res)
{
	const cJSON *gv = NULL;
	cJSON *root = NULL;

	c->version_req = NULL;
	k8s_client_note_result(c, r);
	if (res == CURLE_OK && r->status == 200 && r->body) {
		root = cJSON_ParseWithLength(r->body, r->len);
		gv = cJSON_GetObjectItemCaseSensitive(root, "gitVersion");
	}
	if (cJSON_IsString(gv) && gv->valuestring[0]) {
		k8s_json_quote(c->version, sizeof(c->version), gv->valuestring);
		pr_info("k8s apiserver connected", "server=%s version=%s",
			c->cfg.servers[r->server], c->version);
	} else {
		char err[256];

		k8s_req_describe_error(r, res, err, sizeof(err));
		c->version_attempts++;
		c->version_due =
		    k8s_now_ms() + k8s_backoff_ms(c->version_attempts, c->cfg.backoff_base_ms,
						  c->cfg.backoff_max_ms, k8s_client_rand(c), 0);
		pr_debug("k8s version request failed", "error=\"%s\"", err);
	}
	cJSON_Delete(root);
	k8s_req_free(r);
}

static void start_due(struct k8s_client *c)
{
	uint64_t now = k8s_now_ms();

	version_start(c, now);
	for (struct k8s_informer *inf = c->informers; inf; inf = inf->next)
		k8s_informer_start_due(inf, now);
	k8s_calls_start_due(c, now);
}

/* Milliseconds until the next timer of ours (a backoff or a paced start). */
static int next_timer(struct k8s_client *c, int limit)
{
	uint64_t now = k8s_now_ms(), next = UINT64_MAX;

	if (!c->version[0] && !c->version_req)
		next = c->version_due;
	for (struct k8s_informer *inf = c->informers; inf; inf = inf->next) {
		if (!inf->req && inf->due_ms < next)
			next = inf->due_ms;
	}
	if (k8s_calls_next_due(c) < next)
		next = k8s_calls_next_due(c);
	if (next == UINT64_MAX)
		return limit;
	if (next <= now)
		return 0;
	return next - now < (uint64_t)limit ? (int)(next - now) : limit;
}

static void collect_done(struct k8s_client *c)
{
	struct CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct k8s_req *r = NULL;
		CURLcode res;

		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg is gone once the handle leaves the multi: copy first. */
		res = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_multi_remove_handle(c->multi, r->easy);
		if (!r->status)
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
		if (r->inf)
			k8s_informer_done(r->inf, r, res);
		else if (r->call)
			k8s_call_done(c, r, res);
		else
			version_done(c, r, res);
	}
}

int k8s_client_run_once(struct k8s_client *c, struct curl_waitfd *extra, unsigned int n_extra,
			int timeout_ms)
{
	int running, wait;
	CURLMcode mc;

	start_due(c);
	wait = next_timer(c, timeout_ms < 0 ? IDLE_WAIT_MS : timeout_ms);
	mc = curl_multi_poll(c->multi, extra, n_extra, wait, NULL);
	if (mc != CURLM_OK) {
		pr_err("k8s poll failed", "error=\"%s\"", curl_multi_strerror(mc));
		return -EIO;
	}
	mc = curl_multi_perform(c->multi, &running);
	if (mc != CURLM_OK) {
		pr_err("k8s transfer failed", "error=\"%s\"", curl_multi_strerror(mc));
		return -EIO;
	}
	collect_done(c);
	start_due(c);
	return 0;
}

void k8s_client_wakeup(struct k8s_client *c)
{
	curl_multi_wakeup(c->multi);
}

int k8s_url_check(const char *url, char *err, size_t errlen)
{
	CURLU *u;
	CURLUcode rc;
	char *host = NULL;

	if (!url || (strncmp(url, "https://", 8) && strncmp(url, "http://", 7))) {
		snprintf(err, errlen, "'%.200s' is not an http(s):// URL", url ? url : "");
		return -EINVAL;
	}
	u = curl_url();
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* The same parser that will take the URL apart for every request. */
	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (rc == CURLUE_OK && !*host)
		rc = CURLUE_NO_HOST;
	curl_free(host);
	curl_url_cleanup(u);
	if (rc != CURLUE_OK) {
		snprintf(err, errlen, "'%.200s' is not a valid URL: %s", url, curl_url_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

static int check_config(const struct k8s_client_config *cfg, char *err, size_t errlen)
{
	char why[320];

	if (!cfg->n_servers || !cfg->servers) {
		snprintf(err, errlen, "no apiserver URL configured");
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->n_servers; i++) {
		if (k8s_url_check(cfg->servers[i], why, sizeof(why))) {
			snprintf(err, errlen, "server %zu: %s", i, why);
			return -EINVAL;
		}
	}
	if (cfg->token && strpbrk(cfg->token, "\r\n")) {
		snprintf(err, errlen, "token: line break inside");
		return -EINVAL;
	}
	return 0;
}

struct k8s_client *k8s_client_new(const struct k8s_client_config *cfg, char *err, size_t errlen)
{
	static bool insecure_warned;
	struct k8s_client *c;
	struct stat st;

	if (check_config(cfg, err, errlen))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c || k8s_config_copy(&c->cfg, cfg)) {
		snprintf(err, errlen, "out of memory");
		free(c);
		return NULL;
	}
	k8s_config_defaults(&c->cfg);
	c->n_configured = c->cfg.n_servers;
	c->tail = &c->informers;
	for (size_t i = 0; i < c->cfg.n_servers; i++) {
		size_t n = strlen(c->cfg.servers[i]);

		/* We append absolute paths. */
		while (n > 8 && c->cfg.servers[i][n - 1] == '/')
			c->cfg.servers[i][--n] = '\0';
	}
	if (c->cfg.token_file) {
		if (read_token(c->cfg.token_file, &c->token, &st, err, errlen))
			goto fail;
		remember_token_file(c, &st);
	} else if (c->cfg.token) {
		c->token = strdup(c->cfg.token);
		if (!c->token) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	if (c->cfg.insecure && !insecure_warned) {
		insecure_warned = true;
		pr_warn("k8s TLS verification disabled",
			"server=%s risk=\"anyone on the path can impersonate the apiserver\"",
			c->cfg.servers[0]);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c->multi = curl_multi_init();
	if (!c->multi) {
		snprintf(err, errlen, "curl_multi_init failed");
		curl_global_cleanup();
		goto fail;
	}
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	k8s_bucket_init(&c->bucket, c->cfg.qps, c->cfg.burst, k8s_now_ms());
	c->rnd = (uint32_t)k8s_now_ms() ^ ((uint32_t)getpid() << 16) ^ (uint32_t)(uintptr_t)c;
	return c;
fail:
	free(c->token);
	k8s_config_free(&c->cfg);
	free(c);
	return NULL;
}

void k8s_client_free(struct k8s_client *c)
{
	struct k8s_informer *inf, *next;

	if (!c)
		return;
	for (inf = c->informers; inf; inf = next) {
		next = inf->next;
		k8s_informer_free(inf);
	}
	k8s_calls_free(c);
	k8s_req_free(c->version_req);
	curl_multi_cleanup(c->multi);
	curl_global_cleanup();
	free(c->token);
	k8s_config_free(&c->cfg);
	free(c);
}

size_t k8s_client_informers(const struct k8s_client *c, struct k8s_informer **out, size_t max)
{
	size_t i = 0;

	for (struct k8s_informer *inf = c->informers; inf; inf = inf->next, i++) {
		if (i < max)
			out[i] = inf;
	}
	return i;
}

const char *k8s_client_server(const struct k8s_client *c)
{
	return c->cfg.servers[c->server];
}

int k8s_client_prefer_server(struct k8s_client *c, const char *url)
{
	size_t n = c->n_configured, len;
	char **servers, *u;

	if (!url || (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)))
		return -EINVAL;
	if (c->cfg.n_servers > n && !strcmp(c->cfg.servers[n], url))
		return 0;
	u = strdup(url);
	if (!u)
		return -ENOMEM;
	len = strlen(u);
	while (len > 8 && u[len - 1] == '/')
		u[--len] = '\0';
	if (c->cfg.n_servers == n) {
		servers = realloc(c->cfg.servers, (n + 1) * sizeof(*servers));
		if (!servers) {
			free(u);
			return -ENOMEM;
		}
		c->cfg.servers = servers;
		c->cfg.n_servers = n + 1;
	} else {
		/* Requests in flight name servers by index: the slot stays. */
		free(c->cfg.servers[n]);
	}
	c->cfg.servers[n] = u;
	pr_info("k8s apiserver preferred", "server=%s previous=%s", u, c->cfg.servers[c->server]);
	c->server = n;
	c->servers_failed = 0;
	return 0;
}

const char *const *k8s_client_servers(const struct k8s_client *c, size_t *n_servers)
{
	*n_servers = c->cfg.n_servers;
	return (const char *const *)c->cfg.servers;
}

const char *k8s_client_version(const struct k8s_client *c)
{
	return c->version;
}

bool k8s_client_connected(const struct k8s_client *c)
{
	return c->connected;
}
