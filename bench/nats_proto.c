/* nats_proto.c — parser for the NATS server's operations (see nats_proto.h). */
#include "nats_proto.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define MAX_ARGS 4 /* MSG subject sid [reply] size */

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits line[0..length) at spaces and tabs into at most `max` words; their
 * count, or max + 1 when there are more. */
static size_t split(const char *line, size_t length, nats_text_t *words, size_t max)
{
    size_t n = 0, i = 0;
    while (i < length) {
        while (i < length && is_space(line[i]))
            i++;
        if (i == length)
            break;
        size_t start = i;
        while (i < length && !is_space(line[i]))
            i++;
        if (n == max)
            return max + 1;
        words[n++] = (nats_text_t){line + start, i - start};
    }
    return n;
}

static bool word_is(nats_text_t w, const char *name)
{
    return w.length == strlen(name) && strncasecmp(w.data, name, w.length) == 0;
}

/* The decimal size of a MSG, or -1 when it is not a number or too large. */
static long parse_size(nats_text_t w)
{
    if (w.length == 0 || w.length > 8)
        return -1;
    long v = 0;
    for (size_t i = 0; i < w.length; i++) {
        if (w.data[i] < '0' || w.data[i] > '9')
            return -1;
        v = v * 10 + (w.data[i] - '0');
    }
    return v > (long)NATS_MAX_PAYLOAD ? -1 : v;
}

static long fail(const char **error, const char *why)
{
    *error = why;
    return -1;
}

/* The rest of the line after its first word, spaces trimmed at the front. */
static nats_text_t rest_of(const char *line, size_t length, nats_text_t first)
{
    size_t i = (size_t)(first.data - line) + first.length;
    while (i < length && is_space(line[i]))
        i++;
    return (nats_text_t){line + i, length - i};
}

long nats_parse(const char *buf, size_t length, nats_op_t *op, const char **error)
{
    size_t scan = length < NATS_MAX_LINE ? length : NATS_MAX_LINE;
    const char *nl = memchr(buf, '\n', scan);
    if (!nl)
        return length >= NATS_MAX_LINE ? fail(error, "control line too long") : 0;
    size_t taken = (size_t)(nl - buf) + 1;
    size_t line_len = taken - 1;
    if (line_len && buf[line_len - 1] == '\r')
        line_len--;

    nats_text_t w[1 + MAX_ARGS];
    size_t n = split(buf, line_len, w, 1 + MAX_ARGS);
    if (n == 0)
        return fail(error, "empty line");
    memset(op, 0, sizeof *op);
    if (word_is(w[0], "MSG")) {
        if (n != 4 && n != 5)
            return fail(error, "MSG needs subject, sid, optional reply and size");
        long size = parse_size(w[n - 1]);
        if (size < 0)
            return fail(error, "MSG size is not a number up to the maximum payload");
        if (length - taken < (size_t)size + 2)
            return 0;
        const char *payload = buf + taken;
        if (payload[size] != '\r' || payload[size + 1] != '\n')
            return fail(error, "MSG payload not followed by CRLF");
        op->kind = NATS_MSG;
        op->subject = w[1];
        op->sid = w[2];
        if (n == 5)
            op->reply = w[3];
        op->payload = (nats_text_t){payload, (size_t)size};
        return (long)(taken + (size_t)size + 2);
    }
    if (n == 1 && word_is(w[0], "PING"))
        op->kind = NATS_PING;
    else if (n == 1 && word_is(w[0], "PONG"))
        op->kind = NATS_PONG;
    else if (n == 1 && word_is(w[0], "+OK"))
        op->kind = NATS_OK;
    else if (word_is(w[0], "-ERR") || word_is(w[0], "INFO")) {
        op->kind = word_is(w[0], "INFO") ? NATS_INFO : NATS_ERR;
        op->payload = rest_of(buf, line_len, w[0]);
    } else
        return fail(error, "unknown operation");
    return (long)taken;
}
