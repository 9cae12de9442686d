/* mqtt_client.c — one MQTT connection's transport (see mqtt_client.h).
 *
 * Reads go through the codec's framer (mqtt_packet.h), which hands over
 * each whole packet as soon as it is there and buffers at most one that
 * spans reads; a packet whose fixed header announces more than max_packet
 * ends the connection before its body is read. */
#include "mqtt_client.h"

#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "client_output.h"
#include "log.h"
#include "mqtt_packet.h"

#define READ_CHUNK 65536

struct sb_mqtt_client {
    uv_tcp_t handle;
    uv_timer_t timer;          /* connect deadline, then keep alive */
    uv_idle_t resume;          /* hands over held bytes after a resume, outside any callback */
    int open_handles;
    sb_tls_session_t *tls;
    uint64_t serial;
    sb_mqtt_client_limits_t limits;
    const sb_mqtt_client_events_t *events;
    void *owner;
    void *data;

    sb_mqtt_framer_t *framer;   /* bytes -> whole packets, at most max_packet each */
    sb_ws_stream_t *ws;         /* MQTT over WebSocket; NULL: bytes straight on TCP (or TLS) */
    sb_client_output_t output;
    uint64_t keep_alive_ms;    /* 1.5 x the client's keep alive; 0: none */
    uint8_t *held;             /* MQTT bytes read while paused, not framed yet */
    size_t held_length;

    bool ready, reading, ending, shutting_down, closed, paused;
};

/* Reads land here; the framer copies only a packet that spans reads. */
static uint8_t s_read_buffer[READ_CHUNK];

static void take_bytes(sb_mqtt_client_t *self, const uint8_t *data, size_t length);
static void append_output(sb_mqtt_client_t *self, const void *data, size_t length);

/* ---------------------------------------------------------------- WebSocket */

static void ws_write(void *owner, const void *data, size_t length)
{
    append_output(owner, data, length);
}

static void ws_http_request(void *owner, const sb_http_request_t *request)
{
    sb_mqtt_client_t *self = owner;
    static const char text[] = "MQTT over WebSocket only (subprotocol mqtt)\n";
    if (self->events->on_http)
        self->events->on_http(self->owner, self, sb_http_request_path(request));
    else
        sb_ws_stream_respond(self->ws, 426, "text/plain", text, sizeof text - 1);
}

void sb_mqtt_client_respond(sb_mqtt_client_t *self, int status, const char *content_type,
                            const char *body, size_t length)
{
    if (self->ws)
        sb_ws_stream_respond(self->ws, status, content_type, body, length);
}

static int ws_may_open(void *owner, const sb_http_request_t *request)
{
    (void) owner;
    (void) request;
    return 101;
}

static void ws_open(void *owner)
{
    (void) owner;
}

static void ws_text(void *owner, const char *text, size_t length)
{
    (void) owner;
    (void) text;
    (void) length;
}

/* The WebSocket is over (closed, refused, or an HTTP answer sent). */
static void ws_done(void *owner)
{
    sb_mqtt_client_end(owner);
}

/* Never: the MQTT listeners answer to any Host. */
static void ws_misdirected(void *owner)
{
    (void) owner;
}

static void ws_binary(void *owner, const uint8_t *data, size_t length)
{
    take_bytes(owner, data, length);
}

static const sb_ws_stream_events_t s_ws_events = {
    ws_write, ws_http_request, ws_may_open, ws_open, ws_text, ws_done, ws_misdirected, ws_binary,
};

/* ---------------------------------------------------------------- lifecycle */

static void free_client(uv_handle_t *handle)
{
    sb_mqtt_client_t *self = handle->data;
    if (--self->open_handles > 0)
        return;
    if (self->events)
        self->events->on_closed(self->owner, self);
    sb_client_output_free(&self->output);
    sb_tls_session_destroy(&self->tls);
    sb_mqtt_framer_destroy(&self->framer);
    sb_ws_stream_destroy(&self->ws);
    free(self->held);
    free(self);
}

void sb_mqtt_client_close(sb_mqtt_client_t *self)
{
    if (self->closed)
        return;
    self->closed = true;
    uv_close((uv_handle_t *) &self->handle, free_client);
    uv_close((uv_handle_t *) &self->timer, free_client);
    uv_close((uv_handle_t *) &self->resume, free_client);
}

bool sb_mqtt_client_is_closing(const sb_mqtt_client_t *self)
{
    return self->closed || self->ending;
}

static void stop_reading(sb_mqtt_client_t *self)
{
    if (self->reading)
        uv_read_stop((uv_stream_t *) &self->handle);
    self->reading = false;
}

static void fail(sb_mqtt_client_t *self, sb_mqtt_client_failure_t why)
{
    if (self->closed || self->ending)
        return;
    self->events->on_failure(self->owner, self, why);
    sb_mqtt_client_end(self);
}

static void on_timer(uv_timer_t *timer)
{
    sb_mqtt_client_t *self = timer->data;
    if (self->tls && sb_tls_session_state(self->tls) == SB_TLS_HANDSHAKE) {
        sb_tls_session_expire(self->tls);
        sb_mqtt_client_close(self);
        return;
    }
    if (!self->keep_alive_ms) {   /* no CONNECT in time */
        sb_log_info("mqtt client sent no CONNECT in time, closing", "serial=%llu",
                    (unsigned long long) self->serial);
        sb_mqtt_client_close(self);
        return;
    }
    fail(self, SB_MQTT_CLIENT_KEEP_ALIVE);
}

sb_mqtt_client_t *sb_mqtt_client_accept(uv_stream_t *listener, uint64_t serial,
                                        const sb_mqtt_client_limits_t *limits,
                                        const sb_mqtt_client_events_t *events, void *owner,
                                        sb_tls_context_t *tls, const sb_ws_stream_limits_t *ws)
{
    sb_mqtt_client_t *self = calloc(1, sizeof *self);
    self->serial = serial;
    self->limits = *limits;
    self->owner = owner;
    self->framer = sb_mqtt_framer_new(limits->max_packet);
    uv_tcp_init(listener->loop, &self->handle);
    uv_timer_init(listener->loop, &self->timer);
    uv_idle_init(listener->loop, &self->resume);
    self->handle.data = self->timer.data = self->resume.data = self;
    self->open_handles = 3;
    if (uv_accept(listener, (uv_stream_t *) &self->handle) != 0) {
        sb_mqtt_client_close(self);
        return NULL;
    }
    self->events = events;
    uv_tcp_nodelay(&self->handle, 1);
    if (tls) {
        char peer[80];
        sb_address_of_peer(&self->handle, peer, sizeof peer);
        self->tls = sb_tls_session_new(tls, peer);
        self->output.tls = self->tls;
    }
    if (ws)
        self->ws = sb_ws_stream_new(ws, &s_ws_events, self);
    uv_timer_start(&self->timer, on_timer, limits->connect_timeout_ms, 0);
    return self;
}

uint64_t sb_mqtt_client_serial(const sb_mqtt_client_t *self)
{
    return self->serial;
}

void sb_mqtt_client_peer(sb_mqtt_client_t *self, char *buffer, size_t size)
{
    sb_address_of_peer(&self->handle, buffer, size);
}

void sb_mqtt_client_set_data(sb_mqtt_client_t *self, void *data)
{
    self->data = data;
}

void *sb_mqtt_client_data(const sb_mqtt_client_t *self)
{
    return self->data;
}

void sb_mqtt_client_keep_alive(sb_mqtt_client_t *self, unsigned seconds)
{
    self->keep_alive_ms = (uint64_t) seconds * 1500;
    uv_timer_stop(&self->timer);
    /* Repeating, so uv_timer_again restarts it on every packet. */
    if (self->keep_alive_ms)
        uv_timer_start(&self->timer, on_timer, self->keep_alive_ms, self->keep_alive_ms);
}

/* ---------------------------------------------------------------- output */

static void append_output(sb_mqtt_client_t *self, const void *data, size_t length)
{
    if (self->closed || self->shutting_down)
        return;
    if (sb_client_output_append(&self->output, data, length))
        self->events->on_output(self->owner, self);
}

void sb_mqtt_client_write(sb_mqtt_client_t *self, const void *data, size_t length)
{
    if (self->ws)
        sb_ws_stream_send_binary(self->ws, data, length);
    else
        append_output(self, data, length);
}

static void on_write_error(uv_stream_t *stream)
{
    sb_mqtt_client_close(stream->data);
}

static void on_shutdown(uv_shutdown_t *request, int status)
{
    (void) status;
    sb_mqtt_client_close(request->handle->data);
    free(request);
}

void sb_mqtt_client_flush(sb_mqtt_client_t *self)
{
    if (self->closed || self->shutting_down)
        return;
    uv_stream_t *stream = (uv_stream_t *) &self->handle;
    if (sb_client_output_flush(&self->output, stream, on_write_error) < 0) {
        sb_mqtt_client_close(self);
        return;
    }
    if (!self->ending && sb_client_output_unsent(stream) > self->limits.max_output) {
        sb_log_warn("mqtt client does not read, disconnecting", "serial=%llu unsent_bytes=%zu",
                    (unsigned long long) self->serial, sb_client_output_unsent(stream));
        self->events->on_failure(self->owner, self, SB_MQTT_CLIENT_NOT_READING);
        sb_mqtt_client_close(self);
        return;
    }
    if (self->ending) {
        if (sb_client_output_end(&self->output, stream, on_write_error) < 0) {
            sb_mqtt_client_close(self);
            return;
        }
        uv_shutdown_t *request = malloc(sizeof *request);
        self->shutting_down = true;
        if (uv_shutdown(request, stream, on_shutdown) != 0) {
            free(request);
            sb_mqtt_client_close(self);
        }
    }
}

void sb_mqtt_client_end(sb_mqtt_client_t *self)
{
    if (self->closed || self->ending)
        return;
    if (self->ws && sb_ws_stream_is_open(self->ws))
        sb_ws_stream_close(self->ws, SB_WS_CLOSE_NORMAL, NULL);   /* calls us again, done */
    if (self->ending)
        return;
    self->ending = true;
    stop_reading(self);
    uv_timer_stop(&self->timer);
    self->events->on_output(self->owner, self);   /* the flush then shuts down */
}

/* ---------------------------------------------------------------- input */

static void hold(sb_mqtt_client_t *self, const uint8_t *data, size_t length)
{
    if (!length)
        return;
    self->held = realloc(self->held, self->held_length + length);
    memcpy(self->held + self->held_length, data, length);
    self->held_length += length;
}

/* Hands over every whole packet in `data` (the framer keeps a partial one)
 * until the client is paused; the rest is held. */
static void take_bytes(sb_mqtt_client_t *self, const uint8_t *data, size_t length)
{
    if (self->paused || self->held_length) {
        hold(self, data, length);
        return;
    }
    sb_mqtt_frame_t frame;
    sb_mqtt_frame_status_t status = SB_MQTT_FRAME_READY;
    while (!self->closed && !self->ending && !self->paused
           && (status = sb_mqtt_framer_next(self->framer, &data, &length, &frame))
                  == SB_MQTT_FRAME_READY) {
        if (self->keep_alive_ms)
            uv_timer_again(&self->timer);
        self->events->on_packet(self->owner, self, frame.data, frame.length);
    }
    if (self->closed || self->ending)
        return;
    if (self->paused && status == SB_MQTT_FRAME_READY)
        hold(self, data, length);
    else if (status == SB_MQTT_FRAME_MALFORMED)
        fail(self, SB_MQTT_CLIENT_MALFORMED);
    else if (status == SB_MQTT_FRAME_TOO_LARGE)
        fail(self, SB_MQTT_CLIENT_TOO_LARGE);
}

void sb_mqtt_client_pause(sb_mqtt_client_t *self)
{
    if (self->closed || self->ending)
        return;
    self->paused = true;
    uv_idle_stop(&self->resume);
    stop_reading(self);
    if (self->keep_alive_ms)   /* it is we who do not read: its silence does not count */
        uv_timer_stop(&self->timer);
}

static void start_reading(sb_mqtt_client_t *self);

static void on_resume(uv_idle_t *idle)
{
    sb_mqtt_client_t *self = idle->data;
    uv_idle_stop(idle);
    if (self->keep_alive_ms)
        uv_timer_start(&self->timer, on_timer, self->keep_alive_ms, self->keep_alive_ms);
    uint8_t *held = self->held;
    size_t length = self->held_length;
    self->held = NULL;
    self->held_length = 0;
    take_bytes(self, held, length);   /* may pause again, holding the rest */
    free(held);
    if (!self->paused)
        start_reading(self);
}

void sb_mqtt_client_resume(sb_mqtt_client_t *self)
{
    if (!self->paused || self->closed || self->ending)
        return;
    self->paused = false;
    uv_idle_start(&self->resume, on_resume);
}

/* What the socket (or the TLS session) gave: WebSocket frames, or packets. */
static void take_input(sb_mqtt_client_t *self, const uint8_t *data, size_t length)
{
    if (self->ws)
        sb_ws_stream_feed(self->ws, (const char *) data, length);
    else
        take_bytes(self, data, length);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
    (void) handle;
    (void) suggested;
    *buffer = uv_buf_init((char *) s_read_buffer, sizeof s_read_buffer);
}

static void become_ready(sb_mqtt_client_t *self)
{
    self->ready = true;
    self->events->on_ready(self->owner, self);
}

static void take_records(sb_mqtt_client_t *self, const uint8_t *data, size_t length)
{
    bool was_ready = sb_tls_session_state(self->tls) == SB_TLS_READY;
    sb_tls_state_t state = sb_tls_session_feed(self->tls, data, length);
    if (sb_tls_session_has_output(self->tls))
        self->events->on_output(self->owner, self);
    if (state == SB_TLS_FAILED) {
        sb_mqtt_client_flush(self);
        sb_mqtt_client_close(self);
        return;
    }
    if (!was_ready && state == SB_TLS_READY) {
        uv_timer_stop(&self->timer);
        uv_timer_start(&self->timer, on_timer, self->limits.connect_timeout_ms, 0);
        become_ready(self);
    }
    uint8_t plaintext[16384];
    size_t got;
    while (!self->closed && !self->ending
           && (got = sb_tls_session_read(self->tls, plaintext, sizeof plaintext)) > 0)
        take_input(self, plaintext, got);
    if (!self->closed && sb_tls_session_state(self->tls) == SB_TLS_CLOSED)
        sb_mqtt_client_close(self);
}

static void on_read(uv_stream_t *stream, ssize_t count, const uv_buf_t *buffer)
{
    sb_mqtt_client_t *self = stream->data;
    if (count < 0) {
        sb_mqtt_client_close(self);   /* EOF or an error: the network connection is gone */
        return;
    }
    if (self->tls)
        take_records(self, (const uint8_t *) buffer->base, (size_t) count);
    else
        take_input(self, (const uint8_t *) buffer->base, (size_t) count);
}

static void start_reading(sb_mqtt_client_t *self)
{
    if (self->reading || self->closed || self->ending)
        return;
    uv_read_start((uv_stream_t *) &self->handle, on_alloc, on_read);
    self->reading = true;
}

void sb_mqtt_client_start(sb_mqtt_client_t *self)
{
    if (!self->tls)
        become_ready(self);
    start_reading(self);
}
