// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The watch-stream splitter and event decoder: the recorded stream cut at
 * every byte, fed a byte at a time and all at once; bookmarks, the 410 ERROR
 * event, oversize events and garbage lines.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "k8s/stream.h"
#include "k8s_fixtures.h"

struct collect {
	int n;
	int bad;
	enum k8s_event_type types[16];
	char rvs[16][32];
	char last_err[256];
	int stop_after; /* return -ECANCELED after this many lines (0 = never) */
};

static int on_line(void *ctx, const char *line, size_t len)
{
	struct collect *c = ctx;
	struct k8s_event ev;

	if (k8s_event_decode(line, len, &ev, c->last_err, sizeof(c->last_err))) {
		c->bad++;
		return 0;
	}
	if (c->n < 16) {
		c->types[c->n] = ev.type;
		snprintf(c->rvs[c->n], sizeof(c->rvs[0]), "%s",
			 ev.type == K8S_EV_ERROR ? "" : ev.resource_version);
	}
	c->n++;
	k8s_event_free(&ev);
	if (c->stop_after && c->n == c->stop_after)
		return -ECANCELED;
	return 0;
}

static void check_recorded(const struct collect *c)
{
	static const enum k8s_event_type want[] = {K8S_EV_ADDED, K8S_EV_MODIFIED, K8S_EV_DELETED,
						   K8S_EV_BOOKMARK, K8S_EV_BOOKMARK};
	static const char *const rvs[] = {"256", "257", "258", "258", "258"};

	assert_int_equal(c->bad, 0);
	assert_int_equal(c->n, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(c->types[i], want[i]);
		assert_string_equal(c->rvs[i], rvs[i]);
	}
}

static void test_split_at_every_byte(void **state)
{
	size_t len = 0;
	char *text = fixture_read("services-watch.jsonl", &len);
	struct k8s_stream s;

	(void)state;
	assert_non_null(text);
	k8s_stream_init(&s, 0);
	for (size_t cut = 0; cut <= len; cut++) {
		struct collect c = {};

		assert_int_equal(k8s_stream_feed(&s, text, cut, on_line, &c), 0);
		assert_int_equal(k8s_stream_feed(&s, text + cut, len - cut, on_line, &c), 0);
		check_recorded(&c);
		assert_int_equal(k8s_stream_pending(&s), 0);
	}
	k8s_stream_free(&s);
	free(text);
}

static void test_byte_at_a_time_and_whole(void **state)
{
	size_t len = 0;
	char *text = fixture_read("services-watch.jsonl", &len);
	struct collect c = {};
	struct k8s_stream s;

	(void)state;
	assert_non_null(text);
	k8s_stream_init(&s, 0);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(k8s_stream_feed(&s, text + i, 1, on_line, &c), 0);
	check_recorded(&c);

	/* All five events in one buffer. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(k8s_stream_feed(&s, text, len, on_line, &c), 0);
	check_recorded(&c);

	/* Three cuts: the middle fragment spans several events. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(k8s_stream_feed(&s, text, 17, on_line, &c), 0);
	assert_int_equal(k8s_stream_feed(&s, text + 17, len - 40, on_line, &c), 0);
	assert_int_equal(k8s_stream_feed(&s, text + len - 23, 23, on_line, &c), 0);
	check_recorded(&c);
	k8s_stream_free(&s);
	free(text);
}

static void test_error_410_event(void **state)
{
	char *text = fixture_read("services-watch-too-old.jsonl", NULL);
	struct k8s_event ev;
	char err[256];
	char *nl;

	(void)state;
	assert_non_null(text);
	nl = strchr(text, '\n');
	assert_non_null(nl);
	assert_int_equal(k8s_event_decode(text, nl - text, &ev, err, sizeof(err)), 0);
	assert_int_equal(ev.type, K8S_EV_ERROR);
	assert_int_equal(ev.code, 410);
	assert_string_equal(ev.reason, "Expired");
	assert_string_equal(ev.message, "too old resource version: 1 (230)");
	k8s_event_free(&ev);
	free(text);
}

static void test_bookmark(void **state)
{
	static const char bm[] =
	    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\","
	    "\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"12345\"}}}";
	struct k8s_event ev;
	char err[256];

	(void)state;
	assert_int_equal(k8s_event_decode(bm, strlen(bm), &ev, err, sizeof(err)), 0);
	assert_int_equal(ev.type, K8S_EV_BOOKMARK);
	assert_string_equal(ev.resource_version, "12345");
	assert_string_equal(k8s_event_type_name(ev.type), "BOOKMARK");
	assert_false(ev.initial_events_end);
	k8s_event_free(&ev);
}

/* The bookmark that ends a watch-list's initial state (KEP-3157). */
static void test_initial_events_end(void **state)
{
	static const struct {
		const char *annotations;
		bool end;
	} cases[] = {
	    {"{\"k8s.io/initial-events-end\":\"true\"}", true},
	    {"{\"k8s.io/initial-events-end\":\"false\"}", false},
	    {"{\"other\":\"true\"}", false},
	    {"{}", false},
	};
	struct k8s_event ev;
	char line[512], err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(line, sizeof(line),
			 "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\",\"apiVersion\":"
			 "\"v1\",\"metadata\":{\"resourceVersion\":\"77\",\"annotations\":%s}}}",
			 cases[i].annotations);
		assert_int_equal(k8s_event_decode(line, strlen(line), &ev, err, sizeof(err)), 0);
		assert_int_equal(ev.initial_events_end, cases[i].end);
		assert_string_equal(ev.resource_version, "77");
		k8s_event_free(&ev);
	}
}

static void test_oversize_event(void **state)
{
	char line[300];
	struct collect c = {};
	struct k8s_stream s;

	(void)state;
	k8s_stream_init(&s, 100);
	/* Exactly at the cap is fine. */
	memset(line, ' ', sizeof(line));
	{
		static const char ev[] =
		    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}";

		memcpy(line, ev, sizeof(ev) - 1);
	}
	line[100] = '\n';
	assert_int_equal(k8s_stream_feed(&s, line, 101, on_line, &c), 0);
	assert_int_equal(c.n, 1);
	/* One byte over, in one fragment... */
	line[100] = ' ';
	line[101] = '\n';
	assert_int_equal(k8s_stream_feed(&s, line, 102, on_line, &c), -EMSGSIZE);
	k8s_stream_reset(&s);
	/* ...or across fragments, before the newline ever comes. */
	assert_int_equal(k8s_stream_feed(&s, line, 60, on_line, &c), 0);
	assert_int_equal(k8s_stream_feed(&s, line + 60, 41, on_line, &c), -EMSGSIZE);
	k8s_stream_reset(&s);
	/* After a reset the stream is usable again. */
	line[100] = '\n';
	assert_int_equal(k8s_stream_feed(&s, line, 101, on_line, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.bad, 0);
	k8s_stream_free(&s);

	/* The default cap is the documented 16 MiB. */
	k8s_stream_init(&s, 0);
	assert_int_equal(s.max_event, 16u << 20);
	{
		size_t big = (16u << 20) + 1;
		char *p = malloc(big);

		memset(p, 'x', big);
		assert_int_equal(k8s_stream_feed(&s, p, big - 1, on_line, &c), 0);
		assert_int_equal(k8s_stream_feed(&s, p, 1, on_line, &c), -EMSGSIZE);
		free(p);
	}
	k8s_stream_free(&s);
}

static void test_garbage_lines(void **state)
{
	static const struct {
		const char *line;
		const char *err;
	} cases[] = {
	    {"not json", "not JSON"},
	    {"{\"type\":\"ADDED\",\"object\":{}", "not JSON"},
	    {"[1,2]", "expected a JSON object"},
	    {"{\"object\":{}}", "type: required field is missing"},
	    {"{\"type\":7,\"object\":{}}", "type: expected a string"},
	    {"{\"type\":\"RENAMED\",\"object\":{}}", "unknown event type \"RENAMED\""},
	    {"{\"type\":\"ADDED\"}", "object: required field is missing"},
	    {"{\"type\":\"ADDED\",\"object\":[]}", "object: expected an object"},
	    {"{\"type\":\"BOOKMARK\",\"object\":{}}", "object.metadata: required field"},
	    {"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"\"}}}",
	     "resourceVersion: must not be empty"},
	    {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":5}}}",
	     "object.metadata.resourceVersion: expected a string"},
	    {"{\"type\":\"ERROR\",\"object\":{\"code\":\"410\"}}",
	     "object.code: expected an integer"},
	    {"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\","
	     "\"annotations\":[]}}}",
	     "object.metadata.annotations: expected an object"},
	    {"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\","
	     "\"annotations\":{\"k8s.io/initial-events-end\":true}}}}",
	     "k8s.io/initial-events-end: expected a string"},
	    {"{\"type\":\"ADDED\",\"object\":{}} {}", "trailing bytes"},
	};
	char buf[512];
	struct collect c = {};
	struct k8s_stream s;
	char *deep;

	(void)state;
	/* Nesting far past cJSON's limit: refused as not JSON, no deep recursion. */
	deep = malloc(200001);
	assert_non_null(deep);
	memset(deep, '[', 100000);
	memset(deep + 100000, ']', 100000);
	deep[200000] = '\0';
	{
		struct k8s_event ev;
		char err[256] = "";

		assert_int_equal(k8s_event_decode(deep, strlen(deep), &ev, err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "not JSON"));
	}
	free(deep);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct k8s_event ev;
		char err[256] = "";

		assert_int_equal(
		    k8s_event_decode(cases[i].line, strlen(cases[i].line), &ev, err, sizeof(err)),
		    -EINVAL);
		if (!strstr(err, cases[i].err))
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].line, err, cases[i].err);
		assert_null(ev.root);
	}

	/* In a stream: good events around a bad line all arrive; blank and
	 * CRLF lines are fine. */
	k8s_stream_init(&s, 0);
	snprintf(
	    buf, sizeof(buf),
	    "\n{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"resourceVersion\":\"3\"}}}\r\n"
	    "garbage\n\r\n"
	    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"4\"}}}\n");
	assert_int_equal(k8s_stream_feed(&s, buf, strlen(buf), on_line, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.bad, 1);
	assert_string_equal(c.rvs[0], "3");
	assert_string_equal(c.rvs[1], "4");

	/* A truncated event at the end of the stream is visible. */
	assert_int_equal(k8s_stream_feed(&s, "{\"type\":", 8, on_line, &c), 0);
	assert_int_equal(k8s_stream_pending(&s), 8);
	k8s_stream_reset(&s);
	assert_int_equal(k8s_stream_pending(&s), 0);

	/* A callback error stops the feed where it is. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	assert_int_equal(k8s_stream_feed(&s, buf, strlen(buf), on_line, &c), -ECANCELED);
	assert_int_equal(c.n, 1);
	k8s_stream_free(&s);
}

static void test_status_bodies(void **state)
{
	char reason[64], msg[256];
	size_t len = 0;
	char *body;
	int code;

	(void)state;
	body = fixture_read("error-403.json", &len);
	assert_non_null(body);
	k8s_status_parse(body, len, &code, reason, sizeof(reason), msg, sizeof(msg));
	assert_int_equal(code, 403);
	assert_string_equal(reason, "Forbidden");
	/* Quotes are blanked so the message is one clean log field. */
	assert_non_null(strstr(msg, "services is forbidden: User  system:serviceaccount"));
	free(body);

	body = fixture_read("error-401.json", &len);
	k8s_status_parse(body, len, &code, reason, sizeof(reason), msg, sizeof(msg));
	assert_int_equal(code, 401);
	assert_string_equal(msg, "Unauthorized");
	free(body);

	/* Plain text (the 404 for a resource that does not exist). */
	body = fixture_read("error-404.json", &len);
	k8s_status_parse(body, len, &code, reason, sizeof(reason), msg, sizeof(msg));
	assert_int_equal(code, 0);
	assert_string_equal(reason, "");
	assert_string_equal(msg, "404 page not found");
	free(body);

	k8s_status_parse(NULL, 0, &code, reason, sizeof(reason), msg, sizeof(msg));
	assert_string_equal(msg, "");
	k8s_status_parse("0123456789", 10, &code, reason, sizeof(reason), msg, 5);
	assert_string_equal(msg, "0123");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_at_every_byte),
	    cmocka_unit_test(test_byte_at_a_time_and_whole),
	    cmocka_unit_test(test_error_410_event),
	    cmocka_unit_test(test_bookmark),
	    cmocka_unit_test(test_initial_events_end),
	    cmocka_unit_test(test_oversize_event),
	    cmocka_unit_test(test_garbage_lines),
	    cmocka_unit_test(test_status_bodies),
	};

	return cmocka_run_group_tests_name("k8s_stream", tests, NULL, NULL);
}
