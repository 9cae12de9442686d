/* test_topic.c — unit tests for MQTT-style topic filters (common/topic.c) and
 * the rule for device lines (common/protocol.c): what may reach a line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "protocol.h"
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
    /* Spaces are allowed (Zigbee2MQTT's friendly names), alone or in wildcard filters. */
    assert_true(sb_topic_is_valid("zigbee2mqtt/Living Room Lamp"));
    assert_true(sb_topic_is_valid(" "));
    assert_true(sb_topic_is_valid(" lead/and trail "));
    assert_true(sb_topic_filter_is_valid("zigbee2mqtt/Living Room/#"));
    assert_true(sb_topic_filter_is_valid("a b/+/c d"));
    assert_false(sb_topic_filter_is_valid("a b/+x"));
    assert_false(sb_topic_filter_is_valid("a/# "));
    assert_false(sb_topic_is_valid("a b/#"));
    assert_true(sb_topic_matches("zigbee2mqtt/+", "zigbee2mqtt/Living Room Lamp"));
    assert_false(sb_topic_matches("zigbee2mqtt/Living", "zigbee2mqtt/Living Room"));
    /* Other whitespace and control bytes would split or hide in an EVENT
     * line; invalid UTF-8 is refused too. */
    static const char *const hostile[] = {
        "home/lamp\nEVENT forged x", "a\rb", "a\x01", "\x1b[2J", "del\x7f", "caf\xc3",
        "\xc0\xaf", "\xed\xa0\x80", "\xff", "tab\there", "Living Room\n", "a\vb", "a\fb",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        assert_false(sb_topic_is_valid(hostile[i]));
        assert_false(sb_topic_filter_is_valid(hostile[i]));
    }
    assert_true(sb_topic_is_valid("caf\xc3\xa9/\xe2\x82\xac"));
    assert_true(sb_topic_filter_is_valid("caf\xc3\xa9/+"));
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
    long_topic[10] = ' ';   /* a space counts against the limit like any byte */
    assert_true(sb_topic_is_valid(long_topic));
    long_topic[SB_TOPIC_MAX] = 'a';
    assert_false(sb_topic_is_valid(long_topic));
}

/* Device lines (common/protocol.c): every C0 control but TAB, DEL and C1 code points refused. */
static void test_device_line_rule(void **state)
{
    (void) state;
    assert_true(sb_device_line_is_safe("on"));
    assert_true(sb_device_line_is_safe("set level\t5 caf\xc3\xa9 ~"));
    assert_true(sb_device_line_is_safe(""));
    for (int byte = 1; byte < 0x20; byte++) {
        char line[] = { 'o', 'n', (char) byte, 'X', '\0' };
        assert_int_equal(sb_device_line_is_safe(line), byte == '\t');
    }
    assert_false(sb_device_line_is_safe("on\x7f"));
    /* C1 code points in UTF-8 text are refused (U+009B is CSI, U+0080 the first); */
    assert_false(sb_device_line_is_safe("on\xc2\x9b" "2J"));
    assert_false(sb_device_line_is_safe("\xc2\x80"));
    assert_true(sb_device_line_is_safe("\xc2\xa0 \xc3\x80 \xe2\x82\xac"));   /* U+00A0, U+00C0, euro */
    /* raw bytes 0x80..0x9F in text that is not UTF-8 (Latin-1) pass. */
    assert_true(sb_device_line_is_safe("caf\xe9 \x9b"));
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
        cmocka_unit_test(test_device_line_rule),
        cmocka_unit_test(test_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
