/* router.c — a client's requests, whatever the gateway (see router.h):
 * the dispatch of a line to the gateway's own commands (local_commands.c)
 * or to the broker, the broker's replies and events back to the clients,
 * and the router's lifecycle.
 *
 * A request for the broker is remembered (gateways/requests.c) with the
 * serial of its client, not a pointer to it: a client that leaves before
 * its reply arrives leaves nothing dangling, and the late reply is simply
 * dropped. */
#include "router.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_commands.h"
#include "log.h"
#include "protocol.h"
#include "router_internal.h"
#include "topic.h"

/* ---------------------------------------------------------------- access rules */

const sb_identity_t *sb_router_rules_of(const sb_router_t *self, void *client)
{
    if (!sb_access_enabled(sb_guard_access(self->guard)))
        return NULL;
    return sb_guard_identity(self->guard, self->ops->serial(client));
}

void sb_router_refuse(sb_router_t *self, void *client, sb_reply_slot_t *slot, const char *what)
{
    self->ops->answer(client, slot, "ERR unauthorized", what, false);
}

/* `client ID` and `tell ID`: a client is seen and reached by whoever may
 * subscribe to its `$sys/clients/ID` events. */
bool sb_router_may_see_client(const sb_identity_t *rules, const char *id)
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
        if (sb_router_may_see_client(rules, id)) {
            size_t length = strlen(id);
            if (!first)
                *out++ = ' ';
            memmove(out, id, length);
            out += length;
            first = false;
        }
    *out = '\0';
}

/* ---------------------------------------------------------------- events */

/* Live and retained events pass the same receive rule. */
static void deliver_event(void *arg, uint64_t serial, const sb_envelope_t *event)
{
    sb_router_t *self = arg;
    void *client = self->ops->find(self->owner, serial);
    const sb_identity_t *rules = client ? sb_router_rules_of(self, client) : NULL;
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

void sb_router_send_to_broker(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                              const remote_request_t *request)
{
    const sb_command_config_t *command = sb_config_command(self->settings.config, request->argv[0]);
    const char *service = request->service;
    if (!service && command && command->service_line)
        service = command->service;
    if (!service)
        service = sb_word_list_has(SB_DEVICE_COMMANDS, request->argv[0]) ? SB_DEVICE_SERVICE
                                                                          : SB_DEFAULT_SERVICE;
    const sb_builtin_command_t *builtin = sb_builtin_command(request->argv[0]);
    bool retry = command && command->retry >= 0 ? command->retry
                                                : builtin && builtin->retry_safe;
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
        .job = (command && command->exec) || sb_builtin_command_runs_as_job(request->argv[0]),
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
             && sb_router_rules_of(self, client)) {
        char *visible = strdup(env->text);
        if (visible)
            keep_visible_clients(sb_router_rules_of(self, client), visible);
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
    sb_router_send_to_broker(self, client, slot, &remote);
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
    const sb_identity_t *rules = sb_router_rules_of(self, client);
    if (rules && !sb_identity_may_run(rules, bank_alias_suffix(&request) ? "account" : argv[0])) {
        sb_router_refuse(self, client, slot,
                         "your token may not run that command (try auth NAME SECRET)");
        return;
    }
    const sb_local_command_t *local = sb_local_command(argv[0]);
    if (local)
        local->run(self, client, slot, &request);
    else if (refuse_unsafe_device_line(self, client, slot, &request))
        return;
    else if (!send_bank_alias(self, client, slot, &request)) {
        remote_request_t remote = { argc, argv, NULL, REPLY_PLAIN };
        sb_router_send_to_broker(self, client, slot, &remote);
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

bool sb_router_burst_over(sb_router_t *self)
{
    return self->link && sb_broker_link_burst_over(self->link);
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
