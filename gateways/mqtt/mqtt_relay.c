/* mqtt_relay.c — MQTT 5 properties through the hub (see mqtt_relay.h). */
#include "mqtt_relay.h"

#include <stdlib.h>
#include <string.h>

#include "hex.h"

/* The properties a publish hands on to its subscribers (MQTT 5.0 §3.3.2.3). */
static const sb_mqtt_property_id_t s_relayed[] = {
    SB_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, SB_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
    SB_MQTT_PROP_CONTENT_TYPE, SB_MQTT_PROP_RESPONSE_TOPIC, SB_MQTT_PROP_CORRELATION_DATA,
};
#define RELAYED_COUNT (sizeof s_relayed / sizeof s_relayed[0])

void sb_mqtt_relay_apply(const sb_mqtt_properties_t *from, sb_mqtt_properties_t *to)
{
    for (size_t i = 0; i < RELAYED_COUNT; i++)
        if (sb_mqtt_has(from, s_relayed[i]))
            sb_mqtt_mark(to, s_relayed[i]);
    to->payload_format_indicator = from->payload_format_indicator;
    to->message_expiry_interval = from->message_expiry_interval;
    to->content_type = from->content_type;
    to->response_topic = from->response_topic;
    to->correlation_data = from->correlation_data;
    to->user_properties = from->user_properties;
    to->user_property_count = from->user_property_count;
}

uint32_t sb_mqtt_relay_expiry(const sb_mqtt_properties_t *properties)
{
    return sb_mqtt_has(properties, SB_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL)
               ? properties->message_expiry_interval : 0;
}

char *sb_mqtt_relay_encode(const sb_mqtt_properties_t *properties)
{
    sb_mqtt_packet_t packet = { .type = SB_MQTT_PUBLISH };
    packet.u.publish.topic = sb_mqtt_str("r");
    sb_mqtt_relay_apply(properties, &packet.u.publish.properties);
    if (!packet.u.publish.properties.present && !properties->user_property_count)
        return NULL;
    sb_mqtt_buffer_t buffer;
    sb_mqtt_buffer_init(&buffer);
    int length = sb_mqtt_encode(&packet, SB_MQTT_V5, 0, &buffer);
    char *hex = length > 0 ? malloc(2 * (size_t) length + 1) : NULL;
    if (hex)
        sb_hex_encode(buffer.data, (size_t) length, hex);
    sb_mqtt_buffer_release(&buffer);
    return hex;
}

sb_mqtt_packet_t *sb_mqtt_relay_decode(const char *text)
{
    size_t length = strlen(text);
    if (length % 2)
        return NULL;
    uint8_t *bytes = malloc(length / 2 + 1);
    if (!bytes || !sb_hex_decode(text, length / 2, bytes)) {
        free(bytes);
        return NULL;
    }
    sb_mqtt_error_t error;
    sb_mqtt_packet_t *packet = sb_mqtt_decode_from_server(bytes, length / 2, SB_MQTT_V5, &error);
    free(bytes);
    if (packet && packet->type != SB_MQTT_PUBLISH)
        sb_mqtt_packet_destroy(&packet);
    return packet;
}
