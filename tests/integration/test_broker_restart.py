"""A broker restart costs clients nothing (issue 11 §4) and the gateway's
own deadline (§3.4), with the real processes:

- a request that reaches a gateway before its broker is up is held and
  answered once the broker comes (broker-wait), a held `tell` after the
  broker has learnt the gateway's clients; with no broker at all it is
  answered ERR unavailable when the (short) wait runs out;
- a hung broker (SIGSTOP) leaves a request that the gateway answers
  ERR timeout at its deadline; the broker's late reply is dropped, counted;
  a /metrics scrape is served (sb_broker_up 0) by its deadline, and at
  once while there is no broker link;
- kill -9 of the broker under 8 clients x 4 echoes in flight, restarted on
  the same endpoints: every echo gets exactly one reply, OK (echo is
  retry-safe: sent again once to the new broker); a `sleep` in flight (not
  retry-safe) gets ERR unavailable;
- ten cold starts of the launcher: the first request on the TCP port, sent
  as soon as the port accepts, is answered OK every time.
"""
import collections
import os
import signal
import threading

from conftest import (STARTUP_TIMEOUT, Client, GREETING_RE, binary, free_port, http_status,
                      log_records, stats_of, try_request, wait_until)
from conftest import SLOW_POOL, envelopes_in
from device_support import device_section, fast


def _endpoints():
    return "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()


def _start_gateway(processes, frontend, *args):
    """sb-gateway-tcp on a free port; waits until it greets (it listens
    whether or not its broker is there)."""
    port = free_port()
    proc = processes.start("sb-gateway-tcp", [
        binary("sb-gateway-tcp"), "--listen", "127.0.0.1:%d" % port, "--broker", frontend, *args])

    def greets():
        with Client(port, timeout=2.0) as client:
            return GREETING_RE.match(client.greeting)
    wait_until(lambda: proc.alive() and greets(), STARTUP_TIMEOUT,
               "the gateway on port %d to greet" % port)
    return proc, port


def _start_broker_and_pool(processes, frontend, backend):
    broker = processes.start("sb-broker", [
        binary("sb-broker"), "--frontend", frontend, "--backend", backend])
    pool = processes.start("sb-workers-default", [
        binary("sb-workers"), "--service", "default", "--workers", "2", "--broker", backend,
        "--graceful-timeout", "1"])
    return broker, pool


def _err_code(line):
    parts = line.split()
    return parts[1] if len(parts) > 1 and parts[0] == "ERR" else None


# --------------------------------------------------------------------- broker-wait

def test_a_request_before_the_broker_starts_is_answered_once_it_is_up(processes):
    frontend, backend = _endpoints()
    gateway, port = _start_gateway(processes, frontend, "--broker-wait", "60")
    with Client(port, timeout=30) as client, Client(port) as watcher:
        client.send("@e echo early", "@p pub early/topic hello")
        wait_until(lambda: int(stats_of(watcher)["held"]) == 2, 5,
                   "the gateway to hold the echo and the pub")
        _start_broker_and_pool(processes, frontend, backend)
        replies = sorted([client.read_line(), client.read_line()])
        assert replies == ["@e OK early", "@p OK"], replies
        stats = stats_of(watcher)
        assert stats["held"] == "0" and stats["errors"] == "0", stats
    sent = log_records(gateway, "sent what was held for the broker")
    assert sum(int(record["requests"]) for record in sent) == 2, gateway.log_tail()


def test_a_held_tell_finds_a_client_that_joined_before_the_broker_came(processes, peers):
    """The new broker learns the gateway's clients before it gets what was
    held, so a `tell` held for it reaches its target."""
    frontend, backend = _endpoints()
    _, port = _start_gateway(processes, frontend, "--broker-wait", "60")
    target = peers(port, timeout=30)
    sender = peers(port, timeout=30)
    sender.send("tell %s hello from before" % target.id)
    with Client(port) as watcher:
        wait_until(lambda: int(stats_of(watcher)["held"]) == 1, 5,
                   "the gateway to hold the tell")
    _start_broker_and_pool(processes, frontend, backend)
    assert sender.reply() == "OK", sender.seen_async
    assert target.next_async() == "MSG %s hello from before" % sender.id


def test_with_no_broker_the_client_gets_unavailable_after_the_wait(processes):
    frontend, _ = _endpoints()
    gateway, port = _start_gateway(processes, frontend, "--broker-wait", "0.3")
    with Client(port) as client:
        # Wait for the replies, whatever they take: their content is the test.
        client.send("@a echo nobody", "@b pub some/topic x")
        replies = sorted(client.read_lines(2, timeout=10))
        assert [r.split(" ", 2)[:2] for r in replies] == [["@a", "ERR"], ["@b", "ERR"]], replies
        assert all(_err_code(r.split(" ", 1)[1]) == "unavailable" for r in replies), replies
        assert stats_of(client)["held"] == "0"
    assert log_records(gateway, "held requests waited too long for the broker"), \
        gateway.log_tail()


def test_a_full_hold_answers_unavailable_at_once(processes):
    frontend, _ = _endpoints()
    _, port = _start_gateway(processes, frontend, "--broker-wait", "60", "--broker-wait-max", "2")
    with Client(port) as client:
        client.send("@a echo 1", "@b echo 2", "@c echo 3")
        # @c does not fit: it is answered while @a and @b still wait.
        line = client.read_line(timeout=10)
        assert line.startswith("@c ERR unavailable"), line
        assert stats_of(client)["held"] == "2"


def test_a_device_event_from_before_the_broker_is_published_when_it_comes(processes, tmp_path,
                                                                         zctx):
    """A dial-in device connects before the device gateway has a broker:
    its `connected` event is held and reaches the broker once it is there
    (a ROUTER of the test's own stands at the broker's frontend)."""
    import zmq
    frontend, backend = _endpoints()
    config = tmp_path / "switchboard.conf"
    config.write_text(device_section("door", **fast()))
    listen = free_port()
    gateway = processes.start("sb-gateway-device", [
        binary("sb-gateway-device"), "--broker", frontend, "--backend", backend,
        "--listen", "127.0.0.1:%d" % listen, "--config", str(config), "--broker-wait", "60"])
    wait_until(lambda: gateway.alive() and log_records(gateway, "device gateway started"),
               STARTUP_TIMEOUT, "the device gateway to start")
    with Client(listen, greet=False) as door:
        door.send("HELLO door")
        assert door.read_line() == "OK hello door"
        broker = zctx.socket(zmq.ROUTER)
        broker.setsockopt(zmq.LINGER, 0)
        broker.bind(frontend)
        published = []

        def connected_event():
            while broker.poll(50):
                for fields in envelopes_in(broker.recv_multipart()[-1]):
                    if "$sys/devices/door" in fields.values():
                        published.append(fields)
            return any("connected" in fields.values() for fields in published)
        wait_until(connected_event, 15, "the held `connected` event at the broker")
    assert not log_records(gateway, "event not published, the broker cannot be reached")


# --------------------------------------------------------------------- the gateway's deadline

def test_a_hung_broker_leaves_the_gateway_to_answer_timeout(components, clients):
    """[command echo] timeout = 1: the gateway answers ERR timeout 1 s after
    that deadline (2 s), before the link counts the broker silent (3 s)."""
    c = components("[command echo]\ntimeout = 1\n")
    client = clients(c.port, timeout=15)
    os.kill(c.broker.pid, signal.SIGSTOP)
    try:
        reply = client.request("@h echo hung")
        assert reply.startswith("@h ERR timeout"), reply
        with Client(c.port) as watcher:
            stats = stats_of(watcher)
        assert stats["timeouts"] == "1" and stats["in_flight"] == "0", stats
    finally:
        os.kill(c.broker.pid, signal.SIGCONT)
    # The broker, running again, handles the request: its reply is dropped and counted.
    with Client(c.port) as watcher:
        wait_until(lambda: int(stats_of(watcher)["late_replies"]) >= 1, 10,
                   "the late reply to be counted")
    wait_until(lambda: try_request(c.port, "echo again", "OK again"), 15,
               "the broker to serve again")
    assert client.read_available(0.2) == [], "a second reply reached the client"


def _metrics(port):
    """(status, body) of GET /metrics; the client waits long enough for any deadline."""
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_a_metrics_scrape_ends_by_its_deadline_when_the_broker_hangs(components, ws_gateway):
    """The scrape asks the hung broker `stats broker`; by the gateway's
    deadline for it (heartbeat interval x liveness + 1 s) it is served with
    the gateway's own figures and sb_broker_up 0."""
    c = components()
    _, port = ws_gateway(c, "--heartbeat-liveness", "3")
    status, body = _metrics(port)
    assert status == 200 and "\nsb_broker_up 1\n" in body, body[-300:]
    os.kill(c.broker.pid, signal.SIGSTOP)
    try:
        status, body = _metrics(port)
    finally:
        os.kill(c.broker.pid, signal.SIGCONT)
    assert status == 200, status
    assert "\nsb_broker_up 0\n" in body and "sb_gateway_requests_total" in body, body[-300:]


def test_a_metrics_scrape_without_a_broker_link_is_served_at_once(processes):
    frontend, _ = _endpoints()
    port = free_port()
    proc = processes.start("sb-gateway-ws", [
        binary("sb-gateway-ws"), "--listen", "127.0.0.1:%d" % port, "--broker", frontend,
        "--broker-wait", "600"])
    wait_until(lambda: proc.alive() and http_status(port, "/healthz") == 503, STARTUP_TIMEOUT,
               "sb-gateway-ws to answer /healthz (503: no broker)")
    # Not held for the broker (--broker-wait 600 would outlast the client's timeout).
    status, body = _metrics(port)
    assert status == 200 and "\nsb_broker_up 0\n" in body, body[-300:]
    assert "\nsb_gateway_requests_held 0\n" in body, body


# --------------------------------------------------------------------- kill -9 under load

CLIENTS, DEPTH = 8, 4


class _Load:
    """CLIENTS clients, each keeping DEPTH tagged echoes in flight."""

    def __init__(self, port):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = {}
        self.replies = collections.defaultdict(list)
        self.errors = []
        self.count = 0
        self.threads = [threading.Thread(target=self._run, args=(port, n))
                        for n in range(CLIENTS)]
        for thread in self.threads:
            thread.start()

    def _send(self, client, name, number):
        tag = "%s-%d" % (name, number)
        with self.lock:
            self.sent[tag] = tag
        client.send("@%s echo %s" % (tag, tag))

    def _run(self, port, n):
        name, number, outstanding = "c%d" % n, 0, 0
        try:
            with Client(port, timeout=20) as client:
                for _ in range(DEPTH):
                    self._send(client, name, number)
                    number, outstanding = number + 1, outstanding + 1
                while outstanding:
                    tag, text = client.read_line().split(" ", 1)
                    with self.lock:
                        self.replies[tag[1:]].append(text)
                        self.count += 1
                    outstanding -= 1
                    if not self.stop.is_set():
                        self._send(client, name, number)
                        number, outstanding = number + 1, outstanding + 1
                # A second reply to anything would come now.
                for line in client.read_available(0.3):
                    tag, text = line.split(" ", 1)
                    with self.lock:
                        self.replies[tag[1:]].append(text)
        except Exception as error:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(error))

    def replied(self):
        with self.lock:
            return self.count

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self.threads), "a load client hangs"


def test_broker_killed_under_load_every_echo_gets_exactly_one_ok(components, processes, clients):
    # The restarted broker (same argv) waits up to 10 s for the pools to
    # register again, at their next heartbeat: on a loaded machine that can
    # come later than the default grace of 2 s, and the resent echoes would
    # get ERR no-service. What is tested here is the gateways' resend.
    c = components(SLOW_POOL, broker_args=["--startup-grace", "10"],
                   pools={"default": 2, "slow": 1})
    slow = clients(c.port, timeout=20)
    load = _Load(c.port)
    try:
        wait_until(lambda: load.replied() >= 300, 30, "300 echoes before the kill")
        # A request that is not retry-safe, held by the slow worker at the kill.
        slow.send("@s sleep 3")
        with Client(c.port) as watcher:
            wait_until(lambda: stats_of(watcher, "stats broker").get("idle_slow") == "0", 5,
                       "the slow worker to hold the sleep")
        before = load.replied()
        c.broker.popen.kill()
        c.broker.popen.wait(5)
        broker = processes.start("sb-broker", c.broker.argv)
        reply = slow.read_line()
        assert reply.startswith("@s ERR unavailable"), reply
        wait_until(lambda: broker.alive() and load.replied() >= before + 300, 30,
                   "300 echoes after the restart")
    finally:
        load.finish()
    assert load.errors == [], load.errors
    wrong = {tag: got for tag, got in load.replies.items() if got != ["OK " + tag]}
    missing = [tag for tag in load.sent if tag not in load.replies]
    assert not wrong and not missing, "wrong: %r; missing: %r" % (
        dict(list(wrong.items())[:10]), missing[:10])
    with Client(c.port) as watcher:
        stats = stats_of(watcher)
    assert int(stats["resent"]) >= 1, "no echo was in flight at the kill: %s" % stats
    print("broker kill -9 under %dx%d echoes: %d requests, %d sent again, 0 failed"
          % (CLIENTS, DEPTH, len(load.sent), int(stats["resent"])))


# --------------------------------------------------------------------- cold starts

def test_ten_cold_starts_answer_the_first_request(launch_hub, processes):
    for attempt in range(10):
        hub = launch_hub(wait=False)

        def connected():
            client = Client(hub.port, timeout=20)
            if GREETING_RE.match(client.greeting or ""):
                return client
            client.close()
            return None
        client = wait_until(lambda: hub.proc.alive() and connected(), STARTUP_TIMEOUT,
                            "the TCP port of launch %d to accept" % attempt)
        with client:
            reply = client.request("echo first")
        assert reply == "OK first", "cold start %d: %r" % (attempt, reply)
        assert processes.stop(hub.proc), "launch %d did not stop on SIGTERM" % attempt

