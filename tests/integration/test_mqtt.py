"""sb-gateway-mqtt (issue 12): MQTT 3.1.1 and 5.0 clients on the hub's
topics and commands, with independent clients: Debian's mosquitto_pub and
mosquitto_sub, python3-paho-mqtt, and a raw socket for hostile packets.
Every gateway runs against a `components()` hub (broker, a pool, the TCP
gateway) on free loopback ports."""
import socket
import subprocess

import pytest

from conftest import Client, free_port, log_records, port_accepts, wait_until, READ_TIMEOUT
from mqtt_support import (V311, V5, CONNECT_PROPERTIES, PUBLISH_PROPERTIES, Paho, RawMqtt,
                          connect_packet, disconnect_reason, mqtt_string, packet, properties,
                          publish_packet, u16, u32)


@pytest.fixture
def mqtt_hub(components, mqtt_gateway):
    """Factory: (components, mqtt port) with extra gateway flags and a config."""

    def start(*gateway_args, config=None):
        c = components(config_text=config)
        proc, port = mqtt_gateway(c, *gateway_args)
        c.mqtt_proc, c.mqtt_port = proc, port
        return c

    return start


@pytest.fixture
def raw_mqtt():
    """Factory: a RawMqtt socket, closed at the end of the test."""
    made = []

    def connect(port):
        raw = RawMqtt(port)
        made.append(raw)
        return raw

    yield connect
    for raw in made:
        raw.close()


@pytest.fixture
def paho_clients():
    made = []

    def connect(*args, **kwargs):
        client = Paho(*args, **kwargs)
        made.append(client)
        return client

    yield connect
    for client in made:
        client.close()


def mosquitto(tool, port, *args, version="mqttv5"):
    return subprocess.Popen([tool, "-h", "127.0.0.1", "-p", str(port), "-V", version, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def mqtt_id_of(c, client_id):
    """The hub id (mqtt-N) of the MQTT client `client_id`, from `clients`/`client ID`."""
    with Client(c.port) as tcp:
        for hub_id in tcp.request("clients").split()[1:]:
            if hub_id.startswith("mqtt-") and ("mqtt_id=%s " % client_id) in tcp.request(
                    "client %s" % hub_id) + " ":
                return hub_id
    return None


def sync_subscription(c, subscriber, *filters, topic_prefix="sync"):
    """Subscribes `subscriber` to `filters`, then waits until the hub delivers
    to it: its SUBSCRIBEs, sent in order on one link, have reached the broker."""
    for topic_filter in filters:
        subscriber.subscribe(topic_filter)
    subscriber.subscribe(topic_prefix + "/#")

    def delivered():
        with Client(c.port) as tcp:
            assert tcp.request("pub %s/probe x" % topic_prefix) == "OK"
        try:
            subscriber.next_message(timeout=0.2)
            return True
        except Exception:  # noqa: BLE001 - queue.Empty: not yet
            return False

    wait_until(delivered, READ_TIMEOUT, "the subscription to reach the broker")
    while not subscriber.messages.empty():
        subscriber.messages.get()


def persistent_v5(paho_clients, port, client_id):
    """A v5 client whose session is kept 300 s after it leaves."""
    return paho_clients(port, client_id=client_id, version=V5, clean=False,
                        properties=CONNECT_PROPERTIES(SessionExpiryInterval=300))


def leave_subscribed(c, paho_clients, client_id, topic_filter):
    """A persistent v5 session subscribed to `topic_filter` (at the broker), then away."""
    client = persistent_v5(paho_clients, c.mqtt_port, client_id)
    sync_subscription(c, client)
    client.subscribe(topic_filter, qos=1)
    client.disconnect()


def broker_round_trip(client, client_id):
    """`stats broker` from `client` (3.1.1 reply topic): what its gateway sent
    the broker before, and the events the broker sent back, have been handled
    when the reply comes (one link, in order)."""
    client.subscribe("$switchboard/reply/%s/#" % client_id)
    client.publish("$switchboard/cmd/stats", b"broker")
    assert client.next_message().payload.startswith(b"OK ")


def gateway_timer(c, raw_mqtt, seconds, client_id="hourglass"):
    """A timer on the MQTT gateway's own clock, without a sleep: a session
    with a Session Expiry of `seconds`, left now. The predicate returned is
    true once the gateway's sweep has ended it (gone from `clients`)."""
    raw = raw_mqtt(c.mqtt_port)
    raw.connect(client_id=client_id, version=5, clean=False, props=properties((0x11, u32(seconds))))
    wait_until(lambda: mqtt_id_of(c, client_id), READ_TIMEOUT, "%s in clients" % client_id)
    raw.disconnect()
    return lambda: mqtt_id_of(c, client_id) is None


def gateway_clock_passes(c, raw_mqtt, seconds):
    """Waits until `seconds` have passed from now on the MQTT gateway's clock."""
    wait_until(gateway_timer(c, raw_mqtt, seconds), seconds + 3 * READ_TIMEOUT,
               "%d s to pass on the gateway's clock" % seconds)


# --------------------------------------------------------------------- connecting

@pytest.mark.parametrize("version", [V311, V5])
def test_both_versions_connect_and_show_in_clients(mqtt_hub, paho_clients, version):
    c = mqtt_hub()
    client = paho_clients(c.mqtt_port, client_id="sensor-%d" % version, version=version)
    assert client.rc == 0
    hub_id = wait_until(lambda: mqtt_id_of(c, "sensor-%d" % version), READ_TIMEOUT,
                        "the MQTT client in `clients`")
    assert hub_id.startswith("mqtt-")


def test_empty_client_id_gets_one_assigned(mqtt_hub, paho_clients):
    c = mqtt_hub()
    client = paho_clients(c.mqtt_port, client_id="", version=V5)
    assigned = client.connack_properties.AssignedClientIdentifier
    assert assigned.startswith("auto-")


# --------------------------------------------------------------------- publish and subscribe

def publish_until_received(publish, sub, what):
    """Publishes (a callable) until the mosquitto_sub -C 1 process `sub` has
    received one message and exited: the subscription's arrival at the
    broker is not visible from outside, so the first publishes may be early."""

    def received():
        publish()
        try:
            sub.wait(timeout=0.3)
            return True
        except subprocess.TimeoutExpired:
            return False

    wait_until(received, READ_TIMEOUT, what)
    out, err = sub.communicate(timeout=READ_TIMEOUT)
    return out, err


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_reaches_mosquitto_sub(mqtt_hub, version, qos):
    c = mqtt_hub()
    sub = mosquitto("mosquitto_sub", c.mqtt_port, "-t", "home/#", "-q", str(qos), "-C", "1",
                    "-v", version=version)
    outputs = []

    def publish():
        pub = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(c.mqtt_port),
                              "-V", version, "-q", str(qos), "-t", "home/kitchen",
                              "-m", "21.5", "-d"],
                             capture_output=True, text=True, timeout=READ_TIMEOUT)
        assert pub.returncode == 0, pub.stderr
        outputs.append(pub.stdout)

    try:
        out, err = publish_until_received(publish, sub, "mosquitto_sub to get home/kitchen")
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert out.strip() == "home/kitchen 21.5", err
    if qos == 1:
        assert "received PUBACK" in outputs[0]
    if qos == 2:
        assert "received PUBREC" in outputs[0] and "received PUBCOMP" in outputs[0]


def test_tcp_pub_reaches_mqtt_and_mqtt_publish_reaches_tcp_sub(mqtt_hub, paho_clients, peers):
    c = mqtt_hub()
    mqtt_client = paho_clients(c.mqtt_port, client_id="bridge", version=V311)
    sync_subscription(c, mqtt_client)
    assert mqtt_client.subscribe("home/#", qos=1) == 1
    with Client(c.port) as tcp:
        wait_until(lambda: tcp.request("pub home/x 1") == "OK"
                   and mqtt_client.next_message(timeout=0.3), READ_TIMEOUT,
                   "pub home/x 1 to reach the MQTT subscriber",
                   ignore=(OSError, EOFError, Exception))
    listener = peers(c.port)
    listener.subscribe("garden/#")
    mqtt_client.publish("garden/soil", b"dry", qos=1)
    listener.await_event("EVENT garden/soil dry")


def test_tell_reaches_an_mqtt_client_at_the_subscription_qos(mqtt_hub, paho_clients, peers):
    """tell comes from the gateway itself, so it goes at the subscription's QoS (2 here:
    PUBREC, PUBREL, PUBCOMP towards the client)."""
    c = mqtt_hub()
    client = paho_clients(c.mqtt_port, client_id="phone", version=V5)
    assert client.subscribe("$switchboard/msg/phone/+", qos=2) == 2
    hub_id = wait_until(lambda: mqtt_id_of(c, "phone"), READ_TIMEOUT, "phone in clients")
    sender = peers(c.port)
    assert sender.ask("tell %s dinner is ready" % hub_id) == "OK"
    message = client.next_message()
    assert message.qos == 2
    assert message.payload == b"dinner is ready"
    assert message.topic == "$switchboard/msg/phone/" + sender.id


# --------------------------------------------------------------------- commands

def test_command_with_response_topic_and_correlation_data_v5(mqtt_hub, paho_clients):
    c = mqtt_hub()
    client = paho_clients(c.mqtt_port, client_id="asker", version=V5)
    client.subscribe("replies/asker", qos=1)
    props = PUBLISH_PROPERTIES(ResponseTopic="replies/asker", CorrelationData=b"\x00id-7")
    client.publish("$switchboard/cmd/echo", b'hello "big world"', qos=1, properties=props)
    reply = client.next_message()
    assert reply.topic == "replies/asker"
    assert reply.payload == b"OK hello big world"
    assert reply.properties.CorrelationData == b"\x00id-7"
    assert ("status", "OK") in reply.properties.UserProperty
    client.publish("$switchboard/cmd/nosuchcommand", b"", properties=PUBLISH_PROPERTIES(
        ResponseTopic="replies/asker", CorrelationData=b"2"))
    reply = client.next_message()
    assert reply.payload.startswith(b"ERR ")
    assert reply.properties.CorrelationData == b"2"


def test_command_reply_topic_convention_v311(mqtt_hub, paho_clients):
    c = mqtt_hub()
    client = paho_clients(c.mqtt_port, client_id="tasmota-1", version=V311)
    client.subscribe("$switchboard/reply/tasmota-1/#", qos=1)
    client.publish("$switchboard/cmd/ping", b"", qos=1)
    reply = client.next_message()
    assert reply.topic == "$switchboard/reply/tasmota-1/ping"
    assert reply.payload == b"OK pong"
    client.publish("$switchboard/cmd/quit", b"")
    assert client.next_message().payload.startswith(b"ERR bad-args")


def test_stats_reports_the_mqtt_counters(mqtt_hub, paho_clients):
    c = mqtt_hub()
    paho_clients(c.mqtt_port, client_id="counted", version=V311, clean=False).disconnect()
    assert stats_value(c, "sessions") == 2          # the one away, and the asker's
    assert stats_value(c, "commands") == 2          # this `stats` and the one before
    assert stats_value(c, "connections") == 1


# --------------------------------------------------------------------- wills, keep alive, sessions

@pytest.mark.parametrize("version", [4, 5])
def test_will_is_published_on_an_abrupt_close(raw_mqtt, mqtt_hub, paho_clients, version):
    c = mqtt_hub()
    watcher = paho_clients(c.mqtt_port, client_id="watcher")
    sync_subscription(c, watcher)
    watcher.subscribe("status/#")
    raw = raw_mqtt(c.mqtt_port)
    assert raw.connect(client_id="plug", version=version,
                       will=("status/plug", "offline", 1))[1] == 0
    raw.close()   # no DISCONNECT
    message = watcher.next_message()
    assert (message.topic, message.payload) == ("status/plug", b"offline")


def test_no_will_after_a_normal_disconnect(mqtt_hub, paho_clients):
    c = mqtt_hub()
    watcher = paho_clients(c.mqtt_port, client_id="watcher")
    sync_subscription(c, watcher, "status/#")
    plug = paho_clients(c.mqtt_port, client_id="plug2", version=V311,
                        will=("status/plug2", "offline", 1))
    wait_until(lambda: mqtt_id_of(c, "plug2"), READ_TIMEOUT, "plug2 in clients")
    plug.disconnect()
    wait_until(lambda: mqtt_id_of(c, "plug2") is None, READ_TIMEOUT, "plug2 to leave clients")
    # A will would have gone to the broker before plug2 left, on the MQTT
    # gateway's link: a marker on that link comes after it.
    watcher.publish("status/marker", b"here", qos=1)
    message = watcher.next_message()
    assert (message.topic, message.payload) == ("status/marker", b"here")


@pytest.mark.parametrize("version,reason", [(4, None), (5, 0x8D)])
def test_keep_alive_expiry_closes_the_connection(raw_mqtt, mqtt_hub, version, reason):
    c = mqtt_hub()
    raw = raw_mqtt(c.mqtt_port)
    raw.connect(client_id="sleepy", version=version, keepalive=1)
    wait_until(lambda: any(r.get("reason") == "0x8d"
                           for r in log_records(c.mqtt_proc, "mqtt client closed")),
               4 * READ_TIMEOUT, "the gateway to close the connection for its keep alive")
    packets = raw.expect_close()
    assert disconnect_reason(packets) == reason
    assert stats_value(c, "keep_alive_timeouts") == 1


def test_keep_alive_is_restarted_by_each_packet(raw_mqtt, mqtt_hub):
    """A client that keeps pinging with a 1 s keep alive stays connected
    past 1.5 s: until a 2 s timer on the gateway's clock has run out."""
    c = mqtt_hub()
    raw = raw_mqtt(c.mqtt_port)
    raw.connect(client_id="pinger", version=5, keepalive=1)
    timer_ran_out = gateway_timer(c, raw_mqtt, 2)

    def pinged_until_the_timer_ran_out():
        raw.send(b"\xc0\x00")
        assert raw.read_packet() == (0xD0, b"")   # a close fails at once (EOFError)
        return timer_ran_out()

    wait_until(pinged_until_the_timer_ran_out, 2 + 3 * READ_TIMEOUT, "the 2 s timer", ignore=())
    assert stats_value(c, "keep_alive_timeouts") == 0


def test_session_take_over_closes_the_old_connection(raw_mqtt, mqtt_hub, paho_clients):
    c = mqtt_hub()
    first = raw_mqtt(c.mqtt_port)
    first.connect(client_id="same", version=5, clean=False)
    second = paho_clients(c.mqtt_port, client_id="same", version=V5, clean=False,
                          properties=CONNECT_PROPERTIES(SessionExpiryInterval=60))
    assert disconnect_reason(first.expect_close()) == 0x8E
    assert second.rc == 0
    assert stats_value(c, "takeovers") == 1
    assert stats_value(c, "connections") == 2   # `second` and the one asking


def test_persistent_session_gets_what_came_while_away(mqtt_hub, paho_clients):
    c = mqtt_hub()
    client = paho_clients(c.mqtt_port, client_id="laptop", version=V311, clean=False)
    assert client.subscribe("$switchboard/msg/laptop/+", qos=1) == 1
    hub_id = wait_until(lambda: mqtt_id_of(c, "laptop"), READ_TIMEOUT, "laptop in clients")
    client.disconnect()
    with Client(c.port) as tcp:
        for text in ("one", "two"):
            assert tcp.request("tell %s %s" % (hub_id, text)) == "OK"
    back = paho_clients(c.mqtt_port, client_id="laptop", version=V311, clean=False)
    assert back.session_present
    got = [back.next_message(), back.next_message()]
    assert [m.payload for m in got] == [b"one", b"two"]
    assert all(m.qos == 1 for m in got)
    assert mqtt_id_of(c, "laptop") == hub_id


def test_clean_session_forgets_the_old_one(mqtt_hub, paho_clients):
    c = mqtt_hub()
    client = paho_clients(c.mqtt_port, client_id="kiosk", version=V311, clean=False)
    client.subscribe("home/#")
    client.disconnect()
    again = paho_clients(c.mqtt_port, client_id="kiosk", version=V311, clean=True)
    assert not again.session_present


# --------------------------------------------------------------------- tokens

TOKENS = """
[anonymous]
commands = echo stats

[token panel]
secret = panel-secret
commands = ping echo sub unsub pub stats
publish = home/#
subscribe = home/#
"""


@pytest.mark.parametrize("version,refused", [(V311, 4), (V5, 0x86)])
def test_wrong_password_is_refused(mqtt_hub, paho_clients, version, refused):
    c = mqtt_hub(config=TOKENS)
    client = paho_clients(c.mqtt_port, client_id="intruder", version=version,
                          username="panel", password="guess", connect=False)
    rc = client.connect(expect_ok=False)
    assert (rc.value if hasattr(rc, "value") else rc) == refused


def test_token_rules_apply_to_subscribe_publish_and_commands(mqtt_hub, paho_clients):
    c = mqtt_hub(config=TOKENS)
    panel = paho_clients(c.mqtt_port, client_id="panel-1", version=V5, username="panel",
                         password="panel-secret")
    assert panel.subscribe("home/#", qos=1) == 1
    assert panel.subscribe("work/#", qos=1) == 0x87
    info = panel.client.publish("work/x", b"1", qos=1)
    info.wait_for_publish(timeout=READ_TIMEOUT)
    assert stats_value(c, "denied", username="panel", password="panel-secret") == 2
    panel.subscribe("$switchboard/reply/panel-1/#")
    panel.publish("$switchboard/cmd/time", b"")
    assert panel.next_message().payload.startswith(b"ERR unauthorized")
    panel.publish("$switchboard/cmd/echo", b"allowed")
    assert panel.next_message().payload == b"OK allowed"


def stats_value(c, name, **credentials):
    """A counter of the MQTT gateway's `stats`, asked over MQTT (3.1.1 reply topic)."""
    client = Paho(c.mqtt_port, client_id="stats-reader", version=V311, **credentials)
    try:
        client.subscribe("$switchboard/reply/stats-reader/#")
        client.publish("$switchboard/cmd/stats", b"")
        reply = client.next_message().payload.decode()
    finally:
        client.close()
    assert reply.startswith("OK "), reply
    return int(dict(word.split("=", 1) for word in reply.split() if "=" in word)[name])


# --------------------------------------------------------------------- hostile packets

HOSTILE = [
    # name, bytes after a v5 CONNECT (None: instead of CONNECT), expected DISCONNECT reason
    ("publish before connect", None, publish_packet("home/x", b"1", version=5), None),
    ("qos 3", True, publish_packet("home/x", b"1", first_byte=0x36), 0x81),
    ("bad remaining length", True, b"\x30\xff\xff\xff\xff\x01", 0x81),
    ("bad utf-8 topic", True, packet(0x30, mqtt_string(b"home/\xff\xfe") + b"\x00"), 0x81),
    ("wildcard in publish topic", True, publish_packet("home/+", b"1"), 0x90),
    ("over max packet", True, publish_packet("home/x", b"z" * 2000), 0x95),
]


@pytest.mark.parametrize("name,connect_first,data,reason", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_packet_closes_only_that_connection(raw_mqtt, mqtt_hub, paho_clients, name,
                                                    connect_first, data, reason):
    c = mqtt_hub("--max-packet", "1024")
    bystander = paho_clients(c.mqtt_port, client_id="bystander", version=V311)
    sync_subscription(c, bystander)
    raw = raw_mqtt(c.mqtt_port)
    if connect_first:
        raw.connect(client_id="hostile", version=5)
    raw.send(data)
    packets = raw.expect_close()
    assert disconnect_reason(packets) == reason
    with Client(c.port) as tcp:
        assert tcp.request("pub sync/after still") == "OK"
    assert bystander.next_message().payload == b"still"
    assert c.mqtt_proc.alive()


# --------------------------------------------------------------------- retained values

@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_retained_publish_reaches_a_later_subscriber_and_tcp(mqtt_hub, peers, version):
    c = mqtt_hub()
    pub = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(c.mqtt_port), "-V", version,
                          "-q", "1", "-r", "-t", "home/lamp", "-m", "on"],
                         capture_output=True, text=True, timeout=READ_TIMEOUT)
    assert pub.returncode == 0, pub.stderr
    got = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(c.mqtt_port), "-V", version,
                          "-t", "home/#", "-C", "1", "-v", "-F", "%r %t %p", "-W", "5"],
                         capture_output=True, text=True, timeout=2 * READ_TIMEOUT)
    assert got.stdout.strip() == "1 home/lamp on", got.stderr
    tcp = peers(c.port)
    assert tcp.ask("sub home/#") == "OK"
    assert tcp.next_async().startswith("RETAINED home/lamp on")
    # an empty retained payload clears it
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(c.mqtt_port), "-V", version,
                    "-q", "1", "-r", "-t", "home/lamp", "-n"], check=True, timeout=READ_TIMEOUT)
    with Client(c.port) as probe:
        wait_until(lambda: "home/lamp" not in probe.request("topics home/#"), READ_TIMEOUT,
                   "the retained value to be cleared")


def test_retain_handling_2_gets_no_retained_values(mqtt_hub, paho_clients, peers):
    """Retain Handling 2 declines the retained values of that subscription
    only. The client's own markers go to the broker on the gateway's link
    after its SUBSCRIBEs, so they come after any retained value those got."""
    c = mqtt_hub()
    tcp = peers(c.port)
    assert tcp.ask("pub -r home/door open") == "OK"
    assert tcp.ask("topics home/#") == "OK 1 home/door open"   # kept (same link, in order)
    client = paho_clients(c.mqtt_port, client_id="rh2", version=V5)
    client.subscribe("home/#", qos=1, retainHandling=2)
    client.publish("home/marker", b"1", qos=1)
    message = client.next_message()
    assert (message.topic, message.payload, message.retain) == ("home/marker", b"1", 0)
    client.subscribe("home/door", qos=1)   # Retain Handling 0: its retained value, once
    message = client.next_message()
    assert (message.topic, message.payload, message.retain) == ("home/door", b"open", 1)
    client.publish("home/marker", b"2", qos=1)
    message = client.next_message()
    assert (message.topic, message.payload) == ("home/marker", b"2")


def test_qos_is_the_lower_of_publish_and_subscription(mqtt_hub, paho_clients):
    c = mqtt_hub()
    subscriber = paho_clients(c.mqtt_port, client_id="qos-sub", version=V5)
    sync_subscription(c, subscriber)
    subscriber.subscribe("q/two", qos=2)
    subscriber.subscribe("q/one", qos=1)
    publisher = paho_clients(c.mqtt_port, client_id="qos-pub", version=V311)
    publisher.publish("q/two", b"a", qos=1)
    publisher.publish("q/one", b"b", qos=2)
    got = {m.topic: m.qos for m in (subscriber.next_message(), subscriber.next_message())}
    assert got == {"q/two": 1, "q/one": 1}


def test_persistent_session_gets_qos1_publishes_sent_while_away(mqtt_hub, paho_clients):
    c = mqtt_hub()
    leave_subscribed(c, paho_clients, "shelly", "shellies/#")
    publisher = paho_clients(c.mqtt_port, client_id="pub-away", version=V311)
    publisher.publish("shellies/relay/0", b"on", qos=1)
    publisher.publish("shellies/relay/1", b"off", qos=1)
    back = persistent_v5(paho_clients, c.mqtt_port, "shelly")
    assert back.session_present
    got = [back.next_message(), back.next_message()]
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        ("shellies/relay/0", b"on", 1), ("shellies/relay/1", b"off", 1)]


# --------------------------------------------------------------------- TLS, the launcher

def test_mqtt_over_tls_with_mosquitto_clients(mqtt_hub, tls_cert):
    tls_port = free_port()
    mqtt_hub(*tls_cert.args(tls_port))
    wait_until(lambda: port_accepts(tls_port), READ_TIMEOUT, "the TLS listener")
    tls = ["--cafile", str(tls_cert.cert), "-h", "localhost"]
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(tls_port), *tls, "-t", "secure/#", "-C", "1",
                            "-v", "-q", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)

    def publish():
        subprocess.run(["mosquitto_pub", "-p", str(tls_port), *tls, "-t", "secure/x", "-m", "ok",
                        "-q", "1"], check=True, capture_output=True, timeout=READ_TIMEOUT)

    try:
        out, err = publish_until_received(publish, sub, "mosquitto_sub over TLS to get secure/x")
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert out.strip() == "secure/x ok", err


def test_mqtt_over_websocket_with_paho(mqtt_hub, paho_clients, peers):
    ws_port = free_port()
    c = mqtt_hub("--ws-listen", "127.0.0.1:%d" % ws_port)
    wait_until(lambda: port_accepts(ws_port), READ_TIMEOUT, "the WebSocket listener")
    client = paho_clients(ws_port, client_id="browser-ish", version=V5, transport="websockets")
    client.subscribe("$switchboard/reply/browser-ish/#")
    client.publish("$switchboard/cmd/echo", b"over websocket")
    assert client.next_message().payload == b"OK over websocket"
    tcp = peers(c.port)
    tcp.subscribe("ws/#")
    client.publish("ws/x", b"binary frames", qos=1)
    tcp.await_event("EVENT ws/x binary frames")


def test_mqtt_over_secure_websocket(mqtt_hub, paho_clients, tls_cert):
    tls_port, wss_port = free_port(), free_port()
    mqtt_hub(*tls_cert.args(tls_port), "--wss-listen", "127.0.0.1:%d" % wss_port)
    wait_until(lambda: port_accepts(wss_port), READ_TIMEOUT, "the secure WebSocket listener")
    client = paho_clients(wss_port, client_id="wss", version=V311, transport="websockets",
                          tls_ca=tls_cert.cert)
    client.subscribe("$switchboard/reply/wss/#")
    client.publish("$switchboard/cmd/echo", b"wss")
    assert client.next_message().payload == b"OK wss"


def test_metrics_on_the_websocket_listener(mqtt_hub, paho_clients):
    import http.client
    ws_port = free_port()
    c = mqtt_hub("--ws-listen", "127.0.0.1:%d" % ws_port)
    wait_until(lambda: port_accepts(ws_port), READ_TIMEOUT, "the WebSocket listener")
    paho_clients(c.mqtt_port, client_id="counted", version=V311)
    connection = http.client.HTTPConnection("127.0.0.1", ws_port, timeout=READ_TIMEOUT)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    assert response.status == 200
    assert "\nsb_mqtt_connections 1\n" in body and "\nsb_mqtt_sessions 1\n" in body
    assert "# TYPE sb_mqtt_publishes_in_total counter" in body


def test_websocket_listener_wants_the_mqtt_subprotocol(raw_mqtt, mqtt_hub):
    ws_port = free_port()
    mqtt_hub("--ws-listen", "127.0.0.1:%d" % ws_port)
    wait_until(lambda: port_accepts(ws_port), READ_TIMEOUT, "the WebSocket listener")
    raw = raw_mqtt(ws_port)
    raw.send(b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")
    answer = b""
    while True:
        chunk = raw.sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer


def test_the_launcher_starts_the_mqtt_gateway(launch_hub, paho_clients):
    hub = launch_hub()
    wait_until(lambda: port_accepts(hub.mqtt_port), READ_TIMEOUT, "the launcher's MQTT gateway")
    client = paho_clients(hub.mqtt_port, client_id="via-launcher", version=V5)
    client.subscribe("$switchboard/reply/via-launcher/#")
    client.publish("$switchboard/cmd/echo", b"launched")
    assert client.next_message().payload == b"OK launched"


def test_mosquitto_rr_runs_a_command(mqtt_hub):
    """Debian's mosquitto_rr: Response Topic and Correlation Data the MQTT 5 way."""
    c = mqtt_hub()
    rr = subprocess.run(["mosquitto_rr", "-h", "127.0.0.1", "-p", str(c.mqtt_port), "-V", "mqttv5",
                         "-t", "$switchboard/cmd/hello", "-e", "replies/rr", "-m", "world",
                         "-W", "5"], capture_output=True, text=True, timeout=2 * READ_TIMEOUT)
    assert rr.stdout.strip() == "OK Hello WORLD", rr.stderr


# --------------------------------------------------------------------- v5 edges

def test_topic_alias_from_the_client(raw_mqtt, mqtt_hub, paho_clients):
    c = mqtt_hub()
    watcher = paho_clients(c.mqtt_port, client_id="watcher")
    sync_subscription(c, watcher)
    watcher.subscribe("alias/#")
    raw = raw_mqtt(c.mqtt_port)
    raw.connect(client_id="aliaser", version=5)
    raw.send(publish_packet("alias/long/topic", b"first", props=properties((0x23, u16(3)))))
    raw.send(publish_packet("", b"second", props=properties((0x23, u16(3)))))
    assert [watcher.next_message().payload for _ in range(2)] == [b"first", b"second"]
    raw.send(publish_packet("alias/x", b"", props=properties((0x23, u16(17)))))   # over 16
    assert disconnect_reason(raw.expect_close()) == 0x94


def test_second_connect_is_a_protocol_error(raw_mqtt, mqtt_hub):
    c = mqtt_hub()
    raw = raw_mqtt(c.mqtt_port)
    raw.connect(client_id="twice", version=5)
    raw.send(connect_packet(client_id="twice", version=5))
    assert disconnect_reason(raw.expect_close()) == 0x82


def test_receive_maximum_exceeded(raw_mqtt, mqtt_hub):
    c = mqtt_hub("--receive-maximum", "1")
    raw = raw_mqtt(c.mqtt_port)
    raw.connect(client_id="flooder", version=5)
    raw.send(publish_packet("flood/x", b"1", qos=2, packet_id=1))   # waits for our PUBREL
    assert raw.read_packet()[0] == 0x50                              # PUBREC
    raw.send(publish_packet("flood/x", b"2", qos=2, packet_id=2))
    assert disconnect_reason(raw.expect_close()) == 0x93


def test_will_delay_and_reconnect_in_time(raw_mqtt, mqtt_hub, paho_clients):
    c = mqtt_hub()
    watcher = paho_clients(c.mqtt_port, client_id="watcher")
    sync_subscription(c, watcher, "status/#")
    session = properties((0x11, u32(60)))               # Session Expiry 60 s

    def leave_with_will(client_id, payload, delay_s, still_connected):
        raw = raw_mqtt(c.mqtt_port)
        raw.send(connect_packet(client_id=client_id, version=5, clean=False, props=session,
                                will=("status/" + client_id, payload, 0),
                                will_props=properties((0x18, u32(delay_s)))))
        assert raw.read_packet()[0] == 0x20
        raw.close()                                      # no DISCONNECT: the will is due
        # the gateway has handled the close (the one asking counts itself)
        wait_until(lambda: stats_value(c, "connections") == still_connected + 1, READ_TIMEOUT,
                   "the gateway to see %s go" % client_id)

    leave_with_will("delayed", "gone", 1, still_connected=1)
    message = watcher.next_message(timeout=3 * READ_TIMEOUT)   # after the delay
    assert (message.topic, message.payload) == ("status/delayed", b"gone")
    # Gone again with a 3 s delay, and back before it is over: no will.
    leave_with_will("delayed", "gone again", 3, still_connected=1)
    raw = raw_mqtt(c.mqtt_port)
    raw.send(connect_packet(client_id="delayed", version=5, clean=False, props=session))
    first, body = raw.read_packet()
    assert first == 0x20 and body[0] == 1                      # session present
    # Another client's will, due a second after that one would have been,
    # is the marker: the first would have come before it (an earlier sweep).
    leave_with_will("ticker", "tick", 4, still_connected=2)
    message = watcher.next_message(timeout=4 + 3 * READ_TIMEOUT)
    assert (message.topic, message.payload) == ("status/ticker", b"tick")
    assert stats_value(c, "wills") == 2
    assert stats_value(c, "takeovers") == 0                    # resumed, not taken over


def test_session_expiry_ends_an_away_session(raw_mqtt, mqtt_hub):
    c = mqtt_hub()
    raw = raw_mqtt(c.mqtt_port)
    raw.connect(client_id="shortlived", version=5, clean=False, props=properties((0x11, u32(300))))
    hub_id = wait_until(lambda: mqtt_id_of(c, "shortlived"), READ_TIMEOUT, "in clients")
    raw.disconnect()
    # Away, still kept (a long expiry leaves no race): back with its session
    # and its hub id, this time with 1 s to live once it leaves.
    raw = raw_mqtt(c.mqtt_port)
    body = raw.connect(client_id="shortlived", version=5, clean=False,
                       props=properties((0x11, u32(1))))
    assert body[:2] == b"\x01\x00"                               # session present, accepted
    assert mqtt_id_of(c, "shortlived") == hub_id
    raw.disconnect()
    wait_until(lambda: mqtt_id_of(c, "shortlived") is None, 3 * READ_TIMEOUT,
               "the session to expire")
    assert stats_value(c, "sessions") == 1                      # the one asking


# --------------------------------------------------------------------- a restart of the gateway

def test_persistent_session_survives_a_gateway_restart(mqtt_hub, mqtt_gateway, processes,
                                                       paho_clients):
    c = mqtt_hub()
    client = paho_clients(c.mqtt_port, client_id="thermostat", version=V5, clean=False,
                          properties=CONNECT_PROPERTIES(SessionExpiryInterval=600))
    sync_subscription(c, client)
    assert client.subscribe("heating/#", qos=1) == 1
    client.disconnect()
    publisher = paho_clients(c.mqtt_port, client_id="boiler", version=V311)
    publisher.publish("heating/setpoint", b"21", qos=1)
    broker_round_trip(publisher, "boiler")   # the event is in the away session's queue
    # stopped with TERM, the gateway saves every session first
    processes.stop(c.mqtt_proc)
    proc, port = mqtt_gateway(c)
    assert "sessions=1" in proc.log_text()
    wait_until(lambda: mqtt_id_of(c, "thermostat"), READ_TIMEOUT, "the restored session in clients")
    # While the client is still away, the restored session collects again: a
    # publish through the restored gateway reaches the broker after that
    # gateway's subscriptions (one link, in order), and its event comes back
    # before the round trip's reply.
    publisher = paho_clients(port, client_id="boiler", version=V311)
    publisher.publish("heating/mode", b"eco", qos=1)
    broker_round_trip(publisher, "boiler")
    back = paho_clients(port, client_id="thermostat", version=V5, clean=False,
                        properties=CONNECT_PROPERTIES(SessionExpiryInterval=600))
    assert back.session_present
    got = [back.next_message(), back.next_message()]
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        ("heating/setpoint", b"21", 1), ("heating/mode", b"eco", 1)]


def test_commands_waiting_for_the_hub_are_bounded(mqtt_hub, paho_clients):
    c = mqtt_hub("--receive-maximum", "1")
    client = paho_clients(c.mqtt_port, client_id="impatient", version=V311)
    client.subscribe("$switchboard/reply/impatient/#")
    client.publish("$switchboard/cmd/sleep", b"2")
    client.publish("$switchboard/cmd/echo", b"too soon")
    first = client.next_message()
    assert first.topic == "$switchboard/reply/impatient/echo"
    assert first.payload.startswith(b"ERR busy")
    assert client.next_message(timeout=3 * READ_TIMEOUT).payload == b"OK slept 2"


def test_no_local_keeps_a_client_s_own_publishes_from_it(mqtt_hub, paho_clients, peers):
    c = mqtt_hub()
    client = paho_clients(c.mqtt_port, client_id="echoless", version=V5)
    sync_subscription(c, client)
    client.subscribe("nl/#", qos=1, noLocal=True)
    tcp = peers(c.port)
    tcp.subscribe("nl/#")
    client.publish("nl/own", b"mine", qos=1)
    tcp.await_event("EVENT nl/own mine")     # the hub had it; the client is skipped
    assert tcp.ask("pub nl/other theirs") == "OK"
    message = client.next_message()
    assert (message.topic, message.payload) == ("nl/other", b"theirs")


def test_shared_subscription_gives_each_message_to_one_member(mqtt_hub, paho_clients, peers):
    c = mqtt_hub()
    members = [paho_clients(c.mqtt_port, client_id="worker-%d" % i, version=V5) for i in range(2)]
    for member in members:
        assert member.subscribe("$share/workers/jobs/#", qos=1) == 1
    tcp = peers(c.port)
    wait_until(lambda: tcp.ask("pub jobs/probe x") == "OK" and any(
        not m.messages.empty() for m in members), READ_TIMEOUT, "the shared subscription")
    for n in range(6):
        assert tcp.ask("pub jobs/%d job" % n) == "OK"
    jobs = [[], []]

    def six_jobs():
        for index, member in enumerate(members):
            while not member.messages.empty():
                topic = member.messages.get().topic
                if topic != "jobs/probe":
                    jobs[index].append(topic)
        return len(jobs[0]) + len(jobs[1]) >= 6

    wait_until(six_jobs, READ_TIMEOUT, "six jobs")
    assert sorted(jobs[0] + jobs[1]) == ["jobs/%d" % n for n in range(6)]   # each once
    assert [len(j) for j in jobs] == [3, 3]                                # in turn
    with Client(c.port) as probe:
        groups = [i for i in probe.request("clients").split()[1:]
                  if "mqtt_id=$share/workers/jobs/#" in probe.request("client %s" % i)]
    assert len(groups) == 1
    for member in members:
        member.client.unsubscribe("$share/workers/jobs/#")
    with Client(c.port) as probe:
        wait_until(lambda: groups[0] not in probe.request("clients"), READ_TIMEOUT,
                   "the group to end with its last member")


def test_v311_empty_client_id_needs_clean_session(raw_mqtt, mqtt_hub):
    c = mqtt_hub()
    raw = raw_mqtt(c.mqtt_port)
    raw.send(connect_packet(client_id="", version=4, clean=False))
    packets = raw.expect_close()
    assert packets[0] == (0x20, b"\x00\x02")      # CONNACK: identifier rejected


def test_v5_refusals_keep_the_connection(raw_mqtt, mqtt_hub):
    c = mqtt_hub()
    raw = raw_mqtt(c.mqtt_port)
    raw.connect(client_id="picky", version=5)
    raw.send(publish_packet("$sys/x", b"1", qos=1, packet_id=5))
    first, body = raw.read_packet()
    assert first == 0x40 and body[:3] == b"\x00\x05\x90"          # PUBACK: topic name invalid
    subscribe = packet(0x82, u16(6) + b"\x00" + mqtt_string("home/#/x") + b"\x01")
    raw.send(subscribe)
    first, body = raw.read_packet()
    assert first == 0x90 and body == u16(6) + b"\x00\x8f"          # SUBACK: filter invalid
    raw.send(b"\xc0\x00")
    assert raw.read_packet() == (0xD0, b"")                        # still served


def test_v5_publish_properties_reach_the_subscriber(mqtt_hub, paho_clients):
    c = mqtt_hub()
    subscriber = paho_clients(c.mqtt_port, client_id="props-sub", version=V5)
    sync_subscription(c, subscriber)
    subscriber.subscribe("props/#", qos=1)
    publisher = paho_clients(c.mqtt_port, client_id="props-pub", version=V5)
    props = PUBLISH_PROPERTIES(ContentType="application/json", PayloadFormatIndicator=1,
                               ResponseTopic="props/answers", CorrelationData=b"\x01\x02",
                               MessageExpiryInterval=300,
                               UserProperty=[("room", "kitchen"), ("room", "hall")])
    publisher.publish("props/x", b'{"t":21}', qos=1, properties=props)
    got = subscriber.next_message().properties
    assert got.ContentType == "application/json"
    assert got.PayloadFormatIndicator == 1
    assert got.ResponseTopic == "props/answers"
    assert got.CorrelationData == b"\x01\x02"
    assert 295 <= got.MessageExpiryInterval <= 300
    assert got.UserProperty == [("room", "kitchen"), ("room", "hall")]


def test_message_expiry_drops_what_waited_too_long(raw_mqtt, mqtt_hub, paho_clients):
    c = mqtt_hub()
    leave_subscribed(c, paho_clients, "away", "exp/#")
    publisher = paho_clients(c.mqtt_port, client_id="exp-pub", version=V5)
    publisher.publish("exp/short", b"stale", qos=1,
                      properties=PUBLISH_PROPERTIES(MessageExpiryInterval=1))
    publisher.publish("exp/long", b"fresh", qos=1,
                      properties=PUBLISH_PROPERTIES(MessageExpiryInterval=600))
    broker_round_trip(publisher, "exp-pub")      # both are in the away session's queue
    undeliverable = stats_value(c, "undeliverable")
    gateway_clock_passes(c, raw_mqtt, 1)         # the short one has run out meanwhile
    back = persistent_v5(paho_clients, c.mqtt_port, "away")
    message = back.next_message()
    assert (message.topic, message.payload) == ("exp/long", b"fresh")
    assert message.properties.MessageExpiryInterval <= 599
    assert stats_value(c, "undeliverable") == undeliverable + 1   # expired, not lost on the way


def test_topic_aliases_towards_a_v5_client_that_allows_them(raw_mqtt, mqtt_hub, peers):
    c = mqtt_hub()
    raw = raw_mqtt(c.mqtt_port)
    raw.send(connect_packet(client_id="aliased", version=5, props=properties((0x22, u16(2)))))
    assert raw.read_packet()[0] == 0x20
    raw.send(packet(0x82, u16(1) + b"\x00" + mqtt_string("alias/#") + b"\x00"))
    assert raw.read_packet()[0] == 0x90
    tcp = peers(c.port)
    raw.sock.settimeout(0.3)

    def probe_arrived():   # the subscription has reached the broker
        assert tcp.ask("pub alias/probe x") == "OK"
        try:
            return raw.read_packet()[0] == 0x30
        except socket.timeout:
            return False

    wait_until(probe_arrived, READ_TIMEOUT, "the subscription at the broker")
    raw.sock.settimeout(READ_TIMEOUT)
    for n in range(3):
        assert tcp.ask("pub alias/kitchen %d" % n) == "OK"
    publishes = []
    while len(publishes) < 3:
        first, body = raw.read_packet()
        topic = body[2:2 + int.from_bytes(body[:2], "big")]
        if topic != b"":
            assert topic in (b"alias/kitchen", b"alias/probe"), topic
        if topic == b"alias/probe" or body.endswith(b"x"):
            continue   # a late probe (alias 1)
        publishes.append((topic, body[2 + len(topic):]))
    assert [topic for topic, _ in publishes] == [b"alias/kitchen", b"", b""]   # then alias alone
    assert all(b"\x23\x00\x02" in props for _, props in publishes)          # Topic Alias 2
