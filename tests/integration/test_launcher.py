"""The all-in-one launcher as processes: pool sizes, supervision, shutdown,
and the main promise — slow commands never block new clients (§1, §2, §5)."""
import os
import signal
import time

from conftest import (STOP_TIMEOUT, Client, GREETING_RE, children_of, cmdline_of,
                      descendants_of, pid_alive, stats_of, wait_until)


def test_workers_flag_forks_that_many_default_workers(launch_hub, clients):
    hub = launch_hub("--workers", "3")
    master = wait_until(lambda: hub.pool_master("default"), 5, "the default pool's master")
    wait_until(lambda: len(children_of(master)) >= 3, 5, "3 default workers")
    workers = children_of(master)
    assert len(workers) == 3, "default pool %d has children %s" % (master, workers)
    for pid in workers:
        assert cmdline_of(pid)[:1] == cmdline_of(master)[:1]
    # The shipped config's `slow` pool keeps its own size.
    slow = wait_until(lambda: hub.pool_master("slow"), 5, "the slow pool's master")
    wait_until(lambda: len(children_of(slow)) >= 2, 5, "2 slow workers")
    assert len(children_of(slow)) == 2
    assert clients(hub.port).request("echo three") == "OK three"


def test_launcher_replaces_a_killed_worker(hub, clients):
    master = wait_until(lambda: hub.pool_master("default"), 5, "the default pool's master")
    wait_until(lambda: len(children_of(master)) >= 2, 5, "2 default workers")
    before = children_of(master)
    victim = before[-1]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not pid_alive(victim), 5, "the killed worker to be gone")
    after = wait_until(lambda: (lambda kids: len(kids) == 2 and kids)(children_of(master)),
                       10, "the default pool to be back at 2 workers")
    assert victim not in after and set(after) - set(before), (before, after)
    client = clients(hub.port)
    for n in range(6):
        assert client.request("echo again %d" % n, timeout=5) == "OK again %d" % n


def test_sigterm_stops_every_child_and_removes_runtime_dir(launch_hub):
    hub = launch_hub()
    assert hub.runtime_dir.is_dir()
    family = descendants_of(hub.pid)
    # broker, 2 pools (default, slow) with 2 workers each, gateway
    assert len(family) >= 8, "expected broker, gateway, 2 pools and 4 workers: %s" % family
    hub.proc.popen.send_signal(signal.SIGTERM)
    code = hub.proc.popen.wait(timeout=STOP_TIMEOUT)
    wait_until(lambda: not [pid for pid in family if pid_alive(pid)], 5,
               "every child of the launcher to be gone")
    assert not hub.runtime_dir.exists(), "runtime dir %s left behind: %s" % (
        hub.runtime_dir, list(hub.runtime_dir.iterdir()))
    print("launcher exit status: %s" % code)


def test_sigterm_stop_exits_with_status_zero(launch_hub):
    """A stop on request is a success for whoever supervises the launcher
    (systemd, docker): exit status 0."""
    hub = launch_hub()
    hub.proc.popen.send_signal(signal.SIGTERM)
    code = hub.proc.popen.wait(timeout=STOP_TIMEOUT)
    assert code == 0, "launcher exited with status %s after a clean SIGTERM stop" % code


def test_busy_slow_pool_never_delays_new_clients(hub, clients):
    """The main promise: with every `slow` worker busy in `sleep 3`, a new
    connection is greeted and `echo` answers within 100 ms each."""
    sleeper = clients(hub.port)
    sleeper.send("@one sleep 3", "@two sleep 3")
    watcher = clients(hub.port)
    wait_until(lambda: int(stats_of(watcher)["in_flight"]) >= 2, 5,
               "both sleeps to be in flight")

    started = time.monotonic()
    newcomer = Client(hub.port, timeout=2)
    greeted = time.monotonic()
    try:
        reply = newcomer.request("echo fast", timeout=2)
        answered = time.monotonic()
        assert GREETING_RE.match(newcomer.greeting), newcomer.greeting
        assert reply == "OK fast"
        assert greeted - started < 0.100, "greeting took %.1f ms" % ((greeted - started) * 1e3)
        assert answered - greeted < 0.100, "echo took %.1f ms" % ((answered - greeted) * 1e3)
    finally:
        newcomer.close()
    # The sleeps were still running all along, and still finish.
    assert sleeper.read_available(0.01) == [], "a sleep ended early"
    assert sorted(sleeper.read_lines(2, timeout=5)) == ["@one OK slept 3", "@two OK slept 3"]
