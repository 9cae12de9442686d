/* address.c — HOST:PORT parsing for listeners (see address.h). */
#include "address.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_port(const char *text, in_port_t *port)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (end == text || *end || value < 0 || value > 65535)
        return false;
    *port = htons((in_port_t) value);
    return true;
}

bool sb_address_parse(const char *text, struct sockaddr_storage *out, char *error,
                      size_t error_size)
{
    memset(out, 0, sizeof *out);
    const char *colon = strrchr(text, ':');
    char host[64];
    if (!colon || (size_t) (colon - text) >= sizeof host) {
        snprintf(error, error_size, "'%s' is not HOST:PORT", text);
        return false;
    }
    snprintf(host, sizeof host, "%.*s", (int) (colon - text), text);
    in_port_t port;
    if (!parse_port(colon + 1, &port)) {
        snprintf(error, error_size, "'%s' has no valid port (0-65535)", text);
        return false;
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *) out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) out;
    size_t length = strlen(host);
    if (length > 2 && host[0] == '[' && host[length - 1] == ']') {
        host[length - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = port;
            return true;
        }
    }
    else if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                       &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = port;
        return true;
    }
    snprintf(error, error_size, "'%s' is not an IPv4 address or a bracketed IPv6 address", host);
    return false;
}
