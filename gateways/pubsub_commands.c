/* pubsub_commands.c — the gateway's pub/sub commands: sub, unsub, pub
 * topics and history, each checked against the asker's rules before the broker
 * hears of it, and the same checks for a publish or a subscription that
 * came some other way (an MQTT PUBLISH or SUBSCRIBE). */
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "router_internal.h"
#include "topic.h"

/* Answered OK once the broker has it (maybe after a wait for the link). */
static void publish_to_broker(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                              const char *topic, const char *payload, bool retain, uint8_t qos,
                              const char *mqtt, uint32_t expiry_s)
{
    char from[64];   /* the publisher, for MQTT 5's No Local */
    sb_presence_client_id(self->presence, self->ops->serial(client), from, sizeof from);
    sb_envelope_t envelope = { .type = SB_ENVELOPE_PUBLISH, .topic = (char *) topic,
                               .data = (char *) payload, .retain = retain, .qos = qos,
                               .from = from, .mqtt = (char *) mqtt, .expiry_s = expiry_s };
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
    sb_router_send_to_broker(self, client, slot, &remote);
}

void sb_router_ask_retained(sb_router_t *self, void *client, const char *filter)
{
    ask_retained(self, client, NULL, filter, REPLY_NONE);
}

void sb_router_run_sub(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                       const sb_cmdline_t *request)
{
    if (request->argc != 2 || !sb_topic_filter_is_valid(request->argv[1])) {
        self->ops->answer(client, slot, "ERR bad-args",
                             "usage: sub FILTER (levels split by /, + for one level, # for the rest)",
                             false);
        return;
    }
    const sb_identity_t *rules = sb_router_rules_of(self, client);
    if (rules && !sb_identity_may_subscribe(rules, request->argv[1])) {
        sb_router_refuse(self, client, slot, "that filter is outside your subscribe rules");
        return;
    }
    sb_subscribe_result_t result = sb_presence_subscribe(self->presence, self->ops->serial(client),
                                                         request->argv[1]);
    if (result == SB_TOO_MANY_FILTERS)
        self->ops->answer(client, slot, "ERR busy", "too many subscriptions", false);
    else
        ask_retained(self, client, slot, request->argv[1], REPLY_SUBSCRIBED);
}

void sb_router_run_unsub(sb_router_t *self, void *client, sb_reply_slot_t *slot,
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
                            const char *mqtt, uint32_t expiry_s)
{
    if (!topic || !sb_topic_is_valid(topic) || topic[0] == '$') {
        self->ops->answer(client, slot, "ERR bad-args",
                             "usage: pub [-r] TOPIC PAYLOAD (no + or #; topics starting with $ are "
                             "the hub's own)", false);
        return;
    }
    const sb_identity_t *rules = sb_router_rules_of(self, client);
    if (rules && !sb_identity_may_publish(rules, topic)) {
        sb_router_refuse(self, client, slot, "that topic is outside your publish rules");
        return;
    }
    publish_to_broker(self, client, slot, topic, payload, retain, qos, mqtt, expiry_s);
}

void sb_router_run_pub(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                       const sb_cmdline_t *request)
{
    bool retain = request->argc >= 2 && strcmp(request->argv[1], "-r") == 0;
    size_t first = retain ? 2 : 1;   /* the topic's word */
    const char *topic = first < request->argc ? request->argv[first] : NULL;
    char payload[SB_ENVELOPE_MAX_SIZE / 4];
    if (topic)
        sb_cmdline_join(request->argc - first - 1, request->argv + first + 1, payload,
                        sizeof payload);
    publish_checked(self, client, slot, topic, payload, retain, 0, NULL, 0);
}

void sb_router_publish(sb_router_t *self, void *client, sb_reply_slot_t *slot, const char *topic,
                       const char *payload, bool retain, uint8_t qos, const char *mqtt,
                       uint32_t expiry_s)
{
    const sb_identity_t *rules = sb_router_rules_of(self, client);
    if (rules && !sb_identity_may_run(rules, "pub"))
        sb_router_refuse(self, client, slot,
                         "your token may not run that command (try auth NAME SECRET)");
    else
        publish_checked(self, client, slot, topic, payload, retain, qos, mqtt, expiry_s);
}

/* `topics FILTER`: asked of the broker within the asker's subscribe
 * filters (passed after FILTER), so it lists nothing `sub` would not give. */
void sb_router_run_topics(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                          const sb_cmdline_t *request)
{
    if (request->argc != 2 || !sb_topic_filter_is_valid(request->argv[1])) {
        self->ops->answer(client, slot, "ERR bad-args", "usage: topics FILTER", false);
        return;
    }
    const sb_identity_t *rules = sb_router_rules_of(self, client);
    if (rules && !sb_identity_may_subscribe(rules, request->argv[1])) {
        sb_router_refuse(self, client, slot, "that filter is outside your subscribe rules");
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
    sb_router_send_to_broker(self, client, slot, &remote);
    free(argv);
}

/* `history TOPIC [N]`: asked of the broker when the asker may subscribe to
 * TOPIC, so it gives nothing `sub` would not. */
void sb_router_run_history(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                           const sb_cmdline_t *request)
{
    if (request->argc < 2 || request->argc > 3 || !sb_topic_is_valid(request->argv[1])) {
        self->ops->answer(client, slot, "ERR bad-args", "usage: history TOPIC [N]", false);
        return;
    }
    const sb_identity_t *rules = sb_router_rules_of(self, client);
    if (rules && !sb_identity_may_subscribe(rules, request->argv[1])) {
        sb_router_refuse(self, client, slot, "that topic is outside your subscribe rules");
        return;
    }
    remote_request_t remote = { request->argc, request->argv, SB_BROKER_SERVICE, REPLY_PLAIN };
    sb_router_send_to_broker(self, client, slot, &remote);
}
