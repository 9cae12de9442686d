/* broker_link.c — the broker's DEALER socket driven by libuv (see broker_link.h). */
#include "broker_link.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>

#include "envelope_io.h"
#include "log.h"

struct sb_broker_link {
    zsock_t *socket;
    uv_poll_t *poll;              /* heap: freed by its close callback */
    sb_broker_link_fn *on_envelope;
    void *arg;
    uint64_t malformed;
    bool draining;                /* guards against re-entry from a callback */
};

static void on_readable(uv_poll_t *poll, int status, int events)
{
    (void) status;
    (void) events;
    sb_broker_link_drain(poll->data);
}

sb_broker_link_t *sb_broker_link_new(uv_loop_t *loop, const char *endpoint,
                                     sb_broker_link_fn *on_envelope, void *arg)
{
    zsock_t *socket = sb_socket_new(ZMQ_DEALER, endpoint, SB_SOCKET_CONNECT_IMMEDIATE);
    if (!socket)
        return NULL;
    sb_broker_link_t *self = calloc(1, sizeof *self);
    self->socket = socket;
    self->on_envelope = on_envelope;
    self->arg = arg;
    self->poll = calloc(1, sizeof *self->poll);
    uv_poll_init(loop, self->poll, zsock_fd(socket));
    self->poll->data = self;
    uv_poll_start(self->poll, UV_READABLE, on_readable);
    return self;
}

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

void sb_broker_link_destroy(sb_broker_link_t **self_p)
{
    sb_broker_link_t *self = *self_p;
    if (!self)
        return;
    uv_poll_stop(self->poll);
    uv_close((uv_handle_t *) self->poll, free_handle);
    zsock_destroy(&self->socket);
    free(self);
    *self_p = NULL;
}

int sb_broker_link_send(sb_broker_link_t *self, const sb_envelope_t *env)
{
    return sb_envelope_send(self->socket, NULL, env);
}

void sb_broker_link_drain(sb_broker_link_t *self)
{
    if (self->draining)
        return;
    self->draining = true;
    while (zsock_events(self->socket) & ZMQ_POLLIN) {
        sb_envelope_t *env = NULL;
        const char *error = NULL;
        sb_recv_status_t status = sb_envelope_recv(self->socket, false, NULL, &env, &error);
        if (status == SB_RECV_OK)
            self->on_envelope(self->arg, env);
        else if (status == SB_RECV_MALFORMED) {
            self->malformed++;
            sb_log_warn("malformed envelope from broker, dropped", "error=\"%s\"", error);
        }
        sb_envelope_destroy(&env);
    }
    self->draining = false;
}

uint64_t sb_broker_link_malformed(const sb_broker_link_t *self)
{
    return self->malformed;
}
