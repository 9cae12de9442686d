/* mqtt_encode.c — encoding sb_mqtt_packet_t for MQTT 3.1, 3.1.1 and 5.0.
 * Each packet is measured first (the Remaining Length and Property Length
 * come before what they count), then written once into the buffer. */
#include <stdlib.h>

#include "mqtt_codec.h"

void sb_mqtt_buffer_init(sb_mqtt_buffer_t *self)
{
    *self = (sb_mqtt_buffer_t) { NULL, 0, 0, false };
}

void sb_mqtt_buffer_init_fixed(sb_mqtt_buffer_t *self, void *memory, size_t capacity)
{
    *self = (sb_mqtt_buffer_t) { memory, 0, capacity, true };
}

void sb_mqtt_buffer_clear(sb_mqtt_buffer_t *self)
{
    self->length = 0;
}

void sb_mqtt_buffer_release(sb_mqtt_buffer_t *self)
{
    if (!self->fixed) {
        free(self->data);
        sb_mqtt_buffer_init(self);
    }
    else
        self->length = 0;
}

static bool reserve(sb_mqtt_buffer_t *self, size_t more)
{
    if (self->capacity - self->length >= more)
        return true;
    if (self->fixed)
        return false;
    size_t capacity = self->capacity ? self->capacity * 2 : 256;
    if (capacity < self->length + more)
        capacity = self->length + more;
    uint8_t *data = realloc(self->data, capacity);
    if (!data)
        abort();
    self->data = data;
    self->capacity = capacity;
    return true;
}

static bool is_empty(const sb_mqtt_properties_t *props)
{
    return props->present == 0 && props->user_property_count == 0 && props->subscription_id_count == 0;
}

static const sb_mqtt_properties_t *properties_of(const sb_mqtt_packet_t *p)
{
    switch (p->type) {
    case SB_MQTT_CONNECT:
        return &p->u.connect.properties;
    case SB_MQTT_CONNACK:
        return &p->u.connack.properties;
    case SB_MQTT_PUBLISH:
        return &p->u.publish.properties;
    case SB_MQTT_PUBACK:
    case SB_MQTT_PUBREC:
    case SB_MQTT_PUBREL:
    case SB_MQTT_PUBCOMP:
        return &p->u.ack.properties;
    case SB_MQTT_SUBSCRIBE:
    case SB_MQTT_UNSUBSCRIBE:
        return &p->u.subscribe.properties;
    case SB_MQTT_SUBACK:
    case SB_MQTT_UNSUBACK:
        return &p->u.suback.properties;
    case SB_MQTT_DISCONNECT:
    case SB_MQTT_AUTH:
        return &p->u.disconnect.properties;
    default:
        return NULL;
    }
}

static void put_connect(sb_mqtt_writer_t *w, const sb_mqtt_connect_t *c, sb_mqtt_version_t v)
{
    bool v5 = v == SB_MQTT_V5;
    sb_mqtt_put_string(w, sb_mqtt_str(v == SB_MQTT_V31 ? "MQIsdp" : "MQTT"));
    sb_mqtt_put_byte(w, (uint8_t) v);
    if (c->will_qos > 2 || (!c->will && (c->will_qos || c->will_retain)))
        w->invalid = true;
    sb_mqtt_put_byte(w, (uint8_t) ((c->has_username ? 0x80 : 0) | (c->has_password ? 0x40 : 0)
                                   | (c->will_retain ? 0x20 : 0) | (c->will_qos & 3) << 3
                                   | (c->will ? 0x04 : 0) | (c->clean_start ? 0x02 : 0)));
    sb_mqtt_put_u16(w, c->keep_alive);
    if (v5)
        sb_mqtt_put_properties(w, SB_MQTT_CONNECT, &c->properties);
    sb_mqtt_put_string(w, c->client_id);
    if (c->will) {
        if (v5)
            sb_mqtt_put_properties(w, 0, &c->will_properties);
        sb_mqtt_put_string(w, c->will_topic);
        sb_mqtt_put_string(w, c->will_payload);
    }
    if (c->has_username)
        sb_mqtt_put_string(w, c->username);
    if (c->has_password)
        sb_mqtt_put_string(w, c->password);
}

static void put_publish(sb_mqtt_writer_t *w, const sb_mqtt_publish_t *m, sb_mqtt_version_t v)
{
    bool alias = v == SB_MQTT_V5 && sb_mqtt_has(&m->properties, SB_MQTT_PROP_TOPIC_ALIAS);
    if (m->qos > 2 || (m->qos > 0 && m->packet_id == 0) || (m->topic.length == 0 && !alias))
        w->invalid = true;
    sb_mqtt_put_string(w, m->topic);
    if (m->qos > 0)
        sb_mqtt_put_u16(w, m->packet_id);
    if (v == SB_MQTT_V5)
        sb_mqtt_put_properties(w, SB_MQTT_PUBLISH, &m->properties);
    sb_mqtt_put_bytes(w, m->payload.data, m->payload.length);
}

/* The v5 tail of acks, DISCONNECT and AUTH, in its shortest form. */
static void put_reason_and_properties(sb_mqtt_writer_t *w, int type, uint8_t reason,
                                      const sb_mqtt_properties_t *props)
{
    if (reason == 0 && is_empty(props))
        return;
    sb_mqtt_put_byte(w, reason);
    if (!is_empty(props))
        sb_mqtt_put_properties(w, type, props);
}

static void put_subscribe(sb_mqtt_writer_t *w, const sb_mqtt_packet_t *p, sb_mqtt_version_t v,
                          const sb_mqtt_properties_t *props)
{
    const sb_mqtt_subscribe_t *s = &p->u.subscribe;
    if (s->packet_id == 0 || s->count == 0)
        w->invalid = true;
    sb_mqtt_put_u16(w, s->packet_id);
    if (v == SB_MQTT_V5)
        sb_mqtt_put_properties(w, p->type, props);
    for (size_t i = 0; i < s->count; i++) {
        const sb_mqtt_subscription_t *item = &s->items[i];
        sb_mqtt_put_string(w, item->filter);
        if (p->type != SB_MQTT_SUBSCRIBE)
            continue;
        if (item->qos > 2 || item->retain_handling > 2)
            w->invalid = true;
        uint8_t options = item->qos & 3;
        if (v == SB_MQTT_V5)
            options |= (uint8_t) ((item->no_local ? 0x04 : 0) | (item->retain_as_published ? 0x08 : 0)
                                  | (item->retain_handling & 3) << 4);
        sb_mqtt_put_byte(w, options);
    }
}

static void put_suback(sb_mqtt_writer_t *w, const sb_mqtt_packet_t *p, sb_mqtt_version_t v,
                       const sb_mqtt_properties_t *props)
{
    const sb_mqtt_suback_t *s = &p->u.suback;
    bool v5 = v == SB_MQTT_V5;
    sb_mqtt_put_u16(w, s->packet_id);
    if (v5)
        sb_mqtt_put_properties(w, p->type, props);
    if (p->type == SB_MQTT_UNSUBACK && !v5)
        return;
    if (s->count == 0)
        w->invalid = true;
    for (size_t i = 0; i < s->count; i++)
        sb_mqtt_put_byte(w, v5 ? s->reasons[i] : sb_mqtt_reason_to_v3_suback(s->reasons[i]));
}

static void put_body(sb_mqtt_writer_t *w, const sb_mqtt_packet_t *p, sb_mqtt_version_t v,
                     const sb_mqtt_properties_t *props)
{
    bool v5 = v == SB_MQTT_V5;
    switch (p->type) {
    case SB_MQTT_CONNECT:
        put_connect(w, &p->u.connect, v);
        break;
    case SB_MQTT_CONNACK:
        /* 3.1 has no Session Present flag. */
        sb_mqtt_put_byte(w, p->u.connack.session_present && v != SB_MQTT_V31);
        sb_mqtt_put_byte(w, v5 ? p->u.connack.reason : sb_mqtt_reason_to_v3_connack(p->u.connack.reason));
        if (v5)
            sb_mqtt_put_properties(w, SB_MQTT_CONNACK, props);
        break;
    case SB_MQTT_PUBLISH:
        put_publish(w, &p->u.publish, v);
        break;
    case SB_MQTT_PUBACK:
    case SB_MQTT_PUBREC:
    case SB_MQTT_PUBREL:
    case SB_MQTT_PUBCOMP:
        if (p->u.ack.packet_id == 0)
            w->invalid = true;
        sb_mqtt_put_u16(w, p->u.ack.packet_id);
        if (v5)
            put_reason_and_properties(w, p->type, p->u.ack.reason, props);
        break;
    case SB_MQTT_SUBSCRIBE:
    case SB_MQTT_UNSUBSCRIBE:
        put_subscribe(w, p, v, props);
        break;
    case SB_MQTT_SUBACK:
    case SB_MQTT_UNSUBACK:
        put_suback(w, p, v, props);
        break;
    case SB_MQTT_DISCONNECT:
    case SB_MQTT_AUTH:
        if (v5)
            put_reason_and_properties(w, p->type, p->u.disconnect.reason, props);
        else if (p->type == SB_MQTT_AUTH || p->u.disconnect.reason != 0 || !is_empty(props))
            w->invalid = true;
        break;
    case SB_MQTT_PINGREQ:
    case SB_MQTT_PINGRESP:
        break;
    default:
        w->invalid = true;
    }
}

static uint8_t first_byte(const sb_mqtt_packet_t *p)
{
    uint8_t flags = 0;
    if (p->type == SB_MQTT_PUBLISH) {
        const sb_mqtt_publish_t *m = &p->u.publish;
        flags = (uint8_t) ((m->dup ? 0x08 : 0) | (m->qos & 3) << 1 | (m->retain ? 0x01 : 0));
    }
    else if (p->type == SB_MQTT_PUBREL || p->type == SB_MQTT_SUBSCRIBE || p->type == SB_MQTT_UNSUBSCRIBE)
        flags = 0x02;
    return (uint8_t) ((unsigned) p->type << 4 | flags);
}

static int encode_with(const sb_mqtt_packet_t *p, sb_mqtt_version_t v, const sb_mqtt_properties_t *props,
                       size_t max_packet_size, sb_mqtt_buffer_t *out)
{
    sb_mqtt_writer_t counter = { NULL, 0, false };
    put_body(&counter, p, v, props);
    if (counter.invalid || counter.length > SB_MQTT_MAX_REMAINING_LENGTH)
        return SB_MQTT_ENCODE_INVALID;
    size_t total = 1 + sb_mqtt_varint_length((uint32_t) counter.length) + counter.length;
    if (max_packet_size && total > max_packet_size)
        return SB_MQTT_ENCODE_TOO_LARGE;
    if (!reserve(out, total))
        return SB_MQTT_ENCODE_NO_ROOM;
    sb_mqtt_writer_t w = { out->data + out->length, 0, false };
    sb_mqtt_put_byte(&w, first_byte(p));
    sb_mqtt_put_varint(&w, (uint32_t) counter.length);
    put_body(&w, p, v, props);
    out->length += total;
    return (int) total;
}

int sb_mqtt_encode(const sb_mqtt_packet_t *packet, sb_mqtt_version_t version,
                   size_t max_packet_size, sb_mqtt_buffer_t *out)
{
    if (version != SB_MQTT_V31 && version != SB_MQTT_V311 && version != SB_MQTT_V5)
        return SB_MQTT_ENCODE_INVALID;
    static const sb_mqtt_properties_t none;
    const sb_mqtt_properties_t *props = properties_of(packet);
    if (!props)
        props = &none;
    int length = encode_with(packet, version, props, max_packet_size, out);
    bool droppable = sb_mqtt_has(props, SB_MQTT_PROP_REASON_STRING) || props->user_property_count > 0;
    if (length != SB_MQTT_ENCODE_TOO_LARGE || packet->type == SB_MQTT_PUBLISH || !droppable)
        return length;
    /* v5 asks the sender to leave these out rather than exceed the limit. */
    sb_mqtt_properties_t lean = *props;
    lean.present &= ~((uint64_t) 1 << SB_MQTT_PROP_REASON_STRING);
    lean.user_property_count = 0;
    return encode_with(packet, version, &lean, max_packet_size, out);
}
