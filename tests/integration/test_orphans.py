"""Nothing started for a request outlives its worker (issue 11 §3.3): the
sb-workers master is a subreaper, each worker a session of its own, and
when a worker dies (kill -9, the watchdog's SIGALRM, a graceful stop that
runs out of time and ends in SIGKILL) the master kills every process left
in its session and reaps them.

A program that leaves the session (setsid) is still reparented to the
master when its parent dies: the master also kills every child of its own
that is not a worker.

The program is a script that starts a long `sleep` in the background,
writes both pids to files and waits; the worker running it is found as the
script's parent."""
import contextlib
import os
import signal

from conftest import _read_stat, children_of, log_records, pid_alive, wait_until
from test_external_commands import config_with, kill_if_alive, make_script, read_pid

SIGALRM_BIT = 1 << (signal.SIGALRM - 1)


# The background sleep, in the worker's session or in one of its own (it records its own pid).
IN_SESSION = "sleep 300 &\necho $! > %(d)s/child.tmp && mv %(d)s/child.tmp %(d)s/child.pid\n"
OWN_SESSION = ("setsid sh -c 'echo $$ > %(d)s/child.tmp && mv %(d)s/child.tmp %(d)s/child.pid"
               " && exec sleep 300' &\n")


def hanging_command(tmp_path, timeout, background=IN_SESSION):
    script = make_script(tmp_path, "hang.sh",
                         (background
                          + "echo $$ > %(d)s/main.tmp && mv %(d)s/main.tmp %(d)s/main.pid\n"
                          "wait\n") % {"d": tmp_path})
    return config_with(tmp_path, "[command hang]\nexec = %s\ntimeout = %d\n" % (script, timeout))


@contextlib.contextmanager
def hanging(components, clients, tmp_path, timeout, background=IN_SESSION, **kwargs):
    """A pool of one worker running `hang` (its reply not awaited): yields
    (pool, script pid, its child's pid, worker pid); kills what is left."""
    c = components(hanging_command(tmp_path, timeout, background), pools={"default": 1}, **kwargs)
    pool = c.pools["default"]
    main = child = None
    try:
        clients(c.port).send("hang")
        main, child = wait_until(
            lambda: read_pid(tmp_path / "main.pid") and read_pid(tmp_path / "child.pid")
            and (read_pid(tmp_path / "main.pid"), read_pid(tmp_path / "child.pid")),
            10, "the script to record its pids")
        worker = _read_stat(main)[1]
        assert worker in children_of(pool.pid), "the script's parent %d is not a worker of %d" % (
            worker, pool.pid)
        yield c, pool, main, child, worker
    finally:
        kill_if_alive(main, child)


def wait_gone(main, child):
    wait_until(lambda: not pid_alive(main) and not pid_alive(child), 10,
               "the script %d and its child %d to be gone" % (main, child))


def pending_signals(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("ShdPnd:"):
                return int(line.split()[1], 16)
    return 0


def test_kill_9_of_a_worker_kills_its_program(components, clients, tmp_path):
    with hanging(components, clients, tmp_path, 60) as (c, pool, main, child, worker):
        os.kill(worker, signal.SIGKILL)
        wait_gone(main, child)
        # Logged once the master has also looked for orphans outside the session.
        wait_until(lambda: log_records(pool, "killed what a dead worker left running"), 10,
                   "the master to log what it killed")
        # The replacement serves; the master reaped what it killed.
        wait_until(lambda: len(children_of(pool.pid)) == 1 and worker not in children_of(pool.pid),
                   10, "the pool to replace its worker")
        assert clients(c.port).request("echo after", timeout=10) == "OK after"
        assert [p for p in (main, child) if _read_stat(p) is not None] == [], \
            "a killed program was not reaped"


def test_kill_9_of_a_worker_kills_a_program_that_left_its_session(components, clients, tmp_path):
    with hanging(components, clients, tmp_path, 60, OWN_SESSION) as (c, pool, main, child, worker):
        assert os.getsid(child) == child != os.getsid(main), "the sleep did not leave the session"
        os.kill(worker, signal.SIGKILL)
        # Killed and reaped by the master: gone from /proc altogether.
        wait_until(lambda: _read_stat(main) is None and _read_stat(child) is None, 10,
                   "the script %d and its setsid child %d to be gone from /proc" % (main, child))
        killed = lambda: log_records(pool, "killed what a dead worker left running")  # noqa: E731
        wait_until(killed, 10, "the master to log what it killed")
        assert killed()[0].get("worker_pid") == str(worker), pool.log_tail()
        wait_until(lambda: len(children_of(pool.pid)) == 1 and worker not in children_of(pool.pid),
                   10, "the pool to replace its worker")
        assert clients(c.port).request("echo after", timeout=10) == "OK after"


def test_watchdog_kill_of_a_worker_kills_its_program(components, clients, tmp_path):
    """The worker is stopped (SIGSTOP) so that its own job timeout cannot
    act; once its watchdog's SIGALRM is pending it is continued and dies of
    it."""
    with hanging(components, clients, tmp_path, 1) as (_, pool, main, child, worker):
        os.kill(worker, signal.SIGSTOP)
        try:
            wait_until(lambda: pending_signals(worker) & SIGALRM_BIT, 10,
                       "the watchdog's SIGALRM to be pending on worker %d" % worker)
        finally:
            os.kill(worker, signal.SIGCONT)
        wait_gone(main, child)
        # The master kills what the worker left before it logs the death.
        died = lambda: [r for r in log_records(pool, "child died, restarting")  # noqa: E731
                        if r.get("child_pid") == str(worker)]
        wait_until(died, 10, "the master to log the death of worker %d" % worker)
        assert died()[0].get("signal") == "Alarm clock", pool.log_tail()


def test_graceful_stop_ending_in_sigkill_kills_the_program(components, clients, tmp_path):
    with hanging(components, clients, tmp_path, 60,
                 worker_args=("--graceful-timeout", "1")) as (_, pool, main, child, _worker):
        os.kill(pool.pid, signal.SIGTERM)
        pool.popen.wait(timeout=10)
        assert log_records(pool, "graceful stop timed out, killing"), pool.log_tail()
        wait_gone(main, child)
