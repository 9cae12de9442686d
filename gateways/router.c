/* router.c — a client's requests, whatever the gateway (see router.h).
 *
 * A request for the broker is remembered (gateways/requests.c) with the
 * serial of its client, not a pointer to it: a client that leaves before
 * its reply arrives leaves nothing dangling, and the late reply is simply
 * dropped. */
#include "router.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "guard.h"
#include "id_map.h"
#include "latency.h"
#include "log.h"
#include "presence.h"
#include "protocol.h"
#include "requests.h"
#include "topic.h"

/* How a reply from the broker is written to the client. */
typedef enum {
    REPLY_PLAIN,                  /* OK TEXT / ERR CODE MESSAGE */
    REPLY_BANK,                   /* the classic bank server's lines (NAME:dp, NAME:wd) */
    REPLY_CLIENT_LIST,            /* `clients`: only the ids the asker's rules let it see */
    REPLY_SUBSCRIBED,             /* `retained` asked by `sub`: OK, whatever the broker said */
    REPLY_NONE,                   /* `retained` asked by the gateway itself: no answer */
} reply_style_t;

/* A command for the broker: argv[0] is its name. */
typedef struct {
    size_t argc;
    char **argv;
    const char *service;          /* NULL: the one the config assigns the command */
    reply_style_t style;
} remote_request_t;

typedef struct {
    uint64_t requests, replies, errors;
} router_counters_t;

struct sb_router {
    sb_router_settings_t settings;
    const sb_router_client_ops_t *ops;
    void *owner;
    sb_broker_link_t *link;
    sb_presence_t *presence;      /* clients and subscriptions, as the broker knows them */
    sb_requests_t *requests;      /* for the broker: in flight, held, deadlines */
    router_counters_t counters;
    sb_latency_t latency;
    sb_guard_t *guard;            /* identities and access rules (guard.h) */
};

typedef void (local_command_fn)(sb_router_t *self, void *client,
                                sb_reply_slot_t *slot, const sb_cmdline_t *request);

/* ---------------------------------------------------------------- local commands */

static void run_ping(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request)
{
    (void) self;
    (void) request;
    self->ops->answer(client, slot, "OK", "pong", false);
}

static void run_quit(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request)
{
    (void) request;
    sb_guard_quit(self->guard, self->ops->serial(client));
    self->ops->answer(client, slot, "OK", "bye", true);
}

static void run_help(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request);
static void run_stats(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                      const sb_cmdline_t *request);
static void run_sub(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                    const sb_cmdline_t *request);
static void run_unsub(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                      const sb_cmdline_t *request);
static void run_pub(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                    const sb_cmdline_t *request);
static void run_topics(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                       const sb_cmdline_t *request);
static void run_broker_command(sb_router_t *self, void *client,
                               sb_reply_slot_t *slot, const sb_cmdline_t *request);
static void run_auth(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request);

static const struct {
    const char *name;
    local_command_fn *run;
    const char *description;
} s_local_commands[] = {
    { "ping", run_ping, "ping: answers pong" },
    { "help", run_help, "help [NAME]: the command names, or what NAME does" },
    { "quit", run_quit, "quit: answers bye and closes the client" },
    { "stats", run_stats, "stats [broker]: counters and latency of this gateway, or of the broker" },
    { "sub", run_sub, "sub FILTER: receive EVENT lines for topics matching FILTER (+ one level, # the rest)" },
    { "unsub", run_unsub, "unsub FILTER: stop receiving what sub FILTER asked for" },
    { "pub", run_pub, "pub [-r] TOPIC PAYLOAD: send an event to every subscriber, on every "
                      "gateway; -r also keeps it as the topic's retained value (no payload: clears it)" },
    { "topics", run_topics, "topics FILTER: the retained values of topics matching FILTER" },
    { "clients", run_broker_command, "clients: the ids of every connected client, all gateways" },
    { "client", run_broker_command, "client ID: where a client is connected, and since when" },
    { "tell", run_broker_command, "tell ID TEXT: a direct message to one client, wherever it is" },
    { "auth", run_auth, "auth NAME SECRET: act as token NAME from now on (see [token NAME])" },
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
    { "devices", "devices: every device and its state (connected, connecting, backoff:Ns, waiting)" },
    { "device", "device NAME [call LINE | send LINE]: a device's details, or a line to it "
                "(call answers with its next line)" },
};
#define LOCAL_COMMAND_COUNT (sizeof s_local_commands / sizeof s_local_commands[0])

/* ---------------------------------------------------------------- access rules */

/* The rules `client` is held to; NULL when there are none to check (no
 * tokens in the config, or a request the gateway makes itself). */
static const sb_identity_t *rules_of(const sb_router_t *self, void *client)
{
    if (!sb_access_enabled(sb_guard_access(self->guard)))
        return NULL;
    return sb_guard_identity(self->guard, self->ops->serial(client));
}

static void refuse(sb_router_t *self, void *client, sb_reply_slot_t *slot, const char *what)
{
    self->ops->answer(client, slot, "ERR unauthorized", what, false);
}

/* `client ID` and `tell ID`: a client is seen and reached by whoever may
 * subscribe to its `$sys/clients/ID` events. */
static bool may_see_client(const sb_identity_t *rules, const char *id)
{
    char topic[SB_TOPIC_MAX + 1];
    int length = snprintf(topic, sizeof topic, "$sys/clients/%s", id);
    return !rules || (length > 0 && (size_t) length < sizeof topic && sb_topic_is_valid(topic)
                      && sb_identity_may_receive(rules, topic));
}

/* The ids of a `clients` reply the asker may see, in place. */
static void keep_visible_clients(const sb_identity_t *rules, char *list)
{
    char *out = list, *save = NULL;
    bool first = true;
    for (char *id = strtok_r(list, " ", &save); id; id = strtok_r(NULL, " ", &save))
        if (may_see_client(rules, id)) {
            size_t length = strlen(id);
            if (!first)
                *out++ = ' ';
            memmove(out, id, length);
            out += length;
            first = false;
        }
    *out = '\0';
}

static void run_auth(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request)
{
    if (request->argc != 3) {
        self->ops->answer(client, slot, "ERR bad-args", "usage: auth NAME SECRET", false);
        return;
    }
    sb_guard_auth(self->guard, self->ops->serial(client), slot, request->argv[1],
                  request->argv[2]);
}

/* `help NAME`: a configured command's description first (it may replace a built-in). */
static const char *describe(const sb_router_t *self, const char *name)
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

static void run_help(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                     const sb_cmdline_t *request)
{
    if (request->argc == 2) {
        const char *description = describe(self, request->argv[1]);
        if (description)
            self->ops->answer(client, slot, "OK", description, false);
        else
            self->ops->answer(client, slot, "ERR unknown-command", "no such command", false);
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
    self->ops->answer(client, slot, "OK", names, false);
}

static void send_to_broker(sb_router_t *self, void *client,
                           sb_reply_slot_t *slot, const remote_request_t *request);

/* clients, client ID, tell ID TEXT: the broker knows every gateway's clients. */
static void run_broker_command(sb_router_t *self, void *client,
                               sb_reply_slot_t *slot, const sb_cmdline_t *request)
{
    bool listing = strcmp(request->argv[0], "clients") == 0;
    if (!listing && request->argc >= 2 && !may_see_client(rules_of(self, client), request->argv[1])) {
        refuse(self, client, slot, "that client is outside your subscribe rules ($sys/clients/ID)");
        return;
    }
    remote_request_t remote = { request->argc, request->argv, SB_BROKER_SERVICE,
                                listing ? REPLY_CLIENT_LIST : REPLY_PLAIN };
    send_to_broker(self, client, slot, &remote);
}

/* `stats`: this gateway's counters; `stats broker`: the broker's. */
static void run_stats(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                      const sb_cmdline_t *request)
{
    if (request->argc == 2 && strcmp(request->argv[1], "broker") == 0) {
        remote_request_t remote = { request->argc, request->argv, SB_BROKER_SERVICE, REPLY_PLAIN };
        send_to_broker(self, client, slot, &remote);
        return;
    }
    if (request->argc != 1) {
        self->ops->answer(client, slot, "ERR bad-args", "usage: stats [broker]", false);
        return;
    }
    char text[1024];
    sb_router_stats_t s = sb_router_stats(self);
    int used = self->ops->describe(self->owner, text, sizeof text);
    snprintf(text + used, sizeof text - (size_t) used,
             "%srequests=%" PRIu64 " replies=%" PRIu64 " errors=%" PRIu64 " in_flight=%zu"
             " held=%zu held_total=%" PRIu64 " unavailable=%" PRIu64 " timeouts=%" PRIu64
             " late_replies=%" PRIu64 " resent=%" PRIu64 " malformed=%" PRIu64
             " latency_p50_us=%" PRIu64 " latency_p99_us=%" PRIu64 " auth_failures=%" PRIu64,
             used ? " " : "", s.requests, s.replies, s.errors, s.in_flight, s.held, s.held_total,
             s.unavailable, s.timeouts, s.late_replies, s.resent, s.malformed,
             sb_latency_percentile(s.latency, 50), sb_latency_percentile(s.latency, 99),
             s.auth_failures);
    self->ops->answer(client, slot, "OK", text, false);
}

/* ---------------------------------------------------------------- pub/sub */

/* Answered OK once the broker has it (maybe after a wait for the link). */
static void publish_to_broker(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                              const char *topic, const char *payload, bool retain, uint8_t qos,
                              const char *mqtt)
{
    char from[64];   /* the publisher, for MQTT 5's No Local */
    sb_presence_client_id(self->presence, self->ops->serial(client), from, sizeof from);
    sb_envelope_t envelope = { .type = SB_ENVELOPE_PUBLISH, .topic = (char *) topic,
                               .data = (char *) payload, .retain = retain, .qos = qos,
                               .from = from, .mqtt = (char *) mqtt };
    sb_request_owner_t owner = { self->ops->serial(client), slot, REPLY_PLAIN, zclock_usecs() };
    sb_requests_submit(self->requests, &envelope, &owner, false);
}

/* The retained values matching `filter`, for this client alone: the broker
 * sends them as EVENTs with `cli` (and retain) before its reply, so they
 * come before the OK of `sub`. After the SUBSCRIBE on the same socket, so
 * no value set meanwhile is missed (it may come twice: retained, then live). */
static void ask_retained(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                         const char *filter, reply_style_t style)
{
    char *argv[] = { "retained", (char *) filter, NULL };
    remote_request_t remote = { 2, argv, SB_BROKER_SERVICE, style };
    send_to_broker(self, client, slot, &remote);
}

void sb_router_ask_retained(sb_router_t *self, void *client, const char *filter)
{
    ask_retained(self, client, NULL, filter, REPLY_NONE);
}

static void run_sub(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                    const sb_cmdline_t *request)
{
    if (request->argc != 2 || !sb_topic_filter_is_valid(request->argv[1])) {
        self->ops->answer(client, slot, "ERR bad-args",
                             "usage: sub FILTER (levels split by /, + for one level, # for the rest)",
                             false);
        return;
    }
    const sb_identity_t *rules = rules_of(self, client);
    if (rules && !sb_identity_may_subscribe(rules, request->argv[1])) {
        refuse(self, client, slot, "that filter is outside your subscribe rules");
        return;
    }
    sb_subscribe_result_t result = sb_presence_subscribe(self->presence, self->ops->serial(client),
                                                         request->argv[1]);
    if (result == SB_TOO_MANY_FILTERS)
        self->ops->answer(client, slot, "ERR busy", "too many subscriptions", false);
    else
        ask_retained(self, client, slot, request->argv[1], REPLY_SUBSCRIBED);
}

static void run_unsub(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                      const sb_cmdline_t *request)
{
    if (request->argc != 2) {
        self->ops->answer(client, slot, "ERR bad-args", "usage: unsub FILTER", false);
        return;
    }
    if (sb_presence_unsubscribe(self->presence, self->ops->serial(client),
                                request->argv[1]) == SB_NOT_SUBSCRIBED)
        self->ops->answer(client, slot, "ERR bad-args", "not subscribed to that filter",
                             false);
    else
        self->ops->answer(client, slot, "OK", "", false);
}

/* `pub [-r] TOPIC PAYLOAD`: a first word `-r` is always the flag (a topic
 * named -r can be set with `pub -r -r VALUE` only). */
/* What `pub` and sb_router_publish check before the broker gets it. */
static void publish_checked(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                            const char *topic, const char *payload, bool retain, uint8_t qos,
                            const char *mqtt)
{
    if (!topic || !sb_topic_is_valid(topic) || topic[0] == '$') {
        self->ops->answer(client, slot, "ERR bad-args",
                             "usage: pub [-r] TOPIC PAYLOAD (no + or #; topics starting with $ are "
                             "the hub's own)", false);
        return;
    }
    const sb_identity_t *rules = rules_of(self, client);
    if (rules && !sb_identity_may_publish(rules, topic)) {
        refuse(self, client, slot, "that topic is outside your publish rules");
        return;
    }
    publish_to_broker(self, client, slot, topic, payload, retain, qos, mqtt);
}

static void run_pub(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                    const sb_cmdline_t *request)
{
    bool retain = request->argc >= 2 && strcmp(request->argv[1], "-r") == 0;
    size_t first = retain ? 2 : 1;   /* the topic's word */
    const char *topic = first < request->argc ? request->argv[first] : NULL;
    char payload[SB_ENVELOPE_MAX_SIZE / 4];
    if (topic)
        sb_cmdline_join(request->argc - first - 1, request->argv + first + 1, payload,
                        sizeof payload);
    publish_checked(self, client, slot, topic, payload, retain, 0, NULL);
}

void sb_router_publish(sb_router_t *self, void *client, sb_reply_slot_t *slot, const char *topic,
                       const char *payload, bool retain, uint8_t qos, const char *mqtt)
{
    const sb_identity_t *rules = rules_of(self, client);
    if (rules && !sb_identity_may_run(rules, "pub"))
        refuse(self, client, slot, "your token may not run that command (try auth NAME SECRET)");
    else
        publish_checked(self, client, slot, topic, payload, retain, qos, mqtt);
}

/* `topics FILTER`: asked of the broker within the asker's subscribe
 * filters (passed after FILTER), so it lists nothing `sub` would not give. */
static void run_topics(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                       const sb_cmdline_t *request)
{
    if (request->argc != 2 || !sb_topic_filter_is_valid(request->argv[1])) {
        self->ops->answer(client, slot, "ERR bad-args", "usage: topics FILTER", false);
        return;
    }
    const sb_identity_t *rules = rules_of(self, client);
    if (rules && !sb_identity_may_subscribe(rules, request->argv[1])) {
        refuse(self, client, slot, "that filter is outside your subscribe rules");
        return;
    }
    char *const *allowed = rules ? sb_identity_subscribe_filters(rules) : NULL;
    size_t count = 0;
    while (allowed && allowed[count] && count + 2 < SB_ENVELOPE_MAX_ARGS)
        count++;
    char **argv = calloc(count + 3, sizeof *argv);
    argv[0] = "topics";
    argv[1] = request->argv[1];
    for (size_t i = 0; i < count; i++)
        argv[2 + i] = allowed[i];
    remote_request_t remote = { count + 2, argv, SB_BROKER_SERVICE, REPLY_PLAIN };
    send_to_broker(self, client, slot, &remote);
    free(argv);
}

/* Live and retained events pass the same receive rule. */
static void deliver_event(void *arg, uint64_t serial, const sb_envelope_t *event)
{
    sb_router_t *self = arg;
    void *client = self->ops->find(self->owner, serial);
    const sb_identity_t *rules = client ? rules_of(self, client) : NULL;
    if (!client || (rules && !sb_identity_may_receive(rules, event->topic)))
        return;
    if (self->ops->write_event)
        self->ops->write_event(client, event);
    else
        self->ops->write_async(client, event->retain ? "RETAINED" : "EVENT", event->topic,
                               event->data ? event->data : "");
}

static void deliver_message(void *arg, uint64_t serial, const char *from, const char *text)
{
    sb_router_t *self = arg;
    void *client = self->ops->find(self->owner, serial);
    if (client)
        self->ops->write_async(client, "MSG", from, text);
}

static const sb_presence_events_t s_presence_events = { deliver_event, deliver_message };

/* ---------------------------------------------------------------- remote commands */

static void send_to_broker(sb_router_t *self, void *client,
                           sb_reply_slot_t *slot, const remote_request_t *request)
{
    const sb_command_config_t *command = sb_config_command(self->settings.config, request->argv[0]);
    const char *service = request->service;
    if (!service && command && command->service_line)
        service = command->service;
    if (!service)
        service = sb_word_list_has(SB_DEVICE_COMMANDS, request->argv[0]) ? SB_DEVICE_SERVICE
                                                                          : SB_DEFAULT_SERVICE;
    bool retry = command && command->retry >= 0 ? command->retry
                                                : sb_word_list_has(SB_RETRY_SAFE_COMMANDS, request->argv[0]);
    char client_id[64];
    sb_presence_client_id(self->presence, self->ops->serial(client), client_id,
                          sizeof client_id);
    const sb_identity_t *identity = sb_guard_identity(self->guard, self->ops->serial(client));
    sb_envelope_t envelope = {
        .type = SB_ENVELOPE_REQUEST,
        .service = (char *) service,
        .command = request->argv[0],
        .argc = request->argc - 1,
        .argv = request->argv + 1,
        .client = client_id,
        .token = identity ? (char *) sb_identity_token(identity) : NULL,
        .timeout_ms = command ? command->timeout_ms : 0,
        .retry = retry,
        .job = command && command->exec ? true : sb_word_list_has(SB_JOB_COMMANDS, request->argv[0]),
    };
    sb_request_owner_t owner = { self->ops->serial(client), slot, request->style, zclock_usecs() };
    self->counters.requests++;
    sb_requests_submit(self->requests, &envelope, &owner, retry);
}

/* The classic bank server's answers: "jack's money: 3" while there is
 * money, "jack has no money!!" when there is none (or not enough). */
static void answer_bank_style(sb_router_t *self, void *client, sb_reply_slot_t *slot,
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
        self->ops->answer(client, slot, status, env->text, false);
        return;
    }
    self->ops->answer(client, slot, NULL, line, false);
}

static void on_broker_envelope(void *arg, const sb_envelope_t *env)
{
    sb_router_t *self = arg;
    if (sb_presence_handle(self->presence, env))
        return;
    sb_request_owner_t pending;
    if (env->type != SB_ENVELOPE_REPLY || !sb_requests_take(self->requests, env->id, &pending))
        return;
    void *client = self->ops->find(self->owner, pending.serial);
    if (pending.style == REPLY_NONE)
        ;
    else if (client && pending.style == REPLY_SUBSCRIBED)
        self->ops->answer(client, pending.slot, "OK", "", false);
    else if (client && pending.style == REPLY_BANK)
        answer_bank_style(self, client, pending.slot, env);
    else if (client && pending.style == REPLY_CLIENT_LIST && env->ok && env->text
             && rules_of(self, client)) {
        char *visible = strdup(env->text);
        if (visible)
            keep_visible_clients(rules_of(self, client), visible);
        self->ops->answer(client, pending.slot, "OK", visible ? visible : "", false);
        free(visible);
    }
    else if (client) {
        char status[64];
        snprintf(status, sizeof status, env->ok ? "OK" : "ERR %s", env->code);
        self->ops->answer(client, pending.slot, status, env->text, false);
    }
    self->counters.replies++;
    self->counters.errors += !env->ok;
    sb_latency_record(&self->latency, (uint64_t) (zclock_usecs() - pending.started_us));
}

/* The gateway's own answer to a request: the broker is away, or late. */
static void answer_request(void *arg, const sb_request_owner_t *owner, const char *status,
                           const char *text)
{
    sb_router_t *self = arg;
    void *client = self->ops->find(self->owner, owner->serial);
    bool subscribed = owner->style == REPLY_SUBSCRIBED;
    /* A `sub` holds without its retained values (the broker is away, or
     * late): its events come once the broker is back. */
    if (client && owner->style != REPLY_NONE)
        self->ops->answer(client, owner->slot, subscribed ? "OK" : status,
                          subscribed ? "" : text, false);
    self->counters.errors += strncmp(status, "ERR", 3) == 0;
}

static const sb_requests_events_t s_request_events = { answer_request };

/* The broker went away with these requests: retry-safe ones wait for the
 * next broker, the others are answered now, not at their deadline. */
static void on_broker_lost(void *arg)
{
    sb_router_t *self = arg;
    sb_requests_broker_lost(self->requests);
}

/* A (new) broker: it learns the clients and subscriptions first, so a held
 * `tell` finds its target, then gets what was held, oldest first. */
static void on_broker_connected(void *arg)
{
    sb_router_t *self = arg;
    sb_presence_resync(self->presence);
    sb_requests_broker_up(self->requests);
}

/* A hung broker answers again: it still knows us and what it was given. */
static void on_broker_back(void *arg)
{
    sb_router_t *self = arg;
    sb_requests_broker_up(self->requests);
}

static const sb_broker_link_events_t s_link_events = {
    on_broker_envelope, on_broker_lost, on_broker_connected, on_broker_back,
};

/* ---------------------------------------------------------------- lines */

/* `jack:dp` and `jack:wd`, the classic bank protocol: aliases of
 * `account jack deposit` and `account jack withdraw`. */
static const char *bank_alias_suffix(const sb_cmdline_t *request)
{
    const char *colon = strrchr(request->argv[0], ':');
    if (request->argc != 1 || !colon || colon == request->argv[0]
        || (strcmp(colon, ":dp") != 0 && strcmp(colon, ":wd") != 0))
        return NULL;
    return colon;
}

static bool send_bank_alias(sb_router_t *self, void *client,
                            sb_reply_slot_t *slot, const sb_cmdline_t *request)
{
    const char *colon = bank_alias_suffix(request);
    if (!colon)
        return false;
    char name[80];
    snprintf(name, sizeof name, "%.*s", (int) (colon - request->argv[0]), request->argv[0]);
    char *argv[] = { "account", name, strcmp(colon, ":dp") == 0 ? "deposit" : "withdraw", NULL };
    remote_request_t remote = { 3, argv, NULL, REPLY_BANK };
    send_to_broker(self, client, slot, &remote);
    return true;
}

/* `device NAME call|send LINE` with a control byte in LINE: refused here
 * already, so it costs no broker round trip (the device gateway, which any
 * gateway's request reaches, refuses it again). */
static bool refuse_unsafe_device_line(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                                      const sb_cmdline_t *request)
{
    if (request->argc < 4 || strcmp(request->argv[0], "device") != 0)
        return false;
    for (size_t i = 3; i < request->argc; i++)
        if (!sb_device_line_is_safe(request->argv[i])) {
            self->ops->answer(client, slot, "ERR bad-args", SB_DEVICE_LINE_RULE, false);
            return true;
        }
    return false;
}

void sb_router_handle_command(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                              size_t argc, char **argv)
{
    sb_cmdline_t request = { .argc = argc, .argv = argv };
    if (sb_guard_holds(self->guard, self->ops->serial(client), slot, argc, argv))
        return;
    const sb_identity_t *rules = rules_of(self, client);
    if (rules && !sb_identity_may_run(rules, bank_alias_suffix(&request) ? "account" : argv[0])) {
        refuse(self, client, slot, "your token may not run that command (try auth NAME SECRET)");
        return;
    }
    local_command_fn *local = NULL;
    for (size_t i = 0; i < LOCAL_COMMAND_COUNT && !local; i++)
        if (strcmp(argv[0], s_local_commands[i].name) == 0)
            local = s_local_commands[i].run;
    if (local)
        local(self, client, slot, &request);
    else if (refuse_unsafe_device_line(self, client, slot, &request))
        return;
    else if (!send_bank_alias(self, client, slot, &request)) {
        remote_request_t remote = { argc, argv, NULL, REPLY_PLAIN };
        send_to_broker(self, client, slot, &remote);
    }
}

void sb_router_handle_line(sb_router_t *self, void *client, const char *line, size_t length)
{
    sb_cmdline_status_t status;
    char *tag = NULL;
    sb_cmdline_t *request = sb_cmdline_parse(line, length, &status, &tag);
    if (!request) {
        if (status != SB_CMDLINE_EMPTY)
            self->ops->answer(client, self->ops->open_slot(client, tag),
                                 "ERR bad-args", sb_cmdline_status_text(status), false);
        free(tag);
        return;
    }
    sb_router_handle_command(self, client, self->ops->open_slot(client, request->tag),
                             request->argc, request->argv);
    free(tag);
    sb_cmdline_destroy(&request);
}

/* ---------------------------------------------------------------- lifecycle */

static void guard_answer(void *arg, uint64_t serial, sb_reply_slot_t *slot, const char *status,
                         const char *text)
{
    sb_router_t *self = arg;
    void *client = self->ops->find(self->owner, serial);
    if (client)
        self->ops->answer(client, slot, status, text, false);
}

static void guard_run(void *arg, uint64_t serial, sb_reply_slot_t *slot, size_t argc, char **argv)
{
    sb_router_t *self = arg;
    void *client = self->ops->find(self->owner, serial);
    if (client)
        sb_router_handle_command(self, client, slot, argc, argv);
}

static const sb_guard_events_t s_guard_events = { guard_answer, guard_run };

sb_router_t *sb_router_new(uv_loop_t *loop, const sb_router_settings_t *settings,
                           const sb_router_client_ops_t *ops, void *owner)
{
    sb_router_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->ops = ops;
    self->owner = owner;
    self->guard = sb_guard_new(loop, settings->config, &s_guard_events, self);
    self->link = sb_broker_link_new(loop, &settings->link, &s_link_events, self);
    if (!self->link) {
        sb_log_error("cannot connect to broker", "broker=%s error=\"%s\"", settings->link.endpoint,
                     zmq_strerror(errno));
        sb_router_destroy(&self);
        return NULL;
    }
    self->presence = sb_presence_new(self->link, settings->name, settings->max_filters,
                                     &s_presence_events, self);
    self->requests = sb_requests_new(loop, self->link, &settings->requests, &s_request_events, self);
    return self;
}

void sb_router_close_link(sb_router_t *self)
{
    if (self->requests)
        sb_requests_detach(self->requests);
    sb_broker_link_destroy(&self->link);
}

void sb_router_destroy(sb_router_t **self_p)
{
    sb_router_t *self = *self_p;
    if (!self)
        return;
    sb_requests_destroy(&self->requests);
    sb_broker_link_destroy(&self->link);
    sb_presence_destroy(&self->presence);
    sb_guard_destroy(&self->guard);
    free(self);
    *self_p = NULL;
}

void sb_router_drain(sb_router_t *self)
{
    if (self->link)
        sb_broker_link_drain(self->link);
}

void sb_router_client_joined(sb_router_t *self, uint64_t serial, const char *address)
{
    sb_presence_join(self->presence, serial, address);
    sb_guard_join(self->guard, serial, address);
}

void sb_router_client_left(sb_router_t *self, uint64_t serial)
{
    sb_presence_leave(self->presence, serial);
    sb_guard_leave(self->guard, serial);
}

void sb_router_client_id(const sb_router_t *self, uint64_t serial, char *buffer, size_t size)
{
    sb_presence_client_id(self->presence, serial, buffer, size);
}

const sb_access_t *sb_router_access(const sb_router_t *self)
{
    return sb_guard_access(self->guard);
}

void sb_router_client_authenticated(sb_router_t *self, uint64_t serial,
                                    const sb_identity_t *identity)
{
    sb_guard_set_identity(self->guard, serial, identity);
}

const sb_identity_t *sb_router_authenticate_now(sb_router_t *self, const char *address,
                                                const char *pair, bool *waiting)
{
    return sb_guard_authenticate_now(self->guard, address, pair, waiting);
}

sb_router_stats_t sb_router_stats(const sb_router_t *self)
{
    sb_requests_counters_t requests = sb_requests_counters(self->requests);
    return (sb_router_stats_t) {
        .requests = self->counters.requests,
        .replies = self->counters.replies,
        .errors = self->counters.errors,
        .in_flight = requests.in_flight,
        .held = requests.held,
        .timeouts = requests.timeouts,
        .late_replies = requests.late_replies,
        .resent = requests.resent,
        .held_total = requests.held_total,
        .unavailable = requests.unavailable,
        .malformed = self->link ? sb_broker_link_malformed(self->link) : 0,
        .auth_failures = sb_guard_failures(self->guard),
        .broker_up = self->link && sb_broker_link_is_up(self->link),
        .latency = &self->latency,
    };
}
