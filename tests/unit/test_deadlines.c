/* test_deadlines.c — unit tests for the deadline heap (common/deadlines.c)
 * that the broker and every gateway share: earliest first whatever the
 * order of insertion, nothing before its time, growth past the first
 * allocation, and clear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "deadlines.h"

static void test_empty_heap_has_nothing_due(void **state)
{
    (void) state;
    sb_deadlines_t *deadlines = sb_deadlines_new();
    sb_deadline_t due;
    assert_false(sb_deadlines_peek(deadlines, &due));
    assert_false(sb_deadlines_pop_expired(deadlines, INT64_MAX, &due));
    assert_int_equal(sb_deadlines_size(deadlines), 0);
    sb_deadlines_destroy(&deadlines);
    assert_null(deadlines);
}

static void test_nothing_pops_before_its_time(void **state)
{
    (void) state;
    sb_deadlines_t *deadlines = sb_deadlines_new();
    assert_true(sb_deadlines_add(deadlines, 500, 7));
    sb_deadline_t due;
    assert_false(sb_deadlines_pop_expired(deadlines, 499, &due));
    assert_true(sb_deadlines_peek(deadlines, &due));
    assert_int_equal(due.at_ms, 500);
    assert_true(sb_deadlines_pop_expired(deadlines, 500, &due));
    assert_int_equal(due.request_id, 7);
    assert_int_equal(sb_deadlines_size(deadlines), 0);
    sb_deadlines_destroy(&deadlines);
}

/* Thousands of deadlines in a scrambled order (past the first 256-entry
 * allocation) come out earliest first, each once. */
static void test_earliest_first_whatever_the_order(void **state)
{
    (void) state;
    enum { COUNT = 5000 };
    sb_deadlines_t *deadlines = sb_deadlines_new();
    for (uint64_t i = 0; i < COUNT; i++) {
        int64_t at = (int64_t) ((i * 7919) % COUNT);   /* 7919 is prime: a permutation */
        assert_true(sb_deadlines_add(deadlines, at, (uint64_t) at + 1));
    }
    assert_int_equal(sb_deadlines_size(deadlines), COUNT);
    sb_deadline_t due;
    for (int64_t expected = 0; expected < COUNT; expected++) {
        assert_true(sb_deadlines_pop_expired(deadlines, INT64_MAX, &due));
        assert_int_equal(due.at_ms, expected);
        assert_int_equal(due.request_id, (uint64_t) expected + 1);
    }
    assert_false(sb_deadlines_pop_expired(deadlines, INT64_MAX, &due));
    sb_deadlines_destroy(&deadlines);
}

static void test_clear_forgets_everything(void **state)
{
    (void) state;
    sb_deadlines_t *deadlines = sb_deadlines_new();
    for (int i = 0; i < 300; i++)
        sb_deadlines_add(deadlines, i, (uint64_t) i);
    sb_deadlines_clear(deadlines);
    sb_deadline_t due;
    assert_false(sb_deadlines_peek(deadlines, &due));
    assert_true(sb_deadlines_add(deadlines, 42, 1));
    assert_true(sb_deadlines_pop_expired(deadlines, 42, &due));
    assert_int_equal(due.request_id, 1);
    sb_deadlines_destroy(&deadlines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_heap_has_nothing_due),
        cmocka_unit_test(test_nothing_pops_before_its_time),
        cmocka_unit_test(test_earliest_first_whatever_the_order),
        cmocka_unit_test(test_clear_forgets_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
