/* ws_client.h — one connection to the WebSocket gateway: its socket, its
 * timers (handshake, idle, ping), the order of its replies and its output.
 * The protocol itself is ws_stream's; what a request does is the router's.
 *
 * A connection is first an HTTP client; after the upgrade it is a
 * WebSocket client with a client id. JSON requests are answered by id as
 * soon as each reply is ready; command lines (§3.1) in request order,
 * tagged ones at once. While `max_inflight` requests are open its input is
 * not read; when its unsent output passes `max_output` it is disconnected. */
#ifndef SB_WS_CLIENT_H
#define SB_WS_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "access.h"
#include "reply_queue.h"
#include "tls.h"
#include "ws_stream.h"

typedef struct sb_ws_client sb_ws_client_t;

typedef struct {
    sb_ws_stream_limits_t stream;
    size_t max_inflight;
    size_t max_output;
    uint64_t tls_handshake_timeout_ms;   /* over TLS, to complete the TLS handshake */
    uint64_t handshake_timeout_ms;   /* then to send a complete HTTP request */
    uint64_t idle_timeout_ms;        /* of a WebSocket client that sends nothing */
    uint64_t ping_interval_ms;
} sb_ws_client_limits_t;

/* What a client asks of the gateway that owns it. */
typedef struct {
    /* 101 to open the upgrade, else the HTTP status that refuses it (see ws_stream.h). */
    int (*may_open)(void *owner, sb_ws_client_t *client, const sb_http_request_t *request);
    void (*on_open)(void *owner, sb_ws_client_t *client);
    void (*on_text)(void *owner, sb_ws_client_t *client, const char *text, size_t length);
    void (*on_http_request)(void *owner, sb_ws_client_t *client,
                            const sb_http_request_t *request);
    /* The client has closed; it is freed right after this returns. */
    void (*on_closed)(void *owner, sb_ws_client_t *client);
    /* The client has output to send before the loop next sleeps. */
    void (*on_output)(void *owner, sb_ws_client_t *client);
    /* Its request is being refused (421) for its Host header. */
    void (*on_misdirected)(void *owner, sb_ws_client_t *client);
} sb_ws_client_events_t;

/* Accepts a connection from `listener`, over TLS when `tls` is not NULL
 * (a failed or late handshake closes it); NULL if the accept failed. */
sb_ws_client_t *sb_ws_client_accept(uv_stream_t *listener, uint64_t serial,
                                    const sb_ws_client_limits_t *limits,
                                    const sb_ws_client_events_t *events, void *owner,
                                    sb_tls_context_t *tls);

uint64_t sb_ws_client_serial(const sb_ws_client_t *self);
/* The `owner` given to sb_ws_client_accept. */
void *sb_ws_client_owner(const sb_ws_client_t *self);
/* It has completed the WebSocket handshake. */
bool sb_ws_client_is_websocket(const sb_ws_client_t *self);
/* The close code sent to it, or 0. */
uint16_t sb_ws_client_close_code(const sb_ws_client_t *self);
/* The identity its upgrade's Authorization header proved (NULL: none). */
void sb_ws_client_set_identity(sb_ws_client_t *self, const sb_identity_t *identity);
const sb_identity_t *sb_ws_client_identity(const sb_ws_client_t *self);
void sb_ws_client_peer(const sb_ws_client_t *self, char *buffer, size_t size);

/* Reply slots: for a command line (`tag` may be NULL), or for a JSON
 * request with `id` (a reference is taken). */
sb_reply_slot_t *sb_ws_client_open_line_slot(sb_ws_client_t *self, const char *tag);
sb_reply_slot_t *sb_ws_client_open_json_slot(sb_ws_client_t *self, json_t *id);
/* Answers in the slot's form: a JSON reply, or a line. `close_after`: quit. */
void sb_ws_client_answer(sb_ws_client_t *self, sb_reply_slot_t *slot, const char *status,
                         const char *text, bool close_after);

/* A text message that answers no request (welcome, event, direct message). */
void sb_ws_client_send_text(sb_ws_client_t *self, const char *text);
/* A frame encoded before for many clients (an event: see event_frame.h). */
void sb_ws_client_send_frame(sb_ws_client_t *self, const void *frame, size_t length);
/* Answers the client's plain HTTP request. */
void sb_ws_client_respond(sb_ws_client_t *self, int status, const char *content_type,
                          const char *body, size_t length);

/* The same with more header lines (see sb_ws_stream_respond_with). */
void sb_ws_client_respond_with(sb_ws_client_t *self, int status, const char *content_type,
                               const char *headers, const char *body, size_t length);
/* Answers with a head alone and keeps the response open (Server-Sent
 * Events): its body is what sb_ws_client_stream_write writes, and
 * `keepalive` (a static string) every ping interval. Output limits hold as
 * for WebSocket clients; it ends when either side closes. */
void sb_ws_client_stream_start(sb_ws_client_t *self, const char *content_type,
                               const char *headers, const char *keepalive);
void sb_ws_client_stream_write(sb_ws_client_t *self, const char *data, size_t length);
/* Ends the open response once what was written is sent. */
void sb_ws_client_stream_end(sb_ws_client_t *self);

/* What the HTTP API keeps for this client's request (http_api.c), or NULL. */
void sb_ws_client_set_api(sb_ws_client_t *self, void *api);
void *sb_ws_client_api(const sb_ws_client_t *self);

/* Sends buffered output; called by the owner before the loop sleeps. */
void sb_ws_client_flush(sb_ws_client_t *self);

/* A graceful stop: no more requests; close (1001) once every open one is answered. */
void sb_ws_client_finish(sb_ws_client_t *self);
/* Closes the socket at once. */
void sb_ws_client_close(sb_ws_client_t *self);

#endif
