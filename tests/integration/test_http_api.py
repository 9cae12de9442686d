"""The HTTP API on the WebSocket gateway's port (issue 14 §3, docs/http-api.md):
publish, commands, retained topics, clients and devices with curl, the event
stream (Server-Sent Events) with a small reader on a raw socket, tokens as
Bearer credentials and in a URL (only with url_token), and the hostile cases:
bad JSON, bodies too large (413) or too slow (408), wrong methods (405),
unknown paths (404), bad tokens (401/403), foreign Hosts (421) and Origins
(403), a stream that does not read; the other clients carry on through all
of it."""
import json
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import REPO, Peer, READ_TIMEOUT, log_records, wait_until
from ws_support import RawConn, RawWs
from test_tokens import sha256_hex

PANEL_SECRET = "panel-secret"
DEVICE_SECRET = "device-secret"
# curl's own time limit stays above every server timeout it may meet.
CURL_TIMEOUT = 30


def curl(port, path, *args, data=None, token=None, json_body=None, host=None):
    """(status, body bytes, headers dict) of one curl request."""
    argv = ["curl", "-sS", "--max-time", str(CURL_TIMEOUT), "-D", "-", "-o", "-"]
    if token:
        argv += ["-H", "Authorization: Bearer " + token]
    if host:
        argv += ["-H", "Host: " + host]
    if json_body is not None:
        data = json.dumps(json_body)
        argv += ["-H", "Content-Type: application/json"]
    if data is not None:
        argv += ["--data-binary", "@-"]   # from stdin: a body may exceed argv's limits
    argv += [*args, "http://127.0.0.1:%d%s" % (port, path)]
    out = subprocess.run(argv, capture_output=True, timeout=CURL_TIMEOUT + 10,
                         input=data.encode() if data is not None else b"").stdout
    # Skip an interim `100 Continue` head.
    while out.startswith(b"HTTP/1.1 100"):
        out = out.split(b"\r\n\r\n", 1)[1]
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), body, headers


def curl_json(port, path, *args, **kwargs):
    status, body, headers = curl(port, path, *args, **kwargs)
    assert headers.get("content-type", "").startswith("application/json"), (status, headers, body)
    return status, json.loads(body)


def quoted(text):
    return urllib.parse.quote(text, safe="")


class SseReader(RawConn):
    """GET /api/v1/events on a raw socket; reads the stream event by event."""

    def __init__(self, port, query="", token=None, rcvbuf=None, host=None):
        super().__init__(port, rcvbuf=rcvbuf)
        lines = ["GET /api/v1/events%s HTTP/1.1" % query,
                 "Host: %s" % (host or "127.0.0.1:%d" % port), "Accept: text/event-stream"]
        if token:
            lines.append("Authorization: Bearer " + token)
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def head(self):
        return self.read_http_response()

    def next_block(self, timeout=None):
        """The next block (up to a blank line) as a list of lines."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._need(0, deadline, "")
        while b"\n\n" not in self.buffer:
            if self.eof:
                raise EOFError("stream ended (have %r)" % self.buffer[:200])
            try:
                self._fill(deadline)
            except socket.timeout:
                raise TimeoutError("no SSE block (have %r)" % self.buffer[:200]) from None
        block, self.buffer = self.buffer.split(b"\n\n", 1)
        return block.decode().split("\n")

    def next_event(self, timeout=None):
        """(name, parsed data) of the next event; keepalive comments are skipped."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            lines = self.next_block(max(0.0, deadline - time.monotonic()))
            if all(line.startswith(":") for line in lines):
                continue
            name = [line[7:] for line in lines if line.startswith("event: ")]
            data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
            return name[0], json.loads(data)

    def await_event(self, name, topic, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            got, data = self.next_event(max(0.0, deadline - time.monotonic()))
            if got == name and data.get("event") == topic:
                return data


def ws_still_works(port):
    with RawWs(port) as ws:
        assert ws.request_line("ping") == "OK pong"


@pytest.fixture
def api(components, ws_gateway):
    """Broker, one default pool, a TCP gateway and sb-gateway-ws; returns
    (components, ws port), the gateway's process as components.ws.
    `[command sleep] timeout = 1` gives ERR timeout."""

    def start(config_extra="", *ws_args, broker_args=("--startup-grace", "0"), wait=True):
        config = "[command sleep]\ntimeout = 1\n" + config_extra
        c = components(config, pools={"default": 1}, broker_args=broker_args, wait=wait)
        c.ws, port = ws_gateway(c, *ws_args)
        return c, port

    return start


# --------------------------------------------------------------------- publish, topics, commands

def test_publish_reaches_other_clients_and_topics_lists_retained_values(api):
    c, port = api()
    tcp = Peer(c.port)
    tcp.subscribe("home/#")
    status, body = curl_json(port, "/api/v1/publish",
                             json_body={"topic": "home/lamp", "payload": "on", "retain": True})
    assert (status, body) == (200, {"ok": True})
    tcp.await_event("EVENT home/lamp on")
    # A payload that is not a string goes as its JSON text.
    status, _ = curl_json(port, "/api/v1/publish",
                          json_body={"topic": "home/temp", "payload": {"c": 21.5}})
    assert status == 200
    tcp.await_event('EVENT home/temp {"c":21.5}')
    status, body = curl_json(port, "/api/v1/topics?filter=" + quoted("home/#"))
    assert status == 200, body
    assert body == {"count": 1, "topics": [{"topic": "home/lamp", "payload": "on"}],
                    "truncated": False}
    # Bad topics are the hub's bad-args.
    for topic in ("a/+", "$sys/x", ""):
        status, body = curl_json(port, "/api/v1/publish", json_body={"topic": topic})
        assert status == 400 and body["error"]["code"] == "bad-args", (topic, body)
    status, body = curl_json(port, "/api/v1/topics?filter=" + quoted("a/#/b"))
    assert status == 400 and body["error"]["code"] == "bad-args", body


def test_history_gives_a_numeric_topics_points_oldest_first(api):
    c, port = api()
    tcp = Peer(c.port)
    for value in ("21.5", "22", "-3.25"):
        assert tcp.ask("pub home/temp " + value) == "OK"
    wait_until(lambda: tcp.ask("history home/temp").startswith("OK 3 "), 10,
               "the broker to record three points")
    status, body = curl_json(port, "/api/v1/history?topic=" + quoted("home/temp"))
    assert status == 200, body
    assert [point["v"] for point in body["points"]] == [21.5, 22, -3.25], body
    assert body["count"] == 3
    times = [point["t"] for point in body["points"]]
    assert times == sorted(times) and times[0] > 1_600_000_000_000, times
    status, body = curl_json(port, "/api/v1/history?n=1&topic=" + quoted("home/temp"))
    assert status == 200 and [p["v"] for p in body["points"]] == [-3.25], body
    status, body = curl_json(port, "/api/v1/history")
    assert status == 400 and body["error"]["code"] == "bad-args", body
    status, body = curl_json(port, "/api/v1/history?topic=" + quoted("home/+"))
    assert status == 400 and body["error"]["code"] == "bad-args", body


def test_command_gives_the_websocket_reply_with_a_status_by_error_code(api):
    _, port = api()
    status, body = curl_json(port, "/api/v1/command",
                             json_body={"id": 7, "cmd": "echo", "args": ["hi", "there"]})
    assert (status, body) == (200, {"id": 7, "ok": True, "result": "hi there"})
    status, body = curl_json(port, "/api/v1/command", json_body={"cmd": "ping"})
    assert (status, body) == (200, {"id": None, "ok": True, "result": "pong"})
    cases = [({"cmd": "nosuch"}, 404, "unknown-command"),
             ({"cmd": "hello"}, 400, "bad-args"),
             ({"cmd": "sleep", "args": ["5"]}, 504, "timeout"),
             ({"cmd": "tell", "args": ["tcp-999", "hi"]}, 404, "no-such-client"),
             ({"args": ["x"]}, 400, "bad-request")]
    for request, want_status, code in cases:
        status, body = curl_json(port, "/api/v1/command", json_body=request)
        assert status == want_status and body["ok"] is False, (request, status, body)
        assert body["error"]["code"] == code, (request, body)
    # No provider of `device`: no-service, 503.
    status, body = curl_json(port, "/api/v1/devices")
    assert status == 503 and body["error"]["code"] == "no-service", body


def test_no_broker_is_unavailable_503(api, processes):
    c, port = api("", "--broker-wait", "0.2")
    processes.stop(c.broker)
    wait_until(lambda: curl(port, "/healthz")[0] == 503, 15, "the gateway to see the broker gone")
    status, body = curl_json(port, "/api/v1/publish", json_body={"topic": "a", "payload": "1"})
    assert status == 503 and body["error"]["code"] == "unavailable", body
    status, body = curl_json(port, "/api/v1/command", json_body={"id": 1, "cmd": "echo"})
    assert status == 503 and body["error"]["code"] == "unavailable", body
    # The gateway's own commands still answer.
    status, body = curl_json(port, "/api/v1/command", json_body={"cmd": "ping"})
    assert status == 200, body


def test_clients_lists_every_client_and_the_request_itself(api):
    c, port = api()
    tcp = Peer(c.port)
    with RawWs(port) as ws:
        status, body = curl_json(port, "/api/v1/clients")
        assert status == 200, body
        ids = body["clients"]
        assert tcp.id in ids, ids
        # The WebSocket client and this request (both ws-N) are clients too.
        assert len([i for i in ids if i.startswith("ws-")]) == 2, ids
        assert ws.request_line("ping") == "OK pong"


# --------------------------------------------------------------------- the event stream

def test_events_stream_retained_then_live_with_keepalives_and_leaves_on_close(api):
    c, port = api("", "--ping-interval", "0.2")
    tcp = Peer(c.port)
    assert tcp.ask("pub -r home/door open") == "OK"
    stream = SseReader(port, "?filter=" + quoted("home/#"))
    status, _, headers, _ = stream.head()
    assert status == 200 and headers["content-type"].startswith("text/event-stream"), headers
    name, welcome = stream.next_event()
    assert name == "welcome", (name, welcome)
    stream_id = welcome["data"]["client"]
    data = stream.await_event("retained", "home/door")
    assert data == {"event": "home/door", "data": "open", "retained": True}
    wait_until(lambda: stream_id in tcp.ask("clients"), 10, "the stream to be a client")
    assert tcp.ask("pub home/door closed") == "OK"
    assert tcp.ask("pub garden/x ignored") == "OK"
    assert tcp.ask('pub home/json [1,2]') == "OK"
    assert stream.await_event("event", "home/door")["data"] == "closed"
    assert stream.next_event() == ("event", {"event": "home/json", "data": [1, 2]})
    assert tcp.ask("tell %s hello there" % stream_id) == "OK"
    assert stream.next_event() == ("msg", {"msg": {"from": tcp.id, "text": "hello there"}})
    # Keepalive comments keep coming while nothing happens.
    assert stream.next_block() == [": keepalive"]
    stream.close()
    wait_until(lambda: stream_id not in tcp.ask("clients"), 10, "the stream to leave")


def test_streams_are_bounded_by_max_connections(api):
    c, port = api("", "--max-connections", "1")
    first = SseReader(port)
    assert first.head()[0] == 200
    second = SseReader(port)
    status, _, _, body = second.head()
    assert status == 503 and json.loads(body)["error"]["code"] == "busy", (status, body)
    second.close()
    # WebSocket clients are counted apart.
    ws_still_works(port)
    first.close()
    tcp = Peer(c.port)
    def opens():
        with SseReader(port) as again:
            return again.head()[0] == 200

    wait_until(opens, 10, "a stream once the first has closed")
    assert tcp.ask("ping") == "OK pong"


def test_a_stream_that_does_not_read_is_disconnected_and_others_carry_on(api):
    c, port = api("", "--max-output", "4096")
    tcp = Peer(c.port)
    slow = SseReader(port, "?filter=flood", rcvbuf=4096)
    assert slow.head()[0] == 200
    fast = SseReader(port, "?filter=flood")
    assert fast.head()[0] == 200
    assert fast.next_event()[0] == "welcome"
    wait_until(lambda: len([i for i in tcp.ask("clients").split() if i.startswith("ws-")]) == 2,
               10, "both streams to be clients")
    payload = "x" * 8000

    def flooded():
        tcp.ask("pub flood " + payload)
        return log_records(c.ws, "client does not read, disconnecting") != []

    wait_until(flooded, 20, "the gateway to drop the stream that does not read")
    assert fast.await_event("event", "flood")["data"] == payload
    assert tcp.ask("ping") == "OK pong"
    ws_still_works(port)
    slow.close()
    fast.close()


# --------------------------------------------------------------------- hostile requests

def raw_exchange(port, data, timeout=None):
    with RawConn(port) as conn:
        conn.send(data, tolerate_close=True)
        return conn.read_http_response(timeout)


def api_answers(port):
    """sb_gateway_api_answers_total by class, from /metrics."""
    import re
    status, body, _ = curl(port, "/metrics")
    assert status == 200
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^sb_gateway_api_answers_total\{class="(\dxx)"\} (\d+)$', body.decode(), re.M)}


def test_bad_json_wrong_type_methods_and_paths(api):
    c, port = api()
    before = api_answers(port)
    for body in ("{", "[1,2]", '"text"', "null"):
        status, answer = curl_json(port, "/api/v1/publish", "-H", "Content-Type: application/json",
                                   data=body)
        assert status == 400 and answer["error"]["code"] == "bad-request", (body, answer)
        status, answer = curl_json(port, "/api/v1/command", "-H",
                                   "Content-Type: application/json", data=body)
        assert status == 400 and answer["error"]["code"] == "bad-request", (body, answer)
    status, answer = curl_json(port, "/api/v1/publish", "-H", "Content-Type: text/plain",
                               data='{"topic":"a"}')
    assert status == 415, answer
    status, answer = curl_json(port, "/api/v1/publish", json_body={"topic": "a", "retain": "yes"})
    assert status == 400 and "retain" in answer["error"]["message"], answer
    # Wrong methods: 405 with the methods the endpoint takes.
    for method, path, allow in (("DELETE", "/api/v1/publish", "POST, GET"),
                                ("GET", "/api/v1/command", "POST"),
                                ("POST", "/api/v1/topics", "GET"),
                                ("PUT", "/api/v1/events", "GET")):
        status, body, headers = curl(port, path, "-X", method)
        assert status == 405 and headers.get("allow") == allow, (method, path, status, headers)
        assert json.loads(body)["error"]["code"] == "method-not-allowed"
    # Unknown paths: 404 as JSON under /api/, the gateway's own 404 elsewhere.
    for path in ("/api/v1/nothing", "/api/v2/publish", "/api/"):
        status, body = curl_json(port, path)
        assert status == 404 and body["error"]["code"] == "not-found", (path, body)
    assert curl(port, "/nothing")[0] == 404
    # Outside /api/ only GET and HEAD are served, as before.
    assert curl(port, "/metrics", "-X", "POST")[0] == 405
    # Counted: 8 bad JSON, 1 content type, 1 retain, 4 methods, 3 paths.
    after = api_answers(port)
    assert after["4xx"] == before["4xx"] + 17 and after["2xx"] == before["2xx"], (before, after)
    ws_still_works(port)
    assert Peer(c.port).ask("ping") == "OK pong"


def test_large_bodies_are_refused_with_413(api):
    c, port = api("", "--api-max-body", "1024")
    # Declared too large: refused from the head, the body is never read.
    status, body = curl_json(port, "/api/v1/publish", "-H", "Content-Type: application/json",
                             data="x" * 200000)
    assert status == 413 and body["error"]["code"] == "too-long", body
    # Chunked, so only the bytes tell.
    status, body = curl_json(port, "/api/v1/command", "-H", "Content-Type: application/json",
                             "-H", "Transfer-Encoding: chunked", data="y" * 5000)
    assert status == 413, body
    # Just under the limit is fine.
    payload = "z" * (1024 - len('{"topic":"big","payload":""}'))
    status, body = curl_json(port, "/api/v1/publish", "-H", "Content-Type: application/json",
                             data=json.dumps({"topic": "big", "payload": payload},
                                             separators=(",", ":")))
    assert status == 200, body
    # A body on a page outside the API: 413 as well (no body is read there).
    head = ("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n").encode()
    assert raw_exchange(port, head)[0] == 413
    ws_still_works(port)


def test_slow_bodies_are_cut_off_with_408(api):
    c, port = api("", "--handshake-timeout", "0.5")
    tcp = Peer(c.port)
    tcp.subscribe("slow/#")
    with RawConn(port, timeout=READ_TIMEOUT + 5) as conn:
        body = json.dumps({"topic": "slow/x", "payload": "never"})
        conn.send(("POST /api/v1/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                   % (len(body), body[:10])).encode())
        status, _, headers, answer = conn.read_http_response(READ_TIMEOUT + 5)
        assert status == 408, (status, answer)
        assert json.loads(answer)["error"]["code"] == "timeout"
        conn.send(body[10:].encode(), tolerate_close=True)
    # Nothing was published; the hub carries on.
    assert tcp.ask("pub slow/marker m") == "OK"
    assert tcp.await_event("EVENT slow/marker m") == "EVENT slow/marker m"
    ws_still_works(port)


def test_foreign_hosts_and_origins_are_refused_and_cors_only_when_configured(api):
    c, port = api("", "--api-cors", "https://panel.example")
    status, body, _ = curl(port, "/api/v1/clients", host="evil.example:%d" % port)
    assert status == 421 and json.loads(body)["error"]["code"] == "misdirected", body
    status, body, _ = curl(port, "/api/v1/clients", "-H", "Origin: https://evil.example")
    assert status == 403, body
    # The gateway's own pages may call it.
    status, body, headers = curl(port, "/api/v1/clients", "-H",
                                 "Origin: http://127.0.0.1:%d" % port)
    assert status == 200 and "access-control-allow-origin" not in headers, headers
    # A configured origin gets CORS headers, and its preflight an answer.
    status, _, headers = curl(port, "/api/v1/clients", "-H", "Origin: https://panel.example")
    assert status == 200 and headers["access-control-allow-origin"] == "https://panel.example"
    status, _, headers = curl(port, "/api/v1/publish", "-X", "OPTIONS", "-H",
                              "Origin: https://panel.example", "-H",
                              "Access-Control-Request-Method: POST")
    assert status == 204, headers
    assert "POST" in headers["access-control-allow-methods"], headers
    assert "Authorization" in headers["access-control-allow-headers"], headers


def test_no_cors_without_the_option(api):
    _, port = api()
    status, _, headers = curl(port, "/api/v1/publish", "-X", "OPTIONS", "-H",
                              "Origin: https://panel.example")
    assert status == 403 and "access-control-allow-origin" not in headers, (status, headers)


def test_openapi_description_is_served_from_docs(api):
    _, port = api()
    status, body, headers = curl(port, "/api/v1/openapi.json")
    assert status == 200 and headers["content-type"] == "application/json"
    assert body == (REPO / "docs" / "openapi.json").read_bytes()
    spec = json.loads(body)
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/publish", "/api/v1/command", "/api/v1/topics", "/api/v1/clients",
                 "/api/v1/devices", "/api/v1/events"):
        assert path in spec["paths"], path


# --------------------------------------------------------------------- tokens

TOKENS = """
[token panel]
secret_sha256 = %s
commands = ping echo pub sub clients topics
publish = home/#
subscribe = home/# sensors/#

[token sensor]
secret = %s
commands = pub
publish = sensors/#
url_token = yes
""" % (sha256_hex(PANEL_SECRET), DEVICE_SECRET)


def test_bearer_tokens_follow_the_access_rules(api):
    c, port = api(TOKENS, wait=False)
    panel = "panel:" + PANEL_SECRET
    wait_until(lambda: curl(port, "/api/v1/command", token=panel,
                            json_body={"cmd": "echo", "args": ["ready"]})[0] == 200,
               15, "the pool to answer the panel's echo")
    status, body = curl_json(port, "/api/v1/publish", token=panel,
                             json_body={"topic": "home/a", "payload": "1"})
    assert status == 200, body
    status, body = curl_json(port, "/api/v1/publish", token=panel,
                             json_body={"topic": "garden/a", "payload": "1"})
    assert status == 403 and body["error"]["code"] == "unauthorized", body
    status, body = curl_json(port, "/api/v1/command", token=panel, json_body={"cmd": "time"})
    assert status == 403 and body["error"]["code"] == "unauthorized", body
    # Wrong secret, unknown name, no Bearer scheme: 401 with WWW-Authenticate.
    for token in ("panel:wrong", "nobody:x", "panel"):
        status, body, headers = curl(port, "/api/v1/clients", token=token)
        assert status == 401 and headers.get("www-authenticate") == "Bearer", (token, status)
    # Anonymous (no header): the [anonymous] defaults, which do not publish.
    status, body = curl_json(port, "/api/v1/publish", json_body={"topic": "home/a"})
    assert status == 403, body
    # A stream outside the subscribe rules is refused before it opens.
    stream = SseReader(port, "?filter=" + quoted("garden/#"), token=panel)
    assert stream.head()[0] == 403
    stream.close()
    stream = SseReader(port, "?filter=" + quoted("home/#"), token=panel)
    assert stream.head()[0] == 200
    status, _ = curl_json(port, "/api/v1/publish", token=panel,
                          json_body={"topic": "home/b", "payload": "2"})
    assert status == 200
    assert stream.await_event("event", "home/b")["data"] == 2   # JSON, as over WebSocket
    stream.close()


def test_url_tokens_only_for_tokens_that_allow_them(api):
    c, port = api(TOKENS, wait=False)
    tcp_ready = "sensor:" + DEVICE_SECRET
    query = "/api/v1/publish?token=%s&topic=%s&payload=%s"
    wait_until(lambda: curl(port, query % (quoted(tcp_ready), "sensors%2Fready", "1"))[0] == 200,
               15, "the gateway to take the sensor's URL token")
    ws = SseReader(port, "?filter=" + quoted("home/#"), token="panel:" + PANEL_SECRET)
    assert ws.head()[0] == 200
    status, body = curl_json(port, query % (quoted(tcp_ready), quoted("sensors/t"), "21.5%20C"))
    assert (status, body) == (200, {"ok": True})
    status, body = curl_json(port, (query + "&retain=1") % (quoted(tcp_ready),
                                                             quoted("sensors/t"), "22"))
    assert status == 200
    status, body = curl_json(port, "/api/v1/topics?filter=" + quoted("sensors/#"),
                             token="panel:" + PANEL_SECRET)
    assert status == 200, body
    assert body["topics"] == [{"topic": "sensors/t", "payload": "22"}], body
    # Outside the panel's subscribe rules, topics is refused.
    status, body = curl_json(port, "/api/v1/topics?filter=" + quoted("garden/#"),
                             token="panel:" + PANEL_SECRET)
    assert status == 403 and body["error"]["code"] == "unauthorized", body
    # The panel's token is not for URLs; a wrong or missing token is 401.
    status, body = curl_json(port, query % (quoted("panel:" + PANEL_SECRET), "home%2Fx", "1"))
    assert status == 403 and "url_token" in body["error"]["message"], body
    status, body = curl_json(port, query % (quoted("sensor:nope"), "sensors%2Fx", "1"))
    assert status == 401, body
    status, body = curl_json(port, "/api/v1/publish?topic=sensors%2Fx&payload=1")
    assert status == 401, body
    # Outside its publish rules.
    status, body = curl_json(port, query % (quoted(tcp_ready), "home%2Fx", "1"))
    assert status == 403, body
    ws.close()


def test_url_publish_is_off_without_tokens(api):
    _, port = api()
    status, body = curl_json(port, "/api/v1/publish?topic=a&payload=1")
    assert status == 403 and "url_token" in body["error"]["message"], body
