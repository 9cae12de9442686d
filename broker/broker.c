/* broker.c — sb-broker (see broker.h): its two sockets and its loop.
 *
 * Two ROUTER sockets: the frontend toward gateways, the backend toward
 * providers. Requests go to the routing core (dispatch.c), requests for
 * the broker itself to its commands (broker_commands.c); events fan out
 * from here to the gateways whose filters match (directory.c), and
 * retained values and numeric points are kept on the way (retained.c,
 * history.c). */
#include "broker.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>

#include "broker_commands.h"
#include "curve.h"
#include "directory.h"
#include "dispatch.h"
#include "envelope_io.h"
#include "log.h"
#include "protocol.h"
#include "retained.h"

/* Messages read from one socket before looking at the other, so a flood
 * on one side cannot starve the other. */
#define BATCH_PER_SOCKET 256

struct sb_broker {
    sb_broker_settings_t settings;
    zsock_t *frontend;
    zsock_t *backend;
    zsock_t *frontend_refusals;       /* peers refused by CURVE (NULL when it is off) */
    zsock_t *backend_refusals;
    sb_outbox_t *to_gateways;   /* what goes out on the frontend, flushed each pass */
    sb_outbox_t *to_providers;  /* and on the backend */
    sb_inbox_t *from_gateways;
    sb_inbox_t *from_providers;
    sb_dispatch_t *dispatch;    /* services, providers, requests in flight */
    sb_directory_t *directory;  /* gateways, their clients and subscriptions */
    sb_retained_t *retained;    /* retained values (retained.h) */
    sb_history_t *history;      /* recent points of numeric topics (history.h) */
    sb_broker_state_t state;    /* what the broker's own commands see */
    int64_t next_heartbeat_ms;
    sb_broker_counters_t counters;
};

/* ---------------------------------------------------------------- lifecycle */

/* A flush found a gateway gone: what was for it is lost (its clients went
 * with it; the directory forgets it when its liveness runs out). */
static void on_gateway_lost(void *arg, zframe_t *gateway)
{
    sb_broker_t *self = arg;
    char key[64];
    sb_routing_id_text(gateway, key, sizeof key);
    self->counters.undeliverable++;
    sb_directory_gateway_gone(self->directory, gateway);
    sb_log_warn("gateway unreachable, what was sent to it is lost", "gateway=%s", key);
}

static void on_provider_lost(void *arg, zframe_t *provider)
{
    sb_broker_t *self = arg;
    sb_dispatch_provider_lost(self->dispatch, provider);
}

sb_broker_t *sb_broker_new(const sb_broker_settings_t *settings)
{
    sb_broker_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->frontend = sb_socket_new(ZMQ_ROUTER, settings->frontend, SB_SOCKET_BIND);
    if (!self->frontend)
        sb_log_error("cannot bind frontend", "endpoint=%s error=\"%s\"",
                     settings->frontend, zmq_strerror(errno));
    self->backend = self->frontend ? sb_socket_new(ZMQ_ROUTER, settings->backend, SB_SOCKET_BIND) : NULL;
    if (self->frontend && !self->backend)
        sb_log_error("cannot bind backend", "endpoint=%s error=\"%s\"",
                     settings->backend, zmq_strerror(errno));
    char error[512] = "";
    if (self->backend
        && !(self->retained = sb_retained_new(&settings->retained, error, sizeof error)))
        sb_log_error("cannot open the retained store", "error=\"%s\"", error);
    if (!self->retained) {
        sb_broker_destroy(&self);
        return NULL;
    }
    self->frontend_refusals = sb_curve_watch_refusals(self->frontend);
    self->backend_refusals = sb_curve_watch_refusals(self->backend);
    self->to_gateways = sb_outbox_new(self->frontend, on_gateway_lost, self);
    self->to_providers = sb_outbox_new(self->backend, on_provider_lost, self);
    self->from_gateways = sb_inbox_new(self->frontend, true);
    self->from_providers = sb_inbox_new(self->backend, true);
    self->history = sb_history_new(&settings->history);
    self->dispatch = sb_dispatch_new(settings, self->to_gateways, self->to_providers);
    self->directory = sb_directory_new(settings->heartbeat_interval_ms * settings->heartbeat_liveness);
    self->state = (sb_broker_state_t) { self->to_gateways, self->dispatch, self->directory,
                                        self->retained, self->history, &self->counters };
    self->next_heartbeat_ms = zclock_mono() + settings->heartbeat_interval_ms;
    sb_log_info("broker listening", "frontend=%s backend=%s", settings->frontend, settings->backend);
    return self;
}

void sb_broker_destroy(sb_broker_t **self_p)
{
    sb_broker_t *self = *self_p;
    if (!self)
        return;
    sb_dispatch_destroy(&self->dispatch);
    sb_outbox_destroy(&self->to_gateways);
    sb_outbox_destroy(&self->to_providers);
    sb_inbox_destroy(&self->from_gateways);
    sb_inbox_destroy(&self->from_providers);
    sb_directory_destroy(&self->directory);
    sb_retained_destroy(&self->retained);
    sb_history_destroy(&self->history);
    zsock_destroy(&self->frontend_refusals);
    zsock_destroy(&self->backend_refusals);
    zsock_destroy(&self->backend);
    zsock_destroy(&self->frontend);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- events */

typedef struct {
    sb_broker_t *self;
    const uint8_t *event;       /* encoded once for every gateway */
    size_t size;
} fan_out_t;

static void send_event(void *arg, zframe_t *gateway)
{
    fan_out_t *fan_out = arg;
    if (sb_outbox_add_encoded(fan_out->self->to_gateways, gateway, fan_out->event,
                              fan_out->size) == 0)
        fan_out->self->counters.events_sent++;
}

/* An event goes once to every gateway with a matching filter. A retained
 * one is kept first, with its MQTT 5 properties and expiry (or refused by
 * the bounds: it is still delivered live); live, it carries retain=false,
 * as MQTT has it, and pubret for MQTT 5. */
static void publish(sb_broker_t *self, const sb_envelope_t *published)
{
    const char *data = published->data ? published->data : "";
    if (published->retain) {
        sb_retained_value_t value = { data, published->qos, published->mqtt,
                                      published->expiry_s };
        sb_retained_put(self->retained, published->topic, &value, zclock_time());
    }
    sb_history_record(self->history, published->topic, data, zclock_time());
    sb_envelope_t event = { .type = SB_ENVELOPE_EVENT, .topic = published->topic,
                            .data = (char *) data, .published_retain = published->retain,
                            .qos = published->qos, .from = published->from,
                            .mqtt = published->mqtt };
    fan_out_t fan_out = { self, NULL, 0 };
    uint8_t *encoded = sb_envelope_encode(&event, &fan_out.size);
    self->counters.published++;
    if (!encoded) {
        self->counters.undeliverable++;
        return;
    }
    fan_out.event = encoded;
    sb_directory_each_subscriber(self->directory, published->topic, send_event, &fan_out);
    free(encoded);
}

/* Joins and leaves are events too, on $sys/clients/ID. */
static void publish_client_event(sb_broker_t *self, const char *client, const char *what)
{
    char topic[160];
    snprintf(topic, sizeof topic, "$sys/clients/%.128s", client);
    sb_envelope_t event = { .type = SB_ENVELOPE_PUBLISH, .topic = topic, .data = (char *) what };
    publish(self, &event);
}

static void on_client_expired(void *arg, const char *client)
{
    publish_client_event(arg, client, "left");
}

static void handle_frontend(sb_broker_t *self, zframe_t **gateway, sb_envelope_t **env_p)
{
    sb_envelope_t *env = *env_p;
    sb_gateway_state_t state;
    sb_gateway_entry_t *entry = sb_directory_touch(self->directory, *gateway, &state);
    if (state == SB_GATEWAY_FORGOTTEN
        || (state == SB_GATEWAY_NEW && env->type != SB_ENVELOPE_JOIN
            && env->type != SB_ENVELOPE_SUBSCRIBE)) {
        /* A gateway this broker forgot, or does not know (the broker
         * restarted): asked to tell its clients and filters again. */
        sb_envelope_t resync = { .type = SB_ENVELOPE_DISCONNECT };
        sb_outbox_add(self->to_gateways, *gateway, &resync);
    }
    switch (env->type) {
    case SB_ENVELOPE_REQUEST:
        if (strcmp(env->service, SB_BROKER_SERVICE) == 0)
            sb_broker_commands_run(&self->state, *gateway, env);
        else
            sb_dispatch_request(self->dispatch, gateway, env_p);
        break;
    case SB_ENVELOPE_HEARTBEAT: {
        /* Gateways judge the broker alive by these answers. */
        sb_envelope_t heartbeat = { .type = SB_ENVELOPE_HEARTBEAT };
        sb_outbox_add(self->to_gateways, *gateway, &heartbeat);
        break;
    }
    case SB_ENVELOPE_SUBSCRIBE:
        sb_directory_subscribe(self->directory, entry, env->topic);
        break;
    case SB_ENVELOPE_UNSUBSCRIBE:
        sb_directory_unsubscribe(self->directory, entry, env->topic);
        break;
    case SB_ENVELOPE_PUBLISH:
        publish(self, env);
        break;
    case SB_ENVELOPE_JOIN:
        if (sb_directory_join(self->directory, entry, env->client, env->text))
            publish_client_event(self, env->client, "joined");
        break;
    case SB_ENVELOPE_LEAVE:
        if (sb_directory_leave(self->directory, entry, env->client))
            publish_client_event(self, env->client, "left");
        break;
    default:
        self->counters.malformed++;
        sb_log_warn("unexpected envelope from gateway, dropped", "type=%s",
                    sb_envelope_type_name(env->type));
    }
}

/* ---------------------------------------------------------------- time */

/* The broker itself did not run for a while (stopped, or starved of CPU):
 * the silence it would see is its own, and what its peers sent meanwhile
 * may not be read yet. Everyone gets a fresh liveness period. */
static void forgive_own_pause(sb_broker_t *self, int64_t late_ms)
{
    sb_log_warn("broker was paused, not judging peers by it", "late_ms=%" PRId64, late_ms);
    sb_dispatch_forgive(self->dispatch);
    sb_directory_extend(self->directory);
}

/* Every interval: heartbeats to providers, and peers silent past their
 * liveness forgotten. */
static void heartbeat(sb_broker_t *self)
{
    int64_t now = zclock_mono();
    if (now < self->next_heartbeat_ms)
        return;
    if (now - self->next_heartbeat_ms > self->settings.heartbeat_interval_ms)
        forgive_own_pause(self, now - self->next_heartbeat_ms);
    self->next_heartbeat_ms = now + self->settings.heartbeat_interval_ms;
    sb_dispatch_heartbeat(self->dispatch);
    size_t gone = sb_directory_expire(self->directory, on_client_expired, self);
    if (gone)
        sb_log_warn("gateways silent, their clients forgotten", "gateways=%zu", gone);
}

static long poll_timeout_ms(sb_broker_t *self)
{
    int64_t now = zclock_mono();
    int64_t next = self->next_heartbeat_ms;
    int64_t dispatch = now + sb_dispatch_timeout_ms(self->dispatch);
    if (dispatch < next)
        next = dispatch;
    int64_t flush = sb_retained_flush_due(self->retained);
    if (flush >= 0 && flush < next)
        next = flush;
    /* Envelopes of a message already read are not seen by zmq_poll. */
    if (sb_inbox_has_more(self->from_gateways) || sb_inbox_has_more(self->from_providers))
        return 0;
    return next > now ? (long) (next - now) : 0;
}

/* ---------------------------------------------------------------- loop */

static void log_malformed(sb_broker_t *self, const char *side, zframe_t *routing_id,
                          const char *error)
{
    self->counters.malformed++;
    /* Logged at 1, 2, 4, 8, ... so a flood of garbage cannot flood the log. */
    if ((self->counters.malformed & (self->counters.malformed - 1)) == 0) {
        char peer[64];
        sb_routing_id_text(routing_id, peer, sizeof peer);
        sb_log_warn("malformed envelope dropped", "side=%s peer=%s error=\"%s\" malformed_total=%" PRIu64,
                    side, peer, error, self->counters.malformed);
    }
}

static void drain(sb_broker_t *self, sb_inbox_t *inbox)
{
    bool is_frontend = inbox == self->from_gateways;
    for (int i = 0; i < BATCH_PER_SOCKET; i++) {
        zframe_t *routing_id = NULL;
        sb_envelope_t *env = NULL;
        const char *error = NULL;
        sb_recv_status_t status = sb_inbox_next(inbox, &routing_id, &env, &error);
        if (status == SB_RECV_NONE)
            break;
        if (status == SB_RECV_MALFORMED)
            log_malformed(self, is_frontend ? "frontend" : "backend", routing_id, error);
        else if (is_frontend)
            handle_frontend(self, &routing_id, &env);
        else if (!sb_dispatch_from_provider(self->dispatch, &routing_id, env))
            self->counters.malformed++;
        sb_envelope_destroy(&env);
        zframe_destroy(&routing_id);
    }
}

void sb_broker_run(sb_broker_t *self)
{
    zmq_pollitem_t items[4] = {
        { zsock_resolve(self->frontend), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve(self->backend), 0, ZMQ_POLLIN, 0 },
    };
    int count = 2;
    if (self->frontend_refusals && self->backend_refusals) {
        items[count++] = (zmq_pollitem_t) { zsock_resolve(self->frontend_refusals), 0, ZMQ_POLLIN, 0 };
        items[count++] = (zmq_pollitem_t) { zsock_resolve(self->backend_refusals), 0, ZMQ_POLLIN, 0 };
    }
    while (!zsys_interrupted) {
        if (zmq_poll(items, count, poll_timeout_ms(self)) < 0 && errno != EINTR)
            break;
        sb_curve_log_refusals(self->frontend_refusals, "frontend");
        sb_curve_log_refusals(self->backend_refusals, "backend");
        /* Replies first: they free providers for the requests behind them. */
        drain(self, self->from_providers);
        drain(self, self->from_gateways);
        sb_dispatch_tick(self->dispatch);
        heartbeat(self);
        /* Providers first: one found gone may have its requests answered. */
        sb_outbox_flush(self->to_providers);
        sb_outbox_flush(self->to_gateways);
        int64_t flush = sb_retained_flush_due(self->retained);
        if (flush >= 0 && flush <= zclock_mono())
            sb_retained_flush(self->retained);
    }
    sb_dispatch_counters_t counters = sb_dispatch_counters(self->dispatch);
    sb_log_info("broker stopping", "requests=%" PRIu64 " replies=%" PRIu64 " timeouts=%" PRIu64
                " busy=%" PRIu64 " malformed=%" PRIu64, counters.requests, counters.replies,
                counters.timeouts, counters.busy, self->counters.malformed);
}
