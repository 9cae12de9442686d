/* fuzz_mqtt_packet.c — libFuzzer target for the MQTT packet codec
 * (gateways/mqtt): a connection's bytes go through the framer in chunks
 * the input chooses, every whole packet through the decoder, and every
 * packet decoded through the encoder and the decoder again.
 *
 * Input: byte 0 picks the start (bits 0-1: before CONNECT, as a gateway
 * starts, or already 3.1, 3.1.1, 5.0), the direction (bit 2: packets from
 * a server) and the chunk size (bits 3-7, 0 = all at once); the rest is
 * the stream. Checks: a refusal has a reason code with a name and a
 * detail; a decoded packet does not point into its input (decoded from a
 * copy freed at once) and its strings are NUL-terminated; a decoded packet
 * encodes (it is valid), its encoding decodes, and encoding that gives
 * the same bytes again; an encoding under a maximum size is within it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_packet.h"

#define CHECK(cond) \
    do { \
        if (!(cond)) \
            abort(); \
    } while (0)

#define MAX_PACKET 65536

static void check_str(sb_mqtt_str_t s)
{
    CHECK(s.data != NULL);
    CHECK(s.data[s.length] == '\0');
}

static void check_strings(const sb_mqtt_packet_t *p)
{
    if (p->type == SB_MQTT_PUBLISH) {
        check_str(p->u.publish.topic);
        check_str(p->u.publish.payload);
        CHECK(p->u.publish.qos <= 2);
    }
    else if (p->type == SB_MQTT_CONNECT) {
        check_str(p->u.connect.client_id);
        for (size_t i = 0; i < p->u.connect.properties.user_property_count; i++)
            check_str(p->u.connect.properties.user_properties[i].value);
    }
    else if (p->type == SB_MQTT_SUBSCRIBE || p->type == SB_MQTT_UNSUBSCRIBE) {
        CHECK(p->u.subscribe.count > 0);
        for (size_t i = 0; i < p->u.subscribe.count; i++) {
            const sb_mqtt_subscription_t *item = &p->u.subscribe.items[i];
            check_str(item->filter);
            check_str(item->share_group);
            check_str(item->topic_filter);
            CHECK(item->reason == 0 || item->reason == SB_MQTT_RC_TOPIC_FILTER_INVALID);
        }
    }
}

static sb_mqtt_packet_t *decode(const uint8_t *data, size_t length, sb_mqtt_version_t version, bool server,
                                sb_mqtt_error_t *error)
{
    return server ? sb_mqtt_decode_from_server(data, length, version, error)
                  : sb_mqtt_decode(data, length, version, error);
}

static void check_refusal(const sb_mqtt_frame_t *frame, const sb_mqtt_error_t *error)
{
    CHECK(error->reason >= 0x80);
    CHECK(error->detail != NULL);
    CHECK(sb_mqtt_reason_name(error->reason) != NULL);
    uint8_t v = error->connack_version;
    CHECK(v == 0 || v == SB_MQTT_V31 || v == SB_MQTT_V311 || v == SB_MQTT_V5);
    if (v) {
        CHECK(frame->type == SB_MQTT_CONNECT);
        sb_mqtt_packet_t connack = { .type = SB_MQTT_CONNACK };
        connack.u.connack.reason = error->reason;
        uint8_t room[8];
        sb_mqtt_buffer_t out;
        sb_mqtt_buffer_init_fixed(&out, room, sizeof room);
        CHECK(sb_mqtt_encode(&connack, (sb_mqtt_version_t) v, 0, &out) > 0);
    }
}

/* Encoding `p` again gives a packet that decodes to one encoding the same. */
static void check_round_trip(const sb_mqtt_packet_t *p, sb_mqtt_version_t version, bool server)
{
    sb_mqtt_version_t encode_version = p->type == SB_MQTT_CONNECT ? p->u.connect.version : version;
    sb_mqtt_version_t decode_version = p->type == SB_MQTT_CONNECT ? 0 : version;
    sb_mqtt_buffer_t first, second;
    sb_mqtt_buffer_init(&first);
    sb_mqtt_buffer_init(&second);
    int length = sb_mqtt_encode(p, encode_version, 0, &first);
    CHECK(length > 0 && (size_t) length == first.length);
    sb_mqtt_error_t error;
    sb_mqtt_packet_t *again = decode(first.data, first.length, decode_version, server, &error);
    CHECK(again != NULL);
    CHECK(sb_mqtt_encode(again, encode_version, 0, &second) == length);
    CHECK(memcmp(first.data, second.data, first.length) == 0);
    sb_mqtt_packet_destroy(&again);

    /* Under a limit: refused, or within it (maybe without reason string). */
    sb_mqtt_buffer_clear(&second);
    size_t max = first.length / 2 + 1;
    int limited = sb_mqtt_encode(p, encode_version, max, &second);
    CHECK(limited == SB_MQTT_ENCODE_TOO_LARGE || (limited > 0 && (size_t) limited <= max));
    sb_mqtt_buffer_release(&first);
    sb_mqtt_buffer_release(&second);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const sb_mqtt_version_t starts[] = { 0, SB_MQTT_V31, SB_MQTT_V311, SB_MQTT_V5 };
    sb_mqtt_version_t version = starts[data[0] & 3];
    bool server = data[0] & 4;
    size_t chunk = data[0] >> 3;
    if (server && version == 0)
        version = SB_MQTT_V5;
    data++;
    size--;
    if (chunk == 0)
        chunk = size ? size : 1;

    sb_mqtt_framer_t *framer = sb_mqtt_framer_new(MAX_PACKET);
    bool done = false;
    for (size_t at = 0; at < size && !done; at += chunk) {
        const uint8_t *in = data + at;
        size_t left = size - at < chunk ? size - at : chunk;
        sb_mqtt_frame_t frame;
        sb_mqtt_frame_status_t status;
        while ((status = sb_mqtt_framer_next(framer, &in, &left, &frame)) == SB_MQTT_FRAME_READY) {
            CHECK(frame.length <= MAX_PACKET && frame.header_length >= 2 && frame.header_length <= 5);
            /* From a copy freed at once: ASan sees any pointer into the input. */
            uint8_t *copy = malloc(frame.length);
            CHECK(copy != NULL);
            memcpy(copy, frame.data, frame.length);
            sb_mqtt_error_t error;
            sb_mqtt_packet_t *p = decode(copy, frame.length, version, server, &error);
            free(copy);
            if (!p) {
                check_refusal(&frame, &error);
                continue;       /* a gateway closes here; go on to reach more code */
            }
            CHECK((int) p->type == frame.type);
            check_strings(p);
            check_round_trip(p, version, server);
            if (p->type == SB_MQTT_CONNECT && !server && version == 0)
                version = p->u.connect.version;
            sb_mqtt_packet_destroy(&p);
        }
        if (status != SB_MQTT_FRAME_NEED_MORE)
            done = true;
        else
            CHECK(left == 0);
    }
    sb_mqtt_framer_destroy(&framer);
    return 0;
}
