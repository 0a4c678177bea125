// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The kube-proxy-compatible health bodies, byte for byte: a load balancer's
 * probe or a script written for kube-proxy reads them unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kpr_health/kpr_health.h"

static void test_service_body(void **state)
{
	char buf[512];

	(void)state;
	kpr_health_service_body(buf, sizeof(buf), "shop", "web", 2, true);
	assert_string_equal(buf, "{\n"
				 "\t\"service\": {\n"
				 "\t\t\"namespace\": \"shop\",\n"
				 "\t\t\"name\": \"web\"\n"
				 "\t},\n"
				 "\t\"localEndpoints\": 2,\n"
				 "\t\"serviceProxyHealthy\": true\n"
				 "}");
	kpr_health_service_body(buf, sizeof(buf), "shop", "web", 0, false);
	assert_non_null(strstr(buf, "\"localEndpoints\": 0,\n\t\"serviceProxyHealthy\": false\n}"));
}

static void test_proxy_body_times_as_go_prints_them(void **state)
{
	struct timespec last = {.tv_sec = 1796413801, .tv_nsec = 120000000};
	struct timespec now = {.tv_sec = 1796413802, .tv_nsec = 0};
	char buf[256];

	(void)state;
	kpr_health_proxy_body(buf, sizeof(buf), &last, &now);
	/* Fractional seconds without trailing zeros, none at all when zero. */
	assert_string_equal(buf, "{\"lastUpdated\": \"2026-12-04 19:50:01.12 +0000 UTC\","
				 "\"currentTime\": \"2026-12-04 19:50:02 +0000 UTC\", "
				 "\"nodeEligible\": true}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_service_body),
	    cmocka_unit_test(test_proxy_body_times_as_go_prints_them),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
