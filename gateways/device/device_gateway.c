/* device_gateway.c — sb-gateway-device's core (see device_gateway.h): the
 * provider of `device` at the broker, the `device` commands, the devices'
 * events, the HELLO of devices that dial in, and what Home Assistant
 * discovery (ha_discovery.c) publishes, subscribes to and writes. */
#include "device_gateway.h"

#include <czmq.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "broker_link.h"
#include "cmdline.h"
#include "device_link.h"
#include "gateway_base.h"
#include "ha_discovery.h"
#include "log.h"
#include "presence.h"
#include "protocol.h"
#include "requests.h"

#define MAX_HELLOS 64           /* connections that have not said HELLO yet */
#define HELLO_LINE_MAX 512
#define HA_LIST_REQUEST 1       /* owner style of the `topics` request of ha_discovery */
#define HA_CLIENT 1             /* the one subscriber of the publisher's presence */

typedef struct sb_device_gateway sb_device_gateway_t;

/* A request waiting for its device. */
typedef struct {
    sb_device_gateway_t *gateway;
    uint64_t request_id;
} pending_reply_t;

/* A connection that has not said HELLO yet. */
typedef struct {
    sb_device_gateway_t *gateway;
    uv_tcp_t *tcp;               /* heap: handed over to the device link */
    uv_timer_t timer;
    char input[HELLO_LINE_MAX];
    size_t length;
} hello_t;

struct sb_device_gateway {
    sb_device_gateway_settings_t settings;
    uv_loop_t *loop;
    sb_broker_link_t *publisher;          /* frontend: PUBLISH */
    sb_requests_t *events;                /* what is published, held while the broker is away */
    sb_presence_t *presence;              /* what Home Assistant discovery subscribes to */
    sb_ha_discovery_t *ha;
    sb_broker_link_t *provider;           /* backend: of `device`, with a credit of --slots */
    sb_device_link_t **links;             /* sorted by name */
    size_t link_count;
    uv_tcp_t listener;
    bool listening;
    bool devices_started;
    zlistx_t *hellos;                     /* hello_t: connections that have not said HELLO */
    uv_prepare_t before_sleep;
    uv_signal_t stop_signals[2];
};

/* ---------------------------------------------------------------- events */

static void publish(sb_device_gateway_t *self, const char *topic, const char *data, bool retain)
{
    sb_envelope_t event = { .type = SB_ENVELOPE_PUBLISH, .topic = (char *) topic,
                            .data = (char *) data, .retain = retain };
    sb_request_owner_t nobody = { 0 };
    sb_requests_submit(self->events, &event, &nobody, false);
}

/* An event held too long (or not at all) for the broker, or the `topics`
 * request of Home Assistant discovery not answered. */
static void on_event_given_up(void *arg, const sb_request_owner_t *owner, const char *status,
                              const char *text)
{
    (void) arg;
    if (strcmp(status, "OK") == 0)
        return;
    if (owner->style == HA_LIST_REQUEST)
        sb_log_warn("old Home Assistant configs not checked, the broker did not answer",
                    "reason=\"%s\"", text);
    else
        sb_log_warn("event not published, the broker cannot be reached", "reason=\"%s\"", text);
}

static const sb_requests_events_t s_event_events = { on_event_given_up };

static void on_link_state(void *owner, sb_device_link_t *link, const char *state)
{
    char topic[160];
    snprintf(topic, sizeof topic, "$sys/devices/%s", sb_device_link_name(link));
    publish(owner, topic, state, false);
    sb_device_gateway_t *self = owner;
    sb_ha_discovery_link_state(self->ha, sb_device_link_name(link), state);
}

static void on_link_line(void *owner, sb_device_link_t *link, const char *line)
{
    char topic[160];
    snprintf(topic, sizeof topic, "device/%s", sb_device_link_name(link));
    publish(owner, topic, line, false);
    sb_device_gateway_t *self = owner;
    sb_ha_discovery_line(self->ha, sb_device_link_name(link), line);
}

/* Whoever called: a device's answers are its states too. */
static void on_link_answer(void *owner, sb_device_link_t *link, const char *line)
{
    sb_device_gateway_t *self = owner;
    sb_ha_discovery_line(self->ha, sb_device_link_name(link), line);
}

static const sb_device_link_events_t s_link_events = { on_link_state, on_link_line,
                                                       on_link_answer };

/* ---------------------------------------------------------------- requests */

static void reply(sb_device_gateway_t *self, uint64_t id, bool ok, const char *code,
                  const char *text)
{
    sb_envelope_t envelope = { .type = SB_ENVELOPE_REPLY, .id = id, .ok = ok,
                               .code = (char *) code, .text = (char *) text };
    if (self->provider)   /* after a stop, the broker has taken back what was held */
        sb_broker_link_send(self->provider, &envelope);
}

static void on_device_reply(void *arg, bool ok, const char *code, const char *text)
{
    pending_reply_t *pending = arg;
    reply(pending->gateway, pending->request_id, ok, code, text);
    free(pending);
}

static sb_device_link_t *find_link(const sb_device_gateway_t *self, const char *name)
{
    for (size_t i = 0; i < self->link_count; i++)
        if (strcmp(sb_device_link_name(self->links[i]), name) == 0)
            return self->links[i];
    return NULL;
}

/* `devices`: "kitchen=connected lamp=backoff:3.2s". */
static void list_devices(sb_device_gateway_t *self, uint64_t id)
{
    char text[SB_ENVELOPE_MAX_SIZE / 4];
    size_t used = 0;
    text[0] = '\0';
    for (size_t i = 0; i < self->link_count && used < sizeof text - 1; i++) {
        char state[48];
        sb_device_link_state(self->links[i], state, sizeof state);
        used += (size_t) snprintf(text + used, sizeof text - used, "%s%s=%s", used ? " " : "",
                                  sb_device_link_name(self->links[i]), state);
    }
    reply(self, id, true, NULL, text);
}

/* device NAME | device NAME call LINE | device NAME send LINE */
static void device_command(sb_device_gateway_t *self, const sb_envelope_t *env)
{
    static const char usage[] = "usage: device NAME [call LINE | send LINE]";
    if (env->argc < 1) {
        reply(self, env->id, false, "bad-args", usage);
        return;
    }
    sb_device_link_t *link = find_link(self, env->argv[0]);
    if (!link) {
        reply(self, env->id, false, "no-such-device", "no device of that name is configured");
        return;
    }
    if (env->argc == 1) {
        char text[512];
        sb_device_link_describe(link, text, sizeof text);
        reply(self, env->id, true, NULL, text);
        return;
    }
    bool call = strcmp(env->argv[1], "call") == 0;
    if ((!call && strcmp(env->argv[1], "send") != 0) || env->argc < 3) {
        reply(self, env->id, false, "bad-args", usage);
        return;
    }
    char line[SB_ENVELOPE_MAX_SIZE / 4];
    sb_cmdline_join(env->argc - 2, env->argv + 2, line, sizeof line);
    if (!sb_device_line_is_safe(line)) {
        reply(self, env->id, false, "bad-args", SB_DEVICE_LINE_RULE);
        return;
    }
    if (strlen(line) > self->settings.max_line) {
        reply(self, env->id, false, "too-long", "the line is longer than the device's max_line");
        return;
    }
    pending_reply_t *pending = malloc(sizeof *pending);
    *pending = (pending_reply_t) { self, env->id };
    if (call)
        sb_device_link_call(link, line, on_device_reply, pending);
    else
        sb_device_link_send(link, line, on_device_reply, pending);
}

/* One provider whose credit is --slots: that many device commands at once. */
static void register_provider(sb_device_gateway_t *self)
{
    sb_envelope_t ready = { .type = SB_ENVELOPE_READY, .service = SB_DEVICE_SERVICE,
                            .credit = (uint32_t) self->settings.slots };
    sb_broker_link_send(self->provider, &ready);
}

static void on_provider_envelope(void *arg, const sb_envelope_t *env)
{
    sb_device_gateway_t *self = arg;
    if (env->type == SB_ENVELOPE_DISCONNECT)
        register_provider(self);   /* the broker does not know this provider (it restarted) */
    else if (env->type != SB_ENVELOPE_REQUEST)
        sb_log_warn("unexpected envelope from broker, dropped", "type=%s",
                    sb_envelope_type_name(env->type));
    else if (strcmp(env->command, "devices") == 0)
        list_devices(self, env->id);
    else if (strcmp(env->command, "device") == 0)
        device_command(self, env);
    else
        reply(self, env->id, false, "unknown-command", "the device gateway serves device and devices");
}

static void on_provider_lost(void *arg)
{
    (void) arg;   /* the broker went away with the requests: their gateways answer the clients */
}

static void on_provider_connected(void *arg)
{
    register_provider(arg);
}

static const sb_broker_link_events_t s_provider_events = {
    on_provider_envelope, on_provider_lost, on_provider_connected, NULL,
};

/* ---------------------------------------------------------------- Home Assistant */

static void ha_publish(void *arg, const char *topic, const char *payload)
{
    publish(arg, topic, payload, true);
}

static void ha_subscribe(void *arg, const char *filter)
{
    sb_device_gateway_t *self = arg;
    sb_presence_subscribe(self->presence, HA_CLIENT, filter);
}

static void ha_list_retained(void *arg, const char *filter)
{
    sb_device_gateway_t *self = arg;
    char *argv[] = { (char *) filter, NULL };
    sb_envelope_t request = { .type = SB_ENVELOPE_REQUEST, .service = SB_BROKER_SERVICE,
                              .command = "topics", .argc = 1, .argv = argv };
    sb_request_owner_t owner = { .style = HA_LIST_REQUEST };
    sb_requests_submit(self->events, &request, &owner, true);
}

/* `arg` is the device's name (malloc'd). An answer was read as a state
 * already (on_link_answer). */
static void on_ha_command_done(void *arg, bool ok, const char *code, const char *text)
{
    char quoted[SB_LOG_QUOTE_MAX];
    if (!ok)
        sb_log_warn("Home Assistant command not written", "device=%s code=%s reason=%s",
                    (char *) arg, code, sb_log_quote(quoted, text));
    free(arg);
}

/* The `device NAME send|call LINE` of a command Home Assistant published. */
static void ha_command(void *arg, const char *device, const char *line, bool call)
{
    sb_device_gateway_t *self = arg;
    sb_device_link_t *link = find_link(self, device);
    if (!link)
        return;
    if (strlen(line) > self->settings.max_line) {
        sb_log_warn("Home Assistant command not written: longer than max_line", "device=%s",
                    device);
        return;
    }
    if (call)
        sb_device_link_call(link, line, on_ha_command_done, strdup(device));
    else
        sb_device_link_send(link, line, on_ha_command_done, strdup(device));
}

static const sb_ha_ops_t s_ha_ops = { ha_publish, ha_subscribe, ha_list_retained, ha_command };

static void on_ha_event(void *arg, uint64_t client, const sb_envelope_t *event)
{
    sb_device_gateway_t *self = arg;
    (void) client;
    sb_ha_discovery_event(self->ha, event->topic, event->data ? event->data : "");
}

static void on_ha_message(void *arg, uint64_t client, const char *from, const char *text)
{
    (void) arg, (void) client, (void) from, (void) text;   /* it joins no client: none come */
}

static const sb_presence_events_t s_presence_events = { on_ha_event, on_ha_message };

/* The publisher has no clients: what comes is Home Assistant's (events
 * on its filters, the `topics` reply), or a DISCONNECT to resync. */
static void on_publisher_envelope(void *arg, const sb_envelope_t *env)
{
    sb_device_gateway_t *self = arg;
    sb_request_owner_t owner;
    if (sb_presence_handle(self->presence, env))
        return;
    if (env->type == SB_ENVELOPE_REPLY && sb_requests_take(self->events, env->id, &owner)
        && owner.style == HA_LIST_REQUEST) {
        if (env->ok)
            sb_ha_discovery_retained(self->ha, env->text ? env->text : "");
        else
            sb_log_warn("old Home Assistant configs not checked", "code=%s", env->code);
    }
}

static void on_publisher_lost(void *arg)
{
    sb_device_gateway_t *self = arg;
    sb_requests_broker_lost(self->events);
}

static void on_publisher_back(void *arg)
{
    sb_device_gateway_t *self = arg;
    sb_requests_broker_up(self->events);
}

/* The devices start once their events can be published: their first
 * states ("connecting", "backoff") are not lost. */
static void on_publisher_connected(void *arg)
{
    sb_device_gateway_t *self = arg;
    sb_presence_resync(self->presence);
    sb_requests_broker_up(self->events);
    sb_ha_discovery_start(self->ha);
    if (self->devices_started)
        return;
    self->devices_started = true;
    for (size_t i = 0; i < self->link_count; i++)
        sb_device_link_start(self->links[i]);
}

static const sb_broker_link_events_t s_publisher_events = {
    on_publisher_envelope, on_publisher_lost, on_publisher_connected, on_publisher_back,
};

/* ---------------------------------------------------------------- dial-in */

static void free_hello(uv_handle_t *handle)
{
    hello_t *hello = handle->data;
    if (hello->gateway)
        zlistx_delete(hello->gateway->hellos, zlistx_find(hello->gateway->hellos, hello));
    free(hello);
}

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

/* Answers and closes a connection that did not say a good HELLO. */
static void refuse_hello(hello_t *hello, const char *line)
{
    if (line) {
        size_t length = strlen(line);
        char *data = malloc(length + 1);
        memcpy(data, line, length);
        data[length] = '\n';
        uv_buf_t buffer = uv_buf_init(data, (unsigned) length + 1);
        uv_try_write((uv_stream_t *) hello->tcp, &buffer, 1);
        free(data);
    }
    uv_close((uv_handle_t *) hello->tcp, free_handle);
    uv_close((uv_handle_t *) &hello->timer, free_hello);
}

static void on_hello_timeout(uv_timer_t *timer)
{
    hello_t *hello = timer->data;
    sb_log_warn("device did not say HELLO in time", NULL);
    refuse_hello(hello, "ERR timeout say HELLO NAME [TOKEN] first");
}

/* "HELLO NAME [TOKEN]": hands the connection to the device's link, or refuses it. */
static void handle_hello(hello_t *hello, size_t line_length)
{
    sb_device_gateway_t *self = hello->gateway;
    hello->input[line_length] = '\0';
    if (line_length > 0 && hello->input[line_length - 1] == '\r')
        hello->input[line_length - 1] = '\0';
    char word[16] = "", name[128] = "", token[256] = "", extra[2] = "";
    int fields = sscanf(hello->input, "%15s %127s %255s %1s", word, name, token, extra);
    const sb_device_config_t *device = fields >= 2 ? sb_config_device(self->settings.config, name)
                                                   : NULL;
    char quoted[SB_LOG_QUOTE_MAX];
    if (fields < 2 || fields > 3 || strcmp(word, "HELLO") != 0) {
        refuse_hello(hello, "ERR bad-args say HELLO NAME [TOKEN]");
        return;
    }
    if (!device || device->kind != SB_DEVICE_DIAL_IN) {
        sb_log_warn("unknown device refused", "device=%s", sb_log_quote(quoted, name));
        refuse_hello(hello, "ERR unknown-device no device of that name dials in here");
        return;
    }
    if (device->token && (fields < 3 || strcmp(device->token, token) != 0)) {
        sb_log_warn("device refused: bad token", "device=%s", name);
        refuse_hello(hello, "ERR bad-token the device's token is missing or wrong");
        return;
    }
    char greeting[160];
    snprintf(greeting, sizeof greeting, "OK hello %s\n", name);
    uv_buf_t buffer = uv_buf_init(greeting, (unsigned) strlen(greeting));
    uv_try_write((uv_stream_t *) hello->tcp, &buffer, 1);
    uv_read_stop((uv_stream_t *) hello->tcp);
    size_t rest = hello->length - line_length - 1;
    sb_device_link_attach(find_link(self, name), (uv_stream_t *) hello->tcp,
                          hello->input + line_length + 1, rest);
    uv_close((uv_handle_t *) &hello->timer, free_hello);
}

static void on_hello_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
    hello_t *hello = handle->data;
    (void) suggested;
    *buffer = uv_buf_init(hello->input + hello->length,
                          (unsigned) (sizeof hello->input - 1 - hello->length));
}

static void on_hello_read(uv_stream_t *stream, ssize_t count, const uv_buf_t *buffer)
{
    (void) buffer;
    hello_t *hello = stream->data;
    if (count < 0) {
        refuse_hello(hello, NULL);
        return;
    }
    hello->length += (size_t) count;
    char *newline = memchr(hello->input, '\n', hello->length);
    if (newline)
        handle_hello(hello, (size_t) (newline - hello->input));
    else if (hello->length >= sizeof hello->input - 1)
        refuse_hello(hello, "ERR too-long the HELLO line is too long");
}

static void on_dial_in(uv_stream_t *listener, int status)
{
    sb_device_gateway_t *self = listener->data;
    if (status < 0)
        return;
    uv_tcp_t *tcp = calloc(1, sizeof *tcp);
    uv_tcp_init(self->loop, tcp);
    if (uv_accept(listener, (uv_stream_t *) tcp) != 0 || zlistx_size(self->hellos) >= MAX_HELLOS) {
        uv_close((uv_handle_t *) tcp, free_handle);
        return;
    }
    hello_t *hello = calloc(1, sizeof *hello);
    hello->gateway = self;
    hello->tcp = tcp;
    tcp->data = hello;
    zlistx_add_end(self->hellos, hello);
    uv_timer_init(self->loop, &hello->timer);
    hello->timer.data = hello;
    uv_timer_start(&hello->timer, on_hello_timeout, (uint64_t) self->settings.hello_timeout_ms, 0);
    uv_read_start((uv_stream_t *) tcp, on_hello_alloc, on_hello_read);
}

/* ---------------------------------------------------------------- loop */

static void before_sleep(uv_prepare_t *prepare)
{
    sb_device_gateway_t *self = prepare->data;
    sb_broker_link_drain(self->publisher);
    sb_broker_link_drain(self->provider);
    /* What the requests published goes out before the loop sleeps. */
    sb_broker_link_drain(self->publisher);
}

/* Stops the devices, leaves the broker (so it stops routing to us at once) and lets the loop end. */
static void on_stop_signal(uv_signal_t *signal, int signo)
{
    sb_device_gateway_t *self = signal->data;
    char quoted[SB_LOG_QUOTE_MAX];
    sb_log_info("stopping", "signal=%s", sb_log_quote(quoted, strsignal(signo)));
    sb_ha_discovery_stop(self->ha);
    for (size_t i = 0; i < self->link_count; i++)
        sb_device_link_stop(self->links[i]);
    sb_envelope_t leave = { .type = SB_ENVELOPE_DISCONNECT };
    sb_broker_link_send(self->provider, &leave);
    sb_broker_link_destroy(&self->provider);
    sb_requests_detach(self->events);
    sb_broker_link_destroy(&self->publisher);
    if (self->listening)
        uv_close((uv_handle_t *) &self->listener, NULL);
    self->listening = false;
    hello_t *hello;
    while ((hello = zlistx_detach(self->hellos, NULL))) {
        hello->gateway = NULL;   /* already out of the list */
        refuse_hello(hello, NULL);
    }
    uv_close((uv_handle_t *) &self->before_sleep, NULL);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *) &self->stop_signals[i], NULL);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(sb_device_link_name(*(sb_device_link_t *const *) a),
                  sb_device_link_name(*(sb_device_link_t *const *) b));
}

static bool link_to_broker(sb_device_gateway_t *self)
{
    sb_broker_link_settings_t publisher = { self->settings.broker,
                                            self->settings.heartbeat_interval_ms,
                                            self->settings.heartbeat_liveness };
    self->publisher = sb_broker_link_new(self->loop, &publisher, &s_publisher_events, self);
    if (!self->publisher) {
        sb_log_error("cannot connect to broker", "broker=%s", self->settings.broker);
        return false;
    }
    sb_requests_settings_t held = { .broker_wait_ms = self->settings.broker_wait_ms,
                                    .broker_wait_max = self->settings.broker_wait_max,
                                    .request_timeout_ms = 10000, .max_timeout_ms = 10000,
                                    .broker_answer_ms = 10000 };
    self->events = sb_requests_new(self->loop, self->publisher, &held, &s_event_events, self);
    self->presence = sb_presence_new(self->publisher, "device-gateway", 4, &s_presence_events,
                                     self);
    sb_broker_link_settings_t provider = { self->settings.backend,
                                           self->settings.heartbeat_interval_ms,
                                           self->settings.heartbeat_liveness };
    self->provider = sb_broker_link_new(self->loop, &provider, &s_provider_events, self);
    if (!self->provider) {
        sb_log_error("cannot connect to broker", "backend=%s", self->settings.backend);
        return false;
    }
    return true;
}

sb_device_gateway_t *sb_device_gateway_new(const sb_device_gateway_settings_t *settings)
{
    sb_device_gateway_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->loop = uv_default_loop();
    self->hellos = zlistx_new();
    sb_ha_settings_t ha = { settings->hub_name, settings->ha_prefix };
    self->ha = sb_ha_discovery_new(settings->config, &ha, &s_ha_ops, self);
    if (!self->ha || !link_to_broker(self)) {
        sb_device_gateway_destroy(&self);
        return NULL;
    }
    if (strcmp(settings->listen, "off") != 0) {
        if (!sb_address_listen(self->loop, &self->listener, self, settings->listen, false, on_dial_in)) {
            sb_device_gateway_destroy(&self);
            return NULL;
        }
        self->listening = true;
    }
    const sb_config_t *config = settings->config;
    self->link_count = sb_config_device_count(config);
    self->links = calloc(self->link_count + 1, sizeof *self->links);
    for (size_t i = 0; i < self->link_count; i++)
        self->links[i] = sb_device_link_new(self->loop, sb_config_device_at(config, i),
                                            settings->max_line, &s_link_events, self);
    qsort(self->links, self->link_count, sizeof *self->links, by_name);
    uv_prepare_init(self->loop, &self->before_sleep);
    self->before_sleep.data = self;
    uv_prepare_start(&self->before_sleep, before_sleep);
    sb_gateway_watch_stop_signals(self->loop, self->stop_signals, on_stop_signal, self);
    sb_log_info("device gateway started", "devices=%zu slots=%zu listen=%s broker=%s backend=%s",
                self->link_count, settings->slots, settings->listen, settings->broker,
                settings->backend);
    return self;   /* the devices start when the broker link is up: on_publisher_connected */
}

void sb_device_gateway_destroy(sb_device_gateway_t **self_p)
{
    sb_device_gateway_t *self = *self_p;
    if (!self)
        return;
    sb_broker_link_destroy(&self->provider);
    sb_requests_destroy(&self->events);
    sb_presence_destroy(&self->presence);
    sb_broker_link_destroy(&self->publisher);
    uv_run(self->loop, UV_RUN_NOWAIT);   /* let closing handles finish */
    for (size_t i = 0; i < self->link_count; i++)
        sb_device_link_destroy(&self->links[i]);
    sb_ha_discovery_destroy(&self->ha);   /* after the links, which may still tell it things */
    free(self->links);
    zlistx_destroy(&self->hellos);
    free(self);
    *self_p = NULL;
}

void sb_device_gateway_run(sb_device_gateway_t *self)
{
    uv_run(self->loop, UV_RUN_DEFAULT);
}
