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

bool sb_seconds_parse_ms(const char *text, double min, double max, long *ms_out)
{
    double seconds;
    if (!sb_seconds_parse(text, &seconds) || !(seconds >= min && seconds <= max))
        return false;
    *ms_out = sb_seconds_to_ms(seconds);
    return true;
}
