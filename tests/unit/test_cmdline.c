/* test_cmdline.c — unit tests for the request-line parser (common/cmdline.c).
 *
 * Every input is copied into a heap buffer of exactly `len` bytes with no
 * terminator, so under ASan any read past `len` fails the test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cmdline.h"

static sb_cmdline_t *parse_n(const char *line, size_t len,
                             sb_cmdline_status_t *status, char **tag_out)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, line, len);
    sb_cmdline_t *cl = sb_cmdline_parse(copy, len, status, tag_out);
    free(copy);   /* the result must not point into the input */
    return cl;
}

static sb_cmdline_t *parse(const char *line, sb_cmdline_status_t *status,
                           char **tag_out)
{
    return parse_n(line, strlen(line), status, tag_out);
}

/* Checks a successful parse of `line`: the tag (NULL = untagged) and the
 * arguments, given as a NULL-terminated list. */
static void expect_ok(const char *line, size_t len, const char *tag, ...)
{
    sb_cmdline_status_t status = SB_CMDLINE_EMPTY;
    char *tag_out = (char *)"sentinel";
    sb_cmdline_t *cl = parse_n(line, len, &status, &tag_out);
    assert_non_null(cl);
    assert_int_equal(status, SB_CMDLINE_OK);
    if (tag) {
        assert_non_null(cl->tag);
        assert_string_equal(cl->tag, tag);
        assert_non_null(tag_out);
        assert_string_equal(tag_out, tag);
    } else {
        assert_null(cl->tag);
        assert_null(tag_out);
    }
    free(tag_out);

    va_list ap;
    va_start(ap, tag);
    size_t i = 0;
    for (const char *arg; (arg = va_arg(ap, const char *)) != NULL; i++) {
        assert_true(i < cl->argc);
        assert_string_equal(cl->argv[i], arg);
    }
    va_end(ap);
    assert_int_equal(cl->argc, i);
    assert_null(cl->argv[cl->argc]);
    sb_cmdline_destroy(&cl);
    assert_null(cl);
}

#define OK(line, tag, ...) expect_ok(line, strlen(line), tag, __VA_ARGS__, NULL)

/* Checks a failed parse; `tag` is what *tag_out must hold (NULL = none). */
static void expect_err_n(const char *line, size_t len,
                         sb_cmdline_status_t expected, const char *tag)
{
    sb_cmdline_status_t status = SB_CMDLINE_OK;
    char *tag_out = (char *)"sentinel";
    sb_cmdline_t *cl = parse_n(line, len, &status, &tag_out);
    assert_null(cl);
    assert_int_equal(status, expected);
    if (tag) {
        assert_non_null(tag_out);
        assert_string_equal(tag_out, tag);
    } else {
        assert_null(tag_out);
    }
    free(tag_out);
}

#define ERR(line, expected, tag) \
    expect_err_n(line, strlen(line), expected, tag)

static void test_plain(void **state)
{
    (void)state;
    OK("PING", NULL, "PING");
    OK("PUB sensors/temp 21.5", NULL, "PUB", "sensors/temp", "21.5");
    OK("a b c d e f", NULL, "a", "b", "c", "d", "e", "f");
}

static void test_separators(void **state)
{
    (void)state;
    OK("  PUB   topic    hello  ", NULL, "PUB", "topic", "hello");
    OK("\tPUB\ttopic\t\thello\t", NULL, "PUB", "topic", "hello");
    OK(" \t PUB \t topic\t \thello \t", NULL, "PUB", "topic", "hello");
}

static void test_empty(void **state)
{
    (void)state;
    ERR("", SB_CMDLINE_EMPTY, NULL);
    ERR("   ", SB_CMDLINE_EMPTY, NULL);
    ERR("\t \t", SB_CMDLINE_EMPTY, NULL);
    ERR("\r", SB_CMDLINE_EMPTY, NULL);
    ERR("  \t\r", SB_CMDLINE_EMPTY, NULL);

    sb_cmdline_status_t status = SB_CMDLINE_OK;
    assert_null(sb_cmdline_parse(NULL, 0, &status, NULL));
    assert_int_equal(status, SB_CMDLINE_EMPTY);
}

static void test_carriage_return(void **state)
{
    (void)state;
    OK("PING\r", NULL, "PING");
    OK("PING  \r", NULL, "PING");
    OK("SET k \"v\"\r", NULL, "SET", "k", "v");
    /* Only one trailing \r is dropped; others are ordinary bytes. */
    OK("PING\r\r", NULL, "PING\r");
    OK("A\rB", NULL, "A\rB");
    OK("PING \r\r", NULL, "PING", "\r");
}

static void test_len_is_respected(void **state)
{
    (void)state;
    expect_ok("PING extra", 4, NULL, "PING", NULL);
    expect_ok("SET \"a b\" trailing", 9, NULL, "SET", "a b", NULL);
    expect_err_n("SET \"a b\"", 8, SB_CMDLINE_UNTERMINATED, NULL);
    expect_err_n("@tag PING", 4, SB_CMDLINE_NO_COMMAND, "tag");
}

static void test_tag_valid(void **state)
{
    (void)state;
    OK("@42 PING", "42", "PING");
    OK("@req-7 PUB topic hi", "req-7", "PUB", "topic", "hi");
    OK("  @t \t PING  ", "t", "PING");
    OK("@t\tPING", "t", "PING");
    /* Backslashes and UTF-8 are ordinary bytes in a tag. */
    OK("@a\\b PING", "a\\b", "PING");
    OK("@\xc3\xa9t\xc3\xa9 PING", "\xc3\xa9t\xc3\xa9", "PING");
    /* Only the first token can be a tag. */
    OK("@t @x y", "t", "@x", "y");
    OK("PING @x", NULL, "PING", "@x");
    OK("\"@t\" PING", NULL, "@t", "PING");
}

static void test_tag_length(void **state)
{
    (void)state;
    char line[SB_CMDLINE_MAX_TAG + 16];
    char tag[SB_CMDLINE_MAX_TAG + 2];

    memset(tag, 'x', SB_CMDLINE_MAX_TAG);
    tag[SB_CMDLINE_MAX_TAG] = '\0';
    snprintf(line, sizeof line, "@%s PING", tag);
    OK(line, tag, "PING");

    memset(tag, 'x', SB_CMDLINE_MAX_TAG + 1);
    tag[SB_CMDLINE_MAX_TAG + 1] = '\0';
    snprintf(line, sizeof line, "@%s PING", tag);
    ERR(line, SB_CMDLINE_BAD_TAG, NULL);
}

static void test_tag_bad(void **state)
{
    (void)state;
    ERR("@", SB_CMDLINE_BAD_TAG, NULL);
    ERR("@ PING", SB_CMDLINE_BAD_TAG, NULL);
    ERR("  @\tPING", SB_CMDLINE_BAD_TAG, NULL);
    ERR("@\"t\" PING", SB_CMDLINE_BAD_TAG, NULL);
    ERR("@a\"b PING", SB_CMDLINE_BAD_TAG, NULL);
    ERR("@a\"b c\" PING", SB_CMDLINE_BAD_TAG, NULL);
}

static void test_tag_without_command(void **state)
{
    (void)state;
    ERR("@t", SB_CMDLINE_NO_COMMAND, "t");
    ERR("@t   ", SB_CMDLINE_NO_COMMAND, "t");
    ERR("  @t \t\r", SB_CMDLINE_NO_COMMAND, "t");
}

static void test_tag_reported_on_later_errors(void **state)
{
    (void)state;
    ERR("@t SET \"open", SB_CMDLINE_UNTERMINATED, "t");
    ERR("@t SET \"a\\n\"", SB_CMDLINE_BAD_ESCAPE, "t");
    expect_err_n("@t SET a\0b", 10, SB_CMDLINE_NUL_BYTE, "t");
}

static void test_quoting(void **state)
{
    (void)state;
    OK("SET name \"living room\"", NULL, "SET", "name", "living room");
    OK("SET \"  padded\t\"", NULL, "SET", "  padded\t");
    OK("SET \"\"", NULL, "SET", "");
    OK("SET \"\" \"\" x", NULL, "SET", "", "", "x");
    OK("\"PING\"", NULL, "PING");
    OK("SET \"a\"\t\"b\"", NULL, "SET", "a", "b");
}

static void test_escapes(void **state)
{
    (void)state;
    OK("SET \"a\\\"b\"", NULL, "SET", "a\"b");
    OK("SET \"a\\\\b\"", NULL, "SET", "a\\b");
    OK("SET \"\\\\\"", NULL, "SET", "\\");
    OK("SET \"\\\"\"", NULL, "SET", "\"");
    OK("SET \"\\\\\\\"\"", NULL, "SET", "\\\"");
    ERR("SET \"a\\nb\"", SB_CMDLINE_BAD_ESCAPE, NULL);
    ERR("SET \"\\ \"", SB_CMDLINE_BAD_ESCAPE, NULL);
    ERR("SET \"\\x41\"", SB_CMDLINE_BAD_ESCAPE, NULL);
}

static void test_unterminated(void **state)
{
    (void)state;
    ERR("SET \"abc", SB_CMDLINE_UNTERMINATED, NULL);
    ERR("SET \"", SB_CMDLINE_UNTERMINATED, NULL);
    ERR("SET \"a\" \"b", SB_CMDLINE_UNTERMINATED, NULL);
    ERR("SET \"abc\\\"", SB_CMDLINE_UNTERMINATED, NULL);
    ERR("SET \"abc\\", SB_CMDLINE_UNTERMINATED, NULL);
    ERR("SET \"abc\r", SB_CMDLINE_UNTERMINATED, NULL);
    ERR("\"", SB_CMDLINE_UNTERMINATED, NULL);
}

static void test_mid_token_quotes(void **state)
{
    (void)state;
    OK("SET ab\"c d\"e", NULL, "SET", "abc de");
    OK("SET \"a\"b\"c\"", NULL, "SET", "abc");
    OK("SET a\"\"b", NULL, "SET", "ab");
    OK("SET x=\"1 2\" y", NULL, "SET", "x=1 2", "y");
}

static void test_backslash_outside_quotes(void **state)
{
    (void)state;
    OK("SET a\\b", NULL, "SET", "a\\b");
    OK("SET \\n \\\\", NULL, "SET", "\\n", "\\\\");
    OK("SET C:\\tmp\\", NULL, "SET", "C:\\tmp\\");
    /* The backslash does not escape the quote that follows it. */
    OK("SET a\\\"b c\"", NULL, "SET", "a\\b c");
}

static void test_nul_byte(void **state)
{
    (void)state;
    expect_err_n("PI\0NG", 5, SB_CMDLINE_NUL_BYTE, NULL);
    expect_err_n("\0", 1, SB_CMDLINE_NUL_BYTE, NULL);
    expect_err_n("   \0  ", 6, SB_CMDLINE_NUL_BYTE, NULL);
    expect_err_n("SET \"\0\"", 7, SB_CMDLINE_NUL_BYTE, NULL);
    expect_err_n("@t\0 PING", 8, SB_CMDLINE_NUL_BYTE, NULL);
    expect_err_n("@t PING\0\r", 9, SB_CMDLINE_NUL_BYTE, "t");
    /* A NUL wins over errors that come before it. */
    expect_err_n("@ PING \0", 8, SB_CMDLINE_NUL_BYTE, NULL);
    expect_err_n("SET \"a\\n\" \0", 11, SB_CMDLINE_NUL_BYTE, NULL);
}

static void test_utf8(void **state)
{
    (void)state;
    OK("SAY h\xc3\xa9llo \"w\xc3\xb6rld \xe2\x98\x83\"", NULL,
       "SAY", "h\xc3\xa9llo", "w\xc3\xb6rld \xe2\x98\x83");
    /* Not even valid UTF-8 is touched. */
    OK("RAW \xff\xfe \x80", NULL, "RAW", "\xff\xfe", "\x80");
    OK("\xe2\x98\x83", NULL, "\xe2\x98\x83");
}

/* "C a a a ..." with `argc` tokens in all, command included. */
static char *make_args_line(const char *prefix, size_t argc, size_t *len)
{
    size_t plen = strlen(prefix);
    char *line = malloc(plen + 1 + 2 * argc);
    assert_non_null(line);
    memcpy(line, prefix, plen);
    char *p = line + plen;
    *p++ = 'C';
    for (size_t i = 1; i < argc; i++) {
        *p++ = ' ';
        *p++ = 'a';
    }
    *len = (size_t)(p - line);
    return line;
}

static void check_max_args(const char *prefix, const char *tag)
{
    size_t len;
    char *line = make_args_line(prefix, SB_CMDLINE_MAX_ARGS, &len);
    sb_cmdline_status_t status;
    sb_cmdline_t *cl = parse_n(line, len, &status, NULL);
    assert_non_null(cl);
    assert_int_equal(cl->argc, SB_CMDLINE_MAX_ARGS);
    assert_string_equal(cl->argv[0], "C");
    assert_string_equal(cl->argv[SB_CMDLINE_MAX_ARGS - 1], "a");
    assert_null(cl->argv[SB_CMDLINE_MAX_ARGS]);
    if (tag)
        assert_string_equal(cl->tag, tag);
    sb_cmdline_destroy(&cl);
    free(line);

    line = make_args_line(prefix, SB_CMDLINE_MAX_ARGS + 1, &len);
    char *tag_out = NULL;
    assert_null(parse_n(line, len, &status, &tag_out));
    assert_int_equal(status, SB_CMDLINE_TOO_MANY_ARGS);
    if (tag)
        assert_string_equal(tag_out, tag);
    free(tag_out);
    free(line);
}

static void test_max_args(void **state)
{
    (void)state;
    check_max_args("", NULL);
    check_max_args("@t ", "t");   /* the tag does not count */
}

static void test_long_line(void **state)
{
    (void)state;
    enum { N = 64 * 1024 };
    char *line = malloc(N);
    assert_non_null(line);

    /* One huge bare argument. */
    memcpy(line, "SET ", 4);
    memset(line + 4, 'x', N - 4);
    sb_cmdline_status_t status;
    sb_cmdline_t *cl = parse_n(line, N, &status, NULL);
    assert_non_null(cl);
    assert_int_equal(cl->argc, 2);
    assert_int_equal(strlen(cl->argv[1]), N - 4);
    sb_cmdline_destroy(&cl);

    /* One huge quoted argument full of escapes. */
    memcpy(line, "SET \"", 5);
    for (size_t i = 5; i < N - 1; i += 2)
        memcpy(line + i, "\\\\", 2);
    line[N - 1] = '"';
    cl = parse_n(line, N, &status, NULL);
    assert_non_null(cl);
    assert_int_equal(cl->argc, 2);
    assert_int_equal(strlen(cl->argv[1]), (N - 6) / 2);
    assert_int_equal(cl->argv[1][0], '\\');
    sb_cmdline_destroy(&cl);

    /* Unterminated at the very end. */
    line[N - 1] = 'x';
    assert_null(parse_n(line, N, &status, NULL));
    assert_int_equal(status, SB_CMDLINE_UNTERMINATED);
    free(line);
}

static void test_optional_outputs(void **state)
{
    (void)state;
    sb_cmdline_t *cl = sb_cmdline_parse("@t PING", 7, NULL, NULL);
    assert_non_null(cl);
    assert_string_equal(cl->tag, "t");
    sb_cmdline_destroy(&cl);
    assert_null(sb_cmdline_parse("@t", 2, NULL, NULL));
}

static void test_destroy(void **state)
{
    (void)state;
    sb_cmdline_destroy(NULL);
    sb_cmdline_t *cl = NULL;
    sb_cmdline_destroy(&cl);
    assert_null(cl);
    cl = parse("@t PING", NULL, NULL);
    assert_non_null(cl);
    sb_cmdline_destroy(&cl);
    assert_null(cl);
}

static void test_status_text(void **state)
{
    (void)state;
    for (int s = SB_CMDLINE_OK; s <= SB_CMDLINE_TOO_MANY_ARGS; s++) {
        const char *text = sb_cmdline_status_text((sb_cmdline_status_t)s);
        assert_non_null(text);
        assert_true(strlen(text) > 0);
    }
    assert_string_equal(sb_cmdline_status_text(SB_CMDLINE_UNTERMINATED),
                        "unterminated quote");
    assert_string_equal(sb_cmdline_status_text(SB_CMDLINE_BAD_ESCAPE),
                        "bad escape (only \\\" and \\\\)");
    assert_string_equal(sb_cmdline_status_text(SB_CMDLINE_NO_COMMAND),
                        "missing command after tag");
    assert_non_null(strstr(sb_cmdline_status_text(SB_CMDLINE_TOO_MANY_ARGS),
                           "1024"));
    assert_non_null(sb_cmdline_status_text((sb_cmdline_status_t)999));
}

/* sb_cmdline_join: words back into text, cut to fit and always terminated. */
static void test_join(void **state)
{
    (void) state;
    char *words[] = { "a b", "", "c" };
    char out[16];
    sb_cmdline_join(3, words, out, sizeof out);
    assert_string_equal(out, "a b  c");
    sb_cmdline_join(0, words, out, sizeof out);
    assert_string_equal(out, "");
    char small[4];
    sb_cmdline_join(3, words, small, sizeof small);
    assert_string_equal(small, "a b");
}

/* What sb_cmdline_append_word writes, sb_cmdline_parse reads back word for word. */
static void test_append_word_round_trip(void **state)
{
    (void) state;
    const char *words[] = { "topics", "plain", "a b", "", "q\"x", "back\\slash", "tab\there",
                            "caf\xc3\xa9" };
    size_t count = sizeof words / sizeof words[0];
    char line[256] = "";
    for (size_t i = 0; i < count; i++)
        assert_true(sb_cmdline_append_word(line, sizeof line, words[i]));
    assert_string_equal(line, "topics plain \"a b\" \"\" \"q\\\"x\" back\\slash "
                              "\"tab\there\" caf\xc3\xa9");
    sb_cmdline_status_t status;
    sb_cmdline_t *parsed = sb_cmdline_parse(line, strlen(line), &status, NULL);
    assert_non_null(parsed);
    assert_int_equal(parsed->argc, count);
    for (size_t i = 0; i < count; i++)
        assert_string_equal(parsed->argv[i], words[i]);
    sb_cmdline_destroy(&parsed);

    char small[8] = "abc";
    assert_false(sb_cmdline_append_word(small, sizeof small, "toolong"));
    assert_string_equal(small, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_separators),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_carriage_return),
        cmocka_unit_test(test_len_is_respected),
        cmocka_unit_test(test_tag_valid),
        cmocka_unit_test(test_tag_length),
        cmocka_unit_test(test_tag_bad),
        cmocka_unit_test(test_tag_without_command),
        cmocka_unit_test(test_tag_reported_on_later_errors),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_unterminated),
        cmocka_unit_test(test_mid_token_quotes),
        cmocka_unit_test(test_backslash_outside_quotes),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_max_args),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_optional_outputs),
        cmocka_unit_test(test_destroy),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_append_word_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
