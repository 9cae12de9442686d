/* handshake.c — WebSocket opening handshake checks (see handshake.h). */
#include "handshake.h"

#include <czmq.h>
#include <string.h>
#include <strings.h>

#include "name_list.h"

#define WEBSOCKET_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void sb_handshake_accept_key(const char *key, char accept[SB_HANDSHAKE_ACCEPT_SIZE])
{
    zdigest_t *digest = zdigest_new();
    zdigest_update(digest, (const byte *) key, strlen(key));
    zdigest_update(digest, (const byte *) WEBSOCKET_GUID, strlen(WEBSOCKET_GUID));
    zarmour_t *armour = zarmour_new();
    zarmour_set_mode(armour, ZARMOUR_MODE_BASE64_STD);
    zarmour_set_pad(armour, true);
    char *encoded = zarmour_encode(armour, zdigest_data(digest), zdigest_size(digest));
    snprintf(accept, SB_HANDSHAKE_ACCEPT_SIZE, "%s", encoded ? encoded : "");
    zstr_free(&encoded);
    zarmour_destroy(&armour);
    zdigest_destroy(&digest);
}

/* The key must be 16 bytes in base64: 22 characters, the last holding only
 * 2 bits, then "==". */
static bool key_is_valid(const char *key)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!key || strlen(key) != 24 || strcmp(key + 22, "==") != 0)
        return false;
    for (int i = 0; i < 22; i++)
        if (!strchr(alphabet, key[i]))
            return false;
    return strchr("AQgw", key[21]) != NULL;
}

/* The origin's host[:port] is the Host the request was sent to. */
static bool same_host(const char *origin, const char *host)
{
    const char *authority = strstr(origin, "://");
    return authority && host && strcasecmp(authority + 3, host) == 0;
}

bool sb_handshake_origin_allowed(const char *origin, const char *host, const char *allowed)
{
    if (!origin)
        return true;
    if (!allowed || !*allowed)
        allowed = "self";
    bool is_keyword = strcmp(origin, "self") == 0 || strcmp(origin, "*") == 0;
    return sb_name_list_has(allowed, "*", false)
           || (!is_keyword && sb_name_list_has(allowed, origin, false))
           || (sb_name_list_has(allowed, "self", false) && same_host(origin, host));
}

static sb_handshake_t refuse(int status, const char *reason)
{
    return (sb_handshake_t) { .status = status, .reason = reason };
}

sb_handshake_t sb_handshake_check(const sb_http_request_t *request, const char *allowed_origins)
{
    if (strcmp(sb_http_request_method(request), "GET") != 0)
        return refuse(400, "a WebSocket upgrade must be a GET request");
    const char *upgrade = sb_http_request_header(request, "Upgrade");
    if (!upgrade || strcasecmp(upgrade, "websocket") != 0)
        return refuse(400, "only Upgrade: websocket is supported");
    if (!sb_http_request_is_upgrade(request))
        return refuse(400, "an upgrade needs Connection: Upgrade");
    const char *version = sb_http_request_header(request, "Sec-WebSocket-Version");
    if (!version || strcmp(version, "13") != 0)
        return refuse(426, "only WebSocket version 13 is supported");
    const char *key = sb_http_request_header(request, "Sec-WebSocket-Key");
    if (!key_is_valid(key))
        return refuse(400, "Sec-WebSocket-Key must be 16 bytes in base64");
    if (!sb_handshake_origin_allowed(sb_http_request_header(request, "Origin"),
                                     sb_http_request_header(request, "Host"), allowed_origins))
        return refuse(403, "pages from this origin may not connect (see --allow-origin)");
    sb_handshake_t accepted = { .status = 101 };
    sb_handshake_accept_key(key, accepted.accept);
    return accepted;
}
