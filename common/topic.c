/* topic.c — MQTT-style topic matching (see topic.h). */
#include "topic.h"
#include "utf8.h"

#include <string.h>

/* No control bytes: a CR or LF would split an EVENT line, a TAB is a word
 * separator that quoting would not show. A space is allowed (Zigbee2MQTT's
 * friendly names have them): the line protocol quotes such a topic. */
static bool plain_bytes(const char *text)
{
    size_t length = strlen(text);
    if (length == 0 || length > SB_TOPIC_MAX)
        return false;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if (*c < ' ' || *c == 0x7f)
            return false;
    return sb_utf8_is_valid(text, length);
}

bool sb_topic_is_valid(const char *topic)
{
    return plain_bytes(topic) && !strpbrk(topic, "+#");
}

bool sb_topic_filter_is_valid(const char *filter)
{
    if (!plain_bytes(filter))
        return false;
    for (const char *level = filter;; ) {
        const char *end = strchr(level, '/');
        size_t length = end ? (size_t) (end - level) : strlen(level);
        bool wildcard = memchr(level, '+', length) || memchr(level, '#', length);
        if (wildcard && length != 1)
            return false;                     /* "a+" or "#b": wildcards stand alone */
        if (level[0] == '#' && end)
            return false;                     /* '#' only as the last level */
        if (!end)
            return true;
        level = end + 1;
    }
}

bool sb_topic_matches(const char *filter, const char *topic)
{
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
        return false;
    const char *f = filter, *t = topic;
    for (;;) {
        if (f[0] == '#' && f[1] == '\0')
            return true;                      /* the rest, however many levels */
        const char *f_end = strchr(f, '/');
        const char *t_end = strchr(t, '/');
        size_t f_length = f_end ? (size_t) (f_end - f) : strlen(f);
        size_t t_length = t_end ? (size_t) (t_end - t) : strlen(t);
        bool level_matches = (f_length == 1 && f[0] == '+')
                             || (f_length == t_length && memcmp(f, t, f_length) == 0);
        if (!level_matches)
            return false;
        if (!f_end && !t_end)
            return true;
        if (!t_end)                           /* topic ends: only "/#" may follow */
            return f_end && strcmp(f_end, "/#") == 0;
        if (!f_end)
            return false;
        f = f_end + 1;
        t = t_end + 1;
    }
}

/* A '$' first level is matched only by a filter that names it. */
static bool hides_system(const char *literal, const char *wild)
{
    return literal[0] == '$' && (wild[0] == '+' || wild[0] == '#');
}

bool sb_topic_filters_overlap(const char *a, const char *b)
{
    if (hides_system(a, b) || hides_system(b, a))
        return false;
    for (;;) {
        if (strcmp(a, "#") == 0 || strcmp(b, "#") == 0)
            return true;
        const char *a_end = strchr(a, '/');
        const char *b_end = strchr(b, '/');
        size_t a_length = a_end ? (size_t) (a_end - a) : strlen(a);
        size_t b_length = b_end ? (size_t) (b_end - b) : strlen(b);
        bool level_meets = (a_length == 1 && a[0] == '+') || (b_length == 1 && b[0] == '+')
                           || (a_length == b_length && memcmp(a, b, a_length) == 0);
        if (!level_meets)
            return false;
        if (!a_end && !b_end)
            return true;
        if (!a_end || !b_end)                 /* one ends: the other may only go on with "/#" */
            return strcmp(a_end ? a_end : b_end, "/#") == 0;
        a = a_end + 1;
        b = b_end + 1;
    }
}
