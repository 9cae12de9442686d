/* ws_stream.h — the bytes of one connection to the WebSocket gateway, from
 * the first HTTP request to the close frame, without any socket: bytes go
 * in through sb_ws_stream_feed and come out through the `write` event. So
 * the whole input path (HTTP head, handshake, frames, UTF-8, limits) runs
 * in a fuzzer exactly as in the gateway.
 *
 * A connection starts as HTTP. An acceptable upgrade request becomes a
 * WebSocket session (wslay frames the messages); any other request is
 * handed to the owner, who answers it with sb_ws_stream_respond. Either
 * must name an allowed Host first (host_check.h), else 421. Only a path
 * under /api/ may use another method than GET or HEAD (else 405); a body
 * is read up to `max_body` bytes (else 413), answering `Expect:
 * 100-continue` once its head is judged. Input
 * that breaks RFC 6455 is answered with the close code it prescribes:
 * 1002 protocol error, 1003 binary data, 1007 invalid UTF-8, 1009 too big.
 *
 * With a `subprotocol` (MQTT over WebSocket: "mqtt"), an upgrade must
 * offer it in Sec-WebSocket-Protocol (else 400), the 101 names it, and the
 * messages are binary (on_binary, sb_ws_stream_send_binary); text is then
 * refused with 1003. */
#ifndef SB_WS_STREAM_H
#define SB_WS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_request.h"

#define SB_WS_CLOSE_NORMAL 1000
#define SB_WS_CLOSE_GOING_AWAY 1001
#define SB_WS_CLOSE_PROTOCOL_ERROR 1002
#define SB_WS_CLOSE_UNSUPPORTED_DATA 1003
#define SB_WS_CLOSE_INVALID_DATA 1007
#define SB_WS_CLOSE_TOO_BIG 1009

typedef struct sb_ws_stream sb_ws_stream_t;

typedef struct {
    size_t max_head;               /* bytes of an HTTP request head */
    size_t max_message;            /* bytes of a WebSocket frame or message */
    const char *allowed_origins;   /* see sb_handshake_origin_allowed */
    const char *allowed_hosts;     /* see sb_host_allowed (NULL: IP addresses only) */
    const char *subprotocol;       /* NULL: text messages, no subprotocol */
    size_t max_body;               /* bytes of a request body (0: none; else 413) */
} sb_ws_stream_limits_t;

typedef struct {
    /* Bytes for the client. */
    void (*write)(void *owner, const void *data, size_t length);
    /* An HTTP request that is not an upgrade; answer with sb_ws_stream_respond. */
    void (*on_http_request)(void *owner, const sb_http_request_t *request);
    /* May this upgrade open? 101 yes; else the status to refuse it with:
     * 503 (too many clients), 401 (its Authorization header is refused) or
     * 429 (its address must wait after failed credentials). */
    int (*may_open)(void *owner, const sb_http_request_t *request);
    /* The handshake is done: the client speaks WebSocket now. */
    void (*on_open)(void *owner);
    /* One complete text message (valid UTF-8, not NUL-terminated). */
    void (*on_text)(void *owner, const char *text, size_t length);
    /* Nothing more will be read or written: close once the output is sent. */
    void (*on_done)(void *owner);
    /* The request is being refused (421) for its Host header. */
    void (*on_misdirected)(void *owner);
    /* One complete binary message (only with a subprotocol; else may be NULL). */
    void (*on_binary)(void *owner, const uint8_t *data, size_t length);
} sb_ws_stream_events_t;

sb_ws_stream_t *sb_ws_stream_new(const sb_ws_stream_limits_t *limits,
                                 const sb_ws_stream_events_t *events, void *owner);
void sb_ws_stream_destroy(sb_ws_stream_t **self_p);

/* Bytes from the client. */
void sb_ws_stream_feed(sb_ws_stream_t *self, const char *data, size_t length);

/* Answers the HTTP request (Connection: close), then done. */
void sb_ws_stream_respond(sb_ws_stream_t *self, int status, const char *content_type,
                          const char *body, size_t length);
/* The same with more header lines (each ending in CRLF; NULL: none). With
 * `body` NULL the head goes alone, without Content-Length, and the stream
 * stays answering: the owner writes the body through the `write` event
 * (Server-Sent Events) and ends it with sb_ws_stream_close. */
void sb_ws_stream_respond_with(sb_ws_stream_t *self, int status, const char *content_type,
                               const char *headers, const char *body, size_t length);
/* An error answer: text, or for a path under /api/ the API's JSON error
 * ({"error":{"code","message"}}, the code chosen by the status). */
void sb_ws_stream_refuse(sb_ws_stream_t *self, int status, const char *message);

/* A text message to the client (valid UTF-8); ignored once closing. */
void sb_ws_stream_send_text(sb_ws_stream_t *self, const char *text, size_t length);
/* A binary message (with a subprotocol); ignored once closing. */
void sb_ws_stream_send_binary(sb_ws_stream_t *self, const void *data, size_t length);
void sb_ws_stream_ping(sb_ws_stream_t *self);

/* A frame encoded before (header and payload, unmasked: the same bytes for
 * every client, see sb_ws_frame_header); ignored once closing. */
void sb_ws_stream_send_frame(sb_ws_stream_t *self, const void *frame, size_t length);

#define SB_WS_FRAME_HEADER_MAX 10
/* The header of a server's single-frame message (FIN, `opcode`, no mask)
 * of `length` payload bytes; returns its size. */
size_t sb_ws_frame_header(uint8_t header[SB_WS_FRAME_HEADER_MAX], uint8_t opcode, size_t length);

/* Starts the close handshake with `code`; before the upgrade it just ends. */
void sb_ws_stream_close(sb_ws_stream_t *self, uint16_t code, const char *reason);

/* A WebSocket session that has not started closing. */
bool sb_ws_stream_is_open(const sb_ws_stream_t *self);

/* The close code sent, or 0. */
uint16_t sb_ws_stream_close_code(const sb_ws_stream_t *self);

#endif
