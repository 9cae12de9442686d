/* utf8.c — UTF-8 validation (see utf8.h), after the table in RFC 3629 §4. */
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the sequence starting at `s`, or 0 when it is malformed. */
static size_t sequence_length(const uint8_t *s, size_t left)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t length;
    uint8_t low = 0x80, high = 0xBF;   /* bounds of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        length = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        if (c == 0xE0)
            low = 0xA0;                /* overlong */
        else if (c == 0xED)
            high = 0x9F;               /* surrogates */
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        if (c == 0xF0)
            low = 0x90;                /* overlong */
        else if (c == 0xF4)
            high = 0x8F;               /* above U+10FFFF */
    }
    else
        return 0;
    if (left < length || s[1] < low || s[1] > high)
        return 0;
    for (size_t i = 2; i < length; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return length;
}

bool sb_utf8_is_valid(const char *data, size_t length)
{
    const uint8_t *s = (const uint8_t *) data;
    while (length > 0) {
        size_t step = sequence_length(s, length);
        if (step == 0)
            return false;
        s += step;
        length -= step;
    }
    return true;
}

char *sb_utf8_repair(const char *text)
{
    size_t length = strlen(text);
    char *out = malloc(length * 3 + 1);   /* each bad byte may become 3 */
    const uint8_t *s = (const uint8_t *) text;
    size_t used = 0;
    while (length > 0) {
        size_t step = sequence_length(s, length);
        if (step == 0) {
            memcpy(out + used, "\xEF\xBF\xBD", 3);
            used += 3;
            step = 1;
        }
        else {
            memcpy(out + used, s, step);
            used += step;
        }
        s += step;
        length -= step;
    }
    out[used] = '\0';
    return out;
}
