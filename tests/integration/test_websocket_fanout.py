"""Fan-out to many WebSocket subscribers (issue 13 §2): a burst of events
to a couple of thousand subscribers reaches every one of them, in order,
while the gateway keeps its heartbeats going, so the broker never judges
it silent and forgets its clients; every `pub` is answered OK.

The heartbeats are short here (the broker forgets a gateway after 0.6 s
of silence), so a gateway that delivered the whole burst in one loop pass
would be forgotten. The subscribers are raw non-blocking sockets on one
selector (thousands of python3-websockets clients would be slower than
the gateway); their bytes are parsed as frames once everything arrived.
"""
import json
import selectors
import socket
import struct

from conftest import Client, log_records, wait_until
from ws_support import OP_TEXT, frame, upgrade_request

SUBSCRIBERS = 2000
EVENTS = 200
TOPIC = "fan/burst"

# Every process beats at the same short interval (the broker judges them all by its own).
BEATS = "heartbeat_interval = 0.2\nheartbeat_liveness = 3\n"
CONFIG = "".join("[%s]\n%s\n" % (section, BEATS)
                 for section in ("broker", "workers", "gateway-tcp", "gateway-mqtt")) \
    + "[gateway-ws]\n%smax_connections = 4000\n" % BEATS


class Subscriber:
    """One raw WebSocket connection; its bytes after the 101 are kept."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(upgrade_request(port))
        self.sock.setblocking(False)
        self.head = b""
        self.data = bytearray()
        self.upgraded = False
        self.awaited = None      # bytes whose arrival `seen` tells
        self.seen = False

    def await_bytes(self, marker):
        self.awaited, self.seen = marker, marker in self.data

    def take(self):
        """Reads what is there; False once the peer closed."""
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        if self.upgraded:
            start = max(0, len(self.data) - len(self.awaited or b""))
            self.data += chunk
            self.seen = self.seen or (self.awaited is not None and self.awaited in self.data[start:])
            return True
        self.head += chunk
        if b"\r\n\r\n" in self.head:
            head, rest = self.head.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 101"), head
            self.upgraded = True
            self.data += rest
            self.seen = self.awaited is not None and self.awaited in self.data
        return True

    def texts(self):
        """The text messages received so far (server frames are unmasked, unfragmented)."""
        texts, at, data = [], 0, self.data
        while at + 2 <= len(data):
            opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
            header = 2
            if length == 126:
                if at + 4 > len(data):
                    break
                length, header = struct.unpack("!H", data[at + 2:at + 4])[0], 4
            elif length == 127:
                if at + 10 > len(data):
                    break
                length, header = struct.unpack("!Q", data[at + 2:at + 10])[0], 10
            if at + header + length > len(data):
                break
            if opcode == OP_TEXT:
                texts.append(bytes(data[at + header:at + header + length]).decode())
            at += header + length
        return texts


def await_everywhere(selector, subscribers, marker, what, timeout=60):
    """Reads every subscriber until each has received `marker`."""
    for subscriber in subscribers:
        subscriber.await_bytes(marker)
    waiting = [s for s in subscribers if not s.seen]

    def step():
        for key, _ in selector.select(0.05):
            assert key.data.take(), "the gateway closed a subscriber"
        waiting[:] = [s for s in waiting if not s.seen]
        return not waiting
    wait_until(step, timeout, what, interval=0)


def test_burst_reaches_every_subscriber_and_no_gateway_is_forgotten(launch_hub, tmp_path):
    config = tmp_path / "fanout.conf"
    config.write_text(CONFIG)
    hub = launch_hub("--config", str(config))
    selector = selectors.DefaultSelector()
    subscribers = []
    try:
        for _ in range(SUBSCRIBERS):
            subscriber = Subscriber(hub.ws_port)
            subscribers.append(subscriber)
            selector.register(subscriber.sock, selectors.EVENT_READ, subscriber)
        await_everywhere(selector, subscribers, b"$welcome", "every subscriber's welcome")
        request = json.dumps({"id": 1, "cmd": "sub", "args": [TOPIC]})
        for subscriber in subscribers:
            subscriber.sock.sendall(frame(OP_TEXT, request))
        await_everywhere(selector, subscribers, b'"id":1', "every subscriber's OK for sub")
        for subscriber in subscribers:
            assert '"ok":true' in [t for t in subscriber.texts() if '"id":1' in t][0].replace(" ", "")

        with Client(hub.port) as publisher:
            publisher.send(*("pub %s e%05d-%s" % (TOPIC, n, "x" * 90) for n in range(EVENTS)))
            await_everywhere(selector, subscribers, b"e%05d-" % (EVENTS - 1),
                             "the last event at every subscriber", timeout=120)
            replies = publisher.read_lines(EVENTS, timeout=60)
        assert all(reply.split()[0] == "OK" for reply in replies), replies

        expected = ["e%05d-%s" % (n, "x" * 90) for n in range(EVENTS)]
        for subscriber in subscribers:
            events = [json.loads(t) for t in subscriber.texts() if '"event":"fan/burst"' in
                      t.replace(" ", "")]
            assert [e["data"] for e in events] == expected
        assert not log_records(hub.proc, "gateways silent, their clients forgotten"), \
            hub.proc.log_tail()
        with Client(hub.port) as observer:
            reply = observer.request("clients")
        assert reply.count("ws-") == SUBSCRIBERS, reply[:200]
    finally:
        for subscriber in subscribers:
            subscriber.sock.close()
        selector.close()


def welcome_id(subscriber):
    for text in subscriber.texts():
        value = json.loads(text)
        if value.get("event") == "$welcome":
            return value["data"]["client"]
    return None


def test_two_ws_processes_share_the_port_and_events_cross_between_them(launch_hub):
    """--ws-processes 2: two sb-gateway-ws on one port (SO_REUSEPORT), each
    a gateway of its own (ws-N and ws2-N), and pub/sub crosses between them."""
    hub = launch_hub("--ws-processes", "2")
    selector = selectors.DefaultSelector()
    by_gateway = {}
    opened = []
    try:
        # The kernel spreads connections by a hash of their addresses: open until both answered.
        while len(by_gateway) < 2:
            assert len(opened) < 200, "only one gateway answered: %s" % list(by_gateway)
            subscriber = Subscriber(hub.ws_port)
            opened.append(subscriber)
            selector.register(subscriber.sock, selectors.EVENT_READ, subscriber)
            await_everywhere(selector, [subscriber], b"$welcome", "the welcome")
            client = welcome_id(subscriber)
            by_gateway.setdefault(client.split("-")[0], (client, subscriber))
        assert sorted(by_gateway) == ["ws", "ws2"]
        (id_a, a), (id_b, b) = by_gateway["ws"], by_gateway["ws2"]
        for n, peer in enumerate((a, b)):
            peer.sock.sendall(frame(OP_TEXT, json.dumps({"id": 10 + n, "cmd": "sub",
                                                         "args": ["cross/#"]})))
        await_everywhere(selector, [a], b'"id":10', "the first gateway's OK for sub")
        await_everywhere(selector, [b], b'"id":11', "the second gateway's OK for sub")
        a.sock.sendall(frame(OP_TEXT, json.dumps({"id": 20, "cmd": "pub",
                                                  "args": ["cross/a", "from-a"]})))
        b.sock.sendall(frame(OP_TEXT, json.dumps({"id": 21, "cmd": "pub",
                                                  "args": ["cross/b", "from-b"]})))
        await_everywhere(selector, [a, b], b'"from-a"', "the first gateway's event everywhere")
        await_everywhere(selector, [a, b], b'"from-b"', "the second gateway's event everywhere")
        with Client(hub.port) as observer:
            listed = observer.request("clients").split()
        assert id_a in listed and id_b in listed, listed
    finally:
        for subscriber in opened:
            subscriber.sock.close()
        selector.close()
