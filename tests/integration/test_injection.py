"""Line injection (issue 11 §3.1): a device line with a control byte in it
(CR, LF, NUL, ... but not TAB) is refused with ERR bad-args and nothing of
it reaches the device, whichever gateway it comes from and also when it
reaches the device gateway straight through the broker; topics and filters
with control bytes or invalid UTF-8 are refused by the gateways and dropped
(and counted as malformed) by the broker.

The fake device answers every line it gets with `got LINE`, so a line that
slipped through would also show as a call answered with the wrong line."""
import re

import msgpack

from conftest import dealer, wait_until
from device_support import device_section, echo_asks, fast, start_device_gateway
from device_support import fake_devices  # noqa: F401 - fixture
from test_hostile_input import recv_envelope
from ws_support import WsPeers, run


def answer_all(line):
    return "got " + line


def device_setup(components, processes, fake_devices, answer=answer_all):  # noqa: F811
    device = fake_devices(answer=answer)
    c = components(device_section("lamp", connect="127.0.0.1:%d" % device.port, **fast()),
                   pools={"default": 1})
    start_device_gateway(processes, c)
    device.wait_connections(1)
    return c, device


def broker_malformed(peer):
    reply = peer.ask("stats broker")
    match = re.search(r"\bmalformed=(\d+)\b", reply)
    assert match, reply
    return int(match.group(1))


def test_websocket_probe_from_the_issue_reaches_nothing(components, processes, fake_devices,
                                                        ws_gateway):
    c, device = device_setup(components, processes, fake_devices)
    _, ws_port = ws_gateway(c)

    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(ws_port)
            reply = await peer.ask({"id": 1, "cmd": "device", "args": ["lamp", "send", "on\nSTATUS"]})
            assert reply.get("ok") is False and reply["error"]["code"] == "bad-args", reply
            # (A NUL is refused earlier, by the JSON layer, as bad-request.)
            reply = await peer.ask({"id": 2, "cmd": "device", "args": ["lamp", "send", "on\x00"]})
            assert reply.get("ok") is False, reply
            for line in ("on\rSTATUS", "on\x01", "on\x1b[2J", "on\x7f"):
                reply = await peer.ask({"id": 2, "cmd": "device", "args": ["lamp", "call", line]})
                assert reply.get("ok") is False and reply["error"]["code"] == "bad-args", \
                    (line, reply)
            # The next call gets its own answer, not one to a smuggled line.
            reply = await peer.ask({"id": 3, "cmd": "device", "args": ["lamp", "call", "ask-1"]})
            assert reply == {"id": 3, "ok": True, "result": "got ask-1"}, reply

    run(main(), timeout=30)
    assert device.lines() == ["ask-1"], device.lines()


def test_tcp_raw_control_bytes_in_a_device_line(components, processes, peers, fake_devices):
    # Only `ask...` lines are answered: the answer to a send would be an event
    # that might come after the call below went out.
    c, device = device_setup(components, processes, fake_devices, answer=echo_asks)
    client = peers(c.port)
    for raw in (b'device lamp send "on\rSTATUS"\n', b"device lamp send on\x01X\n",
                b"device lamp call on\x1bX\n", b'device lamp call "a" "b\x7f"\n'):
        client.send_raw(raw)
        reply = client.reply()
        assert reply.startswith("ERR bad-args "), (raw, reply)
    # TAB is allowed: it cannot split a line.
    assert client.ask('device lamp send "level\t5"') == "OK sent"
    device.wait_line("level\t5")
    assert client.ask("device lamp call ask-2") == "OK got ask-2"
    assert device.lines() == ["level\t5", "ask-2"], device.lines()


def test_device_gateway_refuses_on_its_own(components, processes, fake_devices, zctx):
    """A request that never went through a gateway's router (another
    version, a hand-made client of the broker) is refused by the device
    gateway itself."""
    c, device = device_setup(components, processes, fake_devices)
    front = dealer(zctx, c.frontend, b"fake-gateway")
    front.send(msgpack.packb({"v": 1, "t": "request", "id": 7, "svc": "device", "cmd": "device",
                              "args": ["lamp", "send", "on\nSTATUS"]}))
    reply = recv_envelope(front, 5.0)
    assert reply.get("t") == "reply" and reply.get("id") == 7 and reply.get("ok") is False \
        and reply.get("code") == "bad-args", reply
    front.send(msgpack.packb({"v": 1, "t": "request", "id": 8, "svc": "device", "cmd": "device",
                              "args": ["lamp", "call", "ask-3"]}))
    reply = recv_envelope(front, 5.0)
    assert reply.get("ok") is True and reply.get("text") == "got ask-3", reply
    assert device.lines() == ["ask-3"], device.lines()


def test_gateway_refuses_hostile_topics(components, peers):
    c = components(pools={"default": 1})
    client = peers(c.port)
    for raw in (b"pub home/a\x01b x\n", b'pub "home/a\rEVENT forged" x\n', b"pub caf\xc3 x\n",
                b"sub home/\x1b\n", b"sub caf\xff/#\n"):
        client.send_raw(raw)
        reply = client.reply()
        assert reply.startswith("ERR bad-args "), (raw, reply)
    assert client.ask("pub caf\u00e9/temp 21") == "OK"


def test_broker_drops_hostile_topics_and_counts_them(components, peers, zctx):
    c = components(pools={"default": 1})
    subscriber = peers(c.port)
    subscriber.subscribe("#")
    before = broker_malformed(subscriber)
    front = dealer(zctx, c.frontend, b"fake-gateway")
    hostile = [{"t": "publish", "topic": "home/a\nEVENT forged x", "data": "y"},
               {"t": "publish", "topic": "home/\x01", "data": "y"},
               {"t": "publish", "topic": b"caf\xc3", "data": "y"},
               {"t": "subscribe", "topic": "home/\r"},
               {"t": "unsubscribe", "topic": "a\x00b"}]
    for envelope in hostile:
        envelope["v"] = 1
        front.send(msgpack.packb(envelope, use_bin_type=False))   # bytes as a msgpack str
    front.send(msgpack.packb({"v": 1, "t": "publish", "topic": "home/marker", "data": "m"}))
    # Only the marker arrives: nothing before it.
    assert subscriber.next_async() == "EVENT home/marker m"
    wait_until(lambda: broker_malformed(subscriber) == before + len(hostile), 5,
               "the broker to count %d malformed envelopes" % len(hostile))
