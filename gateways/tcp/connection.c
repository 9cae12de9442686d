/* connection.c — one line-protocol client (see connection.h).
 *
 * Input is read straight into the connection's buffer, which holds at most
 * one partial line plus one read's worth of lines not yet handled; a line
 * that outgrows the limit is answered `ERR too-long` and skipped up to its
 * newline, and the connection carries on. Replies wait in a reply queue
 * for their turn and go out through the client output buffer
 * (gateways/reply_queue.c, gateways/client_output.c).
 *
 * Over TLS, reads land in a buffer shared by every connection and go into
 * the session; its plaintext is pulled into the input buffer as room
 * allows, so a paused client leaves the rest inside the session. */
#include "connection.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "client_output.h"
#include "log.h"
#include "reply_queue.h"

#define READ_CHUNK 65536

struct sb_connection {
    uv_tcp_t handle;
    uv_timer_t tls_timer;  /* the TLS handshake's deadline */
    int open_handles;      /* closed one by one; freed at zero */
    sb_tls_session_t *tls; /* NULL: plain */
    char *refusal;         /* sb_connection_refuse's line */
    uint64_t serial;
    sb_connection_limits_t limits;
    const sb_connection_events_t *events;
    void *owner;

    char *input;
    size_t input_length, input_capacity;
    bool skipping_long_line;

    sb_reply_queue_t replies;
    sb_client_output_t output;

    bool ready;            /* on_ready was called */
    bool reading;          /* uv_read_start is in force */
    bool input_ended;      /* the client sent EOF: answer what it asked, then close */
    bool handling_input;   /* guards against re-entry from an immediate answer */
    bool quitting;         /* the last reply (quit) is written: no more input or output */
    bool shutting_down;
    bool closed;
};

static char s_tls_read_buffer[READ_CHUNK];

static void handle_input(sb_connection_t *self);

/* ---------------------------------------------------------------- lifecycle */

static void free_connection(uv_handle_t *handle)
{
    sb_connection_t *self = handle->data;
    if (--self->open_handles > 0)
        return;
    if (self->events)   /* NULL: never accepted, the owner never had it */
        self->events->on_closed(self->owner, self);
    sb_reply_queue_clear(&self->replies);
    sb_client_output_free(&self->output);
    sb_tls_session_destroy(&self->tls);
    free(self->refusal);
    free(self->input);
    free(self);
}

void sb_connection_close(sb_connection_t *self)
{
    if (self->closed)
        return;
    self->closed = true;
    uv_close((uv_handle_t *) &self->handle, free_connection);
    uv_close((uv_handle_t *) &self->tls_timer, free_connection);
}

static void on_tls_timeout(uv_timer_t *timer)
{
    sb_connection_t *self = timer->data;
    sb_tls_session_expire(self->tls);
    sb_connection_close(self);
}

static void start_tls(sb_connection_t *self, sb_tls_context_t *context)
{
    char peer[80];
    sb_address_of_peer(&self->handle, peer, sizeof peer);
    self->tls = sb_tls_session_new(context, peer);
    self->output.tls = self->tls;
    uv_timer_start(&self->tls_timer, on_tls_timeout, self->limits.tls_handshake_timeout_ms, 0);
}

sb_connection_t *sb_connection_accept(uv_stream_t *listener, uint64_t serial,
                                      const sb_connection_limits_t *limits,
                                      const sb_connection_events_t *events, void *owner,
                                      sb_tls_context_t *tls)
{
    sb_connection_t *self = calloc(1, sizeof *self);
    self->serial = serial;
    self->limits = *limits;
    self->owner = owner;
    self->input_capacity = limits->max_line + 2 + READ_CHUNK;
    self->input = malloc(self->input_capacity);
    sb_reply_queue_init(&self->replies, NULL);
    uv_tcp_init(listener->loop, &self->handle);
    uv_timer_init(listener->loop, &self->tls_timer);
    self->handle.data = self->tls_timer.data = self;
    self->open_handles = 2;
    if (uv_accept(listener, (uv_stream_t *) &self->handle) != 0) {
        sb_connection_close(self);
        return NULL;
    }
    self->events = events;
    uv_tcp_nodelay(&self->handle, 1);
    if (tls)
        start_tls(self, tls);
    return self;
}

uint64_t sb_connection_serial(const sb_connection_t *self)
{
    return self->serial;
}

/* ---------------------------------------------------------------- output */

static void append_output(sb_connection_t *self, const char *data, size_t length)
{
    if (self->quitting)
        return;
    if (sb_client_output_append(&self->output, data, length))
        self->events->on_output(self->owner, self);
}

static void append_line(sb_connection_t *self, const char *line)
{
    append_output(self, line, strlen(line));
    append_output(self, "\n", 1);
}

void sb_connection_write_line(sb_connection_t *self, const char *line)
{
    if (!self->closed)
        append_line(self, line);
}

void sb_connection_write_async(sb_connection_t *self, const char *kind, const char *word,
                               const char *text)
{
    if (self->closed)
        return;
    char *line = sb_reply_format_async(kind, word, text);
    append_line(self, line);
    free(line);
}

void sb_connection_peer(sb_connection_t *self, char *buffer, size_t size)
{
    sb_address_of_peer(&self->handle, buffer, size);
}

static void on_write_error(uv_stream_t *stream)
{
    sb_connection_close(stream->data);
}

static void on_shutdown(uv_shutdown_t *request, int status)
{
    (void) status;
    sb_connection_close(request->handle->data);
    free(request);
}

void sb_connection_flush(sb_connection_t *self)
{
    if (self->closed)
        return;
    if (sb_client_output_flush(&self->output, (uv_stream_t *) &self->handle, on_write_error) < 0) {
        sb_connection_close(self);   /* the client is gone */
        return;
    }
    size_t unsent = sb_client_output_unsent((uv_stream_t *) &self->handle);
    if (unsent > self->limits.max_output) {
        sb_log_warn("client does not read its replies, disconnecting",
                    "serial=%" PRIu64 " unsent_bytes=%zu", self->serial, unsent);
        sb_connection_close(self);
        return;
    }
    if (self->quitting && !self->shutting_down) {
        if (sb_client_output_end(&self->output, (uv_stream_t *) &self->handle, on_write_error) < 0) {
            sb_connection_close(self);
            return;
        }
        /* The shutdown waits for queued writes, then on_shutdown closes. */
        uv_shutdown_t *request = malloc(sizeof *request);
        self->shutting_down = true;
        if (uv_shutdown(request, (uv_stream_t *) &self->handle, on_shutdown) != 0) {
            free(request);
            sb_connection_close(self);
        }
    }
}

/* ---------------------------------------------------------------- replies */

sb_reply_slot_t *sb_connection_open_slot(sb_connection_t *self, const char *tag)
{
    return sb_reply_queue_open(&self->replies, tag == NULL, tag, NULL);
}

/* Writes every reply that may go now; after the last reply (quit) nothing more is read. */
static void write_ready_replies(sb_connection_t *self)
{
    sb_reply_slot_t *slot;
    while (!self->quitting && (slot = sb_reply_queue_next_ready(&self->replies))) {
        bool close_after = sb_reply_slot_close_after(slot);
        append_line(self, sb_reply_slot_reply(slot));
        sb_reply_queue_remove(&self->replies, slot);
        if (close_after) {
            self->quitting = true;
            if (self->reading)
                uv_read_stop((uv_stream_t *) &self->handle);
            self->reading = false;
        }
    }
}

void sb_connection_answer(sb_connection_t *self, sb_reply_slot_t *slot, const char *status,
                          const char *text, bool close_after)
{
    char *reply = sb_reply_format_line(sb_reply_slot_tag(slot), status, text ? text : "");
    sb_reply_queue_answer(slot, reply, close_after);
    if (self->closed)
        return;
    write_ready_replies(self);
    /* A slot freed below the limit lets a paused client be read again. */
    if (!self->reading && !self->quitting && !self->handling_input)
        handle_input(self);
}

/* ---------------------------------------------------------------- input */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
    sb_connection_t *self = handle->data;
    (void) suggested;
    if (self->tls)
        *buffer = uv_buf_init(s_tls_read_buffer, sizeof s_tls_read_buffer);
    else
        *buffer = uv_buf_init(self->input + self->input_length,
                              (unsigned) (self->input_capacity - self->input_length));
}

/* Moves the session's plaintext into the input buffer while it has room;
 * true when it stopped for room (more may be waiting in the session). */
static bool pull_plaintext(sb_connection_t *self)
{
    while (self->input_length < self->input_capacity) {
        size_t got = sb_tls_session_read(self->tls, self->input + self->input_length,
                                         self->input_capacity - self->input_length);
        if (got == 0)
            break;
        self->input_length += got;
    }
    bool full = self->input_length == self->input_capacity;
    if (sb_tls_session_has_output(self->tls))
        self->events->on_output(self->owner, self);
    switch (sb_tls_session_state(self->tls)) {
    case SB_TLS_CLOSED:   /* close_notify: the client has finished, like EOF */
        if (self->reading)
            uv_read_stop((uv_stream_t *) &self->handle);
        self->reading = false;
        self->input_ended = true;
        break;
    case SB_TLS_FAILED:
        sb_connection_flush(self);   /* the alert, if any */
        sb_connection_close(self);
        break;
    default:
        break;
    }
    return full;
}

static void answer_too_long(sb_connection_t *self)
{
    char text[96];
    snprintf(text, sizeof text, "line longer than %zu bytes", self->limits.max_line);
    sb_connection_answer(self, sb_connection_open_slot(self, NULL), "ERR too-long", text, false);
}

/* Handles complete lines from `*start`; returns false when it stopped
 * because the client has too many requests open. */
static bool handle_lines(sb_connection_t *self, size_t *start)
{
    while (*start < self->input_length && !self->quitting && !self->closed) {
        char *begin = self->input + *start;
        char *newline = memchr(begin, '\n', self->input_length - *start);
        if (self->skipping_long_line) {
            if (!newline)
                return (*start = self->input_length), true;
            self->skipping_long_line = false;
            *start = (size_t) (newline - self->input) + 1;
            continue;
        }
        if (self->replies.open >= self->limits.max_inflight)
            return false;
        if (!newline && self->input_ended) {
            /* The last line may lack its newline: `printf 'ping' | nc` still gets an answer. */
            newline = self->input + self->input_length;
        }
        if (!newline) {
            if (self->input_length - *start > self->limits.max_line + 1) {
                answer_too_long(self);
                self->skipping_long_line = true;
                *start = self->input_length;
            }
            return true;
        }
        size_t length = (size_t) (newline - begin);
        *start += length + (newline < self->input + self->input_length);
        if (length > 0 && begin[length - 1] == '\r')
            length--;
        if (length > self->limits.max_line)
            answer_too_long(self);
        else
            self->events->on_line(self->owner, self, begin, length);
    }
    return true;
}

/* Handles what is buffered, keeps the unhandled rest, and reads on unless
 * the client must wait for its replies first. */
static void on_read(uv_stream_t *stream, ssize_t count, const uv_buf_t *buffer);
static void take_records(sb_connection_t *self, const char *data, size_t length);

static void handle_input(sb_connection_t *self)
{
    self->handling_input = true;
    bool may_read, more_waiting;
    do {
        more_waiting = self->ready && self->tls && pull_plaintext(self);
        size_t start = 0;
        may_read = handle_lines(self, &start);
        memmove(self->input, self->input + start, self->input_length - start);
        self->input_length -= start;
    } while (more_waiting && may_read && !self->closed && !self->quitting);
    self->handling_input = false;
    if (self->closed || self->quitting)
        return;
    if (self->input_ended) {
        if (may_read && self->replies.open == 0) {
            self->quitting = true;   /* everything asked is answered: close after the output */
            self->events->on_output(self->owner, self);
        }
        return;
    }
    if (may_read && !self->reading) {
        uv_read_start((uv_stream_t *) &self->handle, on_alloc, on_read);
        self->reading = true;
    }
    else if (!may_read && self->reading) {
        uv_read_stop((uv_stream_t *) &self->handle);
        self->reading = false;
    }
}

static void on_read(uv_stream_t *stream, ssize_t count, const uv_buf_t *buffer)
{
    sb_connection_t *self = stream->data;
    (void) buffer;
    if (count == UV_EOF) {
        uv_read_stop(stream);
        self->reading = false;
        self->input_ended = true;
        handle_input(self);
        return;
    }
    if (count < 0) {
        sb_connection_close(self);
        return;
    }
    if (self->tls)
        take_records(self, buffer->base, (size_t) count);
    else {
        self->input_length += (size_t) count;
        handle_input(self);
    }
}

/* Greets through the owner, or writes the refusal and quits (appending it schedules the flush). */
static void become_ready(sb_connection_t *self)
{
    if (self->refusal) {
        append_line(self, self->refusal);
        self->quitting = true;
        return;
    }
    self->ready = true;
    self->events->on_ready(self->owner, self);
}

static void take_records(sb_connection_t *self, const char *data, size_t length)
{
    bool was_ready = sb_tls_session_state(self->tls) == SB_TLS_READY;
    sb_tls_state_t state = sb_tls_session_feed(self->tls, data, length);
    if (sb_tls_session_has_output(self->tls))
        self->events->on_output(self->owner, self);
    if (state == SB_TLS_FAILED) {
        sb_connection_flush(self);   /* the alert, if any */
        sb_connection_close(self);
        return;
    }
    if (!was_ready && state == SB_TLS_READY) {
        uv_timer_stop(&self->tls_timer);
        become_ready(self);
    }
    if (!self->quitting)
        handle_input(self);
}

void sb_connection_start(sb_connection_t *self)
{
    if (!self->tls)
        become_ready(self);
    if (!self->quitting)
        handle_input(self);
}

void sb_connection_refuse(sb_connection_t *self, const char *line)
{
    self->refusal = strdup(line);
    sb_connection_start(self);
}

bool sb_connection_is_ready(const sb_connection_t *self)
{
    return self->ready;
}

void sb_connection_finish(sb_connection_t *self)
{
    if (self->closed || self->quitting)
        return;
    if (!self->ready) {   /* still in its TLS handshake: it has asked nothing */
        sb_connection_close(self);
        return;
    }
    if (self->reading)
        uv_read_stop((uv_stream_t *) &self->handle);
    self->reading = false;
    self->input_ended = true;
    if (!self->handling_input)
        handle_input(self);
}
