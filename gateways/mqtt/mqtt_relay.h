/* mqtt_relay.h — the MQTT 5 properties of a PUBLISH that the hub carries
 * from publisher to subscribers (the envelope's `mqtt`): Payload Format
 * Indicator, Message Expiry Interval, Content Type, Response Topic,
 * Correlation Data and User Properties. They travel as the hex of a
 * property-only PUBLISH, written and read by the codec, so no second
 * encoding of MQTT properties exists. */
#ifndef SB_MQTT_RELAY_H
#define SB_MQTT_RELAY_H

#include "mqtt_packet.h"

/* The hex text for `properties`; NULL when none of them is there. */
char *sb_mqtt_relay_encode(const sb_mqtt_properties_t *properties);

/* The packet whose properties `text` carries (free with
 * sb_mqtt_packet_destroy); NULL when `text` is no such thing. */
sb_mqtt_packet_t *sb_mqtt_relay_decode(const char *text);

/* Copies the relayed properties of `from` into `to` (pointers into `from`). */
void sb_mqtt_relay_apply(const sb_mqtt_properties_t *from, sb_mqtt_properties_t *to);

/* The Message Expiry Interval among `properties`, in seconds; 0 when absent
 * (the envelope's `exp`: the broker ends a retained value with it). */
uint32_t sb_mqtt_relay_expiry(const sb_mqtt_properties_t *properties);

#endif
