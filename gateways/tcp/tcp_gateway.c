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

#include "connection.h"
#include "gateway_base.h"
#include "http_sniff.h"
#include "log.h"
#include "router.h"
#include "sb_version.h"

/* Refused connections still sending their ERR busy (over TLS, after a
 * handshake); past this many, one more is closed without a word, so a
 * flood over --max-connections cannot hold memory for handshakes. */
#define MAX_REFUSING 16

typedef struct {
    uint64_t accepted, refused;
    uint64_t misdirected;   /* closed for a line that looked like HTTP */
} gateway_counters_t;

struct sb_tcp_gateway {
    sb_tcp_gateway_settings_t settings;
    sb_gateway_base_t base;       /* listener, connections by serial, router, stop */
    gateway_counters_t counters;
    size_t refusing;              /* refused connections not closed yet */
};

/* ---------------------------------------------------------------- the router's view of a client */

static void *find_client(void *owner, uint64_t serial)
{
    sb_tcp_gateway_t *self = owner;
    return sb_gateway_base_find(&self->base, serial);
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
    sb_gateway_client_counts_t counts = { sb_gateway_base_count(&self->base), self->counters.accepted,
                                          self->counters.refused, self->counters.misdirected };
    return sb_gateway_base_describe(&self->base, &counts, buffer, size);
}

static const sb_router_client_ops_t s_client_ops = {
    find_client, client_serial, open_slot, answer, write_async, describe, NULL,
};

/* A browser (a page's fetch or form) is talking to us: it gets no answer,
 * and what it sends after this line (a body of commands) is never read. */
static void close_misdirected(sb_tcp_gateway_t *self, sb_connection_t *connection)
{
    char address[80];
    sb_connection_peer(connection, address, sizeof address);
    self->counters.misdirected++;
    sb_log_warn("closing a connection that speaks HTTP (a browser page?)", "serial=%" PRIu64
                " peer=%s", sb_connection_serial(connection), address);
    sb_connection_close(connection);
}

static void on_line(void *owner, sb_connection_t *connection, const char *line, size_t length)
{
    sb_tcp_gateway_t *self = owner;
    if (sb_http_sniff_line(line, length))
        close_misdirected(self, connection);
    else
        sb_router_handle_line(self->base.router, connection, line, length);
}

/* ---------------------------------------------------------------- connections */

static void on_output(void *owner, sb_connection_t *connection)
{
    sb_tcp_gateway_t *self = owner;
    sb_gateway_base_has_output(&self->base, connection);
}

static void on_closed(void *owner, sb_connection_t *connection)
{
    sb_tcp_gateway_t *self = owner;
    uint64_t serial = sb_connection_serial(connection);
    if (sb_connection_is_ready(connection))
        sb_router_client_left(self->base.router, serial);
    if (!sb_gateway_base_find(&self->base, serial))
        self->refusing--;   /* only refused connections are not in the table */
    sb_gateway_base_remove(&self->base, serial, connection);
}

/* The connection is up (after its TLS handshake, if any): it joins and is greeted. */
static void on_ready(void *owner, sb_connection_t *connection)
{
    sb_tcp_gateway_t *self = owner;
    uint64_t serial = sb_connection_serial(connection);
    self->counters.accepted++;
    char address[80], line[128];
    sb_connection_peer(connection, address, sizeof address);
    sb_router_client_joined(self->base.router, serial, address);
    snprintf(line, sizeof line, "OK switchboard %s client=%s-%" PRIu64, SB_VERSION,
             self->settings.base.router.name, serial);
    sb_connection_write_line(connection, line);
}

static const sb_connection_events_t s_connection_events = { on_ready, on_line, on_closed,
                                                            on_output };

/* A connection still in its TLS handshake counts against --max-connections. */
static void on_connection(uv_stream_t *listener, int status)
{
    sb_tcp_gateway_t *self = listener->data;
    if (status < 0)
        return;
    sb_connection_limits_t limits = { self->settings.max_line, self->settings.max_inflight,
                                      self->settings.max_output,
                                      (uint64_t) self->settings.base.tls_handshake_timeout_ms };
    uint64_t serial = sb_gateway_base_next_serial(&self->base);
    sb_connection_t *connection = sb_connection_accept(
        listener, serial, &limits, &s_connection_events, self,
        sb_gateway_base_tls_of(&self->base, listener));
    if (!connection)
        return;
    if (sb_gateway_base_count(&self->base) >= self->settings.max_connections) {
        self->counters.refused++;
        if (self->refusing++ >= MAX_REFUSING) {
            sb_connection_close(connection);
            return;
        }
        char line[128];
        snprintf(line, sizeof line, "ERR busy too many connections (limit %zu), try again later",
                 self->settings.max_connections);
        sb_connection_refuse(connection, line);
        return;
    }
    sb_gateway_base_add(&self->base, serial, connection);
    sb_connection_start(connection);
}

/* ---------------------------------------------------------------- lifecycle */

static void flush_connection(void *connection)
{
    sb_connection_flush(connection);
}

static void finish_connection(void *connection)
{
    sb_connection_finish(connection);
}

static void close_connection(void *connection)
{
    sb_connection_close(connection);
}

static const sb_gateway_client_actions_t s_connection_actions = {
    flush_connection, finish_connection, close_connection,
};

sb_tcp_gateway_t *sb_tcp_gateway_new(const sb_tcp_gateway_settings_t *settings)
{
    sb_tcp_gateway_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    if (!sb_gateway_base_init(&self->base, &settings->base, &s_client_ops, &s_connection_actions, self,
                              on_connection))
        sb_tcp_gateway_destroy(&self);
    return self;
}

void sb_tcp_gateway_destroy(sb_tcp_gateway_t **self_p)
{
    sb_tcp_gateway_t *self = *self_p;
    if (!self)
        return;
    sb_gateway_base_destroy(&self->base);
    free(self);
    *self_p = NULL;
}

void sb_tcp_gateway_run(sb_tcp_gateway_t *self)
{
    sb_gateway_base_run(&self->base);
}
