/* connection.h — one TCP client of the line gateway: framing of its input
 * into lines, the order of its replies, its output, and backpressure.
 *
 * Every request gets a reply slot. Untagged slots are answered in the
 * order their requests arrived; tagged slots are written as soon as they
 * are answered. While a connection has `max_inflight` slots open, its
 * input is not read, so a client that pipelines without reading its
 * replies cannot grow the gateway's memory; and one whose unsent output
 * passes `max_output` (it does not read) is disconnected.
 *
 * A connection accepted with a TLS context speaks TLS (gateways/tls.h):
 * the same lines, encrypted. It is ready (on_ready) once its handshake is
 * done; one that fails or does not finish in `tls_handshake_timeout_ms`
 * is closed, and never becomes ready. A plain one is ready at start. */
#ifndef SB_CONNECTION_H
#define SB_CONNECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "router.h"   /* sb_reply_slot_t: the router answers through our slots */
#include "tls.h"

typedef struct sb_connection sb_connection_t;

typedef struct {
    size_t max_line;          /* longest request line, in bytes */
    size_t max_inflight;      /* open reply slots before input is paused */
    size_t max_output;        /* unsent bytes before the client counts as not reading */
    uint64_t tls_handshake_timeout_ms;
} sb_connection_limits_t;

/* What a connection asks of the gateway that owns it. */
typedef struct {
    /* The connection is ready for the protocol (greet it). */
    void (*on_ready)(void *owner, sb_connection_t *connection);
    /* A complete request line (no '\n', a trailing '\r' removed). */
    void (*on_line)(void *owner, sb_connection_t *connection, const char *line, size_t length);
    /* The connection has closed; it is freed right after this returns. */
    void (*on_closed)(void *owner, sb_connection_t *connection);
    /* The connection has output to send before the loop next sleeps. */
    void (*on_output)(void *owner, sb_connection_t *connection);
} sb_connection_events_t;

/* Accepts a client from `listener`, over TLS when `tls` is not NULL; NULL
 * if the accept failed. */
sb_connection_t *sb_connection_accept(uv_stream_t *listener, uint64_t serial,
                                      const sb_connection_limits_t *limits,
                                      const sb_connection_events_t *events, void *owner,
                                      sb_tls_context_t *tls);

uint64_t sb_connection_serial(const sb_connection_t *self);

/* Starts: the handshake (TLS), then on_ready and the client's lines. */
void sb_connection_start(sb_connection_t *self);

/* Instead of starting: once the connection is up (after the handshake),
 * writes `line` and closes; it never becomes ready. */
void sb_connection_refuse(sb_connection_t *self, const char *line);

/* on_ready has been called. */
bool sb_connection_is_ready(const sb_connection_t *self);

/* Opens a reply slot for the request being handled; `tag` (copied) may be NULL. */
sb_reply_slot_t *sb_connection_open_slot(sb_connection_t *self, const char *tag);

/* Answers a slot with `status` ("OK" or "ERR code"; NULL writes `text`
 * alone) and `text` (may be empty); newlines in text are folded into spaces so every reply stays one
 * line. The slot is freed once written. `close_after`: this is the last
 * reply (quit). */
void sb_connection_answer(sb_connection_t *self, sb_reply_slot_t *slot, const char *status,
                          const char *text, bool close_after);

/* Writes a line that answers no request (greeting, refusal). */
void sb_connection_write_line(sb_connection_t *self, const char *line);

/* Writes an asynchronous line, "KIND WORD TEXT" (EVENT TOPIC PAYLOAD, MSG
 * FROM TEXT), at once: it waits for no reply. WORD is quoted when it holds
 * a space (sb_reply_format_async); line breaks in TEXT are folded into
 * spaces. */
void sb_connection_write_async(sb_connection_t *self, const char *kind, const char *word,
                               const char *text);

/* The client's address, "IP:PORT". */
void sb_connection_peer(sb_connection_t *self, char *buffer, size_t size);

/* Sends buffered output; called by the owner before the loop sleeps. */
void sb_connection_flush(sb_connection_t *self);

/* Stops reading; closes once every request already read is answered and
 * its reply written (a graceful stop of the gateway). */
void sb_connection_finish(sb_connection_t *self);

/* Closes at once, dropping unsent output. */
void sb_connection_close(sb_connection_t *self);

#endif
