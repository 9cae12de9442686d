/* test_mqtt_packet.c — unit tests for the MQTT packet codec
 * (gateways/mqtt): packets captured from Debian's mosquitto_pub and
 * mosquitto_sub (3.1.1 and 5, through tests/support/mqtt_capture.py) and
 * python3-paho-mqtt decoded field by field, encoder round trips, the
 * framer fed one byte at a time, the size limits both ways, and tables of
 * malformed packets, each with the v5 reason code the gateway must close
 * with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt_packet.h"

#define BYTES(s) (s), (sizeof(s) - 1)

/* Hex digits (spaces allowed) to bytes; returns the count. */
static size_t unhex(const char *hex, uint8_t *out, size_t room)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned value;
        assert_int_equal(sscanf(p, "%2x", &value), 1);
        assert_true(n < room);
        out[n++] = (uint8_t) value;
        p += 2;
    }
    return n;
}

static bool str_is(sb_mqtt_str_t s, const char *text)
{
    return s.length == strlen(text) && memcmp(s.data, text, s.length) == 0 && s.data[s.length] == '\0';
}

#define assert_str(s, text) assert_true(str_is((s), (text)))

static sb_mqtt_packet_t *decode_hex(const char *hex, sb_mqtt_version_t version, bool from_server)
{
    uint8_t bytes[1024];
    size_t n = unhex(hex, bytes, sizeof bytes);
    sb_mqtt_error_t error;
    sb_mqtt_packet_t *packet = from_server ? sb_mqtt_decode_from_server(bytes, n, version, &error)
                                           : sb_mqtt_decode(bytes, n, version, &error);
    if (!packet)
        fail_msg("%s: 0x%02x %s", hex, error.reason, error.detail);
    memset(bytes, 0xEE, sizeof bytes);     /* the packet must not point into its input */
    return packet;
}

/* Real packets, as mosquitto_pub / mosquitto_sub 2.0 sent them. */
#define V311_CONNECT "100c00044d5154540402003c0000"
#define V311_SUBSCRIBE "821c00010006686f6d652f2302000e2473686172652f672f6465762f2b02"
#define V311_CONNECT_WILL "102200044d515454042c003c000866697865642d6964000677696c6c2f740004676f6e65"
#define V311_PUBLISH_QOS2 "340d0006686f6d652f63000174776f"
#define V311_PUBREL "62020001"
#define V5_CONNECT "101000044d5154540502003c032100140000"
#define V5_CONNECT_PROPERTIES \
    "102b00044d5154540502003c1e110000001e21000a27000027102200051701190126000377686f00026d650000"
#define V5_CONNECT_WILL \
    "103900044d51545405d6003c03210014000012180000000503000a746578742f706c61696e000777696c6c2f7635" \
    "00036279650002753500027035"
#define V5_SUBSCRIBE "821f0001020b070006686f6d652f2302000e2473686172652f672f6465762f2b02"
#define V5_PUBLISH_PROPERTIES \
    "30310006686f6d652f64210300106170706c69636174696f6e2f6a736f6e01012600016b000176020000003c7b2276223a317d"
#define V5_PUBLISH_REQUEST "32210006686f6d652f6500011308000a7265706c792f68657265090003616263726571"
#define V5_PUBLISH_ALIAS "32150006686f6d652f67000103230001616c6961736564"
#define V5_UNSUBSCRIBE "a20b0002000006686f6d652f23"
#define V5_PUBACK "40020001"
#define V5_DISCONNECT "e000"
#define V5_CONNACK_FROM_MOSQUITTO \
    "203500003222000a1200296175746f2d34413734423746302d443631342d424537442d314534342d353130423034443537344333210014"
#define V5_PUBLISH_FROM_MOSQUITTO \
    "30330006686f6d652f64230b070300106170706c69636174696f6e2f6a736f6e01012600016b000176020000003c7b2276223a317d"

/* As Debian's python3-paho-mqtt 1.6 (Home Assistant's client) sends them. */
#define PAHO_V5_CONNECT \
    "104500044d51545405ee001e051100000e10000768612d7061686f00000968612f73746174757300076f66666c696e65" \
    "000d686f6d65617373697374616e740006733363726574"
#define PAHO_V5_SUBSCRIBE \
    "822b0001020b2a000f686f6d65617373697374616e742f231d00117a6967626565326d7174742f2b2f73657400"

/* ======================================================== real packets */

static void test_real_v311_connect(void **state)
{
    (void) state;
    sb_mqtt_packet_t *p = decode_hex(V311_CONNECT, 0, false);
    assert_int_equal(p->type, SB_MQTT_CONNECT);
    sb_mqtt_connect_t *c = &p->u.connect;
    assert_int_equal(c->version, SB_MQTT_V311);
    assert_true(c->clean_start);
    assert_int_equal(c->keep_alive, 60);
    assert_str(c->client_id, "");
    assert_false(c->will);
    assert_false(c->has_username);
    sb_mqtt_packet_destroy(&p);
    assert_null(p);

    p = decode_hex(V311_CONNECT_WILL, 0, false);
    c = &p->u.connect;
    assert_false(c->clean_start);
    assert_str(c->client_id, "fixed-id");
    assert_true(c->will);
    assert_int_equal(c->will_qos, 1);
    assert_true(c->will_retain);
    assert_str(c->will_topic, "will/t");
    assert_str(c->will_payload, "gone");
    sb_mqtt_packet_destroy(&p);
}

static void test_real_v5_connect(void **state)
{
    (void) state;
    sb_mqtt_packet_t *p = decode_hex(V5_CONNECT_PROPERTIES, 0, false);
    sb_mqtt_connect_t *c = &p->u.connect;
    assert_int_equal(c->version, SB_MQTT_V5);
    sb_mqtt_properties_t *props = &c->properties;
    assert_true(sb_mqtt_has(props, SB_MQTT_PROP_SESSION_EXPIRY_INTERVAL));
    assert_int_equal(props->session_expiry_interval, 30);
    assert_int_equal(props->receive_maximum, 10);
    assert_int_equal(props->maximum_packet_size, 10000);
    assert_int_equal(props->topic_alias_maximum, 5);
    assert_int_equal(props->request_problem_information, 1);
    assert_int_equal(props->request_response_information, 1);
    assert_false(sb_mqtt_has(props, SB_MQTT_PROP_AUTHENTICATION_METHOD));
    assert_int_equal(props->user_property_count, 1);
    assert_str(props->user_properties[0].name, "who");
    assert_str(props->user_properties[0].value, "me");
    sb_mqtt_packet_destroy(&p);

    p = decode_hex(V5_CONNECT_WILL, 0, false);
    c = &p->u.connect;
    assert_true(c->will);
    assert_int_equal(c->will_qos, 2);
    assert_false(c->will_retain);
    assert_int_equal(c->will_properties.will_delay_interval, 5);
    assert_str(c->will_properties.content_type, "text/plain");
    assert_false(sb_mqtt_has(&c->will_properties, SB_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL));
    assert_str(c->will_topic, "will/v5");
    assert_str(c->will_payload, "bye");
    assert_true(c->has_username && c->has_password);
    assert_str(c->username, "u5");
    assert_str(c->password, "p5");
    sb_mqtt_packet_destroy(&p);
}

static void test_real_paho(void **state)
{
    (void) state;
    sb_mqtt_packet_t *p = decode_hex(PAHO_V5_CONNECT, 0, false);
    sb_mqtt_connect_t *c = &p->u.connect;
    assert_int_equal(c->version, SB_MQTT_V5);
    assert_true(c->clean_start);
    assert_int_equal(c->keep_alive, 30);
    assert_int_equal(c->properties.session_expiry_interval, 3600);
    assert_str(c->client_id, "ha-paho");
    assert_true(c->will && c->will_retain);
    assert_int_equal(c->will_qos, 1);
    assert_int_equal(c->will_properties.present, 0);
    assert_str(c->will_topic, "ha/status");
    assert_str(c->will_payload, "offline");
    assert_str(c->username, "homeassistant");
    assert_str(c->password, "s3cret");
    sb_mqtt_packet_destroy(&p);

    p = decode_hex(PAHO_V5_SUBSCRIBE, SB_MQTT_V5, false);
    sb_mqtt_subscribe_t *s = &p->u.subscribe;
    assert_int_equal(s->properties.subscription_ids[0], 42);
    assert_int_equal(s->count, 2);
    assert_str(s->items[0].filter, "homeassistant/#");
    assert_int_equal(s->items[0].qos, 1);
    assert_true(s->items[0].no_local);
    assert_true(s->items[0].retain_as_published);
    assert_int_equal(s->items[0].retain_handling, 1);
    assert_str(s->items[1].filter, "zigbee2mqtt/+/set");
    assert_false(s->items[1].no_local || s->items[1].retain_as_published);
    assert_int_equal(s->items[1].retain_handling, 0);
    sb_mqtt_packet_destroy(&p);
}

static void test_real_publish(void **state)
{
    (void) state;
    sb_mqtt_packet_t *p = decode_hex(V311_PUBLISH_QOS2, SB_MQTT_V311, false);
    sb_mqtt_publish_t *m = &p->u.publish;
    assert_int_equal(m->qos, 2);
    assert_false(m->dup);
    assert_false(m->retain);
    assert_int_equal(m->packet_id, 1);
    assert_str(m->topic, "home/c");
    assert_str(m->payload, "two");
    sb_mqtt_packet_destroy(&p);

    p = decode_hex(V5_PUBLISH_PROPERTIES, SB_MQTT_V5, false);
    m = &p->u.publish;
    assert_int_equal(m->qos, 0);
    assert_str(m->topic, "home/d");
    assert_str(m->payload, "{\"v\":1}");
    assert_str(m->properties.content_type, "application/json");
    assert_true(sb_mqtt_has(&m->properties, SB_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR));
    assert_int_equal(m->properties.payload_format_indicator, 1);
    assert_int_equal(m->properties.message_expiry_interval, 60);
    assert_int_equal(m->properties.user_property_count, 1);
    assert_str(m->properties.user_properties[0].name, "k");
    sb_mqtt_packet_destroy(&p);

    p = decode_hex(V5_PUBLISH_REQUEST, SB_MQTT_V5, false);
    m = &p->u.publish;
    assert_int_equal(m->qos, 1);
    assert_int_equal(m->packet_id, 1);
    assert_str(m->properties.response_topic, "reply/here");
    assert_str(m->properties.correlation_data, "abc");
    sb_mqtt_packet_destroy(&p);

    p = decode_hex(V5_PUBLISH_ALIAS, SB_MQTT_V5, false);
    assert_int_equal(p->u.publish.properties.topic_alias, 1);
    assert_str(p->u.publish.topic, "home/g");
    sb_mqtt_packet_destroy(&p);
}

static void test_real_subscribe(void **state)
{
    (void) state;
    static const struct { const char *hex; sb_mqtt_version_t version; uint32_t id; } cases[] = {
        { V311_SUBSCRIBE, SB_MQTT_V311, 0 },
        { V5_SUBSCRIBE, SB_MQTT_V5, 7 },
    };
    for (size_t i = 0; i < 2; i++) {
        sb_mqtt_packet_t *p = decode_hex(cases[i].hex, cases[i].version, false);
        sb_mqtt_subscribe_t *s = &p->u.subscribe;
        assert_int_equal(s->packet_id, 1);
        assert_int_equal(s->count, 2);
        assert_int_equal(s->properties.subscription_id_count, cases[i].id ? 1 : 0);
        if (cases[i].id)
            assert_int_equal(s->properties.subscription_ids[0], cases[i].id);
        assert_str(s->items[0].filter, "home/#");
        assert_str(s->items[0].topic_filter, "home/#");
        assert_str(s->items[0].share_group, "");
        assert_int_equal(s->items[0].qos, 2);
        assert_int_equal(s->items[0].reason, 0);
        assert_str(s->items[1].filter, "$share/g/dev/+");
        assert_str(s->items[1].share_group, "g");
        assert_str(s->items[1].topic_filter, "dev/+");
        assert_int_equal(s->items[1].reason, 0);
        sb_mqtt_packet_destroy(&p);
    }
    sb_mqtt_packet_t *p = decode_hex(V5_UNSUBSCRIBE, SB_MQTT_V5, false);
    assert_int_equal(p->type, SB_MQTT_UNSUBSCRIBE);
    assert_int_equal(p->u.subscribe.packet_id, 2);
    assert_int_equal(p->u.subscribe.count, 1);
    assert_str(p->u.subscribe.items[0].filter, "home/#");
    sb_mqtt_packet_destroy(&p);
}

static void test_real_small_packets(void **state)
{
    (void) state;
    sb_mqtt_packet_t *p = decode_hex(V5_PUBACK, SB_MQTT_V5, false);
    assert_int_equal(p->type, SB_MQTT_PUBACK);
    assert_int_equal(p->u.ack.packet_id, 1);
    assert_int_equal(p->u.ack.reason, 0);
    sb_mqtt_packet_destroy(&p);
    p = decode_hex(V311_PUBREL, SB_MQTT_V311, false);
    assert_int_equal(p->type, SB_MQTT_PUBREL);
    assert_int_equal(p->flags, 2);
    sb_mqtt_packet_destroy(&p);
    p = decode_hex(V5_DISCONNECT, SB_MQTT_V5, false);
    assert_int_equal(p->type, SB_MQTT_DISCONNECT);
    assert_int_equal(p->u.disconnect.reason, 0);
    sb_mqtt_packet_destroy(&p);
    p = decode_hex("c000", SB_MQTT_V311, false);
    assert_int_equal(p->type, SB_MQTT_PINGREQ);
    sb_mqtt_packet_destroy(&p);
}

static void test_real_server_packets(void **state)
{
    (void) state;
    sb_mqtt_packet_t *p = decode_hex(V5_CONNACK_FROM_MOSQUITTO, SB_MQTT_V5, true);
    sb_mqtt_connack_t *c = &p->u.connack;
    assert_false(c->session_present);
    assert_int_equal(c->reason, 0);
    assert_int_equal(c->properties.topic_alias_maximum, 10);
    assert_int_equal(c->properties.receive_maximum, 20);
    assert_str(c->properties.assigned_client_identifier, "auto-4A74B7F0-D614-BE7D-1E44-510B04D574C3");
    sb_mqtt_packet_destroy(&p);

    p = decode_hex(V5_PUBLISH_FROM_MOSQUITTO, SB_MQTT_V5, true);
    assert_int_equal(p->u.publish.properties.subscription_id_count, 1);
    assert_int_equal(p->u.publish.properties.subscription_ids[0], 7);
    sb_mqtt_packet_destroy(&p);

    /* 3.1.1 return codes come back as the v5 codes the encoder takes. */
    p = decode_hex("20020104", SB_MQTT_V311, true);
    assert_true(p->u.connack.session_present);
    assert_int_equal(p->u.connack.reason, SB_MQTT_RC_BAD_USER_NAME_OR_PASSWORD);
    sb_mqtt_packet_destroy(&p);
    static const struct { const char *hex; sb_mqtt_version_t version; } refused[] = {
        { "20020006", SB_MQTT_V311 },      /* a reserved return code */
        { "20020100", SB_MQTT_V31 },       /* 3.1 has no Session Present */
        { "20020200", SB_MQTT_V311 },      /* reserved acknowledge flags */
        { "2003000400", SB_MQTT_V5 },      /* 0x04 is no CONNACK reason */
        { "9003000103", SB_MQTT_V311 },    /* SUBACK return code 3 */
        { "900400010011", SB_MQTT_V5 },    /* 0x11 is an UNSUBACK reason */
        { "9002 0001", SB_MQTT_V311 },     /* SUBACK without codes */
        { "8002 0001", SB_MQTT_V311 },     /* SUBSCRIBE from a server */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        uint8_t bytes[16];
        size_t n = unhex(refused[i].hex, bytes, sizeof bytes);
        sb_mqtt_error_t error;
        assert_null(sb_mqtt_decode_from_server(bytes, n, refused[i].version, &error));
        assert_true(error.reason == SB_MQTT_RC_MALFORMED_PACKET || error.reason == SB_MQTT_RC_PROTOCOL_ERROR);
    }
}

/* ========================================================= round trips */

/* Encodes `in` for `version`, checks the bytes when `hex` is given, and
 * decodes them back (as the side that receives them). */
static sb_mqtt_packet_t *round_trip(const sb_mqtt_packet_t *in, sb_mqtt_version_t version, const char *hex)
{
    sb_mqtt_buffer_t out;
    sb_mqtt_buffer_init(&out);
    int length = sb_mqtt_encode(in, version, 0, &out);
    assert_true(length > 0);
    assert_int_equal((size_t) length, out.length);
    if (hex) {
        uint8_t expected[512];
        size_t n = unhex(hex, expected, sizeof expected);
        assert_int_equal(out.length, n);
        assert_memory_equal(out.data, expected, n);
    }
    bool to_client = in->type == SB_MQTT_CONNACK || in->type == SB_MQTT_SUBACK || in->type == SB_MQTT_UNSUBACK
                  || in->type == SB_MQTT_PINGRESP || in->type == SB_MQTT_AUTH || in->type == SB_MQTT_DISCONNECT
                  || (in->type == SB_MQTT_PUBLISH && in->u.publish.properties.subscription_id_count > 0);
    sb_mqtt_error_t error;
    sb_mqtt_packet_t *back = to_client ? sb_mqtt_decode_from_server(out.data, out.length, version, &error)
                                       : sb_mqtt_decode(out.data, out.length,
                                                        in->type == SB_MQTT_CONNECT ? 0 : version, &error);
    if (!back)
        fail_msg("0x%02x %s", error.reason, error.detail);
    sb_mqtt_buffer_release(&out);
    assert_int_equal(back->type, in->type);
    return back;
}

static void check_round_trip(const sb_mqtt_packet_t *in, sb_mqtt_version_t version, const char *hex)
{
    sb_mqtt_packet_t *back = round_trip(in, version, hex);
    sb_mqtt_packet_destroy(&back);
}

static void test_connack_round_trip(void **state)
{
    (void) state;
    sb_mqtt_user_property_t user[] = { { sb_mqtt_str("a"), sb_mqtt_str("1") }, { sb_mqtt_str("a"), sb_mqtt_str("2") } };
    sb_mqtt_packet_t in = { .type = SB_MQTT_CONNACK };
    sb_mqtt_connack_t *c = &in.u.connack;
    c->session_present = true;
    sb_mqtt_properties_t *props = &c->properties;
    static const sb_mqtt_property_id_t marks[] = {
        SB_MQTT_PROP_SESSION_EXPIRY_INTERVAL, SB_MQTT_PROP_RECEIVE_MAXIMUM, SB_MQTT_PROP_MAXIMUM_QOS,
        SB_MQTT_PROP_RETAIN_AVAILABLE, SB_MQTT_PROP_MAXIMUM_PACKET_SIZE, SB_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER,
        SB_MQTT_PROP_TOPIC_ALIAS_MAXIMUM, SB_MQTT_PROP_REASON_STRING, SB_MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE,
        SB_MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE, SB_MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE,
        SB_MQTT_PROP_SERVER_KEEP_ALIVE, SB_MQTT_PROP_RESPONSE_INFORMATION, SB_MQTT_PROP_SERVER_REFERENCE,
        SB_MQTT_PROP_AUTHENTICATION_METHOD, SB_MQTT_PROP_AUTHENTICATION_DATA,
    };
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        sb_mqtt_mark(props, marks[i]);
    props->session_expiry_interval = 3600;
    props->receive_maximum = 100;
    props->maximum_qos = 1;
    props->retain_available = 1;
    props->maximum_packet_size = 1 << 20;
    props->assigned_client_identifier = sb_mqtt_str("mqtt-7");
    props->topic_alias_maximum = 16;
    props->reason_string = sb_mqtt_str("welcome");
    props->wildcard_subscription_available = 1;
    props->subscription_identifier_available = 1;
    props->shared_subscription_available = 0;
    props->server_keep_alive = 30;
    props->response_information = sb_mqtt_str("$switchboard/reply/mqtt-7");
    props->server_reference = sb_mqtt_str("other:1883");
    props->authentication_method = sb_mqtt_str("TOKEN");
    props->authentication_data = (sb_mqtt_str_t) { "\0\1", 2 };
    props->user_properties = user;
    props->user_property_count = 2;
    sb_mqtt_packet_t *back = round_trip(&in, SB_MQTT_V5, NULL);
    sb_mqtt_connack_t *b = &back->u.connack;
    assert_true(b->session_present);
    assert_int_equal(b->reason, 0);
    assert_int_equal(b->properties.present, props->present | (uint64_t) 1 << SB_MQTT_PROP_USER_PROPERTY);
    assert_int_equal(b->properties.session_expiry_interval, 3600);
    assert_int_equal(b->properties.receive_maximum, 100);
    assert_int_equal(b->properties.maximum_qos, 1);
    assert_int_equal(b->properties.maximum_packet_size, 1 << 20);
    assert_str(b->properties.assigned_client_identifier, "mqtt-7");
    assert_int_equal(b->properties.topic_alias_maximum, 16);
    assert_str(b->properties.reason_string, "welcome");
    assert_int_equal(b->properties.shared_subscription_available, 0);
    assert_int_equal(b->properties.server_keep_alive, 30);
    assert_str(b->properties.response_information, "$switchboard/reply/mqtt-7");
    assert_str(b->properties.server_reference, "other:1883");
    assert_int_equal(b->properties.authentication_data.length, 2);
    assert_memory_equal(b->properties.authentication_data.data, "\0\1", 2);
    assert_int_equal(b->properties.user_property_count, 2);
    assert_str(b->properties.user_properties[1].value, "2");
    sb_mqtt_packet_destroy(&back);

    /* 3.1.1: v5 reasons become return codes, no properties; 3.1 has no Session Present. */
    static const struct { uint8_t reason; const char *v311, *v31; } codes[] = {
        { SB_MQTT_RC_SUCCESS, "20020100", "20020000" },
        { SB_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, "20020001", "20020001" },
        { SB_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID, "20020002", "20020002" },
        { SB_MQTT_RC_SERVER_UNAVAILABLE, "20020003", "20020003" },
        { SB_MQTT_RC_BAD_USER_NAME_OR_PASSWORD, "20020004", "20020004" },
        { SB_MQTT_RC_NOT_AUTHORIZED, "20020005", "20020005" },
        { SB_MQTT_RC_BANNED, "20020005", "20020005" },
        { SB_MQTT_RC_SERVER_BUSY, "20020003", "20020003" },
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        c->reason = codes[i].reason;
        c->session_present = codes[i].reason == 0;
        check_round_trip(&in, SB_MQTT_V311, codes[i].v311);
        check_round_trip(&in, SB_MQTT_V31, codes[i].v31);
    }
}

static void test_publish_round_trip(void **state)
{
    (void) state;
    static const uint32_t ids[] = { 1, 300, SB_MQTT_MAX_SUBSCRIPTION_ID };
    sb_mqtt_user_property_t user[] = { { sb_mqtt_str("unit"), sb_mqtt_str("°C") } };
    sb_mqtt_packet_t in = { .type = SB_MQTT_PUBLISH };
    sb_mqtt_publish_t *m = &in.u.publish;
    m->qos = 2;
    m->dup = true;
    m->retain = true;
    m->packet_id = 65535;
    m->topic = sb_mqtt_str("home/kitchen/temp");
    m->payload = (sb_mqtt_str_t) { "21\0.5", 5 };
    sb_mqtt_properties_t *props = &m->properties;
    sb_mqtt_mark(props, SB_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
    sb_mqtt_mark(props, SB_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
    sb_mqtt_mark(props, SB_MQTT_PROP_CONTENT_TYPE);
    sb_mqtt_mark(props, SB_MQTT_PROP_RESPONSE_TOPIC);
    sb_mqtt_mark(props, SB_MQTT_PROP_CORRELATION_DATA);
    sb_mqtt_mark(props, SB_MQTT_PROP_TOPIC_ALIAS);
    props->payload_format_indicator = 0;
    props->message_expiry_interval = 0xFFFFFFFF;
    props->content_type = sb_mqtt_str("text/plain");
    props->response_topic = sb_mqtt_str("reply/1");
    props->correlation_data = sb_mqtt_str("42");
    props->topic_alias = 3;
    props->subscription_ids = ids;
    props->subscription_id_count = 3;
    props->user_properties = user;
    props->user_property_count = 1;
    sb_mqtt_packet_t *back = round_trip(&in, SB_MQTT_V5, NULL);
    sb_mqtt_publish_t *b = &back->u.publish;
    assert_true(b->dup && b->retain);
    assert_int_equal(b->qos, 2);
    assert_int_equal(b->packet_id, 65535);
    assert_str(b->topic, "home/kitchen/temp");
    assert_int_equal(b->payload.length, 5);
    assert_memory_equal(b->payload.data, "21\0.5", 5);
    assert_true(sb_mqtt_has(&b->properties, SB_MQTT_PROP_PAYLOAD_FORMAT_INDICATOR));
    assert_int_equal(b->properties.message_expiry_interval, 0xFFFFFFFF);
    assert_str(b->properties.content_type, "text/plain");
    assert_str(b->properties.response_topic, "reply/1");
    assert_str(b->properties.correlation_data, "42");
    assert_int_equal(b->properties.topic_alias, 3);
    assert_int_equal(b->properties.subscription_id_count, 3);
    assert_memory_equal(b->properties.subscription_ids, ids, sizeof ids);
    assert_str(b->properties.user_properties[0].value, "°C");
    sb_mqtt_packet_destroy(&back);

    /* A topic alias alone: an empty topic name. */
    m->topic = sb_mqtt_str("");
    props->subscription_id_count = 0;
    back = round_trip(&in, SB_MQTT_V5, NULL);
    assert_str(back->u.publish.topic, "");
    sb_mqtt_packet_destroy(&back);

    /* 3.1.1 leaves every property out. */
    sb_mqtt_packet_t plain = { .type = SB_MQTT_PUBLISH };
    plain.u.publish = (sb_mqtt_publish_t) { .qos = 1, .packet_id = 10, .topic = sb_mqtt_str("a/b"),
                                            .payload = sb_mqtt_str("on"), .properties = *props };
    plain.u.publish.properties.topic_alias = 0;
    back = round_trip(&plain, SB_MQTT_V311, "3209 0003612f62 000a 6f6e");
    assert_int_equal(back->u.publish.properties.present, 0);
    sb_mqtt_packet_destroy(&back);
}

static void test_ack_round_trips(void **state)
{
    (void) state;
    sb_mqtt_packet_t in = { .type = SB_MQTT_PUBACK };
    in.u.ack.packet_id = 0x1234;
    check_round_trip(&in, SB_MQTT_V5, "40021234");
    check_round_trip(&in, SB_MQTT_V311, "40021234");
    in.u.ack.reason = SB_MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    sb_mqtt_packet_t *back = round_trip(&in, SB_MQTT_V5, "4003123410");
    assert_int_equal(back->u.ack.reason, 0x10);
    sb_mqtt_packet_destroy(&back);
    /* 3.1.1 has no reason codes in acks. */
    check_round_trip(&in, SB_MQTT_V311, "40021234");
    in.type = SB_MQTT_PUBREC;
    in.u.ack.reason = SB_MQTT_RC_QUOTA_EXCEEDED;
    sb_mqtt_mark(&in.u.ack.properties, SB_MQTT_PROP_REASON_STRING);
    in.u.ack.properties.reason_string = sb_mqtt_str("full");
    back = round_trip(&in, SB_MQTT_V5, "500b 1234 97 07 1f0004 66756c6c");
    assert_str(back->u.ack.properties.reason_string, "full");
    sb_mqtt_packet_destroy(&back);
    in = (sb_mqtt_packet_t) { .type = SB_MQTT_PUBREL };
    in.u.ack.packet_id = 1;
    check_round_trip(&in, SB_MQTT_V311, "62020001");
    in.type = SB_MQTT_PUBCOMP;
    in.u.ack.reason = SB_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND;
    check_round_trip(&in, SB_MQTT_V5, "7003000192");
}

static void test_suback_round_trips(void **state)
{
    (void) state;
    static const uint8_t reasons[] = { 0, 1, 2, SB_MQTT_RC_TOPIC_FILTER_INVALID, SB_MQTT_RC_NOT_AUTHORIZED };
    sb_mqtt_packet_t in = { .type = SB_MQTT_SUBACK };
    in.u.suback = (sb_mqtt_suback_t) { .packet_id = 5, .reasons = reasons, .count = 5 };
    sb_mqtt_packet_t *back = round_trip(&in, SB_MQTT_V5, "9008 0005 00 0001028f87");
    assert_int_equal(back->u.suback.count, 5);
    assert_memory_equal(back->u.suback.reasons, reasons, 5);
    sb_mqtt_packet_destroy(&back);
    check_round_trip(&in, SB_MQTT_V311, "9007 0005 0001028080");

    in.type = SB_MQTT_UNSUBACK;
    static const uint8_t gone[] = { SB_MQTT_RC_SUCCESS, SB_MQTT_RC_NO_SUBSCRIPTION_EXISTED };
    in.u.suback.reasons = gone;
    in.u.suback.count = 2;
    back = round_trip(&in, SB_MQTT_V5, "b005 0005 00 0011");
    assert_int_equal(back->u.suback.reasons[1], 0x11);
    sb_mqtt_packet_destroy(&back);
    back = round_trip(&in, SB_MQTT_V311, "b0020005");
    assert_int_equal(back->u.suback.count, 0);
    sb_mqtt_packet_destroy(&back);

    in = (sb_mqtt_packet_t) { .type = SB_MQTT_PINGRESP };
    check_round_trip(&in, SB_MQTT_V311, "d000");
}

static void test_disconnect_and_auth_round_trips(void **state)
{
    (void) state;
    sb_mqtt_packet_t in = { .type = SB_MQTT_DISCONNECT };
    check_round_trip(&in, SB_MQTT_V5, "e000");
    check_round_trip(&in, SB_MQTT_V311, "e000");
    in.u.disconnect.reason = SB_MQTT_RC_SESSION_TAKEN_OVER;
    check_round_trip(&in, SB_MQTT_V5, "e0018e");
    in.u.disconnect.reason = SB_MQTT_RC_SERVER_MOVED;
    sb_mqtt_mark(&in.u.disconnect.properties, SB_MQTT_PROP_SERVER_REFERENCE);
    in.u.disconnect.properties.server_reference = sb_mqtt_str("b:1883");
    sb_mqtt_packet_t *back = round_trip(&in, SB_MQTT_V5, "e00b 9d 09 1c0006623a31383833");
    assert_int_equal(back->u.disconnect.reason, 0x9D);
    assert_str(back->u.disconnect.properties.server_reference, "b:1883");
    sb_mqtt_packet_destroy(&back);

    sb_mqtt_buffer_t out;
    sb_mqtt_buffer_init(&out);
    assert_int_equal(sb_mqtt_encode(&in, SB_MQTT_V311, 0, &out), SB_MQTT_ENCODE_INVALID);

    in = (sb_mqtt_packet_t) { .type = SB_MQTT_AUTH };
    in.u.disconnect.reason = SB_MQTT_RC_CONTINUE_AUTHENTICATION;
    sb_mqtt_mark(&in.u.disconnect.properties, SB_MQTT_PROP_AUTHENTICATION_METHOD);
    sb_mqtt_mark(&in.u.disconnect.properties, SB_MQTT_PROP_AUTHENTICATION_DATA);
    in.u.disconnect.properties.authentication_method = sb_mqtt_str("SCRAM-SHA-1");
    in.u.disconnect.properties.authentication_data = sb_mqtt_str("n,,n=user");
    back = round_trip(&in, SB_MQTT_V5, NULL);
    assert_int_equal(back->u.disconnect.reason, 0x18);
    assert_str(back->u.disconnect.properties.authentication_method, "SCRAM-SHA-1");
    assert_str(back->u.disconnect.properties.authentication_data, "n,,n=user");
    sb_mqtt_packet_destroy(&back);
    assert_int_equal(sb_mqtt_encode(&in, SB_MQTT_V311, 0, &out), SB_MQTT_ENCODE_INVALID);
    assert_int_equal(out.length, 0);
    sb_mqtt_buffer_release(&out);
}

static void test_client_packets_round_trip(void **state)
{
    (void) state;
    /* What a client sends, built by the encoder (for tests and benchmarks). */
    sb_mqtt_packet_t in = { .type = SB_MQTT_CONNECT };
    sb_mqtt_connect_t *c = &in.u.connect;
    c->clean_start = true;
    c->keep_alive = 60;
    sb_mqtt_packet_t *back = round_trip(&in, SB_MQTT_V311, V311_CONNECT);
    assert_int_equal(back->u.connect.version, SB_MQTT_V311);
    sb_mqtt_packet_destroy(&back);
    c->client_id = sb_mqtt_str("old");
    back = round_trip(&in, SB_MQTT_V31, NULL);
    assert_int_equal(back->u.connect.version, SB_MQTT_V31);
    sb_mqtt_packet_destroy(&back);
    c->will = true;
    c->will_qos = 2;
    c->will_topic = sb_mqtt_str("w");
    c->will_payload = sb_mqtt_str("x");
    sb_mqtt_mark(&c->will_properties, SB_MQTT_PROP_WILL_DELAY_INTERVAL);
    c->will_properties.will_delay_interval = 9;
    c->has_password = true;
    c->password = sb_mqtt_str("pw");
    back = round_trip(&in, SB_MQTT_V5, NULL);
    assert_int_equal(back->u.connect.will_properties.will_delay_interval, 9);
    assert_false(back->u.connect.has_username);
    assert_str(back->u.connect.password, "pw");
    sb_mqtt_packet_destroy(&back);

    sb_mqtt_subscription_t items[] = {
        { .filter = sb_mqtt_str("a/+"), .qos = 1, .no_local = true, .retain_as_published = true,
          .retain_handling = 2 },
        { .filter = sb_mqtt_str("$share/grp/b/#"), .qos = 0 },
    };
    in = (sb_mqtt_packet_t) { .type = SB_MQTT_SUBSCRIBE };
    in.u.subscribe = (sb_mqtt_subscribe_t) { .packet_id = 9, .items = items, .count = 2 };
    back = round_trip(&in, SB_MQTT_V5, "821a 0009 00 0003612f2b 2d 000e2473686172652f6772702f622f23 00");
    assert_true(back->u.subscribe.items[0].no_local);
    assert_true(back->u.subscribe.items[0].retain_as_published);
    assert_int_equal(back->u.subscribe.items[0].retain_handling, 2);
    assert_str(back->u.subscribe.items[1].share_group, "grp");
    assert_str(back->u.subscribe.items[1].topic_filter, "b/#");
    sb_mqtt_packet_destroy(&back);
    back = round_trip(&in, SB_MQTT_V311, "8219 0009 0003612f2b 01 000e2473686172652f6772702f622f23 00");
    assert_false(back->u.subscribe.items[0].no_local);
    sb_mqtt_packet_destroy(&back);
    in.type = SB_MQTT_UNSUBSCRIBE;
    check_round_trip(&in, SB_MQTT_V5, NULL);
    in = (sb_mqtt_packet_t) { .type = SB_MQTT_PINGREQ };
    check_round_trip(&in, SB_MQTT_V5, "c000");
}

static void test_many_items(void **state)
{
    (void) state;
    /* More items than the room a decoded packet starts with: arrays grow. */
    enum { COUNT = 300 };
    static sb_mqtt_subscription_t items[COUNT];
    static sb_mqtt_user_property_t user[COUNT];
    static char names[COUNT][16];
    for (int i = 0; i < COUNT; i++) {
        snprintf(names[i], sizeof names[i], "f/%d/+", i);
        items[i] = (sb_mqtt_subscription_t) { .filter = sb_mqtt_str(names[i]), .qos = (uint8_t) (i % 3) };
        user[i] = (sb_mqtt_user_property_t) { sb_mqtt_str(names[i]), sb_mqtt_str("") };
    }
    sb_mqtt_packet_t in = { .type = SB_MQTT_SUBSCRIBE };
    in.u.subscribe = (sb_mqtt_subscribe_t) { .packet_id = 3, .items = items, .count = COUNT };
    in.u.subscribe.properties.user_properties = user;
    in.u.subscribe.properties.user_property_count = COUNT;
    sb_mqtt_packet_t *back = round_trip(&in, SB_MQTT_V5, NULL);
    assert_int_equal(back->u.subscribe.count, COUNT);
    assert_int_equal(back->u.subscribe.properties.user_property_count, COUNT);
    for (int i = 0; i < COUNT; i++) {
        assert_str(back->u.subscribe.items[i].filter, names[i]);
        assert_int_equal(back->u.subscribe.items[i].qos, i % 3);
        assert_str(back->u.subscribe.properties.user_properties[i].name, names[i]);
        assert_str(back->u.subscribe.properties.user_properties[i].value, "");
    }
    sb_mqtt_packet_destroy(&back);
}

/* ============================================================ encoding */

static void test_encode_limits(void **state)
{
    (void) state;
    sb_mqtt_packet_t in = { .type = SB_MQTT_PUBLISH };
    in.u.publish.topic = sb_mqtt_str("t");
    in.u.publish.payload = sb_mqtt_str("0123456789");
    sb_mqtt_buffer_t out;
    sb_mqtt_buffer_init(&out);
    /* 2 + 3 + 10 bytes: fits 15, not 14; a PUBLISH too large is dropped. */
    assert_int_equal(sb_mqtt_encode(&in, SB_MQTT_V311, 14, &out), SB_MQTT_ENCODE_TOO_LARGE);
    assert_int_equal(out.length, 0);
    assert_int_equal(sb_mqtt_encode(&in, SB_MQTT_V311, 15, &out), 15);
    assert_int_equal(sb_mqtt_encode(&in, SB_MQTT_V311, 15, &out), 15);
    assert_int_equal(out.length, 30);       /* appended */
    sb_mqtt_buffer_clear(&out);

    uint8_t small[16];
    sb_mqtt_buffer_t fixed;
    sb_mqtt_buffer_init_fixed(&fixed, small, sizeof small);
    assert_int_equal(sb_mqtt_encode(&in, SB_MQTT_V311, 0, &fixed), 15);
    assert_int_equal(sb_mqtt_encode(&in, SB_MQTT_V311, 0, &fixed), SB_MQTT_ENCODE_NO_ROOM);
    assert_int_equal(fixed.length, 15);
    sb_mqtt_buffer_release(&fixed);
    assert_int_equal(fixed.length, 0);

    /* Other packets lose their Reason String and User Properties first. */
    sb_mqtt_user_property_t user[] = { { sb_mqtt_str("why"), sb_mqtt_str("because") } };
    sb_mqtt_packet_t ack = { .type = SB_MQTT_PUBACK };
    ack.u.ack.packet_id = 1;
    ack.u.ack.reason = SB_MQTT_RC_NOT_AUTHORIZED;
    sb_mqtt_mark(&ack.u.ack.properties, SB_MQTT_PROP_REASON_STRING);
    ack.u.ack.properties.reason_string = sb_mqtt_str("not for you");
    ack.u.ack.properties.user_properties = user;
    ack.u.ack.properties.user_property_count = 1;
    assert_int_equal(sb_mqtt_encode(&ack, SB_MQTT_V5, 8, &out), 5);
    static const uint8_t lean[] = { 0x40, 0x03, 0x00, 0x01, 0x87 };
    assert_memory_equal(out.data, lean, sizeof lean);
    sb_mqtt_buffer_clear(&out);
    assert_int_equal(sb_mqtt_encode(&ack, SB_MQTT_V5, 4, &out), SB_MQTT_ENCODE_TOO_LARGE);
    assert_true(sb_mqtt_encode(&ack, SB_MQTT_V5, 0, &out) > 20);
    sb_mqtt_buffer_clear(&out);

    /* What no packet may carry. */
    sb_mqtt_packet_t bad = in;
    bad.u.publish.qos = 3;
    assert_int_equal(sb_mqtt_encode(&bad, SB_MQTT_V5, 0, &out), SB_MQTT_ENCODE_INVALID);
    bad.u.publish.qos = 1;        /* packet id 0 */
    assert_int_equal(sb_mqtt_encode(&bad, SB_MQTT_V5, 0, &out), SB_MQTT_ENCODE_INVALID);
    bad = in;
    bad.u.publish.topic = sb_mqtt_str("");
    assert_int_equal(sb_mqtt_encode(&bad, SB_MQTT_V5, 0, &out), SB_MQTT_ENCODE_INVALID);
    bad = in;
    sb_mqtt_mark(&bad.u.publish.properties, SB_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER);
    assert_int_equal(sb_mqtt_encode(&bad, SB_MQTT_V5, 0, &out), SB_MQTT_ENCODE_INVALID);
    /* ...but 3.1.1 has no properties to refuse. */
    assert_int_equal(sb_mqtt_encode(&bad, SB_MQTT_V311, 0, &out), 15);
    sb_mqtt_buffer_clear(&out);
    bad = in;
    bad.u.publish.properties.subscription_ids = (const uint32_t[]) { 0 };
    bad.u.publish.properties.subscription_id_count = 1;
    assert_int_equal(sb_mqtt_encode(&bad, SB_MQTT_V5, 0, &out), SB_MQTT_ENCODE_INVALID);
    bad = in;
    bad.u.publish.topic = (sb_mqtt_str_t) { "x", 70000 };
    assert_int_equal(sb_mqtt_encode(&bad, SB_MQTT_V5, 0, &out), SB_MQTT_ENCODE_INVALID);
    assert_int_equal(sb_mqtt_encode(&in, (sb_mqtt_version_t) 6, 0, &out), SB_MQTT_ENCODE_INVALID);
    sb_mqtt_packet_t suback = { .type = SB_MQTT_SUBACK };
    suback.u.suback.packet_id = 1;
    assert_int_equal(sb_mqtt_encode(&suback, SB_MQTT_V5, 0, &out), SB_MQTT_ENCODE_INVALID);
    assert_int_equal(out.length, 0);

    /* A Remaining Length of 4 bytes. */
    size_t big = 2 * 1024 * 1024;
    char *payload = calloc(1, big);
    in.u.publish.payload = (sb_mqtt_str_t) { payload, big };
    assert_int_equal(sb_mqtt_encode(&in, SB_MQTT_V311, 0, &out), (int) (big + 3 + 5));
    assert_int_equal(out.data[1] & 0x80, 0x80);
    assert_int_equal(out.data[4] & 0x80, 0);
    sb_mqtt_error_t error;
    sb_mqtt_packet_t *back = sb_mqtt_decode(out.data, out.length, SB_MQTT_V311, &error);
    assert_non_null(back);
    assert_int_equal(back->u.publish.payload.length, big);
    sb_mqtt_packet_destroy(&back);
    free(payload);
    sb_mqtt_buffer_release(&out);
}

/* ============================================================= framing */

static size_t stream_of(uint8_t *out, size_t room, const char *const *hexes, size_t count, size_t *lengths)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        lengths[i] = unhex(hexes[i], out + n, room - n);
        n += lengths[i];
    }
    return n;
}

static void test_framer_chunks(void **state)
{
    (void) state;
    static const char *const packets[] = { V5_CONNECT_WILL, V5_SUBSCRIBE, V5_PUBLISH_PROPERTIES, "c000",
                                           V5_PUBACK, V5_DISCONNECT };
    enum { COUNT = sizeof packets / sizeof packets[0] };
    uint8_t stream[1024];
    size_t lengths[COUNT];
    size_t total = stream_of(stream, sizeof stream, packets, COUNT, lengths);
    for (size_t chunk = 1; chunk <= total; chunk++) {
        sb_mqtt_framer_t *framer = sb_mqtt_framer_new(0);
        size_t seen = 0, offset = 0;
        for (size_t at = 0; at < total; at += chunk) {
            const uint8_t *in = stream + at;
            size_t left = at + chunk <= total ? chunk : total - at;
            sb_mqtt_frame_t frame;
            sb_mqtt_frame_status_t status;
            while ((status = sb_mqtt_framer_next(framer, &in, &left, &frame)) == SB_MQTT_FRAME_READY) {
                assert_true(seen < COUNT);
                assert_int_equal(frame.length, lengths[seen]);
                assert_memory_equal(frame.data, stream + offset, frame.length);
                assert_int_equal(frame.type, stream[offset] >> 4);
                assert_true(frame.header_length == 2);
                offset += frame.length;
                seen++;
            }
            assert_int_equal(status, SB_MQTT_FRAME_NEED_MORE);
            assert_int_equal(left, 0);
            assert_int_equal(sb_mqtt_framer_buffered(framer), at + chunk <= total ? at + chunk - offset : 0);
        }
        assert_int_equal(seen, COUNT);
        sb_mqtt_framer_destroy(&framer);
        assert_null(framer);
    }
}

static void test_framer_in_place(void **state)
{
    (void) state;
    uint8_t stream[256];
    size_t lengths[2];
    size_t total = stream_of(stream, sizeof stream, (const char *const[]) { V311_PUBLISH_QOS2, V311_PUBREL }, 2,
                             lengths);
    sb_mqtt_framer_t *framer = sb_mqtt_framer_new(100);
    const uint8_t *in = stream;
    size_t left = total;
    sb_mqtt_frame_t frame;
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_READY);
    assert_ptr_equal(frame.data, stream);      /* whole in the input: not copied */
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_READY);
    assert_ptr_equal(frame.data, stream + lengths[0]);
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_NEED_MORE);
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_NEED_MORE);
    sb_mqtt_framer_destroy(&framer);
}

static void test_framer_limits(void **state)
{
    (void) state;
    /* A 2-byte fixed header and 98 bytes: exactly 100 bytes is fine, 101
     * is not, and the framer says so from the header alone, before the
     * body comes. */
    uint8_t packet[101] = { 0x30, 98, 0x00, 0x01, 'a' };
    sb_mqtt_framer_t *framer = sb_mqtt_framer_new(100);
    const uint8_t *in = packet;
    size_t left = 100;
    sb_mqtt_frame_t frame;
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_READY);
    assert_int_equal(frame.length, 100);
    packet[1] = 99;
    in = packet;
    left = 2;
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_TOO_LARGE);
    left = 5;
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_TOO_LARGE);
    sb_mqtt_framer_destroy(&framer);

    /* The same one byte at a time. */
    framer = sb_mqtt_framer_new(100);
    in = packet;
    left = 1;
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_NEED_MORE);
    left = 1;
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_TOO_LARGE);
    sb_mqtt_framer_destroy(&framer);

    /* A Remaining Length of 5 bytes, whole or byte by byte. */
    static const uint8_t five[] = { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 };
    for (size_t chunk = 1; chunk <= sizeof five; chunk += sizeof five - 1) {
        framer = sb_mqtt_framer_new(0);
        sb_mqtt_frame_status_t status = SB_MQTT_FRAME_NEED_MORE;
        for (size_t at = 0; at < sizeof five && status == SB_MQTT_FRAME_NEED_MORE; at += chunk) {
            in = five + at;
            left = chunk;
            status = sb_mqtt_framer_next(framer, &in, &left, &frame);
        }
        assert_int_equal(status, SB_MQTT_FRAME_MALFORMED);
        sb_mqtt_framer_destroy(&framer);
    }

    /* The largest Remaining Length: refused by the standard's limit only
     * when over it (the framer does not wait for 256 MB to say so). */
    static const uint8_t huge[] = { 0x30, 0xFF, 0xFF, 0xFF, 0x7F };
    framer = sb_mqtt_framer_new(1 << 20);
    in = huge;
    left = sizeof huge;
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_TOO_LARGE);
    sb_mqtt_framer_destroy(&framer);
    framer = sb_mqtt_framer_new(0);
    in = huge;
    left = sizeof huge;
    assert_int_equal(sb_mqtt_framer_next(framer, &in, &left, &frame), SB_MQTT_FRAME_NEED_MORE);
    sb_mqtt_framer_destroy(&framer);
    sb_mqtt_framer_destroy(&framer);   /* twice is harmless */
}

static void test_framer_large_packet(void **state)
{
    (void) state;
    /* 100 kB in 1000-byte reads, twice: the buffer grows with the bytes
     * that come, and is let go between packets. */
    size_t big = 100 * 1000;
    char *payload = malloc(big);
    for (size_t i = 0; i < big; i++)
        payload[i] = (char) i;
    sb_mqtt_packet_t in = { .type = SB_MQTT_PUBLISH };
    in.u.publish.topic = sb_mqtt_str("big");
    in.u.publish.payload = (sb_mqtt_str_t) { payload, big };
    sb_mqtt_buffer_t out;
    sb_mqtt_buffer_init(&out);
    int length = sb_mqtt_encode(&in, SB_MQTT_V311, 0, &out);
    assert_int_equal(sb_mqtt_encode(&in, SB_MQTT_V311, 0, &out), length);
    sb_mqtt_framer_t *framer = sb_mqtt_framer_new(200 * 1000);
    size_t frames = 0;
    for (size_t at = 0; at < out.length; at += 1000) {
        const uint8_t *read = out.data + at;
        size_t left = out.length - at < 1000 ? out.length - at : 1000;
        sb_mqtt_frame_t frame;
        while (sb_mqtt_framer_next(framer, &read, &left, &frame) == SB_MQTT_FRAME_READY) {
            assert_int_equal(frame.length, (size_t) length);
            assert_memory_equal(frame.data, out.data, frame.length);
            frames++;
        }
        assert_true(sb_mqtt_framer_buffered(framer) < (size_t) length);
    }
    assert_int_equal(frames, 2);
    sb_mqtt_framer_destroy(&framer);
    sb_mqtt_buffer_release(&out);
    free(payload);
}

/* ===================================================== refused packets */

typedef struct {
    const char *name;
    sb_mqtt_version_t version;
    const char *hex;           /* the whole packet */
    uint8_t reason;            /* 0: decodes */
    uint8_t connack_version;
} refusal_t;

#define CONNECT_V4(flags_and_rest) "00044d515454 04 " flags_and_rest
#define CONNECT_V5(flags_and_rest) "00044d515454 05 " flags_and_rest

/* A packet from a first byte and a body: computes the Remaining Length. */
static size_t packet_of(const char *first, const char *body, uint8_t *out, size_t room)
{
    uint8_t body_bytes[512];
    size_t n = unhex(body, body_bytes, sizeof body_bytes);
    size_t at = unhex(first, out, room);
    size_t value = n;
    do {
        uint8_t byte = value & 0x7F;
        value >>= 7;
        out[at++] = value ? byte | 0x80 : byte;
    } while (value);
    memcpy(out + at, body_bytes, n);
    return at + n;
}

static void check_refusals(const refusal_t *cases, size_t count, const char *first_hex)
{
    for (size_t i = 0; i < count; i++) {
        const refusal_t *c = &cases[i];
        uint8_t bytes[600];
        /* Without first_hex, the first two hex digits are the first byte. */
        char first[3] = { c->hex[0], c->hex[1], 0 };
        size_t n = first_hex ? packet_of(first_hex, c->hex, bytes, sizeof bytes)
                             : packet_of(first, c->hex + 2, bytes, sizeof bytes);
        sb_mqtt_error_t error;
        sb_mqtt_packet_t *p = sb_mqtt_decode(bytes, n, c->version, &error);
        if (c->reason == 0) {
            if (!p)
                fail_msg("%s: refused with 0x%02x (%s)", c->name, error.reason, error.detail);
            sb_mqtt_packet_destroy(&p);
            continue;
        }
        if (p)
            fail_msg("%s: decoded", c->name);
        if (error.reason != c->reason || error.connack_version != c->connack_version)
            fail_msg("%s: 0x%02x (%s) CONNACK v%d, not 0x%02x v%d", c->name, error.reason, error.detail,
                     error.connack_version, c->reason, c->connack_version);
        assert_non_null(error.detail);
        assert_non_null(sb_mqtt_reason_name(error.reason));
    }
}

static void test_refused_connect(void **state)
{
    (void) state;
    static const refusal_t cases[] = {
        { "3.1.1 plain", 0, CONNECT_V4("02 003c 0000"), 0, 0 },
        { "reserved flag", 0, CONNECT_V4("03 003c 0000"), 0x81, 0 },
        { "will QoS 3", 0, CONNECT_V4("1e 003c 0000 0001 74 0000"), 0x81, 0 },
        { "will QoS without will", 0, CONNECT_V4("0a 003c 0000"), 0x81, 0 },
        { "will retain without will", 0, CONNECT_V4("22 003c 0000"), 0x81, 0 },
        { "3.1.1 password without user name", 0, CONNECT_V4("42 003c 0000 0002 7077"), 0x81, 0 },
        { "5.0 password without user name", 0, CONNECT_V5("42 003c 00 0000 0002 7077"), 0, 0 },
        { "protocol name", 0, "00044d515458 04 02 003c 0000", 0x82, 0 },
        { "protocol level 6", 0, "00044d515454 06 02 003c 0000", 0x84, 4 },
        { "protocol level 3 named MQTT", 0, "00044d515454 03 02 003c 0000", 0x84, 4 },
        { "MQIsdp level 4", 0, "00064d5149736470 04 02 003c 0000", 0x84, 4 },
        { "3.1", 0, "00064d5149736470 03 02 003c 0001 61", 0, 0 },
        { "3.1 empty client id", 0, "00064d5149736470 03 02 003c 0000", 0x85, 3 },
        { "3.1 client id of 24", 0, "00064d5149736470 03 02 003c 0018 616161616161616161616161616161616161616161616161",
          0x85, 3 },
        { "3.1.1 empty id, no clean session", 0, CONNECT_V4("00 003c 0000"), 0x85, 4 },
        { "5.0 empty id, no clean start", 0, CONNECT_V5("00 003c 00 0000"), 0, 0 },
        { "3.1.1 bad UTF-8 client id", 0, CONNECT_V4("02 003c 0001 ff"), 0x81, 0 },
        { "5.0 bad UTF-8 client id", 0, CONNECT_V5("02 003c 00 0001 ff"), 0x81, 5 },
        { "U+0000 in the user name", 0, CONNECT_V4("82 003c 0000 0003 610062"), 0x81, 0 },
        { "a control character in the client id", 0, CONNECT_V4("02 003c 0002 610a"), 0x81, 0 },
        { "3.1.1 will topic with a wildcard", 0, CONNECT_V4("06 003c 0000 0003 612f23 0000"), 0x90, 0 },
        { "5.0 will topic with a wildcard", 0, CONNECT_V5("06 003c 00 0000 00 0003 612f2b 0000"), 0x90, 5 },
        { "empty will topic", 0, CONNECT_V4("06 003c 0000 0000 0000"), 0x90, 0 },
        { "will payload overruns", 0, CONNECT_V4("06 003c 0000 0001 74 0005 61"), 0x81, 0 },
        { "Session Expiry twice", 0, CONNECT_V5("02 003c 0a 110000000a 110000000a 0000"), 0x82, 5 },
        { "Will Delay in CONNECT properties", 0, CONNECT_V5("02 003c 05 1800000005 0000"), 0x81, 5 },
        { "Session Expiry in will properties", 0, CONNECT_V5("06 003c 00 0000 05 1100000005 0001 74 0000"), 0x81, 5 },
        { "Authentication Data without method", 0, CONNECT_V5("02 003c 03 160000 0000"), 0x82, 5 },
        { "Receive Maximum 0", 0, CONNECT_V5("02 003c 03 210000 0000"), 0x82, 5 },
        { "Maximum Packet Size 0", 0, CONNECT_V5("02 003c 05 2700000000 0000"), 0x82, 5 },
        { "Request Problem Information 2", 0, CONNECT_V5("02 003c 02 1702 0000"), 0x82, 5 },
        { "Property Length overruns", 0, CONNECT_V5("02 003c 09 0000"), 0x81, 5 },
        { "Response Topic with a wildcard in the will", 0,
          CONNECT_V5("06 003c 00 0000 06 08 0003 612f23 0001 74 0000"), 0x82, 5 },
        { "bad UTF-8 in a User Property", 0, CONNECT_V5("02 003c 07 26 0001 ff 0001 61 0000"), 0x81, 5 },
        { "bytes after the end", 0, CONNECT_V4("02 003c 0000 00"), 0x81, 0 },
        { "cut short", 0, CONNECT_V4("02 00"), 0x81, 0 },
        { "user name missing", 0, CONNECT_V4("82 003c 0000"), 0x81, 0 },
        { "a second CONNECT", SB_MQTT_V311, CONNECT_V4("02 003c 0000"), 0x82, 0 },
    };
    check_refusals(cases, sizeof cases / sizeof cases[0], "10");
}

static void test_refused_publish(void **state)
{
    (void) state;
    static const refusal_t cases[] = {
        { "before CONNECT", 0, "30 0001 61", 0x82, 0 },
        { "QoS 3", SB_MQTT_V311, "36 0001 61 0001", 0x81, 0 },
        { "DUP on QoS 0", SB_MQTT_V311, "38 0001 61", 0x81, 0 },
        { "DUP on QoS 1", SB_MQTT_V311, "3a 0001 61 0001", 0, 0 },
        { "'+' in the topic", SB_MQTT_V311, "30 0003 612f2b", 0x90, 0 },
        { "'#' as the topic", SB_MQTT_V5, "30 0001 23 00", 0x90, 0 },
        { "'+' inside a level", SB_MQTT_V311, "30 0002 612b", 0x90, 0 },
        { "3.1.1 empty topic", SB_MQTT_V311, "30 0000", 0x82, 0 },
        { "5.0 empty topic without alias", SB_MQTT_V5, "30 0000 00", 0x82, 0 },
        { "5.0 empty topic with alias", SB_MQTT_V5, "30 0000 03 230001", 0, 0 },
        { "Topic Alias 0", SB_MQTT_V5, "30 0000 03 230000", 0x94, 0 },
        { "Subscription Identifier from a client", SB_MQTT_V5, "30 0001 61 02 0b01", 0x82, 0 },
        { "packet id 0", SB_MQTT_V311, "32 0001 61 0000", 0x82, 0 },
        { "bad UTF-8 in the topic", SB_MQTT_V311, "30 0001 c3", 0x81, 0 },
        { "surrogate in the topic", SB_MQTT_V311, "30 0003 eda080", 0x81, 0 },
        { "overlong '/' in the topic", SB_MQTT_V311, "30 0002 c0af", 0x81, 0 },
        { "U+0000 in the topic", SB_MQTT_V311, "30 0002 6100", 0x81, 0 },
        { "U+FFFF in the topic", SB_MQTT_V311, "30 0003 efbfbf", 0x81, 0 },
        { "topic overruns", SB_MQTT_V311, "30 0005 61", 0x81, 0 },
        { "no packet id", SB_MQTT_V311, "32 0001 61 00", 0x81, 0 },
        { "Session Expiry in a PUBLISH", SB_MQTT_V5, "30 0001 61 05 1100000001", 0x81, 0 },
        { "Payload Format twice", SB_MQTT_V5, "30 0001 61 04 0101 0101", 0x82, 0 },
        { "Payload Format 2", SB_MQTT_V5, "30 0001 61 02 0102", 0x82, 0 },
        { "Response Topic with a wildcard", SB_MQTT_V5, "30 0001 61 06 08 0003 612f23", 0x82, 0 },
        { "unknown property", SB_MQTT_V5, "30 0001 61 02 7f00", 0x81, 0 },
        { "property id of 2 bytes", SB_MQTT_V5, "30 0001 61 03 810100", 0x81, 0 },
        { "Property Length overruns", SB_MQTT_V5, "30 0001 61 05 0101", 0x81, 0 },
        { "property overruns its block", SB_MQTT_V5, "30 0001 61 02 0200 000000", 0x81, 0 },
        { "no Property Length", SB_MQTT_V5, "30 0001 61", 0x81, 0 },
        { "user properties repeat", SB_MQTT_V5, "30 0001 61 0e 26 0001 61 0001 62 26 0001 61 0001 63 7879", 0, 0 },
        { "a binary payload", SB_MQTT_V311, "30 0001 61 00ff00c3", 0, 0 },
    };
    check_refusals(cases, sizeof cases / sizeof cases[0], NULL);
}

static void test_refused_others(void **state)
{
    (void) state;
    static const refusal_t cases[] = {
        { "3.1.1 PUBACK with a reason", SB_MQTT_V311, "40 000100", 0x81, 0 },
        { "PUBACK packet id 0", SB_MQTT_V311, "40 0000", 0x82, 0 },
        { "PUBACK cut short", SB_MQTT_V5, "40 00", 0x81, 0 },
        { "PUBREL flags 0", SB_MQTT_V311, "60 0001", 0x81, 0 },
        { "PUBACK flags 2", SB_MQTT_V311, "42 0001", 0x81, 0 },
        { "PUBACK reason 0x92", SB_MQTT_V5, "40 0001 92", 0x82, 0 },
        { "PUBREL reason 0x10", SB_MQTT_V5, "62 0001 10", 0x82, 0 },
        { "PUBREL reason 0x92", SB_MQTT_V5, "62 0001 92", 0, 0 },
        { "PUBACK with Topic Alias", SB_MQTT_V5, "40 0001 00 03 230001", 0x81, 0 },
        { "PUBACK with Reason String", SB_MQTT_V5, "40 0001 80 04 1f000178", 0, 0 },
        { "SUBSCRIBE flags 0", SB_MQTT_V311, "80 0001 0001 61 00", 0x81, 0 },
        { "SUBSCRIBE without filters", SB_MQTT_V311, "82 0001", 0x82, 0 },
        { "SUBSCRIBE QoS 3", SB_MQTT_V311, "82 0001 0001 61 03", 0x81, 0 },
        { "3.1.1 SUBSCRIBE option bit 2", SB_MQTT_V311, "82 0001 0001 61 04", 0x81, 0 },
        { "5.0 SUBSCRIBE reserved bits", SB_MQTT_V5, "82 0001 00 0001 61 c0", 0x81, 0 },
        { "Retain Handling 3", SB_MQTT_V5, "82 0001 00 0001 61 30", 0x82, 0 },
        { "No Local on a shared subscription", SB_MQTT_V5, "82 0001 00 000a 2473686172652f672f61 04", 0x82, 0 },
        { "Subscription Identifier 0", SB_MQTT_V5, "82 0001 02 0b00 0001 61 00", 0x82, 0 },
        { "two Subscription Identifiers", SB_MQTT_V5, "82 0001 04 0b01 0b02 0001 61 00", 0x82, 0 },
        { "Subscription Identifier of 5 bytes", SB_MQTT_V5, "82 0001 06 0bffffffff01 0001 61 00", 0x81, 0 },
        { "SUBSCRIBE with Topic Alias", SB_MQTT_V5, "82 0001 03 230001 0001 61 00", 0x81, 0 },
        { "SUBSCRIBE packet id 0", SB_MQTT_V311, "82 0000 0001 61 00", 0x82, 0 },
        { "SUBSCRIBE options missing", SB_MQTT_V311, "82 0001 0001 61", 0x81, 0 },
        { "bad UTF-8 in a filter", SB_MQTT_V311, "82 0001 0001 80 00", 0x81, 0 },
        { "UNSUBSCRIBE without filters", SB_MQTT_V5, "a2 0001 00", 0x82, 0 },
        { "UNSUBSCRIBE flags 0", SB_MQTT_V311, "a0 0001 0001 61", 0x81, 0 },
        { "UNSUBSCRIBE with Subscription Identifier", SB_MQTT_V5, "a2 0001 02 0b01 0001 61", 0x81, 0 },
        { "PINGREQ with a body", SB_MQTT_V311, "c0 00", 0x81, 0 },
        { "PINGREQ flags", SB_MQTT_V311, "c1", 0x81, 0 },
        { "3.1.1 DISCONNECT with a body", SB_MQTT_V311, "e0 00", 0x81, 0 },
        { "DISCONNECT reason 0x05", SB_MQTT_V5, "e0 05", 0x82, 0 },
        { "DISCONNECT with will", SB_MQTT_V5, "e0 04", 0, 0 },
        { "DISCONNECT with Session Expiry", SB_MQTT_V5, "e0 00 05 1100000000", 0, 0 },
        { "DISCONNECT with Topic Alias", SB_MQTT_V5, "e0 00 03 230001", 0x81, 0 },
        { "3.1.1 AUTH", SB_MQTT_V311, "f0", 0x81, 0 },
        { "AUTH reason 0x01", SB_MQTT_V5, "f0 01", 0x82, 0 },
        { "AUTH without method", SB_MQTT_V5, "f0 18 03 1f0000", 0x82, 0 },
        { "AUTH continue", SB_MQTT_V5, "f0 18 07 15000474657374", 0, 0 },
        { "AUTH short", SB_MQTT_V5, "f0", 0, 0 },
        { "type 0", SB_MQTT_V311, "00", 0x81, 0 },
        { "CONNACK from a client", SB_MQTT_V311, "20 0000", 0x82, 0 },
        { "SUBACK from a client", SB_MQTT_V311, "90 000100", 0x82, 0 },
        { "PINGRESP from a client", SB_MQTT_V311, "d0", 0x82, 0 },
    };
    check_refusals(cases, sizeof cases / sizeof cases[0], NULL);
}

static void test_refused_lengths(void **state)
{
    (void) state;
    static const struct { const char *name, *hex; } cases[] = {
        { "Remaining Length too long", "3005 0001 61" },
        { "Remaining Length too short", "3002 0001 61" },
        { "5-byte Remaining Length", "30ffffffff01" },
        { "no Remaining Length", "30" },
        { "Remaining Length cut", "3080" },
        { "nothing", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t bytes[32];
        size_t n = unhex(cases[i].hex, bytes, sizeof bytes);
        sb_mqtt_error_t error;
        assert_null(sb_mqtt_decode(bytes, n, SB_MQTT_V311, &error));
        if (error.reason != SB_MQTT_RC_MALFORMED_PACKET)
            fail_msg("%s: 0x%02x", cases[i].name, error.reason);
    }
}

static void test_subscription_filters(void **state)
{
    (void) state;
    /* A bad filter is answered per filter (SUBACK 0x8F), not by closing. */
    static const struct { const char *filter; bool valid; const char *group, *topic_filter; } cases[] = {
        { "#", true, "", "#" },
        { "+", true, "", "+" },
        { "a/+/b", true, "", "a/+/b" },
        { "+/+", true, "", "+/+" },
        { "/", true, "", "/" },
        { "a/#", true, "", "a/#" },
        { "a b/c", true, "", "a b/c" },
        { "$SYS/#", true, "", "$SYS/#" },
        { "$share/g/a/#", true, "g", "a/#" },
        { "$share/g/#", true, "g", "#" },
        { "$shared/g/a", true, "", "$shared/g/a" },
        { "a/#/b", false, NULL, NULL },
        { "a#", false, NULL, NULL },
        { "a+", false, NULL, NULL },
        { "+a/b", false, NULL, NULL },
        { "", false, NULL, NULL },
        { "$share/g", false, NULL, NULL },
        { "$share/g/", false, NULL, NULL },
        { "$share//a", false, NULL, NULL },
        { "$share/g+/a", false, NULL, NULL },
        { "$share/#/a", false, NULL, NULL },
        { "$share/g/a/#/b", false, NULL, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_mqtt_subscription_t item = { .filter = sb_mqtt_str(cases[i].filter) };
        sb_mqtt_packet_t in = { .type = SB_MQTT_SUBSCRIBE };
        in.u.subscribe = (sb_mqtt_subscribe_t) { .packet_id = 1, .items = &item, .count = 1 };
        for (int version = SB_MQTT_V311; version <= SB_MQTT_V5; version++) {
            sb_mqtt_packet_t *back = round_trip(&in, (sb_mqtt_version_t) version, NULL);
            const sb_mqtt_subscription_t *got = &back->u.subscribe.items[0];
            if ((got->reason == 0) != cases[i].valid)
                fail_msg("'%s': reason 0x%02x", cases[i].filter, got->reason);
            if (cases[i].valid) {
                assert_str(got->share_group, cases[i].group);
                assert_str(got->topic_filter, cases[i].topic_filter);
            }
            else
                assert_int_equal(got->reason, SB_MQTT_RC_TOPIC_FILTER_INVALID);
            sb_mqtt_packet_destroy(&back);
        }
    }
    assert_true(sb_mqtt_topic_filter_is_valid(BYTES("sport/tennis/#")));
    assert_false(sb_mqtt_topic_filter_is_valid(BYTES("sport/tennis#")));
    assert_true(sb_mqtt_topic_name_is_valid(BYTES("sport/tennis")));
    assert_false(sb_mqtt_topic_name_is_valid(BYTES("")));
    assert_false(sb_mqtt_topic_name_is_valid(BYTES("sport/+")));
}

static void test_strings(void **state)
{
    (void) state;
    static const struct { const char *name, *bytes; size_t length; bool valid; } cases[] = {
        { "empty", BYTES(""), true },
        { "ASCII with a space", BYTES("a b"), true },
        { "é", BYTES("caf\xC3\xA9"), true },
        { "€", BYTES("\xE2\x82\xAC"), true },
        { "emoji", BYTES("\xF0\x9F\x98\x80"), true },
        { "U+00A0, after C1", BYTES("\xC2\xA0"), true },
        { "U+FDCF", BYTES("\xEF\xB7\x8F"), true },
        { "U+FDF0", BYTES("\xEF\xB7\xB0"), true },
        { "U+FFFD", BYTES("\xEF\xBF\xBD"), true },
        { "U+10FFFD", BYTES("\xF4\x8F\xBF\xBD"), true },
        { "U+0000", BYTES("a\0"), false },
        { "U+0001", BYTES("\x01"), false },
        { "U+001F", BYTES("\x1F"), false },
        { "U+007F", BYTES("\x7F"), false },
        { "U+0080", BYTES("\xC2\x80"), false },
        { "U+009F", BYTES("\xC2\x9F"), false },
        { "U+FDD0", BYTES("\xEF\xB7\x90"), false },
        { "U+FDEF", BYTES("\xEF\xB7\xAF"), false },
        { "U+FFFE", BYTES("\xEF\xBF\xBE"), false },
        { "U+1FFFF", BYTES("\xF0\x9F\xBF\xBF"), false },
        { "U+10FFFF", BYTES("\xF4\x8F\xBF\xBF"), false },
        { "a lone continuation", BYTES("\x80"), false },
        { "a surrogate", BYTES("\xED\xA0\x80"), false },
        { "overlong NUL", BYTES("\xC0\x80"), false },
        { "above U+10FFFF", BYTES("\xF4\x90\x80\x80"), false },
        { "cut short", BYTES("\xE2\x82"), false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (sb_mqtt_string_is_valid(cases[i].bytes, cases[i].length) != cases[i].valid)
            fail_msg("%s", cases[i].name);
}

static void test_names(void **state)
{
    (void) state;
    assert_string_equal(sb_mqtt_reason_name(0x81), "Malformed Packet");
    assert_string_equal(sb_mqtt_reason_name(0x95), "Packet too large");
    assert_string_equal(sb_mqtt_reason_name(0xA2), "Wildcard Subscriptions not supported");
    assert_string_equal(sb_mqtt_reason_name(0), "Success");
    assert_null(sb_mqtt_reason_name(0x03));
    assert_null(sb_mqtt_reason_name(0xA3));
    assert_string_equal(sb_mqtt_type_name(SB_MQTT_PUBLISH), "PUBLISH");
    assert_string_equal(sb_mqtt_type_name(SB_MQTT_AUTH), "AUTH");
    assert_string_equal(sb_mqtt_type_name(0), "?");
    assert_string_equal(sb_mqtt_type_name(16), "?");
    assert_string_equal(sb_mqtt_property_name(SB_MQTT_PROP_TOPIC_ALIAS_MAXIMUM), "Topic Alias Maximum");
    assert_null(sb_mqtt_property_name(0x04));
    assert_true(sb_mqtt_reason_allowed(SB_MQTT_RC_SESSION_TAKEN_OVER, SB_MQTT_DISCONNECT));
    assert_false(sb_mqtt_reason_allowed(SB_MQTT_RC_SESSION_TAKEN_OVER, SB_MQTT_CONNACK));
    assert_true(sb_mqtt_reason_allowed(SB_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND, SB_MQTT_PUBCOMP));
    assert_false(sb_mqtt_reason_allowed(SB_MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND, SB_MQTT_PUBACK));
    assert_true(sb_mqtt_reason_allowed(SB_MQTT_RC_GRANTED_QOS_2, SB_MQTT_SUBACK));
    assert_true(sb_mqtt_reason_allowed(SB_MQTT_RC_SUCCESS, SB_MQTT_AUTH));
    assert_false(sb_mqtt_reason_allowed(SB_MQTT_RC_SUCCESS, SB_MQTT_PUBLISH));
    assert_false(sb_mqtt_reason_allowed(0x03, SB_MQTT_DISCONNECT));
    assert_false(sb_mqtt_reason_allowed(0x00, 0));
    assert_int_equal(sb_mqtt_reason_to_v3_suback(2), 2);
    assert_int_equal(sb_mqtt_reason_to_v3_suback(SB_MQTT_RC_QUOTA_EXCEEDED), 0x80);
    assert_int_equal(sb_mqtt_reason_to_v3_connack(SB_MQTT_RC_BAD_AUTHENTICATION_METHOD), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_v311_connect),
        cmocka_unit_test(test_real_v5_connect),
        cmocka_unit_test(test_real_paho),
        cmocka_unit_test(test_real_publish),
        cmocka_unit_test(test_real_subscribe),
        cmocka_unit_test(test_real_small_packets),
        cmocka_unit_test(test_real_server_packets),
        cmocka_unit_test(test_connack_round_trip),
        cmocka_unit_test(test_publish_round_trip),
        cmocka_unit_test(test_ack_round_trips),
        cmocka_unit_test(test_suback_round_trips),
        cmocka_unit_test(test_disconnect_and_auth_round_trips),
        cmocka_unit_test(test_client_packets_round_trip),
        cmocka_unit_test(test_many_items),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_framer_chunks),
        cmocka_unit_test(test_framer_in_place),
        cmocka_unit_test(test_framer_limits),
        cmocka_unit_test(test_framer_large_packet),
        cmocka_unit_test(test_refused_connect),
        cmocka_unit_test(test_refused_publish),
        cmocka_unit_test(test_refused_others),
        cmocka_unit_test(test_refused_lengths),
        cmocka_unit_test(test_subscription_filters),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
