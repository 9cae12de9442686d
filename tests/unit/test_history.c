/* test_history.c — unit tests for the broker's history of numeric topics
 * (broker/history.c): what is a number, the ring of points per topic, the
 * topic bound, and a history that is off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "history.h"

static void test_numbers_and_not(void **state)
{
    (void) state;
    static const char *const numbers[] = { "21.5", "-3", "0", "1e3", "+7", "0.000001" };
    static const char *const others[] = { "", "on", " 1", "1 ", "12abc", "nan", "inf",
                                          "-infinity", "1e999",
                                          "1111111111111111111111111111111111111111111111111111111111111111111" };
    double value;
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        assert_true(sb_history_parse(numbers[i], &value));
    assert_true(sb_history_parse("21.5", &value));
    assert_true(value == 21.5);
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        assert_false(sb_history_parse(others[i], &value));
}

static void test_ring_keeps_the_last_points_oldest_first(void **state)
{
    (void) state;
    sb_history_settings_t settings = { .points = 3, .max_topics = 10 };
    sb_history_t *history = sb_history_new(&settings);
    sb_history_point_t points[8];
    assert_int_equal(sb_history_get(history, "home/t", points, 8), 0);
    assert_int_equal(sb_history_points_per_topic(history), 3);
    assert_true(sb_history_record(history, "home/t", "1", 1000));
    assert_false(sb_history_record(history, "home/t", "on", 1500));   /* not a point */
    assert_true(sb_history_record(history, "home/t", "2", 2000));
    assert_int_equal(sb_history_get(history, "home/t", points, 8), 2);
    assert_true(points[0].time_ms == 1000 && points[0].value == 1);
    assert_true(points[1].time_ms == 2000 && points[1].value == 2);
    for (int i = 3; i <= 5; i++) {
        char payload[8];
        snprintf(payload, sizeof payload, "%d", i);
        assert_true(sb_history_record(history, "home/t", payload, i * 1000));
    }
    assert_int_equal(sb_history_get(history, "home/t", points, 8), 3);
    for (int i = 0; i < 3; i++)
        assert_true(points[i].value == 3 + i && points[i].time_ms == (3 + i) * 1000);
    assert_int_equal(sb_history_get(history, "home/t", points, 2), 2);   /* the last two */
    assert_true(points[0].value == 4 && points[1].value == 5);
    sb_history_counters_t counters = sb_history_counters(history);
    assert_int_equal(counters.topics, 1);
    assert_int_equal(counters.recorded, 5);
    sb_history_destroy(&history);
    assert_null(history);
}

static void test_a_new_topic_beyond_the_bound_is_refused(void **state)
{
    (void) state;
    sb_history_settings_t settings = { .points = 4, .max_topics = 2 };
    sb_history_t *history = sb_history_new(&settings);
    assert_true(sb_history_record(history, "a", "1", 1));
    assert_false(sb_history_record(history, "text", "hello", 1));   /* takes no room */
    assert_true(sb_history_record(history, "b", "1", 1));
    assert_false(sb_history_record(history, "c", "1", 1));
    assert_true(sb_history_record(history, "a", "2", 2));            /* known topics go on */
    sb_history_point_t points[4];
    assert_int_equal(sb_history_get(history, "c", points, 4), 0);
    sb_history_counters_t counters = sb_history_counters(history);
    assert_int_equal(counters.topics, 2);
    assert_int_equal(counters.refused, 1);
    sb_history_destroy(&history);
}

static void test_no_points_is_off(void **state)
{
    (void) state;
    sb_history_settings_t settings = { .points = 0, .max_topics = 100 };
    sb_history_t *history = sb_history_new(&settings);
    assert_false(sb_history_record(history, "a", "1", 1));
    sb_history_point_t point;
    assert_int_equal(sb_history_get(history, "a", &point, 1), 0);
    assert_int_equal(sb_history_counters(history).topics, 0);
    sb_history_destroy(&history);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_and_not),
        cmocka_unit_test(test_ring_keeps_the_last_points_oldest_first),
        cmocka_unit_test(test_a_new_topic_beyond_the_bound_is_refused),
        cmocka_unit_test(test_no_points_is_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
