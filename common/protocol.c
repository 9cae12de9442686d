/* protocol.c — helpers for the names in protocol.h. */
#include "protocol.h"

#include <string.h>

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

bool sb_device_line_is_safe(const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
            return false;
    return true;
}
