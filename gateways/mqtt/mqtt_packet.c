/* mqtt_packet.c — the names of MQTT's packet types and reason codes, the
 * 3.1.1 mappings of v5 reason codes, and the string, topic name and topic
 * filter rules (MQTT 5.0 §1.5.4, §4.7) the decoder applies. */
#include "mqtt_codec.h"
#include "utf8.h"

const char *sb_mqtt_type_name(int type)
{
    static const char *const names[] = {
        "?", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
        "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
    };
    return type >= 1 && type <= 15 ? names[type] : "?";
}

/* Which packets may carry each reason code (v5 §2.4, Table 2-6). */
#define CONNACK SB_MQTT_IN(SB_MQTT_CONNACK)
#define ACKS (SB_MQTT_IN(SB_MQTT_PUBACK) | SB_MQTT_IN(SB_MQTT_PUBREC))
#define RELEASES (SB_MQTT_IN(SB_MQTT_PUBREL) | SB_MQTT_IN(SB_MQTT_PUBCOMP))
#define SUBACK SB_MQTT_IN(SB_MQTT_SUBACK)
#define UNSUBACK SB_MQTT_IN(SB_MQTT_UNSUBACK)
#define DISCONNECT SB_MQTT_IN(SB_MQTT_DISCONNECT)
#define AUTH SB_MQTT_IN(SB_MQTT_AUTH)

static const struct {
    uint8_t code;
    const char *name;
    uint16_t packets;
} s_reasons[] = {
    { 0x00, "Success", CONNACK | ACKS | RELEASES | SUBACK | UNSUBACK | DISCONNECT | AUTH },
    { 0x01, "Granted QoS 1", SUBACK },
    { 0x02, "Granted QoS 2", SUBACK },
    { 0x04, "Disconnect with Will Message", DISCONNECT },
    { 0x10, "No matching subscribers", ACKS },
    { 0x11, "No subscription existed", UNSUBACK },
    { 0x18, "Continue authentication", AUTH },
    { 0x19, "Re-authenticate", AUTH },
    { 0x80, "Unspecified error", CONNACK | ACKS | SUBACK | UNSUBACK | DISCONNECT },
    { 0x81, "Malformed Packet", CONNACK | DISCONNECT },
    { 0x82, "Protocol Error", CONNACK | DISCONNECT },
    { 0x83, "Implementation specific error", CONNACK | ACKS | SUBACK | UNSUBACK | DISCONNECT },
    { 0x84, "Unsupported Protocol Version", CONNACK },
    { 0x85, "Client Identifier not valid", CONNACK },
    { 0x86, "Bad User Name or Password", CONNACK },
    { 0x87, "Not authorized", CONNACK | ACKS | SUBACK | UNSUBACK | DISCONNECT },
    { 0x88, "Server unavailable", CONNACK },
    { 0x89, "Server busy", CONNACK | DISCONNECT },
    { 0x8A, "Banned", CONNACK },
    { 0x8B, "Server shutting down", DISCONNECT },
    { 0x8C, "Bad authentication method", CONNACK | DISCONNECT },
    { 0x8D, "Keep Alive timeout", DISCONNECT },
    { 0x8E, "Session taken over", DISCONNECT },
    { 0x8F, "Topic Filter invalid", SUBACK | UNSUBACK | DISCONNECT },
    { 0x90, "Topic Name invalid", CONNACK | ACKS | DISCONNECT },
    { 0x91, "Packet Identifier in use", ACKS | SUBACK | UNSUBACK },
    { 0x92, "Packet Identifier not found", RELEASES },
    { 0x93, "Receive Maximum exceeded", DISCONNECT },
    { 0x94, "Topic Alias invalid", DISCONNECT },
    { 0x95, "Packet too large", CONNACK | DISCONNECT },
    { 0x96, "Message rate too high", DISCONNECT },
    { 0x97, "Quota exceeded", CONNACK | ACKS | SUBACK | DISCONNECT },
    { 0x98, "Administrative action", DISCONNECT },
    { 0x99, "Payload format invalid", CONNACK | ACKS | DISCONNECT },
    { 0x9A, "Retain not supported", CONNACK | DISCONNECT },
    { 0x9B, "QoS not supported", CONNACK | DISCONNECT },
    { 0x9C, "Use another server", CONNACK | DISCONNECT },
    { 0x9D, "Server moved", CONNACK | DISCONNECT },
    { 0x9E, "Shared Subscriptions not supported", SUBACK | DISCONNECT },
    { 0x9F, "Connection rate exceeded", CONNACK | DISCONNECT },
    { 0xA0, "Maximum connect time", DISCONNECT },
    { 0xA1, "Subscription Identifiers not supported", SUBACK | DISCONNECT },
    { 0xA2, "Wildcard Subscriptions not supported", SUBACK | DISCONNECT },
};

#define REASON_COUNT (sizeof s_reasons / sizeof s_reasons[0])

const char *sb_mqtt_reason_name(int reason)
{
    for (size_t i = 0; i < REASON_COUNT; i++)
        if (s_reasons[i].code == reason)
            return s_reasons[i].name;
    return NULL;
}

bool sb_mqtt_reason_allowed(int reason, int type)
{
    for (size_t i = 0; i < REASON_COUNT; i++)
        if (s_reasons[i].code == reason)
            return type >= 1 && type <= 15 && (s_reasons[i].packets & SB_MQTT_IN(type));
    return false;
}

uint8_t sb_mqtt_reason_to_v3_connack(int reason)
{
    switch (reason) {
    case SB_MQTT_RC_SUCCESS:
        return 0;
    case SB_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
        return 1;
    case SB_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID:
        return 2;
    case SB_MQTT_RC_BAD_USER_NAME_OR_PASSWORD:
        return 4;
    case SB_MQTT_RC_NOT_AUTHORIZED:
    case SB_MQTT_RC_BANNED:
    case SB_MQTT_RC_BAD_AUTHENTICATION_METHOD:
        return 5;
    default:
        return 3;
    }
}

uint8_t sb_mqtt_reason_to_v3_suback(int reason)
{
    return reason >= 0 && reason <= 2 ? (uint8_t) reason : 0x80;
}

/* The code point at s (a well-formed sequence of `length` bytes). */
static uint32_t code_point(const unsigned char *s, size_t length)
{
    static const unsigned char lead_mask[] = { 0, 0x7F, 0x1F, 0x0F, 0x07 };
    uint32_t c = s[0] & lead_mask[length];
    for (size_t i = 1; i < length; i++)
        c = c << 6 | (s[i] & 0x3F);
    return c;
}

static size_t sequence_length(unsigned char lead)
{
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

static bool is_disallowed(uint32_t c)
{
    return c <= 0x1F || (c >= 0x7F && c <= 0x9F) || (c >= 0xFDD0 && c <= 0xFDEF)
        || (c & 0xFFFE) == 0xFFFE;
}

bool sb_mqtt_string_is_valid(const char *data, size_t length)
{
    if (length > 0xFFFF || !sb_utf8_is_valid(data, length))
        return false;
    const unsigned char *s = (const unsigned char *) data;
    for (size_t i = 0; i < length;) {
        size_t step = sequence_length(s[i]);
        if (is_disallowed(code_point(s + i, step)))
            return false;
        i += step;
    }
    return true;
}

bool sb_mqtt_topic_name_is_valid(const char *data, size_t length)
{
    if (length == 0 || !sb_mqtt_string_is_valid(data, length))
        return false;
    return !memchr(data, '+', length) && !memchr(data, '#', length);
}

bool sb_mqtt_topic_filter_is_valid(const char *data, size_t length)
{
    if (length == 0 || !sb_mqtt_string_is_valid(data, length))
        return false;
    size_t level_start = 0;
    for (size_t i = 0; i < length; i++) {
        char c = data[i];
        if (c == '/') {
            level_start = i + 1;
            continue;
        }
        if (c != '+' && c != '#')
            continue;
        bool alone = i == level_start && (i + 1 == length || data[i + 1] == '/');
        if (!alone || (c == '#' && i + 1 != length))
            return false;
    }
    return true;
}
