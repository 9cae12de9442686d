"""Retained values (issue 12 §3) with the real programs: `pub -r` keeps a
topic's value in the broker and every later `sub` that matches gets it
first, as a `RETAINED TOPIC PAYLOAD` line before the `OK` of the `sub`
(WebSocket: an event with "retained":true); a second client with the same
filter on the same gateway gets it too (the broker answers each client,
not each gateway); an empty `pub -r` clears it; `topics FILTER` lists the
values on one line; the values survive a broker restart (SQLite); a small
--retained-max refuses a new topic; and a token limited to home/# sees no
other retained topic, through `sub` or `topics`.

Ordering across gateways: a publisher asks `stats broker` after its `pub`
(one DEALER, in order), so the broker holds the value before another
gateway's client subscribes."""
import json

from conftest import STARTUP_TIMEOUT, Client, stats_of, wait_until
from ws_support import WsPeers, run
from test_tokens import ADMIN_SECRET, PANEL_SECRET, authed, start  # noqa: F401 (fixture)


def set_retained(client, topic, payload=None):
    line = "pub -r %s%s" % (topic, "" if payload is None else " " + payload)
    assert client.request(line) == "OK", line
    assert client.request("stats broker").startswith("OK ")   # the broker has it


def sub_lines(client, topic_filter):
    """The lines a `sub` brings, up to and with its OK."""
    client.send("sub " + topic_filter)
    lines = []
    while not lines or not (lines[-1] == "OK" or lines[-1].startswith("ERR")):
        lines.append(client.read_line())
    return lines


def test_a_sub_gets_the_retained_values_first_then_live_events(components):
    c = components(pools={"default": 1})
    with Client(c.port) as publisher, Client(c.port) as subscriber:
        set_retained(publisher, "home/lamp", "on")
        set_retained(publisher, "home/hall/temp", "21.5 C")
        publisher.request("pub home/door open")               # not retained
        assert sub_lines(subscriber, "home/#") == [
            "RETAINED home/hall/temp 21.5 C", "RETAINED home/lamp on", "OK"]
        # Live events stay EVENT lines, retained publish or not.
        assert publisher.request("pub -r home/lamp off") == "OK"
        assert subscriber.read_line() == "EVENT home/lamp off"
        assert publisher.request("pub home/lamp dim") == "OK"
        assert subscriber.read_line() == "EVENT home/lamp dim"
        # The retained value is the last `pub -r`, not the last `pub`.
        with Client(c.port) as late:
            assert sub_lines(late, "home/lamp") == ["RETAINED home/lamp off", "OK"]
        wait_until(lambda: stats_of(publisher, "stats broker")["retained_pending"] == "0",
                   STARTUP_TIMEOUT, "the retained changes to be written")
        stats = stats_of(publisher, "stats broker")
        assert stats["retained"] == "2", stats
        # Four retained changes, in fewer transactions when they came close together.
        assert 1 <= int(stats["retained_batches"]) <= int(stats["retained_writes"]) <= 4, stats


def test_a_second_client_with_the_same_filter_gets_them_too(components):
    c = components(pools={"default": 1})
    with Client(c.port) as first, Client(c.port) as second:
        set_retained(first, "home/lamp", "on")
        assert sub_lines(first, "home/#") == ["RETAINED home/lamp on", "OK"]
        # The gateway has the filter already: no SUBSCRIBE to the broker,
        # but the second client still gets the value, and the first not again.
        assert sub_lines(second, "home/#") == ["RETAINED home/lamp on", "OK"]
        assert first.request("pub home/marker m") == "OK"
        assert first.read_line() == "EVENT home/marker m"
        assert second.read_line() == "EVENT home/marker m"
        # The same client subscribing again gets them again (MQTT does the same).
        assert sub_lines(second, "home/+") == ["RETAINED home/lamp on", "OK"]


def test_an_empty_retained_publish_clears_the_topic(components):
    c = components(pools={"default": 1})
    with Client(c.port) as client:
        set_retained(client, "home/lamp", "on")
        set_retained(client, "home/lamp")
        assert client.request("topics #") == "OK 0"
        assert sub_lines(client, "home/#") == ["OK"]
        assert stats_of(client, "stats broker")["retained"] == "0"
        # `-r` is the flag, and a topic still has to follow it.
        assert client.request("pub -r").startswith("ERR bad-args usage: pub [-r] TOPIC")
        assert client.request("pub -r home/+ x").startswith("ERR bad-args")


def test_topics_lists_values_on_one_line_with_quoting(components):
    c = components(pools={"default": 1})
    with Client(c.port) as client:
        set_retained(client, "home/b", r'"say \"hi\" now"')
        set_retained(client, "home/a", "1")
        set_retained(client, "work/x", "w")
        assert client.request("topics home/#") == r'OK 2 home/a 1 home/b "say \"hi\" now"'
        assert client.request("topics nothing/#") == "OK 0"
        assert client.request("topics").startswith("ERR bad-args usage: topics FILTER")
        assert client.request("topics a/#/b").startswith("ERR bad-args")


def test_a_websocket_client_gets_retained_true(components, ws_gateway):
    c = components(pools={"default": 1})
    _, ws_port = ws_gateway(c)
    with Client(c.port) as publisher:
        set_retained(publisher, "home/lamp", r'"{\"on\": true}"')

        async def main():
            async with WsPeers() as open_peer:
                peer = await open_peer(ws_port)
                await peer.send_json({"id": 1, "cmd": "sub", "args": ["home/#"]})
                first = json.loads(await peer.recv_text())
                assert first == {"event": "home/lamp", "data": {"on": True}, "retained": True}, first
                reply = json.loads(await peer.recv_text())
                assert reply == {"id": 1, "ok": True, "result": ""}, reply
                assert publisher.request("pub home/lamp off") == "OK"
                live = await peer.next_async()
                assert live == {"event": "home/lamp", "data": "off"}, live

        run(main())


def test_retained_values_survive_a_broker_restart(components, processes):
    c = components(pools={"default": 1})
    with Client(c.port) as client:
        set_retained(client, "home/lamp", "on")
        set_retained(client, "home/gone", "x")
        set_retained(client, "home/gone")
    # Written in a batch within --retained-flush (0.1 s); the kill comes after it.
    with Client(c.port) as client:
        wait_until(lambda: stats_of(client, "stats broker")["retained_pending"] == "0",
                   STARTUP_TIMEOUT, "the retained changes to be written")
    c.broker.popen.kill()
    c.broker.popen.wait(5)
    broker = processes.start("sb-broker", c.broker.argv)

    _wait_for_the_new_broker(c, broker)
    with Client(c.port) as client:
        assert sub_lines(client, "home/#") == ["RETAINED home/lamp on", "OK"]


def test_a_small_retained_max_refuses_a_new_topic(components):
    c = components(pools={"default": 1}, broker_args=["--retained-max", "2"])
    with Client(c.port) as client, Client(c.port) as watcher:
        assert sub_lines(watcher, "home/#") == ["OK"]
        set_retained(client, "home/a", "1")
        set_retained(client, "home/b", "2")
        set_retained(client, "home/c", "3")                   # refused, still delivered live
        set_retained(client, "home/a", "11")                  # a held topic may change
        assert watcher.read_lines(4) == ["EVENT home/a 1", "EVENT home/b 2", "EVENT home/c 3",
                                         "EVENT home/a 11"]
        assert client.request("topics #") == "OK 2 home/a 11 home/b 2"
        stats = stats_of(client, "stats broker")
        assert (stats["retained"], stats["retained_refused"]) == ("2", "1"), stats


def test_a_token_limited_to_home_sees_no_other_retained_topic(start):
    c = start(anonymous="[anonymous]\ncommands = ping sub topics pub auth\n"
                        "subscribe = home/#\npublish = home/#\n")
    with authed(c.port, "admin", ADMIN_SECRET) as admin, \
            authed(c.port, "panel", PANEL_SECRET) as panel, Client(c.port) as anonymous:
        set_retained(admin, "home/lamp", "on")
        set_retained(admin, "work/secret", "s")
        # The panel (home/#) may subscribe to # (it shares home/...), but gets only home/.
        assert sub_lines(panel, "#") == ["RETAINED home/lamp on", "OK"]
        assert admin.request("topics #") == "OK 2 home/lamp on work/secret s"
        # `topics` within the same rules (the anonymous ones: home/# too).
        assert sub_lines(anonymous, "+/#") == ["RETAINED home/lamp on", "OK"]
        assert anonymous.request("topics #") == "OK 1 home/lamp on"
        assert anonymous.request("topics work/#").startswith("ERR unauthorized ")
        # The publish rules hold for -r too.
        assert panel.request("pub -r work/x 1").startswith("ERR unauthorized ")
        assert anonymous.request("pub -r work/x 1").startswith("ERR unauthorized ")


def test_a_stopped_broker_writes_what_is_pending_first(components, processes):
    # A flush interval of a minute: only the stop can have written the value.
    c = components(pools={"default": 1}, broker_args=["--retained-flush", "60"])
    with Client(c.port) as client:
        set_retained(client, "home/lamp", "on")
        assert stats_of(client, "stats broker")["retained_pending"] == "1"
    assert processes.stop(c.broker), "the broker did not stop on TERM"
    broker = processes.start("sb-broker", c.broker.argv)

    _wait_for_the_new_broker(c, broker)
    with Client(c.port) as client:
        assert sub_lines(client, "home/#") == ["RETAINED home/lamp on", "OK"]


def _wait_for_the_new_broker(c, broker):
    """Until the gateway answers `stats broker` through the restarted broker."""
    def broker_back():
        with Client(c.port, timeout=2.0) as probe:
            return broker.alive() and probe.request("stats broker").startswith("OK ")
    wait_until(broker_back, STARTUP_TIMEOUT, "the gateway to reach the new broker")
