/* http_sniff.c — HTTP request lines and browser headers (see http_sniff.h). */
#include "http_sniff.h"

#include <string.h>
#include <strings.h>

static bool starts_with_header(const char *line, size_t length, const char *name)
{
    size_t name_length = strlen(name);
    return length >= name_length && strncasecmp(line, name, name_length) == 0;
}

/* "METHOD TARGET HTTP/1.x": [A-Z]+ SP non-space+ SP HTTP/1.[01], nothing more. */
static bool is_request_line(const char *line, size_t length)
{
    static const char version[] = " HTTP/1.";
    size_t at = 0;
    while (at < length && line[at] >= 'A' && line[at] <= 'Z')
        at++;
    if (at == 0 || at >= length || line[at] != ' ')
        return false;
    size_t target = ++at;
    while (at < length && line[at] != ' ' && line[at] != '\t')
        at++;
    if (at == target || length - at != sizeof version)
        return false;
    return memcmp(line + at, version, sizeof version - 1) == 0
           && (line[length - 1] == '0' || line[length - 1] == '1');
}

bool sb_http_sniff_line(const char *line, size_t length)
{
    return is_request_line(line, length) || starts_with_header(line, length, "Host:")
           || starts_with_header(line, length, "Origin:");
}
