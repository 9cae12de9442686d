/* envelope_io.h — envelopes over ZeroMQ sockets.
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

/* Sends `env`, after `routing_id` when it is not NULL (ROUTER sockets).
 * Never blocks: returns 0, or -1 with errno (EAGAIN, EHOSTUNREACH, ...). */
int sb_envelope_send(zsock_t *socket, zframe_t *routing_id, const sb_envelope_t *env);

/* The same for an envelope already encoded (one kept to be sent again). */
int sb_payload_send(zsock_t *socket, zframe_t *routing_id, const uint8_t *payload, size_t size);

typedef enum {
    SB_RECV_NONE,        /* nothing waiting */
    SB_RECV_OK,          /* *env_out holds an envelope */
    SB_RECV_MALFORMED,   /* a message was read and dropped; *error_out says why */
} sb_recv_status_t;

/* Reads one message without blocking. `routed`: the socket is a ROUTER and
 * each message starts with the sender's routing id, given back in
 * *routing_id_out (destroy it; it is also set for a malformed message so
 * the sender can be named in the log). */
sb_recv_status_t sb_envelope_recv(zsock_t *socket, bool routed, zframe_t **routing_id_out,
                                  sb_envelope_t **env_out, const char **error_out);

/* Routing id as hex for logs. */
void sb_routing_id_text(zframe_t *routing_id, char *buffer, size_t size);

#endif
