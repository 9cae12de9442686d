"""Pub/sub and the client registry over the TCP gateway (issue 5, items 2
and 3; brief §3.1, §4), with the real programs:

- `sub`, `unsub`, `pub` with MQTT-style filters on one gateway: exact
  EVENT lines, `+` and `#`, nothing delivered that does not match, one
  delivery per client, the 64-filter limit, bad filters and topics;
- two gateways on one broker: events, `clients`, `client ID` and `tell`
  across them;
- join/leave events on `$sys/clients/...` (which `#` does not see);
- subscription forwarding: the broker sends a gateway only the topics one
  of its clients wants (`stats broker` events_sent);
- a subscriber that does not read is disconnected past --max-output while
  the others miss nothing;
- a broker restart under the launcher: the registry and the subscriptions
  are rebuilt from the gateways;
- a gateway that dies, is restarted, or stalls past the broker's liveness
  (two of them once documented registry bugs, since fixed).

"Nothing else was delivered" is checked with a marker: after the events
that must not arrive, an event that must is published on the same path
(same publisher, same gateway, so the broker and the gateway keep their
order), and it has to be the very next line. Events are written to a client
as soon as they arrive, not in order with its replies, so a client that
both publishes and receives sorts the lines it reads (conftest's Peer).
"""
import os
import re
import signal
import socket
import time
from pathlib import Path


from conftest import (STARTUP_TIMEOUT, Client, binary, children_of, cmdline_of, free_port,
                      log_records, try_request, wait_until)

GREETING = re.compile(r"^OK switchboard \S+ client=(\S+)$")
SINCE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# --------------------------------------------------------------------- helpers

def client_list(peer):
    reply = peer.ask("clients")
    assert reply == "OK" or reply.startswith("OK "), reply
    return reply[3:].split()


def broker_stats(peer):
    reply = peer.ask("stats broker")
    assert reply.startswith("OK "), reply
    return {key: int(value) for key, value in
            (item.split("=", 1) for item in reply[3:].split() if "=" in item)
            if value.isdigit()}


def answers(port, line, expected):
    """Like conftest.try_request, for any gateway name (second-1, ...)."""
    with Client(port, timeout=2.0) as client:
        if not GREETING.match(client.greeting or ""):
            return False
        return client.request(line) == expected


def start_second_gateway(processes, c, name="second", extra_args=()):
    """Another sb-gateway-tcp on the broker of components `c`."""
    port = free_port()
    proc = processes.start("sb-gateway-tcp-%s" % name, [
        binary("sb-gateway-tcp"), "--listen", "127.0.0.1:%d" % port,
        "--broker", c.frontend, "--name", name, *extra_args])
    wait_until(lambda: proc.alive() and answers(port, "echo ready", "OK ready"),
               STARTUP_TIMEOUT, "the second gateway on port %d to answer `echo ready`" % port)
    return proc, port


def event(topic, payload):
    return "EVENT %s %s" % (topic, payload)


def await_line(peer, expected, may_skip, timeout=5.0):
    """Reads `peer`'s EVENT/MSG lines until `expected`; lines before it must
    match the regex `may_skip` (such as the join/leave of readiness probes,
    whose order with our own clients' is not fixed). Returns the skipped."""
    deadline = time.monotonic() + timeout
    skipped = []
    while True:
        line = peer.next_async(max(0.0, deadline - time.monotonic()))
        if line == expected:
            return skipped
        assert re.match(may_skip, line), "waiting for %r, got %r (before: %r)" % (
            expected, line, skipped)
        skipped.append(line)


def sys_clients_of_others(*ids):
    """A regex of $sys/clients events of clients other than `ids`."""
    return r"^EVENT \$sys/clients/(?!(?:%s) )\S+ (joined|left)$" % "|".join(
        re.escape(i) for i in ids)


# --------------------------------------------------------------------- one gateway

def test_sub_pub_filters_on_one_gateway(components, peers):
    c = components(pools={"default": 1})
    publisher = peers(c.port)
    plus = peers(c.port)        # home/+/temp
    hash_ = peers(c.port)       # home/#
    both = peers(c.port)        # home/+/temp and home/#: one delivery each
    for peer, filters in ((plus, ["home/+/temp", "marker"]), (hash_, ["home/#", "marker"]),
                          (both, ["home/+/temp", "home/#", "marker"])):
        assert peer.ask_all(["sub %s" % f for f in filters]) == ["OK"] * len(filters)

    # Exact EVENT line; several words of payload are joined by single spaces.
    assert publisher.ask("pub home/kitchen/temp 21.5 C") == "OK"
    for peer in (plus, hash_, both):
        assert peer.next_async() == event("home/kitchen/temp", "21.5 C")
    # A quoted argument keeps its inner spaces.
    assert publisher.ask('pub home/hall/temp "very  warm" now') == "OK"
    for peer in (plus, hash_, both):
        assert peer.next_async() == event("home/hall/temp", "very  warm now")

    # home/# includes `home` itself and deeper levels; home/+/temp neither.
    assert publisher.ask("pub home on") == "OK"
    assert publisher.ask("pub home/kitchen/oven/temp 180") == "OK"
    assert publisher.ask("pub marker one") == "OK"
    assert hash_.next_async() == event("home", "on")
    assert hash_.next_async() == event("home/kitchen/oven/temp", "180")
    assert hash_.next_async() == event("marker", "one")
    assert both.next_async() == event("home", "on")
    assert both.next_async() == event("home/kitchen/oven/temp", "180")
    assert both.next_async() == event("marker", "one")
    assert plus.next_async() == event("marker", "one")

    # Topics that match nothing are delivered to no one.
    misses = ["homes/kitchen/temp", "home2", "office/kitchen/temp", "Home/kitchen/temp",
              "kitchen/temp"]
    assert publisher.ask_all(["pub %s x" % t for t in misses]) == ["OK"] * len(misses)
    assert publisher.ask("pub marker two") == "OK"
    for peer in (plus, hash_, both):
        assert peer.next_async() == event("marker", "two")
    # home/+/temp: not `home/temp` (one level needed), not two levels.
    assert publisher.ask_all(["pub home/temp x", "pub home/a/b/temp x", "pub marker three"]) \
        == ["OK"] * 3
    assert plus.next_async() == event("marker", "three")
    for peer in (hash_, both):
        assert peer.next_async() == event("home/temp", "x")
        assert peer.next_async() == event("home/a/b/temp", "x")
        assert peer.next_async() == event("marker", "three")

    # A publisher receives its own event when it subscribed (the EVENT may
    # come before or after the OK of its pub).
    assert publisher.ask("sub home/+/temp") == "OK"
    assert publisher.ask("pub home/attic/temp 12") == "OK"
    for peer in (publisher, plus, hash_, both):
        assert peer.next_async() == event("home/attic/temp", "12")

    # Subscribing twice to one filter is still one delivery.
    assert plus.ask("sub home/+/temp") == "OK"
    assert publisher.ask_all(["pub home/cellar/temp 9", "pub marker four"]) == ["OK"] * 2
    assert plus.next_async() == event("home/cellar/temp", "9")
    assert plus.next_async() == event("marker", "four")
    for peer in (publisher, hash_, both):
        assert peer.next_async() == event("home/cellar/temp", "9")
    for peer in (hash_, both):
        assert peer.next_async() == event("marker", "four")

    # unsub stops delivery (and only for that client and that filter).
    assert plus.ask("unsub home/+/temp") == "OK"
    assert both.ask("unsub home/#") == "OK"
    assert publisher.ask_all(["pub home/cellar/temp 8", "pub home lights", "pub marker five"]) \
        == ["OK"] * 3
    assert plus.next_async() == event("marker", "five")
    assert both.next_async() == event("home/cellar/temp", "8")
    assert both.next_async() == event("marker", "five")
    assert hash_.next_async() == event("home/cellar/temp", "8")
    assert hash_.next_async() == event("home", "lights")
    assert hash_.next_async() == event("marker", "five")
    assert publisher.next_async() == event("home/cellar/temp", "8")
    assert plus.ask("unsub home/+/temp") == "ERR bad-args not subscribed to that filter"
    assert plus.ask("unsub never/subscribed") == "ERR bad-args not subscribed to that filter"
    # unsub names the filter exactly, not a topic it matches
    assert hash_.ask("unsub home/x") == "ERR bad-args not subscribed to that filter"
    for peer in (publisher, plus, hash_, both):
        peer.no_async_now(0.05)
    assert not any(p.eof for p in (publisher, plus, hash_, both))


def test_bad_filters_and_topics_are_refused(components, peers):
    c = components(pools={"default": 1})
    peer = peers(c.port)
    watcher = peers(c.port)
    assert watcher.ask("sub #") == "OK"
    for line in ["sub", "sub a b", "sub home/#/temp", "sub home/te+mp", "sub home/temp#",
                 "sub a/#b", "sub +a", 'sub ""', 'sub "a\tb"', "sub " + "a" * 257,
                 "unsub",
                 "pub", "pub home/+/temp x", "pub home/# x", "pub + x", "pub # x",
                 'pub "" x', 'pub "a\tb" x', "pub " + "a" * 257 + " x"]:
        reply = peer.ask(line)
        assert reply.startswith("ERR bad-args "), "%r -> %r" % (line[:40], reply)
    # None of the refused pubs reached anyone; the connection is fine.
    assert peer.ask("pub after/refusals ok") == "OK"
    assert watcher.next_async() == event("after/refusals", "ok")
    # The longest valid topic and filter (256 bytes) are accepted.
    long_topic = "a/" + "b" * 254
    assert peer.ask("sub " + long_topic) == "OK"
    assert peer.ask("pub %s long" % long_topic) == "OK"
    assert peer.next_async() == event(long_topic, "long")
    assert peer.ask("ping") == "OK pong"


def test_at_most_64_filters_per_client(components, peers):
    c = components(pools={"default": 1})
    greedy = peers(c.port)
    publisher = peers(c.port)
    replies = greedy.ask_all(["sub f/%d" % n for n in range(64)])
    assert replies == ["OK"] * 64
    assert greedy.ask("sub f/64") == "ERR busy too many subscriptions"
    assert greedy.ask("sub other/#") == "ERR busy too many subscriptions"
    # A filter it already has is no new subscription.
    assert greedy.ask("sub f/63") == "OK"
    # The refused filter is not half-added: no event for it, nor an unsub.
    assert publisher.ask_all(["pub f/64 no", "pub f/0 yes"]) == ["OK"] * 2
    assert greedy.next_async() == event("f/0", "yes")
    assert greedy.ask("unsub f/64") == "ERR bad-args not subscribed to that filter"
    # The limit is per client: another client subscribes freely.
    assert publisher.ask("sub f/64") == "OK"
    # After an unsub there is room for one more.
    assert greedy.ask("unsub f/10") == "OK"
    assert greedy.ask("sub f/64") == "OK"
    assert greedy.ask("sub f/65") == "ERR busy too many subscriptions"
    assert publisher.ask_all(["pub f/10 gone", "pub f/64 now"]) == ["OK"] * 2
    assert greedy.next_async() == event("f/64", "now")
    assert publisher.next_async() == event("f/64", "now")


# --------------------------------------------------------------------- two gateways

def test_events_clients_and_tell_across_two_gateways(components, processes, peers):
    c = components(pools={"default": 1})
    second, second_port = start_second_gateway(processes, c)
    a1, a2 = peers(c.port), peers(c.port)
    b1 = peers(second_port)
    assert a1.id.startswith("tcp-") and a2.id.startswith("tcp-")
    assert b1.id.startswith("second-"), b1.id

    # A -> B and B -> A. The subscriber's gateway has told the broker
    # (sync_with_broker) before the other gateway publishes.
    assert b1.ask("sub news/#") == "OK"
    b1.sync_with_broker()
    assert a1.ask("pub news/today hello from A") == "OK"
    assert b1.next_async() == event("news/today", "hello from A")
    assert a2.ask_all(["sub weather/+", "sub news/#"]) == ["OK", "OK"]
    a2.sync_with_broker()
    assert b1.ask("pub weather/paris sunny") == "OK"
    assert a2.next_async() == event("weather/paris", "sunny")
    assert b1.ask("pub news/late from B") == "OK"
    assert b1.next_async() == event("news/late", "from B")
    assert a2.next_async() == event("news/late", "from B")
    # Non-matching events are not delivered across either.
    assert a1.ask_all(["pub weather/paris/today no", "pub newsroom no", "pub news/end marker"]) \
        == ["OK"] * 3
    assert b1.next_async() == event("news/end", "marker")
    assert a2.next_async() == event("news/end", "marker")

    # `clients` lists every client of both gateways, sorted, from either side.
    everyone = sorted([a1.id, a2.id, b1.id])
    wait_until(lambda: client_list(a1) == everyone, 5,
               "`clients` on gateway A to list %s" % everyone)
    assert client_list(b1) == everyone

    # `client ID`: its gateway, its address, since when.
    def info(asker, peer):
        reply = asker.ask("client %s" % peer.id)
        assert reply.startswith("OK "), reply
        fields = dict(item.split("=", 1) for item in reply[3:].split())
        assert fields["id"] == peer.id
        assert fields["address"] == "127.0.0.1:%d" % peer.sock.getsockname()[1], (reply, peer.id)
        assert SINCE.match(fields["since"]), reply
        return fields

    a1_info, a2_info, b1_info = info(b1, a1), info(b1, a2), info(a1, b1)
    assert a1_info["gateway"] == a2_info["gateway"] != b1_info["gateway"]
    assert a1.ask("client nobody-1").startswith("ERR no-such-client")
    assert a1.ask("client").startswith("ERR ")

    # `tell` reaches a client wherever it is connected, as MSG FROM TEXT.
    assert a1.ask("tell %s hi there   B" % b1.id) == "OK"
    assert b1.next_async() == "MSG %s hi there B" % a1.id
    assert b1.ask("tell %s hello A" % a2.id) == "OK"
    assert a2.next_async() == "MSG %s hello A" % b1.id
    assert a1.ask("tell %s to myself" % a1.id) == "OK"
    assert a1.next_async() == "MSG %s to myself" % a1.id
    assert a1.ask("tell nobody-7 hello").startswith("ERR no-such-client")
    assert a1.ask("tell tcp-999999 hello").startswith("ERR no-such-client")
    assert b1.ask("tell %s" % a1.id).startswith("ERR bad-args")
    a2.no_async_now(0.05)

    # A client that leaves is forgotten: not listed, not reachable.
    b1_id = b1.id
    b1.close()
    wait_until(lambda: b1_id not in client_list(a1), 5, "%s to leave the registry" % b1_id)
    assert a1.ask("tell %s anyone" % b1_id).startswith("ERR no-such-client")
    assert a1.ask("client %s" % b1_id).startswith("ERR no-such-client")
    assert client_list(a1) == sorted([a1.id, a2.id])
    assert second.alive() and c.gateway.alive() and c.broker.alive()


def test_sys_clients_join_and_leave_events(components, processes, peers):
    c = components(pools={"default": 1})
    watcher = peers(c.port)        # $sys/clients/+
    everything = peers(c.port)     # #: must not see $sys topics
    assert watcher.ask("sub $sys/clients/+") == "OK"
    assert everything.ask("sub #") == "OK"
    assert everything.ask("sub +/clients/+") == "OK"

    visitor = peers(c.port)        # joins and leaves on the same gateway
    others = sys_clients_of_others(visitor.id)
    await_line(watcher, event("$sys/clients/%s" % visitor.id, "joined"), others)
    visitor.close()
    await_line(watcher, event("$sys/clients/%s" % visitor.id, "left"), others)

    # And from another gateway (its readiness probes joined and left too).
    second, second_port = start_second_gateway(processes, c)
    remote = peers(second_port)
    others = sys_clients_of_others(remote.id)
    await_line(watcher, event("$sys/clients/%s" % remote.id, "joined"), others)
    remote.close()
    await_line(watcher, event("$sys/clients/%s" % remote.id, "left"), others)

    # `#` and `+/clients/+` saw none of it: the next line is the marker.
    assert watcher.ask("pub marker/after joins") == "OK"
    assert everything.next_async() == event("marker/after", "joins")
    everything.no_async_now(0.05)
    # $-topics are the hub's own: a client cannot publish a fake join.
    assert watcher.ask("pub $sys/clients/fake joined").startswith("ERR bad-args")
    assert watcher.ask("pub marker/again x") == "OK"
    assert everything.next_async() == event("marker/again", "x")
    assert second.alive()


# --------------------------------------------------------------------- forwarding

def test_gateway_receives_only_wanted_events(components, processes, peers):
    c = components(pools={"default": 1})
    publisher = peers(c.port)
    before = broker_stats(publisher)
    assert before["events_sent"] == 0, before
    assert {"gateways", "clients", "published"} <= set(before), before

    # No subscriber anywhere: published, but sent to no gateway.
    assert publisher.ask_all(["pub lonely/%d x" % n for n in range(5)]) == ["OK"] * 5
    after = broker_stats(publisher)
    assert after["published"] >= before["published"] + 5, (before, after)
    assert after["events_sent"] == 0, after

    # One subscriber: exactly one event sent, to its gateway.
    subscriber = peers(c.port)
    assert subscriber.ask("sub wanted/#") == "OK"
    assert publisher.ask_all(["pub lonely/x x", "pub wanted/one 1"]) == ["OK"] * 2
    assert subscriber.next_async() == event("wanted/one", "1")
    stats = broker_stats(publisher)
    assert stats["events_sent"] == 1, stats

    # A second client with an overlapping filter on the same gateway: still
    # one event per gateway, delivered to both clients.
    other = peers(c.port)
    assert other.ask("sub wanted/+") == "OK"
    assert publisher.ask("pub wanted/two 2") == "OK"
    assert subscriber.next_async() == event("wanted/two", "2")
    assert other.next_async() == event("wanted/two", "2")
    assert broker_stats(publisher)["events_sent"] == 2

    # A gateway without subscribers is not sent the events the first one wants.
    second, second_port = start_second_gateway(processes, c)
    idle = peers(second_port)
    idle.sync_with_broker()
    assert publisher.ask("pub wanted/three 3") == "OK"
    assert subscriber.next_async() == event("wanted/three", "3")
    assert other.next_async() == event("wanted/three", "3")
    assert broker_stats(publisher)["events_sent"] == 3
    # ... until one of its clients subscribes: then one per gateway.
    assert idle.ask("sub wanted/three") == "OK"
    idle.sync_with_broker()
    assert publisher.ask("pub wanted/three 4") == "OK"
    for peer in (idle, subscriber, other):
        assert peer.next_async() == event("wanted/three", "4")
    assert broker_stats(publisher)["events_sent"] == 5

    # When the last client of a filter lets go, the broker stops sending.
    assert idle.ask("unsub wanted/three") == "OK"
    assert subscriber.ask("unsub wanted/#") == "OK"
    assert other.ask("unsub wanted/+") == "OK"
    idle.sync_with_broker()
    assert publisher.ask_all(["pub wanted/three 5", "pub wanted/x 6"]) == ["OK"] * 2
    assert broker_stats(publisher)["events_sent"] == 5
    # A client that leaves takes its filters with it.
    leaver = peers(c.port)
    assert leaver.ask("sub leaving/#") == "OK"
    assert publisher.ask("pub leaving/now 1") == "OK"
    assert leaver.next_async() == event("leaving/now", "1")
    assert broker_stats(publisher)["events_sent"] == 6
    leaver.close()
    wait_until(lambda: leaver.id not in client_list(publisher), 5, "the leaver to be gone")
    assert publisher.ask("pub leaving/later 2") == "OK"
    assert broker_stats(publisher)["events_sent"] == 6
    for peer in (subscriber, other, idle):
        peer.no_async_now(0.05)


# --------------------------------------------------------------------- slow subscriber

def test_subscriber_that_does_not_read_is_disconnected(components, peers):
    """--max-output 65536: a subscriber that never reads (small receive
    window) is disconnected once its unsent output passes the limit; another
    subscriber receives every event and a third client's echo keeps working."""
    c = components(gateway_args=["--max-output", "65536"], pools={"default": 1})
    publisher = peers(c.port)
    reader = peers(c.port)
    bystander = peers(c.port)
    assert reader.ask("sub flood/#") == "OK"

    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(5)
    slow.connect(("127.0.0.1", c.port))
    greeting = b""
    while not greeting.endswith(b"\n"):
        greeting += slow.recv(1)
    slow_id = GREETING.match(greeting.decode().strip()).group(1)
    slow.sendall(b"sub flood/#\n")
    ok = b""
    while not ok.endswith(b"\n"):
        ok += slow.recv(1)
    assert ok == b"OK\n"
    # From here on it never reads.

    payload = "p" * 4000
    batch = 10                 # 40 KB per batch: the reader drains each batch
    sent = 0
    started = time.monotonic()
    disconnected_after = None
    try:
        while time.monotonic() - started < 15:
            lines = ["pub flood/%d %s" % (sent + n, payload) for n in range(batch)]
            assert publisher.ask_all(lines) == ["OK"] * batch
            for n in range(batch):
                line = reader.next_async()
                assert line == event("flood/%d" % (sent + n), payload), line[:60]
            sent += batch
            assert bystander.ask("echo still here %d" % sent, timeout=2) == \
                "OK still here %d" % sent
            if slow_id not in client_list(bystander):
                disconnected_after = sent
                break
        assert disconnected_after, "the slow subscriber was still connected after %d events " \
            "of %d bytes (%.1f MB)" % (sent, len(payload), sent * len(payload) / 1e6)
        records = log_records(c.gateway, "client does not read its replies, disconnecting")
        assert len(records) == 1, records
        # Dropped as soon as its queue passed the limit: at most one batch over.
        unsent = int(records[0]["unsent_bytes"])
        assert 65536 < unsent <= 65536 + batch * (len(payload) + 64), records[0]["_line"]
        # And before much more than the kernel's buffers could hold was sent.
        sent_bytes = disconnected_after * (len(payload) + 20)
        assert sent_bytes < 2 * kernel_send_buffer_max() + (4 << 20), sent_bytes

        # The others go on: more events, all delivered, in order.
        for n in range(20):
            assert publisher.ask("pub flood/more/%d x" % n) == "OK"
        for n in range(20):
            assert reader.next_async() == event("flood/more/%d" % n, "x")
        assert bystander.ask("echo after") == "OK after"

        # The slow client sees its connection end after what had been sent.
        slow.settimeout(0.2)

        def closed():
            try:
                while True:
                    chunk = slow.recv(1 << 20)
                    if not chunk:
                        return True
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True

        wait_until(closed, 5, "the slow subscriber's connection to be closed")
    finally:
        slow.close()
    assert not reader.eof and not bystander.eof
    assert c.gateway.alive()
    print("slow subscriber dropped after %d events of %d bytes"
          % (disconnected_after, len(payload)))


# --------------------------------------------------------------------- broker restart

def kernel_send_buffer_max():
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as wmem:
            return int(wmem.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


def _broker_of(hub):
    found = [pid for pid in children_of(hub.pid)
             if Path((cmdline_of(pid) or [""])[0]).name == "sb-broker"]
    return found[0] if len(found) == 1 else None


def test_registry_and_subscriptions_survive_a_broker_restart(launch_hub, peers):
    hub = launch_hub()
    subscriber = peers(hub.port)
    publisher = peers(hub.port)
    watcher = peers(hub.port)
    assert subscriber.ask_all(["sub room/+/light", "sub alarm"]) == ["OK", "OK"]
    assert watcher.ask("sub $sys/clients/+") == "OK"
    assert publisher.ask("pub room/hall/light on") == "OK"
    assert subscriber.next_async() == event("room/hall/light", "on")
    everyone = sorted([subscriber.id, publisher.id, watcher.id])
    wait_until(lambda: client_list(publisher) == everyone, 5, "`clients` to list %s" % everyone)

    broker = _broker_of(hub)
    assert broker, "no sb-broker child of the launcher: %s" % children_of(hub.pid)
    os.kill(broker, signal.SIGKILL)
    wait_until(lambda: (lambda pid: pid and pid != broker)(_broker_of(hub)), 10,
               "the launcher to start a new broker")
    wait_until(lambda: try_request(hub.port, "echo back", "OK back"), 10,
               "echo to work again after the broker restart", ignore=(OSError, EOFError,
                                                                      TimeoutError))

    # The new broker learnt the clients from the gateway.
    wait_until(lambda: client_list(publisher) == everyone, 5,
               "`clients` after the restart to list %s" % everyone)
    assert subscriber.ask("client %s" % publisher.id).startswith("OK id=%s " % publisher.id)
    assert publisher.ask("tell %s still there?" % subscriber.id) == "OK"
    assert subscriber.next_async() == "MSG %s still there?" % publisher.id

    # Subscriptions made before the restart still deliver, without a new sub.
    assert publisher.ask_all(["pub room/kitchen/light off", "pub room/kitchen/heat 20",
                              "pub alarm ring"]) == ["OK"] * 3
    assert subscriber.next_async() == event("room/kitchen/light", "off")
    assert subscriber.next_async() == event("alarm", "ring")
    # And unsub still works against the new broker.
    assert subscriber.ask("unsub alarm") == "OK"
    assert publisher.ask_all(["pub alarm again", "pub room/x/light marker"]) == ["OK"] * 2
    assert subscriber.next_async() == event("room/x/light", "marker")

    # Join/leave events go on after the restart (the watcher may also see
    # the probes, and our clients announced again to the new broker).
    newcomer = peers(hub.port)
    others = sys_clients_of_others(newcomer.id)
    await_line(watcher, event("$sys/clients/%s" % newcomer.id, "joined"), others)
    newcomer.close()
    await_line(watcher, event("$sys/clients/%s" % newcomer.id, "left"), others)


# --------------------------------------------------------------------- gateways that die or stall

HEARTBEAT = ["--heartbeat-interval", "0.2", "--heartbeat-liveness", "3"]   # silent after 0.6 s


def test_clients_of_a_dead_gateway_are_forgotten(components, processes, peers):
    """A gateway killed with SIGKILL cannot say goodbye: once it is silent
    past the broker's liveness its clients leave the registry, with a
    `left` event each; the other gateway's clients are untouched."""
    c = components(broker_args=HEARTBEAT, gateway_args=HEARTBEAT, pools={"default": 1})
    second, second_port = start_second_gateway(processes, c, extra_args=HEARTBEAT)
    watcher = peers(c.port)
    assert watcher.ask_all(["sub $sys/clients/+", "sub news"]) == ["OK", "OK"]
    doomed = [peers(second_port) for _ in range(2)]
    for peer in doomed:
        await_line(watcher, event("$sys/clients/%s" % peer.id, "joined"),
                   sys_clients_of_others(*[p.id for p in doomed]))
    assert set(p.id for p in doomed) <= set(client_list(watcher))
    os.kill(second.pid, signal.SIGKILL)
    gone = set()
    deadline = time.monotonic() + 5
    while gone != set(p.id for p in doomed):
        line = watcher.next_async(max(0.0, deadline - time.monotonic()))
        match = re.match(r"^EVENT \$sys/clients/(\S+) left$", line)
        assert match and match.group(1).startswith("second-"), line
        gone.add(match.group(1))
    assert client_list(watcher) == [watcher.id]
    assert watcher.ask("tell %s hello" % doomed[0].id).startswith("ERR no-such-client")
    # Events still flow on the surviving gateway.
    assert watcher.ask("pub news still") == "OK"
    assert watcher.next_async() == event("news", "still")


def test_clients_of_a_restarted_gateway_are_registered(components, processes, peers):
    """A gateway killed and started again (as the launcher does) numbers its
    clients from 1 again; the broker still holds the dead gateway's clients
    with the same ids until it expires them. The new clients must end up in
    the registry with their own addresses and be reachable by `tell`."""
    c = components(broker_args=HEARTBEAT, gateway_args=HEARTBEAT, pools={"default": 1})
    old = [peers(c.port) for _ in range(3)]
    outsider_gateway, outsider_port = start_second_gateway(processes, c, extra_args=HEARTBEAT)
    outsider = peers(outsider_port)
    wait_until(lambda: set(p.id for p in old) <= set(client_list(outsider)), 5,
               "the first gateway's clients to be registered")
    os.kill(c.gateway.pid, signal.SIGKILL)
    for peer in old:
        peer.close()
    restarted = processes.start("sb-gateway-tcp-restarted", c.gateway.argv)
    wait_until(lambda: restarted.alive() and answers(c.port, "echo ready", "OK ready"),
               STARTUP_TIMEOUT, "the restarted gateway to answer")
    # It numbers its clients from 1 again (its readiness probes took some):
    # connect until a new client has the id of an old one.
    old_ids = set(p.id for p in old)
    new = []
    while not new or new[-1].id not in old_ids:
        assert len(new) < 100, "the restarted gateway reused no id: %s, %s" % (
            sorted(old_ids), [p.id for p in new])
        new.append(peers(c.port))
    new = new[-1:]

    def registered(peer):
        reply = outsider.ask("client %s" % peer.id)
        return reply.startswith("OK ") and \
            ("address=127.0.0.1:%d " % peer.sock.getsockname()[1]) in reply

    # Past the dead gateway's expiry (0.6 s), the new clients are known...
    wait_until(lambda: all(registered(p) for p in new), 3,
               "the restarted gateway's clients %s to be registered" % [p.id for p in new])
    wait_until(lambda: log_records(c.broker, "gateways silent, their clients forgotten"), 3,
               "the broker to forget the dead gateway")
    assert all(registered(p) for p in new), client_list(outsider)
    # ... and reachable.
    assert outsider.ask("tell %s hello again" % new[0].id) == "OK"
    assert new[0].next_async() == "MSG %s hello again" % outsider.id


def test_a_stalled_gateway_gets_its_subscriptions_back(components, peers):
    """A gateway that stalls longer than the broker's liveness (SIGSTOP
    here; a long pause under load in real life) is forgotten by the broker.
    When it runs again, its clients and subscriptions must be restored."""
    c = components(broker_args=HEARTBEAT, gateway_args=HEARTBEAT, pools={"default": 1})
    subscriber, publisher = peers(c.port), peers(c.port)
    assert subscriber.ask("sub stall/#") == "OK"
    assert publisher.ask("pub stall/before 1") == "OK"
    assert subscriber.next_async() == event("stall/before", "1")
    os.kill(c.gateway.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: log_records(c.broker, "gateways silent, their clients forgotten"),
                   5, "the broker to forget the stopped gateway")
    finally:
        os.kill(c.gateway.pid, signal.SIGCONT)
    everyone = sorted([subscriber.id, publisher.id])

    def delivered():
        publisher.ask("pub stall/after 2")
        return event("stall/after", "2") in subscriber.read_available(0.1)

    wait_until(delivered, 3, "events to reach the subscriber again")
    wait_until(lambda: client_list(publisher) == everyone, 3, "`clients` to list %s" % everyone)


def test_events_published_while_a_gateway_is_forgotten_reach_it(components, processes, peers):
    """The broker forgets a stalled gateway's clients but keeps its filters
    until it speaks again and resyncs: what was published meanwhile (here
    through another gateway) reaches its subscriber once it runs again."""
    c = components(broker_args=HEARTBEAT, gateway_args=HEARTBEAT, pools={"default": 1})
    _, second_port = start_second_gateway(processes, c, extra_args=HEARTBEAT)
    subscriber, publisher = peers(c.port), peers(second_port)
    assert subscriber.ask("sub pause/#") == "OK"
    assert publisher.ask("pub pause/before 1") == "OK"
    assert subscriber.next_async() == event("pause/before", "1")
    os.kill(c.gateway.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: log_records(c.broker, "gateways silent, their clients forgotten"),
                   5, "the broker to forget the stopped gateway")
        assert subscriber.id not in client_list(publisher)
        assert publisher.ask("pub pause/during 2") == "OK"
    finally:
        os.kill(c.gateway.pid, signal.SIGCONT)
    assert subscriber.next_async() == event("pause/during", "2")
    wait_until(lambda: subscriber.id in client_list(publisher), 3,
               "the resumed gateway's client to be registered again")
