/* test_topic.c — unit tests for MQTT-style topic filters (common/topic.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "topic.h"

static void test_matching(void **state)
{
    (void) state;
    static const struct { const char *filter, *topic; bool matches; } cases[] = {
        { "home/kitchen/temp", "home/kitchen/temp", true },
        { "home/kitchen/temp", "home/kitchen", false },
        { "home/kitchen", "home/kitchen/temp", false },
        { "home/+/temp", "home/kitchen/temp", true },
        { "home/+/temp", "home/kitchen/hall/temp", false },
        { "home/+", "home/kitchen", true },
        { "home/+", "home", false },
        { "home/#", "home", true },
        { "home/#", "home/kitchen/temp", true },
        { "home/#", "homes/x", false },
        { "#", "anything/at/all", true },
        { "+/+", "a/b", true },
        { "+/+", "a/b/c", false },
        { "+", "a", true },
        { "a/+/#", "a/b", true },
        { "#", "$sys/clients/tcp-1", false },
        { "+/clients/#", "$sys/clients/tcp-1", false },
        { "$sys/#", "$sys/clients/tcp-1", true },
        { "$sys/clients/+", "$sys/clients/tcp-1", true },
        { "a//b", "a//b", true },
        { "a/+/b", "a//b", true },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (sb_topic_matches(cases[i].filter, cases[i].topic) != cases[i].matches)
            fail_msg("filter '%s' topic '%s': expected %s", cases[i].filter, cases[i].topic,
                     cases[i].matches ? "a match" : "no match");
}

static void test_validity(void **state)
{
    (void) state;
    assert_true(sb_topic_is_valid("home/kitchen/temp"));
    assert_false(sb_topic_is_valid(""));
    assert_false(sb_topic_is_valid("home/+/temp"));
    assert_false(sb_topic_is_valid("home/#"));
    assert_false(sb_topic_is_valid("two words"));
    assert_false(sb_topic_is_valid("tab\there"));
    assert_true(sb_topic_filter_is_valid("home/+/temp"));
    assert_true(sb_topic_filter_is_valid("#"));
    assert_true(sb_topic_filter_is_valid("home/#"));
    assert_false(sb_topic_filter_is_valid("home/#/temp"));
    assert_false(sb_topic_filter_is_valid("home/te+mp"));
    assert_false(sb_topic_filter_is_valid("home/temp#"));
    assert_false(sb_topic_filter_is_valid(""));
    char long_topic[SB_TOPIC_MAX + 2];
    for (size_t i = 0; i < sizeof long_topic - 1; i++)
        long_topic[i] = 'a';
    long_topic[sizeof long_topic - 1] = '\0';
    assert_false(sb_topic_is_valid(long_topic));
    long_topic[SB_TOPIC_MAX] = '\0';
    assert_true(sb_topic_is_valid(long_topic));
}

/* Filters overlap when some topic matches both, both ways round. */
static void test_overlap(void **state)
{
    (void) state;
    static const struct { const char *a, *b; bool overlap; } cases[] = {
        { "#", "home/#", true },
        { "home/#", "home/kitchen/temp", true },
        { "home/#", "home", true },
        { "home/#", "work/#", false },
        { "+/temp", "home/#", true },
        { "+/temp", "home/kitchen/temp", false },
        { "home/+", "home/a/b", false },
        { "home/+/x", "home/a/+", true },
        { "a/b", "a/b", true },
        { "a/b", "a/c", false },
        { "a", "a/b", false },
        { "#", "$sys/#", false },
        { "+/clients/#", "$sys/clients/tcp-1", false },
        { "$sys/#", "$sys/clients/+", true },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(sb_topic_filters_overlap(cases[i].a, cases[i].b), cases[i].overlap);
        assert_int_equal(sb_topic_filters_overlap(cases[i].b, cases[i].a), cases[i].overlap);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_validity),
        cmocka_unit_test(test_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
