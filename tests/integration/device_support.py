"""Helpers for the device gateway's tests (test_devices.py; issue 6, brief §3.3).

- `start_device_gateway`: runs sb-gateway-device against a `components()`
  set (its --broker is the broker's frontend, its --backend the backend)
  and waits until `devices` answers OK through the TCP gateway.
- `FakeDevice`: a threaded loopback TCP server playing a device: one
  connection at a time, every received line recorded per connection, an
  answer rule, lines sent on demand, drop, stop listening and listen again
  on the same port, or accept-and-drop at once.
- `Blackhole`: a loopback port whose accept queue is full, so a connect to
  it hangs (the gateway stays `connecting` until its connect_timeout).
- `SerialPair`: a PTY pair made by socat; the gateway opens end A as the
  device's serial port, the test plays the device on end B; unplug = stop
  socat, plug = start it again with the same links.

Every wait has a deadline; every socket, thread and process is closed or
stopped at teardown (processes by pid, through the `processes` fixture).
"""
import os
import queue
import select
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import (PEER_GREETING, READ_TIMEOUT, STARTUP_TIMEOUT, Client, binary, free_port,
                      log_records, wait_until)

DEVICE_PROGRAM = "sb-gateway-device"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"


# --------------------------------------------------------------------- config

def device_section(name, **settings):
    """A `[device NAME]` section; keyword values are written as given."""
    lines = ["[device %s]" % name]
    lines += ["%s = %s" % (key, value) for key, value in settings.items() if value is not None]
    return "\n".join(lines) + "\n\n"


# Small intervals so that the whole file stays fast.
FAST = {"backoff_initial": "0.1", "backoff_factor": "2", "backoff_max": "0.3",
        "backoff_jitter": "0.2", "connect_timeout": "1", "call_timeout": "5"}


def fast(**settings):
    merged = dict(FAST)
    merged.update(settings)
    return merged


# --------------------------------------------------------------------- the program

class DeviceGateway:
    def __init__(self, proc, listen_port):
        self.proc = proc
        self.listen_port = listen_port

    def backoffs(self, device):
        """The `device backoff` log records of one device, in order."""
        return [r for r in log_records(self.proc, "device backoff") if r.get("device") == device]


def devices_reply(port):
    with Client(port, timeout=2.0) as client:
        if not PEER_GREETING.match(client.greeting or ""):
            return None
        return client.request("devices")


def start_device_gateway(processes, c, *extra_args, listen=False, wait=True):
    """Starts sb-gateway-device against components `c`; with `listen`, on a
    free dial-in port. Waits until `devices` answers OK via c.port."""
    path = binary(DEVICE_PROGRAM)
    if not os.access(path, os.X_OK):
        pytest.fail("%s is not built (%s missing); build it: cmake -S . -B build && "
                    "cmake --build build -j2" % (DEVICE_PROGRAM, path), pytrace=False)
    assert c.config_path is not None, "the device gateway needs components(config_text)"
    listen_port = free_port() if listen else None
    argv = [path, "--broker", c.frontend, "--backend", c.backend, "--config", str(c.config_path)]
    if listen:
        argv += ["--listen", "127.0.0.1:%d" % listen_port]
    argv += list(extra_args)
    proc = processes.start(DEVICE_PROGRAM, argv)
    gateway = DeviceGateway(proc, listen_port)
    if wait:
        def ready():
            if not proc.alive():
                raise AssertionError("%s exited (%s):\n%s"
                                     % (DEVICE_PROGRAM, proc.popen.returncode, proc.log_tail()))
            reply = devices_reply(c.port)
            return reply is not None and (reply == "OK" or reply.startswith("OK "))
        wait_until(ready, STARTUP_TIMEOUT, "`devices` to answer OK through the TCP gateway")
    return gateway


def parse_devices(reply):
    """`OK a=x b=y` as {a: x, b: y} (asserts the OK)."""
    assert reply == "OK" or reply.startswith("OK "), "devices: %r" % reply
    return dict(item.split("=", 1) for item in reply[3:].split())


def device_states(peer):
    return parse_devices(peer.ask("devices"))


def wait_state(peer, name, want, timeout=10.0):
    """Waits until `devices` shows `name` in a state that equals `want`, or
    starts with it when `want` ends with ':' (e.g. "backoff:"), or is one of
    a tuple. Returns the state."""
    wants = want if isinstance(want, tuple) else (want,)

    def matches():
        state = device_states(peer).get(name)
        ok = state is not None and any(state == w or (w.endswith(":") and state.startswith(w))
                                       for w in wants)
        return state if ok else False

    return wait_until(matches, timeout, "device %s to be %s" % (name, " or ".join(wants)))


def device_info(peer, name):
    """`device NAME` as a dict (asserts the OK)."""
    reply = peer.ask("device %s" % name)
    assert reply.startswith("OK "), "device %s: %r" % (name, reply)
    return dict(item.split("=", 1) for item in reply[3:].split() if "=" in item)


# --------------------------------------------------------------------- the fake TCP device

def echo_asks(line):
    """The usual answer rule: lines starting with `ask` get `got LINE`,
    anything else (sends, on_connect, keepalives) no answer."""
    return "got " + line if line.startswith("ask") else None


class FakeDevice:
    """A device on 127.0.0.1:`port` (a free one by default). One thread owns
    the sockets; the test's requests (send, drop, stop/listen) run on it
    between polls. `answer` (line -> line or None) may be changed at any
    time; `drop_on_accept` makes it close each connection right away."""

    def __init__(self, port=None, answer=echo_asks, listen=True):
        self.port = port or free_port()
        self.answer = answer
        self.drop_on_accept = False
        self.lock = threading.Lock()
        self.connections = []       # per accepted connection: the lines received
        self.accepted_at = []       # time.monotonic() of each accept
        self.closed_by_peer = 0     # connections the gateway closed
        self.sent = []              # every line the device wrote
        self._listener = None
        self._conn = None
        self._buffer = b""
        self._requests = queue.Queue()
        self._stop = threading.Event()
        self._failure = None
        if listen:
            self._listen()
        self._thread = threading.Thread(target=self._run, name="fake-device-%d" % self.port,
                                        daemon=True)
        self._thread.start()

    # -- owned by the thread (or before it starts)
    def _listen(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(8)
        self._listener = listener

    def _close_conn(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None
            self._buffer = b""

    def _write(self, lines):
        if self._conn is None:
            raise AssertionError("the fake device on port %d has no connection" % self.port)
        self._conn.sendall("".join(line + "\n" for line in lines).encode())
        with self.lock:
            self.sent.extend(lines)

    def _run(self):
        try:
            while not self._stop.is_set():
                while True:
                    try:
                        action, done, result = self._requests.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        result.append(action())
                    except BaseException as error:  # noqa: BLE001 - handed to the caller
                        result.append(error)
                    done.set()
                watched = [s for s in (self._conn,) if s is not None]
                if self._conn is None and self._listener is not None:
                    watched.append(self._listener)
                if not watched:
                    time.sleep(0.01)
                    continue
                ready, _, _ = select.select(watched, [], [], 0.01)
                if self._listener is not None and self._listener in ready:
                    conn, _ = self._listener.accept()
                    with self.lock:
                        self.connections.append([])
                        self.accepted_at.append(time.monotonic())
                    if self.drop_on_accept:
                        conn.close()
                        continue
                    self._conn = conn
                    self._buffer = b""
                if self._conn is not None and self._conn in ready:
                    try:
                        data = self._conn.recv(65536)
                    except (ConnectionResetError, OSError):
                        data = b""
                    if not data:
                        with self.lock:
                            self.closed_by_peer += 1
                        self._close_conn()
                        continue
                    self._buffer += data
                    while b"\n" in self._buffer:
                        raw, self._buffer = self._buffer.split(b"\n", 1)
                        line = raw.decode(errors="replace").rstrip("\r")
                        with self.lock:
                            self.connections[-1].append(line)
                        rule = self.answer
                        reply = rule(line) if rule else None
                        if reply is not None:
                            try:
                                self._write([reply])
                            except OSError:
                                pass
        except BaseException as error:  # noqa: BLE001 - reported by the next request
            self._failure = error
        finally:
            self._close_conn()
            if self._listener is not None:
                self._listener.close()
                self._listener = None

    def _do(self, action, timeout=READ_TIMEOUT):
        if self._failure is not None:
            raise AssertionError("the fake device thread failed: %r" % self._failure)
        done, result = threading.Event(), []
        self._requests.put((action, done, result))
        if not done.wait(timeout):
            raise AssertionError("the fake device on port %d did not act within %.1fs"
                                 % (self.port, timeout))
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    # -- for the test
    def send(self, *lines):
        """Writes the lines to the current connection, in one write."""
        self._do(lambda: self._write(list(lines)))

    def drop(self):
        """Closes the current connection (the gateway sees EOF)."""
        self._do(self._close_conn)

    def stop_listening(self):
        """Closes the connection and the listening socket: connects are refused."""
        def action():
            self._close_conn()
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self._do(action)

    def listen_again(self):
        self._do(lambda: self._listener or self._listen())

    @property
    def connected(self):
        return self._do(lambda: self._conn is not None)

    def lines(self):
        """Every line received, over all connections."""
        with self.lock:
            return [line for conn in self.connections for line in conn]

    def lines_of(self, index):
        with self.lock:
            return list(self.connections[index])

    def connection_count(self):
        with self.lock:
            return len(self.connections)

    def wait_lines(self, count, timeout=READ_TIMEOUT, what=None):
        """Waits until at least `count` lines were received (all connections)."""
        return wait_until(lambda: len(self.lines()) >= count and self.lines(), timeout,
                          what or "the fake device to receive %d lines (has %r)"
                          % (count, self.lines()))

    def wait_line(self, line, timeout=READ_TIMEOUT):
        wait_until(lambda: line in self.lines(), timeout,
                   "the fake device to receive %r (has %r)" % (line, self.lines()))

    def wait_connections(self, count, timeout=10.0):
        wait_until(lambda: self.connection_count() >= count, timeout,
                   "%d connections to the fake device on port %d" % (count, self.port))

    def close(self):
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def fake_devices():
    """Factory of FakeDevice objects, all closed at teardown."""
    made = []

    def make(**kwargs):
        device = FakeDevice(**kwargs)
        made.append(device)
        return device

    yield make
    for device in made:
        device.close()


class Blackhole:
    """A loopback port that accepts no more connections: its accept queue
    (backlog 0) is filled by a few connects that are never accepted, so the
    kernel drops further SYNs and a connect to it hangs."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(filler)

    def close(self):
        for sock in self.fillers + [self.listener]:
            sock.close()


@pytest.fixture
def blackhole():
    hole = Blackhole()
    yield hole
    hole.close()


# --------------------------------------------------------------------- serial through socat

class SerialPair:
    """`socat -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B` in `directory`.
    The gateway opens `a_path`; the test is the device on `b_path`."""

    def __init__(self, processes, directory):
        if shutil.which("socat") is None:
            pytest.fail("socat is not installed: the serial device test needs it "
                        "(apt-get install socat)", pytrace=False)
        self.processes = processes
        self.a_path = Path(directory) / "A"
        self.b_path = Path(directory) / "B"
        self.proc = None
        self.fd = None
        self.buffer = b""

    def plug(self):
        """Starts socat and waits for both links; opens end B."""
        assert self.proc is None or not self.proc.alive(), "socat already runs"
        self.proc = self.processes.start("socat", [
            shutil.which("socat"), "-d",
            "pty,raw,echo=0,link=%s" % self.a_path, "pty,raw,echo=0,link=%s" % self.b_path])

        def ready():
            if not self.proc.alive():
                raise AssertionError("socat exited: %s" % self.proc.log_tail())
            return self.a_path.exists() and self.b_path.exists()
        wait_until(ready, 10, "socat's links %s and %s" % (self.a_path, self.b_path))
        self.fd = os.open(str(self.b_path), os.O_RDWR | os.O_NOCTTY)
        self.buffer = b""

    def unplug(self):
        """Closes end B and stops socat (by pid): end A goes away."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.proc is not None:
            self.processes.stop(self.proc)
        wait_until(lambda: not self.a_path.exists(), 5, "socat to remove its link %s" % self.a_path)

    def write_line(self, line):
        os.write(self.fd, (line + "\n").encode())

    def read_line(self, timeout=READ_TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line on the serial end within %.1fs (buffered: %r)"
                                   % (timeout, self.buffer))
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 4096)
                if not chunk:
                    raise EOFError("the serial end closed (buffered: %r)" % self.buffer)
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def read_available(self, timeout=0.05):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                break
            chunk = os.read(self.fd, 4096)
            if not chunk:
                break
            self.buffer += chunk
        lines = []
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            lines.append(line.decode(errors="replace").rstrip("\r"))
        return lines

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
