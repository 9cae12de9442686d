/* address.c — listen addresses and client addresses (see address.h). */
#include "address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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

/* SO_REUSEPORT before the bind: the kernel then spreads new connections
 * over every process listening on the port with it. */
static int share_port(uv_tcp_t *listener)
{
    uv_os_fd_t fd;
    int on = 1;
    if (uv_fileno((uv_handle_t *) listener, &fd) != 0)
        return UV_EINVAL;
    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0 ? 0 : uv_translate_sys_error(errno);
}

bool sb_address_listen(uv_loop_t *loop, uv_tcp_t *listener, void *data, const char *text,
                       bool reuse_port, uv_connection_cb on_connection)
{
    struct sockaddr_storage address;
    char error[160];
    if (!sb_address_parse(text, &address, error, sizeof error)) {
        sb_log_error("bad listen address", "error=\"%s\"", error);
        return false;
    }
    uv_tcp_init_ex(loop, listener, address.ss_family);   /* the socket now, for its options */
    listener->data = data;
    int result = reuse_port ? share_port(listener) : 0;
    if (result == 0)
        result = uv_tcp_bind(listener, (struct sockaddr *) &address, 0);
    if (result == 0)
        result = uv_listen((uv_stream_t *) listener, 511, on_connection);
    if (result != 0) {
        sb_log_error("cannot listen", "address=%s error=\"%s\"", text, uv_strerror(result));
        return false;
    }
    return true;
}

void sb_address_of_peer(const uv_tcp_t *client, char *buffer, size_t size)
{
    struct sockaddr_storage address = { .ss_family = AF_INET };
    int length = sizeof address;
    char host[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(client, (struct sockaddr *) &address, &length) == 0) {
        if (address.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *) &address, host, sizeof host);
            port = ntohs(((struct sockaddr_in6 *) &address)->sin6_port);
        }
        else {
            uv_ip4_name((struct sockaddr_in *) &address, host, sizeof host);
            port = ntohs(((struct sockaddr_in *) &address)->sin_port);
        }
    }
    snprintf(buffer, size, address.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
}

void sb_address_host(const char *address, char *host, size_t size)
{
    const char *end = address[0] == '[' ? strchr(address, ']') : strrchr(address, ':');
    const char *start = address[0] == '[' ? address + 1 : address;
    size_t length = end ? (size_t) (end - start) : strlen(start);
    snprintf(host, size, "%.*s", (int) length, start);
}

bool sb_address_is_loopback(const char *text)
{
    struct sockaddr_storage address;
    char error[160];
    if (!sb_address_parse(text, &address, error, sizeof error))
        return false;
    if (address.ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *) &address)->sin6_addr);
    return (ntohl(((struct sockaddr_in *) &address)->sin_addr.s_addr) >> 24) == 127;
}
