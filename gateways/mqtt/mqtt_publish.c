/* mqtt_publish.c — a PUBLISH from the client: its topic alias, the hub's
 * `pub` with RETAIN and QoS, its PUBACK/PUBREC once the hub has it, QoS 2
 * without duplicates; a PUBLISH to $switchboard/cmd/COMMAND as a request
 * with its reply; and the client's acks of what it was sent. */
#include "mqtt_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "cmdline.h"
#include "id_map.h"
#include "log.h"
#include "mqtt_relay.h"
#include "reply_queue.h"

/* ---------------------------------------------------------------- PUBLISH from the client */

/* The reason a refused hub `pub` gets in a v5 PUBACK/PUBREC. */
static uint8_t publish_reason(const char *status)
{
    if (strcmp(status, "OK") == 0)
        return SB_MQTT_RC_SUCCESS;
    if (strcmp(status, "ERR unauthorized") == 0)
        return SB_MQTT_RC_NOT_AUTHORIZED;
    if (strcmp(status, "ERR bad-args") == 0)
        return SB_MQTT_RC_TOPIC_NAME_INVALID;
    return SB_MQTT_RC_UNSPECIFIED_ERROR;
}

/* Acknowledges a PUBLISH from the client (QoS 1: PUBACK; 2: PUBREC). */
static void acknowledge_publish(link_t *link, uint8_t qos, uint16_t packet_id, uint8_t reason)
{
    if (qos == 0)
        return;
    mqtt_send_ack(link, qos == 1 ? SB_MQTT_PUBACK : SB_MQTT_PUBREC, packet_id, reason);
    bool finished = qos == 1 || (reason >= 0x80 && mqtt_is_v5(link));
    if (qos == 2 && finished)
        sb_mqtt_session_release(link->session, packet_id);
    if (finished && link->incoming)
        link->incoming--;
}

/* Backpressure: once a PUBLISH makes --receive-maximum of the session's
 * PUBLISHes and commands wait for the hub, its client's next packets wait
 * unread (QoS 0 as well: a burst is slowed down, not dropped). A command
 * over the limit gets an explicit `ERR busy` reply instead. */
static void hold_when_busy(link_t *link)
{
    if (link->session->waiting >= link->gateway->settings.receive_maximum)
        sb_mqtt_client_pause(link->client);
}

static void go_on_when_answered(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session)
{
    link_t *link = session->link;
    if (link && session->waiting < self->settings.receive_maximum)
        sb_mqtt_client_resume(link->client);
}

/* The hub's answer to a PUBLISH the client sent. */
void mqtt_answer_publish(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, const slot_t *slot,
                           const char *status)
{
    uint8_t reason = publish_reason(status);
    if (reason) {
        self->counters.denied += reason == SB_MQTT_RC_NOT_AUTHORIZED;
        self->counters.dropped += slot->qos == 0;
    }
    link_t *link = session->link;
    if (link && sb_mqtt_client_serial(link->client) == slot->link_serial)
        acknowledge_publish(link, slot->qos, slot->packet_id, reason);
    go_on_when_answered(self, session);
}

/* A command reply goes to the one client that asked, on its reply topic. */
void mqtt_answer_command(sb_mqtt_gateway_t *self, sb_mqtt_session_t *session, const slot_t *slot,
                           const char *status, const char *text)
{
    const char *topic = slot->text;
    const sb_mqtt_filter_t *filter = sb_mqtt_session_match(session, topic, false, false);
    if (!filter) {
        self->counters.undeliverable++;
        go_on_when_answered(self, session);
        return;
    }
    char *line = sb_reply_format_line(NULL, status, text ? text : "");
    sb_mqtt_message_t *reply = sb_mqtt_message_new(topic, line, strlen(line), filter->qos, false);
    free(line);
    reply->subscription_id = filter->id;
    if (slot->correlation_length) {
        reply->correlation = malloc(slot->correlation_length);
        memcpy(reply->correlation, slot->text + strlen(topic) + 1, slot->correlation_length);
        reply->correlation_length = slot->correlation_length;
    }
    reply->status = strdup(status ? status : "OK");
    mqtt_deliver(session, reply);
    go_on_when_answered(self, session);
}

/* $switchboard/cmd/COMMAND: the payload is the arguments (§3.1 syntax). */
static void run_command(link_t *link, const sb_mqtt_publish_t *publish)
{
    sb_mqtt_gateway_t *self = link->gateway;
    sb_mqtt_session_t *session = link->session;
    const char *command = publish->topic.data + strlen(CMD_PREFIX);
    const sb_mqtt_properties_t *p = &publish->properties;
    char reply_topic[512];
    if (sb_mqtt_has(p, SB_MQTT_PROP_RESPONSE_TOPIC))
        snprintf(reply_topic, sizeof reply_topic, "%s", p->response_topic.data);
    else
        snprintf(reply_topic, sizeof reply_topic, REPLY_PREFIX "%s/%s", session->client_id, command);
    size_t correlation = sb_mqtt_has(p, SB_MQTT_PROP_CORRELATION_DATA) ? p->correlation_data.length : 0;
    size_t topic_length = strlen(reply_topic);
    slot_t *slot = mqtt_slot_new(SLOT_COMMAND, topic_length + 1 + correlation);
    memcpy(slot->text, reply_topic, topic_length);
    if (correlation)
        memcpy(slot->text + topic_length + 1, p->correlation_data.data, correlation);
    slot->correlation_length = correlation;
    self->counters.commands++;
    acknowledge_publish(link, publish->qos, publish->packet_id, SB_MQTT_RC_SUCCESS);

    sb_cmdline_status_t status = SB_CMDLINE_NO_COMMAND;
    sb_cmdline_t *request = NULL;
    bool word = command[0] && !strpbrk(command, " \t\"@/+#") && strlen(publish->payload.data)
                                                                     == publish->payload.length;
    if (word) {
        size_t size = strlen(command) + publish->payload.length + 2;
        char *line = malloc(size);
        snprintf(line, size, "%s %s", command, publish->payload.data);
        request = sb_cmdline_parse(line, strlen(line), &status, NULL);
        free(line);
    }
    /* Commands waiting for the hub are bounded, as a TCP client's requests are. */
    bool busy = session->waiting >= self->settings.receive_maximum;
    sb_reply_slot_t *reply_slot;
    mqtt_add_slot_request(session, slot, &reply_slot);
    static const char *const refused[] = { "quit", "auth", "sub", "unsub" };
    bool allowed = request != NULL && !busy;
    for (size_t i = 0; allowed && i < sizeof refused / sizeof refused[0]; i++)
        allowed = strcmp(command, refused[i]) != 0;
    session->waiting += allowed;
    if (allowed)
        sb_router_handle_command(self->base.router, session, reply_slot, request->argc,
                                 request->argv);
    else if (busy)
        mqtt_answer_command(self, session, slot, "ERR busy",
                       "too many commands and publishes waiting for the hub (--receive-maximum)");
    else if (request)
        mqtt_answer_command(self, session, slot, "ERR bad-args",
                       "not over MQTT: CONNECT gives the credentials, SUBSCRIBE and UNSUBSCRIBE "
                       "the subscriptions, DISCONNECT ends");
    else
        mqtt_answer_command(self, session, slot, "ERR bad-args",
                       word ? sb_cmdline_status_text(status) : "COMMAND must be one word");
    if (!allowed)
        sb_reply_queue_remove(&session->slots, reply_slot);
    sb_cmdline_destroy(&request);
}

/* A v5 Topic Alias: sets or resolves it; the topic, or NULL after closing. */
static const char *resolve_alias(link_t *link, const sb_mqtt_publish_t *publish)
{
    if (!sb_mqtt_has(&publish->properties, SB_MQTT_PROP_TOPIC_ALIAS))
        return publish->topic.data;
    uint16_t alias = publish->properties.topic_alias;
    if (alias == 0 || alias > TOPIC_ALIASES) {
        mqtt_close_with(link, SB_MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias over the maximum");
        return NULL;
    }
    if (publish->topic.length) {
        free(link->aliases[alias]);
        link->aliases[alias] = strdup(publish->topic.data);
    }
    if (!link->aliases[alias])
        mqtt_close_with(link, SB_MQTT_RC_PROTOCOL_ERROR, "topic alias never set");
    return link->aliases[alias];
}

void mqtt_on_publish(link_t *link, const sb_mqtt_publish_t *publish)
{
    sb_mqtt_gateway_t *self = link->gateway;
    sb_mqtt_session_t *session = link->session;
    const char *topic = resolve_alias(link, publish);
    if (!topic)
        return;
    self->counters.publishes_in++;
    if (publish->qos > 0 && mqtt_is_v5(link) && link->incoming >= self->settings.receive_maximum) {
        mqtt_close_with(link, SB_MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED, NULL);
        return;
    }
    if (publish->qos == 2 && sb_mqtt_session_awaits_release(session, publish->packet_id)) {
        mqtt_send_ack(link, SB_MQTT_PUBREC, publish->packet_id, 0);   /* a resend: not published twice */
        return;
    }
    link->incoming += publish->qos > 0;
    if (publish->qos == 2)
        sb_mqtt_session_await_release(session, publish->packet_id);
    if (strncmp(topic, CMD_PREFIX, strlen(CMD_PREFIX)) == 0) {
        sb_mqtt_publish_t named = *publish;
        named.topic = sb_mqtt_str(topic);
        run_command(link, &named);
        return;
    }
    if (strlen(publish->payload.data) != publish->payload.length) {
        self->counters.dropped += publish->qos == 0;
        acknowledge_publish(link, publish->qos, publish->packet_id, SB_MQTT_RC_PAYLOAD_FORMAT_INVALID);
        return;
    }
    slot_t *slot = mqtt_slot_new(SLOT_PUBLISH, 0);
    slot->link_serial = sb_mqtt_client_serial(link->client);
    slot->packet_id = publish->packet_id;
    slot->qos = publish->qos;
    session->waiting++;
    hold_when_busy(link);
    char *relayed = mqtt_is_v5(link) ? sb_mqtt_relay_encode(&publish->properties) : NULL;
    mqtt_publish_as(self, session, slot, topic, publish->payload.data, publish->retain, publish->qos,
                    relayed, sb_mqtt_relay_expiry(&publish->properties));
    free(relayed);
}

/* ---------------------------------------------------------------- acks from the client */

/* A PUBREC for a message already released is a resend (our PUBREL was
 * lost): PUBREL again, success (v5 §4.3.3); an unknown id gets 0x92. */
static void released_again(link_t *link, uint16_t packet_id)
{
    const sb_mqtt_message_t *message = sb_mqtt_session_find(link->session, packet_id);
    bool released = message && message->released;
    mqtt_send_ack(link, SB_MQTT_PUBREL, packet_id,
                  released ? 0 : SB_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
}

void mqtt_on_ack(link_t *link, sb_mqtt_type_t type, const sb_mqtt_ack_t *ack)
{
    sb_mqtt_session_t *session = link->session;
    switch (type) {
    case SB_MQTT_PUBACK:
    case SB_MQTT_PUBCOMP:
        sb_mqtt_session_acknowledge(session, type, ack->packet_id);
        break;
    case SB_MQTT_PUBREC:
        if (!sb_mqtt_session_acknowledge(session, SB_MQTT_PUBREC, ack->packet_id))
            released_again(link, ack->packet_id);
        else if (ack->reason >= 0x80)   /* v5: the client refused it; the flow ends here */
            sb_mqtt_session_acknowledge(session, SB_MQTT_PUBCOMP, ack->packet_id);
        else
            mqtt_send_ack(link, SB_MQTT_PUBREL, ack->packet_id, 0);
        break;
    case SB_MQTT_PUBREL: {
        bool waited = sb_mqtt_session_release(session, ack->packet_id);
        if (waited && link->incoming)
            link->incoming--;
        mqtt_send_ack(link, SB_MQTT_PUBCOMP, ack->packet_id,
                 waited ? 0 : SB_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
        break;
    }
    default:
        break;
    }
    mqtt_pump(link);
}
