/* envelope_io.c — envelopes over ZeroMQ sockets (see envelope_io.h).
 * Frames are read with zmq_msg_recv straight off the socket so a message
 * of the wrong shape (extra frames, empty payload) is consumed whole and
 * dropped, never half-read. A batch is sent without a copy: ZeroMQ takes
 * its buffer (zmq_msg_init_data) and frees it once written. */
#include "envelope_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "curve.h"
#include "id_map.h"

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

/* ---------------------------------------------------------------- sending */

/* What waits for one peer: encoded envelopes back to back. */
typedef struct {
    zframe_t *routing_id;       /* NULL on a DEALER; also the batch's key */
    uint8_t *data;
    size_t size, capacity;
} batch_t;

struct sb_outbox {
    zsock_t *socket;
    bool routed;
    bool immediate;             /* a DEALER with ZMQ_IMMEDIATE */
    zhashx_t *batches;          /* routing id -> batch_t (ROUTER) */
    batch_t single;             /* the one batch of a DEALER */
    zlistx_t *lost;             /* zframe_t*: peers a flush could not reach */
    sb_outbox_lost_fn *on_lost;
    void *arg;
};

static void batch_free(void **item)
{
    batch_t *batch = *item;
    if (!batch)
        return;
    zframe_destroy(&batch->routing_id);
    free(batch->data);
    free(batch);
    *item = NULL;
}

static void lost_free(void **item)
{
    zframe_destroy((zframe_t **) item);
}

sb_outbox_t *sb_outbox_new(zsock_t *socket, sb_outbox_lost_fn *on_lost, void *arg)
{
    sb_outbox_t *self = calloc(1, sizeof *self);
    self->socket = socket;
    self->routed = zsock_type(socket) == ZMQ_ROUTER;
    self->immediate = !self->routed && zsock_immediate(socket);
    self->batches = sb_routing_id_map_new();   /* a batch's key is its own routing id */
    zhashx_set_destructor(self->batches, batch_free);
    self->lost = zlistx_new();
    zlistx_set_destructor(self->lost, lost_free);
    self->on_lost = on_lost;
    self->arg = arg;
    return self;
}

void sb_outbox_destroy(sb_outbox_t **self_p)
{
    sb_outbox_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->batches);
    free(self->single.data);
    zlistx_destroy(&self->lost);
    free(self);
    *self_p = NULL;
}

bool sb_outbox_is_empty(const sb_outbox_t *self)
{
    return zhashx_size(self->batches) == 0 && self->single.size == 0;
}

static void payload_free(void *data, void *hint)
{
    (void) hint;
    free(data);
}

/* Sends a batch as one message; it is empty after, whatever happened. */
static void batch_send(sb_outbox_t *self, batch_t *batch)
{
    if (batch->size == 0)
        return;
    void *handle = zsock_resolve(self->socket);
    bool sent = false;
    if (!batch->routing_id
        || zmq_send(handle, zframe_data(batch->routing_id), zframe_size(batch->routing_id),
                    ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
        zmq_msg_t message;
        zmq_msg_init_data(&message, batch->data, batch->size, payload_free, NULL);
        sent = zmq_msg_send(&message, handle, ZMQ_DONTWAIT) >= 0;
        if (!sent)
            zmq_msg_close(&message);   /* frees the data */
        batch->data = NULL;
        batch->capacity = 0;
    }
    batch->size = 0;
    if (!sent)
        zlistx_add_end(self->lost, batch->routing_id ? zframe_dup(batch->routing_id) : NULL);
}

static batch_t *batch_for(sb_outbox_t *self, zframe_t *routing_id)
{
    if (!self->routed)
        return &self->single;
    batch_t *batch = zhashx_lookup(self->batches, routing_id);
    if (!batch) {
        batch = calloc(1, sizeof *batch);
        batch->routing_id = zframe_dup(routing_id);
        zhashx_insert(self->batches, batch->routing_id, batch);
    }
    return batch;
}

int sb_outbox_add_encoded(sb_outbox_t *self, zframe_t *routing_id, const uint8_t *payload,
                          size_t size)
{
    if (size == 0 || size > SB_ENVELOPE_MAX_SIZE || (self->routed && !routing_id)) {
        errno = EMSGSIZE;
        return -1;
    }
    batch_t *batch = batch_for(self, routing_id);
    /* The first of a batch finds out whether a peer is there to take it. */
    if (batch->size == 0 && self->immediate && !(zsock_events(self->socket) & ZMQ_POLLOUT)) {
        errno = EAGAIN;
        return -1;
    }
    if (batch->size + size > SB_ENVELOPE_MAX_SIZE)
        batch_send(self, batch);   /* a message never exceeds what peers take */
    if (batch->size + size > batch->capacity) {
        size_t capacity = batch->capacity ? batch->capacity : 4096;
        while (capacity < batch->size + size)
            capacity *= 2;
        uint8_t *grown = realloc(batch->data, capacity);
        if (!grown) {
            errno = ENOMEM;
            return -1;
        }
        batch->data = grown;
        batch->capacity = capacity;
    }
    memcpy(batch->data + batch->size, payload, size);
    batch->size += size;
    return 0;
}

int sb_outbox_add(sb_outbox_t *self, zframe_t *routing_id, const sb_envelope_t *env)
{
    size_t size;
    uint8_t *payload = sb_envelope_encode(env, &size);
    if (!payload) {
        errno = EMSGSIZE;
        return -1;
    }
    int result = sb_outbox_add_encoded(self, routing_id, payload, size);
    int saved = errno;
    free(payload);
    errno = saved;
    return result;
}

void sb_outbox_flush(sb_outbox_t *self)
{
    while (!sb_outbox_is_empty(self)) {
        batch_send(self, &self->single);
        for (batch_t *batch = zhashx_first(self->batches); batch;
             batch = zhashx_next(self->batches))
            batch_send(self, batch);
        zhashx_purge(self->batches);
        /* Told after the sends: what on_lost adds goes out in the next round. */
        while (zlistx_size(self->lost)) {
            zframe_t *routing_id = zlistx_detach(self->lost, NULL);
            if (self->on_lost)
                self->on_lost(self->arg, routing_id);
            zframe_destroy(&routing_id);
        }
    }
}

/* ---------------------------------------------------------------- receiving */

struct sb_inbox {
    zsock_t *socket;
    bool routed;
    zmq_msg_t message;          /* the payload being read, while `holding` */
    bool holding;
    size_t offset;              /* where its next envelope starts */
    zframe_t *routing_id;       /* its sender's (ROUTER inboxes) */
};

sb_inbox_t *sb_inbox_new(zsock_t *socket, bool routed)
{
    sb_inbox_t *self = calloc(1, sizeof *self);
    self->socket = socket;
    self->routed = routed;
    return self;
}

static void release_message(sb_inbox_t *self)
{
    if (self->holding)
        zmq_msg_close(&self->message);
    self->holding = false;
}

void sb_inbox_destroy(sb_inbox_t **self_p)
{
    sb_inbox_t *self = *self_p;
    if (!self)
        return;
    release_message(self);
    zframe_destroy(&self->routing_id);
    free(self);
    *self_p = NULL;
}

bool sb_inbox_has_more(const sb_inbox_t *self)
{
    return self->holding;
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

/* Takes the next message off the socket (its sender's routing id into
 * `routing_id`); NONE when there is none, MALFORMED for the wrong shape. */
static sb_recv_status_t take_message(sb_inbox_t *self, const char **error_out)
{
    void *handle = zsock_resolve(self->socket);
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part);
        return SB_RECV_NONE;
    }
    if (self->routed) {
        self->routing_id = zframe_new(zmq_msg_data(&part), zmq_msg_size(&part));
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
    self->message = part;
    self->holding = true;
    self->offset = 0;
    return SB_RECV_OK;
}

sb_recv_status_t sb_inbox_next(sb_inbox_t *self, zframe_t **routing_id_out,
                               sb_envelope_t **env_out, const char **error_out)
{
    *env_out = NULL;
    *error_out = NULL;
    if (routing_id_out)
        *routing_id_out = NULL;
    if (!self->holding) {
        zframe_destroy(&self->routing_id);
        sb_recv_status_t status = take_message(self, error_out);
        if (status != SB_RECV_OK) {
            if (routing_id_out)
                *routing_id_out = self->routing_id;
            else
                zframe_destroy(&self->routing_id);
            self->routing_id = NULL;
            return status;
        }
    }
    const uint8_t *data = (const uint8_t *) zmq_msg_data(&self->message) + self->offset;
    size_t left = zmq_msg_size(&self->message) - self->offset;
    size_t length = sb_envelope_length(data, left);
    if (routing_id_out && self->routing_id)
        *routing_id_out = zframe_dup(self->routing_id);
    if (length == 0) {
        *error_out = left ? "bad msgpack" : "empty payload";
        release_message(self);
        return SB_RECV_MALFORMED;
    }
    *env_out = sb_envelope_decode(data, length, error_out);
    self->offset += length;
    if (self->offset == zmq_msg_size(&self->message))
        release_message(self);
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
