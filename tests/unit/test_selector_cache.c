// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The selector cache's references (agent/policy/selector_cache.c: sc_ref,
 * sc_unref, sc_sweep): a selector held by several policies' pointers is
 * evaluated once, outlives any one of them, evaluates new identities through
 * a pointer still alive (a freed one is never read: run under ASan), keeps
 * its set without evaluation when a policy is replaced, goes with its last
 * reference, and is referenced through sc_add() while capturing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/selector_cache.h"

static const char *const v_web[] = {"web"}, *const v_db[] = {"db"};
static const struct sel_req req_web = {"any", "app", SEL_OP_IN, v_web, 1};
static const struct sel_req req_db = {"any", "app", SEL_OP_IN, v_db, 1};

static const struct policy_label l_web = {"k8s", "app", "web"}, l_db = {"k8s", "app", "db"};
static const struct label_set set_web = {&l_web, 1}, set_db = {&l_db, 1};

static void put(struct selector_cache *sc, __u32 id, const struct label_set *set)
{
	const struct label_set *sets[1] = {set};

	assert_int_equal(sc_identity_set(sc, id, sets, 1), 0);
}

/* A selector as a policy holds it: its own memory, freed with the policy. */
static struct policy_selector *sel_new(const struct sel_req *req)
{
	struct policy_selector *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->reqs = (struct sel_req *)req;
	s->n_reqs = 1;
	return s;
}

static void test_refs(void **state)
{
	struct policy_selector *a = sel_new(&req_web), *b = sel_new(&req_web),
			       *c = sel_new(&req_web);
	struct policy_selector *db = sel_new(&req_db), *db2 = sel_new(&req_db), never = {0};
	struct sc_capture cap = {0};
	const struct sc_selector *s;
	struct selector_cache sc;
	unsigned long evals;
	int err;

	(void)state;
	sc_init(&sc);
	put(&sc, 1000, &set_web);
	put(&sc, 1001, &set_db);

	/* New: evaluated against both identities. */
	s = sc_ref(&sc, a, &err);
	assert_non_null(s);
	assert_int_equal(sc.evaluations, 2);
	assert_int_equal(s->n_ids, 1);
	assert_int_equal(s->ids[0], 1000);

	/* The same selector from another policy: not evaluated again. */
	assert_ptr_equal(sc_ref(&sc, b, &err), s);
	assert_int_equal(sc.evaluations, 2);
	assert_int_equal(sc.n_sels, 1);

	/* a's policy goes (and its memory): the selector stays for b, and a
	 * new identity is evaluated through b. */
	sc_unref(&sc, a);
	free(a);
	sc_sweep(&sc);
	assert_int_equal(sc.n_sels, 1);
	assert_ptr_equal(sc_lookup(&sc, b), s);
	put(&sc, 1002, &set_web);
	assert_int_equal(s->n_ids, 2);

	/* b's policy replaced by c's, same selector: its set kept, no evaluation. */
	evals = sc.evaluations;
	sc_unref(&sc, b);
	free(b);
	assert_ptr_equal(sc_ref(&sc, c, &err), s);
	sc_sweep(&sc);
	assert_int_equal(sc.evaluations, evals);
	assert_int_equal(sc.n_sels, 1);
	assert_int_equal(s->n_ids, 2);

	/* The last reference: gone at the sweep. */
	assert_non_null(sc_ref(&sc, db, &err));
	sc_unref(&sc, c);
	sc_sweep(&sc);
	assert_int_equal(sc.n_sels, 1);
	assert_null(sc_lookup(&sc, c));
	s = sc_lookup(&sc, db);
	assert_non_null(s);
	assert_int_equal(s->n_ids, 1);
	assert_int_equal(s->ids[0], 1001);

	/* Captured (as the reconciler registers a policy through
	 * engine_register()): sc_add() references and records the pointer. */
	sc_capture(&sc, &cap);
	assert_ptr_equal(sc_add(&sc, db2, &err), s);
	sc_capture(&sc, NULL);
	assert_int_equal(cap.n, 1);
	assert_ptr_equal(cap.ptrs[0], db2);
	assert_int_equal(s->refs, 2);
	sc_unref(&sc, db2);
	assert_int_equal(s->refs, 1);
	free(cap.ptrs);

	/* Unreferencing a pointer never referenced does nothing. */
	sc_unref(&sc, &never);
	assert_int_equal(sc.n_sels, 1);
	sc_destroy(&sc);
	free(c);
	free(db);
	free(db2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
