"""sb-workers as a process (issue 3 item 8, brief §5): TERM finishes the
command in hand within --graceful-timeout, INT/QUIT stop at once, HUP is a
rolling restart with the config re-read and no request failing, TTIN/TTOU
add/remove a worker (the count survives HUP), a worker that dies at
start-up is restarted with growing delays, --max-requests recycles."""
import datetime
import re
import signal
import time

import pytest

from conftest import Client, binary, children_of, pid_alive, try_request, wait_until
from conftest import SLOW_POOL, EchoLoad, log_records



# --------------------------------------------------------------------- local helpers




def log_time(record):
    return datetime.datetime.strptime(record["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")


def wakes(pid):
    """Voluntary context switches of the main thread of `pid` (-1 if gone):
    an idle worker sleeps in zmq_poll and wakes for heartbeats and requests."""
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return -1


HOLDING = ["--queue-max", "0"]


def send_held(client, line, worker):
    """Sends `line` and makes sure the pool's only worker has it before the
    test signals the pool. Workers log nothing per request, so: the broker
    (run with --queue-max 0) takes one gateway's requests in order, and a
    probe right behind `line` refused `busy` proves `line` was handed to
    the worker; the worker waking since proves it read something."""
    before = wakes(worker)
    client.send(line, "@probe sleep 0")
    reply = client.read_line(timeout=5)
    assert reply.startswith("@probe ERR busy"), "probe: %r (the worker should be busy)" % reply
    wait_until(lambda: wakes(worker) > before, 2, "worker %d to take %r" % (worker, line))


def only_worker(pool):
    workers = wait_until(lambda: (lambda kids: len(kids) == 1 and kids)(children_of(pool.pid)),
                         5, "pool %d to have exactly 1 worker" % pool.pid)
    return workers[0]


def wait_exit(proc, timeout):
    """Waits for `proc` to exit; returns (status, seconds it took)."""
    started = time.monotonic()
    status = proc.popen.wait(timeout=timeout)
    return status, time.monotonic() - started


def replies_so_far(port):
    with Client(port) as client:
        reply = client.request("stats")
    return int(re.search(r"\breplies=(\d+)", reply).group(1))


# --------------------------------------------------------------------- TERM

def test_term_lets_the_command_in_hand_finish(components, clients):
    c = components(SLOW_POOL, broker_args=HOLDING, pools={"default": 1, "slow": 1},
                   worker_args=("--graceful-timeout", "3"))
    pool = c.pools["slow"]
    worker = only_worker(pool)
    client = clients(c.port)
    send_held(client, "sleep 1", worker)
    pool.popen.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert client.read_line(timeout=4) == "OK slept 1"
    answered = time.monotonic() - signalled
    status, _ = wait_exit(pool, 5)
    took = time.monotonic() - signalled
    assert status == 0, "sb-workers exited %s after TERM" % status
    assert answered < took + 0.05
    # It waited for the command (about 1 s left), and not past the timeout.
    assert 0.7 <= took <= 3.5, "pool exited %.2fs after TERM" % took
    assert not pid_alive(worker)
    assert log_records(pool, "graceful stop timed out, killing") == []
    assert [r.get("mode") for r in log_records(pool, "stopping")] == ["graceful"]
    # The worker said goodbye: the broker removed it at once, not as dead.
    removals = log_records(c.broker, "provider removed")
    assert [r.get("reason") for r in removals] == ["left"], [r["_line"] for r in removals]
    print("TERM: reply %.2fs, pool exited %.2fs after the signal" % (answered, took))


def test_term_is_bounded_by_the_graceful_timeout(components, clients):
    c = components(SLOW_POOL, broker_args=HOLDING, pools={"default": 1, "slow": 1},
                   worker_args=("--graceful-timeout", "1"))
    pool = c.pools["slow"]
    worker = only_worker(pool)
    client = clients(c.port)
    send_held(client, "sleep 5", worker)
    pool.popen.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    status, took = wait_exit(pool, 4)
    assert status == 0, status
    assert 0.9 <= took <= 1.8, "pool exited %.2fs after TERM (--graceful-timeout 1)" % took
    assert log_records(pool, "graceful stop timed out, killing"), pool.log_tail()
    # The client is not left waiting: the broker sees the death.
    reply = client.read_line(timeout=4)
    assert re.match(r"^ERR worker-died\b", reply), reply
    print("TERM past the timeout: pool exited %.2fs, ERR after %.2fs"
          % (took, time.monotonic() - signalled))


# --------------------------------------------------------------------- INT / QUIT

@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGQUIT], ids=["INT", "QUIT"])
def test_int_and_quit_stop_at_once(components, clients, signo):
    c = components(SLOW_POOL, broker_args=HOLDING, pools={"default": 1, "slow": 1},
                   worker_args=("--graceful-timeout", "10"))
    pool = c.pools["slow"]
    worker = only_worker(pool)
    client = clients(c.port)
    send_held(client, "sleep 5", worker)
    pool.popen.send_signal(signo)
    signalled = time.monotonic()
    status, took = wait_exit(pool, 5)
    assert took <= 1.0, "pool took %.2fs to stop on %s" % (took, signo.name)
    assert status == 0, status
    assert not pid_alive(worker)
    assert [r.get("mode") for r in log_records(pool, "stopping")] == ["fast"]
    reply = client.read_line(timeout=4)
    assert re.match(r"^ERR worker-died\b", reply), reply
    print("%s: pool exited %.2fs, client got %r after %.2fs"
          % (signo.name, took, reply, time.monotonic() - signalled))


# --------------------------------------------------------------------- HUP

def test_hup_rolls_every_worker_and_rereads_the_config(components, clients):
    c = components("[service default]\nworkers = 2\n", pools={"default": 2})
    pool = c.pools["default"]
    old = children_of(pool.pid)
    assert len(old) == 2, old
    client = clients(c.port)
    # The file changes; running workers keep their settings until HUP.
    c.config_path.write_text("[service default]\nworkers = 2\n\n[workers]\nmax_sleep = 0.2\n")
    assert client.request("sleep 0.5") == "OK slept 0.5"

    load = EchoLoad(c.port, 3)
    try:
        wait_until(lambda: replies_so_far(c.port) >= 100, 10, "the echo loops to get going")
        pool.popen.send_signal(signal.SIGHUP)
        new = wait_until(lambda: (lambda kids: len(kids) == 2 and not set(kids) & set(old)
                                  and kids)(children_of(pool.pid)),
                         5, "both workers to be replaced")
        wait_until(lambda: not any(pid_alive(pid) for pid in old), 5, "the old workers to exit")
        after = replies_so_far(c.port)
        wait_until(lambda: replies_so_far(c.port) >= after + 100, 10,
                   "100 more echoes after the restart")
    finally:
        done, failures = load.finish()
    assert failures == [], failures[:10]
    assert log_records(pool, "rolling restart"), pool.log_tail()
    reply = client.request("sleep 0.5")
    assert re.match(r"^ERR bad-args\b", reply), "max_sleep not re-read on HUP: %r" % reply
    assert client.request("sleep 0.1") == "OK slept 0.1"
    died = log_records(pool, "child died, restarting")
    assert died == [], [r["_line"] for r in died]
    print("HUP: workers %s -> %s, %d echoes during it, none failed" % (old, new, done))


# --------------------------------------------------------------------- TTIN / TTOU

def _wait_count(pool, count, what):
    return wait_until(lambda: (lambda kids: len(kids) == count and kids)(children_of(pool.pid)),
                      5, what)


def test_ttin_ttou_resize_and_the_size_survives_hup(components, clients):
    c = components(pools={"default": 2})
    pool = c.pools["default"]
    two = _wait_count(pool, 2, "2 workers")

    pool.popen.send_signal(signal.SIGTTIN)
    three = _wait_count(pool, 3, "a third worker after TTIN")
    assert set(two) < set(three)
    pool.popen.send_signal(signal.SIGTTOU)
    back = _wait_count(pool, 2, "2 workers after TTOU")
    assert set(back) < set(three)
    # The newest one was retired.
    assert set(three) - set(back) == set(three) - set(two)
    sizes = [r.get("workers") for r in log_records(pool, "pool resized")]
    assert sizes == ["3", "2"], sizes

    pool.popen.send_signal(signal.SIGTTIN)
    before_hup = _wait_count(pool, 3, "3 workers after the second TTIN")
    pool.popen.send_signal(signal.SIGHUP)
    after_hup = wait_until(lambda: (lambda kids: len(kids) == 3 and not set(kids) & set(before_hup)
                                    and kids)(children_of(pool.pid)),
                           5, "3 new workers after HUP")
    restart = log_records(pool, "rolling restart")
    assert restart and restart[0].get("workers") == "3", restart
    client = clients(c.port)
    for n in range(6):
        assert client.request("echo %d" % n) == "OK %d" % n
    assert len(children_of(pool.pid)) == 3
    print("TTIN/TTOU: %s -> %s -> %s; HUP kept 3: %s" % (two, three, back, after_hup))


# --------------------------------------------------------------------- crash-loop brake

def test_worker_dying_at_start_up_is_restarted_with_growing_delays(processes):
    pool = processes.start("sb-workers-crashing", [
        binary("sb-workers"), "--broker", "tcp://nonsense", "--workers", "1"])

    def planned_past_three_seconds():
        """True once the next planned start is 3 s or more after the first:
        the first 3 s of the loop are then all in the log."""
        starts = log_records(pool, "child started")
        deaths = log_records(pool, "child died, restarting")
        if not starts or not deaths:
            return False
        next_start = log_time(deaths[-1]) + datetime.timedelta(
            milliseconds=int(deaths[-1]["restart_in_ms"]))
        return (next_start - log_time(starts[0])).total_seconds() >= 3.0

    wait_until(planned_past_three_seconds, 10, "three seconds of restarts")
    assert pool.alive(), "the pool master itself died: %s" % pool.log_tail()
    starts = log_records(pool, "child started")
    first = log_time(starts[0])
    in_three = [r for r in starts if (log_time(r) - first).total_seconds() <= 3.0]
    deaths = log_records(pool, "child died, restarting")
    delays = [int(r["restart_in_ms"]) for r in deaths]
    print("crash loop: %d forks in the first 3 s, delays %s ms" % (len(in_three), delays))
    assert len(in_three) < 15, "fork storm: %d forks in 3 s" % len(in_three)
    assert len(deaths) >= 4, pool.log_tail()
    assert all(r.get("exit_status") == "1" for r in deaths), [r["_line"] for r in deaths]
    assert delays[0] >= 50, delays
    assert all(b > a for a, b in zip(delays, delays[1:])), "delays do not grow: %s" % delays
    # The delay is honoured: each start comes no sooner than announced.
    for death, start in zip(deaths, starts[1:]):
        gap_ms = (log_time(start) - log_time(death)).total_seconds() * 1000
        assert gap_ms >= int(death["restart_in_ms"]) - 5, (death["_line"], start["_line"])


# --------------------------------------------------------------------- --max-requests

def test_max_requests_recycles_the_worker(components, clients):
    c = components(pools={"default": 1}, worker_args=("--graceful-timeout", "1",
                                                      "--max-requests", "3"))
    pool = c.pools["default"]
    first = only_worker(pool)
    client = clients(c.port)
    replies = [client.request("echo n%d" % n, timeout=5) for n in range(10)]
    assert replies == ["OK n%d" % n for n in range(10)]
    # 10 requests (plus the start-up probe) at 3 per worker: 3 recycles at least.
    exits = wait_until(lambda: (lambda found: len(found) >= 3 and found)(
        log_records(pool, "child exited, restarting")), 5, "3 recycled workers")
    assert all(r.get("exit_status") == "0" and r.get("restart_in_ms") == "0" for r in exits), \
        [r["_line"] for r in exits]
    now = only_worker(pool)
    assert now != first and not pid_alive(first)
    assert log_records(pool, "child died, restarting") == []
    assert try_request(c.port, "echo still", "OK still")
    print("max-requests 3: %d recycles, worker %d -> %d" % (len(exits), first, now))
