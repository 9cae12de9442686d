/* broker.c — sb-broker's routing core (see broker.h).
 *
 * Two ROUTER sockets: the frontend toward gateways, the backend toward
 * providers. A request gets a broker-wide id of its own, so replies are
 * matched to exactly one outstanding request whatever the gateways and
 * providers send; a reply that matches nothing (late, duplicate, forged)
 * is dropped and counted. */
#include "broker.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>

#include "cmdline.h"
#include "curve.h"
#include "deadlines.h"
#include "directory.h"
#include "envelope_io.h"
#include "log.h"
#include "protocol.h"
#include "retained.h"
#include "topic.h"

/* A `topics` reply stays well inside one envelope, and its words inside
 * what a gateway's line parser takes (two per value, SB_CMDLINE_MAX_ARGS). */
#define TOPICS_MAX_TEXT   (SB_ENVELOPE_MAX_SIZE - 16 * 1024)
#define TOPICS_MAX_VALUES 500

/* Messages read from one socket before looking at the other, so a flood
 * on one side cannot starve the other. */
#define BATCH_PER_SOCKET 256

typedef struct service service_t;
typedef struct provider provider_t;

typedef struct {
    uint64_t id;                /* broker-wide */
    uint64_t gateway_request_id;
    zframe_t *gateway;          /* routing id of the gateway that asked */
    sb_envelope_t *envelope;    /* the request as the gateway sent it */
    service_t *service;
    provider_t *provider;       /* holding it, or NULL while waiting */
    void *waiting_handle;       /* in service->waiting while waiting */
    int64_t deadline_ms;
    bool answered;              /* timed out while a provider holds it */
    int retries;                /* times given to another worker after one died */
} request_t;

struct provider {
    char key[64];               /* routing id as hex */
    zframe_t *routing_id;
    service_t *service;
    request_t *request;         /* the one it is running, or NULL when idle */
    void *idle_handle;          /* in service->idle while idle */
    int64_t expires_ms;         /* dead if nothing is heard from it by then */
};

struct service {
    char *name;
    zlistx_t *idle;             /* provider_t*: head = least recently used */
    zlistx_t *waiting;          /* request_t*: oldest first */
    size_t provider_count;
    bool offered;               /* some provider has registered for it */
    bool requeued;              /* a request went back to its queue: dispatch after the batch */
};

typedef struct {
    uint64_t requests, replies, timeouts, busy, no_service;
    uint64_t malformed, unmatched_replies, undeliverable;
    uint64_t published, events_sent, messages;
} broker_counters_t;

struct sb_broker {
    sb_broker_settings_t settings;
    zsock_t *frontend;
    zsock_t *backend;
    zsock_t *frontend_refusals;       /* peers refused by CURVE (NULL when it is off) */
    zsock_t *backend_refusals;
    zhashx_t *services;         /* name -> service_t */
    zhashx_t *providers;        /* key -> provider_t */
    zhashx_t *requests;         /* id as text -> request_t */
    sb_deadlines_t *deadlines;
    sb_directory_t *directory;  /* gateways, their clients and subscriptions */
    sb_retained_t *retained;    /* retained values (retained.h) */
    uint64_t next_request_id;
    int64_t grace_ends_ms;
    bool grace_over;
    int64_t next_heartbeat_ms;
    broker_counters_t counters;
};

/* ---------------------------------------------------------------- lifecycle */

static void service_free(void **item)
{
    service_t *service = *item;
    if (!service)
        return;
    zlistx_destroy(&service->idle);
    zlistx_destroy(&service->waiting);
    free(service->name);
    free(service);
    *item = NULL;
}

static void provider_free(void **item)
{
    provider_t *provider = *item;
    if (!provider)
        return;
    zframe_destroy(&provider->routing_id);
    free(provider);
    *item = NULL;
}

static void request_free(void **item)
{
    request_t *request = *item;
    if (!request)
        return;
    zframe_destroy(&request->gateway);
    sb_envelope_destroy(&request->envelope);
    free(request);
    *item = NULL;
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
    self->services = zhashx_new();
    zhashx_set_destructor(self->services, service_free);
    self->providers = zhashx_new();
    zhashx_set_destructor(self->providers, provider_free);
    self->requests = zhashx_new();
    zhashx_set_destructor(self->requests, request_free);
    self->deadlines = sb_deadlines_new();
    self->directory = sb_directory_new(settings->heartbeat_interval_ms * settings->heartbeat_liveness);
    /* Ids continue from the clock, so a restarted broker never reuses the
     * ids of the one before: a stale reply cannot match a new request. */
    self->next_request_id = (uint64_t) zclock_time() * 1000;
    self->grace_ends_ms = zclock_mono() + settings->startup_grace_ms;
    self->next_heartbeat_ms = zclock_mono() + settings->heartbeat_interval_ms;
    sb_log_info("broker listening", "frontend=%s backend=%s", settings->frontend, settings->backend);
    return self;
}

void sb_broker_destroy(sb_broker_t **self_p)
{
    sb_broker_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->requests);
    zhashx_destroy(&self->providers);
    zhashx_destroy(&self->services);
    sb_deadlines_destroy(&self->deadlines);
    sb_directory_destroy(&self->directory);
    sb_retained_destroy(&self->retained);
    zsock_destroy(&self->frontend_refusals);
    zsock_destroy(&self->backend_refusals);
    zsock_destroy(&self->backend);
    zsock_destroy(&self->frontend);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- services */

static service_t *service_require(sb_broker_t *self, const char *name)
{
    service_t *service = zhashx_lookup(self->services, name);
    if (service)
        return service;
    service = calloc(1, sizeof *service);
    service->name = strdup(name);
    service->idle = zlistx_new();
    service->waiting = zlistx_new();
    zhashx_insert(self->services, name, service);
    return service;
}

static void request_key(uint64_t id, char key[24])
{
    snprintf(key, 24, "%" PRIu64, id);
}

/* ---------------------------------------------------------------- answering */

/* Sends the one reply a request gets. The request itself is freed by the caller. */
static void answer(sb_broker_t *self, request_t *request, bool ok, const char *code,
                   const char *text)
{
    sb_envelope_t reply = {
        .type = SB_ENVELOPE_REPLY, .id = request->gateway_request_id,
        .ok = ok, .code = (char *) code, .text = (char *) text,
    };
    if (sb_envelope_send(self->frontend, request->gateway, &reply) < 0) {
        self->counters.undeliverable++;
        sb_log_warn("reply undeliverable, gateway gone", "request=%" PRIu64 " error=\"%s\"",
                    request->id, zmq_strerror(errno));
    }
    if (request->id)   /* refusals and the broker's own answers are not replies to requests */
        self->counters.replies++;
}

static void request_forget(sb_broker_t *self, request_t *request)
{
    char key[24];
    request_key(request->id, key);
    zhashx_delete(self->requests, key);
}

/* Answers with an error straight from the gateway's envelope: for requests
 * refused before the broker took them on. */
static void refuse(sb_broker_t *self, zframe_t *gateway, uint64_t id, const char *code,
                   const char *text)
{
    request_t unregistered = { .gateway = gateway, .gateway_request_id = id };
    answer(self, &unregistered, false, code, text);
}

/* ---------------------------------------------------------------- dispatch */

static void provider_remove(sb_broker_t *self, provider_t *provider, const char *why,
                            bool graceful);

/* Hands `request` to `provider`; false if the provider turned out to be gone. */
static bool dispatch(sb_broker_t *self, request_t *request, provider_t *provider)
{
    sb_envelope_t forwarded = *request->envelope;
    forwarded.id = request->id;
    int64_t left = request->deadline_ms - zclock_mono();
    forwarded.timeout_ms = (uint32_t) (left > 0 ? left : 1);
    if (sb_envelope_send(self->backend, provider->routing_id, &forwarded) < 0) {
        provider_remove(self, provider, "unreachable", false);
        return false;
    }
    provider->request = request;
    request->provider = provider;
    return true;
}

/* Gives waiting requests to idle providers of `service`, oldest request to
 * least recently used provider. */
static void service_dispatch(sb_broker_t *self, service_t *service)
{
    while (zlistx_size(service->waiting) > 0 && zlistx_size(service->idle) > 0) {
        provider_t *provider = zlistx_first(service->idle);
        zlistx_delete(service->idle, provider->idle_handle);
        provider->idle_handle = NULL;
        request_t *request = zlistx_first(service->waiting);
        if (dispatch(self, request, provider)) {
            zlistx_delete(service->waiting, request->waiting_handle);
            request->waiting_handle = NULL;
        }
    }
}

static void provider_set_idle(sb_broker_t *self, provider_t *provider)
{
    provider->request = NULL;
    provider->idle_handle = zlistx_add_end(provider->service->idle, provider);
    service_dispatch(self, provider->service);
}

/* ---------------------------------------------------------------- providers */

/* A provider that leaves on purpose has replied to everything it started,
 * so a request it still holds never reached it: it goes back to the front
 * of the queue. Any other loss means the request may have run: only a
 * retry-safe one is run again, a bounded number of times. */
static bool may_run_again(const request_t *request, bool graceful)
{
    if (request->answered)
        return false;
    return graceful || (request->envelope->retry && request->retries < SB_MAX_RETRIES);
}

static void provider_remove(sb_broker_t *self, provider_t *provider, const char *why,
                            bool graceful)
{
    sb_log_info("provider removed", "provider=%s service=%s reason=%s",
                provider->key, provider->service->name, why);
    request_t *request = provider->request;
    if (request && may_run_again(request, graceful)) {
        request->retries += !graceful;
        request->provider = NULL;
        request->waiting_handle = zlistx_add_start(provider->service->waiting, request);
        provider->service->requeued = true;
        sb_log_info("request queued again", "request=%" PRIu64 " command=%s retries=%d",
                    request->id, request->envelope->command, request->retries);
    }
    else if (request) {
        if (!request->answered)
            answer(self, request, false, "worker-died", "the worker running it went away");
        request_forget(self, request);
    }
    if (provider->idle_handle)
        zlistx_delete(provider->service->idle, provider->idle_handle);
    provider->service->provider_count--;
    zhashx_delete(self->providers, provider->key);
}

static void provider_register(sb_broker_t *self, zframe_t **routing_id, const char *key,
                              const char *service_name)
{
    provider_t *provider = calloc(1, sizeof *provider);
    snprintf(provider->key, sizeof provider->key, "%s", key);
    provider->routing_id = *routing_id;
    *routing_id = NULL;
    provider->service = service_require(self, service_name);
    provider->service->offered = true;
    provider->service->provider_count++;
    provider->expires_ms = zclock_mono() + self->settings.heartbeat_interval_ms
                                               * self->settings.heartbeat_liveness;
    zhashx_insert(self->providers, key, provider);
    sb_log_info("provider ready", "provider=%s service=%s providers=%zu",
                key, service_name, provider->service->provider_count);
    provider_set_idle(self, provider);
}

static void provider_reply(sb_broker_t *self, provider_t *provider, sb_envelope_t *reply)
{
    request_t *request = provider->request;
    if (!request || request->id != reply->id) {
        self->counters.unmatched_replies++;
        sb_log_warn("reply matches no request of its provider, dropped",
                    "provider=%s id=%" PRIu64, provider->key, reply->id);
        return;
    }
    if (!request->answered)
        answer(self, request, reply->ok, reply->code, reply->text);
    request_forget(self, request);
    provider_set_idle(self, provider);
}

/* A provider the broker does not know (it restarted, or the provider was
 * removed) is told to disconnect, so it reconnects and registers afresh. */
static void tell_unknown_to_reconnect(sb_broker_t *self, zframe_t *routing_id)
{
    sb_envelope_t disconnect = { .type = SB_ENVELOPE_DISCONNECT };
    sb_envelope_send(self->backend, routing_id, &disconnect);
}

static void handle_backend(sb_broker_t *self, zframe_t **routing_id, sb_envelope_t *env)
{
    char key[64];
    sb_routing_id_text(*routing_id, key, sizeof key);
    provider_t *provider = zhashx_lookup(self->providers, key);
    if (provider)
        provider->expires_ms = zclock_mono() + self->settings.heartbeat_interval_ms
                                                   * self->settings.heartbeat_liveness;
    if (!provider) {
        if (env->type == SB_ENVELOPE_READY)
            provider_register(self, routing_id, key, env->service);
        else if (env->type != SB_ENVELOPE_DISCONNECT)
            tell_unknown_to_reconnect(self, *routing_id);
        return;
    }
    switch (env->type) {
    case SB_ENVELOPE_REPLY:
        provider_reply(self, provider, env);
        break;
    case SB_ENVELOPE_DISCONNECT:
        provider_remove(self, provider, "left", true);
        break;
    case SB_ENVELOPE_HEARTBEAT:
        break;
    default:
        self->counters.malformed++;
        sb_log_warn("unexpected envelope from provider, dropped", "provider=%s type=%s",
                    key, sb_envelope_type_name(env->type));
    }
}

/* ---------------------------------------------------------------- requests */

/* `stats broker` on a gateway: the broker's own counters and queues. */
static void answer_stats(sb_broker_t *self, zframe_t *gateway, uint64_t id,
                         const sb_envelope_t *request)
{
    (void) request;
    char text[2560];
    const broker_counters_t *c = &self->counters;
    int used = snprintf(text, sizeof text,
                        "requests=%" PRIu64 " replies=%" PRIu64 " timeouts=%" PRIu64
                        " busy=%" PRIu64 " no_service=%" PRIu64 " malformed=%" PRIu64
                        " unmatched_replies=%" PRIu64 " in_flight=%zu providers=%zu",
                        c->requests, c->replies, c->timeouts, c->busy, c->no_service,
                        c->malformed, c->unmatched_replies, zhashx_size(self->requests),
                        zhashx_size(self->providers));
    for (service_t *service = zhashx_first(self->services); service && used > 0
         && (size_t) used < sizeof text - 400; service = zhashx_next(self->services))
        used += snprintf(text + used, sizeof text - (size_t) used,
                         " queue_%.32s=%zu idle_%.32s=%zu", service->name,
                         zlistx_size(service->waiting), service->name, zlistx_size(service->idle));
    if (used < 0 || (size_t) used >= sizeof text - 400)
        used = (int) (sizeof text - 400);   /* many services: their list is cut, the totals stay */
    sb_retained_counters_t r = sb_retained_counters(self->retained);
    used += snprintf(text + used, sizeof text - (size_t) used,
                     " gateways=%zu clients=%zu published=%" PRIu64 " events_sent=%" PRIu64
                     " messages=%" PRIu64 " retained=%zu retained_bytes=%zu retained_refused=%"
                     PRIu64 " retained_pending=%zu retained_writes=%" PRIu64 " retained_batches=%"
                     PRIu64 " retained_write_errors=%" PRIu64 " retained_expired=%" PRIu64,
                     sb_directory_gateway_count(self->directory),
                     sb_directory_client_count(self->directory), c->published, c->events_sent,
                     c->messages, r.count, r.bytes, r.refused, r.pending, r.writes, r.batches,
                     r.write_errors, r.expired);
    request_t local = { .gateway = gateway, .gateway_request_id = id };
    answer(self, &local, true, NULL, text);
}

static void answer_local(sb_broker_t *self, zframe_t *gateway, uint64_t id, bool ok,
                         const char *code, const char *text)
{
    request_t local = { .gateway = gateway, .gateway_request_id = id };
    answer(self, &local, ok, code, text);
}

/* `clients`: every client of every gateway. */
static void answer_clients(sb_broker_t *self, zframe_t *gateway, uint64_t id,
                           const sb_envelope_t *request)
{
    (void) request;
    char *list = sb_directory_client_list(self->directory);
    answer_local(self, gateway, id, true, NULL, list);
    free(list);
}

/* `client ID`: where a client is connected, and since when. */
static void answer_client(sb_broker_t *self, zframe_t *gateway, uint64_t id,
                          const sb_envelope_t *request)
{
    sb_client_info_t info;
    if (request->argc != 1) {
        answer_local(self, gateway, id, false, "bad-args", "usage: client ID");
        return;
    }
    if (!sb_directory_client(self->directory, request->argv[0], &info)) {
        answer_local(self, gateway, id, false, "no-such-client", "no client has that id");
        return;
    }
    char gateway_key[64], since[32], text[512];
    sb_routing_id_text(info.gateway, gateway_key, sizeof gateway_key);
    time_t seconds = (time_t) (info.since / 1000);
    struct tm utc;
    gmtime_r(&seconds, &utc);
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &utc);
    snprintf(text, sizeof text, "id=%s gateway=%s address=%s since=%s", info.id, gateway_key,
             info.address, since);
    answer_local(self, gateway, id, true, NULL, text);
}

/* `tell ID TEXT`: a direct message, wherever the client is connected. */
static void answer_tell(sb_broker_t *self, zframe_t *gateway, uint64_t id,
                        const sb_envelope_t *request)
{
    sb_client_info_t info;
    if (request->argc < 2) {
        answer_local(self, gateway, id, false, "bad-args", "usage: tell ID TEXT");
        return;
    }
    if (!sb_directory_client(self->directory, request->argv[0], &info)) {
        answer_local(self, gateway, id, false, "no-such-client", "no client has that id");
        return;
    }
    char text[8192];
    sb_cmdline_join(request->argc - 1, request->argv + 1, text, sizeof text);
    sb_envelope_t message = {
        .type = SB_ENVELOPE_MESSAGE, .client = (char *) info.id,
        .from = request->client ? request->client : "unknown", .text = text,
    };
    if (sb_envelope_send(self->frontend, info.gateway, &message) < 0) {
        answer_local(self, gateway, id, false, "no-such-client", "its gateway cannot be reached");
        return;
    }
    self->counters.messages++;
    answer_local(self, gateway, id, true, NULL, NULL);
}

typedef struct {
    sb_broker_t *self;
    zframe_t *gateway;
    const char *client;
} retained_delivery_t;

/* One retained value to one client: `cli` tells its gateway whom it is
 * for, `retain` that it is not a live event; with its publisher's MQTT 5
 * properties and what is left of its Message Expiry. */
static void send_retained(void *arg, const char *topic, const sb_retained_value_t *value)
{
    retained_delivery_t *delivery = arg;
    sb_envelope_t event = {
        .type = SB_ENVELOPE_EVENT, .topic = (char *) topic, .data = (char *) value->payload,
        .client = (char *) delivery->client, .retain = true, .published_retain = true,
        .qos = (uint8_t) value->qos, .mqtt = (char *) value->mqtt, .expiry_s = value->expiry_s,
    };
    if (sb_envelope_send(delivery->self->frontend, delivery->gateway, &event) == 0)
        delivery->self->counters.events_sent++;
}

/* `retained FILTER` for client `cli` (a gateway asks it on each `sub`):
 * the matching values as EVENTs to that client, then OK and their count.
 * One socket carries both, so they reach the gateway before the reply. */
static void answer_retained(sb_broker_t *self, zframe_t *gateway, uint64_t id,
                            const sb_envelope_t *request)
{
    if (request->argc != 1 || !request->client || !sb_topic_filter_is_valid(request->argv[0])) {
        answer_local(self, gateway, id, false, "bad-args", "usage: retained FILTER (with cli)");
        return;
    }
    retained_delivery_t delivery = { self, gateway, request->client };
    char text[32];
    snprintf(text, sizeof text, "%zu",
             sb_retained_each(self->retained, request->argv[0], zclock_time(), send_retained,
                              &delivery));
    answer_local(self, gateway, id, true, NULL, text);
}

typedef struct {
    char *const *allowed;       /* the asker's subscribe filters; NULL: any topic */
    size_t allowed_count;
    char *text;
    size_t listed;
    bool cut;
} topic_listing_t;

static bool allowed(const topic_listing_t *listing, const char *topic)
{
    if (!listing->allowed)
        return true;
    for (size_t i = 0; i < listing->allowed_count; i++)
        if (sb_topic_matches(listing->allowed[i], topic))
            return true;
    return false;
}

static void list_topic(void *arg, const char *topic, const sb_retained_value_t *value)
{
    topic_listing_t *listing = arg;
    if (listing->cut || !allowed(listing, topic))
        return;
    size_t before = strlen(listing->text);
    if (listing->listed == TOPICS_MAX_VALUES
        || !sb_cmdline_append_word(listing->text, TOPICS_MAX_TEXT, topic)
        || !sb_cmdline_append_word(listing->text, TOPICS_MAX_TEXT, value->payload)) {
        listing->text[before] = '\0';
        listing->cut = true;
        return;
    }
    listing->listed++;
}

/* `topics FILTER [ALLOWED...]`: `N TOPIC VALUE ...` (words quoted as the
 * line protocol reads them), within the asker's subscribe filters that its
 * gateway passes as ALLOWED; `...` last when not all fitted. */
static void answer_topics(sb_broker_t *self, zframe_t *gateway, uint64_t id,
                          const sb_envelope_t *request)
{
    if (request->argc < 1 || !sb_topic_filter_is_valid(request->argv[0])) {
        answer_local(self, gateway, id, false, "bad-args", "usage: topics FILTER");
        return;
    }
    char *values = calloc(1, TOPICS_MAX_TEXT);
    topic_listing_t listing = { request->argc > 1 ? request->argv + 1 : NULL,
                                request->argc - 1, values, 0, false };
    sb_retained_each(self->retained, request->argv[0], zclock_time(), list_topic, &listing);
    char *text = malloc(TOPICS_MAX_TEXT + 32);
    snprintf(text, TOPICS_MAX_TEXT + 32, "%zu%s%s%s", listing.listed, *values ? " " : "", values,
             listing.cut ? " ..." : "");
    answer_local(self, gateway, id, true, NULL, text);
    free(text);
    free(values);
}

static const struct {
    const char *command;
    void (*run)(sb_broker_t *self, zframe_t *gateway, uint64_t id, const sb_envelope_t *request);
} s_broker_commands[] = {
    { "stats", answer_stats },
    { "clients", answer_clients },
    { "client", answer_client },
    { "tell", answer_tell },
    { "retained", answer_retained },
    { "topics", answer_topics },
};

/* A request for the broker's own service: answered here, never queued. */
static void answer_broker_command(sb_broker_t *self, zframe_t *gateway, const sb_envelope_t *env)
{
    for (size_t i = 0; i < sizeof s_broker_commands / sizeof s_broker_commands[0]; i++)
        if (strcmp(env->command, s_broker_commands[i].command) == 0) {
            s_broker_commands[i].run(self, gateway, env->id, env);
            return;
        }
    answer_local(self, gateway, env->id, false, "unknown-command", "not a broker command");
}

static void accept_request(sb_broker_t *self, zframe_t **gateway, sb_envelope_t **env_p)
{
    sb_envelope_t *env = *env_p;
    if (strcmp(env->service, SB_BROKER_SERVICE) == 0) {
        answer_broker_command(self, *gateway, env);
        return;
    }
    service_t *service = zhashx_lookup(self->services, env->service);
    if ((!service || !service->offered) && self->grace_over) {
        char text[256];
        snprintf(text, sizeof text, "no worker pool serves '%.200s'", env->service);
        self->counters.no_service++;
        refuse(self, *gateway, env->id, "no-service", text);
        return;
    }
    if (!service)
        service = service_require(self, env->service);
    if (zlistx_size(service->idle) == 0
        && zlistx_size(service->waiting) >= (size_t) self->settings.queue_max) {
        char text[128];
        snprintf(text, sizeof text, "service %.64s has %ld requests waiting", service->name,
                 self->settings.queue_max);
        self->counters.busy++;
        refuse(self, *gateway, env->id, "busy", text);
        return;
    }
    long timeout = env->timeout_ms ? (long) env->timeout_ms : self->settings.request_timeout_ms;
    if (timeout > self->settings.max_timeout_ms)
        timeout = self->settings.max_timeout_ms;
    request_t *request = calloc(1, sizeof *request);
    request->id = self->next_request_id++;
    request->gateway_request_id = env->id;
    request->gateway = *gateway;
    *gateway = NULL;
    request->envelope = env;
    *env_p = NULL;
    request->service = service;
    request->deadline_ms = zclock_mono() + timeout;
    char key[24];
    request_key(request->id, key);
    zhashx_insert(self->requests, key, request);
    sb_deadlines_add(self->deadlines, request->deadline_ms, request->id);
    self->counters.requests++;
    request->waiting_handle = zlistx_add_end(service->waiting, request);
    service_dispatch(self, service);
}

/* Answered requests leave their deadlines behind (lazy deletion); when
 * those outnumber the live ones, the heap is rebuilt from the live ones so
 * its size follows the requests in flight, not the request rate. */
static void compact_deadlines(sb_broker_t *self)
{
    if (sb_deadlines_size(self->deadlines) < 2 * zhashx_size(self->requests) + 1024)
        return;
    sb_deadlines_clear(self->deadlines);
    for (request_t *request = zhashx_first(self->requests); request;
         request = zhashx_next(self->requests))
        if (!request->answered)
            sb_deadlines_add(self->deadlines, request->deadline_ms, request->id);
}

/* ---------------------------------------------------------------- events */

typedef struct {
    sb_broker_t *self;
    const sb_envelope_t *event;
} fan_out_t;

static void send_event(void *arg, zframe_t *gateway)
{
    fan_out_t *fan_out = arg;
    if (sb_envelope_send(fan_out->self->frontend, gateway, fan_out->event) == 0)
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
    sb_envelope_t event = { .type = SB_ENVELOPE_EVENT, .topic = published->topic,
                            .data = (char *) data, .published_retain = published->retain,
                            .qos = published->qos, .from = published->from,
                            .mqtt = published->mqtt };
    fan_out_t fan_out = { self, &event };
    self->counters.published++;
    sb_directory_each_subscriber(self->directory, published->topic, send_event, &fan_out);
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
    bool is_new;
    sb_gateway_entry_t *entry = sb_directory_touch(self->directory, *gateway, &is_new);
    if (is_new && env->type != SB_ENVELOPE_JOIN && env->type != SB_ENVELOPE_SUBSCRIBE) {
        /* A gateway this broker does not know (it was forgotten, or the
         * broker restarted): asked to tell its clients and filters again. */
        sb_envelope_t resync = { .type = SB_ENVELOPE_DISCONNECT };
        sb_envelope_send(self->frontend, *gateway, &resync);
    }
    switch (env->type) {
    case SB_ENVELOPE_REQUEST:
        accept_request(self, gateway, env_p);
        compact_deadlines(self);
        break;
    case SB_ENVELOPE_HEARTBEAT: {
        /* Gateways judge the broker alive by these answers. */
        sb_envelope_t heartbeat = { .type = SB_ENVELOPE_HEARTBEAT };
        sb_envelope_send(self->frontend, *gateway, &heartbeat);
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

static void expire_request(sb_broker_t *self, request_t *request)
{
    self->counters.timeouts++;
    char text[96];
    snprintf(text, sizeof text, "no reply from service %.64s in time", request->service->name);
    answer(self, request, false, "timeout", text);
    if (request->provider) {
        /* The provider still runs it: keep the request so its late reply
         * is recognised, dropped, and frees the provider. */
        request->answered = true;
        return;
    }
    zlistx_delete(request->service->waiting, request->waiting_handle);
    request_forget(self, request);
}

static void expire_due_requests(sb_broker_t *self)
{
    sb_deadline_t due;
    int64_t now = zclock_mono();
    while (sb_deadlines_pop_expired(self->deadlines, now, &due)) {
        char key[24];
        request_key(due.request_id, key);
        request_t *request = zhashx_lookup(self->requests, key);
        if (request && !request->answered)
            expire_request(self, request);
    }
}

/* When the start-up grace ends, requests waiting for a service that no
 * provider ever offered are answered: none is coming. */
static void end_grace(sb_broker_t *self)
{
    self->grace_over = true;
    for (service_t *service = zhashx_first(self->services); service;
         service = zhashx_next(self->services)) {
        while (!service->offered && zlistx_size(service->waiting) > 0) {
            request_t *request = zlistx_first(service->waiting);
            zlistx_delete(service->waiting, request->waiting_handle);
            self->counters.no_service++;
            answer(self, request, false, "no-service", "no worker pool serves this service");
            request_forget(self, request);
        }
    }
}

/* The broker itself did not run for a while (stopped, or starved of CPU):
 * the silence it would see is its own, and what its peers sent meanwhile
 * may not be read yet. Everyone gets a fresh liveness period. */
static void forgive_own_pause(sb_broker_t *self, int64_t late_ms)
{
    sb_log_warn("broker was paused, not judging peers by it", "late_ms=%" PRId64, late_ms);
    int64_t expires = zclock_mono() + self->settings.heartbeat_interval_ms
                                          * self->settings.heartbeat_liveness;
    for (provider_t *provider = zhashx_first(self->providers); provider;
         provider = zhashx_next(self->providers))
        provider->expires_ms = expires;
    sb_directory_extend(self->directory);
}

/* Every interval: a heartbeat to each provider (a send to one that has
 * gone fails at once, which finds a killed worker within an interval),
 * and providers silent past their liveness are removed. */
static void heartbeat_providers(sb_broker_t *self)
{
    int64_t now = zclock_mono();
    if (now < self->next_heartbeat_ms)
        return;
    if (now - self->next_heartbeat_ms > self->settings.heartbeat_interval_ms)
        forgive_own_pause(self, now - self->next_heartbeat_ms);
    self->next_heartbeat_ms = now + self->settings.heartbeat_interval_ms;
    /* By key: removing one provider may remove others (a failed dispatch). */
    zlistx_t *keys = zhashx_keys(self->providers);
    sb_envelope_t heartbeat = { .type = SB_ENVELOPE_HEARTBEAT };
    for (const char *key = zlistx_first(keys); key; key = zlistx_next(keys)) {
        provider_t *provider = zhashx_lookup(self->providers, key);
        if (!provider)
            continue;
        if (now >= provider->expires_ms)
            provider_remove(self, provider, "silent", false);
        else if (sb_envelope_send(self->backend, provider->routing_id, &heartbeat) < 0
                 && errno == EHOSTUNREACH)
            provider_remove(self, provider, "unreachable", false);
    }
    zlistx_destroy(&keys);
    size_t gone = sb_directory_expire(self->directory, on_client_expired, self);
    if (gone)
        sb_log_warn("gateways silent, their clients forgotten", "gateways=%zu", gone);
}

static long poll_timeout_ms(sb_broker_t *self)
{
    int64_t now = zclock_mono();
    int64_t next = self->next_heartbeat_ms;
    sb_deadline_t due;
    if (sb_deadlines_peek(self->deadlines, &due) && due.at_ms < next)
        next = due.at_ms;
    if (!self->grace_over && self->grace_ends_ms < next)
        next = self->grace_ends_ms;
    int64_t flush = sb_retained_flush_due(self->retained);
    if (flush >= 0 && flush < next)
        next = flush;
    return next > now ? (long) (next - now) : 0;
}

/* ---------------------------------------------------------------- loop */

/* Requests queued again when their provider went are dispatched once the
 * whole batch is read: other providers of the service may be leaving in
 * the same batch, and should not be handed a request first. */
static void dispatch_requeued(sb_broker_t *self)
{
    for (service_t *service = zhashx_first(self->services); service;
         service = zhashx_next(self->services))
        if (service->requeued) {
            service->requeued = false;
            service_dispatch(self, service);
        }
}

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

static void drain(sb_broker_t *self, zsock_t *socket)
{
    bool is_frontend = socket == self->frontend;
    for (int i = 0; i < BATCH_PER_SOCKET; i++) {
        zframe_t *routing_id = NULL;
        sb_envelope_t *env = NULL;
        const char *error = NULL;
        sb_recv_status_t status = sb_envelope_recv(socket, true, &routing_id, &env, &error);
        if (status == SB_RECV_NONE)
            break;
        if (status == SB_RECV_MALFORMED)
            log_malformed(self, is_frontend ? "frontend" : "backend", routing_id, error);
        else if (is_frontend)
            handle_frontend(self, &routing_id, &env);
        else
            handle_backend(self, &routing_id, env);
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
        drain(self, self->backend);
        drain(self, self->frontend);
        if (!self->grace_over && zclock_mono() >= self->grace_ends_ms)
            end_grace(self);
        expire_due_requests(self);
        heartbeat_providers(self);
        dispatch_requeued(self);
        int64_t flush = sb_retained_flush_due(self->retained);
        if (flush >= 0 && flush <= zclock_mono())
            sb_retained_flush(self->retained);
    }
    sb_log_info("broker stopping", "requests=%" PRIu64 " replies=%" PRIu64 " timeouts=%" PRIu64
                " busy=%" PRIu64 " malformed=%" PRIu64, self->counters.requests,
                self->counters.replies, self->counters.timeouts, self->counters.busy,
                self->counters.malformed);
}
