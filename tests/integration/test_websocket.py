"""The WebSocket gateway (brief §3.2, §4) through python3-websockets:
welcome, JSON and line requests, errors, reply order, events with JSON
data, direct messages and the client registry across the TCP and the
WebSocket gateways, quit, binary frames, origins, the connection limit,
keepalive, and the HTTP side of the port (dashboard, /healthz, /metrics).

websockets 10.4: asyncio only. Each test runs one coroutine under a
deadline (`run`); every receive has its own timeout.
"""
import asyncio
import http.client
import re
import uuid

import pytest
import websockets

from conftest import SLOW_POOL, Client, wait_until
from ws_support import CLIENT_ID, WsPeers, eventually, run, tcp_client_list

TCP_GREETING = re.compile(r"^OK switchboard \S+ client=(\S+)$")


def tcp_id(client):
    match = TCP_GREETING.match(client.greeting or "")
    assert match, client.greeting
    return match.group(1)


def http_get(port, path, method="GET"):
    """(status, headers{lower: value}, body) of one HTTP request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


def sys_event_of_others(*ids):
    """Whether a JSON event is a $sys/clients join/leave of someone not in `ids`."""
    def match(value):
        topic = value.get("event", "")
        return topic.startswith("$sys/clients/") and topic[len("$sys/clients/"):] not in ids \
            and value.get("data") in ("joined", "left")
    return match


async def await_event(peer, expected, may_skip, timeout=5.0):
    """Reads `peer`'s async messages until `expected`; the ones before must satisfy `may_skip`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    skipped = []
    while True:
        value = await peer.next_async(max(0.0, deadline - loop.time()))
        if value == expected:
            return skipped
        assert may_skip(value), "waiting for %r, got %r (before: %r)" % (expected, value, skipped)
        skipped.append(value)


# --------------------------------------------------------------------- welcome and requests

def test_welcome_gives_each_client_its_own_id(hub, clients):
    tcp = clients(hub.port)

    async def main():
        async with WsPeers() as open_peer:
            a = await open_peer(hub.ws_port)
            b = await open_peer(hub.ws_port)
            assert a.welcome == {"event": "$welcome", "data": {"client": a.id}}, a.welcome
            assert CLIENT_ID.match(a.id) and CLIENT_ID.match(b.id), (a.id, b.id)
            assert a.id != b.id
            # Both are in the registry, beside the TCP client.
            wait_until(lambda: {a.id, b.id, tcp_id(tcp)} <= set(tcp_client_list(tcp)), 5,
                       "`clients` to list both WebSocket clients")
            result = await a.ok("clients")
            assert {a.id, b.id, tcp_id(tcp)} <= set(result.split()), result

    run(main())


def test_name_flag_sets_the_client_id_prefix(components, ws_gateway):
    c = components(pools={"default": 1})
    _, port = ws_gateway(c, "--name", "pane")

    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(port)
            assert re.match(r"^pane-\d+$", peer.id), peer.welcome

    run(main())


def test_json_requests_echo_their_id(hub):
    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(hub.ws_port)
            assert await peer.ask({"id": 1, "cmd": "echo", "args": ["hi", "there"]}) == \
                {"id": 1, "ok": True, "result": "hi there"}
            # Any JSON value as id comes back as it was; no id: null.
            for request_id in ("abc", -7, 2.5, {"k": [1, "two"]}, [3], True, None):
                reply = await peer.ask({"id": request_id, "cmd": "echo", "args": ["x"]})
                assert reply == {"id": request_id, "ok": True, "result": "x"}, \
                    (request_id, reply)
                assert type(reply["id"]) is type(request_id), (request_id, reply)
            assert await peer.ask({"cmd": "echo", "args": ["no", "id"]}) == \
                {"id": None, "ok": True, "result": "no id"}
            # args optional; numbers and booleans become text.
            assert await peer.ask({"id": 2, "cmd": "ping"}) == \
                {"id": 2, "ok": True, "result": "pong"}
            assert await peer.ask({"id": 3, "cmd": "echo", "args": ["n", 1, 2.5, True, False]}) \
                == {"id": 3, "ok": True, "result": "n 1 2.5 true false"}
            assert await peer.ask({"id": 4, "cmd": "hello", "args": ["bob"]}) == \
                {"id": 4, "ok": True, "result": "Hello BOB"}
            # Arguments are not re-split: one argument with spaces stays one.
            assert await peer.ask({"id": 5, "cmd": "echo", "args": ["a  b", "c"]}) == \
                {"id": 5, "ok": True, "result": "a  b c"}
            # Pong for a client ping.
            pong = await peer.ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5)

    run(main())


def test_json_errors_carry_code_and_message(hub):
    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(hub.ws_port)

            async def error_of(request):
                reply = await peer.ask(request)
                assert reply.get("ok") is False and reply.get("id") == request.get("id"), reply
                assert set(reply) == {"id", "ok", "error"}, reply
                error = reply["error"]
                assert isinstance(error.get("code"), str) and isinstance(error.get("message"),
                                                                           str), reply
                return error

            error = await error_of({"id": 1, "cmd": "nosuchcommand"})
            assert error["code"] == "unknown-command" and error["message"], error
            assert (await error_of({"id": 2, "cmd": "tell", "args": ["someone"]}))["code"] \
                == "bad-args"
            assert (await error_of({"id": 3, "cmd": "tell", "args": ["nobody-9", "hi"]}))[
                "code"] == "no-such-client"
            # The account store outlives the hub: a fresh name each run.
            name = "ws%s" % uuid.uuid4().hex[:12]
            error = await error_of({"id": 4, "cmd": "account", "args": [name, "withdraw", 5]})
            assert error == {"code": "insufficient-funds", "message": "%s has no money" % name}
            assert await peer.ask({"id": 5, "cmd": "account", "args": [name, "deposit", 7]}) \
                == {"id": 5, "ok": True, "result": "%s 7" % name}
            # The connection is still fine.
            assert await peer.ok("echo", "after") == "after"

    run(main())


BAD_REQUESTS = [
    # (text frame, id expected in the reply)
    ("[1, 2]", None),
    ("42", None),
    ('"ping"', None),
    ("true", None),
    ("null", None),
    ('{"id": 7}', 7),
    ('{"id": "x", "cmd": 5}', "x"),
    ('{"id": 8, "cmd": ["echo"]}', 8),
    ('{"id": 9, "cmd": null}', 9),
    ('{"id": 10, "cmd": "echo", "args": "hi"}', 10),
    ('{"id": 11, "cmd": "echo", "args": {"a": 1}}', 11),
    ('{"id": 12, "cmd": "echo", "args": [["nested"]]}', 12),
    ('{"id": 13, "cmd": "echo", "args": ["ok", {"a": 1}]}', 13),
]


def test_valid_json_that_is_not_a_request_is_a_bad_request(hub):
    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(hub.ws_port)
            for text, expected_id in BAD_REQUESTS:
                reply = await peer.ask(text)
                assert reply.get("id", "missing") == expected_id and reply.get("ok") is False, \
                    (text, reply)
                assert reply.get("error", {}).get("code") == "bad-request", (text, reply)
                assert isinstance(reply["error"].get("message"), str), (text, reply)
            assert await peer.ok("echo", "still", "usable") == "still usable"

    run(main())


def test_text_that_is_not_json_is_a_command_line(hub):
    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(hub.ws_port)
            assert await peer.line("ping") == "OK pong"
            assert await peer.line("echo a b") == "OK a b"
            assert await peer.line('echo "quoted  arg" x') == "OK quoted  arg x"
            assert await peer.line("@t1 ping") == "@t1 OK pong"
            assert await peer.line("@t2 echo tagged") == "@t2 OK tagged"
            reply = await peer.line("nosuch")
            assert reply.startswith("ERR unknown-command "), reply
            assert (await peer.line("tell")).startswith("ERR bad-args "), "tell without args"
            # Almost-JSON is a line too (and answered as a line).
            assert (await peer.line("{not json")).startswith("ERR unknown-command "), \
                "a broken JSON text should be treated as the command `{not`"
            # Untagged pipelined lines: answered in order.
            for n in range(20):
                await peer.send_text("echo n%d" % n)
            for n in range(20):
                assert await peer.reply() == "OK n%d" % n
            # JSON and lines on one connection.
            assert await peer.ask({"id": 1, "cmd": "echo", "args": ["json"]}) == \
                {"id": 1, "ok": True, "result": "json"}
            assert await peer.line("echo line") == "OK line"

    run(main())


def test_json_replies_are_not_held_back_by_slow_requests(components, ws_gateway):
    c = components(SLOW_POOL, pools={"default": 1, "slow": 1})
    _, port = ws_gateway(c)

    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(port)
            # JSON: each reply as soon as it is ready.
            await peer.send_json({"id": "slow", "cmd": "sleep", "args": ["1"]})
            await peer.send_json({"id": "fast", "cmd": "ping"})
            await peer.send_json({"id": "echo", "cmd": "echo", "args": ["quick"]})
            first = [await peer.json_reply(), await peer.json_reply()]
            assert sorted(first, key=lambda r: r["id"]) == [
                {"id": "echo", "ok": True, "result": "quick"},
                {"id": "fast", "ok": True, "result": "pong"}], first
            assert await peer.json_reply(5) == {"id": "slow", "ok": True, "result": "slept 1"}
            # Tagged lines: likewise out of order.
            await peer.send_text("@a sleep 1")
            await peer.send_text("@b ping")
            assert await peer.reply() == "@b OK pong"
            assert await peer.reply(5) == "@a OK slept 1"
            # Untagged lines: in request order.
            await peer.send_text("sleep 1")
            await peer.send_text("ping")
            assert await peer.reply(5) == "OK slept 1"
            assert await peer.reply() == "OK pong"

    run(main())


# --------------------------------------------------------------------- events and messages

def test_events_from_tcp_reach_websocket_subscribers_with_json_data(hub, clients):
    publisher = clients(hub.port)

    async def main():
        async with WsPeers() as open_peer:
            json_sub = await open_peer(hub.ws_port)      # subscribes with JSON
            line_sub = await open_peer(hub.ws_port)      # subscribes with a line
            await json_sub.ok("sub", "home/#")
            await json_sub.ok("sub", "marker")
            assert await line_sub.line("sub home/+/temp") == "OK"
            assert await line_sub.line("sub marker") == "OK"
            await json_sub.sync_with_broker()
            await line_sub.sync_with_broker()

            published = [
                ("home/temp", "21", 21),
                ("home/kitchen/temp", "21.5", 21.5),
                ("home/x", '"{\\"a\\":1}"', {"a": 1}),
                ("home/list", "[1,2,3]", [1, 2, 3]),
                ("home/flag", "true", True),
                ("home/text", "hello   world", "hello world"),
                ("home/almost", '"{\\"a\\":1} x"', '{"a":1} x'),
                ("home/quoted", '"\\"hi\\""', "hi"),
                ("office/temp", "19", None),         # matches neither
                ("marker", "end", "end"),
            ]
            for topic, payload, _ in published:
                assert publisher.request("pub %s %s" % (topic, payload)) == "OK", topic
            for topic, _, data in published:
                if data is None:
                    continue
                assert await json_sub.next_async() == {"event": topic, "data": data}
            assert await line_sub.next_async() == {"event": "home/kitchen/temp", "data": 21.5}
            assert await line_sub.next_async() == {"event": "marker", "data": "end"}

            # unsub over JSON: nothing more on home/#, the marker still comes.
            await json_sub.ok("unsub", "home/#")
            await json_sub.sync_with_broker()
            assert publisher.request("pub home/temp 22") == "OK"
            assert publisher.request("pub marker again") == "OK"
            assert await json_sub.next_async() == {"event": "marker", "data": "again"}

    run(main())


def test_events_from_websocket_reach_tcp_and_websocket_subscribers(hub, clients):
    subscriber = clients(hub.port)
    assert subscriber.request("sub room/#") == "OK"
    assert subscriber.request("stats broker").startswith("OK ")

    async def main():
        async with WsPeers() as open_peer:
            publisher = await open_peer(hub.ws_port)
            watcher = await open_peer(hub.ws_port)
            assert await watcher.line("sub room/+") == "OK"
            await watcher.sync_with_broker()
            await publisher.ok("pub", "room/hall", "light", "on")
            assert await publisher.line("pub room/kitchen 42") == "OK"
            await publisher.ok("pub", "room/json", '{"on":true}')
            assert subscriber.read_line() == "EVENT room/hall light on"
            assert subscriber.read_line() == "EVENT room/kitchen 42"
            assert subscriber.read_line() == 'EVENT room/json {"on":true}'
            assert await watcher.next_async() == {"event": "room/hall", "data": "light on"}
            assert await watcher.next_async() == {"event": "room/kitchen", "data": 42}
            assert await watcher.next_async() == {"event": "room/json", "data": {"on": True}}

    run(main())


def test_bad_filters_and_topics_over_json(hub):
    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(hub.ws_port)
            for cmd, args in (("sub", ["a/#/b"]), ("sub", ["te+mp"]), ("sub", []),
                              ("pub", ["home/+/temp", "x"]), ("pub", ["$sys/clients/x", "joined"]),
                              ("unsub", ["never/subscribed"])):
                reply = await peer.ask({"id": cmd, "cmd": cmd, "args": args})
                assert reply.get("id") == cmd and reply.get("ok") is False, (cmd, args, reply)
                assert reply["error"]["code"] == "bad-args", (cmd, args, reply)
            await peer.ok("pub", "nobody/listens", "x")

    run(main())


def test_sys_clients_events_across_gateways(hub, clients):
    asker = clients(hub.port)          # asks `clients` (the watcher gets EVENT lines)
    tcp_watcher = clients(hub.port)
    assert tcp_watcher.request("sub $sys/clients/+") == "OK"
    assert tcp_watcher.request("stats broker").startswith("OK ")

    def tcp_await(expected, skip_ids):
        deadline = 5
        while True:
            line = tcp_watcher.read_line(deadline)
            if line == expected:
                return
            match = re.match(r"^EVENT \$sys/clients/(\S+) (joined|left)$", line)
            assert match and match.group(1) not in skip_ids, \
                "waiting for %r, got %r" % (expected, line)

    async def main():
        async with WsPeers() as open_peer:
            ws_watcher = await open_peer(hub.ws_port)
            await ws_watcher.ok("sub", "$sys/clients/+")
            await ws_watcher.sync_with_broker()
            # A WebSocket client joins and leaves: the TCP watcher sees it.
            visitor = await open_peer(hub.ws_port)
            tcp_await("EVENT $sys/clients/%s joined" % visitor.id, [visitor.id])
            await await_event(ws_watcher, {"event": "$sys/clients/%s" % visitor.id,
                                           "data": "joined"}, sys_event_of_others(visitor.id))
            await visitor.close()
            tcp_await("EVENT $sys/clients/%s left" % visitor.id, [visitor.id])
            await await_event(ws_watcher, {"event": "$sys/clients/%s" % visitor.id,
                                           "data": "left"}, sys_event_of_others(visitor.id))
            # A TCP client joins and leaves: the WebSocket watcher sees it.
            with Client(hub.port) as tcp_visitor:
                vid = tcp_id(tcp_visitor)
                await await_event(ws_watcher, {"event": "$sys/clients/%s" % vid,
                                               "data": "joined"}, sys_event_of_others(vid))
            await await_event(ws_watcher, {"event": "$sys/clients/%s" % vid, "data": "left"},
                              sys_event_of_others(vid))
            # Gone from the registry.
            wait_until(lambda: visitor.id not in tcp_client_list(asker), 5,
                       "%s to leave `clients`" % visitor.id)

    run(main())


def test_tell_between_tcp_and_websocket(hub, clients):
    tcp = clients(hub.port)
    me = tcp_id(tcp)

    async def main():
        async with WsPeers() as open_peer:
            a = await open_peer(hub.ws_port)
            b = await open_peer(hub.ws_port)
            wait_until(lambda: a.id in tcp_client_list(tcp), 5, "%s in `clients`" % a.id)
            # TCP -> WebSocket.
            assert tcp.request("tell %s hello   there" % a.id) == "OK"
            assert await a.next_async() == {"msg": {"from": me, "text": "hello there"}}
            # WebSocket (JSON) -> TCP, WebSocket (line) -> TCP.
            await a.ok("tell", me, "hi", "back")
            assert tcp.read_line() == "MSG %s hi back" % a.id
            assert await a.line("tell %s from a line" % me) == "OK"
            assert tcp.read_line() == "MSG %s from a line" % a.id
            # WebSocket -> WebSocket.
            await b.ok("tell", a.id, "psst")
            assert await a.next_async() == {"msg": {"from": b.id, "text": "psst"}}
            # A message in between requests is kept apart from the reply.
            assert tcp.request("tell %s interleaved" % b.id) == "OK"
            assert await b.ok("echo", "reply") == "reply"
            assert await b.next_async() == {"msg": {"from": me, "text": "interleaved"}}
            # Nobody there.
            reply = await a.cmd("tell", "ws-999999", "hello")
            assert reply["ok"] is False and reply["error"]["code"] == "no-such-client", reply
            # `clients` from a WebSocket client lists every gateway's clients.
            listed = (await a.ok("clients")).split()
            assert {a.id, b.id, me} <= set(listed), listed

    run(main())


# --------------------------------------------------------------------- closing

def test_quit_json_replies_bye_then_closes_1000(hub):
    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(hub.ws_port)
            assert await peer.ask({"id": 9, "cmd": "quit"}) == \
                {"id": 9, "ok": True, "result": "bye"}
            assert await peer.wait_closed() == 1000
            other = await open_peer(hub.ws_port)
            assert await other.ok("ping") == "pong"

    run(main())


def test_quit_line_replies_ok_bye_then_closes_1000(hub):
    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(hub.ws_port)
            assert await peer.line("quit") == "OK bye"
            assert await peer.wait_closed() == 1000

    run(main())


def test_binary_frame_closes_1003(hub, clients):
    tcp = clients(hub.port)

    async def main():
        async with WsPeers() as open_peer:
            other = await open_peer(hub.ws_port)
            peer = await open_peer(hub.ws_port)
            await peer.ws.send(b'{"id":1,"cmd":"ping"}')
            assert await peer.wait_closed() == 1003
            assert await other.ok("echo", "unaffected") == "unaffected"
            assert tcp.request("echo unaffected") == "OK unaffected"

    run(main())


# --------------------------------------------------------------------- origins and limits

def test_default_origin_policy_is_same_host_only(hub):
    async def main():
        async with WsPeers() as open_peer:
            # No Origin (a script) and the page's own origin are accepted.
            await open_peer(hub.ws_port)
            await open_peer(hub.ws_port, origin="http://127.0.0.1:%d" % hub.ws_port)
            for origin in ("http://evil.test", "http://127.0.0.1:%d" % (hub.ws_port + 1),
                           "http://localhost.evil.test:%d" % hub.ws_port):
                with pytest.raises(websockets.exceptions.InvalidStatusCode) as refused:
                    await open_peer(hub.ws_port, origin=origin)
                assert refused.value.status_code == 403, origin

    run(main())


def test_allow_origin_list(components, ws_gateway):
    c = components(pools={"default": 1})
    _, listed = ws_gateway(c, "--allow-origin", "http://good.test,http://other.test:8080")
    _, anyone = ws_gateway(c, "--allow-origin", "*")

    async def main():
        async with WsPeers() as open_peer:
            good = await open_peer(listed, origin="http://good.test")
            assert await good.ok("echo", "good") == "good"
            await open_peer(listed, origin="http://other.test:8080")
            for origin in ("http://evil.test", "http://other.test", "http://good.test:81",
                           "https://good.test", "http://good.test.evil.test"):
                with pytest.raises(websockets.exceptions.InvalidStatusCode) as refused:
                    await open_peer(listed, origin=origin)
                assert refused.value.status_code == 403, origin
            evil = await open_peer(anyone, origin="http://evil.test")
            assert await evil.ok("echo", "any") == "any"

    run(main())


def test_max_connections_refuses_the_extra_client_with_503(components, ws_gateway):
    c = components(pools={"default": 1})
    _, port = ws_gateway(c, "--max-connections", "2")

    async def main():
        async with WsPeers() as open_peer:
            first = await open_peer(port)
            second = await open_peer(port)
            with pytest.raises(websockets.exceptions.InvalidStatusCode) as refused:
                await open_peer(port)
            assert refused.value.status_code == 503
            # The two still work; once one leaves there is room again.
            assert await first.ok("echo", "one") == "one"
            assert await second.ok("echo", "two") == "two"
            await second.close()

            async def room():
                try:
                    peer = await open_peer(port)
                except websockets.exceptions.InvalidStatusCode as error:
                    assert error.status_code == 503, error
                    return False
                return peer

            third = await eventually(room, 5, "a free connection slot after a client left")
            assert await third.ok("echo", "three") == "three"

    run(main())


def test_a_client_that_answers_pings_is_not_idle(components, ws_gateway):
    """--ping-interval 0.2 --idle-timeout 1: a websockets client sends
    nothing of its own (ping_interval=None) but answers the server's pings,
    so it is still connected 2.5 s (2.5 idle timeouts) later."""
    c = components(pools={"default": 1})
    _, port = ws_gateway(c, "--ping-interval", "0.2", "--idle-timeout", "1")

    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(port)
            try:
                message = await asyncio.wait_for(peer.ws.recv(), 2.5)
            except asyncio.TimeoutError:
                pass    # nothing arrived and the connection stayed open: expected
            except websockets.exceptions.ConnectionClosed as closed:
                raise AssertionError("closed although it answered every ping: %s" % closed) \
                    from None
            else:
                raise AssertionError("unexpected message %r" % message)
            assert peer.ws.open
            assert await peer.ok("echo", "still", "here") == "still here"

    run(main())


# --------------------------------------------------------------------- HTTP on the same port

def test_dashboard_healthz_and_unknown_paths(hub):
    status, headers, body = http_get(hub.ws_port, "/")
    assert status == 200 and headers.get("content-type", "").startswith("text/html"), headers
    assert b"<html" in body.lower() and b"WebSocket" in body
    status, _, _ = http_get(hub.ws_port, "/healthz")
    assert status == 200
    assert http_get(hub.ws_port, "/nope")[0] == 404
    assert http_get(hub.ws_port, "/healthzz")[0] == 404
    assert http_get(hub.ws_port, "/", method="POST")[0] == 405
    assert http_get(hub.ws_port, "/metrics", method="DELETE")[0] == 405


def metric_values(text, name):
    """The values of every sample of metric `name` (any labels)."""
    values = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^%s(\{[^}]*\})?\s+(\S+)" % re.escape(name), line)
        if match:
            values.append(float(match.group(2)))
    return values


def test_metrics_count_requests_and_connections(hub):
    async def main():
        async with WsPeers() as open_peer:
            peer = await open_peer(hub.ws_port)
            for n in range(7):
                assert await peer.ok("echo", "m%d" % n) == "m%d" % n
            status, headers, body = http_get(hub.ws_port, "/metrics")
            assert status == 200
            # (Prometheus itself adds "; charset=utf-8".)
            assert re.match(r"^text/plain; version=0\.0\.4(;|$)", headers.get("content-type", "")), \
                headers
            text = body.decode()
            requests = metric_values(text, "sb_gateway_requests_total")
            assert requests and sum(requests) >= 7, text
            connections = metric_values(text, "sb_gateway_connections")
            assert connections and sum(connections) >= 1, text
            assert re.search(r'^sb_gateway_request_duration_seconds_bucket\{[^}]*le="\+Inf"[^}]*\}'
                             r' \d+', text, re.M), text
            assert re.search(r'^sb_gateway_request_duration_seconds_bucket\{[^}]*le="[0-9][0-9.eE+-]*"',
                             text, re.M), text
            assert re.search(r'^sb_broker_queue_depth\{[^}]*service="default"[^}]*\} \d+',
                             text, re.M), text
            for line in text.splitlines():
                assert not line or line.startswith("#") or \
                    re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+( \d+)?$", line), \
                    "not a Prometheus sample line: %r" % line

    run(main())
