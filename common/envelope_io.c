/* envelope_io.c — envelopes over ZeroMQ sockets (see envelope_io.h).
 * Frames are read with zmq_msg_recv straight off the socket so a message
 * of the wrong shape (extra frames, empty payload) is consumed whole and
 * dropped, never half-read. */
#include "envelope_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "curve.h"

zsock_t *sb_socket_new(int type, const char *endpoint, sb_socket_mode_t mode)
{
    zsock_t *socket = zsock_new(type);
    if (!socket)
        return NULL;
    zsock_set_maxmsgsize(socket, SB_ENVELOPE_MAX_SIZE);
    zsock_set_linger(socket, 0);
    zsock_set_sndhwm(socket, 100000);
    zsock_set_rcvhwm(socket, 100000);
    if (type == ZMQ_ROUTER)
        zsock_set_router_mandatory(socket, 1);
    if (mode == SB_SOCKET_CONNECT_IMMEDIATE)
        zsock_set_immediate(socket, 1);
    sb_curve_apply(socket, mode == SB_SOCKET_BIND);
    if (!endpoint)
        return socket;
    int result = mode == SB_SOCKET_BIND ? zsock_bind(socket, "%s", endpoint) : zsock_connect(socket, "%s", endpoint);
    if (result < 0) {
        int saved = errno;
        zsock_destroy(&socket);
        errno = saved;
        return NULL;
    }
    return socket;
}

int sb_payload_send(zsock_t *socket, zframe_t *routing_id, const uint8_t *payload, size_t size)
{
    void *handle = zsock_resolve(socket);
    if (routing_id
        && zmq_send(handle, zframe_data(routing_id), zframe_size(routing_id),
                    ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    return zmq_send(handle, payload, size, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

int sb_envelope_send(zsock_t *socket, zframe_t *routing_id, const sb_envelope_t *env)
{
    size_t size;
    uint8_t *payload = sb_envelope_encode(env, &size);
    if (!payload) {
        errno = EMSGSIZE;
        return -1;
    }
    int result = sb_payload_send(socket, routing_id, payload, size);
    int saved = errno;
    free(payload);
    errno = saved;
    return result;
}

/* Reads the rest of a message that has the wrong shape, so the next read starts clean. */
static void discard_rest(void *handle)
{
    int more = 1;
    size_t size = sizeof more;
    zmq_getsockopt(handle, ZMQ_RCVMORE, &more, &size);
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            return;
        }
        more = zmq_msg_more(&part);
        zmq_msg_close(&part);
    }
}

sb_recv_status_t sb_envelope_recv(zsock_t *socket, bool routed, zframe_t **routing_id_out,
                                  sb_envelope_t **env_out, const char **error_out)
{
    void *handle = zsock_resolve(socket);
    *env_out = NULL;
    *error_out = NULL;
    if (routing_id_out)
        *routing_id_out = NULL;
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part);
        return SB_RECV_NONE;
    }
    if (routed) {
        if (routing_id_out)
            *routing_id_out = zframe_new(zmq_msg_data(&part), zmq_msg_size(&part));
        bool more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        zmq_msg_init(&part);
        if (!more || zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            *error_out = "no payload frame";
            return SB_RECV_MALFORMED;
        }
    }
    if (zmq_msg_more(&part)) {
        zmq_msg_close(&part);
        discard_rest(handle);
        *error_out = "more than one payload frame";
        return SB_RECV_MALFORMED;
    }
    *env_out = sb_envelope_decode(zmq_msg_data(&part), zmq_msg_size(&part), error_out);
    zmq_msg_close(&part);
    return *env_out ? SB_RECV_OK : SB_RECV_MALFORMED;
}

void sb_routing_id_text(zframe_t *routing_id, char *buffer, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    size_t used = 0;
    const uint8_t *data = routing_id ? zframe_data(routing_id) : NULL;
    size_t length = routing_id ? zframe_size(routing_id) : 0;
    for (size_t i = 0; i < length && used + 2 < size; i++) {
        buffer[used++] = digits[data[i] >> 4];
        buffer[used++] = digits[data[i] & 15];
    }
    if (size)
        buffer[used] = '\0';
}
