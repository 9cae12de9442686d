/* fuzz_cmdline.c — libFuzzer target for the request-line parser.
 *
 * Besides crashes and out-of-bounds reads (the input buffer is exactly
 * `size` bytes, unterminated), it checks the result's invariants and that
 * re-quoting the parsed arguments and parsing again gives them back, which
 * catches quote/escape handling that silently loses or invents bytes.
 * Any violation abort()s so libFuzzer records the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"

#define CHECK(cond) \
    do { \
        if (!(cond)) \
            abort(); \
    } while (0)

static void check_tag(const char *tag)
{
    size_t len = strlen(tag);
    CHECK(len >= 1 && len <= SB_CMDLINE_MAX_TAG);
    CHECK(strchr(tag, '"') == NULL);
    CHECK(strchr(tag, ' ') == NULL && strchr(tag, '\t') == NULL);
}

static void check_result(const sb_cmdline_t *cl, size_t size,
                         const char *tag_out)
{
    CHECK(cl->argc >= 1 && cl->argc <= SB_CMDLINE_MAX_ARGS);
    CHECK(cl->argv != NULL && cl->argv[cl->argc] == NULL);
    size_t total = 0;
    for (size_t i = 0; i < cl->argc; i++) {
        CHECK(cl->argv[i] != NULL);
        total += strlen(cl->argv[i]);
    }
    CHECK(total <= size);   /* unquoting only ever removes bytes */
    if (cl->tag) {
        check_tag(cl->tag);
        CHECK(tag_out != NULL && strcmp(cl->tag, tag_out) == 0);
    } else {
        CHECK(tag_out == NULL);
    }
}

/* Writes the canonical form: @tag, then every argument quoted. Worst case
 * each byte doubles, plus quotes and a separator per argument. */
static char *requote(const sb_cmdline_t *cl, size_t size, size_t *len)
{
    size_t cap = 2 + SB_CMDLINE_MAX_TAG + 2 * size + 3 * cl->argc;
    char *out = malloc(cap);
    CHECK(out != NULL);
    char *p = out;
    if (cl->tag) {
        *p++ = '@';
        memcpy(p, cl->tag, strlen(cl->tag));
        p += strlen(cl->tag);
        *p++ = ' ';
    }
    for (size_t i = 0; i < cl->argc; i++) {
        *p++ = '"';
        for (const char *s = cl->argv[i]; *s; s++) {
            if (*s == '"' || *s == '\\')
                *p++ = '\\';
            *p++ = *s;
        }
        *p++ = '"';
        *p++ = '\t';
    }
    CHECK((size_t)(p - out) <= cap);
    *len = (size_t)(p - out);
    return out;
}

static void check_round_trip(const sb_cmdline_t *cl, size_t size)
{
    size_t len;
    char *line = requote(cl, size, &len);
    sb_cmdline_status_t status;
    sb_cmdline_t *again = sb_cmdline_parse(line, len, &status, NULL);
    CHECK(again != NULL && status == SB_CMDLINE_OK);
    CHECK(again->argc == cl->argc);
    CHECK((again->tag == NULL) == (cl->tag == NULL));
    CHECK(!cl->tag || strcmp(again->tag, cl->tag) == 0);
    for (size_t i = 0; i < cl->argc; i++)
        CHECK(strcmp(again->argv[i], cl->argv[i]) == 0);
    sb_cmdline_destroy(&again);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_cmdline_status_t status = SB_CMDLINE_OK;
    char *tag = NULL;
    sb_cmdline_t *cl = sb_cmdline_parse((const char *)data, size, &status,
                                        &tag);
    const char *text = sb_cmdline_status_text(status);
    CHECK(text != NULL && text[0] != '\0');
    if (cl) {
        CHECK(status == SB_CMDLINE_OK);
        check_result(cl, size, tag);
        check_round_trip(cl, size);
    } else {
        CHECK(status != SB_CMDLINE_OK);
        if (tag)
            check_tag(tag);
    }
    /* A NUL byte anywhere must be refused, whatever else is wrong. */
    if (size > 0 && memchr(data, '\0', size))
        CHECK(status == SB_CMDLINE_NUL_BYTE);
    free(tag);
    sb_cmdline_destroy(&cl);
    CHECK(cl == NULL);
    return 0;
}
