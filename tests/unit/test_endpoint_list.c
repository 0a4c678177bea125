// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * agentctl endpoint list's join (agent/api/policy_engine.c): the policy
 * engine's endpoints with the state of the Pods the agent manages. An
 * endpoint the engine still holds under reserved:init (5), or under the
 * identity it had before, is not "ready" whatever the identity manager
 * resolved; the list comes sorted by policy id, then pod.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/commands.h"
#include "log.h"

static cJSON *parse(const char *text)
{
	cJSON *j = cJSON_Parse(text);

	assert_non_null(j);
	return j;
}

static const char *str(const cJSON *o, const char *k)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));

	return v ? v : "";
}

static double num(const cJSON *o, const char *k)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

static const cJSON *find(const cJSON *eps, const char *pod)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, eps)
		if (!strcmp(str(e, "pod"), pod))
			return e;
	fail_msg("no endpoint %s", pod);
	return NULL;
}

static void test_ready_only_with_the_resolved_identity(void **state)
{
	/* web-1's slice is read back (the engine has 30001); web-2 was added
	 * by CNI a moment ago: the engine has it under reserved:init. */
	cJSON *eps = parse("["
			   "{\"id\": 2, \"pod\": \"default/web-1\", \"identity\": 30001},"
			   "{\"id\": 1, \"pod\": \"default/web-2\", \"identity\": 5}]");
	cJSON *leps = parse("["
			    "{\"pod\": \"web-1\", \"namespace\": \"default\", \"address\": "
			    "\"10.244.1.10\", \"identity\": 30001, \"state\": \"ready\", "
			    "\"reason\": \"\"},"
			    "{\"pod\": \"web-2\", \"namespace\": \"default\", \"address\": "
			    "\"10.244.1.11\", \"identity\": 30001, \"state\": \"ready\", "
			    "\"reason\": \"\"}]");
	const cJSON *e;

	(void)state;
	api_endpoints_merge(eps, leps);
	assert_int_equal(cJSON_GetArraySize(eps), 2);
	e = find(eps, "default/web-1");
	assert_string_equal(str(e, "state"), "ready");
	assert_string_equal(str(e, "address"), "10.244.1.10");
	e = find(eps, "default/web-2");
	assert_int_equal((int)num(e, "identity"), 5);
	assert_string_equal(str(e, "state"), "waiting-for-identity");
	assert_string_equal(str(e, "reason"),
			    "identity 30001 resolved, the policy engine still has 5");
	assert_string_equal(str(e, "address"), "10.244.1.11");
	cJSON_Delete(leps);
	cJSON_Delete(eps);
}

static void test_sorted_by_id_then_pod(void **state)
{
	cJSON *eps = parse("["
			   "{\"id\": 7, \"pod\": \"b/x\", \"identity\": 40000},"
			   "{\"id\": 3, \"pod\": \"z/y\", \"identity\": 40000},"
			   "{\"id\": 5, \"pod\": \"a/q\", \"identity\": 5}]");
	/* Managed Pods the engine does not have yet come in with id 0. */
	cJSON *leps = parse("["
			    "{\"pod\": \"p2\", \"namespace\": \"n\", \"address\": \"10.0.0.2\", "
			    "\"identity\": 0, \"state\": \"waiting-for-identity\", "
			    "\"reason\": \"allocating\"},"
			    "{\"pod\": \"p1\", \"namespace\": \"n\", \"address\": \"10.0.0.1\", "
			    "\"identity\": 0, \"state\": \"waiting-for-identity\", "
			    "\"reason\": \"allocating\"}]");
	static const char *const want[] = { "n/p1", "n/p2", "z/y", "a/q", "b/x" };
	const cJSON *e;
	size_t i = 0;

	(void)state;
	api_endpoints_merge(eps, leps);
	assert_int_equal(cJSON_GetArraySize(eps), 5);
	cJSON_ArrayForEach(e, eps)
		assert_string_equal(str(e, "pod"), want[i++]);
	e = find(eps, "n/p1");
	assert_int_equal((int)num(e, "id"), 0);
	assert_string_equal(str(e, "ip"), "10.0.0.1");
	assert_string_equal(str(e, "state"), "waiting-for-identity");
	/* An engine endpoint the agent does not manage keeps no state. */
	assert_string_equal(str(find(eps, "a/q"), "state"), "");
	cJSON_Delete(leps);
	cJSON_Delete(eps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_only_with_the_resolved_identity),
		cmocka_unit_test(test_sorted_by_id_then_pod),
	};

	if (!getenv("AXON_TEST_VERBOSE"))
		log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
