/* tcp_gateway.c — sb-gateway-tcp's core (see tcp_gateway.h): the listener,
 * the connections and the loop. What a request line does is the router's
 * business (gateways/router.c); this file tells it how to answer a TCP
 * client. */
#include "tcp_gateway.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "connection.h"
#include "id_map.h"
#include "log.h"
#include "router.h"
#include "sb_version.h"

typedef struct {
    uint64_t accepted, refused;
} gateway_counters_t;

struct sb_tcp_gateway {
    sb_tcp_gateway_settings_t settings;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_prepare_t before_sleep;
    uv_signal_t stop_signals[2];
    uv_timer_t drain_timer;
    bool stopping;
    sb_router_t *router;          /* requests, the broker link, presence */
    zhashx_t *connections;        /* serial -> sb_connection_t */
    zlistx_t *with_output;        /* connections to flush before sleeping */
    uint64_t next_serial;
    gateway_counters_t counters;
};

/* ---------------------------------------------------------------- the router's view of a client */

static void *find_client(void *owner, uint64_t serial)
{
    sb_tcp_gateway_t *self = owner;
    return zhashx_lookup(self->connections, sb_id_map_key(serial));
}

static uint64_t client_serial(void *client)
{
    return sb_connection_serial(client);
}

static sb_reply_slot_t *open_slot(void *client, const char *tag)
{
    return sb_connection_open_slot(client, tag);
}

static void answer(void *client, sb_reply_slot_t *slot, const char *status, const char *text,
                   bool close_after)
{
    sb_connection_answer(client, slot, status, text, close_after);
}

static void write_async(void *client, const char *kind, const char *word, const char *text)
{
    sb_connection_write_async(client, kind, word, text);
}

static int describe(void *owner, char *buffer, size_t size)
{
    sb_tcp_gateway_t *self = owner;
    int length = snprintf(buffer, size, "connections=%zu accepted=%" PRIu64 " refused=%" PRIu64,
                          zhashx_size(self->connections), self->counters.accepted,
                          self->counters.refused);
    return length < 0 ? 0 : (size_t) length >= size ? (int) size - 1 : length;
}

static const sb_router_client_ops_t s_client_ops = {
    find_client, client_serial, open_slot, answer, write_async, describe,
};

static void on_line(void *owner, sb_connection_t *connection, const char *line, size_t length)
{
    sb_tcp_gateway_t *self = owner;
    sb_router_handle_line(self->router, connection, line, length);
}

/* ---------------------------------------------------------------- connections */

static void on_output(void *owner, sb_connection_t *connection)
{
    sb_tcp_gateway_t *self = owner;
    zlistx_add_end(self->with_output, connection);
}

static void finish_stop(sb_tcp_gateway_t *self);

static void on_closed(void *owner, sb_connection_t *connection)
{
    sb_tcp_gateway_t *self = owner;
    uint64_t serial = sb_connection_serial(connection);
    if (zhashx_lookup(self->connections, sb_id_map_key(serial)))
        sb_router_client_left(self->router, serial);
    zhashx_delete(self->connections, sb_id_map_key(serial));
    void *handle;
    while ((handle = zlistx_find(self->with_output, connection)))
        zlistx_delete(self->with_output, handle);
    if (self->stopping && zhashx_size(self->connections) == 0)
        finish_stop(self);
}

static const sb_connection_events_t s_connection_events = { on_line, on_closed, on_output };

static void on_connection(uv_stream_t *listener, int status)
{
    sb_tcp_gateway_t *self = listener->data;
    if (status < 0)
        return;
    sb_connection_limits_t limits = { self->settings.max_line, self->settings.max_inflight,
                                      self->settings.max_output };
    uint64_t serial = self->next_serial++;
    sb_connection_t *connection = sb_connection_accept(listener, serial, &limits,
                                                       &s_connection_events, self);
    if (!connection)
        return;
    char line[128];
    if (zhashx_size(self->connections) >= self->settings.max_connections) {
        self->counters.refused++;
        snprintf(line, sizeof line, "ERR busy too many connections (limit %zu), try again later",
                 self->settings.max_connections);
        sb_connection_write_line(connection, line);
        sb_connection_flush(connection);
        sb_connection_close(connection);
        return;
    }
    zhashx_insert(self->connections, sb_id_map_key(serial), connection);
    self->counters.accepted++;
    char address[80];
    sb_connection_peer(connection, address, sizeof address);
    sb_router_client_joined(self->router, serial, address);
    snprintf(line, sizeof line, "OK switchboard %s client=%s-%" PRIu64, SB_VERSION,
             self->settings.name, serial);
    sb_connection_write_line(connection, line);
    sb_connection_start(connection);
}

/* ---------------------------------------------------------------- loop */

/* Runs before the loop sleeps: nothing may be left unread on the broker
 * socket (its fd will not fire again for it) or unsent to a client. */
static void before_sleep(uv_prepare_t *prepare)
{
    sb_tcp_gateway_t *self = prepare->data;
    sb_router_drain(self->router);
    sb_connection_t *connection;
    while ((connection = zlistx_detach(self->with_output, NULL)))
        sb_connection_flush(connection);
}

/* Calls `action` on every connection; safe when the action closes it. */
static void for_each_connection(sb_tcp_gateway_t *self, void (*action)(sb_connection_t *))
{
    zlistx_t *open = zhashx_values(self->connections);
    zlistx_set_destructor(open, NULL);
    for (sb_connection_t *connection = zlistx_first(open); connection;
         connection = zlistx_next(open))
        action(connection);
    zlistx_destroy(&open);
}

/* Every client is gone (or the drain timed out): close what is left, so uv_run returns. */
static void finish_stop(sb_tcp_gateway_t *self)
{
    if (uv_is_closing((uv_handle_t *) &self->before_sleep))
        return;
    uv_close((uv_handle_t *) &self->drain_timer, NULL);
    uv_prepare_stop(&self->before_sleep);
    uv_close((uv_handle_t *) &self->before_sleep, NULL);
    sb_router_close_link(self->router);
}

static void on_drain_timeout(uv_timer_t *timer)
{
    sb_tcp_gateway_t *self = timer->data;
    sb_log_warn("drain timed out, closing clients", "connections=%zu",
                zhashx_size(self->connections));
    for_each_connection(self, sb_connection_close);
}

static void on_stop_signal(uv_signal_t *signal, int signo)
{
    sb_tcp_gateway_t *self = signal->data;
    char quoted[SB_LOG_QUOTE_MAX];
    sb_log_info("stopping", "signal=%s connections=%zu", sb_log_quote(quoted, strsignal(signo)),
                zhashx_size(self->connections));
    self->stopping = true;
    uv_close((uv_handle_t *) &self->listener, NULL);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *) &self->stop_signals[i], NULL);
    uv_timer_init(self->loop, &self->drain_timer);
    self->drain_timer.data = self;
    uv_timer_start(&self->drain_timer, on_drain_timeout, (uint64_t) self->settings.drain_timeout_ms, 0);
    if (zhashx_size(self->connections) == 0)
        finish_stop(self);
    else
        for_each_connection(self, sb_connection_finish);
}

static bool listen_on(sb_tcp_gateway_t *self)
{
    return sb_address_listen(self->loop, &self->listener, self, self->settings.listen,
                             on_connection);
}

sb_tcp_gateway_t *sb_tcp_gateway_new(const sb_tcp_gateway_settings_t *settings)
{
    sb_tcp_gateway_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->loop = uv_default_loop();
    self->connections = sb_id_map_new();
    self->with_output = zlistx_new();
    self->next_serial = 1;
    sb_router_settings_t router_settings = {
        .config = settings->config, .name = settings->name, .max_filters = 64,
        .link = { settings->broker, settings->heartbeat_interval_ms, settings->heartbeat_liveness },
    };
    self->router = sb_router_new(self->loop, &router_settings, &s_client_ops, self);
    if (!self->router || !listen_on(self)) {
        sb_tcp_gateway_destroy(&self);
        return NULL;
    }
    uv_prepare_init(self->loop, &self->before_sleep);
    self->before_sleep.data = self;
    uv_prepare_start(&self->before_sleep, before_sleep);
    int signals[] = { SIGTERM, SIGINT };
    for (int i = 0; i < 2; i++) {
        uv_signal_init(self->loop, &self->stop_signals[i]);
        self->stop_signals[i].data = self;
        uv_signal_start(&self->stop_signals[i], on_stop_signal, signals[i]);
    }
    sb_log_info("gateway listening", "address=%s broker=%s", settings->listen, settings->broker);
    return self;
}

void sb_tcp_gateway_destroy(sb_tcp_gateway_t **self_p)
{
    sb_tcp_gateway_t *self = *self_p;
    if (!self)
        return;
    sb_router_destroy(&self->router);
    uv_run(self->loop, UV_RUN_NOWAIT);   /* let closing handles finish */
    zhashx_destroy(&self->connections);
    zlistx_destroy(&self->with_output);
    free(self);
    *self_p = NULL;
}

void sb_tcp_gateway_run(sb_tcp_gateway_t *self)
{
    uv_run(self->loop, UV_RUN_DEFAULT);
}
