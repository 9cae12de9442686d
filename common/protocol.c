/* protocol.c — helpers for the names in protocol.h. */
#include "protocol.h"

#include <ctype.h>
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

bool sb_token_name_is_valid(const char *name, size_t length)
{
    if (length == 0 || length > SB_TOKEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++)
        if (name[i] == '\0' || (!isalnum((unsigned char) name[i]) && !strchr("_.-", name[i])))
            return false;
    return true;
}
