"""DNS rebinding (issue 11 §3.2): sb-gateway-ws answers only requests whose
Host header names it. A page on evil.example that re-points its name at the
hub sends `Host: evil.example:PORT` with the matching Origin (which `self`
accepts): its upgrade, its GET / and its /metrics are refused with 421 and
counted; loopback addresses and localhost names still work, and
--allow-host adds names. Raw sockets, so every header is the test's."""
import re

from ws_support import RawConn, new_key


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
