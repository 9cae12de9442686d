/* seconds.c — decimal seconds (see seconds.h). */
#include "seconds.h"

#include <stdlib.h>
#include <string.h>

bool sb_seconds_parse(const char *text, double *seconds_out)
{
    size_t length = strlen(text);
    if (length == 0 || length > SB_SECONDS_MAX_LENGTH
        || strspn(text, "0123456789.") != length || strchr(text, '.') != strrchr(text, '.')
        || strcspn(text, "0123456789") == length)
        return false;
    *seconds_out = strtod(text, NULL);
    return true;
}

long sb_seconds_to_ms(double seconds)
{
    return (long) (seconds * 1000 + 0.5);
}
