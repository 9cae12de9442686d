/* test_builtin_commands.c — unit tests for the table of the worker's
 * built-in commands (common/builtin_commands.c): its names and their
 * order (config-check messages and `help` show them), which are safe to
 * run twice, which run as jobs, and that each entry's id is its index
 * (the worker's dispatch relies on it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "builtin_commands.h"

static void test_names_in_table_order(void **state)
{
    (void) state;
    char names[128];
    size_t length = sb_builtin_command_names(names, sizeof names);
    assert_string_equal(names, "echo hello sleep time account");
    assert_int_equal(length, 29);
    char small[8];
    assert_int_equal(sb_builtin_command_names(small, sizeof small), 0);
    assert_string_equal(small, "");
}

static void test_lookup_by_name_and_index(void **state)
{
    (void) state;
    for (size_t i = 0; i < SB_BUILTIN_COUNT; i++) {
        const sb_builtin_command_t *builtin = sb_builtin_command_at(i);
        assert_non_null(builtin);
        assert_int_equal(builtin->id, i);
        assert_ptr_equal(sb_builtin_command(builtin->name), builtin);
        assert_non_null(builtin->description);
    }
    assert_null(sb_builtin_command_at(SB_BUILTIN_COUNT));
    assert_null(sb_builtin_command("ping"));   /* a gateway's own command */
    assert_null(sb_builtin_command("devices"));
    assert_null(sb_builtin_command("Echo"));
    assert_null(sb_builtin_command(""));
}

static void test_retry_safe_and_jobs(void **state)
{
    (void) state;
    static const struct {
        const char *name;
        bool retry_safe, runs_as_job;
    } expected[] = {
        { "echo", true, false }, { "hello", true, false }, { "sleep", false, true },
        { "time", true, false }, { "account", false, false },
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        const sb_builtin_command_t *builtin = sb_builtin_command(expected[i].name);
        assert_non_null(builtin);
        assert_int_equal(builtin->retry_safe, expected[i].retry_safe);
        assert_int_equal(builtin->runs_as_job, expected[i].runs_as_job);
        assert_int_equal(sb_builtin_command_runs_as_job(expected[i].name),
                         expected[i].runs_as_job);
    }
    assert_false(sb_builtin_command_runs_as_job("nosuch"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_in_table_order),
        cmocka_unit_test(test_lookup_by_name_and_index),
        cmocka_unit_test(test_retry_safe_and_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
