/* test_seconds.c — unit tests for the one reading of seconds
 * (common/seconds.c) that flags, the config file and the worker's `sleep`
 * share: plain decimals are read, everything strtod would also take
 * (signs, spaces, exponents, hex, inf, nan) is refused, and milliseconds
 * are rounded to the nearest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "seconds.h"

static void expect_seconds(const char *text, double expected)
{
    double seconds = -1;
    if (!sb_seconds_parse(text, &seconds))
        fail_msg("'%s' refused", text);
    assert_true(seconds == expected);
}

static void test_plain_decimals_are_read(void **state)
{
    (void) state;
    expect_seconds("0", 0);
    expect_seconds("2", 2);
    expect_seconds("1.5", 1.5);
    expect_seconds(".25", 0.25);
    expect_seconds("3.", 3);
    expect_seconds("007", 7);
    expect_seconds("86400", 86400);
    expect_seconds("1234567890.12345", 1234567890.12345);   /* 16 characters */
}

static void test_anything_else_is_refused(void **state)
{
    (void) state;
    static const char *bad[] = {
        "", ".", "..", "1.2.3", "-1", "+1", " 1", "1 ", "1s", "5,5", "1e3", "1E3", "0x10",
        "inf", "nan", "abc", "12345678901234567",   /* 17 characters */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double seconds = -1;
        if (sb_seconds_parse(bad[i], &seconds))
            fail_msg("'%s' read as %g", bad[i], seconds);
        assert_true(seconds == -1);   /* untouched */
    }
}

static void test_milliseconds_are_rounded_to_the_nearest(void **state)
{
    (void) state;
    assert_int_equal(sb_seconds_to_ms(0), 0);
    assert_int_equal(sb_seconds_to_ms(0.0004), 0);
    assert_int_equal(sb_seconds_to_ms(0.0006), 1);
    assert_int_equal(sb_seconds_to_ms(1.0004), 1000);
    assert_int_equal(sb_seconds_to_ms(2.0006), 2001);
    assert_int_equal(sb_seconds_to_ms(86400), 86400000);
    assert_int_equal(sb_seconds_to_ms(1e9), 1000000000000L);
}

static void test_a_range_is_checked_before_milliseconds_are_written(void **state)
{
    (void) state;
    long ms = -1;
    assert_true(sb_seconds_parse_ms("0.5", 0.01, 3600, &ms) && ms == 500);
    ms = -1;
    assert_false(sb_seconds_parse_ms("0.001", 0.01, 3600, &ms));
    assert_false(sb_seconds_parse_ms("3601", 0.01, 3600, &ms));
    assert_false(sb_seconds_parse_ms("1e3", 0, 1e9, &ms));
    assert_int_equal(ms, -1);   /* untouched */
    assert_true(sb_seconds_parse_ms("3600", 0.01, 3600, &ms) && ms == 3600000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_decimals_are_read),
        cmocka_unit_test(test_anything_else_is_refused),
        cmocka_unit_test(test_milliseconds_are_rounded_to_the_nearest),
        cmocka_unit_test(test_a_range_is_checked_before_milliseconds_are_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
