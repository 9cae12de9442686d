/* envelope_io.h — envelopes over ZeroMQ sockets: sockets made alike,
 * envelopes batched per peer on the way out and read one by one on the
 * way in.
 *
 * Every switchboard socket is made by sb_socket_new, so every one has the
 * same limits (ZMQ_MAXMSGSIZE = SB_ENVELOPE_MAX_SIZE, no linger) and every
 * send is non-blocking: a process never stalls on a peer. */
#ifndef SB_ENVELOPE_IO_H
#define SB_ENVELOPE_IO_H

#include <czmq.h>
#include <stdbool.h>

#include "envelope.h"

typedef enum {
    SB_SOCKET_BIND,
    SB_SOCKET_CONNECT,            /* sends queue until the peer is there */
    SB_SOCKET_CONNECT_IMMEDIATE,  /* sends fail (EAGAIN) while the peer is away */
} sb_socket_mode_t;

/* A socket of `type` (ZMQ_ROUTER, ZMQ_DEALER) bound or connected to
 * `endpoint` (NULL: neither yet; the caller connects it, after attaching a
 * monitor, say). ROUTERs get ROUTER_MANDATORY, so a send to a peer that is
 * gone fails at once instead of vanishing. NULL with errno set on failure. */
zsock_t *sb_socket_new(int type, const char *endpoint, sb_socket_mode_t mode);

/* ---------------------------------------------------------------- sending
 *
 * Envelopes for the same peer wait in an outbox and go out together, back
 * to back in one message, when the owner flushes it at the end of its loop
 * pass (never on a timer: an idle process adds no latency). One message per
 * peer per pass instead of one per envelope means one wake-up of ZeroMQ's
 * I/O threads and of the receiver for a whole burst. Every send on a
 * socket with an outbox goes through it, so a peer sees them in order. */
typedef struct sb_outbox sb_outbox_t;

/* A flush could not reach the peer behind `routing_id` (NULL on a DEALER):
 * what was in its batch is lost. Called after the flush, so it may add. */
typedef void (sb_outbox_lost_fn)(void *arg, zframe_t *routing_id);

sb_outbox_t *sb_outbox_new(zsock_t *socket, sb_outbox_lost_fn *on_lost, void *arg);
/* Drops what was not flushed. */
void sb_outbox_destroy(sb_outbox_t **self_p);

/* Queues `env` for the peer behind `routing_id` (ROUTER sockets; NULL on a
 * DEALER). -1 with errno: EMSGSIZE (cannot be encoded), EAGAIN (a DEALER
 * with ZMQ_IMMEDIATE and no peer: nothing would take it). */
int sb_outbox_add(sb_outbox_t *self, zframe_t *routing_id, const sb_envelope_t *env);

/* The same for an envelope already encoded (one kept to be sent again). */
int sb_outbox_add_encoded(sb_outbox_t *self, zframe_t *routing_id, const uint8_t *payload,
                          size_t size);

/* Sends every batch, one message each, then tells on_lost of those that
 * could not go (and sends what that added, until nothing is left). */
void sb_outbox_flush(sb_outbox_t *self);

bool sb_outbox_is_empty(const sb_outbox_t *self);

/* ---------------------------------------------------------------- receiving */

typedef enum {
    SB_RECV_NONE,        /* nothing waiting */
    SB_RECV_OK,          /* *env_out holds an envelope */
    SB_RECV_MALFORMED,   /* an envelope (or the rest of a message) was dropped; *error_out says why */
} sb_recv_status_t;

/* Reads the envelopes of one socket, a message (maybe holding several)
 * at a time. `routed`: the socket is a ROUTER and each message starts
 * with the sender's routing id. */
typedef struct sb_inbox sb_inbox_t;

sb_inbox_t *sb_inbox_new(zsock_t *socket, bool routed);
void sb_inbox_destroy(sb_inbox_t **self_p);

/* The next envelope, without blocking. *routing_id_out (ROUTER inboxes;
 * destroy it) is the sender's, also for a malformed envelope so the
 * sender can be named in the log. An envelope that cannot be delimited
 * drops the rest of its message; one that is only invalid drops itself. */
sb_recv_status_t sb_inbox_next(sb_inbox_t *self, zframe_t **routing_id_out,
                               sb_envelope_t **env_out, const char **error_out);

/* Envelopes of a message already read are still waiting (the socket's
 * ZMQ_EVENTS no longer shows them). */
bool sb_inbox_has_more(const sb_inbox_t *self);

/* Routing id as hex for logs. */
void sb_routing_id_text(zframe_t *routing_id, char *buffer, size_t size);

#endif
