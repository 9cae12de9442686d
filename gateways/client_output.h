/* client_output.h — what a gateway has to send to one client socket.
 *
 * Output is collected and sent once per loop iteration (a burst of
 * pipelined replies costs one write); what the socket does not take at
 * once is queued in libuv, and the owner watches that queue's size to find
 * clients that do not read. On a TLS connection (`tls` set) the output
 * is plaintext, kept until the handshake is done and encrypted on flush;
 * a flush also sends what the session itself has for the peer. */
#ifndef SB_CLIENT_OUTPUT_H
#define SB_CLIENT_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "tls.h"

typedef struct {
    char *data;
    size_t length, capacity;
    sb_tls_session_t *tls;   /* NULL: plain; else the connection's, not owned */
} sb_client_output_t;

/* Appends; true when the output was empty before (the owner schedules a flush). */
bool sb_client_output_append(sb_client_output_t *self, const void *data, size_t length);

/* Sends what is collected; -1 when the client is gone (close it). A queued
 * write that fails later calls `on_error` with the stream. */
int sb_client_output_flush(sb_client_output_t *self, uv_stream_t *stream,
                           void (*on_error)(uv_stream_t *stream));

/* The last output: on TLS a close_notify goes after it, so the client can
 * tell an end from a cut (then the owner shuts the socket down); -1 when
 * the client is gone. */
int sb_client_output_end(sb_client_output_t *self, uv_stream_t *stream,
                         void (*on_error)(uv_stream_t *stream));

/* Bytes handed to libuv that the client has not taken yet. */
size_t sb_client_output_unsent(uv_stream_t *stream);

/* Frees the buffer (`tls` is left to its owner). */
void sb_client_output_free(sb_client_output_t *self);

#endif
