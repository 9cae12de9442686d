"""Broker, worker pools and gateway started separately on tcp:// ports:
queues, deadlines, missing services and the gateway's limits (§3.1, §5)."""
import os
import re
import signal
import time

from conftest import GREETING_RE, Client, children_of, pid_alive, stats_of, wait_until
from conftest import SLOW_POOL, wait_for_providers



def test_components_answer_the_protocol(components, clients):
    hub = components(pools={"default": 2})
    client = clients(hub.port)
    assert GREETING_RE.match(client.greeting), client.greeting
    client.send("ping", "echo over tcp", "hello eve")
    assert client.read_lines(3) == ["OK pong", "OK over tcp", "OK Hello EVE"]
    assert client.request("@x echo tagged") == "@x OK tagged"


def test_full_queue_answers_busy_at_once(components, clients):
    hub = components(SLOW_POOL, broker_args=["--queue-max", "2"],
                     pools={"default": 1, "slow": 1})
    client = clients(hub.port)
    # One runs, two wait in the broker's queue, the fourth does not fit.
    client.send("@a sleep 0.5", "@b sleep 0.5", "@c sleep 0.5", "@d sleep 0.5")
    first = client.read_line()
    assert re.match(r"^@d ERR busy\b", first), \
        "the 4th request should be refused before anything completes, got %r" % first
    rest = client.read_lines(3, timeout=5)
    assert rest == ["@a OK slept 0.5", "@b OK slept 0.5", "@c OK slept 0.5"]
    # The queue drained: the service takes requests again.
    assert client.request("sleep 0", timeout=5) == "OK slept 0"


def test_request_past_its_deadline_gets_timeout(components, clients):
    config = """
[command sleep]
timeout = 0.5
"""
    hub = components(config, pools={"default": 2})
    client = clients(hub.port)
    started = time.monotonic()
    reply = client.request("sleep 3", timeout=5)
    elapsed = time.monotonic() - started
    assert re.match(r"^ERR timeout\b", reply), reply
    assert 0.4 <= elapsed < 2.0, "ERR timeout came after %.2fs (deadline 0.5s)" % elapsed
    # The other worker still answers while the first sleeps on.
    assert client.request("echo alive") == "OK alive"


def test_late_reply_after_timeout_is_not_sent(components, clients):
    """Every request ends in exactly one reply: the worker's late answer to
    a request that already got ERR timeout is dropped."""
    config = """
[command sleep]
timeout = 0.5
"""
    hub = components(config, pools={"default": 1})
    client = clients(hub.port)
    client.send("sleep 1.2", "echo next")
    assert re.match(r"^ERR timeout\b", client.read_line(timeout=5))
    # `echo next` waits for the only worker, i.e. for the late `slept 1.2`.
    assert client.read_line(timeout=5) == "OK next"
    assert client.request("ping") == "OK pong"
    assert client.read_available(0.1) == [], "extra reply after the timeout"


def test_service_nobody_offers_gets_no_service(components, clients):
    # A pool section with no workers: valid config (the check wants a pool
    # for every service), yet no provider ever offers the service.
    config = """
[service nowhere]
workers = 0

[command hello]
service = nowhere
"""
    hub = components(config, broker_args=["--startup-grace", "0.2"], pools={"default": 1})
    broker_started = hub.broker_started_at
    # Wait past the broker's start-up grace (a condition on the clock, not a sleep).
    wait_until(lambda: time.monotonic() - broker_started > 0.5, 5, "the start-up grace to pass")
    client = clients(hub.port)
    reply = client.request("hello boo", timeout=3)
    assert re.match(r"^ERR no-service\b", reply), reply
    reply = client.request("@g hello you", timeout=3)
    assert re.match(r"^@g ERR no-service\b", reply), reply
    assert client.request("echo fine") == "OK fine"


def test_max_connections_refuses_with_busy_then_closes(components, clients):
    hub = components(gateway_args=["--max-connections", "2"], pools={"default": 1})
    first = clients(hub.port)
    # Readiness probes have come and gone; wait until the gateway has let them go.
    wait_until(lambda: stats_of(first)["connections"] == "1", 5,
               "the gateway to count only this connection")
    second = clients(hub.port)
    assert GREETING_RE.match(second.greeting), second.greeting
    third = clients(hub.port, greet=False)
    refusal = third.read_line()
    assert refusal.startswith("ERR busy"), refusal
    third.expect_eof()
    # The admitted clients are unaffected.
    assert first.request("ping") == "OK pong"
    assert second.request("echo two") == "OK two"
    # Once one leaves, a newcomer is greeted.
    second.close()
    wait_until(lambda: stats_of(first)["connections"] == "1", 5,
               "the gateway to notice the closed connection")
    fourth = clients(hub.port)
    assert GREETING_RE.match(fourth.greeting), fourth.greeting
    assert fourth.request("echo four") == "OK four"


def test_inflight_cap_still_answers_everything_in_order(components, clients):
    hub = components(SLOW_POOL, gateway_args=["--max-inflight", "4"],
                     pools={"default": 2, "slow": 1})
    client = clients(hub.port)
    watcher = clients(hub.port)
    lines, expected = [], []
    for n in range(40):
        if n % 8 == 3:
            lines.append("sleep 0.1")
            expected.append("OK slept 0.1")
        else:
            lines.append("echo %d" % n)
            expected.append("OK %d" % n)
    client.send(*lines)
    replies, most_in_flight = [], 0
    deadline = time.monotonic() + 15
    while len(replies) < 40 and time.monotonic() < deadline:
        most_in_flight = max(most_in_flight, int(stats_of(watcher)["in_flight"]))
        replies += client.read_available(0.02)
    assert replies == expected
    # Only this client sends to the broker, and it may hold at most 4 open requests.
    assert most_in_flight <= 4, "gateway had %d requests in flight" % most_in_flight


def test_standalone_pool_forks_the_requested_workers(components, clients):
    hub = components(pools={"default": 4})
    pool = hub.pools["default"]
    wait_until(lambda: len(children_of(pool.pid)) >= 4, 5, "the pool to fork 4 workers")
    workers = children_of(pool.pid)
    assert len(workers) == 4, "sb-workers --workers 4 has children %s" % workers
    wait_for_providers(hub.port, "default", 4)
    # Tagged requests spread over the pool: all answered.
    client = clients(hub.port)
    client.send(*["@%d echo %d" % (n, n) for n in range(8)])
    assert sorted(client.read_lines(8)) == sorted("@%d OK %d" % (n, n) for n in range(8))


def test_killed_worker_is_replaced(components, clients):
    hub = components(pools={"default": 2})
    pool = hub.pools["default"]
    wait_until(lambda: len(children_of(pool.pid)) >= 2, 5, "the pool to fork 2 workers")
    before = children_of(pool.pid)
    assert len(before) == 2, before
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not pid_alive(victim), 5, "the killed worker %d to be gone" % victim)
    after = wait_until(lambda: (lambda kids: len(kids) == 2 and kids)(children_of(pool.pid)),
                       10, "the pool to be back at 2 workers")
    assert victim not in after
    assert set(after) - set(before), "no new worker pid: %s -> %s" % (before, after)
    # Every request is answered (several, so both providers get used).
    client = clients(hub.port)
    for n in range(6):
        assert client.request("echo after-kill %d" % n, timeout=5) == "OK after-kill %d" % n


def test_max_line_flag(components, clients):
    hub = components(gateway_args=["--max-line", "16"], pools={"default": 1})
    client = clients(hub.port)
    exactly = "echo " + "a" * 11           # 16 bytes
    over = "echo " + "b" * 12              # 17 bytes
    client.send(exactly, over, "ping")
    assert client.read_line() == "OK " + "a" * 11
    assert re.match(r"^ERR too-long\b", client.read_line())
    assert client.read_line() == "OK pong"


def test_client_leaving_with_requests_in_flight(components, clients):
    hub = components(SLOW_POOL, pools={"default": 1, "slow": 1})
    leaver = clients(hub.port)
    leaver.send("sleep 0.3", "@t sleep 0.3", "echo gone")
    watcher = clients(hub.port)
    wait_until(lambda: int(stats_of(watcher)["in_flight"]) >= 2, 5, "requests in flight")
    leaver.close()

    def orphans_done():
        assert hub.gateway.alive(), \
            "sb-gateway-tcp died (status %s) after a client left with replies pending" \
            % hub.gateway.popen.returncode
        return int(stats_of(watcher)["in_flight"]) == 0

    # Their replies come back to a connection that is gone, and are dropped.
    wait_until(orphans_done, 5, "the orphaned requests to finish")
    assert hub.gateway.alive() and hub.broker.alive()
    assert watcher.request("echo still fine") == "OK still fine"
    assert watcher.request("sleep 0", timeout=5) == "OK slept 0"
    assert watcher.read_available(0.1) == [], "a reply for the closed client leaked here"


def test_new_connections_use_fresh_client_ids(components):
    hub = components(pools={"default": 1})
    ids = set()
    for _ in range(3):
        with Client(hub.port) as client:
            match = GREETING_RE.match(client.greeting)
            assert match, client.greeting
            ids.add(match.group(2))
    assert len(ids) == 3, ids
