/* tcp_gateway.c — sb-gateway-tcp's core (see tcp_gateway.h).
 *
 * A request sent to the broker is remembered in `pending` by its id with
 * the serial of its connection, not a pointer to it: a client that leaves
 * before its reply arrives leaves nothing dangling, and the late reply is
 * simply dropped. */
#include "tcp_gateway.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "broker_link.h"
#include "cmdline.h"
#include "connection.h"
#include "id_map.h"
#include "latency.h"
#include "presence.h"
#include "topic.h"
#include "log.h"
#include "protocol.h"
#include "sb_version.h"

/* How a reply from the broker is written to the client. */
typedef enum {
    REPLY_PLAIN,                  /* OK TEXT / ERR CODE MESSAGE */
    REPLY_BANK,                   /* the classic bank server's lines (NAME:dp, NAME:wd) */
} reply_style_t;

typedef struct {
    uint64_t serial;              /* connection that asked */
    sb_reply_slot_t *slot;
    int64_t started_us;
    reply_style_t style;
} pending_t;

/* A command for the broker: argv[0] is its name. */
typedef struct {
    size_t argc;
    char **argv;
    const char *service;          /* NULL: the one the config assigns the command */
    reply_style_t style;
} remote_request_t;

typedef struct {
    uint64_t accepted, refused, requests, replies, errors, unmatched_replies;
} gateway_counters_t;

struct sb_tcp_gateway {
    sb_tcp_gateway_settings_t settings;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_prepare_t before_sleep;
    uv_signal_t stop_signals[2];
    uv_timer_t drain_timer;
    bool stopping;
    sb_broker_link_t *link;
    sb_presence_t *presence;      /* clients and subscriptions, as the broker knows them */
    zhashx_t *connections;        /* serial -> sb_connection_t */
    zhashx_t *pending;            /* request id -> pending_t */
    zlistx_t *with_output;        /* connections to flush before sleeping */
    uint64_t next_serial;
    uint64_t next_request_id;
    gateway_counters_t counters;
    sb_latency_t latency;
};

typedef void (local_command_fn)(sb_tcp_gateway_t *self, sb_connection_t *connection,
                                sb_reply_slot_t *slot, const sb_cmdline_t *request);

/* ---------------------------------------------------------------- local commands */

static void run_ping(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request)
{
    (void) self;
    (void) request;
    sb_connection_answer(connection, slot, "OK", "pong", false);
}

static void run_quit(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request)
{
    (void) self;
    (void) request;
    sb_connection_answer(connection, slot, "OK", "bye", true);
}

static void run_help(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request);
static void run_stats(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                      const sb_cmdline_t *request);
static void run_sub(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                    const sb_cmdline_t *request);
static void run_unsub(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                      const sb_cmdline_t *request);
static void run_pub(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                    const sb_cmdline_t *request);
static void run_broker_command(sb_tcp_gateway_t *self, sb_connection_t *connection,
                               sb_reply_slot_t *slot, const sb_cmdline_t *request);

static const struct {
    const char *name;
    local_command_fn *run;
    const char *description;
} s_local_commands[] = {
    { "ping", run_ping, "ping: answers pong" },
    { "help", run_help, "help [NAME]: the command names, or what NAME does" },
    { "quit", run_quit, "quit: answers bye and closes the connection" },
    { "stats", run_stats, "stats [broker]: counters and latency of this gateway, or of the broker" },
    { "sub", run_sub, "sub FILTER: receive EVENT lines for topics matching FILTER (+ one level, # the rest)" },
    { "unsub", run_unsub, "unsub FILTER: stop receiving what sub FILTER asked for" },
    { "pub", run_pub, "pub TOPIC PAYLOAD: send an event to every subscriber, on every gateway" },
    { "clients", run_broker_command, "clients: the ids of every connected client, all gateways" },
    { "client", run_broker_command, "client ID: where a client is connected, and since when" },
    { "tell", run_broker_command, "tell ID TEXT: a direct message to one client, wherever it is" },
};

/* What the stock worker commands do, for `help NAME`. */
static const struct {
    const char *name;
    const char *description;
} s_worker_commands[] = {
    { "echo", "echo ARGS...: answers its arguments" },
    { "hello", "hello NAME: answers Hello NAME, upper-cased" },
    { "sleep", "sleep SECONDS: waits, then answers slept SECONDS" },
    { "time", "time: the current time, ISO 8601 UTC" },
    { "account", "account NAME deposit|withdraw [AMOUNT] | account NAME balance: shared balances; "
                 "also NAME:dp and NAME:wd" },
};
#define LOCAL_COMMAND_COUNT (sizeof s_local_commands / sizeof s_local_commands[0])

/* `help NAME`: a configured command's description first (it may replace a built-in). */
static const char *describe(const sb_tcp_gateway_t *self, const char *name)
{
    const sb_command_config_t *command = sb_config_command(self->settings.config, name);
    if (command && command->description)
        return command->description;
    if (command && command->exec)
        return "an external command (no description in the config)";
    for (size_t i = 0; i < LOCAL_COMMAND_COUNT; i++)
        if (strcmp(s_local_commands[i].name, name) == 0)
            return s_local_commands[i].description;
    for (size_t i = 0; i < sizeof s_worker_commands / sizeof s_worker_commands[0]; i++)
        if (strcmp(s_worker_commands[i].name, name) == 0)
            return s_worker_commands[i].description;
    return NULL;
}

static void run_help(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request)
{
    if (request->argc == 2) {
        const char *description = describe(self, request->argv[1]);
        if (description)
            sb_connection_answer(connection, slot, "OK", description, false);
        else
            sb_connection_answer(connection, slot, "ERR unknown-command", "no such command", false);
        return;
    }
    char names[4096];
    size_t used = 0;
    names[0] = '\0';
    for (size_t i = 0; i < sizeof s_worker_commands / sizeof s_worker_commands[0]; i++)
        used += (size_t) snprintf(names + used, sizeof names - used, "%s%s", used ? " " : "",
                                  s_worker_commands[i].name);
    for (size_t i = 0; i < LOCAL_COMMAND_COUNT; i++)
        used += (size_t) snprintf(names + used, sizeof names - used, " %s", s_local_commands[i].name);
    const sb_config_t *config = self->settings.config;
    for (size_t i = 0; i < sb_config_command_count(config) && used < sizeof names; i++) {
        const char *name = sb_config_command_at(config, i)->name;
        if (!sb_word_list_has(names, name))
            used += (size_t) snprintf(names + used, sizeof names - used, " %s", name);
    }
    sb_connection_answer(connection, slot, "OK", names, false);
}

static void send_to_broker(sb_tcp_gateway_t *self, sb_connection_t *connection,
                           sb_reply_slot_t *slot, const remote_request_t *request);

/* clients, client ID, tell ID TEXT: the broker knows every gateway's clients. */
static void run_broker_command(sb_tcp_gateway_t *self, sb_connection_t *connection,
                               sb_reply_slot_t *slot, const sb_cmdline_t *request)
{
    remote_request_t remote = { request->argc, request->argv, SB_BROKER_SERVICE, REPLY_PLAIN };
    send_to_broker(self, connection, slot, &remote);
}

/* `stats`: this gateway's counters; `stats broker`: the broker's. */
static void run_stats(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                      const sb_cmdline_t *request)
{
    if (request->argc == 2 && strcmp(request->argv[1], "broker") == 0) {
        remote_request_t remote = { request->argc, request->argv, SB_BROKER_SERVICE, REPLY_PLAIN };
        send_to_broker(self, connection, slot, &remote);
        return;
    }
    if (request->argc != 1) {
        sb_connection_answer(connection, slot, "ERR bad-args", "usage: stats [broker]", false);
        return;
    }
    char text[512];
    const gateway_counters_t *c = &self->counters;
    snprintf(text, sizeof text,
             "connections=%zu accepted=%" PRIu64 " refused=%" PRIu64 " requests=%" PRIu64
             " replies=%" PRIu64 " errors=%" PRIu64 " in_flight=%zu malformed=%" PRIu64
             " latency_p50_us=%" PRIu64 " latency_p99_us=%" PRIu64,
             zhashx_size(self->connections), c->accepted, c->refused, c->requests, c->replies,
             c->errors, zhashx_size(self->pending), sb_broker_link_malformed(self->link),
             sb_latency_percentile(&self->latency, 50), sb_latency_percentile(&self->latency, 99));
    sb_connection_answer(connection, slot, "OK", text, false);
}

/* ---------------------------------------------------------------- pub/sub */

static void run_sub(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                    const sb_cmdline_t *request)
{
    if (request->argc != 2 || !sb_topic_filter_is_valid(request->argv[1])) {
        sb_connection_answer(connection, slot, "ERR bad-args",
                             "usage: sub FILTER (levels split by /, + for one level, # for the rest)",
                             false);
        return;
    }
    sb_subscribe_result_t result = sb_presence_subscribe(self->presence,
                                                         sb_connection_serial(connection),
                                                         request->argv[1]);
    if (result == SB_TOO_MANY_FILTERS)
        sb_connection_answer(connection, slot, "ERR busy", "too many subscriptions", false);
    else
        sb_connection_answer(connection, slot, "OK", "", false);
}

static void run_unsub(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                      const sb_cmdline_t *request)
{
    if (request->argc != 2) {
        sb_connection_answer(connection, slot, "ERR bad-args", "usage: unsub FILTER", false);
        return;
    }
    if (sb_presence_unsubscribe(self->presence, sb_connection_serial(connection),
                                request->argv[1]) == SB_NOT_SUBSCRIBED)
        sb_connection_answer(connection, slot, "ERR bad-args", "not subscribed to that filter",
                             false);
    else
        sb_connection_answer(connection, slot, "OK", "", false);
}

static void run_pub(sb_tcp_gateway_t *self, sb_connection_t *connection, sb_reply_slot_t *slot,
                    const sb_cmdline_t *request)
{
    if (request->argc < 2 || !sb_topic_is_valid(request->argv[1])
        || request->argv[1][0] == '$') {
        sb_connection_answer(connection, slot, "ERR bad-args",
                             "usage: pub TOPIC PAYLOAD (no + or #; topics starting with $ are "
                             "the hub's own)", false);
        return;
    }
    char payload[SB_ENVELOPE_MAX_SIZE / 4];
    sb_cmdline_join(request->argc - 2, request->argv + 2, payload, sizeof payload);
    if (sb_presence_publish(self->presence, request->argv[1], payload) < 0)
        sb_connection_answer(connection, slot, "ERR unavailable",
                             "the broker cannot be reached right now", false);
    else
        sb_connection_answer(connection, slot, "OK", "", false);
}

static void deliver_event(void *arg, uint64_t client, const char *topic, const char *data)
{
    sb_tcp_gateway_t *self = arg;
    sb_connection_t *connection = zhashx_lookup(self->connections, sb_id_map_key(client));
    if (connection)
        sb_connection_write_async(connection, "EVENT", topic, data);
}

static void deliver_message(void *arg, uint64_t client, const char *from, const char *text)
{
    sb_tcp_gateway_t *self = arg;
    sb_connection_t *connection = zhashx_lookup(self->connections, sb_id_map_key(client));
    if (connection)
        sb_connection_write_async(connection, "MSG", from, text);
}

static const sb_presence_events_t s_presence_events = { deliver_event, deliver_message };

/* ---------------------------------------------------------------- remote commands */

static void send_to_broker(sb_tcp_gateway_t *self, sb_connection_t *connection,
                           sb_reply_slot_t *slot, const remote_request_t *request)
{
    const sb_command_config_t *command = sb_config_command(self->settings.config, request->argv[0]);
    const char *service = request->service;
    if (!service)
        service = command ? command->service : SB_DEFAULT_SERVICE;
    bool retry = command && command->retry >= 0 ? command->retry
                                                : sb_word_list_has(SB_RETRY_SAFE_COMMANDS, request->argv[0]);
    char client[64];
    snprintf(client, sizeof client, "%s-%" PRIu64, self->settings.name,
             sb_connection_serial(connection));
    sb_envelope_t envelope = {
        .type = SB_ENVELOPE_REQUEST,
        .id = self->next_request_id++,
        .service = (char *) service,
        .command = request->argv[0],
        .argc = request->argc - 1,
        .argv = request->argv + 1,
        .client = client,
        .timeout_ms = command ? command->timeout_ms : 0,
        .retry = retry,
    };
    if (sb_broker_link_send(self->link, &envelope) < 0) {
        self->counters.errors++;
        sb_connection_answer(connection, slot, "ERR unavailable",
                             "the broker cannot be reached right now", false);
        return;
    }
    pending_t *pending = malloc(sizeof *pending);
    *pending = (pending_t) { sb_connection_serial(connection), slot, zclock_usecs(), request->style };
    zhashx_insert(self->pending, sb_id_map_key(envelope.id), pending);
    self->counters.requests++;
}

/* The classic bank server's answers: "jack's money: 3" while there is
 * money, "jack has no money!!" when there is none (or not enough). */
static void answer_bank_style(sb_connection_t *connection, sb_reply_slot_t *slot,
                              const sb_envelope_t *env)
{
    char name[80], line[160];
    long long balance = 0;
    /* Replies are "NAME BALANCE" or ERR insufficient-funds "NAME has no money". */
    int fields = env->text ? sscanf(env->text, "%79s %lld", name, &balance) : 0;
    bool answered = env->ok ? fields == 2
                            : fields >= 1 && strcmp(env->code, "insufficient-funds") == 0;
    if (answered && env->ok && balance > 0)
        snprintf(line, sizeof line, "%s's money: %lld", name, balance);
    else if (answered)
        snprintf(line, sizeof line, "%s has no money!!", name);
    else {
        char status[64];
        snprintf(status, sizeof status, env->ok ? "OK" : "ERR %s", env->code);
        sb_connection_answer(connection, slot, status, env->text, false);
        return;
    }
    sb_connection_answer(connection, slot, NULL, line, false);
}

static void on_broker_envelope(void *arg, const sb_envelope_t *env)
{
    sb_tcp_gateway_t *self = arg;
    if (sb_presence_handle(self->presence, env))
        return;
    pending_t *pending = env->type == SB_ENVELOPE_REPLY
                             ? zhashx_lookup(self->pending, sb_id_map_key(env->id)) : NULL;
    if (!pending) {
        self->counters.unmatched_replies++;
        return;
    }
    zhashx_delete(self->pending, sb_id_map_key(env->id));
    sb_connection_t *connection = zhashx_lookup(self->connections, sb_id_map_key(pending->serial));
    if (connection && pending->style == REPLY_BANK)
        answer_bank_style(connection, pending->slot, env);
    else if (connection) {
        char status[64];
        snprintf(status, sizeof status, env->ok ? "OK" : "ERR %s", env->code);
        sb_connection_answer(connection, pending->slot, status, env->text, false);
    }
    self->counters.replies++;
    self->counters.errors += !env->ok;
    sb_latency_record(&self->latency, (uint64_t) (zclock_usecs() - pending->started_us));
    free(pending);
}

/* The broker went away with these requests: answer each now, not at its deadline. */
static void on_broker_lost(void *arg)
{
    sb_tcp_gateway_t *self = arg;
    size_t lost = zhashx_size(self->pending);
    pending_t *pending;
    while ((pending = zhashx_first(self->pending))) {
        zhashx_delete(self->pending, zhashx_cursor(self->pending));
        sb_connection_t *connection = zhashx_lookup(self->connections,
                                                    sb_id_map_key(pending->serial));
        if (connection)
            sb_connection_answer(connection, pending->slot, "ERR unavailable",
                                 "the broker went away while handling this request", false);
        self->counters.errors++;
        free(pending);
    }
    if (lost)
        sb_log_warn("answered requests lost with the broker", "requests=%zu", lost);
}

static void on_broker_connected(void *arg)
{
    sb_tcp_gateway_t *self = arg;
    sb_presence_resync(self->presence);
}

static const sb_broker_link_events_t s_link_events = {
    on_broker_envelope, on_broker_lost, on_broker_connected,
};

/* ---------------------------------------------------------------- lines */

/* `jack:dp` and `jack:wd`, the classic bank protocol: aliases of
 * `account jack deposit` and `account jack withdraw`. */
static bool send_bank_alias(sb_tcp_gateway_t *self, sb_connection_t *connection,
                            sb_reply_slot_t *slot, const sb_cmdline_t *request)
{
    const char *colon = strrchr(request->argv[0], ':');
    if (request->argc != 1 || !colon || colon == request->argv[0]
        || (strcmp(colon, ":dp") != 0 && strcmp(colon, ":wd") != 0))
        return false;
    char name[80];
    snprintf(name, sizeof name, "%.*s", (int) (colon - request->argv[0]), request->argv[0]);
    char *argv[] = { "account", name, strcmp(colon, ":dp") == 0 ? "deposit" : "withdraw", NULL };
    remote_request_t remote = { 3, argv, NULL, REPLY_BANK };
    send_to_broker(self, connection, slot, &remote);
    return true;
}

static void on_line(void *owner, sb_connection_t *connection, const char *line, size_t length)
{
    sb_tcp_gateway_t *self = owner;
    sb_cmdline_status_t status;
    char *tag = NULL;
    sb_cmdline_t *request = sb_cmdline_parse(line, length, &status, &tag);
    if (!request) {
        if (status != SB_CMDLINE_EMPTY)
            sb_connection_answer(connection, sb_connection_open_slot(connection, tag),
                                 "ERR bad-args", sb_cmdline_status_text(status), false);
        free(tag);
        return;
    }
    sb_reply_slot_t *slot = sb_connection_open_slot(connection, request->tag);
    local_command_fn *local = NULL;
    for (size_t i = 0; i < LOCAL_COMMAND_COUNT && !local; i++)
        if (strcmp(request->argv[0], s_local_commands[i].name) == 0)
            local = s_local_commands[i].run;
    if (local)
        local(self, connection, slot, request);
    else if (!send_bank_alias(self, connection, slot, request)) {
        remote_request_t remote = { request->argc, request->argv, NULL, REPLY_PLAIN };
        send_to_broker(self, connection, slot, &remote);
    }
    free(tag);
    sb_cmdline_destroy(&request);
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
        sb_presence_leave(self->presence, serial);
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
    sb_presence_join(self->presence, serial, address);
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
    sb_broker_link_drain(self->link);
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
    if (!self->link)
        return;
    uv_close((uv_handle_t *) &self->drain_timer, NULL);
    uv_prepare_stop(&self->before_sleep);
    uv_close((uv_handle_t *) &self->before_sleep, NULL);
    sb_broker_link_destroy(&self->link);
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
    struct sockaddr_storage address;
    char error[160];
    if (!sb_address_parse(self->settings.listen, &address, error, sizeof error)) {
        sb_log_error("bad listen address", "error=\"%s\"", error);
        return false;
    }
    uv_tcp_init(self->loop, &self->listener);
    self->listener.data = self;
    int result = uv_tcp_bind(&self->listener, (struct sockaddr *) &address, 0);
    if (result == 0)
        result = uv_listen((uv_stream_t *) &self->listener, 511, on_connection);
    if (result != 0) {
        sb_log_error("cannot listen", "address=%s error=\"%s\"", self->settings.listen,
                     uv_strerror(result));
        return false;
    }
    return true;
}

sb_tcp_gateway_t *sb_tcp_gateway_new(const sb_tcp_gateway_settings_t *settings)
{
    sb_tcp_gateway_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->loop = uv_default_loop();
    self->connections = sb_id_map_new();
    self->pending = sb_id_map_new();
    zhashx_set_destructor(self->pending, NULL);
    self->with_output = zlistx_new();
    self->next_serial = 1;
    self->next_request_id = 1;
    sb_broker_link_settings_t link_settings = {
        settings->broker, settings->heartbeat_interval_ms, settings->heartbeat_liveness,
    };
    self->link = sb_broker_link_new(self->loop, &link_settings, &s_link_events, self);
    if (!self->link) {
        sb_log_error("cannot connect to broker", "broker=%s error=\"%s\"", settings->broker,
                     zmq_strerror(errno));
        sb_tcp_gateway_destroy(&self);
        return NULL;
    }
    self->presence = sb_presence_new(self->link, settings->name, 64, &s_presence_events, self);
    if (!listen_on(self)) {
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
    sb_broker_link_destroy(&self->link);
    uv_run(self->loop, UV_RUN_NOWAIT);   /* let closing handles finish */
    void *pending;
    while ((pending = zhashx_first(self->pending))) {
        zhashx_delete(self->pending, zhashx_cursor(self->pending));
        free(pending);
    }
    zhashx_destroy(&self->pending);
    zhashx_destroy(&self->connections);
    sb_presence_destroy(&self->presence);
    zlistx_destroy(&self->with_output);
    free(self);
    *self_p = NULL;
}

void sb_tcp_gateway_run(sb_tcp_gateway_t *self)
{
    uv_run(self->loop, UV_RUN_DEFAULT);
}
