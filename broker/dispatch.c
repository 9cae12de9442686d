/* dispatch.c — the broker's routing core for requests (see dispatch.h).
 *
 * A request gets a broker-wide id of its own, so replies are matched to
 * exactly one outstanding request whatever the gateways and providers
 * send; a reply that matches nothing (late, duplicate, forged) is dropped
 * and counted. Requests are found by that id (a number, not text) and
 * providers by their routing id's bytes: no formatting on the hot path. */
#include "dispatch.h"

#include <errno.h>
#include <inttypes.h>

#include "deadlines.h"
#include "latency.h"
#include "envelope_io.h"
#include "id_map.h"
#include "log.h"
#include "protocol.h"

/* The window of a service's latency in `stats broker`. */
#define LATENCY_WINDOW_US (10 * 1000 * 1000)

typedef struct service service_t;
typedef struct provider provider_t;

typedef struct {
    uint64_t id;                /* broker-wide; also the request's key in `requests` */
    uint64_t gateway_request_id;
    zframe_t *gateway;          /* routing id of the gateway that asked */
    sb_envelope_t *envelope;    /* the request as the gateway sent it */
    service_t *service;
    provider_t *provider;       /* holding it, or NULL while it waits */
    void *handle;               /* in its provider's `held` or its service's queue */
    int64_t deadline_ms;
    int64_t started_us;         /* when the broker got it (monotonic) */
    bool answered;              /* timed out while a provider holds it */
    int retries;                /* times given to another provider after one was lost */
} request_t;

struct provider {
    char key[64];               /* routing id as hex, for logs */
    zframe_t *routing_id;       /* also its key in `providers` */
    service_t *service;
    void *service_handle;       /* in service->providers */
    zlistx_t *held;             /* request_t*, in the order handed to it */
    size_t credit;              /* most it may hold */
    size_t jobs;                /* held requests that run as jobs */
    uint64_t last_used;         /* service->dispatched when it was last given one */
    int64_t expires_ms;         /* dead if nothing is heard from it by then */
};

struct service {
    char *name;
    zlistx_t *providers;        /* provider_t* */
    zlistx_t *waiting;          /* request_t* that are not jobs, oldest first */
    zlistx_t *waiting_jobs;     /* request_t* that are jobs, oldest first */
    uint64_t dispatched;        /* requests handed out so far */
    /* Latency from arrival to answer, in windows of LATENCY_WINDOW_US, so
     * `stats broker` tells how the service does now, not since start. */
    int64_t window_started_us;
    sb_latency_t latency_now;   /* the window under way */
    sb_latency_t latency_last;  /* the last whole one (empty after a quiet one) */
    bool offered;               /* some provider has registered for it */
    bool requeued;              /* a request went back to its queue: dispatch after the pass */
};

struct sb_dispatch {
    sb_broker_settings_t settings;
    sb_outbox_t *frontend;
    sb_outbox_t *backend;
    zhashx_t *services;         /* name -> service_t */
    zhashx_t *providers;        /* routing id -> provider_t */
    zhashx_t *requests;         /* id -> request_t */
    sb_deadlines_t *deadlines;
    uint64_t next_request_id;
    int64_t grace_ends_ms;
    bool grace_over;
    sb_dispatch_counters_t counters;
};

/* ---------------------------------------------------------------- lifecycle */

static void service_free(void **item)
{
    service_t *service = *item;
    if (!service)
        return;
    zlistx_destroy(&service->providers);
    zlistx_destroy(&service->waiting);
    zlistx_destroy(&service->waiting_jobs);
    free(service->name);
    free(service);
    *item = NULL;
}

static void provider_free(void **item)
{
    provider_t *provider = *item;
    if (!provider)
        return;
    zlistx_destroy(&provider->held);
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

sb_dispatch_t *sb_dispatch_new(const sb_broker_settings_t *settings, sb_outbox_t *frontend,
                               sb_outbox_t *backend)
{
    sb_dispatch_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->frontend = frontend;
    self->backend = backend;
    self->services = zhashx_new();
    zhashx_set_destructor(self->services, service_free);
    self->providers = sb_routing_id_map_new();     /* key: the provider's routing_id */
    zhashx_set_destructor(self->providers, provider_free);
    self->requests = sb_id_map_new();
    zhashx_set_destructor(self->requests, request_free);
    self->deadlines = sb_deadlines_new();
    /* Ids continue from the clock, so a restarted broker never reuses the
     * ids of the one before: a stale reply cannot match a new request. */
    self->next_request_id = (uint64_t) zclock_time() * 1000;
    self->grace_ends_ms = zclock_mono() + settings->startup_grace_ms;
    return self;
}

void sb_dispatch_destroy(sb_dispatch_t **self_p)
{
    sb_dispatch_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->requests);
    zhashx_destroy(&self->providers);
    zhashx_destroy(&self->services);
    sb_deadlines_destroy(&self->deadlines);
    free(self);
    *self_p = NULL;
}

static service_t *service_require(sb_dispatch_t *self, const char *name)
{
    service_t *service = zhashx_lookup(self->services, name);
    if (service)
        return service;
    service = calloc(1, sizeof *service);
    service->name = strdup(name);
    service->providers = zlistx_new();
    service->waiting = zlistx_new();
    service->waiting_jobs = zlistx_new();
    zhashx_insert(self->services, name, service);
    return service;
}

static size_t service_waiting(const service_t *service)
{
    return zlistx_size(service->waiting) + zlistx_size(service->waiting_jobs);
}

static zlistx_t *queue_of(const request_t *request)
{
    return request->envelope->job ? request->service->waiting_jobs : request->service->waiting;
}

/* ---------------------------------------------------------------- answering */

int sb_dispatch_answer_send(sb_outbox_t *frontend, zframe_t *gateway, uint64_t id, bool ok,
                            const char *code, const char *text)
{
    sb_envelope_t reply = {
        .type = SB_ENVELOPE_REPLY, .id = id, .ok = ok, .code = (char *) code,
        .text = (char *) text,
    };
    return sb_outbox_add(frontend, gateway, &reply);
}

/* Sends the one reply a request gets. The request itself is freed by the caller. */
static void answer(sb_dispatch_t *self, zframe_t *gateway, uint64_t gateway_request_id,
                   bool ok, const char *code, const char *text)
{
    if (sb_dispatch_answer_send(self->frontend, gateway, gateway_request_id, ok, code, text) < 0) {
        self->counters.undeliverable++;
        sb_log_warn("reply dropped, it cannot be encoded", "request=%" PRIu64 " error=\"%s\"",
                    gateway_request_id, zmq_strerror(errno));
    }
}

/* The window under way moves on when it is over: the last one becomes it,
 * or nothing when a whole window passed without a request. */
static void latency_window_move(service_t *service, int64_t now_us)
{
    int64_t age = now_us - service->window_started_us;
    if (age < LATENCY_WINDOW_US)
        return;
    if (age < 2 * LATENCY_WINDOW_US)
        service->latency_last = service->latency_now;
    else
        memset(&service->latency_last, 0, sizeof service->latency_last);
    memset(&service->latency_now, 0, sizeof service->latency_now);
    service->window_started_us = now_us;
}

static void answer_request(sb_dispatch_t *self, request_t *request, bool ok, const char *code,
                           const char *text)
{
    answer(self, request->gateway, request->gateway_request_id, ok, code, text);
    self->counters.replies++;
    if (request->service) {
        int64_t now = zclock_usecs();
        latency_window_move(request->service, now);
        sb_latency_record(&request->service->latency_now, (uint64_t) (now - request->started_us));
    }
}

static void request_forget(sb_dispatch_t *self, request_t *request)
{
    zhashx_delete(self->requests, sb_id_map_key(request->id));
}

/* ---------------------------------------------------------------- dispatch */

/* The provider that should take a request now: of those with credit left
 * (and, for a job, with no job in hand), the one holding the fewest
 * requests that are not jobs — its job runs beside them — and among
 * those the least recently used. NULL: every provider is full. */
static provider_t *provider_choose(const service_t *service, bool job)
{
    provider_t *best = NULL;
    size_t best_load = 0;
    for (provider_t *provider = zlistx_first(service->providers); provider;
         provider = zlistx_next(service->providers)) {
        size_t held = zlistx_size(provider->held);
        if (held >= provider->credit || (job && provider->jobs > 0))
            continue;
        size_t load = held - provider->jobs;
        if (!best || load < best_load
            || (load == best_load && provider->last_used < best->last_used)) {
            best = provider;
            best_load = load;
        }
    }
    return best;
}

/* Hands `request` to `provider`. A provider found gone when the backend
 * is flushed is removed then, with what it holds (provider_lost). A
 * request that cannot be encoded is answered at once. */
static void hand_over(sb_dispatch_t *self, request_t *request, provider_t *provider)
{
    sb_envelope_t forwarded = *request->envelope;
    forwarded.id = request->id;
    int64_t left = request->deadline_ms - zclock_mono();
    forwarded.timeout_ms = (uint32_t) (left > 0 ? left : 1);
    if (sb_outbox_add(self->backend, provider->routing_id, &forwarded) < 0) {
        zlistx_delete(queue_of(request), request->handle);
        answer_request(self, request, false, "too-long", "the request cannot be forwarded");
        request_forget(self, request);
        return;
    }
    zlistx_delete(queue_of(request), request->handle);
    request->handle = zlistx_add_end(provider->held, request);
    request->provider = provider;
    provider->jobs += request->envelope->job;
    provider->last_used = ++provider->service->dispatched;
}

/* Of the oldest waiting job and the oldest other request, the older one
 * that some provider can take now; NULL when neither can go. */
static request_t *next_to_hand_over(const service_t *service, provider_t **provider_out)
{
    request_t *fast = zlistx_first(service->waiting);
    request_t *job = zlistx_first(service->waiting_jobs);
    provider_t *for_fast = fast ? provider_choose(service, false) : NULL;
    provider_t *for_job = job ? provider_choose(service, true) : NULL;
    if (for_fast && (!for_job || fast->id < job->id)) {
        *provider_out = for_fast;
        return fast;
    }
    *provider_out = for_job;
    return for_job ? job : NULL;
}

/* Hands out waiting requests while providers of `service` have credit. */
static void service_dispatch(sb_dispatch_t *self, service_t *service)
{
    provider_t *provider;
    request_t *request;
    while ((request = next_to_hand_over(service, &provider)))
        hand_over(self, request, provider);
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

static void request_take_back(sb_dispatch_t *self, request_t *request, bool graceful)
{
    if (may_run_again(request, graceful)) {
        request->retries += !graceful;
        request->provider = NULL;
        request->handle = zlistx_add_start(queue_of(request), request);
        request->service->requeued = true;
        sb_log_info("request queued again", "request=%" PRIu64 " command=%s retries=%d",
                    request->id, request->envelope->command, request->retries);
        return;
    }
    if (!request->answered)
        answer_request(self, request, false, "worker-died", "the worker running it went away");
    request_forget(self, request);
}

static void provider_remove(sb_dispatch_t *self, provider_t *provider, const char *why,
                            bool graceful)
{
    sb_log_info("provider removed", "provider=%s service=%s reason=%s held=%zu",
                provider->key, provider->service->name, why, zlistx_size(provider->held));
    /* Newest first, each to the front: the queue keeps their order. */
    for (request_t *request = zlistx_last(provider->held); request;
         request = zlistx_last(provider->held)) {
        zlistx_delete(provider->held, request->handle);
        request_take_back(self, request, graceful);
    }
    zlistx_delete(provider->service->providers, provider->service_handle);
    zhashx_delete(self->providers, provider->routing_id);
}

static void provider_register(sb_dispatch_t *self, zframe_t **routing_id,
                              const sb_envelope_t *ready)
{
    provider_t *provider = calloc(1, sizeof *provider);
    sb_routing_id_text(*routing_id, provider->key, sizeof provider->key);
    provider->routing_id = *routing_id;
    *routing_id = NULL;
    provider->held = zlistx_new();
    provider->credit = ready->credit ? ready->credit : 1;
    provider->service = service_require(self, ready->service);
    provider->service->offered = true;
    provider->service_handle = zlistx_add_end(provider->service->providers, provider);
    provider->expires_ms = zclock_mono() + self->settings.heartbeat_interval_ms
                                               * self->settings.heartbeat_liveness;
    zhashx_insert(self->providers, provider->routing_id, provider);
    sb_log_info("provider ready", "provider=%s service=%s credit=%zu providers=%zu",
                provider->key, ready->service, provider->credit,
                zlistx_size(provider->service->providers));
    service_dispatch(self, provider->service);
}

static request_t *held_request(const provider_t *provider, uint64_t id)
{
    for (request_t *request = zlistx_first(provider->held); request;
         request = zlistx_next(provider->held))
        if (request->id == id)
            return request;
    return NULL;
}

static void provider_reply(sb_dispatch_t *self, provider_t *provider, const sb_envelope_t *reply)
{
    request_t *request = held_request(provider, reply->id);
    if (!request) {
        self->counters.unmatched_replies++;
        sb_log_warn("reply matches no request of its provider, dropped",
                    "provider=%s id=%" PRIu64, provider->key, reply->id);
        return;
    }
    if (!request->answered)
        answer_request(self, request, reply->ok, reply->code, reply->text);
    zlistx_delete(provider->held, request->handle);
    provider->jobs -= request->envelope->job;
    request_forget(self, request);
    service_dispatch(self, provider->service);
}

/* A provider the broker does not know (it restarted, or the provider was
 * removed) is told to disconnect, so it reconnects and registers afresh. */
static void tell_unknown_to_reconnect(sb_dispatch_t *self, zframe_t *routing_id)
{
    sb_envelope_t disconnect = { .type = SB_ENVELOPE_DISCONNECT };
    sb_outbox_add(self->backend, routing_id, &disconnect);
}

void sb_dispatch_provider_lost(sb_dispatch_t *self, zframe_t *routing_id)
{
    provider_t *provider = routing_id ? zhashx_lookup(self->providers, routing_id) : NULL;
    if (provider)
        provider_remove(self, provider, "unreachable", false);
}

bool sb_dispatch_from_provider(sb_dispatch_t *self, zframe_t **routing_id,
                               const sb_envelope_t *env)
{
    provider_t *provider = zhashx_lookup(self->providers, *routing_id);
    if (!provider) {
        if (env->type == SB_ENVELOPE_READY)
            provider_register(self, routing_id, env);
        else if (env->type != SB_ENVELOPE_DISCONNECT)
            tell_unknown_to_reconnect(self, *routing_id);
        return true;
    }
    provider->expires_ms = zclock_mono() + self->settings.heartbeat_interval_ms
                                               * self->settings.heartbeat_liveness;
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
        sb_log_warn("unexpected envelope from provider, dropped", "provider=%s type=%s",
                    provider->key, sb_envelope_type_name(env->type));
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- requests */

static void refuse(sb_dispatch_t *self, zframe_t *gateway, uint64_t id, const char *code,
                   const char *text)
{
    answer(self, gateway, id, false, code, text);
}

/* Answered requests leave their deadlines behind (lazy deletion); when
 * those outnumber the live ones, the heap is rebuilt from the live ones so
 * its size follows the requests in flight, not the request rate. */
static void compact_deadlines(sb_dispatch_t *self)
{
    if (sb_deadlines_size(self->deadlines) < 2 * zhashx_size(self->requests) + 1024)
        return;
    sb_deadlines_clear(self->deadlines);
    for (request_t *request = zhashx_first(self->requests); request;
         request = zhashx_next(self->requests))
        if (!request->answered)
            sb_deadlines_add(self->deadlines, request->deadline_ms, request->id);
}

/* A service with nothing to take the request and a full queue: ERR busy. */
static bool service_is_full(const sb_dispatch_t *self, const service_t *service, bool job)
{
    return service_waiting(service) >= (size_t) self->settings.queue_max
           && !provider_choose(service, job);
}

void sb_dispatch_request(sb_dispatch_t *self, zframe_t **gateway, sb_envelope_t **env_p)
{
    sb_envelope_t *env = *env_p;
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
    if (service_is_full(self, service, env->job)) {
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
    request->started_us = zclock_usecs();
    zhashx_insert(self->requests, sb_id_map_key(request->id), request);
    sb_deadlines_add(self->deadlines, request->deadline_ms, request->id);
    self->counters.requests++;
    request->handle = zlistx_add_end(queue_of(request), request);
    service_dispatch(self, service);
    compact_deadlines(self);
}

/* ---------------------------------------------------------------- time */

static void expire_request(sb_dispatch_t *self, request_t *request)
{
    self->counters.timeouts++;
    char text[96];
    snprintf(text, sizeof text, "no reply from service %.64s in time", request->service->name);
    answer_request(self, request, false, "timeout", text);
    if (request->provider) {
        /* The provider still runs it: keep the request so its late reply
         * is recognised, dropped, and frees the provider's credit. */
        request->answered = true;
        return;
    }
    zlistx_delete(queue_of(request), request->handle);
    request_forget(self, request);
}

static void expire_due_requests(sb_dispatch_t *self)
{
    sb_deadline_t due;
    int64_t now = zclock_mono();
    while (sb_deadlines_pop_expired(self->deadlines, now, &due)) {
        request_t *request = zhashx_lookup(self->requests, sb_id_map_key(due.request_id));
        if (request && !request->answered)
            expire_request(self, request);
    }
}

static void answer_unserved(sb_dispatch_t *self, zlistx_t *queue)
{
    for (request_t *request = zlistx_first(queue); request; request = zlistx_first(queue)) {
        zlistx_delete(queue, request->handle);
        self->counters.no_service++;
        answer_request(self, request, false, "no-service", "no worker pool serves this service");
        request_forget(self, request);
    }
}

/* When the start-up grace ends, requests waiting for a service that no
 * provider ever offered are answered: none is coming. */
static void end_grace(sb_dispatch_t *self)
{
    self->grace_over = true;
    for (service_t *service = zhashx_first(self->services); service;
         service = zhashx_next(self->services))
        if (!service->offered) {
            answer_unserved(self, service->waiting);
            answer_unserved(self, service->waiting_jobs);
        }
}

/* Requests queued again when their provider went are dispatched once the
 * whole pass is read: other providers of the service may be leaving in
 * the same pass, and should not be handed a request first. */
static void dispatch_requeued(sb_dispatch_t *self)
{
    for (service_t *service = zhashx_first(self->services); service;
         service = zhashx_next(self->services))
        if (service->requeued) {
            service->requeued = false;
            service_dispatch(self, service);
        }
}

void sb_dispatch_tick(sb_dispatch_t *self)
{
    if (!self->grace_over && zclock_mono() >= self->grace_ends_ms)
        end_grace(self);
    expire_due_requests(self);
    dispatch_requeued(self);
}

long sb_dispatch_timeout_ms(const sb_dispatch_t *self)
{
    int64_t now = zclock_mono();
    int64_t next = now + 3600 * 1000;
    sb_deadline_t due;
    if (sb_deadlines_peek(self->deadlines, &due) && due.at_ms < next)
        next = due.at_ms;
    if (!self->grace_over && self->grace_ends_ms < next)
        next = self->grace_ends_ms;
    return next > now ? (long) (next - now) : 0;
}

void sb_dispatch_forgive(sb_dispatch_t *self)
{
    int64_t expires = zclock_mono() + self->settings.heartbeat_interval_ms
                                          * self->settings.heartbeat_liveness;
    for (provider_t *provider = zhashx_first(self->providers); provider;
         provider = zhashx_next(self->providers))
        provider->expires_ms = expires;
}

void sb_dispatch_heartbeat(sb_dispatch_t *self)
{
    int64_t now = zclock_mono();
    sb_envelope_t heartbeat = { .type = SB_ENVELOPE_HEARTBEAT };
    /* Found first, removed after: removing changes the table. One that has
     * gone is found when the heartbeat is flushed (provider_lost). */
    zlistx_t *silent = zlistx_new();
    for (provider_t *provider = zhashx_first(self->providers); provider;
         provider = zhashx_next(self->providers))
        if (now >= provider->expires_ms)
            zlistx_add_end(silent, provider);
        else
            sb_outbox_add(self->backend, provider->routing_id, &heartbeat);
    for (provider_t *provider = zlistx_first(silent); provider; provider = zlistx_next(silent))
        provider_remove(self, provider, "silent", false);
    zlistx_destroy(&silent);
}

/* ---------------------------------------------------------------- stats */

sb_dispatch_counters_t sb_dispatch_counters(const sb_dispatch_t *self)
{
    return self->counters;
}

static size_t idle_providers(const service_t *service)
{
    size_t idle = 0;
    for (provider_t *provider = zlistx_first(service->providers); provider;
         provider = zlistx_next(service->providers))
        idle += zlistx_size(provider->held) == 0;
    return idle;
}

void sb_dispatch_describe(const sb_dispatch_t *self, char *text, size_t size, size_t reserve)
{
    const sb_dispatch_counters_t *c = &self->counters;
    size_t used = strlen(text);
    int wrote = snprintf(text + used, size - used,
                         "requests=%" PRIu64 " replies=%" PRIu64 " timeouts=%" PRIu64
                         " busy=%" PRIu64 " no_service=%" PRIu64
                         " unmatched_replies=%" PRIu64 " in_flight=%zu providers=%zu",
                         c->requests, c->replies, c->timeouts, c->busy, c->no_service,
                         c->unmatched_replies, zhashx_size(self->requests),
                         zhashx_size(self->providers));
    if (wrote < 0 || (size_t) wrote >= size - used)
        return;
    used += (size_t) wrote;
    for (service_t *service = zhashx_first(self->services); service;
         service = zhashx_next(self->services)) {
        latency_window_move(service, zclock_usecs());
        const sb_latency_t *latency = service->latency_last.count ? &service->latency_last
                                                                  : &service->latency_now;
        char entry[320];
        int length = snprintf(entry, sizeof entry,
                              " queue_%.32s=%zu idle_%.32s=%zu workers_%.32s=%zu"
                              " dispatched_%.32s=%" PRIu64 " p99_us_%.32s=%" PRIu64,
                              service->name, service_waiting(service), service->name,
                              idle_providers(service), service->name,
                              zlistx_size(service->providers), service->name,
                              service->dispatched, service->name,
                              sb_latency_percentile(latency, 99));
        if (length < 0 || used + (size_t) length + reserve >= size)
            break;   /* many services: their list is cut, the totals stay */
        memcpy(text + used, entry, (size_t) length + 1);
        used += (size_t) length;
    }
}
