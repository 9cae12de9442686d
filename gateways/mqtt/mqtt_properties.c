/* mqtt_properties.c — MQTT 5.0 properties (§2.2.2): one table says, for
 * every property, its name, its data type, where it lives in
 * sb_mqtt_properties_t and which packets may carry it; reading and
 * writing a property block are both driven by it. */
#include <stddef.h>

#include "mqtt_codec.h"

typedef enum { T_BOOL, T_U16, T_U32, T_VARINT, T_STRING, T_BINARY, T_PAIR } value_type_t;

typedef struct {
    uint8_t id;
    uint8_t type;              /* value_type_t; every byte property is 0 or 1 */
    bool nonzero;              /* 0 is a Protocol Error */
    uint16_t packets;          /* SB_MQTT_IN(...) bits */
    size_t offset;             /* of the field in sb_mqtt_properties_t */
    const char *name;
} property_t;

#define IN SB_MQTT_IN
#define MESSAGE (SB_MQTT_IN_WILL | IN(SB_MQTT_PUBLISH))
#define ACKS (IN(SB_MQTT_PUBACK) | IN(SB_MQTT_PUBREC) | IN(SB_MQTT_PUBREL) | IN(SB_MQTT_PUBCOMP))
#define ALL_PACKETS (0xFFFFu & ~IN(SB_MQTT_PINGREQ) & ~IN(SB_MQTT_PINGRESP))
#define AT(field) offsetof(sb_mqtt_properties_t, field)

static const property_t s_properties[] = {
    { SB_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, T_BOOL, false, MESSAGE, AT(payload_format_indicator),
      "Payload Format Indicator" },
    { SB_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, T_U32, false, MESSAGE, AT(message_expiry_interval),
      "Message Expiry Interval" },
    { SB_MQTT_PROP_CONTENT_TYPE, T_STRING, false, MESSAGE, AT(content_type), "Content Type" },
    { SB_MQTT_PROP_RESPONSE_TOPIC, T_STRING, false, MESSAGE, AT(response_topic), "Response Topic" },
    { SB_MQTT_PROP_CORRELATION_DATA, T_BINARY, false, MESSAGE, AT(correlation_data),
      "Correlation Data" },
    { SB_MQTT_PROP_SUBSCRIPTION_IDENTIFIER, T_VARINT, true, IN(SB_MQTT_PUBLISH) | IN(SB_MQTT_SUBSCRIBE),
      0, "Subscription Identifier" },
    { SB_MQTT_PROP_SESSION_EXPIRY_INTERVAL, T_U32, false,
      IN(SB_MQTT_CONNECT) | IN(SB_MQTT_CONNACK) | IN(SB_MQTT_DISCONNECT), AT(session_expiry_interval),
      "Session Expiry Interval" },
    { SB_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER, T_STRING, false, IN(SB_MQTT_CONNACK),
      AT(assigned_client_identifier), "Assigned Client Identifier" },
    { SB_MQTT_PROP_SERVER_KEEP_ALIVE, T_U16, false, IN(SB_MQTT_CONNACK), AT(server_keep_alive),
      "Server Keep Alive" },
    { SB_MQTT_PROP_AUTHENTICATION_METHOD, T_STRING, false,
      IN(SB_MQTT_CONNECT) | IN(SB_MQTT_CONNACK) | IN(SB_MQTT_AUTH), AT(authentication_method),
      "Authentication Method" },
    { SB_MQTT_PROP_AUTHENTICATION_DATA, T_BINARY, false,
      IN(SB_MQTT_CONNECT) | IN(SB_MQTT_CONNACK) | IN(SB_MQTT_AUTH), AT(authentication_data),
      "Authentication Data" },
    { SB_MQTT_PROP_REQUEST_PROBLEM_INFORMATION, T_BOOL, false, IN(SB_MQTT_CONNECT),
      AT(request_problem_information), "Request Problem Information" },
    { SB_MQTT_PROP_WILL_DELAY_INTERVAL, T_U32, false, SB_MQTT_IN_WILL, AT(will_delay_interval),
      "Will Delay Interval" },
    { SB_MQTT_PROP_REQUEST_RESPONSE_INFORMATION, T_BOOL, false, IN(SB_MQTT_CONNECT),
      AT(request_response_information), "Request Response Information" },
    { SB_MQTT_PROP_RESPONSE_INFORMATION, T_STRING, false, IN(SB_MQTT_CONNACK), AT(response_information),
      "Response Information" },
    { SB_MQTT_PROP_SERVER_REFERENCE, T_STRING, false, IN(SB_MQTT_CONNACK) | IN(SB_MQTT_DISCONNECT),
      AT(server_reference), "Server Reference" },
    { SB_MQTT_PROP_REASON_STRING, T_STRING, false,
      IN(SB_MQTT_CONNACK) | ACKS | IN(SB_MQTT_SUBACK) | IN(SB_MQTT_UNSUBACK) | IN(SB_MQTT_DISCONNECT)
          | IN(SB_MQTT_AUTH),
      AT(reason_string), "Reason String" },
    { SB_MQTT_PROP_RECEIVE_MAXIMUM, T_U16, true, IN(SB_MQTT_CONNECT) | IN(SB_MQTT_CONNACK),
      AT(receive_maximum), "Receive Maximum" },
    { SB_MQTT_PROP_TOPIC_ALIAS_MAXIMUM, T_U16, false, IN(SB_MQTT_CONNECT) | IN(SB_MQTT_CONNACK),
      AT(topic_alias_maximum), "Topic Alias Maximum" },
    /* Alias 0 is refused by the PUBLISH decoder, with its own reason code. */
    { SB_MQTT_PROP_TOPIC_ALIAS, T_U16, false, IN(SB_MQTT_PUBLISH), AT(topic_alias), "Topic Alias" },
    { SB_MQTT_PROP_MAXIMUM_QOS, T_BOOL, false, IN(SB_MQTT_CONNACK), AT(maximum_qos), "Maximum QoS" },
    { SB_MQTT_PROP_RETAIN_AVAILABLE, T_BOOL, false, IN(SB_MQTT_CONNACK), AT(retain_available),
      "Retain Available" },
    { SB_MQTT_PROP_USER_PROPERTY, T_PAIR, false, ALL_PACKETS | SB_MQTT_IN_WILL, 0, "User Property" },
    { SB_MQTT_PROP_MAXIMUM_PACKET_SIZE, T_U32, true, IN(SB_MQTT_CONNECT) | IN(SB_MQTT_CONNACK),
      AT(maximum_packet_size), "Maximum Packet Size" },
    { SB_MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE, T_BOOL, false, IN(SB_MQTT_CONNACK),
      AT(wildcard_subscription_available), "Wildcard Subscription Available" },
    { SB_MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE, T_BOOL, false, IN(SB_MQTT_CONNACK),
      AT(subscription_identifier_available), "Subscription Identifier Available" },
    { SB_MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE, T_BOOL, false, IN(SB_MQTT_CONNACK),
      AT(shared_subscription_available), "Shared Subscription Available" },
};

#define PROPERTY_COUNT (sizeof s_properties / sizeof s_properties[0])

static const property_t *find(int id)
{
    for (size_t i = 0; i < PROPERTY_COUNT; i++)
        if (s_properties[i].id == id)
            return &s_properties[i];
    return NULL;
}

const char *sb_mqtt_property_name(int id)
{
    const property_t *property = find(id);
    return property ? property->name : NULL;
}

/* The field of a fixed-place property. */
#define FIELD(props, property, type) ((type *) ((char *) (props) + (property)->offset))
#define CFIELD(props, property, type) ((const type *) ((const char *) (props) + (property)->offset))

/* Decoding ----------------------------------------------------------- */

typedef struct {
    sb_mqtt_properties_t *props;
    void *users;
    size_t user_capacity;
    void *ids;
    size_t id_capacity;
} collector_t;

static bool read_repeated(sb_mqtt_reader_t *r, collector_t *c, const property_t *property)
{
    sb_mqtt_properties_t *props = c->props;
    if (property->id == SB_MQTT_PROP_USER_PROPERTY) {
        sb_mqtt_user_property_t *pair = sb_mqtt_push(r, &c->users, &props->user_property_count,
                                                     &c->user_capacity, sizeof *pair);
        props->user_properties = c->users;
        return sb_mqtt_read_string(r, &pair->name, "bad UTF-8 in a User Property")
            && sb_mqtt_read_string(r, &pair->value, "bad UTF-8 in a User Property");
    }
    uint32_t id;
    if (!sb_mqtt_read_varint(r, &id))
        return false;
    if (id == 0)
        return sb_mqtt_fail(r, SB_MQTT_RC_PROTOCOL_ERROR, "a Subscription Identifier of 0");
    uint32_t *slot = sb_mqtt_push(r, &c->ids, &props->subscription_id_count, &c->id_capacity,
                                  sizeof *slot);
    props->subscription_ids = c->ids;
    *slot = id;
    return true;
}

static bool read_value(sb_mqtt_reader_t *r, sb_mqtt_properties_t *props, const property_t *property)
{
    uint32_t number = 1;
    switch (property->type) {
    case T_BOOL: {
        uint8_t byte = 0;
        if (!sb_mqtt_read_byte(r, &byte))
            return false;
        if (byte > 1)
            return sb_mqtt_fail(r, SB_MQTT_RC_PROTOCOL_ERROR, "a property that must be 0 or 1");
        *FIELD(props, property, uint8_t) = byte;
        number = byte;
        break;
    }
    case T_U16: {
        uint16_t value = 0;
        if (!sb_mqtt_read_u16(r, &value))
            return false;
        *FIELD(props, property, uint16_t) = value;
        number = value;
        break;
    }
    case T_U32:
        if (!sb_mqtt_read_u32(r, FIELD(props, property, uint32_t)))
            return false;
        number = *FIELD(props, property, uint32_t);
        break;
    case T_STRING:
        return sb_mqtt_read_string(r, FIELD(props, property, sb_mqtt_str_t), "bad UTF-8 in a property");
    case T_BINARY:
        return sb_mqtt_read_binary(r, FIELD(props, property, sb_mqtt_str_t), "a property overruns the packet");
    }
    if (property->nonzero && number == 0)
        return sb_mqtt_fail(r, SB_MQTT_RC_PROTOCOL_ERROR, "a property of 0 where 0 is not allowed");
    return true;
}

bool sb_mqtt_read_properties(sb_mqtt_reader_t *r, int type, sb_mqtt_properties_t *props)
{
    uint32_t length;
    if (!sb_mqtt_read_varint(r, &length))
        return false;
    if (length > r->left)
        return sb_mqtt_fail(r, SB_MQTT_RC_MALFORMED_PACKET, "the Property Length overruns the packet");
    /* Read the block on its own, so no property runs past its end. */
    sb_mqtt_reader_t block = { r->p, length, r->arena, r->error };
    r->p += length;
    r->left -= length;
    collector_t collector = { props, NULL, 0, NULL, 0 };
    uint16_t allowed = type == 0 ? SB_MQTT_IN_WILL : SB_MQTT_IN(type);
    while (block.left > 0) {
        uint32_t id;
        if (!sb_mqtt_read_varint(&block, &id))
            return false;
        const property_t *property = id < 64 ? find((int) id) : NULL;
        if (!property || !(property->packets & allowed))
            return sb_mqtt_fail(r, SB_MQTT_RC_MALFORMED_PACKET, "a property this packet may not carry");
        bool ok;
        if (property->type == T_PAIR || property->id == SB_MQTT_PROP_SUBSCRIPTION_IDENTIFIER)
            ok = read_repeated(&block, &collector, property);
        else if (props->present >> id & 1)
            return sb_mqtt_fail(r, SB_MQTT_RC_PROTOCOL_ERROR, "a property given twice");
        else
            ok = read_value(&block, props, property);
        if (!ok)
            return false;
        props->present |= (uint64_t) 1 << id;
    }
    if (sb_mqtt_has(props, SB_MQTT_PROP_AUTHENTICATION_DATA)
        && !sb_mqtt_has(props, SB_MQTT_PROP_AUTHENTICATION_METHOD))
        return sb_mqtt_fail(r, SB_MQTT_RC_PROTOCOL_ERROR, "Authentication Data without a method");
    return r->error->reason == 0;
}

/* Encoding ----------------------------------------------------------- */

static void put_value(sb_mqtt_writer_t *w, const sb_mqtt_properties_t *props, const property_t *property)
{
    switch (property->type) {
    case T_BOOL:
        sb_mqtt_put_byte(w, *CFIELD(props, property, uint8_t));
        break;
    case T_U16:
        sb_mqtt_put_u16(w, *CFIELD(props, property, uint16_t));
        break;
    case T_U32:
        sb_mqtt_put_u32(w, *CFIELD(props, property, uint32_t));
        break;
    case T_STRING:
    case T_BINARY:
        sb_mqtt_put_string(w, *CFIELD(props, property, sb_mqtt_str_t));
        break;
    }
}

static void put_all(sb_mqtt_writer_t *w, uint16_t allowed, const sb_mqtt_properties_t *props)
{
    for (size_t i = 0; i < PROPERTY_COUNT; i++) {
        const property_t *property = &s_properties[i];
        if (!sb_mqtt_has(props, property->id))
            continue;
        if (!(property->packets & allowed)) {
            w->invalid = true;
            continue;
        }
        if (property->id == SB_MQTT_PROP_USER_PROPERTY) {
            for (size_t k = 0; k < props->user_property_count; k++) {
                sb_mqtt_put_byte(w, property->id);
                sb_mqtt_put_string(w, props->user_properties[k].name);
                sb_mqtt_put_string(w, props->user_properties[k].value);
            }
        }
        else if (property->id == SB_MQTT_PROP_SUBSCRIPTION_IDENTIFIER) {
            for (size_t k = 0; k < props->subscription_id_count; k++) {
                uint32_t id = props->subscription_ids[k];
                if (id == 0 || id > SB_MQTT_MAX_SUBSCRIPTION_ID)
                    w->invalid = true;
                sb_mqtt_put_byte(w, property->id);
                sb_mqtt_put_varint(w, id);
            }
        }
        else {
            sb_mqtt_put_byte(w, property->id);
            put_value(w, props, property);
        }
    }
}

void sb_mqtt_put_properties(sb_mqtt_writer_t *w, int type, const sb_mqtt_properties_t *props)
{
    uint16_t allowed = type == 0 ? SB_MQTT_IN_WILL : SB_MQTT_IN(type);
    sb_mqtt_writer_t counter = { NULL, 0, false };
    put_all(&counter, allowed, props);
    if (counter.invalid)
        w->invalid = true;
    sb_mqtt_put_varint(w, (uint32_t) (counter.length > SB_MQTT_MAX_REMAINING_LENGTH
                                          ? SB_MQTT_MAX_REMAINING_LENGTH + 1
                                          : counter.length));
    put_all(w, allowed, props);
}
