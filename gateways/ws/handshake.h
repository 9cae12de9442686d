/* handshake.h — the server side of the WebSocket opening handshake
 * (RFC 6455 §4.2): is this upgrade request acceptable, and the
 * Sec-WebSocket-Accept answer to its key. */
#ifndef SB_HANDSHAKE_H
#define SB_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "http_request.h"

#define SB_HANDSHAKE_ACCEPT_SIZE 29   /* base64 of a SHA-1, with its NUL */

typedef struct {
    int status;                       /* 101 to accept, else the HTTP status to refuse with */
    const char *reason;               /* why it was refused, for the body and the log */
    char accept[SB_HANDSHAKE_ACCEPT_SIZE];
} sb_handshake_t;

/* Checks an upgrade request: GET, Upgrade: websocket with Connection: Upgrade, a 16-byte base64
 * key, version 13 (else 426), and its Origin against `allowed_origins`. */
sb_handshake_t sb_handshake_check(const sb_http_request_t *request, const char *allowed_origins);

/* base64(SHA-1(key + the RFC's GUID)), with czmq's zdigest and zarmour. */
void sb_handshake_accept_key(const char *key, char accept[SB_HANDSHAKE_ACCEPT_SIZE]);

/* May a page from `origin` connect? `allowed` is a comma-separated list of
 * origins ("http://hub.local:8080"), where `self` stands for pages served
 * by this host (the origin's host:port equals the Host header) and `*` for
 * any; empty means `self`. Clients that send no Origin (not browsers) may
 * always connect. */
bool sb_handshake_origin_allowed(const char *origin, const char *host, const char *allowed);

#endif
