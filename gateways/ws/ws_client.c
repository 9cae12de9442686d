/* ws_client.c — one WebSocket gateway connection on libuv (see ws_client.h).
 *
 * Reads land in one buffer shared by every client: ws_stream consumes each
 * read at once (wslay keeps what it needs), so an idle client costs no
 * read buffer. When the stream is done, the client sends what is left,
 * shuts its side down and reads until the peer closes too (or a short
 * linger passes): closing with unread input would reset the connection
 * and could destroy the close frame before the peer reads it.
 *
 * Over TLS (gateways/tls.h) reads go into the session and its plaintext
 * into the stream; the TLS handshake has its own deadline, then the HTTP
 * request its usual one. */
#include "ws_client.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "client_output.h"
#include "log.h"
#include "utf8.h"
#include "ws_json.h"

#define READ_BUFFER_SIZE 65536
#define LINGER_MS 2000

typedef enum {
    TIMER_TLS,           /* until the TLS handshake is done */
    TIMER_HANDSHAKE,     /* until the request head is complete */
    TIMER_IDLE,          /* restarted by every read of a WebSocket client */
    TIMER_LINGER,        /* after the stream is done, until the peer closes */
} timer_role_t;

struct sb_ws_client {
    uv_tcp_t handle;
    uv_timer_t timer;            /* handshake, idle or linger: see `timer_role` */
    uv_timer_t ping_timer;
    timer_role_t timer_role;
    uint64_t serial;
    sb_ws_client_limits_t limits;
    const sb_ws_client_events_t *events;
    void *owner;
    sb_ws_stream_t *stream;
    sb_tls_session_t *tls;       /* NULL: plain */
    sb_reply_queue_t replies;
    sb_client_output_t output;
    int open_handles;            /* closed one by one; freed at zero */
    bool accepted;
    bool websocket;
    bool reading;
    bool finishing;              /* graceful stop: no more requests */
    bool done;                   /* the stream is done: flush, shut down, linger */
    bool closed;
    const sb_identity_t *identity;   /* proved by the upgrade's Bearer header, or NULL */
    void *api;                   /* the HTTP API's request state, or NULL */
    const char *keepalive;       /* an open HTTP response (SSE): sent every ping interval */
};

static char s_read_buffer[READ_BUFFER_SIZE];
static char s_plaintext_buffer[READ_BUFFER_SIZE];   /* what TLS makes of a read */

static void start_reading(sb_ws_client_t *self);

/* ---------------------------------------------------------------- lifecycle */

static void on_handle_closed(uv_handle_t *handle)
{
    sb_ws_client_t *self = handle->data;
    if (--self->open_handles > 0)
        return;
    if (self->accepted)
        self->events->on_closed(self->owner, self);
    sb_reply_queue_clear(&self->replies);
    sb_client_output_free(&self->output);
    sb_ws_stream_destroy(&self->stream);
    sb_tls_session_destroy(&self->tls);
    free(self);
}

void sb_ws_client_close(sb_ws_client_t *self)
{
    if (self->closed)
        return;
    self->closed = true;
    uv_close((uv_handle_t *) &self->handle, on_handle_closed);
    uv_close((uv_handle_t *) &self->timer, on_handle_closed);
    uv_close((uv_handle_t *) &self->ping_timer, on_handle_closed);
}

static void on_timer(uv_timer_t *timer);

static void start_timer(sb_ws_client_t *self, timer_role_t role, uint64_t timeout_ms)
{
    self->timer_role = role;
    uv_timer_start(&self->timer, on_timer, timeout_ms, role == TIMER_IDLE ? timeout_ms : 0);
}

static void on_ping_timer(uv_timer_t *timer)
{
    sb_ws_client_t *self = timer->data;
    if (self->keepalive)
        sb_ws_client_stream_write(self, self->keepalive, strlen(self->keepalive));
    else
        sb_ws_stream_ping(self->stream);
}

/* ---------------------------------------------------------------- output */

static void on_write_error(uv_stream_t *stream)
{
    sb_ws_client_close(stream->data);
}

static void on_shutdown(uv_shutdown_t *request, int status)
{
    (void) status;
    free(request);
}

void sb_ws_client_flush(sb_ws_client_t *self)
{
    if (self->closed)
        return;
    if (sb_client_output_flush(&self->output, (uv_stream_t *) &self->handle, on_write_error) < 0) {
        sb_ws_client_close(self);   /* the client is gone */
        return;
    }
    size_t unsent = sb_client_output_unsent((uv_stream_t *) &self->handle);
    if (unsent > self->limits.max_output) {
        sb_log_warn("client does not read, disconnecting", "serial=%" PRIu64 " unsent_bytes=%zu",
                    self->serial, unsent);
        sb_ws_client_close(self);
        return;
    }
    if (self->done && self->timer_role != TIMER_LINGER) {
        if (sb_client_output_end(&self->output, (uv_stream_t *) &self->handle, on_write_error) < 0) {
            sb_ws_client_close(self);
            return;
        }
        /* Everything is written; the shutdown sends FIN after the queued writes. */
        uv_shutdown_t *request = malloc(sizeof *request);
        if (uv_shutdown(request, (uv_stream_t *) &self->handle, on_shutdown) != 0) {
            free(request);
            sb_ws_client_close(self);
            return;
        }
        uv_timer_stop(&self->ping_timer);
        start_timer(self, TIMER_LINGER, LINGER_MS);
        start_reading(self);   /* to see the peer's EOF */
    }
}

static void stream_write(void *owner, const void *data, size_t length)
{
    sb_ws_client_t *self = owner;
    if (!self->closed && sb_client_output_append(&self->output, data, length))
        self->events->on_output(self->owner, self);
}

/* ---------------------------------------------------------------- input */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
    (void) handle;
    (void) suggested;
    *buffer = uv_buf_init(s_read_buffer, sizeof s_read_buffer);
}

static void schedule_tls_output(sb_ws_client_t *self)
{
    if (sb_tls_session_has_output(self->tls))
        self->events->on_output(self->owner, self);
}

/* Feeds the session, and the stream with its plaintext; closes on a failure or close_notify. */
static void take_records(sb_ws_client_t *self, const char *data, size_t length)
{
    bool was_ready = sb_tls_session_state(self->tls) == SB_TLS_READY;
    sb_tls_session_feed(self->tls, data, length);
    if (!was_ready && sb_tls_session_state(self->tls) == SB_TLS_READY)
        start_timer(self, TIMER_HANDSHAKE, self->limits.handshake_timeout_ms);
    size_t got;
    while (!self->closed && !self->done
           && (got = sb_tls_session_read(self->tls, s_plaintext_buffer,
                                         sizeof s_plaintext_buffer)) > 0)
        sb_ws_stream_feed(self->stream, s_plaintext_buffer, got);
    schedule_tls_output(self);
    switch (sb_tls_session_state(self->tls)) {
    case SB_TLS_FAILED:
        sb_ws_client_flush(self);   /* the alert, if any */
        /* fall through */
    case SB_TLS_CLOSED:             /* close_notify: like EOF */
        sb_ws_client_close(self);
        break;
    default:
        break;
    }
}

static void on_read(uv_stream_t *stream, ssize_t count, const uv_buf_t *buffer)
{
    sb_ws_client_t *self = stream->data;
    if (count < 0) {   /* EOF or error: the peer is gone or has finished */
        sb_ws_client_close(self);
        return;
    }
    if (count == 0 || self->done)
        return;        /* after the stream is done, input is only drained */
    if (self->websocket)
        uv_timer_again(&self->timer);
    if (self->tls)
        take_records(self, buffer->base, (size_t) count);
    else
        sb_ws_stream_feed(self->stream, buffer->base, (size_t) count);
}

static void start_reading(sb_ws_client_t *self)
{
    if (self->reading || self->closed)
        return;
    uv_read_start((uv_stream_t *) &self->handle, on_alloc, on_read);
    self->reading = true;
}

static void stop_reading(sb_ws_client_t *self)
{
    if (!self->reading)
        return;
    uv_read_stop((uv_stream_t *) &self->handle);
    self->reading = false;
}

/* A client with `max_inflight` requests open waits for its replies before more is read. */
static void pace_input(sb_ws_client_t *self)
{
    if (self->done || self->closed)
        return;
    if (self->replies.open >= self->limits.max_inflight)
        stop_reading(self);
    else
        start_reading(self);
}

static void on_timer(uv_timer_t *timer)
{
    sb_ws_client_t *self = timer->data;
    switch (self->timer_role) {
    case TIMER_TLS:
        sb_tls_session_expire(self->tls);
        sb_ws_client_close(self);
        break;
    case TIMER_HANDSHAKE:
        sb_ws_stream_refuse(self->stream, 408, "request not received in time");
        break;
    case TIMER_IDLE:
        sb_log_info("idle client closed", "serial=%" PRIu64, self->serial);
        sb_ws_stream_close(self->stream, SB_WS_CLOSE_GOING_AWAY, "idle timeout");
        break;
    case TIMER_LINGER:
        sb_ws_client_close(self);
        break;
    }
}

/* ---------------------------------------------------------------- stream events */

static int stream_may_open(void *owner, const sb_http_request_t *request)
{
    sb_ws_client_t *self = owner;
    return self->events->may_open(self->owner, self, request);
}

static void stream_open(void *owner)
{
    sb_ws_client_t *self = owner;
    self->websocket = true;
    start_timer(self, TIMER_IDLE, self->limits.idle_timeout_ms);
    uv_timer_start(&self->ping_timer, on_ping_timer, self->limits.ping_interval_ms,
                   self->limits.ping_interval_ms);
    self->events->on_open(self->owner, self);
}

static void stream_text(void *owner, const char *text, size_t length)
{
    sb_ws_client_t *self = owner;
    if (self->finishing)
        return;   /* the gateway is stopping: requests it would not answer are not taken */
    self->events->on_text(self->owner, self, text, length);
    pace_input(self);
}

static void stream_http_request(void *owner, const sb_http_request_t *request)
{
    sb_ws_client_t *self = owner;
    uv_timer_stop(&self->timer);
    self->events->on_http_request(self->owner, self, request);
}

static void stream_done(void *owner)
{
    sb_ws_client_t *self = owner;
    self->done = true;
    uv_timer_stop(&self->timer);
    self->events->on_output(self->owner, self);   /* the flush shuts down and lingers */
}

static void stream_misdirected(void *owner)
{
    sb_ws_client_t *self = owner;
    self->events->on_misdirected(self->owner, self);
}

static const sb_ws_stream_events_t s_stream_events = {
    stream_write, stream_http_request, stream_may_open, stream_open, stream_text, stream_done,
    stream_misdirected, NULL,
};

/* ---------------------------------------------------------------- replies */

static void free_request_id(void *id)
{
    json_decref(id);
}

sb_reply_slot_t *sb_ws_client_open_line_slot(sb_ws_client_t *self, const char *tag)
{
    return sb_reply_queue_open(&self->replies, tag == NULL, tag, NULL);
}

sb_reply_slot_t *sb_ws_client_open_json_slot(sb_ws_client_t *self, json_t *id)
{
    return sb_reply_queue_open(&self->replies, false, NULL, json_incref(id));
}

/* Sends every reply that may go now; a last reply (quit) closes with 1000 after it. */
static void send_ready_replies(sb_ws_client_t *self)
{
    sb_reply_slot_t *slot;
    while ((slot = sb_reply_queue_next_ready(&self->replies))) {
        bool close_after = sb_reply_slot_close_after(slot);
        sb_ws_client_send_text(self, sb_reply_slot_reply(slot));
        sb_reply_queue_remove(&self->replies, slot);
        if (close_after)
            sb_ws_stream_close(self->stream, SB_WS_CLOSE_NORMAL, "bye");
    }
    if (self->finishing && self->replies.open == 0)
        sb_ws_stream_close(self->stream, SB_WS_CLOSE_GOING_AWAY, "the gateway is stopping");
}

void sb_ws_client_answer(sb_ws_client_t *self, sb_reply_slot_t *slot, const char *status,
                         const char *text, bool close_after)
{
    json_t *id = sb_reply_slot_request(slot);
    char *reply = id ? sb_ws_json_reply(id, status, text ? text : "")
                     : sb_reply_format_line(sb_reply_slot_tag(slot), status, text ? text : "");
    sb_reply_queue_answer(slot, reply, close_after);
    if (self->closed)
        return;
    send_ready_replies(self);
    pace_input(self);
}

void sb_ws_client_send_text(sb_ws_client_t *self, const char *text)
{
    if (self->closed)
        return;
    if (sb_utf8_is_valid(text, strlen(text))) {
        sb_ws_stream_send_text(self->stream, text, strlen(text));
        return;
    }
    /* A line reply carries a command's output as it is: a text frame must be UTF-8. */
    char *repaired = sb_utf8_repair(text);
    sb_ws_stream_send_text(self->stream, repaired, strlen(repaired));
    free(repaired);
}

void sb_ws_client_send_frame(sb_ws_client_t *self, const void *frame, size_t length)
{
    if (!self->closed)
        sb_ws_stream_send_frame(self->stream, frame, length);
}

void sb_ws_client_respond(sb_ws_client_t *self, int status, const char *content_type,
                          const char *body, size_t length)
{
    if (!self->closed)
        sb_ws_stream_respond(self->stream, status, content_type, body, length);
}

void sb_ws_client_respond_with(sb_ws_client_t *self, int status, const char *content_type,
                               const char *headers, const char *body, size_t length)
{
    if (!self->closed)
        sb_ws_stream_respond_with(self->stream, status, content_type, headers, body, length);
}

void sb_ws_client_stream_start(sb_ws_client_t *self, const char *content_type,
                               const char *headers, const char *keepalive)
{
    if (self->closed)
        return;
    sb_ws_stream_respond_with(self->stream, 200, content_type, headers, NULL, 0);
    self->keepalive = keepalive;
    uv_timer_start(&self->ping_timer, on_ping_timer, self->limits.ping_interval_ms,
                   self->limits.ping_interval_ms);
}

void sb_ws_client_stream_write(sb_ws_client_t *self, const char *data, size_t length)
{
    if (!self->done)   /* after the end, nothing may follow the shutdown */
        stream_write(self, data, length);
}

void sb_ws_client_stream_end(sb_ws_client_t *self)
{
    if (!self->closed)
        sb_ws_stream_close(self->stream, SB_WS_CLOSE_NORMAL, NULL);
}

void sb_ws_client_set_api(sb_ws_client_t *self, void *api)
{
    self->api = api;
}

void *sb_ws_client_api(const sb_ws_client_t *self)
{
    return self->api;
}

/* ---------------------------------------------------------------- the rest */

sb_ws_client_t *sb_ws_client_accept(uv_stream_t *listener, uint64_t serial,
                                    const sb_ws_client_limits_t *limits,
                                    const sb_ws_client_events_t *events, void *owner,
                                    sb_tls_context_t *tls)
{
    sb_ws_client_t *self = calloc(1, sizeof *self);
    self->serial = serial;
    self->limits = *limits;
    self->events = events;
    self->owner = owner;
    sb_reply_queue_init(&self->replies, free_request_id);
    uv_tcp_init(listener->loop, &self->handle);
    uv_timer_init(listener->loop, &self->timer);
    uv_timer_init(listener->loop, &self->ping_timer);
    self->handle.data = self->timer.data = self->ping_timer.data = self;
    self->open_handles = 3;
    self->stream = sb_ws_stream_new(&limits->stream, &s_stream_events, self);
    if (uv_accept(listener, (uv_stream_t *) &self->handle) != 0) {
        sb_ws_client_close(self);   /* freed without telling the owner: it never had it */
        return NULL;
    }
    self->accepted = true;
    uv_tcp_nodelay(&self->handle, 1);
    if (tls) {
        char peer[80];
        sb_address_of_peer(&self->handle, peer, sizeof peer);
        self->tls = sb_tls_session_new(tls, peer);
        self->output.tls = self->tls;
        start_timer(self, TIMER_TLS, limits->tls_handshake_timeout_ms);
    }
    else
        start_timer(self, TIMER_HANDSHAKE, limits->handshake_timeout_ms);
    start_reading(self);
    return self;
}

void *sb_ws_client_owner(const sb_ws_client_t *self)
{
    return self->owner;
}

uint64_t sb_ws_client_serial(const sb_ws_client_t *self)
{
    return self->serial;
}

bool sb_ws_client_is_websocket(const sb_ws_client_t *self)
{
    return self->websocket;
}

uint16_t sb_ws_client_close_code(const sb_ws_client_t *self)
{
    return sb_ws_stream_close_code(self->stream);
}


void sb_ws_client_set_identity(sb_ws_client_t *self, const sb_identity_t *identity)
{
    self->identity = identity;
}

const sb_identity_t *sb_ws_client_identity(const sb_ws_client_t *self)
{
    return self->identity;
}

void sb_ws_client_peer(const sb_ws_client_t *self, char *buffer, size_t size)
{
    sb_address_of_peer(&self->handle, buffer, size);
}

void sb_ws_client_finish(sb_ws_client_t *self)
{
    if (self->closed || self->finishing)
        return;
    self->finishing = true;
    if (!self->websocket)
        sb_ws_client_close(self);
    else
        send_ready_replies(self);   /* closes now if nothing is open */
}
