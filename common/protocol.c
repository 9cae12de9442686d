/* protocol.c — helpers for the names in protocol.h. */
#include "protocol.h"

#include <ctype.h>
#include <string.h>

#include "utf8.h"

bool sb_word_list_has(const char *list, const char *word)
{
    size_t length = strlen(word);
    if (length == 0)
        return false;
    for (const char *at = list; (at = strstr(at, word)); at += length)
        if ((at == list || at[-1] == ' ') && (at[length] == ' ' || at[length] == '\0'))
            return true;
    return false;
}

/* In valid UTF-8 a 0xC2 is always a lead byte, so C2 80..C2 9F is exactly
 * a C1 code point; in other text (Latin-1 firmware) bytes 0x80..0x9F are
 * left alone, since they are also UTF-8 continuation bytes. */
static bool has_c1_code_point(const char *text)
{
    size_t length = strlen(text);
    if (!sb_utf8_is_valid(text, length))
        return false;
    for (const char *at = text; (at = memchr(at, 0xc2, length - (size_t) (at - text))); at++)
        if ((unsigned char) at[1] >= 0x80 && (unsigned char) at[1] <= 0x9f)
            return true;
    return false;
}

bool sb_device_line_is_safe(const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
            return false;
    return !has_c1_code_point(text);
}

bool sb_token_name_is_valid(const char *name, size_t length)
{
    if (length == 0 || length > SB_TOKEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++)
        if (name[i] == '\0' || (!isalnum((unsigned char) name[i]) && !strchr("_.-", name[i])))
            return false;
    return true;
}
