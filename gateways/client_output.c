/* client_output.c — buffered output to a client socket (see client_output.h). */
#include "client_output.h"

#include <stdlib.h>
#include <string.h>

/* The buffer exists only while it holds output: an idle client keeps none,
 * and what a burst grew is given back as soon as it is sent (one malloc per
 * flush costs little beside the write itself). */
#define FIRST_BUFFER 512

typedef struct {
    uv_write_t request;
    char *data;
    void (*on_error)(uv_stream_t *stream);
} write_t;

bool sb_client_output_append(sb_client_output_t *self, const void *data, size_t length)
{
    bool was_empty = self->length == 0;
    if (self->length + length > self->capacity) {
        size_t capacity = self->capacity ? self->capacity : FIRST_BUFFER;
        while (capacity < self->length + length)
            capacity *= 2;
        self->data = realloc(self->data, capacity);
        self->capacity = capacity;
    }
    memcpy(self->data + self->length, data, length);
    self->length += length;
    return was_empty;
}

static void on_written(uv_write_t *request, int status)
{
    write_t *write = (write_t *) request;
    if (status < 0 && status != UV_ECANCELED)
        write->on_error(request->handle);
    free(write->data);
    free(write);
}

/* Sends what the socket takes at once and queues a copy of the rest in
 * libuv; -1 when the client is gone. */
static int send_bytes(uv_stream_t *stream, const char *data, size_t length,
                      void (*on_error)(uv_stream_t *stream))
{
    size_t done = 0;
    if (uv_stream_get_write_queue_size(stream) == 0) {   /* else try_write would jump the queue */
        uv_buf_t buffer = uv_buf_init((char *) data, (unsigned) length);
        int sent = uv_try_write(stream, &buffer, 1);
        if (sent < 0 && sent != UV_EAGAIN)
            return -1;
        done = sent > 0 ? (size_t) sent : 0;
    }
    if (done < length) {
        write_t *write = malloc(sizeof *write);
        write->data = malloc(length - done);
        write->on_error = on_error;
        memcpy(write->data, data + done, length - done);
        uv_buf_t buffer = uv_buf_init(write->data, (unsigned) (length - done));
        if (uv_write(&write->request, stream, &buffer, 1, on_written) != 0) {
            free(write->data);
            free(write);
            return -1;
        }
    }
    return 0;
}

/* Encrypts the plaintext once the handshake is done and sends whatever
 * the session has for the peer (handshake, records, alerts, close_notify). */
static int send_through_tls(sb_client_output_t *self, uv_stream_t *stream,
                            void (*on_error)(uv_stream_t *stream))
{
    if (self->length > 0 && sb_tls_session_write(self->tls, self->data, self->length))
        self->length = 0;
    size_t length;
    char *records = sb_tls_session_take_output(self->tls, &length);
    int result = records ? send_bytes(stream, records, length, on_error) : 0;
    free(records);
    return result;
}

int sb_client_output_flush(sb_client_output_t *self, uv_stream_t *stream,
                           void (*on_error)(uv_stream_t *stream))
{
    int result = 0;
    if (self->tls)
        result = send_through_tls(self, stream, on_error);
    else if (self->length > 0 && (result = send_bytes(stream, self->data, self->length, on_error)) == 0)
        self->length = 0;
    if (self->length == 0)
        sb_client_output_free(self);
    return result;
}

int sb_client_output_end(sb_client_output_t *self, uv_stream_t *stream,
                         void (*on_error)(uv_stream_t *stream))
{
    if (!self->tls)
        return 0;
    sb_tls_session_close(self->tls);
    return sb_client_output_flush(self, stream, on_error);
}

size_t sb_client_output_unsent(uv_stream_t *stream)
{
    return uv_stream_get_write_queue_size(stream);
}

void sb_client_output_free(sb_client_output_t *self)
{
    free(self->data);
    *self = (sb_client_output_t) { .tls = self->tls };
}
