/* host_check.c — Host header allow-list (see host_check.h). */
#include "host_check.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "name_list.h"

#define HOST_MAX 256

static bool is_port(const char *text)
{
    if (*text == '\0')
        return true;   /* "host:" is legal (RFC 3986: the port may be empty) */
    size_t digits = strspn(text, "0123456789");
    return digits > 0 && digits <= 5 && text[digits] == '\0';
}

bool sb_host_split(const char *text, char *out, size_t size)
{
    const char *start = text, *end;
    const char *rest;
    if (*text == '[') {
        start = text + 1;
        end = strchr(start, ']');
        if (!end)
            return false;
        rest = end + 1;
        if (*rest == ':')
            rest++;
        else if (*rest != '\0')
            return false;
    }
    else {
        end = strchr(text, ':');
        if (end && strchr(end + 1, ':'))
            return false;   /* an IPv6 address needs its brackets */
        rest = end ? end + 1 : "";
        if (!end)
            end = text + strlen(text);
    }
    size_t length = (size_t) (end - start);
    if (length == 0 || length >= size || !is_port(rest))
        return false;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char) start[i] <= ' ' || start[i] == ',' || start[i] == '/'
            || (unsigned char) start[i] >= 0x7f)
            return false;
    memcpy(out, start, length);
    out[length] = '\0';
    if (length > 1 && out[length - 1] == '.')
        out[length - 1] = '\0';   /* "localhost." names the same host */
    return true;
}

static bool is_ip_address(const char *host)
{
    unsigned char address[16];
    return inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1;
}

static void add(char **list, size_t *length, const char *entry)
{
    size_t more = strlen(entry) + 1;
    char *grown = realloc(*list, *length + more + 1);
    if (!grown)
        return;
    *list = grown;
    snprintf(*list + *length, more + 1, "%s%s", *length ? "," : "", entry);
    *length += strlen(*list + *length);
}

char *sb_host_allow_list_new(const char *configured, const char *const *listen_addresses)
{
    char *list = NULL;
    size_t length = 0;
    add(&list, &length, "localhost,*.localhost");
    char name[HOST_MAX] = "";
    if (gethostname(name, sizeof name - 1) == 0 && name[0]) {
        add(&list, &length, name);
        if (!strchr(name, '.')) {
            strcat(name, ".local");   /* what mDNS (Avahi) answers to on a LAN */
            add(&list, &length, name);
        }
    }
    for (const char *const *address = listen_addresses; address && *address; address++)
        if (sb_host_split(*address, name, sizeof name))
            add(&list, &length, name);
    if (configured && *configured)
        add(&list, &length, configured);
    return list;
}

bool sb_host_allowed(const char *host, const char *list)
{
    char name[HOST_MAX];
    if (!host)
        return false;
    while (*host == ' ' || *host == '\t')
        host++;
    if (!sb_host_split(host, name, sizeof name))
        return false;
    return is_ip_address(name) || sb_name_list_has(list, name, true);
}
