/* mqtt_decode.c — decoding whole MQTT packets into sb_mqtt_packet_t, with
 * every check one packet alone allows (MQTT 3.1.1 §3, MQTT 5.0 §3), each
 * refusal carrying the v5 reason code the gateway closes with. */
#include <stdalign.h>
#include <stdlib.h>

#include "mqtt_codec.h"

/* One allocation holds the packet, its arena and the arena's first room. */
typedef struct {
    sb_mqtt_packet_t packet;   /* first, so the packet's address is the box's */
    sb_mqtt_arena_t arena;
    alignas(max_align_t) unsigned char room[];
} packet_box_t;

/* Room for the NULs of the strings and a few small arrays. */
#define ROOM_EXTRA 256

typedef struct {
    sb_mqtt_version_t version;
    bool from_client;
} context_t;

#define MALFORMED SB_MQTT_RC_MALFORMED_PACKET
#define PROTOCOL SB_MQTT_RC_PROTOCOL_ERROR

/* 3.1.1 SUBACK return codes. */
static const char s_v3_suback_codes[] = "\x00\x01\x02\x80";

static bool read_reason(sb_mqtt_reader_t *r, int type, uint8_t *reason)
{
    if (!sb_mqtt_read_byte(r, reason))
        return false;
    if (!sb_mqtt_reason_allowed(*reason, type))
        return sb_mqtt_fail(r, PROTOCOL, "a reason code this packet may not carry");
    return true;
}

static bool read_packet_id(sb_mqtt_reader_t *r, uint16_t *id)
{
    if (!sb_mqtt_read_u16(r, id))
        return false;
    return *id != 0 || sb_mqtt_fail(r, PROTOCOL, "a Packet Identifier of 0");
}

static bool str_equals(sb_mqtt_str_t s, const char *text)
{
    return s.length == strlen(text) && memcmp(s.data, text, s.length) == 0;
}

static bool has_wildcard(sb_mqtt_str_t s)
{
    return memchr(s.data, '+', s.length) || memchr(s.data, '#', s.length);
}

/* Properties of a message (a PUBLISH or a will) that need more than the table. */
static bool check_message_properties(sb_mqtt_reader_t *r, const sb_mqtt_properties_t *props)
{
    if (sb_mqtt_has(props, SB_MQTT_PROP_RESPONSE_TOPIC)
        && !sb_mqtt_topic_name_is_valid(props->response_topic.data, props->response_topic.length))
        return sb_mqtt_fail(r, PROTOCOL, "a Response Topic that is no topic name");
    return true;
}

/* CONNECT ------------------------------------------------------------ */

static bool read_protocol(sb_mqtt_reader_t *r, sb_mqtt_connect_t *c)
{
    sb_mqtt_str_t name;
    uint8_t level;
    if (!sb_mqtt_read_string(r, &name, "bad protocol name") || !sb_mqtt_read_byte(r, &level))
        return false;
    bool mqtt = str_equals(name, "MQTT"), mqisdp = str_equals(name, "MQIsdp");
    if (!mqtt && !mqisdp)
        return sb_mqtt_fail(r, PROTOCOL, "not the MQTT protocol");
    if ((mqtt && level != SB_MQTT_V311 && level != SB_MQTT_V5) || (mqisdp && level != SB_MQTT_V31))
        return sb_mqtt_fail(r, SB_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, "an unsupported protocol level");
    c->version = (sb_mqtt_version_t) level;
    return true;
}

static bool read_connect_flags(sb_mqtt_reader_t *r, sb_mqtt_connect_t *c)
{
    uint8_t flags;
    if (!sb_mqtt_read_byte(r, &flags))
        return false;
    if (flags & 0x01)
        return sb_mqtt_fail(r, MALFORMED, "the reserved CONNECT flag is set");
    c->clean_start = flags & 0x02;
    c->will = flags & 0x04;
    c->will_qos = (flags >> 3) & 3;
    c->will_retain = flags & 0x20;
    c->has_password = flags & 0x40;
    c->has_username = flags & 0x80;
    if (c->will_qos == 3)
        return sb_mqtt_fail(r, MALFORMED, "a will QoS of 3");
    if (!c->will && (c->will_qos || c->will_retain))
        return sb_mqtt_fail(r, MALFORMED, "will QoS or retain without a will");
    if (c->version != SB_MQTT_V5 && c->has_password && !c->has_username)
        return sb_mqtt_fail(r, MALFORMED, "a password without a user name");
    return true;
}

static bool check_client_id(sb_mqtt_reader_t *r, const sb_mqtt_connect_t *c)
{
    size_t length = c->client_id.length;
    /* 3.1 wants 1..23 bytes; 3.1.1 an id unless the session is clean. */
    if ((c->version == SB_MQTT_V31 && (length == 0 || length > 23))
        || (c->version == SB_MQTT_V311 && length == 0 && !c->clean_start))
        return sb_mqtt_fail(r, SB_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID, "the client id is refused");
    return true;
}

static bool read_will(sb_mqtt_reader_t *r, sb_mqtt_connect_t *c)
{
    if (c->version == SB_MQTT_V5
        && (!sb_mqtt_read_properties(r, 0, &c->will_properties)
            || !check_message_properties(r, &c->will_properties)))
        return false;
    if (!sb_mqtt_read_string(r, &c->will_topic, "bad UTF-8 in the will topic"))
        return false;
    if (c->will_topic.length == 0 || has_wildcard(c->will_topic))
        return sb_mqtt_fail(r, SB_MQTT_RC_TOPIC_NAME_INVALID, "the will topic is no topic name");
    return sb_mqtt_read_binary(r, &c->will_payload, "the will payload overruns the packet");
}

static bool decode_connect(sb_mqtt_reader_t *r, sb_mqtt_connect_t *c)
{
    if (!read_protocol(r, c) || !read_connect_flags(r, c) || !sb_mqtt_read_u16(r, &c->keep_alive))
        return false;
    if (c->version == SB_MQTT_V5 && !sb_mqtt_read_properties(r, SB_MQTT_CONNECT, &c->properties))
        return false;
    if (!sb_mqtt_read_string(r, &c->client_id, "bad UTF-8 in the client id") || !check_client_id(r, c))
        return false;
    if (c->will && !read_will(r, c))
        return false;
    if (c->has_username && !sb_mqtt_read_string(r, &c->username, "bad UTF-8 in the user name"))
        return false;
    return !c->has_password || sb_mqtt_read_binary(r, &c->password, "the password overruns the packet");
}

/* Which CONNACK may answer a refused CONNECT: v5 has a code for every
 * refusal; 3.x only for a protocol level or a client id. */
static uint8_t connack_version(uint8_t reason, sb_mqtt_version_t version)
{
    if (version == SB_MQTT_V5)
        return SB_MQTT_V5;
    if (version != 0)
        return reason == SB_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID ? (uint8_t) version : 0;
    return reason == SB_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION ? SB_MQTT_V311 : 0;
}

/* PUBLISH ------------------------------------------------------------ */

static bool decode_publish(sb_mqtt_reader_t *r, sb_mqtt_packet_t *p, const context_t *cx)
{
    sb_mqtt_publish_t *m = &p->u.publish;
    m->dup = p->flags & 0x08;
    m->qos = (p->flags >> 1) & 3;
    m->retain = p->flags & 0x01;
    if (m->qos == 3)
        return sb_mqtt_fail(r, MALFORMED, "a PUBLISH with QoS 3");
    if (m->qos == 0 && m->dup)
        return sb_mqtt_fail(r, MALFORMED, "DUP set on a QoS 0 PUBLISH");
    if (!sb_mqtt_read_string(r, &m->topic, "bad UTF-8 in the topic name"))
        return false;
    if (m->qos > 0 && !read_packet_id(r, &m->packet_id))
        return false;
    sb_mqtt_properties_t *props = &m->properties;
    if (cx->version == SB_MQTT_V5) {
        if (!sb_mqtt_read_properties(r, SB_MQTT_PUBLISH, props) || !check_message_properties(r, props))
            return false;
        if (cx->from_client && sb_mqtt_has(props, SB_MQTT_PROP_SUBSCRIPTION_IDENTIFIER))
            return sb_mqtt_fail(r, PROTOCOL, "a Subscription Identifier from a client");
        if (sb_mqtt_has(props, SB_MQTT_PROP_TOPIC_ALIAS) && props->topic_alias == 0)
            return sb_mqtt_fail(r, SB_MQTT_RC_TOPIC_ALIAS_INVALID, "a Topic Alias of 0");
    }
    if (m->topic.length == 0 && !sb_mqtt_has(props, SB_MQTT_PROP_TOPIC_ALIAS))
        return sb_mqtt_fail(r, PROTOCOL, "an empty topic name without a Topic Alias");
    if (has_wildcard(m->topic))
        return sb_mqtt_fail(r, SB_MQTT_RC_TOPIC_NAME_INVALID, "a wildcard in a topic name");
    return sb_mqtt_read_rest(r, &m->payload);
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT, AUTH: the v5 short forms
 * leave out the properties, then the reason code. */
static bool read_reason_and_properties(sb_mqtt_reader_t *r, int type, uint8_t *reason,
                                       sb_mqtt_properties_t *props)
{
    if (r->left == 0)
        return true;
    if (!read_reason(r, type, reason))
        return false;
    return r->left == 0 || sb_mqtt_read_properties(r, type, props);
}

static bool decode_ack(sb_mqtt_reader_t *r, sb_mqtt_packet_t *p, const context_t *cx)
{
    sb_mqtt_ack_t *a = &p->u.ack;
    if (!read_packet_id(r, &a->packet_id))
        return false;
    if (cx->version != SB_MQTT_V5)
        return true;
    return read_reason_and_properties(r, p->type, &a->reason, &a->properties);
}

/* SUBSCRIBE, UNSUBSCRIBE --------------------------------------------- */

/* Splits "$share/GROUP/FILTER" (v5 §4.8.2) and checks the filter; a bad
 * one is answered per filter, so it only sets the item's reason. */
static void classify_filter(sb_mqtt_reader_t *r, sb_mqtt_subscription_t *item)
{
    static const char prefix[] = "$share/";
    const size_t prefix_length = sizeof prefix - 1;
    sb_mqtt_str_t f = item->filter;
    item->topic_filter = f;
    item->share_group = (sb_mqtt_str_t) { f.data + f.length, 0 };
    if (f.length >= prefix_length && memcmp(f.data, prefix, prefix_length) == 0) {
        const char *group = f.data + prefix_length;
        size_t rest = f.length - prefix_length;
        const char *slash = memchr(group, '/', rest);
        size_t group_length = slash ? (size_t) (slash - group) : rest;
        if (!slash || group_length == 0 || memchr(group, '+', group_length) || memchr(group, '#', group_length)) {
            item->reason = SB_MQTT_RC_TOPIC_FILTER_INVALID;
            return;
        }
        item->share_group = sb_mqtt_arena_copy(r->arena, group, group_length);
        item->topic_filter = (sb_mqtt_str_t) { slash + 1, rest - group_length - 1 };
    }
    if (!sb_mqtt_topic_filter_is_valid(item->topic_filter.data, item->topic_filter.length))
        item->reason = SB_MQTT_RC_TOPIC_FILTER_INVALID;
}

static bool read_options(sb_mqtt_reader_t *r, sb_mqtt_subscription_t *item, sb_mqtt_version_t version)
{
    uint8_t options;
    if (!sb_mqtt_read_byte(r, &options))
        return false;
    if (options & (version == SB_MQTT_V5 ? 0xC0 : 0xFC))
        return sb_mqtt_fail(r, MALFORMED, "reserved subscription option bits are set");
    item->qos = options & 3;
    item->no_local = options & 0x04;
    item->retain_as_published = options & 0x08;
    item->retain_handling = (options >> 4) & 3;
    if (item->qos == 3)
        return sb_mqtt_fail(r, MALFORMED, "a subscription with QoS 3");
    if (item->retain_handling == 3)
        return sb_mqtt_fail(r, PROTOCOL, "a Retain Handling of 3");
    if (item->no_local && item->share_group.length > 0)
        return sb_mqtt_fail(r, PROTOCOL, "No Local on a shared subscription");
    return true;
}

static bool decode_subscribe(sb_mqtt_reader_t *r, sb_mqtt_packet_t *p, const context_t *cx)
{
    sb_mqtt_subscribe_t *s = &p->u.subscribe;
    bool subscribe = p->type == SB_MQTT_SUBSCRIBE;
    if (!read_packet_id(r, &s->packet_id))
        return false;
    if (cx->version == SB_MQTT_V5) {
        if (!sb_mqtt_read_properties(r, p->type, &s->properties))
            return false;
        if (s->properties.subscription_id_count > 1)
            return sb_mqtt_fail(r, PROTOCOL, "a property given twice");
    }
    void *items = NULL;
    size_t capacity = 0;
    while (r->left > 0) {
        sb_mqtt_subscription_t *item = sb_mqtt_push(r, &items, &s->count, &capacity, sizeof *item);
        s->items = items;
        if (!sb_mqtt_read_string(r, &item->filter, "bad UTF-8 in a topic filter"))
            return false;
        classify_filter(r, item);
        if (subscribe && !read_options(r, item, cx->version))
            return false;
    }
    if (s->count == 0)
        return sb_mqtt_fail(r, PROTOCOL, subscribe ? "a SUBSCRIBE without topic filters"
                                                   : "an UNSUBSCRIBE without topic filters");
    return true;
}

/* Server to client --------------------------------------------------- */

/* 3.1.1 CONNACK return codes 0..5 as the v5 reason codes the encoder takes. */
static bool read_v3_return_code(sb_mqtt_reader_t *r, uint8_t *reason)
{
    static const uint8_t v5[] = { SB_MQTT_RC_SUCCESS, SB_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
                                  SB_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID, SB_MQTT_RC_SERVER_UNAVAILABLE,
                                  SB_MQTT_RC_BAD_USER_NAME_OR_PASSWORD, SB_MQTT_RC_NOT_AUTHORIZED };
    uint8_t code;
    if (!sb_mqtt_read_byte(r, &code))
        return false;
    if (code >= sizeof v5)
        return sb_mqtt_fail(r, PROTOCOL, "a reserved CONNACK return code");
    *reason = v5[code];
    return true;
}

static bool decode_connack(sb_mqtt_reader_t *r, sb_mqtt_packet_t *p, const context_t *cx)
{
    sb_mqtt_connack_t *c = &p->u.connack;
    uint8_t flags;
    bool v5 = cx->version == SB_MQTT_V5;
    if (!sb_mqtt_read_byte(r, &flags))
        return false;
    /* 3.1 has no Session Present flag. */
    if (flags & (cx->version == SB_MQTT_V31 ? 0xFF : 0xFE))
        return sb_mqtt_fail(r, MALFORMED, "reserved CONNACK flags are set");
    c->session_present = flags & 1;
    if (!v5)
        return read_v3_return_code(r, &c->reason);
    return read_reason(r, SB_MQTT_CONNACK, &c->reason)
        && sb_mqtt_read_properties(r, SB_MQTT_CONNACK, &c->properties);
}

static bool decode_suback(sb_mqtt_reader_t *r, sb_mqtt_packet_t *p, const context_t *cx)
{
    sb_mqtt_suback_t *s = &p->u.suback;
    if (!read_packet_id(r, &s->packet_id))
        return false;
    if (cx->version == SB_MQTT_V5 && !sb_mqtt_read_properties(r, p->type, &s->properties))
        return false;
    if (p->type == SB_MQTT_UNSUBACK && cx->version != SB_MQTT_V5)
        return true;
    sb_mqtt_str_t reasons;
    if (!sb_mqtt_read_rest(r, &reasons))
        return false;
    s->reasons = (const uint8_t *) reasons.data;
    s->count = reasons.length;
    if (s->count == 0)
        return sb_mqtt_fail(r, PROTOCOL, "an acknowledgement without reason codes");
    for (size_t i = 0; i < s->count; i++) {
        bool ok = cx->version == SB_MQTT_V5
                      ? sb_mqtt_reason_allowed(s->reasons[i], p->type)
                      : memchr(s_v3_suback_codes, s->reasons[i], sizeof s_v3_suback_codes - 1) != NULL;
        if (!ok)
            return sb_mqtt_fail(r, PROTOCOL, "a reason code this packet may not carry");
    }
    return true;
}

/* Dispatch ----------------------------------------------------------- */

static bool from_client(int type)
{
    return type == SB_MQTT_CONNECT || type == SB_MQTT_PUBLISH || (type >= SB_MQTT_PUBACK && type <= SB_MQTT_PUBCOMP)
        || type == SB_MQTT_SUBSCRIBE || type == SB_MQTT_UNSUBSCRIBE || type == SB_MQTT_PINGREQ
        || type == SB_MQTT_DISCONNECT || type == SB_MQTT_AUTH;
}

static bool from_server(int type)
{
    return type != SB_MQTT_CONNECT && type != SB_MQTT_SUBSCRIBE && type != SB_MQTT_UNSUBSCRIBE
        && type != SB_MQTT_PINGREQ;
}

static bool check_type(sb_mqtt_reader_t *r, const sb_mqtt_packet_t *p, const context_t *cx)
{
    int type = p->type;
    if (type == 0 || (type == SB_MQTT_AUTH && cx->version != SB_MQTT_V5 && cx->version != 0))
        return sb_mqtt_fail(r, MALFORMED, "a reserved packet type");
    uint8_t flags = type == SB_MQTT_PUBREL || type == SB_MQTT_SUBSCRIBE || type == SB_MQTT_UNSUBSCRIBE ? 2 : 0;
    if (type != SB_MQTT_PUBLISH && p->flags != flags)
        return sb_mqtt_fail(r, MALFORMED, "wrong fixed header flags");
    if (cx->from_client ? !from_client(type) : !from_server(type))
        return sb_mqtt_fail(r, PROTOCOL, "a packet of the other direction");
    if (cx->from_client && cx->version == 0 && type != SB_MQTT_CONNECT)
        return sb_mqtt_fail(r, PROTOCOL, "a packet before CONNECT");
    if (cx->from_client && cx->version != 0 && type == SB_MQTT_CONNECT)
        return sb_mqtt_fail(r, PROTOCOL, "a second CONNECT");
    if (type == SB_MQTT_AUTH && cx->version == 0)
        return sb_mqtt_fail(r, PROTOCOL, "AUTH before CONNECT");
    return true;
}

static bool decode_body(sb_mqtt_reader_t *r, sb_mqtt_packet_t *p, const context_t *cx)
{
    if (!check_type(r, p, cx))
        return false;
    bool v5 = cx->version == SB_MQTT_V5;
    sb_mqtt_disconnect_t *d = &p->u.disconnect;
    switch (p->type) {
    case SB_MQTT_CONNECT:
        return decode_connect(r, &p->u.connect);
    case SB_MQTT_CONNACK:
        return decode_connack(r, p, cx);
    case SB_MQTT_PUBLISH:
        return decode_publish(r, p, cx);
    case SB_MQTT_PUBACK:
    case SB_MQTT_PUBREC:
    case SB_MQTT_PUBREL:
    case SB_MQTT_PUBCOMP:
        return decode_ack(r, p, cx);
    case SB_MQTT_SUBSCRIBE:
    case SB_MQTT_UNSUBSCRIBE:
        return decode_subscribe(r, p, cx);
    case SB_MQTT_SUBACK:
    case SB_MQTT_UNSUBACK:
        return decode_suback(r, p, cx);
    case SB_MQTT_DISCONNECT:
        return !v5 || read_reason_and_properties(r, p->type, &d->reason, &d->properties);
    case SB_MQTT_AUTH:
        if (!read_reason_and_properties(r, p->type, &d->reason, &d->properties))
            return false;
        if (d->properties.present && !sb_mqtt_has(&d->properties, SB_MQTT_PROP_AUTHENTICATION_METHOD))
            return sb_mqtt_fail(r, PROTOCOL, "AUTH without an Authentication Method");
        return true;
    default:                       /* PINGREQ, PINGRESP */
        return true;
    }
}

/* The fixed header: its length, and whether the Remaining Length it
 * gives is the rest of `data`. */
static bool read_fixed_header(const uint8_t *data, size_t length, size_t *header_length,
                              sb_mqtt_error_t *error)
{
    uint32_t remaining = 0;
    size_t i = 1;
    for (;; i++) {
        if (i >= length || i > 4) {
            error->reason = MALFORMED;
            error->detail = i > 4 ? "a Remaining Length of more than 4 bytes" : "the packet ends early";
            return false;
        }
        remaining |= (uint32_t) (data[i] & 0x7F) << (7 * (i - 1));
        if (!(data[i] & 0x80))
            break;
    }
    *header_length = i + 1;
    if (remaining != length - *header_length) {
        error->reason = MALFORMED;
        error->detail = "the Remaining Length does not match the packet";
        return false;
    }
    return true;
}

static sb_mqtt_packet_t *decode(const uint8_t *data, size_t length, const context_t *cx,
                                sb_mqtt_error_t *error)
{
    *error = (sb_mqtt_error_t) { 0, NULL, 0 };
    size_t header_length;
    if (!read_fixed_header(data, length, &header_length, error))
        return NULL;
    size_t room = length + ROOM_EXTRA;
    packet_box_t *box = malloc(sizeof *box + room);
    if (!box)
        abort();
    memset(&box->packet, 0, sizeof box->packet);
    sb_mqtt_arena_init(&box->arena, box->room, room);
    sb_mqtt_packet_t *p = &box->packet;
    p->type = (sb_mqtt_type_t) (data[0] >> 4);
    p->flags = data[0] & 0x0F;
    sb_mqtt_reader_t r = { data + header_length, length - header_length, &box->arena, error };
    bool ok = decode_body(&r, p, cx);
    if (ok && r.left > 0)
        ok = sb_mqtt_fail(&r, MALFORMED, "bytes after the end of the packet");
    if (!ok) {
        if (p->type == SB_MQTT_CONNECT && cx->from_client && cx->version == 0)
            error->connack_version = connack_version(error->reason, p->u.connect.version);
        sb_mqtt_packet_destroy(&p);
    }
    return p;
}

sb_mqtt_packet_t *sb_mqtt_decode(const uint8_t *data, size_t length, sb_mqtt_version_t version,
                                 sb_mqtt_error_t *error)
{
    context_t cx = { version, true };
    return decode(data, length, &cx, error);
}

sb_mqtt_packet_t *sb_mqtt_decode_from_server(const uint8_t *data, size_t length,
                                             sb_mqtt_version_t version, sb_mqtt_error_t *error)
{
    context_t cx = { version, false };
    return decode(data, length, &cx, error);
}

void sb_mqtt_packet_destroy(sb_mqtt_packet_t **self_p)
{
    if (!*self_p)
        return;
    packet_box_t *box = (packet_box_t *) *self_p;
    sb_mqtt_arena_free(&box->arena);
    free(box);
    *self_p = NULL;
}
