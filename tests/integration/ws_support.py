"""Helpers for the WebSocket gateway's tests (test_websocket*.py).

- `RawConn` / `RawWs`: a plain-socket HTTP and RFC 6455 client that builds
  every frame by hand (masked or not, any opcode, RSV bits, declared length)
  and reads the server's frames strictly (server frames must be unmasked).
- `WsPeer` / `WsPeers`: a python3-websockets (10.4, asyncio) client that
  keeps events and direct messages apart from replies; `run()` runs a test
  coroutine under one overall deadline.
- `shared_hub`: one `switchboard` for a whole test module (many short
  malformed-input cases), with a long-lived TCP client and WebSocket client
  that every case checks after its bad input.

Every read has a deadline; every socket is closed by the test or fixture
that made it.
"""
import asyncio
import base64
import collections
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (READ_TIMEOUT, STARTUP_TIMEOUT, Client, Processes, SocketOwner, binary,
                      children_of, cmdline_of, free_port, http_status, sanitizer_reports,
                      try_request, wait_until)

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_PATH = "/"
CLIENT_ID = re.compile(r"^ws-\d+$")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})(?: ([^\r\n]*))?$")


# --------------------------------------------------------------------- frames and handshakes

def accept_for(key):
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(port, key="auto", version="13", origin=None, path=WS_PATH,
                    connection="Upgrade", upgrade="websocket", method="GET", extra=()):
    """An HTTP upgrade request as bytes; a header whose value is None is left out."""
    if key == "auto":
        key = new_key()
    headers = [("Host", "127.0.0.1:%d" % port), ("Upgrade", upgrade),
               ("Connection", connection), ("Sec-WebSocket-Key", key),
               ("Sec-WebSocket-Version", version), ("Origin", origin), *extra]
    lines = ["%s %s HTTP/1.1" % (method, path)]
    lines += ["%s: %s" % (name, value) for name, value in headers if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None, key=None):
    """One frame as bytes. `length` overrides the declared payload length
    (the bytes actually appended are still `payload`); `rsv` is the 3-bit
    RSV1..RSV3 field (4 = RSV1, 2 = RSV2, 1 = RSV3)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4) if key is None else key
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


Frame = collections.namedtuple("Frame", "fin rsv opcode payload")


def close_code_of(frame_):
    """The status code of a close frame (None if its payload is empty)."""
    assert frame_.opcode == OP_CLOSE, frame_
    if len(frame_.payload) < 2:
        return None
    return struct.unpack("!H", frame_.payload[:2])[0]


class RawConn(SocketOwner):
    """A TCP connection to the gateway's port with deadline-bound reads."""

    def __init__(self, port, timeout=READ_TIMEOUT, rcvbuf=None):
        self.port = port
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(("127.0.0.1", port))
        except OSError:
            self.sock.close()
            raise
        self.buffer = b""
        self.eof = False
        self.reset = False

    # -- output
    def send(self, data, tolerate_close=False):
        """Sends everything; with `tolerate_close`, a server that already
        closed the connection (it may stop reading after a bad header) is
        not an error. Returns whether all was sent."""
        if isinstance(data, str):
            data = data.encode()
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            if not tolerate_close:
                raise
            return False

    # -- input
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 16)
        except ConnectionResetError:
            self.eof = self.reset = True
            return
        if not chunk:
            self.eof = True
        self.buffer += chunk

    def _need(self, n, deadline, what):
        while len(self.buffer) < n:
            if self.eof:
                raise EOFError("connection closed while reading %s (have %r)"
                               % (what, self.buffer[:80]))
            try:
                self._fill(deadline)
            except socket.timeout:
                raise TimeoutError("timed out waiting for %s (have %r)"
                                   % (what, self.buffer[:80])) from None

    def _take(self, n):
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_http_response(self, timeout=None):
        """(status, reason, headers{lower-name: value}, body) of one HTTP
        response; the body is read when Content-Length says how long."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n\r\n" not in self.buffer:
            if self.eof:
                raise EOFError("connection closed before an HTTP response head (have %r)"
                               % self.buffer[:200])
            try:
                self._fill(deadline)
            except socket.timeout:
                raise TimeoutError("no HTTP response head (have %r)"
                                   % self.buffer[:200]) from None
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        match = STATUS_LINE.match(lines[0])
        assert match, "not an HTTP status line: %r" % lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.decode().strip().lower()] = value.decode().strip()
        body = b""
        status = int(match.group(1))
        if status != 101 and "content-length" in headers:
            length = int(headers["content-length"])
            try:
                self._need(length, deadline, "the HTTP body")
            except EOFError:
                pass
            body = self._take(length)
        return status, (match.group(2) or b"").decode(), headers, body

    def expect_eof(self, timeout=None):
        """Waits for the server to close; returns whatever came first (the
        caller asserts it is nothing, or what it expects)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError("connection still open after %.1fs (received %r)"
                                     % (self.timeout if timeout is None else timeout,
                                        self.buffer[:200])) from None
        data, self.buffer = self.buffer, b""
        return data


class RawWs(RawConn):
    """A WebSocket client built from plain frames. Upgrades on construction
    (checking 101 and Sec-WebSocket-Accept) and reads the welcome message."""

    def __init__(self, port, welcome=True, auto_pong=True, origin=None, request=None, key=None,
                 **kwargs):
        """`request` (bytes) replaces the generated upgrade request; `key`
        is then the Sec-WebSocket-Key it carries."""
        super().__init__(port, **kwargs)
        self.auto_pong = auto_pong
        self.pings = []            # payloads of the server's pings, in order
        self.pending_async = []    # events and direct messages read while waiting for a reply
        self.id = None
        self.headers = None
        try:
            key = key or new_key()
            self.send(request or upgrade_request(port, key=key, origin=origin))
            status, reason, headers, _ = self.read_http_response()
            self.headers = headers
            assert status == 101, "upgrade refused: %d %s" % (status, reason)
            assert headers.get("upgrade", "").lower() == "websocket", headers
            assert "upgrade" in headers.get("connection", "").lower(), headers
            assert headers.get("sec-websocket-accept") == accept_for(key), headers
            if welcome:
                message = json.loads(self.read_text())
                assert message.get("event") == "$welcome", message
                self.id = message["data"]["client"]
        except BaseException:
            self.close()
            raise

    # -- output
    def send_frame(self, opcode, payload=b"", tolerate_close=False, **kwargs):
        return self.send(frame(opcode, payload, **kwargs), tolerate_close=tolerate_close)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode())

    def send_json(self, value):
        self.send_text(json.dumps(value))

    # -- input
    def read_frame(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._need(2, deadline, "a frame header")
        b0, b1 = self.buffer[0], self.buffer[1]
        assert not b1 & 0x80, "the server sent a masked frame: %r" % self.buffer[:16]
        n, at = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline, "a 16-bit frame length")
            n, at = struct.unpack("!H", self.buffer[2:4])[0], 4
        elif n == 127:
            self._need(10, deadline, "a 64-bit frame length")
            n, at = struct.unpack("!Q", self.buffer[2:10])[0], 10
        self._need(at + n, deadline, "a frame payload of %d bytes" % n)
        self._take(at)
        result = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, self._take(n))
        assert result.rsv == 0, "the server set RSV bits: %r" % (result,)
        return result

    def read_message(self, timeout=None):
        """The next data message as (opcode, payload), fragments joined, or
        (OP_CLOSE, frame) for a close. Pings are answered (auto_pong) and
        recorded; pongs are ignored."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        opcode, parts = None, []
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f.opcode == OP_PING:
                self.pings.append(f.payload)
                if self.auto_pong:
                    self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                return OP_CLOSE, f
            if opcode is None:
                assert f.opcode in (OP_TEXT, OP_BINARY), "unexpected frame %r" % (f,)
                opcode = f.opcode
            else:
                assert f.opcode == OP_CONT, "unexpected frame in a fragmented message %r" % (f,)
            parts.append(f.payload)
            if f.fin:
                return opcode, b"".join(parts)

    def read_text(self, timeout=None):
        opcode, payload = self.read_message(timeout)
        assert opcode == OP_TEXT, "expected a text message, got %r %r" % (opcode, payload)
        return payload.decode()

    @staticmethod
    def _is_async(text):
        if not text.startswith("{"):
            return False
        try:
            value = json.loads(text)
        except ValueError:
            return False
        return isinstance(value, dict) and ("event" in value or "msg" in value)

    def reply(self, timeout=None):
        """The next text message that is not an event or a direct message."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            text = self.read_text(max(0.0, deadline - time.monotonic()))
            if self._is_async(text):
                self.pending_async.append(json.loads(text))
            else:
                return text

    def request_line(self, line, timeout=None):
        self.send_text(line)
        return self.reply(timeout)

    def request_json(self, value, timeout=None):
        self.send_json(value)
        return json.loads(self.reply(timeout))

    def next_async(self, timeout=None):
        if self.pending_async:
            return self.pending_async.pop(0)
        text = self.read_text(timeout)
        assert self._is_async(text), "expected an event or message, got %r" % text
        return json.loads(text)

    def expect_close(self, code, timeout=None):
        """The next frame (pings aside) is a close frame with `code`, and
        the server then closes the TCP connection without sending more."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                f = self.read_frame(max(0.0, deadline - time.monotonic()))
            except EOFError as error:
                raise AssertionError("connection closed without a close frame (expected %s"
                                     "; reset=%s): %s" % (code, self.reset, error)) from None
            except TimeoutError as error:
                raise AssertionError("no close frame (expected %s): %s" % (code, error)) \
                    from None
            if f.opcode == OP_PING:
                self.pings.append(f.payload)
                continue
            assert f.opcode == OP_CLOSE, "expected a close frame %s, got %r" % (code, f)
            break
        assert f.fin, "fragmented close frame %r" % (f,)
        got = close_code_of(f)
        assert got == code, "close code %s, expected %s (frame %r)" % (got, code, f)
        after = self.expect_eof(max(0.1, deadline - time.monotonic()))
        assert after == b"", "data after the close frame: %r" % after[:80]
        return f


def json_reply(text):
    """A reply text frame as JSON (fails clearly when it is not)."""
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError("not a JSON reply: %r" % text) from None


# --------------------------------------------------------------------- python3-websockets

def ws_url(port, path=WS_PATH, secure=False):
    return ("wss://localhost:%d%s" if secure else "ws://127.0.0.1:%d%s") % (port, path)


def run(coroutine, timeout=45):
    """Runs one test coroutine with an overall deadline."""
    async def bounded():
        return await asyncio.wait_for(coroutine, timeout)
    return asyncio.run(bounded())


async def ws_connect(port, **kwargs):
    """websockets.connect with deadlines; the client does not ping on its
    own (ping_interval=None) unless asked, so only the server's pings and
    the client's pongs keep a connection alive."""
    import websockets
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("open_timeout", READ_TIMEOUT)
    kwargs.setdefault("close_timeout", 2)
    kwargs.setdefault("max_size", 1 << 22)
    url = ws_url(port, secure="ssl" in kwargs)   # ssl=SSLContext: wss://
    return await asyncio.wait_for(websockets.connect(url, **kwargs), READ_TIMEOUT + 1)


class WsPeer:
    """A websockets connection after its welcome: `id`, JSON requests,
    line requests, events and direct messages kept apart from replies."""

    def __init__(self, ws):
        self.ws = ws
        self.id = None
        self.welcome = None
        self.pending_async = []
        self.next_id = 1

    @classmethod
    async def open(cls, port, **kwargs):
        peer = cls(await ws_connect(port, **kwargs))
        try:
            peer.welcome = json.loads(await peer.recv_text())
            assert peer.welcome.get("event") == "$welcome", peer.welcome
            peer.id = peer.welcome["data"]["client"]
        except BaseException:
            await peer.close()
            raise
        return peer

    async def recv_text(self, timeout=READ_TIMEOUT):
        try:
            message = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("nothing received within %.1fs" % timeout) from None
        assert isinstance(message, str), "expected a text message, got %r" % message[:80]
        return message

    async def send_text(self, text):
        await asyncio.wait_for(self.ws.send(text), READ_TIMEOUT)

    async def send_json(self, value):
        await self.send_text(json.dumps(value))

    async def reply(self, timeout=READ_TIMEOUT):
        """The next message that is not an event or a direct message (raw text)."""
        deadline = time.monotonic() + timeout
        while True:
            text = await self.recv_text(max(0.0, deadline - time.monotonic()))
            if RawWs._is_async(text):
                self.pending_async.append(json.loads(text))
            else:
                return text

    async def json_reply(self, timeout=READ_TIMEOUT):
        return json_reply(await self.reply(timeout))

    async def ask(self, value, timeout=READ_TIMEOUT):
        """Sends a JSON request (dict or raw text) and returns the next JSON reply."""
        await (self.send_json(value) if isinstance(value, dict) else self.send_text(value))
        return await self.json_reply(timeout)

    async def cmd(self, cmd, *args, timeout=READ_TIMEOUT):
        """A JSON request with a fresh numeric id; checks the id comes back."""
        request_id = self.next_id
        self.next_id += 1
        request = {"id": request_id, "cmd": cmd}
        if args:
            request["args"] = list(args)
        reply = await self.ask(request, timeout)
        assert reply.get("id") == request_id, "reply %r to %r" % (reply, request)
        return reply

    async def ok(self, cmd, *args, timeout=READ_TIMEOUT):
        """The result of a request that must succeed."""
        reply = await self.cmd(cmd, *args, timeout=timeout)
        assert reply.get("ok") is True, "%s %s failed: %r" % (cmd, args, reply)
        return reply.get("result")

    async def line(self, text, timeout=READ_TIMEOUT):
        """Sends a line-protocol request; returns the next line reply."""
        await self.send_text(text)
        return await self.reply(timeout)

    async def next_async(self, timeout=READ_TIMEOUT):
        if self.pending_async:
            return self.pending_async.pop(0)
        text = await self.recv_text(timeout)
        value = json_reply(text)
        assert isinstance(value, dict) and ("event" in value or "msg" in value), \
            "expected an event or message, got %r" % text
        return value

    async def sync_with_broker(self):
        """A round trip through this gateway and the broker: what the
        gateway told the broker before (SUBSCRIBE, JOIN) has been handled."""
        reply = await self.line("stats broker")
        assert reply.startswith("OK "), reply

    async def wait_closed(self, timeout=READ_TIMEOUT):
        try:
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("connection still open after %.1fs" % timeout) from None
        return self.ws.close_code

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        if self.ws.transport is not None and not self.ws.transport.is_closing():
            self.ws.transport.abort()


class WsPeers:
    """`async with WsPeers() as open_peer:` — every peer opened through it
    is closed at the end."""

    def __init__(self):
        self.made = []

    async def __call__(self, port, **kwargs):
        peer = await WsPeer.open(port, **kwargs)
        self.made.append(peer)
        return peer

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        for peer in self.made:
            await peer.close()


async def eventually(predicate, timeout, what, interval=0.05):
    """Async wait_until: awaits `predicate()` until it is true or the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = await predicate()
            if last:
                return last
        except (OSError, AssertionError) as error:
            last = error
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (timeout, what, last))
        await asyncio.sleep(interval)


def tcp_client_list(client):
    reply = client.request("clients")
    assert reply == "OK" or reply.startswith("OK "), reply
    return reply[3:].split()


# --------------------------------------------------------------------- one hub per module

class SharedHub:
    """A `switchboard` started once for a module, with a TCP client and a
    raw WebSocket client kept open across its tests (the bystanders)."""

    def __init__(self, processes, proc, port, ws_port, parent):
        self.processes = processes
        self.proc = proc
        self.port = port
        self.ws_port = ws_port
        self.parent = parent
        self.tcp = None
        self.ws = None
        self.gateway_pid = None
        self.checks = 0

    def ws_gateway_pids(self):
        return [pid for pid in children_of(self.proc.pid)
                if Path((cmdline_of(pid) or [""])[0]).name == "sb-gateway-ws"]

    def healthy(self):
        return self.proc.alive() and http_status(self.ws_port, "/healthz") == 200

    def ensure_bystanders(self):
        """Reconnects a bystander that an earlier test lost (so one failure
        does not cascade), after the gateway is healthy again."""
        wait_until(self.healthy, STARTUP_TIMEOUT, "the hub's WebSocket gateway to be healthy")
        if self.gateway_pid is None or self.gateway_pid not in self.ws_gateway_pids():
            pids = self.ws_gateway_pids()
            assert len(pids) == 1, "sb-gateway-ws children of the launcher: %s" % pids
            self.gateway_pid = pids[0]
        if self.tcp is None or self.tcp.eof:
            if self.tcp:
                self.tcp.close()
            self.tcp = Client(self.port)
        if self.ws is None or self.ws.eof:
            if self.ws:
                self.ws.close()
            self.ws = RawWs(self.ws_port)

    def check_bystanders(self):
        """The long-lived clients still get answers through the broker, and
        the WebSocket gateway is the same process (it did not crash)."""
        self.checks += 1
        word = "alive-%d" % self.checks
        try:
            assert self.ws.request_line("echo " + word) == "OK " + word, \
                "the other WebSocket client got a wrong answer"
            reply = self.ws.request_json({"id": self.checks, "cmd": "echo", "args": [word]})
            assert reply == {"id": self.checks, "ok": True, "result": word}, reply
            assert self.tcp.request("echo " + word) == "OK " + word, \
                "the TCP client got a wrong answer"
            with RawWs(self.ws_port) as fresh:
                assert fresh.request_line("ping") == "OK pong"
        except (OSError, EOFError, TimeoutError) as error:
            self.ws.eof = True      # reconnect for the next test
            self.tcp.eof = True
            raise AssertionError("a bystander lost its connection or answer: %r" % error) \
                from None
        assert self.gateway_pid in self.ws_gateway_pids(), \
            "sb-gateway-ws pid %d is gone (crashed and restarted?): now %s" % (
                self.gateway_pid, self.ws_gateway_pids())

    def stop(self):
        for client in (self.tcp, self.ws):
            if client:
                client.close()
        problems = self.processes.stop_all()
        shutil.rmtree(self.parent, ignore_errors=True)
        return problems


@pytest.fixture(scope="module")
def shared_hub_module(tmp_path_factory):
    manager = Processes(tmp_path_factory.mktemp("shared-hub"))
    parent = tempfile.mkdtemp(prefix="sbt-", dir="/tmp")
    port, ws_port = free_port(), free_port()
    proc = manager.start("switchboard", [
        binary("switchboard"), "--tcp", "127.0.0.1:%d" % port, "--ws", "127.0.0.1:%d" % ws_port,
        "--mqtt", "127.0.0.1:%d" % free_port(),   # never the real 1883
        "--runtime-dir", str(Path(parent) / "rt")])
    hub = SharedHub(manager, proc, port, ws_port, parent)
    try:
        wait_until(lambda: proc.alive() and try_request(port, "echo ready", "OK ready"),
                   STARTUP_TIMEOUT, "the shared hub on port %d to answer" % port)
        wait_until(hub.healthy, STARTUP_TIMEOUT, "the shared hub's WebSocket gateway")
    except BaseException:
        hub.stop()
        raise
    yield hub
    hub.stop()
    reports = sanitizer_reports(manager)
    if reports:
        pytest.fail("sanitizer reports in process logs:\n" + "\n".join(reports), pytrace=False)


@pytest.fixture
def shared_hub(shared_hub_module, request):
    """The module's hub, with its bystanders connected; its process logs
    are attached to a failing test's report."""
    request.node._sb_processes = shared_hub_module.processes
    shared_hub_module.ensure_bystanders()
    return shared_hub_module
