"""Integration-test harness for switchboard: spawns the real programs.

Everything here talks to 127.0.0.1 only, starts processes on free ports,
records their pids and stops exactly those (and their descendants) by pid.
There are no blind sleeps: every wait is `wait_until(condition, deadline)`,
and every socket read has a timeout (there is no pytest-timeout plugin).

Binaries come from $SB_BUILD_DIR/bin (default: <repo>/build/bin).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("SB_BUILD_DIR", REPO / "build")).resolve()
BIN_DIR = BUILD_DIR / "bin"
SHIPPED_CONFIG = BUILD_DIR / "etc" / "switchboard" / "switchboard.conf"
PROGRAMS = ("switchboard", "sb-broker", "sb-workers", "sb-gateway-tcp", "sb-gateway-ws",
            "sb-gateway-device", "sb-gateway-mqtt", "sb-bridge")

# Default deadlines (seconds).
READ_TIMEOUT = 5.0          # one reply line
STARTUP_TIMEOUT = 15.0      # a hub or a set of components becomes ready
STOP_TIMEOUT = 10.0         # a process stops after SIGTERM before it gets SIGKILL
POLL_INTERVAL = 0.02

GREETING_RE = re.compile(r"^OK switchboard (\S+) client=(tcp-\d+)$")


# --------------------------------------------------------------------- binaries

def binary(name):
    return str(BIN_DIR / name)


@pytest.fixture(scope="session", autouse=True)
def built_programs():
    """Fails every test loudly (never skips) when the programs are missing."""
    missing = [name for name in PROGRAMS
               if not os.access(BIN_DIR / name, os.X_OK)]
    if missing:
        pytest.fail(
            "switchboard programs not found or not executable in %s: %s\n"
            "Build them first: cmake -B build -DSB_TESTS=OFF && cmake --build build -j2\n"
            "(or point SB_BUILD_DIR at the build directory)"
            % (BIN_DIR, ", ".join(missing)), pytrace=False)
    if not SHIPPED_CONFIG.is_file():
        pytest.fail("shipped config %s is missing (it is copied there by cmake)"
                    % SHIPPED_CONFIG, pytrace=False)
    return BIN_DIR


# --------------------------------------------------------------------- waiting

def wait_until(predicate, timeout, what, interval=POLL_INTERVAL,
               ignore=(OSError, EOFError)):
    """Polls `predicate` until it returns a true value (returned) or the
    deadline passes (AssertionError naming `what`). Exceptions listed in
    `ignore` count as "not yet" and the last one is reported."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except ignore as error:  # noqa: PERF203 - polling
            last = error
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


# --------------------------------------------------------------------- ports and /proc

_ports_given = set()


def free_port():
    """A loopback TCP port that was free a moment ago (bind to port 0), and
    never one this test run has handed out before: the kernel may offer the
    same port again at once, and two listeners of one hub (a broker's
    frontend and backend) must not get the same one."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def _read_stat(pid):
    """(state, ppid) of a pid from /proc/PID/stat, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid ..." — comm may hold spaces and parentheses.
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def pid_alive(pid):
    """True while `pid` exists and is not a zombie."""
    stat = _read_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def children_of(pid):
    """Live (non-zombie) child pids of `pid`, found through /proc/*/stat."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read_stat(int(entry))
        if stat and stat[1] == pid and stat[0] not in ("Z", "X"):
            found.append(int(entry))
    return sorted(found)


def descendants_of(pid):
    """Every live descendant of `pid`, depth first."""
    result = []
    for child in children_of(pid):
        result.append(child)
        result.extend(descendants_of(child))
    return result


def cmdline_of(pid):
    """The argv of a process as a list ([] if it is gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
            raw = cmdline.read()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def has_args(argv, *pair):
    """True if `pair` appears consecutively in argv (e.g. "--service", "default")."""
    n = len(pair)
    return any(tuple(argv[i:i + n]) == pair for i in range(len(argv) - n + 1))


# --------------------------------------------------------------------- processes

def clean_env(extra=None):
    """The test's environment without SWITCHBOARD_* settings leaking in."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SWITCHBOARD_")}
    env.update(extra or {})
    return env


class Proc:
    """One started program: its Popen, name and log file."""

    def __init__(self, name, argv, log_path, popen):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.popen = popen

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __repr__(self):
        return "<Proc %s pid=%d>" % (self.name, self.pid)


class Processes:
    """Starts programs with output in log files; stops them all by pid."""

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self.procs = []

    def start(self, name, argv, env=None):
        index = len(self.procs)
        log_path = self.log_dir / ("%02d-%s.log" % (index, name))
        # Each test's brokers keep their retained values (and MQTT gateways
        # their sessions) in its own folder, never in the shared default
        # file (a flag in argv still wins).
        env = {"SWITCHBOARD_RETAINED_STORE": str(self.log_dir / "retained.db"),
               "SWITCHBOARD_SESSION_STORE": str(self.log_dir / "mqtt-sessions.db"), **(env or {})}
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=clean_env(env),
                                     cwd=str(self.log_dir))
        proc = Proc(name, argv, log_path, popen)
        self.procs.append(proc)
        return proc

    def log_tails(self, lines=40):
        parts = []
        for proc in self.procs:
            status = "running" if proc.alive() else "exit=%s" % proc.popen.returncode
            parts.append("----- %s pid=%d (%s) %s\n$ %s\n%s"
                         % (proc.name, proc.pid, status, proc.log_path,
                            " ".join(proc.argv), proc.log_tail(lines)))
        return "\n".join(parts)

    def stop(self, proc, timeout=STOP_TIMEOUT):
        """SIGTERM, wait up to `timeout`, then SIGKILL: the process and any
        descendant left behind (by pid). Returns True if it stopped on
        SIGTERM alone."""
        family = descendants_of(proc.pid) if proc.alive() else []
        graceful = True
        if proc.alive():
            try:
                proc.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                graceful = False
                proc.popen.kill()
                proc.popen.wait(timeout=timeout)
        leftovers = [pid for pid in family if pid_alive(pid)]
        if leftovers:
            # Give orphans a short while to follow their parent, then kill.
            deadline = time.monotonic() + 2.0
            while leftovers and time.monotonic() < deadline:
                time.sleep(POLL_INTERVAL)
                leftovers = [pid for pid in leftovers if pid_alive(pid)]
            for pid in leftovers:
                graceful = False
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return graceful

    def stop_all(self):
        problems = []
        for proc in reversed(self.procs):
            if not self.stop(proc):
                problems.append(proc.name)
        return problems


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the tail of every process log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        processes = getattr(item, "_sb_processes", None)
        if processes and processes.procs:
            report.sections.append(("switchboard process logs (tail)",
                                    processes.log_tails()))


@pytest.fixture
def processes(request, tmp_path):
    manager = Processes(tmp_path)
    request.node._sb_processes = manager
    yield manager
    problems = manager.stop_all()
    if problems:
        print("warning: needed SIGKILL to stop: %s" % ", ".join(problems))
    reports = sanitizer_reports(manager)
    if reports:
        pytest.fail("sanitizer reports in process logs:\n" + "\n".join(reports), pytrace=False)


# What ASan, LSan and UBSan print; any of these in a log fails the test, so
# the sanitizer build checks every process the suite starts, children included.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitizer_reports(manager):
    reports = []
    for proc in manager.procs:
        text = proc.log_text()
        for marker in SANITIZER_MARKERS:
            at = text.find(marker)
            if at >= 0:
                reports.append("%s: %s" % (proc.name, text[max(0, at - 200):at + 1500]))
                break
    return reports


# --------------------------------------------------------------------- client

class SocketOwner:
    """Closes `self.sock` once, quietly; usable in `with`."""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Client(SocketOwner):
    """A line-protocol client over a plain TCP socket, or over TLS when
    `wrap` (see tls_wrap) turns the socket into an SSL one."""

    def __init__(self, port, host="127.0.0.1", timeout=READ_TIMEOUT, greet=True, wrap=None):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if wrap:
            try:
                self.sock = wrap(self.sock)
            except BaseException:
                self.sock.close()
                raise
        self.buffer = b""
        self.eof = False
        self.greeting = self.read_line() if greet else None

    # -- output
    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send(self, *lines):
        """Sends each line with a trailing newline, all in one write."""
        self.send_raw("".join(line + "\n" for line in lines))

    # -- input
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
        self.buffer += chunk

    def read_line(self, timeout=None):
        """The next line without its newline. Raises TimeoutError (with what
        was buffered) or EOFError."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if self.eof:
                raise EOFError("connection closed (unterminated data: %r)" % self.buffer[:200])
            try:
                self._fill(deadline)
            except socket.timeout:
                raise TimeoutError("no complete line within %.2fs (buffered: %r)"
                                   % (timeout, self.buffer[:200])) from None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace")

    def read_lines(self, count, timeout=None):
        return [self.read_line(timeout) for _ in range(count)]

    def read_available(self, timeout=0.05):
        """Whatever complete lines arrive within `timeout` (maybe none)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except socket.timeout:
                break
        lines = []
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            lines.append(line.decode(errors="replace"))
        return lines

    def expect_eof(self, timeout=None):
        """Asserts the server closes without sending anything more."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError("connection still open after %.2fs (buffered: %r)"
                                     % (timeout, self.buffer[:200])) from None
            except ConnectionResetError:
                self.eof = True
        assert self.buffer == b"", "unexpected data before close: %r" % self.buffer[:200]

    def request(self, line, timeout=None):
        self.send(line)
        return self.read_line(timeout)


def stats_of(client, which="stats"):
    """The `stats` (or `stats broker`) reply as a dict of key=value."""
    reply = client.request(which)
    assert reply.startswith("OK "), "%s failed: %r" % (which, reply)
    return dict(item.split("=", 1) for item in reply[3:].split() if "=" in item)


def wait_for_providers(port, service, count, timeout=STARTUP_TIMEOUT):
    """Waits until the broker, asked through the gateway on `port`, has
    `count` providers of `service` waiting for work (`idle_SERVICE` of
    `stats broker`): a test that needs N workers sends only then. A worker
    that has forked is not yet one the broker can give a request to."""
    def ready():
        with Client(port, timeout=2.0) as client:
            return int(stats_of(client, "stats broker").get("idle_" + service, 0)) >= count
    wait_until(ready, timeout, "the broker to have %d idle providers of `%s`" % (count, service),
               ignore=(OSError, EOFError, AssertionError))


def try_request(port, line, expected):
    """Connects, sends one line, and tells whether the reply is `expected`.
    Used to wait for readiness (the gateway answers ERR unavailable or
    no-service while the rest of the hub is still coming up)."""
    with Client(port, timeout=2.0) as client:
        if not GREETING_RE.match(client.greeting):
            return False
        return client.request(line) == expected


@pytest.fixture
def clients():
    """Factory of Client objects, all closed at teardown."""
    made = []

    def connect(port, **kwargs):
        client = Client(port, **kwargs)
        made.append(client)
        return client

    yield connect
    for client in made:
        client.close()


# --------------------------------------------------------------------- a client that sorts its lines

ASYNC_KINDS = ("EVENT ", "RETAINED ", "MSG ")
PEER_GREETING = re.compile(r"^OK switchboard \S+ client=(\S+)$")


class Peer(Client):
    """A Client that keeps asynchronous lines (EVENT, MSG) apart from the
    replies to its own requests: events are written as soon as they arrive,
    not in order with the replies."""

    def __init__(self, port, **kwargs):
        self.pending_async = []
        self.seen_async = []        # every EVENT/MSG line read, in order
        super().__init__(port, **kwargs)
        match = PEER_GREETING.match(self.greeting or "")
        assert match, "unexpected greeting %r" % self.greeting
        self.id = match.group(1)

    def reply(self, timeout=None):
        """The next line that is not EVENT or MSG; those are kept for next_async."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if line.startswith(ASYNC_KINDS):
                self.pending_async.append(line)
                self.seen_async.append(line)
            else:
                return line

    def ask(self, line, timeout=None):
        self.send(line)
        return self.reply(timeout)

    def ask_all(self, lines, timeout=None):
        """Pipelines `lines` in one write; their replies, in order."""
        self.send(*lines)
        return [self.reply(timeout) for _ in lines]

    def next_async(self, timeout=None):
        """The next EVENT or MSG line (a reply in between is an error)."""
        if self.pending_async:
            return self.pending_async.pop(0)
        line = self.read_line(timeout)
        assert line.startswith(ASYNC_KINDS), "expected EVENT or MSG, got reply %r" % line
        self.seen_async.append(line)
        return line

    def no_async_now(self, timeout=0.2):
        """Asserts no EVENT or MSG is waiting (a quick look, not a proof:
        tests prove absence with markers)."""
        extra = self.pending_async + self.read_available(timeout)
        assert extra == [], "unexpected lines: %r" % extra

    def sync_with_broker(self):
        """A round trip through this client's gateway and the broker: what
        the gateway sent the broker before (its SUBSCRIBE, JOIN...) has been
        handled when the reply comes back (one DEALER, in order)."""
        reply = self.ask("stats broker")
        assert reply.startswith("OK "), reply

    def subscribe(self, *filters):
        for topic_filter in filters:
            assert self.ask("sub " + topic_filter) == "OK", topic_filter
        self.sync_with_broker()

    def await_event(self, expected, may_skip=r"$^", timeout=5.0):
        """Reads EVENT lines until one equals `expected` (a string) or
        matches it (a compiled regex); the lines before must match the regex
        `may_skip`. Returns the matching line."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.next_async(max(0.0, left))
            except TimeoutError:
                raise AssertionError("no event %r within %.1fs (skipped: %r)"
                                     % (getattr(expected, "pattern", expected), timeout,
                                        skipped)) from None
            if (line == expected if isinstance(expected, str) else expected.match(line)):
                return line
            assert re.match(may_skip, line), "waiting for %r, got %r (before: %r)" % (
                getattr(expected, "pattern", expected), line, skipped)
            skipped.append(line)


@pytest.fixture
def peers():
    """Factory of Peers, closed at teardown."""
    made = []

    def connect(port, **kwargs):
        peer = Peer(port, **kwargs)
        made.append(peer)
        return peer

    yield connect
    for peer in made:
        peer.close()


# --------------------------------------------------------------------- the launcher

class Hub:
    def __init__(self, proc, port, runtime_dir, ws_port, mqtt_port=None):
        self.proc = proc
        self.port = port
        self.runtime_dir = runtime_dir
        self.ws_port = ws_port
        self.mqtt_port = mqtt_port

    @property
    def pid(self):
        return self.proc.pid

    def pool_master(self, service):
        """The launcher's sb-workers child serving `service`."""
        found = [pid for pid in children_of(self.pid)
                 if has_args(cmdline_of(pid), "--service", service)
                 and Path(cmdline_of(pid)[0]).name == "sb-workers"]
        assert len(found) <= 1, "several pools for %s: %s" % (service, found)
        return found[0] if found else None


@pytest.fixture
def launch_hub(processes):
    """Factory: runs `switchboard` on a free port with a fresh runtime dir
    (its parent is a short mkdtemp so ipc:// paths fit) and waits until
    `echo ready` answers `OK ready`."""
    parents = []

    def launch(*extra_args, wait=True):
        parent = tempfile.mkdtemp(prefix="sbt-", dir="/tmp")
        parents.append(parent)
        runtime_dir = Path(parent) / "rt"
        port, ws_port, mqtt_port = free_port(), free_port(), free_port()
        # Never the real 1883: a test hub must not collide with a broker on this machine.
        argv = [binary("switchboard"), "--tcp", "127.0.0.1:%d" % port,
                "--ws", "127.0.0.1:%d" % ws_port, "--mqtt", "127.0.0.1:%d" % mqtt_port,
                "--runtime-dir", str(runtime_dir), *extra_args]
        proc = processes.start("switchboard", argv)
        hub = Hub(proc, port, runtime_dir, ws_port, mqtt_port)
        if wait:
            wait_until(lambda: proc.alive() and try_request(port, "echo ready", "OK ready"),
                       STARTUP_TIMEOUT, "the hub on port %d to answer `echo ready`" % port)
            wait_until(lambda: proc.alive() and http_status(ws_port, "/healthz") == 200,
                       STARTUP_TIMEOUT, "the WebSocket gateway on port %d to be healthy" % ws_port)
        return hub

    yield launch
    # Processes are stopped by the `processes` fixture (set up earlier, so
    # torn down later); stop our launchers now so the dirs can go.
    for proc in processes.procs:
        if proc.name == "switchboard":
            processes.stop(proc)
    for parent in parents:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def hub(launch_hub):
    return launch_hub()


# --------------------------------------------------------------------- TLS

class TlsFiles:
    """A self-signed certificate (its own CA) and its key, as PEM files."""

    def __init__(self, cert, key):
        self.cert = cert
        self.key = key

    def args(self, port):
        """A gateway's flags for a TLS listener on `port` with these files."""
        return ["--tls-listen", "127.0.0.1:%d" % port, "--tls-cert", str(self.cert),
                "--tls-key", str(self.key)]

    def der(self):
        import ssl
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text())


def make_cert(directory, common_name="localhost"):
    """A fresh self-signed certificate for localhost and 127.0.0.1."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / ("%s.crt" % common_name), directory / ("%s.key" % common_name))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=%s" % common_name,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(files.key), "-out", str(files.cert)],
                   check=True, capture_output=True, timeout=60)
    return files


@pytest.fixture
def tls_cert(tmp_path):
    """A self-signed certificate made for this test (tls_cert.cert, .key)."""
    return make_cert(tmp_path / "tls")


def tls_wrap(cafile, hostname="localhost", **context_settings):
    """For Client(wrap=...): a verifying TLS client trusting `cafile`;
    `context_settings` are set on the SSLContext (minimum_version, ...)."""
    import ssl
    context = ssl.create_default_context(cafile=str(cafile))
    for name, value in context_settings.items():
        setattr(context, name, value)
    return lambda sock: context.wrap_socket(sock, server_hostname=hostname)


# --------------------------------------------------------------------- separate components

class Components:
    def __init__(self):
        self.broker = None
        self.gateway = None
        self.pools = {}
        self.port = None
        self.frontend = None
        self.backend = None
        self.config_path = None
        self.broker_started_at = None


# A probe per worker command: what to send and what it answers.
PROBES = {
    "echo": ("echo ready", "OK ready"),
    "sleep": ("sleep 0", "OK slept 0"),
    "hello": ("hello probe", "OK Hello PROBE"),
}


def _parse_commands(config_text):
    """{command: service} from [command NAME] sections (service defaults to `default`)."""
    commands, current = {}, None
    for raw in (config_text or "").splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        header = re.match(r"^\[command\s+(\S+)\]$", line)
        if header:
            current = header.group(1)
            commands[current] = "default"
        elif line.startswith("["):
            current = None
        elif current and re.match(r"^service\s*=", line):
            commands[current] = line.split("=", 1)[1].strip()
    return commands


@pytest.fixture
def components(processes, tmp_path):
    """Factory: starts sb-broker, one sb-workers per entry of `pools`
    ({service: workers}) and sb-gateway-tcp separately on free tcp ports,
    and waits until each pool answers a probe through the gateway (`echo`
    for `default`; for another pool a worker command the config routes to
    it; a pool without such a command: until it has forked its workers),
    then until the broker has every worker of each pool as a provider (a
    test that kills one of two workers needs the other one registered)."""

    def start(config_text=None, broker_args=(), gateway_args=(), pools=None,
              worker_args=("--graceful-timeout", "1"), wait=True):
        pools = {"default": 2} if pools is None else dict(pools)
        c = Components()
        config_args = []
        if config_text is not None:
            c.config_path = tmp_path / "switchboard.conf"
            c.config_path.write_text(config_text)
            config_args = ["--config", str(c.config_path)]
        c.frontend = "tcp://127.0.0.1:%d" % free_port()
        c.backend = "tcp://127.0.0.1:%d" % free_port()
        c.port = free_port()
        c.broker = processes.start("sb-broker", [
            binary("sb-broker"), "--frontend", c.frontend, "--backend", c.backend,
            *config_args, *broker_args])
        c.broker_started_at = time.monotonic()
        for service, count in pools.items():
            c.pools[service] = processes.start("sb-workers-%s" % service, [
                binary("sb-workers"), "--service", service, "--workers", str(count),
                "--broker", c.backend, *config_args, *worker_args])
        c.gateway = processes.start("sb-gateway-tcp", [
            binary("sb-gateway-tcp"), "--listen", "127.0.0.1:%d" % c.port,
            "--broker", c.frontend, *config_args, *gateway_args])
        if not wait:
            return c
        everything = [c.broker, c.gateway, *c.pools.values()]
        routes = _parse_commands(config_text)
        for service, count in pools.items():
            pool = c.pools[service]
            candidates = [name for name, routed in routes.items() if routed == service]
            if service == "default" and "echo" not in routes:
                candidates.insert(0, "echo")
            probes = [PROBES[name] for name in candidates if name in PROBES]
            if count > 0 and probes:
                line, expected = probes[0]
                wait_until(lambda: all(p.alive() for p in everything)
                           and try_request(c.port, line, expected),
                           STARTUP_TIMEOUT,
                           "pool %s to answer `%s` through the gateway" % (service, line))
            else:
                wait_until(lambda: all(p.alive() for p in everything)
                           and len(children_of(pool.pid)) == count,
                           STARTUP_TIMEOUT, "pool %s to fork %d workers" % (service, count))
        for service, count in pools.items():
            if count > 0:
                wait_for_providers(c.port, service, count)
        return c

    return start


# --------------------------------------------------------------------- the WebSocket gateway

def http_status(port, path, host="127.0.0.1", cafile=None):
    """The status code of `GET path` on the WebSocket gateway's port, or None;
    over https to `localhost` trusting `cafile` when it is given."""
    import http.client
    try:
        if cafile:
            import ssl
            connection = http.client.HTTPSConnection(
                "localhost", port, timeout=READ_TIMEOUT,
                context=ssl.create_default_context(cafile=str(cafile)))
        else:
            connection = http.client.HTTPConnection(host, port, timeout=READ_TIMEOUT)
        connection.request("GET", path)
        status = connection.getresponse().status
        connection.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


def start_gateway(processes, program, c, extra_args):
    """`program` on a free port against the broker (and config) of a `components()` set."""
    port = free_port()
    config_args = ["--config", str(c.config_path)] if c.config_path else []
    proc = processes.start(program, [
        binary(program), "--listen", "127.0.0.1:%d" % port,
        "--broker", c.frontend, *config_args, *extra_args])
    return proc, port


@pytest.fixture
def ws_gateway(processes):
    """Factory: starts sb-gateway-ws against the broker of a `components()`
    set on a free port, with extra flags, and waits until /healthz answers
    200 (the broker link is up). Returns (proc, port)."""

    def start(c, *extra_args, wait=True):
        proc, port = start_gateway(processes, "sb-gateway-ws", c, extra_args)
        if wait:
            wait_until(lambda: proc.alive() and http_status(port, "/healthz") == 200,
                       STARTUP_TIMEOUT, "sb-gateway-ws on port %d to be healthy" % port)
        return proc, port

    return start


# --------------------------------------------------------------------- the MQTT gateway

def port_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=READ_TIMEOUT):
            return True
    except OSError:
        return False


@pytest.fixture
def mqtt_gateway(processes):
    """Factory: starts sb-gateway-mqtt against the broker of a `components()`
    set on a free port, with extra flags, and waits until it listens and has
    the broker link. Returns (proc, port)."""

    def start(c, *extra_args, wait=True):
        proc, port = start_gateway(processes, "sb-gateway-mqtt", c, extra_args)
        if wait:
            wait_until(lambda: proc.alive() and "connected to broker" in proc.log_text()
                       and port_accepts(port),
                       STARTUP_TIMEOUT, "sb-gateway-mqtt on port %d to reach the broker" % port)
        return proc, port

    return start


# --------------------------------------------------------------------- shared by the test files

# The `slow` pool of one worker that runs `sleep`, as many tests want it.
SLOW_POOL = """
[service slow]
workers = 1

[command sleep]
service = slow
"""

_LOGFMT_FIELD = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)')


def log_records(proc, msg=None):
    """The logfmt lines of a process as dicts (optionally only `msg=...`),
    each with its raw line under "_line"."""
    records = []
    for line in proc.log_text().splitlines():
        fields = {"_line": line}
        for key, value in _LOGFMT_FIELD.findall(line):
            if value.startswith('"'):
                value = re.sub(r'\\(.)', r'\1', value[1:-1])
            fields[key] = value
        if msg is None or fields.get("msg") == msg:
            records.append(fields)
    return records


@pytest.fixture
def zctx():
    """A ZeroMQ context for tests that talk to the broker's sockets directly."""
    import zmq
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def envelopes_in(message):
    """The envelopes one ZeroMQ message carries: one or more, back to back
    (a process sends what it has for a peer in one message per loop pass)."""
    import msgpack
    unpacker = msgpack.Unpacker(strict_map_key=False)
    unpacker.feed(message)
    return list(unpacker)


def dealer(context, endpoint, identity):
    """A DEALER with a fixed identity, connected to `endpoint`."""
    import zmq
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100000)
    sock.connect(endpoint)
    return sock


def _echo_loop(port, name, stop, results):
    """Sequential echoes on one connection until `stop`; records failures."""
    done, failures = 0, []
    try:
        with Client(port) as client:
            while not stop.is_set():
                expected = "%s-%d" % (name, done)
                reply = client.request("echo " + expected, timeout=5)
                if reply != "OK " + expected:
                    failures.append((expected, reply))
                done += 1
    except Exception as error:  # noqa: BLE001 - reported by the test
        failures.append(("exception", repr(error)))
    results[name] = (done, failures)


class EchoLoad:
    """Clients sending echo in a loop on their own threads."""

    def __init__(self, port, count):
        self.stop = threading.Event()
        self.results = {}
        self.threads = [threading.Thread(target=_echo_loop,
                                         args=(port, "c%d" % n, self.stop, self.results))
                        for n in range(count)]
        for thread in self.threads:
            thread.start()

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in self.threads), "an echo loop hangs"
        done = sum(d for d, _ in self.results.values())
        failures = [f for _, fs in self.results.values() for f in fs]
        return done, failures
