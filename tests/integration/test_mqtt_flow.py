"""sb-gateway-mqtt flow control (issue 12 review, items 6, 7, 14, 15): a
burst is slowed down by backpressure, never dropped; what is in flight to
a client is capped at --receive-maximum whatever its Receive Maximum; a
repeated PUBREC gets PUBREL success again; a will the hub cannot carry is
logged. Raw sockets for the packets libraries hide, paho for the rest."""
from conftest import (STARTUP_TIMEOUT, Client, Components, READ_TIMEOUT, binary, free_port,
                      log_records, port_accepts, wait_until)
from mqtt_support import (V311, V5, RawMqtt, mqtt_string, packet, properties, publish_packet,
                          u16, u32)
from test_mqtt import (mqtt_hub, paho_clients, stats_value,  # noqa: F401 - fixtures
                       sync_subscription)

PINGREQ, PINGRESP = bytes([0xC0, 0x00]), 0xD0


def subscribe_packet(topic_filter, qos, packet_id=1, version=5):
    props = b"\x00" if version == 5 else b""
    return packet(0x82, u16(packet_id) + props + mqtt_string(topic_filter) + bytes([qos]))


def raw_subscriber(c, client_id, topic_filter, qos, version=5):
    raw = RawMqtt(c.mqtt_port)
    raw.connect(client_id=client_id, version=version)
    raw.send(subscribe_packet(topic_filter, qos, version=version))
    first, _ = raw.read_packet()
    assert first == 0x90, "expected SUBACK, got %02x" % first
    return raw


def packets_until_pingresp(raw):
    """What the gateway sent before it answered a PINGREQ sent now."""
    raw.send(PINGREQ)
    packets = []
    while True:
        first, body = raw.read_packet()
        if first == PINGRESP:
            return packets
        packets.append((first, body))


def gateway_without_broker(processes, mqtt_gateway, *args):
    """sb-gateway-mqtt whose broker is not there yet: it holds what is
    published (--broker-wait 60), so a burst piles up waiting for the hub.
    start_broker() brings the broker."""
    c = Components()
    c.frontend = "tcp://127.0.0.1:%d" % free_port()
    proc, c.mqtt_port = mqtt_gateway(c, "--broker-wait", "60", *args, wait=False)
    wait_until(lambda: proc.alive() and port_accepts(c.mqtt_port), STARTUP_TIMEOUT,
               "sb-gateway-mqtt to listen")
    c.start_broker = lambda: processes.start("sb-broker", [
        binary("sb-broker"), "--frontend", c.frontend,
        "--backend", "tcp://127.0.0.1:%d" % free_port()])
    return c


def test_a_311_qos0_burst_while_the_broker_is_away_is_all_delivered_in_order(
        processes, mqtt_gateway, paho_clients):
    c = gateway_without_broker(processes, mqtt_gateway)   # --receive-maximum 64
    subscriber = paho_clients(c.mqtt_port, client_id="listener", version=V311)
    subscriber.subscribe("burst/#")
    publisher = RawMqtt(c.mqtt_port)
    publisher.connect(client_id="zigbee", version=4)
    count = 500
    publisher.send(b"".join(publish_packet("burst/%d" % i, b"v%d" % i, version=4)
                            for i in range(count)))
    wait_until(lambda: stats_value(c, "held") >= 64, READ_TIMEOUT,
               "the gateway to hold a full window of the burst")
    c.start_broker()
    got = [subscriber.next_message(timeout=STARTUP_TIMEOUT).topic for _ in range(count)]
    assert got == ["burst/%d" % i for i in range(count)]
    publisher.close()


def test_a_311_qos1_burst_waits_unread_past_the_limit(processes, mqtt_gateway):
    c = gateway_without_broker(processes, mqtt_gateway, "--receive-maximum", "4")
    publisher = RawMqtt(c.mqtt_port)
    publisher.connect(client_id="tasmota", version=4)
    count = 100
    publisher.send(b"".join(publish_packet("plug/%d" % i, b"on", qos=1, packet_id=i + 1,
                                           version=4) for i in range(count)))
    wait_until(lambda: stats_value(c, "held") >= 4, READ_TIMEOUT, "4 publishes held")
    assert stats_value(c, "held") == 4   # the other 96 wait unread
    c.start_broker()
    acks = [publisher.read_packet() for _ in range(count)]
    assert acks == [(0x40, u16(i + 1)) for i in range(count)]
    publisher.close()


def test_a_client_that_never_acks_holds_at_most_the_capped_window(mqtt_hub, paho_clients):
    window = 5
    c = mqtt_hub("--receive-maximum", str(window))
    # No Receive Maximum in its CONNECT: it would allow 65535 in flight.
    silent = raw_subscriber(c, "silent", "flow/#", qos=1)
    watcher = paho_clients(c.mqtt_port, client_id="watcher", version=V5)
    sync_subscription(c, watcher, "flow/#")
    publisher = paho_clients(c.mqtt_port, client_id="publisher", version=V5)
    for i in range(20):
        publisher.publish("flow/%d" % i, b"x", qos=1)
    for i in range(20):   # the gateway has handled every event
        assert watcher.next_message().topic == "flow/%d" % i
    sent = packets_until_pingresp(silent)
    assert [first & 0xF6 for first, _ in sent] == [0x32] * window   # PUBLISH QoS 1
    first_id = sent[0][1][len(mqtt_string("flow/0")):][:2]
    silent.send(packet(0x40, first_id))   # PUBACK opens the window by one
    first, body = silent.read_packet()
    assert first & 0xF6 == 0x32 and body[2:2 + len("flow/%d" % window)] == b"flow/%d" % window
    assert packets_until_pingresp(silent) == []
    silent.close()


def test_a_repeated_pubrec_gets_pubrel_success_again(mqtt_hub, paho_clients):
    c = mqtt_hub()
    raw = raw_subscriber(c, "forgetful", "rec/#", qos=2)
    publisher = paho_clients(c.mqtt_port, client_id="sender", version=V5)
    publisher.publish("rec/1", b"x", qos=2)
    first, body = raw.read_packet()
    assert first & 0xF6 == 0x34, "expected PUBLISH QoS 2, got %02x" % first
    packet_id = body[len(mqtt_string("rec/1")):][:2]
    for _ in range(2):   # the second PUBREC is a resend: our PUBREL was lost
        raw.send(packet(0x50, packet_id))
        first, body = raw.read_packet()
        assert first == 0x62 and body[:2] == packet_id
        assert body[2:3] in (b"", b"\x00"), "PUBREL reason %r" % body[2:3]
    raw.send(packet(0x70, packet_id))    # PUBCOMP: the flow is over
    raw.send(packet(0x50, packet_id))    # a PUBREC now is for no message
    first, body = raw.read_packet()
    assert first == 0x62 and body[:3] == packet_id + b"\x92"
    raw.close()


def test_a_will_with_a_nul_byte_is_logged_not_published(mqtt_hub, paho_clients):
    c = mqtt_hub()
    watcher = paho_clients(c.mqtt_port, client_id="watcher", version=V311)
    sync_subscription(c, watcher, "wills/#")
    doomed = RawMqtt(c.mqtt_port)
    doomed.connect(client_id="doomed", version=4, will=("wills/doomed", b"of\x00f", 0))
    doomed.close()   # gone without DISCONNECT: the will is due
    wait_until(lambda: log_records(c.mqtt_proc, "mqtt will not published: its payload has a NUL "
                                   "byte, hub payloads are text"),
               READ_TIMEOUT, "the gateway to log the will it cannot publish")
    with Client(c.port) as tcp:
        assert tcp.request("pub wills/marker m") == "OK"
    assert watcher.next_message().topic == "wills/marker"


def test_a_reconnect_with_a_smaller_window_resends_only_what_fits(mqtt_hub, paho_clients):
    c = mqtt_hub("--receive-maximum", "5")
    raw = RawMqtt(c.mqtt_port)
    raw.connect(client_id="sleepy", props=properties((0x11, u32(300)),))   # Session Expiry
    raw.send(subscribe_packet("dup/#", 1))
    assert raw.read_packet()[0] == 0x90
    publisher = paho_clients(c.mqtt_port, client_id="publisher", version=V5)
    for i in range(8):
        publisher.publish("dup/%d" % i, b"x", qos=1)
    sent = [raw.read_packet() for _ in range(5)]         # the window: 5
    assert packets_until_pingresp(raw) == []
    ids = [body[len(mqtt_string("dup/0")):][:2] for _, body in sent]
    raw.close()                                          # gone without acking any
    raw = RawMqtt(c.mqtt_port)
    raw.connect(client_id="sleepy", clean=False, props=properties((0x11, u32(300)),
                                                                  (0x21, u16(2))))
    again = packets_until_pingresp(raw)
    assert [(first, body[2:7]) for first, body in again] == [(0x3A, b"dup/0"), (0x3A, b"dup/1")]
    raw.send(packet(0x40, ids[0]))                       # PUBACK: room for one more
    first, body = raw.read_packet()
    assert (first, body[2:7], body[7:9]) == (0x3A, b"dup/2", ids[2])   # DUP, the same id
    assert packets_until_pingresp(raw) == []
    raw.close()
