/* name_list.c — comma-separated name lists (see name_list.h). */
#include "name_list.h"

#include <string.h>
#include <strings.h>

static bool entry_matches(const char *entry, size_t length, const char *name, bool wildcards)
{
    size_t name_length = strlen(name);
    if (length == name_length && strncasecmp(entry, name, length) == 0)
        return true;
    if (!wildcards || length == 0 || entry[0] != '*')
        return false;
    if (length == 1)
        return true;
    /* "*.example": a name under it, not "example" itself. */
    return entry[1] == '.' && name_length > length - 1
           && strncasecmp(name + name_length - (length - 1), entry + 1, length - 1) == 0;
}

bool sb_name_list_has(const char *list, const char *name, bool wildcards)
{
    while (list && *list) {
        list += strspn(list, " \t,");
        size_t token = strcspn(list, ",");
        size_t trimmed = token;
        while (trimmed > 0 && (list[trimmed - 1] == ' ' || list[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed > 0 && entry_matches(list, trimmed, name, wildcards))
            return true;
        list += token;
    }
    return false;
}
