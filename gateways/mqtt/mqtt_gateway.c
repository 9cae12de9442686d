/* mqtt_gateway.c — sb-gateway-mqtt's core (see mqtt_gateway.h): the
 * listeners and connections, each packet handed to the file that handles
 * its kind (mqtt_connect.c, mqtt_publish.c, mqtt_subscribe.c), the router's
 * view of a session (answers, events, tell), and the lifecycle.
 *
 * A session, not a connection, is the hub's client: it keeps its mqtt-N
 * id, its hub subscriptions and the router's reply slots while its client
 * is away, so events for a persistent session queue up (bounded) and the
 * answer to a PUBLISH that arrives after a reconnect finds the session.
 * Connections are the base's clients (flushed before the loop sleeps,
 * drained on SIGTERM). Both take their serials from the same counter. */
#include "mqtt_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "id_map.h"
#include "log.h"
#include "mqtt_relay.h"
#include "reply_queue.h"

/* ---------------------------------------------------------------- DISCONNECT and the rest */

static void on_disconnect(link_t *link, const sb_mqtt_disconnect_t *disconnect)
{
    sb_mqtt_gateway_t *self = link->gateway;
    sb_mqtt_session_t *session = link->session;
    if (sb_mqtt_has(&disconnect->properties, SB_MQTT_PROP_SESSION_EXPIRY_INTERVAL)) {
        uint32_t wanted = disconnect->properties.session_expiry_interval;
        if (link->expiry_was_zero && wanted) {
            mqtt_close_with(link, SB_MQTT_RC_PROTOCOL_ERROR, "session expiry set at DISCONNECT after 0");
            return;
        }
        session->expiry_s = wanted < self->settings.max_session_expiry_s
                                ? wanted : self->settings.max_session_expiry_s;
        session->dirty = true;
    }
    if (disconnect->reason == SB_MQTT_RC_NORMAL_DISCONNECTION)
        sb_mqtt_session_set_will(session, NULL, 0);
    sb_mqtt_client_end(link->client);
}

static void on_packet(void *owner, sb_mqtt_client_t *client, const uint8_t *data, size_t length)
{
    sb_mqtt_gateway_t *self = owner;
    link_t *link = sb_mqtt_client_data(client);
    sb_mqtt_error_t error = { 0 };
    sb_mqtt_packet_t *packet = sb_mqtt_decode(data, length, link->version, &error);
    if (!packet) {
        self->counters.malformed++;
        if (!link->session && error.connack_version)
            mqtt_refuse_connect(link, error.connack_version, error.reason, error.detail);
        else if (!link->session) {
            sb_log_info("mqtt client closed before CONNECT", "address=%s reason=0x%02x detail=\"%s\"",
                        link->peer, error.reason, error.detail ? error.detail : "");
            sb_mqtt_client_close(client);
        }
        else
            mqtt_close_with(link, error.reason, error.detail);
        return;
    }
    switch (packet->type) {
    case SB_MQTT_CONNECT:
        if (link->session)
            mqtt_close_with(link, SB_MQTT_RC_PROTOCOL_ERROR, "a second CONNECT");
        else
            mqtt_on_connect(link, &packet->u.connect);
        break;
    case SB_MQTT_PUBLISH:
        mqtt_on_publish(link, &packet->u.publish);
        break;
    case SB_MQTT_PUBACK:
    case SB_MQTT_PUBREC:
    case SB_MQTT_PUBREL:
    case SB_MQTT_PUBCOMP:
        mqtt_on_ack(link, packet->type, &packet->u.ack);
        break;
    case SB_MQTT_SUBSCRIBE:
    case SB_MQTT_UNSUBSCRIBE:
        mqtt_on_subscribe(link, &packet->u.subscribe, packet->type == SB_MQTT_SUBSCRIBE);
        break;
    case SB_MQTT_PINGREQ: {
        sb_mqtt_packet_t pong = { .type = SB_MQTT_PINGRESP };
        mqtt_send_packet(link, &pong);
        break;
    }
    case SB_MQTT_DISCONNECT:
        on_disconnect(link, &packet->u.disconnect);
        break;
    default:   /* AUTH: no enhanced authentication was begun */
        mqtt_close_with(link, SB_MQTT_RC_PROTOCOL_ERROR, "unexpected packet");
        break;
    }
    sb_mqtt_packet_destroy(&packet);
}

/* ---------------------------------------------------------------- the router's view of a session */

static void *find_session(void *owner, uint64_t serial)
{
    sb_mqtt_gateway_t *self = owner;
    return zhashx_lookup(self->sessions, sb_id_map_key(serial));
}

static uint64_t session_serial(void *client)
{
    return ((sb_mqtt_session_t *) client)->serial;
}

static sb_reply_slot_t *open_slot(void *client, const char *tag)
{
    (void) tag;
    sb_reply_slot_t *slot;
    mqtt_add_slot_request(client, mqtt_slot_new(SLOT_IGNORE, 0), &slot);
    return slot;
}

static void answer(void *client, sb_reply_slot_t *reply_slot, const char *status, const char *text,
                   bool close_after)
{
    sb_mqtt_session_t *session = client;
    sb_mqtt_gateway_t *self = session->owner;
    const slot_t *slot = sb_reply_slot_request(reply_slot);
    (void) close_after;
    status = status ? status : "OK";
    switch (slot->kind) {
    case SLOT_CAPTURE:
        snprintf(self->captured, sizeof self->captured, "%s", status);
        break;
    case SLOT_PUBLISH:
        session->waiting--;
        mqtt_answer_publish(self, session, slot, status);
        break;
    case SLOT_COMMAND:
        session->waiting--;
        mqtt_answer_command(self, session, slot, status, text);
        break;
    case SLOT_IGNORE:
        break;
    }
    sb_reply_queue_remove(&session->slots, reply_slot);
}

/* The publisher's MQTT 5 properties go with the message; its Message
 * Expiry counts from now (the hub's transit is not counted), or, for a
 * retained value, from what the broker says is left of it (`exp`). */
static void relay_properties(sb_mqtt_message_t *message, const sb_envelope_t *event)
{
    sb_mqtt_packet_t *packet = event->mqtt ? sb_mqtt_relay_decode(event->mqtt) : NULL;
    uint32_t expiry_s = event->retain && event->expiry_s ? event->expiry_s
                      : packet ? sb_mqtt_relay_expiry(&packet->u.publish.properties) : 0;
    if (expiry_s)
        message->expires_at_ms = zclock_time() + 1000LL * expiry_s;
    if (packet)
        message->relayed = strdup(event->mqtt);
    sb_mqtt_packet_destroy(&packet);
}

/* A hub event: not to its own publisher under No Local (the broker passes
 * the publisher's id on, `from`); at the lower of its QoS and the subscription's; a retained
 * value (sent on subscribe) with RETAIN set, unless the subscription's
 * Retain Handling declines it; a live one with RETAIN only under v5's
 * Retain As Published. */
static void write_event(void *client, const sb_envelope_t *event)
{
    sb_mqtt_session_t *session = client;
    sb_mqtt_gateway_t *self = session->owner;
    const sb_mqtt_filter_t *filter;
    if (session->members) {   /* a shared subscription: one member gets it; no retained values */
        session = event->retain ? NULL : mqtt_next_member(self, session, &filter);
        if (!session)
            return;
    }
    else {
        char id[64];
        sb_router_client_id(self->base.router, session->serial, id, sizeof id);
        bool own = event->from && strcmp(event->from, id) == 0;
        filter = sb_mqtt_session_match(session, event->topic, event->retain, own);
    }
    /* A restored session's subscriptions are not new: no retained values for them. */
    if (!filter || (event->retain && session->restored))
        return;
    const char *data = event->data ? event->data : "";
    uint8_t qos = event->qos < filter->qos ? event->qos : filter->qos;
    bool retain = event->retain || (filter->retain_as_published && event->published_retain);
    sb_mqtt_message_t *message = sb_mqtt_message_new(event->topic, data, strlen(data), qos, retain);
    message->subscription_id = filter->id;
    relay_properties(message, event);
    mqtt_deliver(session, message);
}

/* A `tell`, on $switchboard/msg/ID/FROM: the gateway's own message, at the
 * subscription's QoS. */
static void write_async(void *client, const char *kind, const char *word, const char *text)
{
    sb_mqtt_session_t *session = client;
    sb_mqtt_gateway_t *self = session->owner;
    if (strcmp(kind, "MSG") != 0)
        return;   /* events come through write_event */
    char topic[512];
    snprintf(topic, sizeof topic, MSG_PREFIX "%s/%s", session->client_id, word);
    const sb_mqtt_filter_t *filter = sb_mqtt_session_match(session, topic, false, false);
    if (!filter) {
        self->counters.undeliverable++;
        return;
    }
    sb_mqtt_message_t *message = sb_mqtt_message_new(topic, text, strlen(text), filter->qos, false);
    message->subscription_id = filter->id;
    mqtt_deliver(session, message);
}

static int describe(void *owner, char *buffer, size_t size)
{
    sb_mqtt_gateway_t *self = owner;
    const mqtt_counters_t *c = &self->counters;
    sb_gateway_client_counts_t counts = { self->connected, c->accepted, c->refused, 0 };
    int used = sb_gateway_base_describe(&self->base, &counts, buffer, size);
    int more = snprintf(buffer + used, size - (size_t) used,
                        " sessions=%zu publishes_in=%" PRIu64 " publishes_out=%" PRIu64
                        " denied=%" PRIu64 " dropped=%" PRIu64 " malformed=%" PRIu64
                        " keep_alive_timeouts=%" PRIu64 " takeovers=%" PRIu64 " wills=%" PRIu64
                        " commands=%" PRIu64 " undeliverable=%" PRIu64 " evicted=%" PRIu64,
                        zhashx_size(self->sessions), c->publishes_in, c->publishes_out, c->denied,
                        c->dropped, c->malformed, c->keep_alive_timeouts, c->takeovers, c->wills,
                        c->commands, c->undeliverable, c->evicted);
    if (more < 0)
        return used;
    return (size_t) (used + more) >= size ? (int) size - 1 : used + more;
}

static const sb_router_client_ops_t s_client_ops = {
    find_session, session_serial, open_slot, answer, write_async, describe, write_event,
};

/* ---------------------------------------------------------------- connections */

static void on_ready(void *owner, sb_mqtt_client_t *client)
{
    (void) owner;
    (void) client;
}

static void on_failure(void *owner, sb_mqtt_client_t *client, sb_mqtt_client_failure_t why)
{
    sb_mqtt_gateway_t *self = owner;
    link_t *link = sb_mqtt_client_data(client);
    switch (why) {
    case SB_MQTT_CLIENT_TOO_LARGE:
        self->counters.malformed++;
        mqtt_close_with(link, SB_MQTT_RC_PACKET_TOO_LARGE, "packet over the maximum packet size");
        break;
    case SB_MQTT_CLIENT_MALFORMED:
        self->counters.malformed++;
        mqtt_close_with(link, SB_MQTT_RC_MALFORMED_PACKET, "bad remaining length");
        break;
    case SB_MQTT_CLIENT_KEEP_ALIVE:
        self->counters.keep_alive_timeouts++;
        mqtt_close_with(link, SB_MQTT_RC_KEEP_ALIVE_TIMEOUT, NULL);
        break;
    case SB_MQTT_CLIENT_NOT_READING:
        break;
    }
}

static void on_closed(void *owner, sb_mqtt_client_t *client)
{
    sb_mqtt_gateway_t *self = owner;
    link_t *link = sb_mqtt_client_data(client);
    uint64_t serial = sb_mqtt_client_serial(client);
    self->sockets--;
    if (link->session) {
        self->connected--;
        mqtt_session_left(self, link->session);
    }
    for (size_t i = 0; i <= TOPIC_ALIASES; i++) {
        free(link->aliases[i]);
        free(link->out_aliases[i]);
    }
    free(link);
    sb_gateway_base_remove(&self->base, serial, client);
}

static void on_output(void *owner, sb_mqtt_client_t *client)
{
    sb_mqtt_gateway_t *self = owner;
    sb_gateway_base_has_output(&self->base, client);
}

/* Prometheus text of the gateway's counters, for GET /metrics on a
 * WebSocket listener (the WebSocket gateway's /metrics has its own). */
static void metric(FILE *out, const char *name, const char *type, const char *help,
                   uint64_t value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name,
            value);
}

static char *metrics_text(sb_mqtt_gateway_t *self, size_t *length)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, length);
    const mqtt_counters_t *c = &self->counters;
    metric(out, "sb_mqtt_broker_up", "gauge", "1 while the broker link is up and answering.",
           sb_router_stats(self->base.router).broker_up);
    metric(out, "sb_mqtt_connections", "gauge", "Connected MQTT clients.", self->connected);
    metric(out, "sb_mqtt_sessions", "gauge", "Sessions, connected or away.",
           zhashx_size(self->sessions));
    metric(out, "sb_mqtt_connections_accepted_total", "counter", "CONNECTs accepted.", c->accepted);
    metric(out, "sb_mqtt_connections_refused_total", "counter", "CONNECTs refused.", c->refused);
    metric(out, "sb_mqtt_publishes_in_total", "counter", "PUBLISHes from clients.", c->publishes_in);
    metric(out, "sb_mqtt_publishes_out_total", "counter", "PUBLISHes to clients.", c->publishes_out);
    metric(out, "sb_mqtt_denied_total", "counter", "Publishes and filters refused by the rules.",
           c->denied);
    metric(out, "sb_mqtt_dropped_total", "counter", "QoS 0 publishes dropped.", c->dropped);
    metric(out, "sb_mqtt_malformed_total", "counter", "Connections closed for a bad packet.",
           c->malformed);
    metric(out, "sb_mqtt_keep_alive_timeouts_total", "counter",
           "Connections closed after 1.5 x their keep alive.", c->keep_alive_timeouts);
    metric(out, "sb_mqtt_takeovers_total", "counter", "Sessions taken over.", c->takeovers);
    metric(out, "sb_mqtt_evicted_total", "counter",
           "Away sessions ended to make room for a new one (--max-sessions).", c->evicted);
    metric(out, "sb_mqtt_wills_total", "counter", "Wills published.", c->wills);
    metric(out, "sb_mqtt_commands_total", "counter", "$switchboard/cmd requests.", c->commands);
    metric(out, "sb_mqtt_undeliverable_total", "counter",
           "Messages no subscription matched or too large or expired.", c->undeliverable);
    fclose(out);
    return text;
}

static void on_http(void *owner, sb_mqtt_client_t *client, const char *path)
{
    sb_mqtt_gateway_t *self = owner;
    if (strcmp(path, "/metrics") != 0) {
        static const char text[] = "MQTT over WebSocket here (subprotocol mqtt), and /metrics\n";
        sb_mqtt_client_respond(client, 426, "text/plain", text, sizeof text - 1);
        return;
    }
    size_t length = 0;
    char *text = metrics_text(self, &length);
    sb_mqtt_client_respond(client, 200, "text/plain; version=0.0.4", text, length);
    free(text);
}

static const sb_mqtt_client_events_t s_client_events = {
    on_ready, on_packet, on_failure, on_closed, on_output, on_http,
};

static void on_connection(uv_stream_t *listener, int status)
{
    sb_mqtt_gateway_t *self = listener->data;
    if (status < 0)
        return;
    sb_mqtt_client_limits_t limits = {
        self->settings.max_packet, self->settings.max_output,
        (uint64_t) (self->settings.base.tls_handshake_timeout_ms > CONNECT_TIMEOUT_MS
                        ? self->settings.base.tls_handshake_timeout_ms : CONNECT_TIMEOUT_MS),
    };
    uint64_t serial = sb_gateway_base_next_serial(&self->base);
    bool wss = listener == (uv_stream_t *) &self->wss_listener;
    bool ws = wss || listener == (uv_stream_t *) &self->ws_listener;
    sb_tls_context_t *tls = wss ? self->base.tls : sb_gateway_base_tls_of(&self->base, listener);
    sb_mqtt_client_t *client = sb_mqtt_client_accept(listener, serial, &limits, &s_client_events,
                                                     self, tls, ws ? &self->ws_limits : NULL);
    if (!client)
        return;
    link_t *link = calloc(1, sizeof *link);
    link->gateway = self;
    link->client = client;
    sb_mqtt_client_peer(client, link->peer, sizeof link->peer);
    sb_mqtt_client_set_data(client, link);
    self->sockets++;
    sb_gateway_base_add(&self->base, serial, client);
    if (self->base.stopping || self->sockets > self->settings.max_connections + MAX_REFUSING) {
        self->counters.refused++;
        sb_mqtt_client_close(client);
        return;
    }
    sb_mqtt_client_start(client);
}

/* ---------------------------------------------------------------- lifecycle */

static void flush_client(void *client)
{
    sb_mqtt_client_flush(client);
}

/* A stop: v5 clients hear why (0x8B); every connection ends after its output. */
static void finish_client(void *client)
{
    link_t *link = sb_mqtt_client_data(client);
    if (link->session)
        mqtt_close_with(link, SB_MQTT_RC_SERVER_SHUTTING_DOWN, NULL);
    else
        sb_mqtt_client_close(client);
}

static void close_client(void *client)
{
    sb_mqtt_client_close(client);
}

static const sb_gateway_client_actions_t s_client_actions = {
    flush_client, finish_client, close_client,
};

/* MQTT over WebSocket: any Origin and Host, as MQTT brokers do (tokens
 * guard the hub); a WebSocket message may hold up to two packets. It does
 * not hold the loop open: the stop ends with the base's listeners. */
static bool listen_ws(sb_mqtt_gateway_t *self, uv_tcp_t *listener, const char *address, bool tls)
{
    if (tls && !self->base.tls) {
        sb_log_error("--wss-listen needs --tls-listen (and its certificate)", "wss_listen=%s",
                     address);
        return false;
    }
    self->ws_limits = (sb_ws_stream_limits_t) { 8192, 2 * self->settings.max_packet, "*", "*",
                                                "mqtt", 0 };
    if (!sb_address_listen(self->base.loop, listener, self, address, false, on_connection))
        return false;
    uv_unref((uv_handle_t *) listener);
    sb_log_info("mqtt over websocket listening", "address=%s tls=%s", address, tls ? "yes" : "no");
    sb_gateway_warn_if_open(self->base.router, address);
    return true;
}

static void close_listener(uv_tcp_t *listener)
{
    if (listener->data && !uv_is_closing((uv_handle_t *) listener))
        uv_close((uv_handle_t *) listener, NULL);
}

static void destroy_session_item(void **item)
{
    sb_mqtt_session_destroy((sb_mqtt_session_t **) item);
}

sb_mqtt_gateway_t *sb_mqtt_gateway_new(const sb_mqtt_gateway_settings_t *settings)
{
    sb_mqtt_gateway_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->sessions = sb_id_map_new();
    zhashx_set_destructor(self->sessions, destroy_session_item);
    self->sessions_by_id = zhashx_new();
    self->shares = zhashx_new();
    sb_mqtt_buffer_init(&self->scratch);
    if (!sb_gateway_base_init(&self->base, &settings->base, &s_client_ops, &s_client_actions, self,
                              on_connection)) {
        sb_mqtt_gateway_destroy(&self);
        return NULL;
    }
    if ((settings->session_store && !mqtt_open_store(self))
        || (settings->ws_listen && !listen_ws(self, &self->ws_listener, settings->ws_listen, false))
        || (settings->wss_listen
            && !listen_ws(self, &self->wss_listener, settings->wss_listen, true))) {
        sb_mqtt_gateway_destroy(&self);
        return NULL;
    }
    uv_timer_init(self->base.loop, &self->sweep);
    self->sweep.data = self;
    uv_timer_start(&self->sweep, mqtt_on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    uv_unref((uv_handle_t *) &self->sweep);   /* the stop does not wait for it */
    return self;
}

/* A client still closing when the base is destroyed reaches on_closed
 * after the router is gone: its session must no longer reach the hub. */
static void detach_sessions(sb_mqtt_gateway_t *self)
{
    if (!self->base.clients)
        return;
    for (sb_mqtt_client_t *client = zhashx_first(self->base.clients); client;
         client = zhashx_next(self->base.clients)) {
        link_t *link = sb_mqtt_client_data(client);
        if (link && link->session) {
            link->session->link = NULL;
            link->session = NULL;
        }
    }
}

void sb_mqtt_gateway_destroy(sb_mqtt_gateway_t **self_p)
{
    sb_mqtt_gateway_t *self = *self_p;
    if (!self)
        return;
    if (self->store)
        mqtt_save_sessions(self, true);
    if (self->sweep.data)
        uv_close((uv_handle_t *) &self->sweep, NULL);
    close_listener(&self->ws_listener);
    close_listener(&self->wss_listener);
    detach_sessions(self);
    sb_gateway_base_destroy(&self->base);
    zhashx_destroy(&self->sessions_by_id);
    zhashx_destroy(&self->shares);
    zhashx_destroy(&self->sessions);
    sb_mqtt_store_close(&self->store);
    sb_mqtt_buffer_release(&self->scratch);
    free(self);
    *self_p = NULL;
}

void sb_mqtt_gateway_run(sb_mqtt_gateway_t *self)
{
    sb_gateway_base_run(&self->base);
}
