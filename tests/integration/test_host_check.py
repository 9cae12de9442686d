"""DNS rebinding (issue 11 §3.2): sb-gateway-ws answers only requests whose
Host header names it. A page on evil.example that re-points its name at the
hub sends `Host: evil.example:PORT` with the matching Origin (which `self`
accepts): its upgrade, its GET / and its /metrics are refused with 421 and
counted; loopback addresses and localhost names still work, and
--allow-host adds names. Raw sockets, so every header is the test's.

Cross-protocol (review of issue 11, item 2): a page's fetch() to the TCP
gateway's port sends an HTTP request whose body is command lines; the
gateway closes the connection at the request line, so the body never runs."""
import re

from conftest import Client, log_records, stats_of
from ws_support import RawConn, RawWs, new_key


def request(path, host, origin=None, upgrade=False):
    lines = ["GET %s HTTP/1.1" % path]
    if host is not None:
        lines.append("Host: %s" % host)
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade",
                  "Sec-WebSocket-Key: %s" % new_key(), "Sec-WebSocket-Version: 13"]
    if origin:
        lines.append("Origin: %s" % origin)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(port, path, host, origin=None, upgrade=False):
    with RawConn(port) as conn:
        conn.send(request(path, host, origin, upgrade))
        status, _, _, body = conn.read_http_response()
        return status, body


def misdirected_total(port):
    status, body = status_of(port, "/metrics", "127.0.0.1:%d" % port)
    assert status == 200, status
    match = re.search(rb"^sb_gateway_misdirected_total (\d+)$", body, re.M)
    assert match, body[:400]
    return int(match.group(1))


def test_foreign_host_is_refused_for_upgrade_page_and_metrics(components, ws_gateway):
    c = components(pools={"default": 1})
    _, port = ws_gateway(c)
    evil = "evil.example:%d" % port
    origin = "http://" + evil
    before = misdirected_total(port)
    refused = [("/", True), ("/", False), ("/metrics", False), ("/healthz", False)]
    for path, upgrade in refused:
        status, body = status_of(port, path, evil, origin, upgrade)
        assert status == 421, (path, upgrade, status, body)
        assert b"--allow-host" in body, body
    # No Host at all (HTTP/1.1 requires one).
    assert status_of(port, "/metrics", None)[0] == 421
    assert misdirected_total(port) == before + len(refused) + 1
    with RawWs(port) as ws:   # `stats` tells the same count
        reply = ws.request_line("stats")
        assert " misdirected=%d " % (before + len(refused) + 1) in reply, reply

    # Ours: loopback addresses and localhost names, with any port.
    for host in ("127.0.0.1:%d" % port, "localhost:%d" % port, "localhost", "127.0.0.1",
                 "app.localhost:%d" % port):
        assert status_of(port, "/", host)[0] == 200, host
        status, _ = status_of(port, "/", host, "http://" + host, upgrade=True)
        assert status == 101, (host, status)
    assert status_of(port, "/metrics", "localhost:%d" % port)[0] == 200


def test_allow_host_adds_names(components, ws_gateway):
    c = components(pools={"default": 1})
    _, port = ws_gateway(c, "--allow-host", "hub.example, *.home.arpa")
    for host in ("hub.example:%d" % port, "nas.home.arpa:%d" % port):
        status, _ = status_of(port, "/", host, "http://" + host, upgrade=True)
        assert status == 101, (host, status)
        assert status_of(port, "/metrics", host)[0] == 200, host
    evil = "evil.example:%d" % port
    assert status_of(port, "/", evil, "http://" + evil, upgrade=True)[0] == 421
    assert status_of(port, "/", "home.arpa:%d" % port)[0] == 421
    assert status_of(port, "/", "localhost:%d" % port)[0] == 200   # the defaults stay


def test_allow_host_star_allows_any(components, ws_gateway):
    c = components(pools={"default": 1})
    _, port = ws_gateway(c, "--allow-host", "*")
    evil = "evil.example:%d" % port
    assert status_of(port, "/", evil, "http://" + evil, upgrade=True)[0] == 101
    assert status_of(port, "/metrics", evil)[0] == 200


# --------------------------------------------------------------------- the TCP gateway

def browser_post(port, body):
    """What fetch("http://127.0.0.1:PORT/", {method: "POST", mode: "no-cors",
    body}) from a page on evil.example sends."""
    head = ["POST / HTTP/1.1", "Host: 127.0.0.1:%d" % port, "Origin: http://evil.example",
            "Content-Type: text/plain;charset=UTF-8", "Content-Length: %d" % len(body),
            "Connection: keep-alive", "", ""]
    return "\r\n".join(head).encode() + body.encode()


def test_a_browser_post_to_the_tcp_gateway_runs_nothing_in_its_body(components, peers, clients):
    c = components(pools={"default": 1})
    watcher = peers(c.port)
    watcher.subscribe("web/#")
    page = clients(c.port)
    page.send_raw(browser_post(c.port, "pub web/evil from-the-page\necho body ran\n"))
    page.expect_eof()   # not a word after the greeting: no ERR for the request line either
    # The marker comes after the body would have been published: only it arrives.
    assert clients(c.port).request("pub web/marker after") == "OK"
    assert watcher.await_event("EVENT web/marker after") == "EVENT web/marker after"
    assert not any("web/evil" in line for line in watcher.seen_async), watcher.seen_async
    assert stats_of(clients(c.port))["misdirected"] == "1"
    records = log_records(c.gateway, "closing a connection that speaks HTTP (a browser page?)")
    assert len(records) == 1 and records[0].get("peer", "").startswith("127.0.0.1:"), \
        c.gateway.log_tail()


def test_host_and_origin_lines_close_the_tcp_connection_too(components, clients):
    c = components(pools={"default": 1})
    for line in ("host: 127.0.0.1:%d" % c.port, "ORIGIN: http://evil.example",
                 "GET /metrics HTTP/1.0"):
        client = clients(c.port)
        assert client.request("echo first") == "OK first"
        client.send(line, "echo after")
        client.expect_eof()
    # Lines that only hold such words are commands like any other.
    client = clients(c.port)
    assert client.request("echo POST / HTTP/1.1") == "OK POST / HTTP/1.1"
    assert client.request("echo Host: x") == "OK Host: x"
    assert stats_of(client)["misdirected"] == "3"
