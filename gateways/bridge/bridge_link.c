/* bridge_link.c — one bridge's MQTT client link (see bridge_link.h).
 *
 * Each connection attempt gets a fresh libmosquitto object, destroyed when
 * the connection ends: what is still unacknowledged stays in this link's
 * own queue and is sent again by the next connection, so the messages
 * kept for the remote have one owner and one bound. libmosquitto closes
 * its socket inside its own calls when the connection ends; its
 * disconnect callback closes the uv_poll, and the object is destroyed
 * only after that call has returned. */
#include "bridge_link.h"

#include <czmq.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "bridge_rules.h"
#include "echo_memory.h"
#include "envelope.h"
#include "log.h"

#define MAX_INFLIGHT 20              /* QoS 1+ messages handed to libmosquitto at once */
#define CONNECT_TIMEOUT_MS 10000     /* from dialling to CONNACK */
#define HEALTHY_AFTER_MS 10000       /* connected this long: the backoff starts over */
#define MISC_INTERVAL_MS 500         /* keep alive checks (mosquitto_loop_misc) */
#define ECHO_CAPACITY 4096
#define ECHO_TTL_MS 30000
#define MAX_PAYLOAD (SB_ENVELOPE_MAX_SIZE / 4)

typedef enum { STATE_IDLE, STATE_CONNECTING, STATE_CONNECTED, STATE_BACKOFF, STATE_STOPPED } state_t;

typedef struct {
    char *topic;             /* remote topic */
    char *payload;
    size_t length;
    int qos;
    bool retain;
    int mid;                 /* 0: not handed to libmosquitto on this connection */
} message_t;

struct sb_bridge_link {
    uv_loop_t *loop;
    const sb_bridge_config_t *config;
    char client_id[256];
    char password[512];
    const sb_bridge_link_events_t *events;
    void *owner;
    struct mosquitto *mosq;
    uv_poll_t *poll;                 /* heap: it closes asynchronously, a new one per socket */
    int poll_events;
    bool lost;                       /* libmosquitto reported the connection gone */
    uv_timer_t retry_timer;          /* backoff wait, or connect timeout */
    uv_timer_t misc_timer;
    state_t state;
    size_t address_index;
    sb_backoff_t backoff;
    int64_t connected_at_ms;
    zlistx_t *queue;                 /* message_t, oldest first */
    size_t inflight;
    sb_echo_memory_t *echoes;        /* MQTT 3.1.1 only */
    sb_bridge_counters_t counters;
};

void sb_bridge_links_init(void)
{
    mosquitto_lib_init();
}

void sb_bridge_links_cleanup(void)
{
    mosquitto_lib_cleanup();
}

static void message_free(message_t **message_p)
{
    message_t *message = *message_p;
    if (!message)
        return;
    free(message->topic);
    free(message->payload);
    free(message);
    *message_p = NULL;
}

static void queue_item_free(void **item)
{
    message_free((message_t **) item);
}

/* ---------------------------------------------------------------- state */

static void set_state(sb_bridge_link_t *self, state_t state, const char *text)
{
    self->state = state;
    self->events->on_state(self->owner, self, text);
}

static void start_attempt(sb_bridge_link_t *self);

static void on_retry_timer(uv_timer_t *timer);

/* Waits before the next attempt: at once for the next address of a
 * round, the backoff's delay after the last one. */
static void schedule_retry(sb_bridge_link_t *self)
{
    self->address_index = (self->address_index + 1) % self->config->address_count;
    if (self->address_index != 0) {
        uv_timer_start(&self->retry_timer, on_retry_timer, 0, 0);
        return;
    }
    long delay = sb_backoff_next_delay(&self->backoff);
    char text[48];
    snprintf(text, sizeof text, "backoff:%.1fs", (double) delay / 1000.0);
    set_state(self, STATE_BACKOFF, text);
    uv_timer_start(&self->retry_timer, on_retry_timer, (uint64_t) delay, 0);
}

static void on_poll_closed(uv_handle_t *handle)
{
    free(handle);
}

/* Stops watching the socket: libmosquitto is about to close it. */
static void close_poll(sb_bridge_link_t *self)
{
    if (!self->poll)
        return;
    uv_close((uv_handle_t *) self->poll, on_poll_closed);
    self->poll = NULL;
}

/* The connection is over: its messages go back in line for the next one. */
static void end_connection(sb_bridge_link_t *self)
{
    close_poll(self);
    uv_timer_stop(&self->misc_timer);
    uv_timer_stop(&self->retry_timer);
    if (self->mosq)
        mosquitto_destroy(self->mosq);
    self->mosq = NULL;
    self->lost = false;
    self->inflight = 0;
    for (message_t *message = zlistx_first(self->queue); message;
         message = zlistx_next(self->queue))
        message->mid = 0;
}

static void connection_lost(sb_bridge_link_t *self, const char *reason)
{
    bool was_connected = self->state == STATE_CONNECTED;
    const char *address = self->config->addresses[self->address_index];
    if (was_connected) {
        sb_log_warn("bridge lost its remote", "bridge=%s address=%s reason=\"%s\"",
                    self->config->name, address, reason);
        if ((int64_t) uv_now(self->loop) - self->connected_at_ms >= HEALTHY_AFTER_MS)
            sb_backoff_reset(&self->backoff);
    } else {
        sb_log_warn("bridge cannot connect", "bridge=%s address=%s reason=\"%s\"",
                    self->config->name, address, reason);
    }
    end_connection(self);
    if (self->state != STATE_STOPPED)
        schedule_retry(self);
}

/* ---------------------------------------------------------------- output */

static void watch(sb_bridge_link_t *self);

/* Hands one message to libmosquitto; false when it cannot take it now. */
static bool publish(sb_bridge_link_t *self, message_t *message)
{
    int mid = 0;
    int rc = mosquitto_publish(self->mosq, &mid, message->topic, (int) message->length,
                               message->payload, message->qos, message->retain);
    if (rc != MOSQ_ERR_SUCCESS)
        return false;
    message->mid = mid;
    if (self->echoes && self->config->version == 4)
        sb_echo_memory_add(self->echoes, message->topic, message->payload, message->length,
                           (int64_t) uv_now(self->loop));
    return true;
}

/* Sends what is in line, up to MAX_INFLIGHT unacknowledged. */
static void send_queued(sb_bridge_link_t *self)
{
    if (self->state != STATE_CONNECTED || !self->mosq)
        return;
    for (message_t *message = zlistx_first(self->queue);
         message && self->inflight < MAX_INFLIGHT; message = zlistx_next(self->queue)) {
        if (message->mid != 0)
            continue;
        if (!publish(self, message))
            break;
        self->inflight++;
    }
}

/* ---------------------------------------------------------------- libmosquitto callbacks */

static void subscribe_rules(sb_bridge_link_t *self)
{
    for (size_t i = 0; i < self->config->rule_count; i++) {
        const sb_bridge_rule_t *rule = &self->config->rules[i];
        if (!(rule->direction & SB_BRIDGE_IN))
            continue;
        char filter[1024];
        sb_bridge_rule_filter(rule, false, filter, sizeof filter);
        int rc = self->config->version == 5
                     ? mosquitto_subscribe_v5(self->mosq, NULL, filter, rule->qos,
                                              MQTT_SUB_OPT_NO_LOCAL, NULL)
                     : mosquitto_subscribe(self->mosq, NULL, filter, rule->qos);
        if (rc != MOSQ_ERR_SUCCESS)
            sb_log_warn("bridge cannot subscribe", "bridge=%s filter=%s reason=\"%s\"",
                        self->config->name, filter, mosquitto_strerror(rc));
    }
}

static void on_connect(struct mosquitto *mosq, void *arg, int rc, int flags,
                       const mosquitto_property *properties)
{
    (void) mosq;
    (void) flags;
    (void) properties;
    sb_bridge_link_t *self = arg;
    if (rc != 0) {
        sb_log_warn("bridge refused by its remote", "bridge=%s address=%s reason=\"%s\"",
                    self->config->name, self->config->addresses[self->address_index],
                    self->config->version == 5 ? mosquitto_reason_string(rc)
                                               : mosquitto_connack_string(rc));
        self->lost = true;
        return;
    }
    uv_timer_stop(&self->retry_timer);
    self->connected_at_ms = (int64_t) uv_now(self->loop);
    self->counters.connects++;
    sb_log_info("bridge connected", "bridge=%s address=%s version=%s", self->config->name,
                self->config->addresses[self->address_index],
                self->config->version == 5 ? "5" : "3.1.1");
    set_state(self, STATE_CONNECTED, "connected");
    subscribe_rules(self);
    send_queued(self);
}

static void on_disconnect(struct mosquitto *mosq, void *arg, int rc,
                          const mosquitto_property *properties)
{
    (void) mosq;
    (void) rc;
    (void) properties;
    sb_bridge_link_t *self = arg;
    close_poll(self);   /* before libmosquitto closes the socket */
    self->lost = true;
}

static void on_publish(struct mosquitto *mosq, void *arg, int mid, int reason,
                       const mosquitto_property *properties)
{
    (void) mosq;
    (void) properties;
    sb_bridge_link_t *self = arg;
    for (message_t *message = zlistx_first(self->queue); message;
         message = zlistx_next(self->queue))
        if (message->mid == mid) {
            message = zlistx_detach_cur(self->queue);
            if (reason >= 0x80)
                self->counters.dropped++;   /* the remote refused it (v5 PUBACK reason) */
            else
                self->counters.out++;
            message_free(&message);
            self->inflight--;
            send_queued(self);
            return;
        }
    /* A QoS 0 message: it was counted when it was sent. */
}

/* Whether a remote payload can travel as a hub event (a text without NUL, within bounds). */
static bool carriable(const struct mosquitto_message *message)
{
    return message->payloadlen >= 0 && message->payloadlen <= MAX_PAYLOAD
           && (message->payloadlen == 0
               || !memchr(message->payload, '\0', (size_t) message->payloadlen));
}

static void on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *message,
                       const mosquitto_property *properties)
{
    (void) mosq;
    (void) properties;
    sb_bridge_link_t *self = arg;
    size_t length = message->payloadlen > 0 ? (size_t) message->payloadlen : 0;
    if (self->echoes && sb_echo_memory_take(self->echoes, message->topic, message->payload, length,
                                            (int64_t) uv_now(self->loop))) {
        self->counters.echoes++;
        return;
    }
    char topic[1024];
    if (!carriable(message) || !sb_bridge_rules_inbound(self->config, message->topic, topic,
                                                        sizeof topic)
        || topic[0] == '$') {
        self->counters.refused++;
        return;
    }
    char *payload = malloc(length + 1);
    if (length)
        memcpy(payload, message->payload, length);
    payload[length] = '\0';
    self->counters.in++;
    self->events->on_message(self->owner, self, topic, payload, message->qos, message->retain);
    free(payload);
}

/* ---------------------------------------------------------------- the socket */

static void after_io(sb_bridge_link_t *self, int rc)
{
    if (self->lost || (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_PENDING))
        connection_lost(self, self->lost && rc == MOSQ_ERR_SUCCESS ? "disconnected"
                                                                   : mosquitto_strerror(rc));
    else
        watch(self);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    sb_bridge_link_t *self = poll->data;
    if (poll != self->poll || !self->mosq)
        return;
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE;   /* let libmosquitto read the error */
    int rc = MOSQ_ERR_SUCCESS;
    if (events & UV_READABLE)
        rc = mosquitto_loop_read(self->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && !self->lost && (events & UV_WRITABLE))
        rc = mosquitto_loop_write(self->mosq, 1);
    after_io(self, rc);
}

/* Readable always; writable while libmosquitto has something to write. */
static void watch(sb_bridge_link_t *self)
{
    if (!self->poll || !self->mosq)
        return;
    int events = UV_READABLE | (mosquitto_want_write(self->mosq) ? UV_WRITABLE : 0);
    if (events != self->poll_events) {
        uv_poll_start(self->poll, events, on_poll);
        self->poll_events = events;
    }
}

static void on_misc_timer(uv_timer_t *timer)
{
    sb_bridge_link_t *self = timer->data;
    if (!self->mosq)
        return;
    int rc = mosquitto_loop_misc(self->mosq);
    after_io(self, rc == MOSQ_ERR_NO_CONN && !self->lost ? MOSQ_ERR_SUCCESS : rc);
}

/* ---------------------------------------------------------------- connecting */

/* Applies the section's settings to a new libmosquitto object. */
static bool configure(sb_bridge_link_t *self, struct mosquitto *mosq)
{
    const sb_bridge_config_t *config = self->config;
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         config->version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(mosq, MAX_INFLIGHT);
    mosquitto_connect_v5_callback_set(mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(mosq, on_publish);
    mosquitto_message_v5_callback_set(mosq, on_message);
    if (config->username
        && mosquitto_username_pw_set(mosq, config->username,
                                     self->password[0] ? self->password : NULL) != MOSQ_ERR_SUCCESS)
        return false;
    if (!config->tls && !config->tls_ca_file)
        return true;
    if (!config->tls_ca_file)
        mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
    int rc = mosquitto_tls_set(mosq, config->tls_ca_file, NULL, config->tls_cert, config->tls_key,
                               NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_opts_set(mosq, 1, NULL, NULL);   /* verify the peer */
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_insecure_set(mosq, false);       /* and its name */
    if (rc != MOSQ_ERR_SUCCESS)
        sb_log_error("bridge TLS settings refused", "bridge=%s reason=\"%s\"", config->name,
                     mosquitto_strerror(rc));
    return rc == MOSQ_ERR_SUCCESS;
}

/* "host:port" or "[v6]:port" into its parts. */
static void split_address(const char *address, char *host, size_t size, int *port)
{
    const char *colon = strrchr(address, ':');
    size_t length = (size_t) (colon - address);
    if (address[0] == '[' && length >= 2 && address[length - 1] == ']')
        snprintf(host, size, "%.*s", (int) length - 2, address + 1);
    else
        snprintf(host, size, "%.*s", (int) length, address);
    *port = atoi(colon + 1);
}

static void on_retry_timer(uv_timer_t *timer)
{
    sb_bridge_link_t *self = timer->data;
    if (self->state == STATE_CONNECTING && self->mosq)
        connection_lost(self, "no CONNACK in time");
    else
        start_attempt(self);
}

static void start_attempt(sb_bridge_link_t *self)
{
    end_connection(self);
    const char *address = self->config->addresses[self->address_index];
    set_state(self, STATE_CONNECTING, "connecting");
    self->mosq = mosquitto_new(self->client_id, self->config->clean, self);
    if (!self->mosq || !configure(self, self->mosq)) {
        connection_lost(self, "cannot set up the MQTT client");
        return;
    }
    char host[256];
    int port;
    split_address(address, host, sizeof host, &port);
    int rc = mosquitto_connect_bind_async(self->mosq, host, port,
                                          (int) (self->config->keepalive_ms / 1000), NULL);
    int fd = mosquitto_socket(self->mosq);
    if ((rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_PENDING) || fd < 0) {
        connection_lost(self, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return;
    }
    self->poll = malloc(sizeof *self->poll);
    uv_poll_init_socket(self->loop, self->poll, fd);
    self->poll->data = self;
    self->poll_events = 0;
    uv_poll_start(self->poll, UV_READABLE | UV_WRITABLE, on_poll);
    self->poll_events = UV_READABLE | UV_WRITABLE;
    uv_timer_start(&self->retry_timer, on_retry_timer, CONNECT_TIMEOUT_MS, 0);
    uv_timer_start(&self->misc_timer, on_misc_timer, MISC_INTERVAL_MS, MISC_INTERVAL_MS);
}

/* ---------------------------------------------------------------- the hub's side */

void sb_bridge_link_send(sb_bridge_link_t *self, const char *topic, const char *payload,
                         bool retain)
{
    char remote[1024];
    const sb_bridge_rule_t *rule = sb_bridge_rules_outbound(self->config, topic, remote,
                                                            sizeof remote);
    if (!rule)
        return;
    message_t draft = { .topic = remote, .payload = (char *) payload, .length = strlen(payload),
                        .qos = rule->qos, .retain = retain };
    if (rule->qos == 0) {
        if (self->state == STATE_CONNECTED && publish(self, &draft))
            self->counters.out++;
        else
            self->counters.dropped++;
        return;
    }
    size_t waiting = zlistx_size(self->queue) - self->inflight;
    bool goes_now = self->state == STATE_CONNECTED && self->inflight < MAX_INFLIGHT && !waiting;
    if (!goes_now && (long) waiting >= self->config->max_queued) {
        /* Full: the oldest one waiting goes (or this one, when none may wait). */
        message_t *oldest = zlistx_first(self->queue);
        while (oldest && oldest->mid != 0)
            oldest = zlistx_next(self->queue);
        self->counters.dropped++;
        if (!oldest)
            return;
        oldest = zlistx_detach_cur(self->queue);
        message_free(&oldest);
    }
    message_t *message = malloc(sizeof *message);
    *message = draft;
    message->topic = strdup(remote);
    message->payload = strdup(payload);
    zlistx_add_end(self->queue, message);
    send_queued(self);
}

void sb_bridge_link_flush(sb_bridge_link_t *self)
{
    watch(self);
}

sb_bridge_counters_t sb_bridge_link_counters(const sb_bridge_link_t *self)
{
    sb_bridge_counters_t counters = self->counters;
    counters.queued = zlistx_size(self->queue);
    return counters;
}

const char *sb_bridge_link_name(const sb_bridge_link_t *self)
{
    return self->config->name;
}

const sb_bridge_config_t *sb_bridge_link_config(const sb_bridge_link_t *self)
{
    return self->config;
}

/* ---------------------------------------------------------------- life */

sb_bridge_link_t *sb_bridge_link_new(uv_loop_t *loop, const sb_bridge_config_t *config,
                                     const char *password, const sb_bridge_link_events_t *events,
                                     void *owner)
{
    sb_bridge_link_t *self = calloc(1, sizeof *self);
    self->loop = loop;
    self->config = config;
    self->events = events;
    self->owner = owner;
    snprintf(self->password, sizeof self->password, "%s", password);
    if (config->client_id)
        snprintf(self->client_id, sizeof self->client_id, "%s", config->client_id);
    else {
        char host[128] = "hub";
        gethostname(host, sizeof host - 1);
        snprintf(self->client_id, sizeof self->client_id, "switchboard-%s-%s", host, config->name);
    }
    self->queue = zlistx_new();
    zlistx_set_destructor(self->queue, queue_item_free);
    if (config->version == 4)
        self->echoes = sb_echo_memory_new(ECHO_CAPACITY, ECHO_TTL_MS);
    uint64_t seed = (uint64_t) zclock_usecs() ^ ((uint64_t) getpid() << 20) ^ (uintptr_t) self;
    sb_backoff_init_from(&self->backoff, &config->backoff, seed);
    uv_timer_init(loop, &self->retry_timer);
    self->retry_timer.data = self;
    uv_timer_init(loop, &self->misc_timer);
    self->misc_timer.data = self;
    return self;
}

void sb_bridge_link_start(sb_bridge_link_t *self)
{
    if (self->state == STATE_IDLE)
        start_attempt(self);
}

void sb_bridge_link_stop(sb_bridge_link_t *self)
{
    if (self->state == STATE_STOPPED)
        return;
    if (self->mosq && self->state == STATE_CONNECTED) {
        mosquitto_disconnect(self->mosq);
        mosquitto_loop_write(self->mosq, 1);   /* best effort: the socket takes it at once */
    }
    set_state(self, STATE_STOPPED, "stopped");
    end_connection(self);
    uv_close((uv_handle_t *) &self->retry_timer, NULL);
    uv_close((uv_handle_t *) &self->misc_timer, NULL);
}

void sb_bridge_link_destroy(sb_bridge_link_t **self_p)
{
    sb_bridge_link_t *self = *self_p;
    if (!self)
        return;
    if (self->mosq)
        mosquitto_destroy(self->mosq);
    zlistx_destroy(&self->queue);
    sb_echo_memory_destroy(&self->echoes);
    memset(self->password, 0, sizeof self->password);
    free(self);
    *self_p = NULL;
}
