/* bridge_hub.c — sb-bridge's core (see bridge_hub.h): the broker link,
 * the bridges as the hub's clients, and what goes between them. */
#include "bridge_hub.h"

#include <czmq.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_link.h"
#include "bridge_rules.h"
#include "broker_link.h"
#include "gateway_base.h"
#include "log.h"
#include "presence.h"
#include "protocol.h"
#include "requests.h"

typedef struct {
    sb_bridge_link_t *link;
    char id[64];                   /* its client id on the hub, the `from` of what it publishes */
    sb_bridge_counters_t published;   /* the counters as last published */
    bool stats_sent;                  /* once at least, zeros too */
} bridge_t;

#define BRIDGE_CLIENT_PREFIX "bridge"   /* bridge i is the hub's client bridge-(i + 1) */
#define RETAINED_ASK_TIMEOUT_MS 10000     /* the broker answers `retained` itself */

struct sb_bridge_hub {
    sb_bridge_hub_settings_t settings;
    uv_loop_t *loop;
    sb_broker_link_t *broker;
    sb_presence_t *presence;
    sb_requests_t *publishes;          /* held while the broker is away */
    bridge_t *bridges;                 /* bridge i is the hub's client i + 1 */
    size_t count;
    bool started;
    bool stopped;
    uv_timer_t stats_timer;
    uv_prepare_t before_sleep;
    uv_signal_t stop_signals[2];
};

/* ---------------------------------------------------------------- to the hub */

static void publish(sb_bridge_hub_t *self, const char *topic, const char *data, bool retain,
                    int qos, const char *from)
{
    sb_envelope_t event = { .type = SB_ENVELOPE_PUBLISH, .topic = (char *) topic,
                            .data = (char *) data, .retain = retain, .qos = (uint8_t) qos,
                            .from = (char *) from };
    sb_request_owner_t nobody = { 0 };
    if (self->publishes && !self->stopped)
        sb_requests_submit(self->publishes, &event, &nobody, false);
}

/* A publish (no owner) or an ask for retained values (owned by its bridge) the broker did not take. */
static void on_publish_given_up(void *arg, const sb_request_owner_t *owner, const char *status,
                                const char *text)
{
    (void) arg;
    if (strcmp(status, "OK") == 0)
        return;
    if (owner->serial)
        sb_log_warn("bridge cannot ask for the hub's retained values", "client=bridge-%" PRIu64
                    " reason=\"%s\"", owner->serial, text);
    else
        sb_log_warn("bridged message not published, the broker cannot be reached",
                    "reason=\"%s\"", text);
}

static const sb_requests_events_t s_publish_events = { on_publish_given_up };

static bridge_t *bridge_of(sb_bridge_hub_t *self, sb_bridge_link_t *link)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->bridges[i].link == link)
            return &self->bridges[i];
    return NULL;
}

static void on_link_message(void *owner, sb_bridge_link_t *link, const char *topic,
                            const char *payload, int qos, bool retain)
{
    sb_bridge_hub_t *self = owner;
    publish(self, topic, payload, retain, qos, bridge_of(self, link)->id);
}

/* The hub's retained values under a bridge's out-only rules, sent out each
 * time it connects, so a remote that lost them (restarted without
 * persistence) has them again. Both-way rules are left out: their values
 * may have come in from the remote, which keeps them. */
static void ask_retained(sb_bridge_hub_t *self, bridge_t *bridge)
{
    const sb_bridge_config_t *config = sb_bridge_link_config(bridge->link);
    for (size_t i = 0; i < config->rule_count; i++) {
        if (config->rules[i].direction != SB_BRIDGE_OUT)
            continue;
        char filter[1024];
        sb_bridge_rule_filter(&config->rules[i], true, filter, sizeof filter);
        char *argv[] = { filter, NULL };
        sb_envelope_t request = { .type = SB_ENVELOPE_REQUEST, .service = SB_BROKER_SERVICE,
                                  .command = "retained", .argc = 1, .argv = argv,
                                  .client = bridge->id };
        sb_request_owner_t owner = { (uint64_t) (bridge - self->bridges) + 1, NULL, 0,
                                     zclock_usecs() };
        if (self->publishes && !self->stopped)
            sb_requests_submit(self->publishes, &request, &owner, true);
    }
}

static void on_link_state(void *owner, sb_bridge_link_t *link, const char *state)
{
    if (strcmp(state, "connected") == 0)
        ask_retained(owner, bridge_of(owner, link));
    char topic[160];
    snprintf(topic, sizeof topic, "$sys/bridges/%s", sb_bridge_link_name(link));
    publish(owner, topic, state, true, 0, bridge_of(owner, link)->id);
}

static const sb_bridge_link_events_t s_link_events = { on_link_message, on_link_state };

static void publish_stats(sb_bridge_hub_t *self, bridge_t *bridge)
{
    sb_bridge_counters_t c = sb_bridge_link_counters(bridge->link);
    if (bridge->stats_sent && memcmp(&c, &bridge->published, sizeof c) == 0)
        return;
    bridge->published = c;
    bridge->stats_sent = true;
    char topic[160], text[320];
    snprintf(topic, sizeof topic, "$sys/bridges/%s/stats", sb_bridge_link_name(bridge->link));
    snprintf(text, sizeof text,
             "in=%" PRIu64 " out=%" PRIu64 " queued=%zu dropped=%" PRIu64 " echoes=%" PRIu64
             " refused=%" PRIu64 " connects=%" PRIu64,
             c.in, c.out, c.queued, c.dropped, c.echoes, c.refused, c.connects);
    publish(self, topic, text, true, 0, bridge->id);
}

static void on_stats_timer(uv_timer_t *timer)
{
    sb_bridge_hub_t *self = timer->data;
    for (size_t i = 0; i < self->count; i++)
        publish_stats(self, &self->bridges[i]);
}

/* ---------------------------------------------------------------- from the hub */

/* Whether the hub's event is one this bridge published itself: the broker
 * copies the publisher's id into the event (`from`, as for MQTT's No Local). */
static bool came_through(const bridge_t *bridge, const sb_envelope_t *event)
{
    return event->from && strcmp(event->from, bridge->id) == 0;
}

static void deliver_event(void *arg, uint64_t client, const sb_envelope_t *event)
{
    sb_bridge_hub_t *self = arg;
    if (client == 0 || client > self->count || !event->data)
        return;
    bridge_t *bridge = &self->bridges[client - 1];
    if (came_through(bridge, event))
        return;
    /* event->retain: a retained value the bridge asked for when it connected. */
    sb_bridge_link_send(bridge->link, event->topic, event->data,
                        event->retain || event->published_retain);
}

static void deliver_message(void *arg, uint64_t client, const char *from, const char *text)
{
    (void) arg;
    (void) text;
    char quoted[SB_LOG_QUOTE_MAX];
    sb_log_debug("direct message to a bridge ignored", "client=%" PRIu64 " from=%s", client,
                 sb_log_quote(quoted, from));
}

static const sb_presence_events_t s_presence_events = { deliver_event, deliver_message };

/* Each bridge joins the hub and takes the local filters of its out/both rules. */
static void join_bridges(sb_bridge_hub_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        const sb_bridge_config_t *config = sb_bridge_link_config(self->bridges[i].link);
        char address[300];
        snprintf(address, sizeof address, "bridge %s", config->name);
        sb_presence_join(self->presence, i + 1, address);
        for (size_t r = 0; r < config->rule_count; r++) {
            if (!(config->rules[r].direction & SB_BRIDGE_OUT))
                continue;
            char filter[1024];
            sb_bridge_rule_filter(&config->rules[r], true, filter, sizeof filter);
            sb_presence_subscribe(self->presence, i + 1, filter);
        }
    }
}

/* ---------------------------------------------------------------- the broker link */

static void on_broker_envelope(void *arg, const sb_envelope_t *env)
{
    sb_bridge_hub_t *self = arg;
    sb_request_owner_t owner;
    if (!sb_presence_handle(self->presence, env) && env->type == SB_ENVELOPE_REPLY)
        sb_requests_take(self->publishes, env->id, &owner);   /* the retained values came first */
}

static void on_broker_lost(void *arg)
{
    sb_bridge_hub_t *self = arg;
    sb_requests_broker_lost(self->publishes);
}

/* The bridges dial out once the hub can take what they bring in. */
static void on_broker_connected(void *arg)
{
    sb_bridge_hub_t *self = arg;
    if (!self->started) {
        join_bridges(self);
    } else {
        sb_presence_resync(self->presence);
    }
    sb_requests_broker_up(self->publishes);
    if (self->started)
        return;
    self->started = true;
    for (size_t i = 0; i < self->count; i++)
        sb_bridge_link_start(self->bridges[i].link);
}

static void on_broker_back(void *arg)
{
    sb_bridge_hub_t *self = arg;
    sb_requests_broker_up(self->publishes);
}

static const sb_broker_link_events_t s_broker_events = {
    on_broker_envelope, on_broker_lost, on_broker_connected, on_broker_back,
};

/* ---------------------------------------------------------------- loop */

static void before_sleep(uv_prepare_t *prepare)
{
    sb_bridge_hub_t *self = prepare->data;
    sb_broker_link_drain(self->broker);
    for (size_t i = 0; i < self->count; i++)
        sb_bridge_link_flush(self->bridges[i].link);
    sb_broker_link_drain(self->broker);   /* what the bridges published goes out before sleep */
}

static void on_stop_signal(uv_signal_t *signal, int signo)
{
    sb_bridge_hub_t *self = signal->data;
    char quoted[SB_LOG_QUOTE_MAX];
    sb_log_info("stopping", "signal=%s", sb_log_quote(quoted, strsignal(signo)));
    for (size_t i = 0; i < self->count; i++) {
        sb_bridge_link_stop(self->bridges[i].link);
        publish_stats(self, &self->bridges[i]);
    }
    self->stopped = true;
    for (size_t i = 0; i < self->count; i++)
        sb_presence_leave(self->presence, i + 1);
    sb_broker_link_drain(self->broker);
    sb_requests_detach(self->publishes);
    sb_broker_link_destroy(&self->broker);
    uv_close((uv_handle_t *) &self->stats_timer, NULL);
    uv_close((uv_handle_t *) &self->before_sleep, NULL);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *) &self->stop_signals[i], NULL);
}

static bool add_bridges(sb_bridge_hub_t *self)
{
    const sb_config_t *config = self->settings.config;
    self->count = sb_config_bridge_count(config);
    self->bridges = calloc(self->count + 1, sizeof *self->bridges);
    for (size_t i = 0; i < self->count; i++) {
        const sb_bridge_config_t *bridge = sb_config_bridge_at(config, i);
        char password[512], reason[512];
        if (!sb_bridge_config_read_password(bridge, password, sizeof password, reason,
                                            sizeof reason)) {
            sb_log_error("bridge cannot start", "bridge=%s reason=\"%s\"", bridge->name, reason);
            return false;
        }
        self->bridges[i].link = sb_bridge_link_new(self->loop, bridge, password, &s_link_events,
                                                   self);
        snprintf(self->bridges[i].id, sizeof self->bridges[i].id, BRIDGE_CLIENT_PREFIX "-%zu",
                 i + 1);
        memset(password, 0, sizeof password);
    }
    return true;
}

sb_bridge_hub_t *sb_bridge_hub_new(const sb_bridge_hub_settings_t *settings)
{
    sb_bridge_hub_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->loop = uv_default_loop();
    sb_bridge_links_init();
    if (!add_bridges(self)) {
        sb_bridge_hub_destroy(&self);
        return NULL;
    }
    sb_broker_link_settings_t link = { settings->broker, settings->heartbeat_interval_ms,
                                       settings->heartbeat_liveness };
    self->broker = sb_broker_link_new(self->loop, &link, &s_broker_events, self);
    if (!self->broker) {
        sb_log_error("cannot connect to broker", "broker=%s", settings->broker);
        sb_bridge_hub_destroy(&self);
        return NULL;
    }
    self->presence = sb_presence_new(self->broker, BRIDGE_CLIENT_PREFIX, SB_BRIDGE_MAX_RULES,
                                     &s_presence_events, self);
    sb_requests_settings_t held = { .broker_wait_ms = settings->broker_wait_ms,
                                    .broker_wait_max = settings->broker_wait_max,
                                    .request_timeout_ms = RETAINED_ASK_TIMEOUT_MS,
                                    .max_timeout_ms = RETAINED_ASK_TIMEOUT_MS,
                                    .broker_answer_ms = RETAINED_ASK_TIMEOUT_MS };
    self->publishes = sb_requests_new(self->loop, self->broker, &held, &s_publish_events, self);
    uv_timer_init(self->loop, &self->stats_timer);
    self->stats_timer.data = self;
    uv_timer_start(&self->stats_timer, on_stats_timer, (uint64_t) settings->stats_interval_ms,
                   (uint64_t) settings->stats_interval_ms);
    uv_prepare_init(self->loop, &self->before_sleep);
    self->before_sleep.data = self;
    uv_prepare_start(&self->before_sleep, before_sleep);
    sb_gateway_watch_stop_signals(self->loop, self->stop_signals, on_stop_signal, self);
    sb_log_info("bridge process started", "bridges=%zu broker=%s", self->count, settings->broker);
    return self;   /* the bridges dial out when the broker link is up: on_broker_connected */
}

void sb_bridge_hub_destroy(sb_bridge_hub_t **self_p)
{
    sb_bridge_hub_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count && !self->stopped; i++)
        if (self->bridges[i].link)
            sb_bridge_link_stop(self->bridges[i].link);   /* closes its timers */
    self->stopped = true;
    sb_requests_destroy(&self->publishes);
    sb_presence_destroy(&self->presence);
    sb_broker_link_destroy(&self->broker);
    uv_run(self->loop, UV_RUN_NOWAIT);   /* let closing handles finish */
    for (size_t i = 0; i < self->count; i++) {
        sb_bridge_link_destroy(&self->bridges[i].link);
    }
    free(self->bridges);
    sb_bridge_links_cleanup();
    free(self);
    *self_p = NULL;
}

void sb_bridge_hub_run(sb_bridge_hub_t *self)
{
    uv_run(self->loop, UV_RUN_DEFAULT);
}
