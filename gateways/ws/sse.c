/* sse.c — Server-Sent Events framing (see sse.h). */
#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *sb_sse_event(const char *name, const char *data)
{
    /* At worst every byte of data is a line break that takes a "data: " of its own. */
    size_t size = strlen(name) + 8 + strlen(data) * 8 + 16;
    char *out = malloc(size), *at = out;
    at += sprintf(at, "event: %s\n", name);
    do {
        size_t line = strcspn(data, "\r\n");
        memcpy(at, "data: ", 6);
        memcpy(at + 6, data, line);
        at += 6 + line;
        *at++ = '\n';
        data += line;
        if (data[0] == '\r' && data[1] == '\n')
            data += 2;
        else if (*data)
            data++;
        else
            break;
    } while (1);
    *at++ = '\n';
    *at = '\0';
    return out;
}
