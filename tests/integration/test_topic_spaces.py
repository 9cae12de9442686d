"""Topics with spaces, as Zigbee2MQTT publishes them (zigbee2mqtt/<friendly
name>, "Living Room Lamp"): allowed hub-wide, on every gateway. An MQTT
publisher (Debian's mosquitto_pub) reaches a TCP client that subscribed
with a quoted filter, a WebSocket client and mosquitto_sub; a TCP `pub`
with a quoted topic reaches a paho subscriber; retained values on such
topics; the TCP gateway quotes the topic of EVENT and RETAINED lines as
the line parser reads it; a tab or a line break in a topic is still
refused."""
import subprocess

from conftest import READ_TIMEOUT, Client, wait_until
from mqtt_support import V5, RawMqtt, disconnect_reason, mqtt_string, packet, publish_packet, u16
from test_mqtt import mosquitto, mqtt_hub, paho_clients, sync_subscription  # noqa: F401 (fixtures)
from ws_support import RawWs

LAMP = "zigbee2mqtt/Living Room Lamp"
STATE = '{"state":"ON"}'


def sub_lines(client, line):
    """The lines a `sub` brings, up to and with its OK (or ERR)."""
    client.send(line)
    lines = []
    while not lines or not (lines[-1] == "OK" or lines[-1].startswith("ERR")):
        lines.append(client.read_line())
    return lines


def mosquitto_pub(c, topic, message, *args):
    pub = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(c.mqtt_port), "-V", "mqttv5",
                          "-q", "1", "-t", topic, "-m", message, *args],
                         capture_output=True, text=True, timeout=READ_TIMEOUT)
    assert pub.returncode == 0, pub.stderr


def test_mosquitto_pub_reaches_tcp_websocket_and_mosquitto_sub(mqtt_hub, ws_gateway):
    c = mqtt_hub()
    _, ws_port = ws_gateway(c)
    with Client(c.port) as tcp, RawWs(ws_port) as ws:
        assert sub_lines(tcp, 'sub "zigbee2mqtt/Living Room/#"') == ["OK"]
        assert tcp.request('sub "zigbee2mqtt/+"') == "OK"
        reply = ws.request_json({"id": 1, "cmd": "sub", "args": ["zigbee2mqtt/Living Room Lamp"]})
        assert reply == {"id": 1, "ok": True, "result": ""}, reply
        sub = mosquitto("mosquitto_sub", c.mqtt_port, "-t", "zigbee2mqtt/+", "-C", "1", "-v")
        try:
            # mosquitto_sub's SUBSCRIBE reaching the broker is not visible from
            # outside: publish until it has its message (the others get each one).
            def received():
                mosquitto_pub(c, LAMP, STATE)
                try:
                    sub.wait(timeout=0.3)
                    return True
                except subprocess.TimeoutExpired:
                    return False

            wait_until(received, READ_TIMEOUT, "mosquitto_sub to get %s" % LAMP)
            out, err = sub.communicate(timeout=READ_TIMEOUT)
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()
        assert out.strip() == LAMP + " " + STATE, err
        # One line per event, however many of the client's filters match; the
        # topic quoted as a request's word would be.
        assert tcp.read_line() == 'EVENT "zigbee2mqtt/Living Room Lamp" ' + STATE
        event = ws.next_async()
        assert event == {"event": LAMP, "data": {"state": "ON"}}, event


def test_tcp_pub_with_a_quoted_topic_reaches_mqtt_subscribers(mqtt_hub, paho_clients):
    c = mqtt_hub()
    subscriber = paho_clients(c.mqtt_port, client_id="z2m-sub", version=V5)
    sync_subscription(c, subscriber, "zigbee2mqtt/Living Room Lamp/set")
    with Client(c.port) as tcp:
        assert tcp.request('pub "zigbee2mqtt/Living Room Lamp/set" OFF') == "OK"
        message = subscriber.next_message()
        assert (message.topic, message.payload) == ("zigbee2mqtt/Living Room Lamp/set", b"OFF")
        # Unquoted, the words are topic and payload, as before.
        assert tcp.request("pub zigbee2mqtt/Living Room Lamp/set x") == "OK"
        subscriber.no_message()
        # unsub takes the quoted filter too.
        assert tcp.request('sub "a b/#"') == "OK"
        assert tcp.request('unsub "a b/#"') == "OK"
        assert tcp.request('unsub "a b/#"').startswith("ERR bad-args ")


def test_retained_values_on_topics_with_spaces(mqtt_hub):
    c = mqtt_hub()
    mosquitto_pub(c, LAMP, STATE, "-r")
    with Client(c.port) as tcp:
        assert tcp.request('pub -r "zigbee2mqtt/Hall Sensor" "21.5 C"') == "OK"
        assert tcp.request("stats broker").startswith("OK ")   # the broker has both
        assert tcp.request('topics "zigbee2mqtt/#"') == (
            'OK 2 "zigbee2mqtt/Hall Sensor" "21.5 C" "zigbee2mqtt/Living Room Lamp" '
            '"{\\"state\\":\\"ON\\"}"')
        with Client(c.port) as late:
            assert sub_lines(late, "sub zigbee2mqtt/#") == [
                'RETAINED "zigbee2mqtt/Hall Sensor" 21.5 C',
                'RETAINED "zigbee2mqtt/Living Room Lamp" ' + STATE, "OK"]
    got = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(c.mqtt_port), "-V", "mqttv5",
                          "-t", "zigbee2mqtt/Hall Sensor", "-C", "1", "-F", "%r|%t|%p", "-W", "5"],
                         capture_output=True, text=True, timeout=2 * READ_TIMEOUT)
    assert got.stdout.strip() == "1|zigbee2mqtt/Hall Sensor|21.5 C", got.stderr


def test_a_tab_or_line_break_in_a_topic_is_still_refused(mqtt_hub, ws_gateway):
    c = mqtt_hub()
    _, ws_port = ws_gateway(c)
    with Client(c.port) as tcp, RawWs(ws_port) as ws:
        # Inside quotes a tab is part of the word: the topic rules refuse it.
        assert tcp.request('pub "a\tb" x').startswith("ERR bad-args ")
        assert tcp.request('sub "a\tb/#"').startswith("ERR bad-args ")
        assert tcp.request('topics "a\tb"').startswith("ERR bad-args ")
        for topic in ("a\tb", "a\nb", "a\rb", "Living Room\x0b"):
            reply = ws.request_json({"id": 2, "cmd": "pub", "args": [topic, "x"]})
            assert reply["ok"] is False and reply["error"]["code"] == "bad-args", reply
            reply = ws.request_json({"id": 3, "cmd": "sub", "args": [topic]})
            assert reply["ok"] is False and reply["error"]["code"] == "bad-args", reply
    # MQTT: control characters make a string malformed (MQTT 5.0 1.5.4), a space does not.
    for sent in (packet(0x82, u16(7) + b"\x00" + mqtt_string("a\tb/#") + b"\x00"),
                 publish_packet("a\nb", b"1", qos=1, packet_id=9)):
        with RawMqtt(c.mqtt_port) as raw:
            raw.connect(client_id="tabby", version=5)
            raw.send(packet(0x82, u16(8) + b"\x00" + mqtt_string("a b/#") + b"\x00"))
            assert raw.read_packet() == (0x90, u16(8) + b"\x00\x00")   # SUBACK: granted
            raw.send(sent)
            assert disconnect_reason(raw.expect_close()) == 0x81     # DISCONNECT: malformed
