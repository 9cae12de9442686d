"""TLS on the gateways' listeners (issue 11, section 2).

A self-signed certificate is made for each test (`tls_cert`, conftest).
Independent clients: Python's `ssl` over the TCP gateway's TLS listener,
python3-websockets over wss://, curl --cacert for https://, and the
dashboard in Chromium over https (test_dashboard_browser.py's script).
Bad handshakes, plain text, garbage and a stalled handshake each cost one
connection and a counter; every other client carries on."""
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import warnings

import pytest

from conftest import (GREETING_RE, READ_TIMEOUT, STARTUP_TIMEOUT, Client, binary, clean_env,
                      free_port, http_status, log_records, make_cert, stats_of, tls_wrap,
                      wait_until)
from ws_support import RawWs, WsPeers, run

import test_dashboard_browser as browser
from test_websocket import http_get, metric_values


def tls_gateway(components, tls_cert, *extra):
    """The components with the TCP gateway also serving TLS; (components, tls port)."""
    tls_port = free_port()
    c = components(gateway_args=(*tls_cert.args(tls_port), *extra))
    # Both listeners are open before the gateway answers its first request.
    assert log_records(c.gateway, "gateway listening")[0]["tls"] == "127.0.0.1:%d" % tls_port
    return c, tls_port


def tls_client(port, tls_cert, **kwargs):
    return Client(port, wrap=tls_wrap(tls_cert.cert), **kwargs)


def wait_for_stat(port, key, value):
    """Waits until the gateway's `stats` (over the plain port) shows key=value."""
    def seen():
        with Client(port) as client:
            return stats_of(client).get(key) == str(value)
    wait_until(seen, READ_TIMEOUT, "stats %s=%s" % (key, value))


def expect_closed(sock, timeout=READ_TIMEOUT):
    """Reads until the server closes; returns what it sent first."""
    sock.settimeout(timeout)
    received = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


# --------------------------------------------------------------------- the TCP gateway

def test_tls_client_speaks_the_line_protocol_beside_a_plain_one(components, tls_cert):
    c, tls_port = tls_gateway(components, tls_cert)
    with tls_client(tls_port, tls_cert) as secure, Client(c.port) as plain:
        assert GREETING_RE.match(secure.greeting), secure.greeting
        assert GREETING_RE.match(plain.greeting), plain.greeting
        assert secure.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert secure.request("echo over tls") == "OK over tls"   # through the real workers
        assert plain.request("echo in the clear") == "OK in the clear"
        secure.send("echo a", "echo b", "ping")
        assert secure.read_lines(3) == ["OK a", "OK b", "OK pong"]
        stats = stats_of(secure)
        assert (stats["tls_handshakes"], stats["tls_failed"]) == ("1", "0")
        assert secure.request("quit") == "OK bye"
        secure.expect_eof()


def test_pipelined_and_too_long_lines_over_tls(components, tls_cert):
    c, tls_port = tls_gateway(components, tls_cert, "--max-line", "1000")
    with tls_client(tls_port, tls_cert) as client:
        client.send(*("echo n%d" % n for n in range(500)))   # one write, many TLS records
        assert client.read_lines(500) == ["OK n%d" % n for n in range(500)]
        client.send_raw("echo " + "x" * 200000 + "\nping\n")
        assert client.read_line().startswith("ERR too-long")
        assert client.read_line() == "OK pong"


def only_client(tls_port, tls_cert):
    """The TLS client that takes the one slot of --max-connections 1 (the
    start-up probe's connection may not be gone yet)."""
    def greeted():
        client = tls_client(tls_port, tls_cert)
        if GREETING_RE.match(client.greeting):
            return client
        client.close()
        return None
    return wait_until(greeted, READ_TIMEOUT, "the one slot to be free")


def is_closed(sock):
    """True when the server has closed `sock` (a quick look that does not wait)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_max_connections_refuses_a_tls_client_with_err_busy(components, tls_cert):
    c, tls_port = tls_gateway(components, tls_cert, "--max-connections", "1")
    with only_client(tls_port, tls_cert) as first:
        assert first.request("echo first") == "OK first"
        with tls_client(tls_port, tls_cert) as second:
            assert second.greeting == "ERR busy too many connections (limit 1), try again later"
            second.expect_eof()
        assert first.request("ping") == "OK pong"


def test_a_stopping_gateway_drains_tls_clients_and_drops_handshakes(components, tls_cert):
    c, tls_port = tls_gateway(components, tls_cert, "--drain-timeout", "30")
    with tls_client(tls_port, tls_cert) as client:
        assert client.request("echo before the stop") == "OK before the stop"
        # Exact counts, the asking plain client included: first every probe
        # is gone (nobody else connects), then the silent one is in.
        wait_for_stat(c.port, "connections", 2)
        with socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT) as silent:
            wait_for_stat(c.port, "connections", 3)
            c.gateway.popen.send_signal(signal.SIGTERM)
            client.expect_eof()                       # after a close_notify
            assert expect_closed(silent) == b""
        assert c.gateway.popen.wait(timeout=READ_TIMEOUT) == 0


def test_a_flood_over_max_connections_holds_at_most_16_refusals(components, tls_cert):
    c, tls_port = tls_gateway(components, tls_cert, "--max-connections", "1",
                              "--tls-handshake-timeout", "120")
    with only_client(tls_port, tls_cert) as first:
        flood = [socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT)
                 for _ in range(40)]
        try:
            wait_until(lambda: sum(map(is_closed, flood)) >= 24, READ_TIMEOUT,
                       "the connections past 16 refusals to be closed")
            assert sum(map(is_closed, flood)) == 24   # 16 wait for a handshake to say ERR busy
            assert first.request("echo still served") == "OK still served"
        finally:
            for sock in flood:
                sock.close()

        def answered_busy():   # once the 16 are gone, a refusal is answered again
            with tls_client(tls_port, tls_cert) as late:
                return late.greeting.startswith("ERR busy")
        wait_until(answered_busy, READ_TIMEOUT, "ERR busy once the flood is gone",
                   ignore=(OSError, EOFError))
        assert first.request("ping") == "OK pong"
        assert int(stats_of(first)["refused"]) >= 41


def test_tls_1_1_and_lower_are_refused(components, tls_cert):
    c, tls_port = tls_gateway(components, tls_cert)
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")   # let this client offer what the server must refuse
    with warnings.catch_warnings():   # deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT) as raw:
        with pytest.raises(ssl.SSLError):
            old.wrap_socket(raw, server_hostname="localhost")
    wait_for_stat(c.port, "tls_failed", 1)   # the hello reached the server and was refused
    failures = log_records(c.gateway, "tls handshake failed")
    assert failures and "protocol" in failures[0]["reason"], failures
    with tls_client(tls_port, tls_cert) as modern:
        assert modern.request("echo still fine") == "OK still fine"


def tls12_client(cipher):
    """A TLS 1.2 client that offers only `cipher` (OpenSSL name)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(cipher + ":@SECLEVEL=0")
    return context


def test_tls_1_2_takes_only_forward_secret_aead_suites(components, tls_cert):
    """Mozilla's intermediate list: no RSA key exchange, no CBC; ECDHE with
    AES-GCM is what a TLS 1.2 client gets."""
    c, tls_port = tls_gateway(components, tls_cert)
    for weak in ("AES128-SHA256", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA"):
        with socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT) as raw:
            with pytest.raises(ssl.SSLError):
                tls12_client(weak).wrap_socket(raw, server_hostname="localhost")
    wait_for_stat(c.port, "tls_failed", 3)
    with socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT) as raw:
        with tls12_client("ECDHE-RSA-AES128-GCM-SHA256").wrap_socket(
                raw, server_hostname="localhost") as good:
            assert good.version() == "TLSv1.2"
            assert good.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256"
            assert good.recv(200).startswith(b"OK switchboard ")


def test_plain_text_and_garbage_on_the_tls_port_cost_one_connection_each(components, tls_cert):
    c, tls_port = tls_gateway(components, tls_cert)
    with tls_client(tls_port, tls_cert) as bystander:
        assert bystander.request("echo before") == "OK before"
        with socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT) as text:
            text.sendall(b"ping\n")
            answer = expect_closed(text)
            assert b"OK" not in answer and b"pong" not in answer, answer
        wait_for_stat(c.port, "tls_failed", 1)
        with socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT) as junk:
            # A record header that claims a handshake, then bytes that are none.
            junk.sendall(b"\x16\x03\x01\x00\x40" + os.urandom(64))
            expect_closed(junk)
        wait_for_stat(c.port, "tls_failed", 2)
        assert bystander.request("echo after") == "OK after"
        assert bystander.request("ping") == "OK pong"
    failures = log_records(c.gateway, "tls handshake failed")
    assert len(failures) == 2 and all(f["level"] == "warn" and f["peer"] for f in failures)


def test_a_stalled_handshake_is_closed_after_the_timeout(components, tls_cert):
    c, tls_port = tls_gateway(components, tls_cert, "--tls-handshake-timeout", "0.3")
    with socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT) as silent, \
            socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT) as partial:
        partial.sendall(b"\x16\x03\x01\x02\x00\x01")   # the start of a ClientHello, then nothing
        with tls_client(tls_port, tls_cert) as busy:   # a client that finishes is not touched
            assert expect_closed(silent) == b""
            assert expect_closed(partial) == b""
            wait_for_stat(c.port, "tls_timeouts", 2)
            assert busy.request("echo alive") == "OK alive"
    stats = {}
    with Client(c.port) as plain:
        stats = stats_of(plain)
    assert (stats["tls_timeouts"], stats["tls_failed"]) == ("2", "0")
    assert len(log_records(c.gateway, "tls handshake timed out")) == 2


def test_sighup_rereads_the_certificate_and_a_bad_one_keeps_the_old(components, tls_cert,
                                                                   tmp_path):
    c, tls_port = tls_gateway(components, tls_cert)
    first = tls_cert.der()
    old_client = tls_client(tls_port, tls_cert)
    with old_client:
        assert old_client.sock.getpeercert(binary_form=True) == first
        renewed = make_cert(tmp_path / "renewed", common_name="renewed")
        shutil.copy(renewed.cert, tls_cert.cert)
        shutil.copy(renewed.key, tls_cert.key)
        os.kill(c.gateway.pid, signal.SIGHUP)
        wait_until(lambda: len(log_records(c.gateway, "tls certificate loaded")) == 2,
                   READ_TIMEOUT, "the certificate to be reread")
        with Client(tls_port, wrap=tls_wrap(renewed.cert)) as new_client:
            assert new_client.sock.getpeercert(binary_form=True) == renewed.der()
            assert dict(x[0] for x in new_client.sock.getpeercert()["subject"]) == \
                {"commonName": "renewed"}
            assert new_client.request("echo renewed") == "OK renewed"
        assert old_client.request("echo old session") == "OK old session"

        tls_cert.cert.write_text("not a certificate\n")
        os.kill(c.gateway.pid, signal.SIGHUP)
        wait_until(lambda: log_records(c.gateway, "tls reload failed, keeping the certificate in use"),
                   READ_TIMEOUT, "the bad certificate to be refused")
        assert log_records(c.gateway, "cannot read the certificate")[0]["level"] == "error"
        with Client(tls_port, wrap=tls_wrap(renewed.cert)) as after:
            assert after.sock.getpeercert(binary_form=True) == renewed.der()
            assert after.request("ping") == "OK pong"
    assert c.gateway.alive()


def test_a_tls_listener_without_a_certificate_is_a_clear_error(tls_cert):
    argv = [binary("sb-gateway-tcp"), "--listen", "127.0.0.1:%d" % free_port(),
            "--tls-listen", "127.0.0.1:%d" % free_port(), "--tls-key", str(tls_cert.key),
            "--broker", "tcp://127.0.0.1:%d" % free_port()]
    result = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=10)
    assert result.returncode != 0
    assert "--tls-listen needs --tls-cert and --tls-key" in result.stderr
    result = subprocess.run(argv + ["--tls-cert", str(tls_cert.cert) + ".missing"],
                            capture_output=True, text=True, env=clean_env(), timeout=10)
    assert result.returncode != 0
    assert "cannot read the certificate" in result.stderr and ".missing" in result.stderr
    encrypted = tls_cert.key.with_name("encrypted.key")
    subprocess.run(["openssl", "pkey", "-in", str(tls_cert.key), "-aes256", "-passout", "pass:x",
                    "-out", str(encrypted)], check=True, capture_output=True, timeout=30)
    argv[argv.index("--tls-key") + 1] = str(encrypted)
    result = subprocess.run(argv + ["--tls-cert", str(tls_cert.cert)], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, env=clean_env(), timeout=10)
    assert result.returncode != 0   # refused, not a passphrase prompt
    assert "cannot use the private key" in result.stderr


def test_config_check_reports_an_unreadable_certificate(tls_cert, tmp_path):
    config = tmp_path / "switchboard.conf"
    config.write_text("[gateway-tcp]\ntls_listen = 127.0.0.1:%d\ntls_cert = %s\ntls_key = %s\n"
                      % (free_port(), tmp_path / "nowhere.crt", tls_cert.key))
    checked = subprocess.run([binary("switchboard"), "--check-config", str(config)],
                             capture_output=True, text=True, env=clean_env(), timeout=10)
    assert checked.returncode != 0
    assert "%s:3: gateway-tcp.tls_cert: cannot read '%s'" % (config, tmp_path / "nowhere.crt") \
        in checked.stderr + checked.stdout
    started = subprocess.run([binary("sb-gateway-tcp"), "--config", str(config),
                              "--listen", "127.0.0.1:%d" % free_port(),
                              "--broker", "tcp://127.0.0.1:%d" % free_port()],
                             capture_output=True, text=True, env=clean_env(), timeout=10)
    assert started.returncode == 2, started.stderr
    assert "gateway-tcp.tls_cert: cannot read" in started.stderr


def test_the_websocket_gateway_closes_a_stalled_tls_handshake(components, ws_gateway, tls_cert):
    c = components()
    tls_port = free_port()
    proc, port = ws_gateway(c, *tls_cert.args(tls_port), "--tls-handshake-timeout", "0.3")
    with socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT) as silent:
        assert expect_closed(silent) == b""
    status, _, page = http_get(port, "/metrics")
    assert status == 200
    assert metric_values(page.decode(), "sb_gateway_tls_timeouts_total") == [1]
    assert metric_values(page.decode(), "sb_gateway_tls_failed_total") == [0]
    assert log_records(proc, "tls handshake timed out")


def refused_total(port):
    """[sb_gateway_connections_refused_total], or None while the gateway cannot answer."""
    try:
        status, _, page = http_get(port, "/metrics")
    except (OSError, http.client.HTTPException):
        return None
    return metric_values(page.decode(), "sb_gateway_connections_refused_total") if status == 200 \
        else None


def test_the_websocket_gateway_bounds_connections_in_their_handshake(components, ws_gateway,
                                                                      tls_cert):
    """Every connection counts against --max-connections, and 16 more are let
    in (to be told 503, or served a page): of 40 silent TLS handshakes, at
    most 17 are held, each further one is closed at once and counted."""
    c = components(pools={"default": 1})
    tls_port = free_port()
    proc, port = ws_gateway(c, *tls_cert.args(tls_port), "--max-connections", "1",
                            "--tls-handshake-timeout", "120")
    flood = [socket.create_connection(("127.0.0.1", tls_port), timeout=READ_TIMEOUT)
             for _ in range(40)]
    try:
        wait_until(lambda: sum(map(is_closed, flood)) >= 40 - 17, READ_TIMEOUT,
                   "the connections past 1 + 16 to be closed")
        closed = sum(map(is_closed, flood))
    finally:
        for sock in flood:
            sock.close()
    # At least those (a probe still lingering, or a /metrics asked before
    # the flood's ends were read, may be refused too).
    wait_until(lambda: (refused_total(port) or [0])[0] >= closed, READ_TIMEOUT,
               "the %d closed connections to be counted as refused" % closed)
    with RawWs(port) as ws:   # the flood is gone: the one slot serves again
        assert ws.request_line("echo after the flood") == "OK after the flood"


# --------------------------------------------------------------------- the launcher

def tls_config(tmp_path, tls_cert, tcp_tls_port, ws_tls_port):
    config = tmp_path / "tls.conf"
    config.write_text("[gateway-tcp]\ntls_listen = 127.0.0.1:%d\ntls_cert = %s\ntls_key = %s\n\n"
                      "[gateway-ws]\ntls_listen = 127.0.0.1:%d\ntls_cert = %s\ntls_key = %s\n"
                      % (tcp_tls_port, tls_cert.cert, tls_cert.key,
                         ws_tls_port, tls_cert.cert, tls_cert.key))
    return config


@pytest.fixture
def tls_hub(launch_hub, tls_cert, tmp_path):
    """`switchboard` with a config that gives both gateways a TLS listener."""
    tcp_tls, ws_tls = free_port(), free_port()
    hub = launch_hub("--config", str(tls_config(tmp_path, tls_cert, tcp_tls, ws_tls)))
    wait_until(lambda: http_status(ws_tls, "/healthz", cafile=tls_cert.cert) == 200, STARTUP_TIMEOUT,
               "https /healthz on the WebSocket gateway's TLS listener")
    hub.tcp_tls_port, hub.ws_tls_port = tcp_tls, ws_tls
    return hub


def test_the_launcher_serves_tls_from_the_config_file(tls_hub, tls_cert):
    with tls_client(tls_hub.tcp_tls_port, tls_cert) as secure, Client(tls_hub.port) as plain:
        assert GREETING_RE.match(secure.greeting), secure.greeting
        assert secure.request("echo launched") == "OK launched"
        assert plain.request("echo plain too") == "OK plain too"


def test_curl_gets_healthz_and_metrics_over_https(tls_hub, tls_cert):
    def curl(path):
        return subprocess.run(["curl", "--silent", "--show-error", "--max-time", "10",
                               "--cacert", str(tls_cert.cert),
                               "https://localhost:%d%s" % (tls_hub.ws_tls_port, path)],
                              capture_output=True, text=True, timeout=20)
    health = curl("/healthz")
    assert (health.returncode, health.stdout) == (0, "ok\n"), health.stderr
    with socket.create_connection(("127.0.0.1", tls_hub.ws_tls_port), timeout=READ_TIMEOUT) as text:
        text.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")   # plain HTTP on TLS
        assert b"HTTP/1.1" not in expect_closed(text)

    def metric(name):
        metrics = curl("/metrics")
        assert metrics.returncode == 0, metrics.stderr
        return metric_values(metrics.stdout, name)
    wait_until(lambda: metric("sb_gateway_tls_failed_total") == [1], READ_TIMEOUT,
               "sb_gateway_tls_failed_total 1")
    assert metric("sb_gateway_tls_handshakes_total")[0] >= 2
    assert metric("sb_gateway_tls_timeouts_total") == [0]
    plain = subprocess.run(["curl", "--silent", "--max-time", "10",
                            "http://127.0.0.1:%d/healthz" % tls_hub.ws_port],
                           capture_output=True, text=True, timeout=20)
    assert plain.stdout == "ok\n"


def test_websockets_over_wss(tls_hub, tls_cert):
    context = ssl.create_default_context(cafile=str(tls_cert.cert))

    async def scenario():
        async with WsPeers() as open_peer:
            peer = await open_peer(tls_hub.ws_tls_port, ssl=context)
            assert peer.id.startswith("ws-"), peer.welcome
            assert await peer.ok("echo", "over", "wss") == "over wss"
            assert await peer.line("ping") == "OK pong"
            plain = await open_peer(tls_hub.ws_port)
            assert await plain.ok("echo", "beside") == "beside"
    run(scenario())


def test_dashboard_in_headless_chromium_over_https(tls_hub):
    node = browser.require_browser_tools()
    env = clean_env({"SB_WS_PORT": str(tls_hub.ws_tls_port), "SB_TCP_PORT": str(tls_hub.port),
                     "SB_WS_SCHEME": "https"})
    result = subprocess.run([node, str(browser.SCRIPT)], cwd=str(browser.REPO), env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=browser.RUN_TIMEOUT)
    print(result.stdout)
    assert result.returncode == 0, "dashboard.test.mjs exited %d\n%s\n%s" % (
        result.returncode, result.stdout, result.stderr)
    assert "GET https://" in result.stdout


def test_sighup_to_the_launcher_rereads_the_gateways_certificates(tls_hub, tls_cert, tmp_path):
    renewed = make_cert(tmp_path / "renewed", common_name="renewed")
    shutil.copy(renewed.cert, tls_cert.cert)
    shutil.copy(renewed.key, tls_cert.key)
    os.kill(tls_hub.pid, signal.SIGHUP)

    def served(port):
        with Client(port, wrap=tls_wrap(renewed.cert), greet=False) as client:
            return client.sock.getpeercert(binary_form=True) == renewed.der()
    wait_until(lambda: served(tls_hub.tcp_tls_port), READ_TIMEOUT, "the TCP gateway's new cert",
               ignore=(OSError, ssl.SSLError))
    wait_until(lambda: served(tls_hub.ws_tls_port), READ_TIMEOUT, "the WebSocket gateway's new cert",
               ignore=(OSError, ssl.SSLError))
    with tls_client(tls_hub.tcp_tls_port, renewed) as client:
        assert client.request("echo renewed") == "OK renewed"
