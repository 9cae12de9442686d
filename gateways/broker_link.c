/* broker_link.c — the broker's DEALER socket driven by libuv (see broker_link.h). */
#include "broker_link.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "envelope_io.h"
#include "log.h"

struct sb_broker_link {
    zsock_t *socket;
    sb_outbox_t *outbox;          /* flushed whenever the link is drained */
    sb_inbox_t *inbox;
    zsock_t *monitor;             /* PAIR receiving the socket's disconnect events */
    uv_poll_t *poll;              /* heap: freed by its close callback */
    uv_poll_t *monitor_poll;
    uv_timer_t *heartbeat;        /* heap: freed by its close callback */
    uv_timer_t *probe;            /* looks again for the pipe after a handshake */
    uv_idle_t *backlog;           /* runs while a pass left envelopes unread */
    uv_loop_t *loop;
    sb_broker_link_settings_t settings;
    int64_t broker_expires_ms;    /* lost if nothing is heard by then */
    bool broker_silent;           /* on_lost already told for this silence */
    bool connected;               /* handshake done and the pipe takes sends, no disconnect since */
    bool handshaken;              /* handshake done, no disconnect since */
    bool refused;                 /* a refused handshake is logged once */
    const sb_broker_link_events_t *events;
    void *arg;
    uint64_t malformed;
    bool draining;                /* guards against re-entry from a callback */
    bool burst_over;              /* a backlog was read to its end (see sb_broker_link_burst_over) */
    uint64_t pass_ms;             /* this pass's share of reading (see broker_link.h) */
    uint64_t grown_at;            /* the loop time pass_ms last grew: once per iteration */
};

static void on_readable(uv_poll_t *poll, int status, int events)
{
    (void) status;
    (void) events;
    sb_broker_link_drain(poll->data);
}

static uv_poll_t *watch(uv_loop_t *loop, zsock_t *socket, sb_broker_link_t *self)
{
    uv_poll_t *poll = calloc(1, sizeof *poll);
    uv_poll_init(loop, poll, zsock_fd(socket));
    poll->data = self;
    uv_poll_start(poll, UV_READABLE, on_readable);
    return poll;
}

static zsock_t *monitor_new(zsock_t *socket)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://broker-link-monitor-%p", (void *) socket);
    if (zmq_socket_monitor(zsock_resolve(socket), endpoint,
                           ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
                               | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                               | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0)
        return NULL;
    zsock_t *monitor = zsock_new(ZMQ_PAIR);
    if (monitor && zsock_connect(monitor, "%s", endpoint) != 0)
        zsock_destroy(&monitor);
    return monitor;
}

static void broker_heard(sb_broker_link_t *self)
{
    self->broker_expires_ms = zclock_mono()
                              + self->settings.heartbeat_interval_ms * self->settings.heartbeat_liveness;
    if (self->broker_silent && self->connected && self->events->on_back) {
        sb_log_info("broker answers again", "broker=%s", self->settings.endpoint);
        self->broker_silent = false;
        self->events->on_back(self->arg);
    }
    self->broker_silent = false;
}

static void on_heartbeat_timer(uv_timer_t *timer)
{
    sb_broker_link_t *self = timer->data;
    sb_envelope_t heartbeat = { .type = SB_ENVELOPE_HEARTBEAT };
    sb_outbox_add(self->outbox, NULL, &heartbeat);
    sb_outbox_flush(self->outbox);
    if (!self->broker_silent && zclock_mono() >= self->broker_expires_ms) {
        self->broker_silent = true;
        sb_log_warn("broker silent, its requests are lost", NULL);
        self->events->on_lost(self->arg);
    }
}

/* The handshake is reported before the socket may have attached its pipe
 * to the broker (with ZMQ_IMMEDIATE a send fails until then). Asking for
 * ZMQ_EVENTS makes the socket take in that attachment, and POLLOUT says a
 * message can go: only then does the link count as connected, so whatever
 * the gateway sends from on_connected reaches the broker, in order. */
#define PROBE_RETRY_MS 5

static void on_probe_timer(uv_timer_t *timer);

static void probe_pipe(sb_broker_link_t *self)
{
    if (!self->handshaken || self->connected)
        return;
    if (!(zsock_events(self->socket) & ZMQ_POLLOUT)) {
        uv_timer_start(self->probe, on_probe_timer, PROBE_RETRY_MS, 0);
        return;
    }
    sb_log_info("connected to broker", "broker=%s", self->settings.endpoint);
    self->connected = true;
    self->events->on_connected(self->arg);
}

static void on_probe_timer(uv_timer_t *timer)
{
    probe_pipe(timer->data);
}

sb_broker_link_t *sb_broker_link_new(uv_loop_t *loop, const sb_broker_link_settings_t *settings,
                                     const sb_broker_link_events_t *events, void *arg)
{
    /* The monitor first, then the connect: a handshake that completed before
     * the monitor was attached would never be reported. */
    zsock_t *socket = sb_socket_new(ZMQ_DEALER, NULL, SB_SOCKET_CONNECT_IMMEDIATE);
    if (!socket)
        return NULL;
    zsock_t *monitor = monitor_new(socket);
    if (!monitor || zsock_connect(socket, "%s", settings->endpoint) < 0) {
        int saved = errno;
        zsock_destroy(&monitor);
        zsock_destroy(&socket);
        errno = saved;
        return NULL;
    }
    sb_broker_link_t *self = calloc(1, sizeof *self);
    self->socket = socket;
    self->outbox = sb_outbox_new(socket, NULL, NULL);
    self->inbox = sb_inbox_new(socket, false);
    self->monitor = monitor;
    self->events = events;
    self->arg = arg;
    self->settings = *settings;
    self->poll = watch(loop, socket, self);
    self->monitor_poll = watch(loop, monitor, self);
    broker_heard(self);
    self->heartbeat = calloc(1, sizeof *self->heartbeat);
    uv_timer_init(loop, self->heartbeat);
    self->heartbeat->data = self;
    uv_timer_start(self->heartbeat, on_heartbeat_timer, (uint64_t) settings->heartbeat_interval_ms,
                   (uint64_t) settings->heartbeat_interval_ms);
    self->probe = calloc(1, sizeof *self->probe);
    uv_timer_init(loop, self->probe);
    self->probe->data = self;
    self->loop = loop;
    self->pass_ms = SB_BROKER_LINK_PASS_MIN_MS;
    self->backlog = calloc(1, sizeof *self->backlog);
    uv_idle_init(loop, self->backlog);
    self->backlog->data = self;
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
    uv_poll_stop(self->monitor_poll);
    uv_close((uv_handle_t *) self->monitor_poll, free_handle);
    uv_timer_stop(self->heartbeat);
    uv_close((uv_handle_t *) self->heartbeat, free_handle);
    uv_timer_stop(self->probe);
    uv_close((uv_handle_t *) self->probe, free_handle);
    uv_idle_stop(self->backlog);
    uv_close((uv_handle_t *) self->backlog, free_handle);
    zmq_socket_monitor(zsock_resolve(self->socket), NULL, 0);
    zsock_destroy(&self->monitor);
    sb_outbox_flush(self->outbox);   /* a last word (a leave) still goes */
    sb_outbox_destroy(&self->outbox);
    sb_inbox_destroy(&self->inbox);
    zsock_destroy(&self->socket);
    free(self);
    *self_p = NULL;
}

int sb_broker_link_send(sb_broker_link_t *self, const sb_envelope_t *env)
{
    return sb_outbox_add(self->outbox, NULL, env);
}

int sb_broker_link_send_encoded(sb_broker_link_t *self, const uint8_t *payload, size_t size)
{
    return sb_outbox_add_encoded(self->outbox, NULL, payload, size);
}

/* Each monitor event is two frames: event number and value, then the
 * endpoint. Returns the next event's number, 0 when there is none. */
static uint16_t next_monitor_event(sb_broker_link_t *self)
{
    uint16_t number = 0;
    while (number == 0 && (zsock_events(self->monitor) & ZMQ_POLLIN)) {
        zmsg_t *event = zmsg_recv(self->monitor);
        zframe_t *head = event ? zmsg_first(event) : NULL;
        if (head && zframe_size(head) >= 2)
            memcpy(&number, zframe_data(head), sizeof number);
        zmsg_destroy(&event);
    }
    return number;
}

static bool has_input(sb_broker_link_t *self)
{
    return sb_inbox_has_more(self->inbox) || (zsock_events(self->socket) & ZMQ_POLLIN);
}

/* The pass (this loop iteration) has had its share of reading. */
static bool pass_spent(const sb_broker_link_t *self)
{
    return uv_hrtime() / 1000000 >= uv_now(self->loop) + self->pass_ms;
}

/* Hands on the envelopes waiting, until the pass is spent; how many were read. */
static size_t read_envelopes(sb_broker_link_t *self)
{
    size_t read = 0;
    while (!pass_spent(self) && has_input(self)) {
        sb_envelope_t *env = NULL;
        const char *error = NULL;
        sb_recv_status_t status = sb_inbox_next(self->inbox, NULL, &env, &error);
        read++;
        if (status == SB_RECV_OK) {
            broker_heard(self);
            if (env->type != SB_ENVELOPE_HEARTBEAT)
                self->events->on_envelope(self->arg, env);
        }
        else if (status == SB_RECV_MALFORMED) {
            self->malformed++;
            sb_log_warn("malformed envelope from broker, dropped", "error=\"%s\"", error);
        }
        sb_envelope_destroy(&env);
    }
    return read;
}

/* Acts on the monitor's events; how many there were. */
static size_t handle_monitor_events(sb_broker_link_t *self)
{
    size_t handled = 0;
    for (uint16_t event; (event = next_monitor_event(self)); handled++) {
        if (event == ZMQ_EVENT_DISCONNECTED) {
            sb_log_warn("connection to broker lost", NULL);
            bool was_connected = self->connected;
            self->connected = self->handshaken = false;
            uv_timer_stop(self->probe);
            if (was_connected)
                self->events->on_lost(self->arg);
        }
        else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                 || event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            if (!self->refused)   /* ZeroMQ retries every 100 ms: said once */
                sb_log_error("the broker refused this link (CURVE keys)", "broker=%s",
                             self->settings.endpoint);
            self->refused = true;
        }
        else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            self->handshaken = true;
            self->refused = false;
            broker_heard(self);
            probe_pipe(self);
        }
    }
    return handled;
}

static void on_backlog(uv_idle_t *idle)
{
    sb_broker_link_drain(idle->data);
}

/* Sends what the pass queued, then reads, until a round finds nothing: a
 * zmq send can take in the socket's pending input (and the edge of its
 * fd with it), so the last thing before the loop sleeps is a look at
 * ZMQ_EVENTS that finds nothing to read. Disconnects are acted on after
 * the replies, so any that arrived before the break are delivered first.
 * A pass that is spent stops reading and leaves the idle handle running:
 * the loop writes to its clients and runs its timers (heartbeats), then
 * comes back here without sleeping. */
void sb_broker_link_drain(sb_broker_link_t *self)
{
    if (self->draining)
        return;
    self->draining = true;
    size_t done;
    do {
        sb_outbox_flush(self->outbox);
        done = read_envelopes(self);
        done += handle_monitor_events(self);
    } while ((done && !pass_spent(self)) || !sb_outbox_is_empty(self->outbox));
    if (has_input(self)) {
        uv_idle_start(self->backlog, on_backlog);
        if (self->grown_at != uv_now(self->loop) && self->pass_ms < SB_BROKER_LINK_PASS_MAX_MS) {
            self->pass_ms *= 2;
            self->grown_at = uv_now(self->loop);
        }
    }
    else if (uv_is_active((uv_handle_t *) self->backlog)) {
        uv_idle_stop(self->backlog);
        self->burst_over = true;
        self->pass_ms = SB_BROKER_LINK_PASS_MIN_MS;
    }
    self->draining = false;
}

bool sb_broker_link_burst_over(sb_broker_link_t *self)
{
    bool over = self->burst_over;
    self->burst_over = false;
    return over;
}

uint64_t sb_broker_link_malformed(const sb_broker_link_t *self)
{
    return self->malformed;
}

bool sb_broker_link_is_up(const sb_broker_link_t *self)
{
    return self->connected && !self->broker_silent;
}

bool sb_broker_link_is_refused(const sb_broker_link_t *self)
{
    return self->refused;
}
