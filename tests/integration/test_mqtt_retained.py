"""Retained MQTT 5 messages keep what Mosquitto keeps: the publisher's
properties (user properties, content type, payload format indicator,
response topic, correlation data) reach a later v5 subscriber, also after a
broker restart (the broker keeps them in SQLite with the value), and a
retained message with a Message Expiry Interval is delivered with what is
left of it, then is gone once it has expired (MQTT 5.0 §3.3.2.3.3); a
retained will keeps its properties and expiry as well. With
python3-paho-mqtt (v5 and 3.1.1) against a `components()` hub."""
import queue

from paho.mqtt.packettypes import PacketTypes

from conftest import READ_TIMEOUT, STARTUP_TIMEOUT, Client, log_records, stats_of, wait_until
from mqtt_support import PUBLISH_PROPERTIES, V311, V5, v5_properties
from test_mqtt import (broker_round_trip, gateway_clock_passes, mqtt_hub, paho_clients,  # noqa: F401
                       raw_mqtt)
from test_retained import _wait_for_the_new_broker

USER_PROPERTIES = [("room", "Living Room"), ("room", "hall"), ("source", "z2m")]


def publish_retained(publisher, client_id, topic, payload, **properties):
    info = publisher.client.publish(topic, payload, qos=1, retain=True,
                                    properties=PUBLISH_PROPERTIES(**properties))
    info.wait_for_publish(timeout=READ_TIMEOUT)
    assert info.is_published(), "no PUBACK for %s" % topic
    broker_round_trip(publisher, client_id)          # the broker holds it now


def assert_kept_properties(message):
    got = message.properties
    assert message.retain
    assert got.UserProperty == USER_PROPERTIES
    assert got.ContentType == "application/json"
    assert got.PayloadFormatIndicator == 1
    assert got.ResponseTopic == "lamps/answers"
    assert got.CorrelationData == b"\x00\x01"
    assert not hasattr(got, "MessageExpiryInterval")


def test_retained_v5_properties_reach_later_subscribers_and_survive_a_restart(
        mqtt_hub, mqtt_gateway, paho_clients, processes):
    c = mqtt_hub()
    publisher = paho_clients(c.mqtt_port, client_id="lamp-pub", version=V5)
    publish_retained(publisher, "lamp-pub", "zigbee2mqtt/Living Room Lamp", b'{"state":"ON"}',
                     UserProperty=USER_PROPERTIES, ContentType="application/json",
                     PayloadFormatIndicator=1, ResponseTopic="lamps/answers",
                     CorrelationData=b"\x00\x01")
    later = paho_clients(c.mqtt_port, client_id="lamp-later", version=V5)
    later.subscribe("zigbee2mqtt/#", qos=1)
    message = later.next_message()
    assert (message.topic, message.payload) == ("zigbee2mqtt/Living Room Lamp", b'{"state":"ON"}')
    assert_kept_properties(message)
    # A 3.1.1 subscriber gets the value, without properties (it has none).
    old = paho_clients(c.mqtt_port, client_id="lamp-311", version=V311)
    old.subscribe("zigbee2mqtt/#")
    message = old.next_message()
    assert (message.retain, message.payload) == (1, b'{"state":"ON"}')

    # Written to the file, then the broker is killed and started again.
    with Client(c.port) as tcp:
        wait_until(lambda: stats_of(tcp, "stats broker")["retained_pending"] == "0",
                   STARTUP_TIMEOUT, "the retained value to be written")
    c.broker.popen.kill()
    c.broker.popen.wait(5)
    broker = processes.start("sb-broker", c.broker.argv)
    _wait_for_the_new_broker(c, broker)
    _, port = mqtt_gateway(c)                         # a gateway that knows only the new broker
    after = paho_clients(port, client_id="lamp-after", version=V5)
    after.subscribe("zigbee2mqtt/+", qos=1)
    message = after.next_message()
    assert message.topic == "zigbee2mqtt/Living Room Lamp"
    assert_kept_properties(message)


def test_an_expiring_retained_message_counts_down_then_is_gone(mqtt_hub, paho_clients, raw_mqtt):
    c = mqtt_hub()
    publisher = paho_clients(c.mqtt_port, client_id="exp-pub", version=V5)
    publish_retained(publisher, "exp-pub", "exp/short", b"soon gone", MessageExpiryInterval=4,
                     UserProperty=[("k", "v")])
    publish_retained(publisher, "exp-pub", "exp/long", b"stays", MessageExpiryInterval=600)
    with Client(c.port) as tcp:
        assert tcp.request("topics exp/#") == 'OK 2 exp/long stays exp/short "soon gone"'
        gateway_clock_passes(c, raw_mqtt, 1)
        # A delivery carries what is left of the interval, not the interval.
        subscriber = paho_clients(c.mqtt_port, client_id="exp-sub", version=V5)
        subscriber.subscribe("exp/long", qos=1)
        message = subscriber.next_message()
        assert message.payload == b"stays" and message.retain
        assert 590 <= message.properties.MessageExpiryInterval <= 599
        subscriber.subscribe("exp/short", qos=1)
        try:
            message = subscriber.next_message()
        except queue.Empty:                       # it expired meanwhile: nothing to check
            message = None
        if message:
            assert message.properties.UserProperty == [("k", "v")]
            assert 1 <= message.properties.MessageExpiryInterval <= 3
        # Once its interval has passed the broker drops it: gone from `topics`...
        wait_until(lambda: tcp.request("topics exp/#") == "OK 1 exp/long stays",
                   4 + 2 * READ_TIMEOUT, "exp/short to expire")
        assert stats_of(tcp, "stats broker")["retained_expired"] == "1"
    # ...and from what a new subscription gets.
    late = paho_clients(c.mqtt_port, client_id="exp-late", version=V5)
    late.subscribe("exp/#", qos=1)
    message = late.next_message()
    assert (message.topic, message.payload) == ("exp/long", b"stays")
    late.no_message()


def test_a_retained_will_keeps_its_properties_and_expiry(mqtt_hub, paho_clients, raw_mqtt):
    """Zigbee2MQTT's availability topic: a retained v5 will, on a topic with
    spaces, with a user property and a Message Expiry Interval."""
    c = mqtt_hub()
    topic = "zigbee2mqtt/Living Room Lamp/availability"
    will_properties = v5_properties(PacketTypes.WILLMESSAGE, MessageExpiryInterval=600,
                                    UserProperty=[("why", "gone")])
    doomed = paho_clients(c.mqtt_port, client_id="lamp-will", version=V5,
                          will=(topic, b"offline", 1, True, will_properties))
    doomed.drop()                                     # gone without DISCONNECT: the will is due
    wait_until(lambda: [r for r in log_records(c.mqtt_proc, "mqtt will published")
                        if r.get("topic") == topic], READ_TIMEOUT, "the will to be published")
    with Client(c.port) as tcp:
        wait_until(lambda: tcp.request('topics "zigbee2mqtt/Living Room Lamp/+"')
                   == 'OK 1 "%s" offline' % topic, READ_TIMEOUT, "the will to be retained")
    gateway_clock_passes(c, raw_mqtt, 1)             # its expiry counts down at the broker
    later = paho_clients(c.mqtt_port, client_id="lamp-watch", version=V5)
    later.subscribe("zigbee2mqtt/+/availability", qos=1)
    message = later.next_message()
    assert (message.topic, message.payload, message.retain) == (topic, b"offline", 1)
    assert message.properties.UserProperty == [("why", "gone")]
    assert 590 <= message.properties.MessageExpiryInterval <= 599
