/* test_mqtt_session.c — one MQTT session's state (gateways/mqtt/mqtt_session.c):
 * subscriptions and their matching, the bounded queue, packet ids and the
 * acknowledgement flows, QoS 2 ids awaiting PUBREL, the will. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt_packet.h"
#include "mqtt_relay.h"
#include "mqtt_session.h"

static sb_mqtt_message_t *message(const char *topic, uint8_t qos)
{
    return sb_mqtt_message_new(topic, "payload", 7, qos, false);
}

static void subscribe(sb_mqtt_session_t *session, const char *filter, uint8_t qos, bool skip)
{
    sb_mqtt_filter_t subscription = { (char *) filter, qos, false, false, 0, 0, skip };
    sb_mqtt_session_subscribe(session, &subscription);
}

static void test_match_takes_the_highest_qos(void **state)
{
    (void) state;
    sb_mqtt_session_t *session = sb_mqtt_session_new("c", 1, 10);
    subscribe(session, "home/#", 0, false);
    subscribe(session, "home/+/temp", 2, false);
    assert_int_equal(sb_mqtt_session_match(session, "home/kitchen/temp", false, false)->qos, 2);
    assert_int_equal(sb_mqtt_session_match(session, "home/door", false, false)->qos, 0);
    assert_null(sb_mqtt_session_match(session, "work/x", false, false));
    assert_null(sb_mqtt_session_match(session, "$sys/x", false, false));
    /* subscribing again replaces */
    subscribe(session, "home/#", 1, true);
    assert_int_equal(sb_mqtt_session_match(session, "home/door", false, false)->qos, 1);
    assert_null(sb_mqtt_session_match(session, "home/door", true, false));
    assert_true(sb_mqtt_session_unsubscribe(session, "home/#"));
    assert_false(sb_mqtt_session_unsubscribe(session, "home/#"));
    assert_null(sb_mqtt_session_match(session, "home/door", false, false));
    sb_mqtt_session_destroy(&session);
    assert_null(session);
}

static void test_full_queue_drops_the_oldest_qos0_first(void **state)
{
    (void) state;
    sb_mqtt_session_t *session = sb_mqtt_session_new("c", 1, 3);
    sb_mqtt_session_push(session, message("a", 1));
    sb_mqtt_session_push(session, message("b", 0));
    sb_mqtt_session_push(session, message("c", 1));
    sb_mqtt_session_push(session, message("d", 1));   /* b goes */
    sb_mqtt_session_push(session, message("e", 1));   /* then the oldest: a */
    assert_int_equal(session->dropped, 2);
    const char *expected[] = { "c", "d", "e" };
    for (size_t i = 0; i < 3; i++) {
        bool owned;
        sb_mqtt_message_t *next = sb_mqtt_session_next(session, 10, &owned);
        assert_non_null(next);
        assert_false(owned);
        assert_string_equal(next->topic, expected[i]);
    }
    sb_mqtt_session_destroy(&session);
}

static void test_window_and_acknowledgements(void **state)
{
    (void) state;
    sb_mqtt_session_t *session = sb_mqtt_session_new("c", 1, 10);
    sb_mqtt_session_push(session, message("one", 1));
    sb_mqtt_session_push(session, message("two", 2));
    sb_mqtt_session_push(session, message("zero", 0));
    bool owned;
    sb_mqtt_message_t *first = sb_mqtt_session_next(session, 1, &owned);
    assert_string_equal(first->topic, "one");
    uint16_t id1 = first->packet_id;
    assert_true(id1 > 0);
    assert_null(sb_mqtt_session_next(session, 1, &owned));   /* the window is full */
    assert_false(sb_mqtt_session_acknowledge(session, SB_MQTT_PUBREC, id1));   /* QoS 1: not PUBREC */
    assert_true(sb_mqtt_session_acknowledge(session, SB_MQTT_PUBACK, id1));
    assert_false(sb_mqtt_session_acknowledge(session, SB_MQTT_PUBACK, id1));   /* once */
    sb_mqtt_message_t *second = sb_mqtt_session_next(session, 1, &owned);
    assert_string_equal(second->topic, "two");
    uint16_t id2 = second->packet_id;
    assert_int_not_equal(id2, id1);
    assert_false(sb_mqtt_session_acknowledge(session, SB_MQTT_PUBCOMP, id2));  /* PUBREC first */
    assert_true(sb_mqtt_session_acknowledge(session, SB_MQTT_PUBREC, id2));
    assert_true(second->released);
    assert_int_equal(sb_mqtt_session_in_flight(session), 1);
    assert_true(sb_mqtt_session_acknowledge(session, SB_MQTT_PUBCOMP, id2));
    assert_int_equal(sb_mqtt_session_in_flight(session), 0);
    sb_mqtt_message_t *zero = sb_mqtt_session_next(session, 1, &owned);
    assert_true(owned);
    assert_int_equal(zero->packet_id, 0);
    sb_mqtt_message_destroy(&zero);
    assert_null(sb_mqtt_session_next(session, 1, &owned));
    sb_mqtt_session_destroy(&session);
}

/* Ids never collide with one in flight, even after they wrap, and a
 * forgotten message frees its slot in the window. */
static void test_packet_ids_skip_those_in_flight(void **state)
{
    (void) state;
    sb_mqtt_session_t *session = sb_mqtt_session_new("c", 1, 10);
    session->next_packet_id = 65535;
    sb_mqtt_session_push(session, message("a", 1));
    sb_mqtt_session_push(session, message("b", 1));
    bool owned;
    sb_mqtt_message_t *a = sb_mqtt_session_next(session, 10, &owned);
    sb_mqtt_message_t *b = sb_mqtt_session_next(session, 10, &owned);
    assert_int_equal(a->packet_id, 65535);
    assert_int_equal(b->packet_id, 1);   /* 0 is no id */
    session->next_packet_id = 65535;     /* wrapped round to ids still in flight */
    sb_mqtt_session_push(session, message("c", 1));
    sb_mqtt_message_t *c = sb_mqtt_session_next(session, 10, &owned);
    assert_int_equal(c->packet_id, 2);
    assert_ptr_equal(sb_mqtt_session_find(session, 1), b);
    sb_mqtt_session_forget(session, 1);
    assert_null(sb_mqtt_session_find(session, 1));
    assert_int_equal(sb_mqtt_session_in_flight(session), 2);
    sb_mqtt_session_destroy(&session);
}

/* A reconnect with a smaller window: the newest unreleased go back to the
 * head of the queue, in order, and keep their ids when sent again. */
static void test_fit_window_requeues_with_the_same_ids(void **state)
{
    (void) state;
    sb_mqtt_session_t *session = sb_mqtt_session_new("c", 1, 10);
    const char *topics[] = { "q2", "one", "two", "three" };
    sb_mqtt_session_push(session, message(topics[0], 2));
    for (int i = 1; i < 4; i++)
        sb_mqtt_session_push(session, message(topics[i], 1));
    sb_mqtt_session_push(session, message("later", 1));
    bool owned;
    uint16_t ids[4];
    for (int i = 0; i < 4; i++) {
        sb_mqtt_message_t *sent = sb_mqtt_session_next(session, 10, &owned);
        sent->sent = true;
        ids[i] = sent->packet_id;
    }
    assert_true(sb_mqtt_session_acknowledge(session, SB_MQTT_PUBREC, ids[0]));   /* released */
    sb_mqtt_session_fit_window(session, 2);
    /* the released one stays (its PUBREL is due) and counts; "one" fits */
    assert_int_equal(sb_mqtt_session_in_flight(session), 2);
    assert_null(sb_mqtt_session_next(session, 2, &owned));
    assert_true(sb_mqtt_session_acknowledge(session, SB_MQTT_PUBCOMP, ids[0]));
    assert_true(sb_mqtt_session_acknowledge(session, SB_MQTT_PUBACK, ids[1]));
    for (int i = 2; i < 4; i++) {
        sb_mqtt_message_t *again = sb_mqtt_session_next(session, 2, &owned);
        assert_string_equal(again->topic, topics[i]);
        assert_int_equal(again->packet_id, ids[i]);
    }
    assert_null(sb_mqtt_session_next(session, 2, &owned));
    assert_true(sb_mqtt_session_acknowledge(session, SB_MQTT_PUBACK, ids[2]));
    sb_mqtt_message_t *later = sb_mqtt_session_next(session, 2, &owned);
    assert_string_equal(later->topic, "later");
    assert_int_not_equal(later->packet_id, ids[3]);
    sb_mqtt_session_destroy(&session);
}

/* A will the hub cannot carry as text is never handed out for publishing. */
static void test_a_will_with_a_nul_byte_is_dropped(void **state)
{
    (void) state;
    sb_mqtt_session_t *session = sb_mqtt_session_new("c", 1, 10);
    sb_mqtt_session_set_will(session, sb_mqtt_message_new("status/c", "of\0f", 4, 0, false), 0);
    assert_null(sb_mqtt_session_take_will(session));
    assert_null(session->will);
    sb_mqtt_session_destroy(&session);
}

static void test_qos2_ids_wait_for_release(void **state)
{
    (void) state;
    sb_mqtt_session_t *session = sb_mqtt_session_new("c", 1, 10);
    assert_false(sb_mqtt_session_awaits_release(session, 7));
    sb_mqtt_session_await_release(session, 7);
    assert_true(sb_mqtt_session_awaits_release(session, 7));
    assert_true(sb_mqtt_session_release(session, 7));
    assert_false(sb_mqtt_session_release(session, 7));
    sb_mqtt_session_destroy(&session);
}

static void test_will_is_taken_once(void **state)
{
    (void) state;
    sb_mqtt_session_t *session = sb_mqtt_session_new("c", 1, 10);
    sb_mqtt_session_set_will(session, message("status/c", 1), 30);
    assert_int_equal(session->will_delay_s, 30);
    sb_mqtt_session_set_will(session, message("status/c2", 0), 0);   /* replaces, no leak */
    sb_mqtt_message_t *will = sb_mqtt_session_take_will(session);
    assert_string_equal(will->topic, "status/c2");
    assert_null(sb_mqtt_session_take_will(session));
    sb_mqtt_message_destroy(&will);
    sb_mqtt_session_set_will(session, message("status/c3", 0), 0);   /* freed with the session */
    sb_mqtt_session_destroy(&session);
}

/* The v5 properties a publish hands on survive the trip through the hub's text. */
static void test_relayed_properties(void **state)
{
    (void) state;
    sb_mqtt_properties_t none = { 0 };
    assert_null(sb_mqtt_relay_encode(&none));
    sb_mqtt_user_property_t users[] = { { sb_mqtt_str("room"), sb_mqtt_str("hall") },
                                        { sb_mqtt_str("room"), sb_mqtt_str("attic") } };
    sb_mqtt_properties_t p = { 0 };
    p.content_type = sb_mqtt_str("text/plain");
    sb_mqtt_mark(&p, SB_MQTT_PROP_CONTENT_TYPE);
    p.message_expiry_interval = 60;
    sb_mqtt_mark(&p, SB_MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
    p.correlation_data = (sb_mqtt_str_t) { "\0x", 2 };
    sb_mqtt_mark(&p, SB_MQTT_PROP_CORRELATION_DATA);
    p.topic_alias = 3;   /* not handed on */
    sb_mqtt_mark(&p, SB_MQTT_PROP_TOPIC_ALIAS);
    p.user_properties = users;
    p.user_property_count = 2;
    char *text = sb_mqtt_relay_encode(&p);
    assert_non_null(text);
    sb_mqtt_packet_t *packet = sb_mqtt_relay_decode(text);
    assert_non_null(packet);
    const sb_mqtt_properties_t *back = &packet->u.publish.properties;
    assert_string_equal(back->content_type.data, "text/plain");
    assert_int_equal(back->message_expiry_interval, 60);
    assert_int_equal(back->correlation_data.length, 2);
    assert_memory_equal(back->correlation_data.data, "\0x", 2);
    assert_false(sb_mqtt_has(back, SB_MQTT_PROP_TOPIC_ALIAS));
    assert_int_equal(back->user_property_count, 2);
    assert_string_equal(back->user_properties[1].value.data, "attic");
    sb_mqtt_packet_destroy(&packet);
    free(text);
    assert_null(sb_mqtt_relay_decode("zz"));
    assert_null(sb_mqtt_relay_decode("301"));
    assert_null(sb_mqtt_relay_decode("c000"));   /* a PINGREQ is no PUBLISH */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_takes_the_highest_qos),
        cmocka_unit_test(test_full_queue_drops_the_oldest_qos0_first),
        cmocka_unit_test(test_window_and_acknowledgements),
        cmocka_unit_test(test_packet_ids_skip_those_in_flight),
        cmocka_unit_test(test_fit_window_requeues_with_the_same_ids),
        cmocka_unit_test(test_a_will_with_a_nul_byte_is_dropped),
        cmocka_unit_test(test_qos2_ids_wait_for_release),
        cmocka_unit_test(test_will_is_taken_once),
        cmocka_unit_test(test_relayed_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
