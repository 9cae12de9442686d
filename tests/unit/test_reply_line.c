/* test_reply_line.c — unit tests for the lines a gateway writes unasked
 * (gateways/reply_queue.c, sb_reply_format_async): an EVENT line's topic is
 * quoted exactly when the line protocol's parser needs it, so a client
 * splits the line with that parser and gets the topic back; a topic without
 * a space is written as it always was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cmdline.h"
#include "reply_queue.h"
#include "topic.h"

static void expect_line(const char *kind, const char *word, const char *text, const char *line)
{
    char *written = sb_reply_format_async(kind, word, text);
    assert_string_equal(written, line);
    free(written);
}

static void test_plain_topics_unchanged(void **state)
{
    (void) state;
    expect_line("EVENT", "home/lamp", "on", "EVENT home/lamp on");
    expect_line("RETAINED", "home/hall/temp", "21.5 C", "RETAINED home/hall/temp 21.5 C");
    expect_line("EVENT", "home/lamp", "", "EVENT home/lamp");
    expect_line("EVENT", "back\\slash", "x", "EVENT back\\slash x");
    expect_line("MSG", "tcp-1", "hello there", "MSG tcp-1 hello there");
    expect_line("EVENT", "caf\xc3\xa9", "1", "EVENT caf\xc3\xa9 1");
}

static void test_spaced_topics_quoted(void **state)
{
    (void) state;
    expect_line("EVENT", "zigbee2mqtt/Living Room Lamp", "{\"state\":\"ON\"}",
                "EVENT \"zigbee2mqtt/Living Room Lamp\" {\"state\":\"ON\"}");
    expect_line("RETAINED", "a b", "1", "RETAINED \"a b\" 1");
    expect_line("EVENT", "say \"hi\"\\now", "x", "EVENT \"say \\\"hi\\\"\\\\now\" x");
    /* Line breaks in the payload still fold into spaces. */
    expect_line("EVENT", "a b", "two\nlines", "EVENT \"a b\" two lines");
}

/* What a client reads back with the request parser: kind, topic, payload words. */
static void test_parser_reads_topic_back(void **state)
{
    (void) state;
    static const char *const topics[] = {
        "zigbee2mqtt/Living Room Lamp", " ", " lead and trail ", "q\"uote", "back\\slash",
        "both \\ and \"", "home/lamp", "a  two  spaces",
    };
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        assert_true(sb_topic_is_valid(topics[i]));
        char *line = sb_reply_format_async("EVENT", topics[i], "p q");
        sb_cmdline_status_t status;
        sb_cmdline_t *parsed = sb_cmdline_parse(line, strlen(line), &status, NULL);
        assert_non_null(parsed);
        assert_int_equal(parsed->argc, 4);
        assert_string_equal(parsed->argv[0], "EVENT");
        assert_string_equal(parsed->argv[1], topics[i]);
        assert_string_equal(parsed->argv[2], "p");
        sb_cmdline_destroy(&parsed);
        free(line);
    }
}

/* The longest topic, all quotes (the worst case for escapes), fits. */
static void test_longest_topic(void **state)
{
    (void) state;
    char topic[SB_TOPIC_MAX + 1];
    memset(topic, '"', SB_TOPIC_MAX);
    topic[SB_TOPIC_MAX] = '\0';
    char *line = sb_reply_format_async("RETAINED", topic, "v");
    sb_cmdline_t *parsed = sb_cmdline_parse(line, strlen(line), NULL, NULL);
    assert_non_null(parsed);
    assert_string_equal(parsed->argv[1], topic);
    sb_cmdline_destroy(&parsed);
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_topics_unchanged),
        cmocka_unit_test(test_spaced_topics_quoted),
        cmocka_unit_test(test_parser_reads_topic_back),
        cmocka_unit_test(test_longest_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
