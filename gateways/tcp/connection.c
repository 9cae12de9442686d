/* connection.c — one line-protocol client (see connection.h).
 *
 * Input is read straight into the connection's buffer, which holds at most
 * one partial line plus one read's worth of lines not yet handled; a line
 * that outgrows the limit is answered `ERR too-long` and skipped up to its
 * newline, and the connection carries on. Output is collected in a buffer
 * and sent once per loop iteration, so a burst of pipelined replies costs
 * one write. */
#include "connection.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define READ_CHUNK 65536

struct sb_reply_slot {
    sb_reply_slot_t *prev, *next;   /* in request order */
    char *tag;
    char *reply;                    /* formatted line, once answered */
    bool close_after;
};

struct sb_connection {
    uv_tcp_t handle;
    uint64_t serial;
    sb_connection_limits_t limits;
    const sb_connection_events_t *events;
    void *owner;

    char *input;
    size_t input_length, input_capacity;
    bool skipping_long_line;

    sb_reply_slot_t *first_slot, *last_slot;
    size_t open_slots;

    char *output;
    size_t output_length, output_capacity;

    bool reading;          /* uv_read_start is in force */
    bool input_ended;      /* the client sent EOF: answer what it asked, then close */
    bool handling_input;   /* guards against re-entry from an immediate answer */
    bool quitting;         /* the last reply (quit) is written: no more input or output */
    bool shutting_down;
    bool closed;
};

typedef struct {
    uv_write_t request;
    char *data;
} write_t;

static void handle_input(sb_connection_t *self);

/* ---------------------------------------------------------------- lifecycle */

static void free_connection(uv_handle_t *handle)
{
    sb_connection_t *self = handle->data;
    self->events->on_closed(self->owner, self);
    while (self->first_slot) {
        sb_reply_slot_t *slot = self->first_slot;
        self->first_slot = slot->next;
        free(slot->tag);
        free(slot->reply);
        free(slot);
    }
    free(self->input);
    free(self->output);
    free(self);
}

static void free_unaccepted(uv_handle_t *handle)
{
    sb_connection_t *self = handle->data;
    free(self->input);
    free(self);
}

void sb_connection_close(sb_connection_t *self)
{
    if (self->closed)
        return;
    self->closed = true;
    uv_close((uv_handle_t *) &self->handle, free_connection);
}

sb_connection_t *sb_connection_accept(uv_stream_t *listener, uint64_t serial,
                                      const sb_connection_limits_t *limits,
                                      const sb_connection_events_t *events, void *owner)
{
    sb_connection_t *self = calloc(1, sizeof *self);
    self->serial = serial;
    self->limits = *limits;
    self->events = events;
    self->owner = owner;
    self->input_capacity = limits->max_line + 2 + READ_CHUNK;
    self->input = malloc(self->input_capacity);
    uv_tcp_init(listener->loop, &self->handle);
    self->handle.data = self;
    if (uv_accept(listener, (uv_stream_t *) &self->handle) != 0) {
        self->closed = true;
        uv_close((uv_handle_t *) &self->handle, free_unaccepted);
        return NULL;
    }
    uv_tcp_nodelay(&self->handle, 1);
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
    bool was_empty = self->output_length == 0;
    if (self->output_length + length > self->output_capacity) {
        size_t capacity = self->output_capacity ? self->output_capacity : 4096;
        while (capacity < self->output_length + length)
            capacity *= 2;
        self->output = realloc(self->output, capacity);
        self->output_capacity = capacity;
    }
    memcpy(self->output + self->output_length, data, length);
    self->output_length += length;
    if (was_empty)
        self->events->on_output(self->owner, self);
}

void sb_connection_write_line(sb_connection_t *self, const char *line)
{
    if (self->closed)
        return;
    append_output(self, line, strlen(line));
    append_output(self, "\n", 1);
}

static char *format_reply(const char *tag, const char *status, const char *text);

void sb_connection_write_async(sb_connection_t *self, const char *kind, const char *word,
                               const char *text)
{
    if (self->closed)
        return;
    char status[320];
    snprintf(status, sizeof status, "%s %s", kind, word);
    char *line = format_reply(NULL, status, text);
    append_output(self, line, strlen(line));
    free(line);
}

void sb_connection_peer(sb_connection_t *self, char *buffer, size_t size)
{
    struct sockaddr_storage address = { .ss_family = AF_INET };
    int length = sizeof address;
    char host[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&self->handle, (struct sockaddr *) &address, &length) == 0) {
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

static void on_written(uv_write_t *request, int status)
{
    write_t *write = (write_t *) request;
    if (status < 0 && status != UV_ECANCELED)
        sb_connection_close(request->handle->data);
    free(write->data);
    free(write);
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
    if (self->output_length > 0) {
        uv_buf_t buffer = uv_buf_init(self->output, (unsigned) self->output_length);
        int sent = uv_try_write((uv_stream_t *) &self->handle, &buffer, 1);
        if (sent < 0 && sent != UV_EAGAIN) {   /* the client is gone */
            sb_connection_close(self);
            return;
        }
        size_t done = sent > 0 ? (size_t) sent : 0;
        if (done < self->output_length) {
            write_t *write = malloc(sizeof *write);
            write->data = malloc(self->output_length - done);
            memcpy(write->data, self->output + done, self->output_length - done);
            buffer = uv_buf_init(write->data, (unsigned) (self->output_length - done));
            if (uv_write(&write->request, (uv_stream_t *) &self->handle, &buffer, 1, on_written) != 0) {
                on_written(&write->request, -1);
                sb_connection_close(self);
                return;
            }
        }
        self->output_length = 0;
    }
    size_t unsent = uv_stream_get_write_queue_size((uv_stream_t *) &self->handle);
    if (unsent > self->limits.max_output) {
        sb_log_warn("client does not read its replies, disconnecting",
                    "serial=%" PRIu64 " unsent_bytes=%zu", self->serial, unsent);
        sb_connection_close(self);
        return;
    }
    if (self->quitting && !self->shutting_down) {
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
    sb_reply_slot_t *slot = calloc(1, sizeof *slot);
    slot->tag = tag ? strdup(tag) : NULL;
    slot->prev = self->last_slot;
    if (self->last_slot)
        self->last_slot->next = slot;
    else
        self->first_slot = slot;
    self->last_slot = slot;
    self->open_slots++;
    return slot;
}

static void remove_slot(sb_connection_t *self, sb_reply_slot_t *slot)
{
    if (slot->prev)
        slot->prev->next = slot->next;
    else
        self->first_slot = slot->next;
    if (slot->next)
        slot->next->prev = slot->prev;
    else
        self->last_slot = slot->prev;
    self->open_slots--;
    free(slot->tag);
    free(slot->reply);
    free(slot);
}

static void write_slot(sb_connection_t *self, sb_reply_slot_t *slot)
{
    bool close_after = slot->close_after;
    append_output(self, slot->reply, strlen(slot->reply));
    remove_slot(self, slot);
    if (close_after && !self->quitting) {
        self->quitting = true;
        if (self->reading)
            uv_read_stop((uv_stream_t *) &self->handle);
        self->reading = false;
    }
}

/* Writes answered untagged replies up to the first untagged one still
 * waiting; open tagged slots do not hold anything up. */
static void write_ready_slots(sb_connection_t *self)
{
    sb_reply_slot_t *slot = self->first_slot;
    while (slot && !self->quitting) {
        sb_reply_slot_t *next = slot->next;
        if (!slot->tag) {
            if (!slot->reply)
                break;
            write_slot(self, slot);
        }
        slot = next;
    }
}

/* "[@TAG ]STATUS[ TEXT]\n" (or "[@TAG ]TEXT\n" without a status) with any
 * line break in TEXT folded to a space. */
static char *format_reply(const char *tag, const char *status, const char *text)
{
    size_t length = (tag ? strlen(tag) + 2 : 0) + (status ? strlen(status) : 0) + strlen(text) + 3;
    char *line = malloc(length);
    int used = snprintf(line, length, "%s%s%s%s%s", tag ? "@" : "", tag ? tag : "",
                        tag ? " " : "", status ? status : "", status && *text ? " " : "");
    char *out = line + used;
    for (const char *c = text; *c; c++)
        *out++ = (*c == '\n' || *c == '\r') ? ' ' : *c;
    strcpy(out, "\n");
    return line;
}

void sb_connection_answer(sb_connection_t *self, sb_reply_slot_t *slot, const char *status,
                          const char *text, bool close_after)
{
    slot->reply = format_reply(slot->tag, status, text ? text : "");
    slot->close_after = close_after;
    if (self->closed)
        return;
    if (slot->tag)
        write_slot(self, slot);
    else
        write_ready_slots(self);
    /* A slot freed below the limit lets a paused client be read again. */
    if (!self->reading && !self->quitting && !self->handling_input)
        handle_input(self);
}

/* ---------------------------------------------------------------- input */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
    sb_connection_t *self = handle->data;
    (void) suggested;
    *buffer = uv_buf_init(self->input + self->input_length,
                          (unsigned) (self->input_capacity - self->input_length));
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
        if (self->open_slots >= self->limits.max_inflight)
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

static void handle_input(sb_connection_t *self)
{
    self->handling_input = true;
    size_t start = 0;
    bool may_read = handle_lines(self, &start);
    memmove(self->input, self->input + start, self->input_length - start);
    self->input_length -= start;
    self->handling_input = false;
    if (self->closed || self->quitting)
        return;
    if (self->input_ended) {
        if (may_read && self->open_slots == 0) {
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
    self->input_length += (size_t) count;
    handle_input(self);
}

void sb_connection_start(sb_connection_t *self)
{
    handle_input(self);
}

void sb_connection_finish(sb_connection_t *self)
{
    if (self->closed || self->quitting)
        return;
    if (self->reading)
        uv_read_stop((uv_stream_t *) &self->handle);
    self->reading = false;
    self->input_ended = true;
    if (!self->handling_input)
        handle_input(self);
}
