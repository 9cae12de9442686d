/* mqtt_output.c — what the gateway sends a connected MQTT client: a packet
 * in the client's version and under its Maximum Packet Size, the messages
 * of its session as its Receive Maximum allows, the redelivery after a
 * reconnect, and the DISCONNECT that ends a connection. */
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

/* ---------------------------------------------------------------- sending */

bool mqtt_is_v5(const link_t *link)
{
    return link->version == SB_MQTT_V5;
}

/* Encodes `packet` for the connection; false when it does not fit the
 * client's Maximum Packet Size (or cannot be encoded). */
bool mqtt_send_packet(link_t *link, const sb_mqtt_packet_t *packet)
{
    sb_mqtt_gateway_t *self = link->gateway;
    sb_mqtt_buffer_clear(&self->scratch);
    sb_mqtt_version_t version = link->version ? link->version : SB_MQTT_V311;
    int length = sb_mqtt_encode(packet, version, link->max_packet_out, &self->scratch);
    if (length < 0)
        return false;
    sb_mqtt_client_write(link->client, self->scratch.data, (size_t) length);
    return true;
}

void mqtt_send_ack(link_t *link, sb_mqtt_type_t type, uint16_t packet_id, uint8_t reason)
{
    sb_mqtt_packet_t packet = { .type = type };
    packet.u.ack.packet_id = packet_id;
    packet.u.ack.reason = mqtt_is_v5(link) ? reason : 0;
    mqtt_send_packet(link, &packet);
}

/* Ends the connection, v5 with a DISCONNECT carrying `reason`. */
void mqtt_close_with(link_t *link, uint8_t reason, const char *detail)
{
    if (sb_mqtt_client_is_closing(link->client))
        return;
    if (reason != SB_MQTT_RC_NORMAL_DISCONNECTION && reason != SB_MQTT_RC_SERVER_SHUTTING_DOWN)
        sb_log_info("mqtt client closed", "serial=%" PRIu64 " address=%s reason=0x%02x detail=\"%s\"",
                    sb_mqtt_client_serial(link->client), link->peer, reason,
                    detail ? detail : sb_mqtt_reason_name(reason));
    if (mqtt_is_v5(link) && link->session) {
        sb_mqtt_packet_t packet = { .type = SB_MQTT_DISCONNECT };
        packet.u.disconnect.reason = reason;
        if (detail) {
            packet.u.disconnect.properties.reason_string = sb_mqtt_str(detail);
            sb_mqtt_mark(&packet.u.disconnect.properties, SB_MQTT_PROP_REASON_STRING);
        }
        mqtt_send_packet(link, &packet);
    }
    sb_mqtt_client_end(link->client);
}

/* One message to the connected client (PUBLISH); false when it is too
 * large for the client, which then never gets it (v5 §3.1.2.11.4). */
/* A topic alias towards a v5 client that allows them: the one its topic
 * has (0: none yet), or the next free one to give it (*fresh). */
static uint16_t alias_for(const link_t *link, const char *topic, bool *fresh)
{
    *fresh = false;
    for (uint16_t alias = 1; alias <= link->out_alias_used; alias++)
        if (strcmp(link->out_aliases[alias], topic) == 0)
            return alias;
    *fresh = link->out_alias_used < link->out_alias_max;
    return *fresh ? (uint16_t) (link->out_alias_used + 1) : 0;
}

static bool send_publish(link_t *link, sb_mqtt_message_t *message)
{
    sb_mqtt_packet_t packet = { .type = SB_MQTT_PUBLISH };
    sb_mqtt_publish_t *publish = &packet.u.publish;
    publish->dup = message->sent && message->qos > 0;
    publish->qos = message->qos;
    publish->retain = message->retain;
    publish->topic = sb_mqtt_str(message->topic);
    publish->packet_id = message->qos ? message->packet_id : 0;
    publish->payload = (sb_mqtt_str_t) { message->payload, message->length };
    sb_mqtt_user_property_t status = { sb_mqtt_str("status"), sb_mqtt_str(message->status) };
    int64_t left_ms = message->expires_at_ms ? message->expires_at_ms - zclock_time() : 1;
    if (left_ms <= 0)
        return false;   /* expired while it waited: never sent (v5 §3.3.2.3.3) */
    sb_mqtt_packet_t *relayed = message->relayed ? sb_mqtt_relay_decode(message->relayed) : NULL;
    if (relayed && mqtt_is_v5(link)) {
        sb_mqtt_relay_apply(&relayed->u.publish.properties, &publish->properties);
        if (message->expires_at_ms)
            publish->properties.message_expiry_interval = (uint32_t) ((left_ms + 999) / 1000);
    }
    if (mqtt_is_v5(link)) {
        if (message->subscription_id) {
            publish->properties.subscription_ids = &message->subscription_id;
            publish->properties.subscription_id_count = 1;
        }
        if (message->correlation) {
            publish->properties.correlation_data =
                (sb_mqtt_str_t) { message->correlation, message->correlation_length };
            sb_mqtt_mark(&publish->properties, SB_MQTT_PROP_CORRELATION_DATA);
        }
        if (message->status) {
            publish->properties.user_properties = &status;
            publish->properties.user_property_count = 1;
        }
    }
    bool fresh = false;
    uint16_t alias = mqtt_is_v5(link) ? alias_for(link, message->topic, &fresh) : 0;
    if (alias) {   /* a known alias goes without its topic */
        publish->properties.topic_alias = alias;
        sb_mqtt_mark(&publish->properties, SB_MQTT_PROP_TOPIC_ALIAS);
        if (!fresh)
            publish->topic = sb_mqtt_str("");
    }
    message->sent = true;
    bool sent = mqtt_send_packet(link, &packet);
    if (sent && fresh)   /* the client knows it only once it was sent */
        link->out_aliases[++link->out_alias_used] = strdup(message->topic);
    sb_mqtt_packet_destroy(&relayed);
    link->gateway->counters.publishes_out += sent;
    return sent;
}

/* QoS 1 and 2 in flight to the client: its Receive Maximum, and never
 * more than --receive-maximum (the gateway keeps each of them). */
static size_t window_of(const link_t *link)
{
    uint16_t limit = link->gateway->settings.receive_maximum;
    return link->window && link->window < limit ? link->window : limit;
}

/* A message the client can never get (expired, or over its Maximum Packet
 * Size) ends its flow as if delivered, so it does not hold the window. */
static void give_up(link_t *link, sb_mqtt_message_t *message)
{
    link->gateway->counters.undeliverable++;
    sb_mqtt_session_forget(link->session, message->packet_id);
}

/* Sends what the client's window allows. */
void mqtt_pump(link_t *link)
{
    sb_mqtt_session_t *session = link->session;
    sb_mqtt_message_t *message;
    bool owned;
    while (!sb_mqtt_client_is_closing(link->client)
           && (message = sb_mqtt_session_next(session, window_of(link), &owned))) {
        bool sent = send_publish(link, message);
        if (owned)
            sb_mqtt_message_destroy(&message);
        else if (!sent)
            give_up(link, message);
    }
}

/* A message for a session: sent now if its client is here and its window
 * has room, else queued. */
void mqtt_deliver(sb_mqtt_session_t *session, sb_mqtt_message_t *message)
{
    sb_mqtt_session_push(session, message);
    if (session->link)
        mqtt_pump(session->link);
}

/* What was in flight when the client left goes again, as the standard
 * asks on a reconnect: PUBLISH with DUP, or PUBREL once PUBREC came; but
 * only as many as the client's new window, the rest as it opens. */
void mqtt_resend_in_flight(link_t *link)
{
    sb_mqtt_session_t *session = link->session;
    sb_mqtt_session_fit_window(session, window_of(link));
    size_t count = sb_mqtt_session_in_flight(session), i = 0;
    uint16_t *ids = malloc((count ? count : 1) * sizeof *ids);
    for (sb_mqtt_message_t *message = zlistx_first(session->in_flight); message;
         message = zlistx_next(session->in_flight))
        ids[i++] = message->packet_id;
    for (i = 0; i < count; i++) {   /* by id: giving up on one changes the list */
        sb_mqtt_message_t *message = sb_mqtt_session_find(session, ids[i]);
        if (message->released)
            mqtt_send_ack(link, SB_MQTT_PUBREL, message->packet_id, 0);
        else if (!send_publish(link, message))
            give_up(link, message);
    }
    free(ids);
}
