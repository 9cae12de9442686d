"""Reliability of the core with the real processes (issue 3, brief §5):
heartbeats both ways, graceful leave, worker death (retry-safe or not), the
command watchdog, exactly one reply while workers are killed at random, a
broker restart under the launcher, backpressure and slow consumers.

Every fault is provoked for real (SIGKILL, SIGSTOP, a fake provider on the
broker's backend socket, a client that never reads) and every wait is a
condition with a deadline. Short heartbeats (0.2 s x 3) keep the timing
tests fast where the default (1 s x 3) is not what is being checked.
"""
import collections
import os
import random
import re
import signal
import socket
import struct
import threading
import time
from pathlib import Path

import msgpack
import zmq

from conftest import (Client, binary, children_of, cmdline_of, pid_alive, stats_of, try_request,
                      wait_until)
from conftest import SLOW_POOL, EchoLoad, envelopes_in, log_records, dealer, wait_for_providers

HEARTBEAT = 0.2
LIVENESS = 3
SILENCE_WINDOW = HEARTBEAT * LIVENESS
FAST_HEARTBEATS = ["--heartbeat-interval", str(HEARTBEAT), "--heartbeat-liveness", str(LIVENESS)]
WORKER_FAST_HEARTBEATS = ("--graceful-timeout", "1", *FAST_HEARTBEATS)



# --------------------------------------------------------------------- local helpers




def send_held(client, lines, probe):
    """Sends `lines`, then the tagged request `probe` for the same service,
    and waits for the probe's reply. Run with broker --queue-max 0: the
    broker takes the requests of one gateway in order, so when the probe
    is refused `busy`, every line before it has been handed to a worker
    (none is idle and none waits in the queue). Workers log nothing per
    request, so this is the way to know a worker holds one."""
    tag = probe.split()[0]
    client.send(*lines, probe)
    reply = client.read_line(timeout=5)
    assert reply.startswith(tag + " ERR busy"), \
        "probe %r: %r (expected busy: the workers should all hold a request)" % (probe, reply)


HOLDING = ["--queue-max", "0"]


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def err_code(reply_text):
    """"ERR worker-died the worker..." -> "worker-died" (None for OK)."""
    parts = reply_text.split()
    return parts[1] if parts and parts[0] == "ERR" and len(parts) > 1 else None


class Tagged:
    """Tagged requests on one Client: every reply line is filed under its
    tag, so a late or duplicate reply is never mistaken for another one."""

    def __init__(self, client):
        self.client = client
        self.replies = collections.defaultdict(list)
        self.untagged = []
        self.count = 0

    def send(self, line):
        self.count += 1
        tag = "t%d" % self.count
        self.client.send("@%s %s" % (tag, line))
        return tag

    def _file(self, line):
        if line.startswith("@") and " " in line:
            tag, rest = line[1:].split(" ", 1)
            self.replies[tag].append(rest)
        else:
            self.untagged.append(line)

    def wait(self, tag, timeout):
        deadline = time.monotonic() + timeout
        while not self.replies[tag]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply to @%s within %.2fs" % (tag, timeout))
            self._file(self.client.read_line(timeout=left))
        return self.replies[tag][0]

    def ask(self, line, timeout=5.0):
        return self.wait(self.send(line), timeout)

    def read_for(self, seconds):
        for line in self.client.read_available(seconds):
            self._file(line)

    def duplicates(self):
        return {tag: lines for tag, lines in self.replies.items() if len(lines) > 1}




def envelope(**fields):
    return msgpack.packb(dict(v=1, **fields))


def received(sock):
    """Every envelope waiting on `sock`, decoded."""
    found = []
    while True:
        try:
            found.extend(envelopes_in(sock.recv(zmq.NOBLOCK)))
        except zmq.Again:
            return found


def removed(broker, key):
    """The broker's `provider removed` record for provider `key`, if any."""
    found = [r for r in log_records(broker, "provider removed") if r.get("provider") == key]
    return found[0] if found else None


# --------------------------------------------------------------------- 1. heartbeats

def test_silent_provider_is_removed_and_a_beating_one_is_kept(components, zctx):
    """Broker side: a provider that registers and then says nothing is
    removed after interval x liveness (reason=silent); one that keeps
    heartbeating is kept for several windows; the broker heartbeats its
    providers; a removed provider that speaks again is told to reconnect."""
    c = components(broker_args=FAST_HEARTBEATS, worker_args=WORKER_FAST_HEARTBEATS,
                   pools={"default": 1})
    silent = dealer(zctx, c.backend, b"ghost-silent")
    beating = dealer(zctx, c.backend, b"ghost-beating")
    silent_key, beating_key = b"ghost-silent".hex(), b"ghost-beating".hex()
    heartbeat = envelope(t="heartbeat")

    started = time.monotonic()
    silent.send(envelope(t="ready", svc="ghost"))
    beating.send(envelope(t="ready", svc="ghost"))
    wait_until(lambda: {r.get("provider") for r in log_records(c.broker, "provider ready")}
               >= {silent_key, beating_key}, 3, "both fake providers to register")

    def beat_and_look():
        beating.send(heartbeat)
        return removed(c.broker, silent_key)

    record = wait_until(beat_and_look, SILENCE_WINDOW + 3, "the silent provider to be removed",
                        interval=0.05)
    elapsed = time.monotonic() - started
    assert record["reason"] == "silent", record["_line"]
    assert record["service"] == "ghost", record["_line"]
    # It cannot go before its window, and goes at the first heartbeat tick after it.
    assert SILENCE_WINDOW <= elapsed <= SILENCE_WINDOW + HEARTBEAT + 1.0, \
        "silent provider removed after %.2fs (window %.2fs)" % (elapsed, SILENCE_WINDOW)

    # Heartbeats both ways: the broker kept sending them to the silent one.
    beats = [m for m in received(silent) if m.get("t") == "heartbeat"]
    assert len(beats) >= 2, "the broker sent %d heartbeats in %.2fs" % (len(beats), elapsed)

    # The beating one outlives three windows (the fake provider's heartbeats
    # are paced by this loop: that is the behaviour under test, not a wait).
    while time.monotonic() - started < 3 * SILENCE_WINDOW:
        beating.send(heartbeat)
        time.sleep(0.05)
    assert removed(c.broker, beating_key) is None, removed(c.broker, beating_key)["_line"]

    # A removed provider that speaks again is told DISCONNECT (register anew).
    silent.send(heartbeat)
    wait_until(lambda: any(m.get("t") == "disconnect" for m in received(silent)), 3,
               "the broker to tell the removed provider to reconnect")

    # Once it stops beating, the other one goes the same way.
    stopped = time.monotonic()
    record = wait_until(lambda: removed(c.broker, beating_key), SILENCE_WINDOW + 3,
                        "the formerly beating provider to be removed")
    assert record["reason"] == "silent", record["_line"]
    assert time.monotonic() - stopped <= SILENCE_WINDOW + HEARTBEAT + 1.0

    # The real worker heartbeats and stays: no real provider was removed.
    others = [r for r in log_records(c.broker, "provider removed")
              if r.get("provider") not in (silent_key, beating_key)]
    assert others == [], [r["_line"] for r in others]
    assert try_request(c.port, "echo still here", "OK still here")


def test_silent_broker_makes_workers_reconnect(components):
    """Provider side: a broker that stops answering (SIGSTOP) past the
    workers' interval x liveness makes them drop their link and register
    again; once it runs again, service resumes by itself."""
    c = components(broker_args=FAST_HEARTBEATS, worker_args=WORKER_FAST_HEARTBEATS,
                   pools={"default": 2})
    pool = c.pools["default"]
    ready_before = len(log_records(c.broker, "provider ready"))
    assert log_records(pool, "broker silent, reconnecting") == []

    os.kill(c.broker.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        wait_until(lambda: len(log_records(pool, "broker silent, reconnecting")) >= 2,
                   SILENCE_WINDOW + 3, "both workers to notice the silent broker")
        noticed = time.monotonic() - stopped
    finally:
        os.kill(c.broker.pid, signal.SIGCONT)
    assert noticed >= SILENCE_WINDOW * 0.9, "workers gave up after %.2fs" % noticed
    assert noticed <= SILENCE_WINDOW + HEARTBEAT + 2.0, "workers gave up after %.2fs" % noticed

    resumed = time.monotonic()
    wait_until(lambda: try_request(c.port, "echo back", "OK back"), 10,
               "echo to work again after SIGCONT")
    print("workers noticed the silent broker after %.2fs; echo back %.2fs after SIGCONT"
          % (noticed, time.monotonic() - resumed))
    # Both workers registered again (new links, new routing ids).
    wait_until(lambda: len(log_records(c.broker, "provider ready")) >= ready_before + 2, 5,
               "both workers to register again")
    assert c.broker.alive() and pool.alive()


# --------------------------------------------------------------------- 2. graceful leave

def test_graceful_leave_is_immediate_and_loses_nothing(components, processes, clients):
    """Two pools serve `default`; one is stopped with SIGTERM while clients
    keep sending: its workers say DISCONNECT, the broker drops them at once
    (reason=left, not after a heartbeat) and no request fails."""
    # A long broker heartbeat: anything but DISCONNECT would take >= 2 s to notice.
    c = components(broker_args=["--heartbeat-interval", "2"], pools={"default": 2})
    second = processes.start("sb-workers-default-b", [
        binary("sb-workers"), "--service", "default",
        "--workers", "2", "--broker", c.backend, "--graceful-timeout", "2"])
    wait_until(lambda: len(log_records(c.broker, "provider ready")) >= 4, 10,
               "4 providers of `default` (two pools) to register")

    monitor = clients(c.port)
    load = EchoLoad(c.port, 4)
    try:
        wait_until(lambda: int(stats_of(monitor)["replies"]) >= 100, 10,
                   "the echo loops to get going")
        os.kill(second.pid, signal.SIGTERM)
        signalled = time.monotonic()
        lines = wait_until(lambda: (lambda left: len(left) >= 2 and left)(
            [r for r in log_records(c.broker, "provider removed") if r.get("reason") == "left"]),
            3, "the stopped pool's 2 workers to leave")
        took = time.monotonic() - signalled
        second.popen.wait(timeout=5)
        assert second.popen.returncode == 0, "pool exited %s" % second.popen.returncode
        replies_then = int(stats_of(monitor)["replies"])
        wait_until(lambda: int(stats_of(monitor)["replies"]) >= replies_then + 100, 10,
                   "100 more echoes after the pool left")
    finally:
        done, failures = load.finish()
    print("graceful leave: %d providers left %.3fs after SIGTERM; %d echoes, %d failed"
          % (len(lines), took, done, len(failures)))
    assert took < 1.0, "providers left %.2fs after SIGTERM: not at once" % took
    assert failures == [], failures[:10]
    removals = log_records(c.broker, "provider removed")
    assert all(r.get("reason") == "left" for r in removals), [r["_line"] for r in removals]
    assert len(removals) == 2, [r["_line"] for r in removals]
    assert c.pools["default"].alive()


# --------------------------------------------------------------------- 3. worker death

def test_killed_worker_holding_a_non_retry_request_answers_worker_died(components, clients):
    """`sleep` is not retry-safe: its client gets ERR worker-died within
    1.5 s of the SIGKILL (default heartbeat, 1 s) and the pool is back to
    its size within 2 s."""
    c = components(SLOW_POOL, broker_args=HOLDING, pools={"default": 1, "slow": 1})
    master = c.pools["slow"].pid
    [worker] = children_of(master)
    client = clients(c.port)
    send_held(client, ["@s sleep 3"], "@p sleep 0")

    os.kill(worker, signal.SIGKILL)
    killed = time.monotonic()
    reply = client.read_line(timeout=5)
    answered = time.monotonic() - killed
    assert re.match(r"^@s ERR worker-died\b", reply), reply
    assert answered <= 1.5, "ERR worker-died came %.2fs after the kill" % answered

    replaced = wait_until(lambda: (lambda kids: len(kids) == 1 and worker not in kids and kids)(
        children_of(master)), 5, "the slow pool to be back at 1 worker")
    back = time.monotonic() - killed
    assert back <= 2.0, "pool back to 1 worker %.2fs after the kill" % back
    died = [r for r in log_records(c.pools["slow"], "child died, restarting")
            if r.get("child_pid") == str(worker)]
    assert died and died[0].get("signal") == "Killed", c.pools["slow"].log_tail()
    wait_until(lambda: try_request(c.port, "sleep 0", "OK slept 0"), 5,
               "the new worker %s to serve `sleep 0`" % replaced)
    assert client.read_available(0.05) == [], "a second reply to @s"
    print("worker-died after %.2fs, pool back in %.2fs" % (answered, back))


def test_killed_worker_holding_a_retry_safe_request_runs_it_again(components, clients):
    """With `retry = yes`, a request whose worker dies runs again on another
    worker and the client only ever sees its success."""
    config = """
[service slow]
workers = 2

[command sleep]
service = slow
retry = yes
"""
    c = components(config, broker_args=HOLDING, pools={"default": 1, "slow": 2})
    master = c.pools["slow"].pid
    workers = children_of(master)
    assert len(workers) == 2, workers
    # Forked is not registered: both must be able to take one of the two.
    wait_for_providers(c.port, "slow", 2)
    client = clients(c.port)
    # Both workers busy, so whichever is killed held one of the two.
    send_held(client, ["@a sleep 1", "@b sleep 1"], "@p sleep 0")
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()

    got = {}
    while len(got) < 2:
        line = client.read_line(timeout=6)
        got[line.split(" ", 1)[0]] = (line, time.monotonic() - killed)
    assert got["@a"][0] == "@a OK slept 1" and got["@b"][0] == "@b OK slept 1", got
    # The survivor finishes first; the other request ran once more, in full, after the kill.
    last = max(after for _, after in got.values())
    assert last >= 0.95, "no request ran again after the kill: %s" % got
    queued = log_records(c.broker, "request queued again")
    assert [(r.get("command"), r.get("retries")) for r in queued] == [("sleep", "1")], \
        [r["_line"] for r in queued]
    assert client.read_available(0.05) == [], "a duplicate reply"
    print("replies after the kill: %s" % {k: "%.2fs" % v for k, (_, v) in got.items()})


def test_echo_hello_time_are_retry_safe_by_default(components, clients):
    """No config: a worker that dies holding `echo`, `hello` or `time` does
    not cost its client anything, the request runs on another worker. The
    worker is stopped (SIGSTOP) first, so it can never answer itself. With
    a credit of 1, so the probe waits in the broker's queue, not in the
    worker (test_credit.py has a worker that dies holding several)."""
    c = components(broker_args=HOLDING, pools={"default": 1},
                   worker_args=("--graceful-timeout", "1", "--prefetch", "1"))
    master = c.pools["default"].pid
    client = clients(c.port)
    expected = {"echo": "OK once more", "hello": "OK Hello BOB"}
    for number, (command, line) in enumerate(
            [("echo", "echo once more"), ("hello", "hello bob"), ("time", "time")]):
        worker = wait_until(lambda: (lambda kids: len(kids) == 1 and kids[0])(
            children_of(master)), 5, "the pool's one worker")
        wait_until(lambda: try_request(c.port, "echo ready", "OK ready"), 5,
                   "the worker %d to be registered" % worker)
        os.kill(worker, signal.SIGSTOP)
        send_held(client, ["@c%d %s" % (number, line)], "@p%d echo probe" % number)
        os.kill(worker, signal.SIGKILL)
        reply = client.read_line(timeout=5)
        tag, text = reply.split(" ", 1)
        assert tag == "@c%d" % number, reply
        if command == "time":
            assert re.match(r"^OK \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", text), reply
        else:
            assert text == expected[command], reply
        queued = [r for r in log_records(c.broker, "request queued again")
                  if r.get("command") == command]
        assert [r.get("retries") for r in queued] == ["1"], [r["_line"] for r in queued]
    assert client.read_available(0.05) == [], "a duplicate reply"


# --------------------------------------------------------------------- 4. watchdog

def test_watchdog_kills_a_command_past_its_timeout(components, clients):
    config = """
[service slow]
workers = 1

[command sleep]
service = slow
timeout = 1
"""
    c = components(config, pools={"default": 1, "slow": 1})
    pool = c.pools["slow"]
    [worker] = children_of(pool.pid)
    client = clients(c.port)
    started = time.monotonic()
    reply = client.request("sleep 5", timeout=4)
    answered = time.monotonic() - started
    assert re.match(r"^ERR timeout\b", reply), reply
    assert 0.9 <= answered <= 2.0, "ERR timeout after %.2fs (timeout 1 s)" % answered

    wait_until(lambda: not pid_alive(worker), 2.0, "the stuck worker %d to be killed" % worker)
    died = wait_until(lambda: [r for r in log_records(pool, "child died, restarting")
                               if r.get("child_pid") == str(worker)], 2, "the pool to log it")
    assert died[0].get("signal") == "Alarm clock", died[0]["_line"]
    new = wait_until(lambda: (lambda kids: len(kids) == 1 and worker not in kids and kids)(
        children_of(pool.pid)), 3, "the pool to be back at 1 worker with a new pid")
    # `sleep 0` has 1 s too: it is sent once the new worker has registered.
    wait_until(lambda: re.search(r"\bidle_slow=1\b", client.request("stats broker")), 10,
               "the new worker to register with the broker")
    assert client.request("sleep 0", timeout=5) == "OK slept 0"
    assert client.read_available(0.05) == [], "a second reply to the timed-out request"
    print("ERR timeout after %.2fs; worker %d killed by SIGALRM, replaced by %s"
          % (answered, worker, new))


# --------------------------------------------------------------------- 5. exactly one reply

REQUESTS = 2000
CONNECTIONS = 8
WINDOW = 16                 # requests outstanding per connection (below --max-inflight)
REQUEST_TIMEOUT = 5.0


def _request_line(n):
    kind = n % 4
    if kind == 0:
        return "@r%d echo r%d" % (n, n), lambda text: text == "OK r%d" % n
    if kind == 1:
        return "@r%d hello n%d" % (n, n), lambda text: text == "OK Hello N%d" % n
    if kind == 2:
        return "@r%d time" % n, lambda text: re.match(
            r"^OK \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", text) is not None
    return "@r%d sleep 0.01" % n, lambda text: text == "OK slept 0.01"


def _run_connection(port, numbers, record):
    """Sends `numbers` with at most WINDOW outstanding, files every reply."""
    with Client(port, timeout=REQUEST_TIMEOUT + 5) as client:
        pending = list(numbers)
        outstanding = 0
        while pending or outstanding:
            while pending and outstanding < WINDOW:
                n = pending.pop(0)
                line, _ = _request_line(n)
                record["sent"][n] = time.monotonic()
                client.send(line)
                outstanding += 1
            line = client.read_line()
            tag, text = line.split(" ", 1)
            record["replies"][tag].append((text, time.monotonic()))
            outstanding -= 1
        # Anything more in a short while would be a second reply.
        for line in client.read_available(0.5):
            tag, text = line.split(" ", 1)
            record["replies"][tag].append((text, time.monotonic()))


def _killer(master, stop, kills, rng):
    """SIGKILLs a random worker of `master` every 100 ms, leaving at least
    one alive so the run keeps moving (restarts back off after each death)."""
    while not stop.wait(0.1):
        workers = children_of(master)
        if len(workers) >= 2:
            victim = rng.choice(workers)
            try:
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)
            except ProcessLookupError:
                pass


def test_every_request_gets_exactly_one_reply_while_workers_are_killed(components):
    c = components(broker_args=["--request-timeout", str(REQUEST_TIMEOUT), *FAST_HEARTBEATS],
                   worker_args=WORKER_FAST_HEARTBEATS, pools={"default": 4})
    master = c.pools["default"].pid
    record = {"sent": {}, "replies": collections.defaultdict(list), "errors": []}
    stop, kills = threading.Event(), []
    killer = threading.Thread(target=_killer, args=(master, stop, kills, random.Random(3)))

    def run(numbers):
        try:
            _run_connection(c.port, numbers, record)
        except Exception as error:  # noqa: BLE001 - reported below
            record["errors"].append(repr(error))

    senders = [threading.Thread(target=run, args=(range(k, REQUESTS, CONNECTIONS),))
               for k in range(CONNECTIONS)]
    started = time.monotonic()
    killer.start()
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(REQUESTS * 0.05 + 60)
    stop.set()
    killer.join(5)
    took = time.monotonic() - started
    assert not any(t.is_alive() for t in senders), "a client thread hangs"

    replies = record["replies"]
    missing = [n for n in range(REQUESTS) if not replies.get("@r%d" % n)]
    twice = {tag: lines for tag, lines in replies.items() if len(lines) > 1}
    strangers = [tag for tag in replies if not re.match(r"^@r\d+$", tag)
                 or int(tag[2:]) >= REQUESTS]
    wrong, late, outcomes, by_command = [], [], collections.Counter(), collections.Counter()
    for n in range(REQUESTS):
        for text, at in replies.get("@r%d" % n, [])[:1]:
            code = err_code(text)
            outcomes["OK" if code is None else "ERR " + code] += 1
            command = _request_line(n)[0].split()[1]
            by_command["%s %s" % (command, "OK" if code is None else "ERR " + code)] += 1
            _, check = _request_line(n)
            if code is None and not check(text):
                wrong.append((n, text))
            if code not in (None, "worker-died", "timeout"):
                wrong.append((n, text))
            if at - record["sent"][n] > REQUEST_TIMEOUT + 1.5:
                late.append((n, text, round(at - record["sent"][n], 2)))
    requeues = collections.Counter(r.get("command")
                                   for r in log_records(c.broker, "request queued again"))
    requeued = sum(requeues.values())
    print("exactly-once: %d requests in %.1fs, %d workers killed, %d requeued by the broker %s; "
          "outcomes: %s; by command: %s" % (REQUESTS, took, len(kills), requeued, dict(requeues),
                                            dict(sorted(outcomes.items())),
                                            dict(sorted(by_command.items()))))
    assert record["errors"] == [], record["errors"]
    assert missing == [], "%d requests without a reply: %s" % (len(missing), missing[:20])
    assert twice == {}, "requests answered more than once: %s" % list(twice.items())[:10]
    assert strangers == [], strangers
    assert wrong == [], wrong[:20]
    assert late == [], "replies after the deadline: %s" % late[:20]
    assert len(kills) >= 10, "only %d workers were killed: the test did not test" % len(kills)
    assert requeued + outcomes["ERR worker-died"] > 0, "no kill ever hit a busy worker"
    assert c.broker.alive() and c.gateway.alive() and c.pools["default"].alive()


# --------------------------------------------------------------------- 6. broker restart

def _broker_of(hub):
    found = [pid for pid in children_of(hub.pid)
             if Path((cmdline_of(pid) or [""])[0]).name == "sb-broker"]
    return found[0] if len(found) == 1 else None


def test_broker_killed_under_the_launcher(hub, clients):
    """kill -9 the broker with a request in flight: that client gets ERR
    unavailable within 3 s and keeps its connection; the launcher restarts
    the broker, gateway and workers reconnect by themselves, and the same
    connection is served again."""
    client = clients(hub.port)
    greeting = client.greeting
    tagged = Tagged(client)
    assert tagged.ask("echo before") == "OK before"
    slow_tag = tagged.send("sleep 3")
    sent = time.monotonic()
    with Client(hub.port) as watcher:
        wait_until(lambda: int(stats_of(watcher)["in_flight"]) >= 1, 3,
                   "the sleep to be in flight")
    broker = _broker_of(hub)
    assert broker, "no sb-broker child of the launcher: %s" % children_of(hub.pid)
    os.kill(broker, signal.SIGKILL)
    killed = time.monotonic()

    reply = tagged.wait(slow_tag, timeout=5)
    answered = time.monotonic() - killed
    assert err_code(reply) == "unavailable", reply
    assert answered <= 3.0, "in-flight request answered %.2fs after the kill" % answered

    new_broker = wait_until(lambda: (lambda pid: pid and pid != broker and pid)(_broker_of(hub)),
                            10, "the launcher to start a new broker")
    attempts = []

    def served(line, expected):
        text = tagged.ask(line, timeout=5)
        attempts.append(text)
        return text == expected

    wait_until(lambda: served("echo after", "OK after"), 10,
               "echo to work again on the same connection", ignore=(TimeoutError,))
    recovered = time.monotonic() - killed
    wait_until(lambda: served("sleep 0", "OK slept 0"), 10,
               "the slow pool to serve again", ignore=(TimeoutError,))
    # Both slow workers take requests again, including the one that was
    # running `sleep 3` when the broker died (it must not re-register busy).
    for _ in range(4):
        served("sleep 0", "OK slept 0")
    assert attempts[-4:] == ["OK slept 0"] * 4, attempts
    assert not [a for a in attempts if err_code(a) == "busy"], \
        "a worker still running the old command was handed new ones: %s" % attempts
    # The old worker's late `slept 3` must not reach us as a second reply.
    remaining = sent + 3.5 - time.monotonic()
    if remaining > 0:
        tagged.read_for(remaining)
    assert tagged.duplicates() == {}, tagged.duplicates()
    assert tagged.untagged == [], tagged.untagged
    assert not client.eof and client.greeting == greeting
    assert tagged.ask("ping") == "OK pong"
    errors = collections.Counter(err_code(a) for a in attempts if err_code(a))
    print("broker %d -> %d: in-flight ERR after %.2fs, echo back %.2fs after the kill; "
          "errors while it came back: %s" % (broker, new_broker, answered, recovered,
                                             dict(errors)))


# --------------------------------------------------------------------- 7. backpressure

def test_pipelining_client_is_paused_at_the_inflight_cap(components, clients):
    """A client that pipelines without reading: the gateway stops reading
    from it at --max-inflight, its memory stays flat, other clients are
    served as usual. Its requests go to a pool with one worker and a long
    sleep, so they stay in flight (echo would be answered as fast as it is
    read and never reach the cap); their 2 s deadline ends them after the
    client is gone, which lets the gateway notice that it left."""
    cap = 8
    config = """
[service stuck]
workers = 1

[command sleep]
service = stuck
timeout = 2
"""
    c = components(config, broker_args=["--queue-max", "100000"],
                   gateway_args=["--max-inflight", str(cap)], pools={"default": 1, "stuck": 1})
    monitor = clients(c.port)
    rss_before = vm_rss_kib(c.gateway.pid)
    # 5000 lines of ~8 KB (padded with spaces): 40 MB, far more than the
    # socket buffers on both sides can hold.
    line = ("sleep 30" + " " * 8000 + "\n").encode()
    payload = line * 5000
    hog = socket.create_connection(("127.0.0.1", c.port), timeout=5)
    hog.recv(200)                                         # greeting
    hog.settimeout(None)
    outcome = {}

    def pipeline():
        try:
            hog.sendall(payload)
            outcome["sent"] = "all"
        except OSError as error:
            outcome["sent"] = repr(error)

    sender = threading.Thread(target=pipeline)
    sender.start()
    try:
        wait_until(lambda: int(stats_of(monitor)["in_flight"]) >= cap, 5,
                   "the pipelining client to reach the cap")
        # Watch it for a second: it must stay at the cap, and the sender
        # must stay blocked (the gateway is not reading its data).
        # Sampled every 20 ms: a tight loop of `stats` would itself grow the
        # gateway's memory under ASan, whose quarantine keeps what is freed.
        peak, watched = 0, time.monotonic()
        while time.monotonic() - watched < 1.0:
            peak = max(peak, int(stats_of(monitor)["in_flight"]))
            time.sleep(0.02)
        rss_after = vm_rss_kib(c.gateway.pid)
        assert peak <= cap, "in_flight reached %d with --max-inflight %d" % (peak, cap)
        assert sender.is_alive(), "the gateway read all %d MB from a client at its cap (%s)" % (
            len(payload) >> 20, outcome)
        growth = (rss_after - rss_before) / 1024
        assert growth < 20, "gateway RSS grew by %.1f MB" % growth
        other = clients(c.port)
        assert other.request("echo unaffected", timeout=2) == "OK unaffected"
        assert other.request("ping", timeout=2) == "OK pong"
        print("paused at in_flight=%d (peak %d); gateway RSS %+.1f MB" % (
            cap, peak, growth))
    finally:
        # Reset (not FIN after 40 MB of unsent data): the client is gone.
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            hog.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        hog.close()
        sender.join(10)
    # Once its requests end (ERR timeout at 2 s), the gateway lets go of it.
    wait_until(lambda: stats_of(monitor)["connections"] == "2", 6,
               "the gateway to drop the departed pipelining client")
    assert c.gateway.alive()


def test_client_that_never_reads_is_disconnected(components, clients):
    """--max-output: a client whose unsent replies pass the limit is
    disconnected (and logged), others keep working."""
    c = components(gateway_args=["--max-output", "65536"], pools={"default": 2})
    other = clients(c.port)
    assert other.request("echo first") == "OK first"
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so the kernel cannot soak up the replies.
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(5)
    slow.connect(("127.0.0.1", c.port))
    payload = ("echo " + "x" * 10240 + "\n").encode() * 1000
    outcome = {}

    def flood():
        try:
            slow.sendall(payload)
            outcome["sent"] = "all"
        except OSError as error:
            outcome["sent"] = repr(error)

    sender = threading.Thread(target=flood)
    sender.start()
    try:
        record = wait_until(
            lambda: log_records(c.gateway, "client does not read its replies, disconnecting"),
            10, "the gateway to drop the client that does not read")
        assert int(record[0]["unsent_bytes"]) > 65536, record[0]["_line"]
        # Meanwhile and afterwards, another client is served.
        for n in range(5):
            assert other.request("echo other %d" % n, timeout=2) == "OK other %d" % n
        # The dropped client sees its connection end (after what was already sent).
        slow.setblocking(False)

        def closed():
            try:
                while True:
                    chunk = slow.recv(1 << 20)
                    if not chunk:
                        return True
            except BlockingIOError:
                return False
            except ConnectionResetError:
                return True

        wait_until(closed, 5, "the slow client's connection to be closed")
        wait_until(lambda: stats_of(other)["connections"] == "1", 3,
                   "the gateway to count only the other client")
    finally:
        slow.close()
        sender.join(10)
    assert c.gateway.alive()
    print("slow consumer dropped: %s; its sender: %s" % (record[0]["_line"], outcome))
