"""SIGPIPE is ignored in every program (issue 11 §3.6): a broker and a pool
whose stderr is a pipe nobody reads any more (a logger that went away) keep
running when they log, and keep serving."""
import re
import signal
import subprocess

from conftest import (Client, Proc, binary, children_of, clean_env, dealer, free_port, try_request,
                      wait_until)


def start_with_stderr_pipe(processes, tmp_path, name, argv):
    """Starts `argv` with stderr (and stdout) on a pipe; returns the Proc and the read end."""
    popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=clean_env(), cwd=str(tmp_path))
    proc = Proc(name, argv, tmp_path / ("%s.log-unavailable" % name), popen)
    processes.procs.append(proc)
    return proc


def broker_malformed(port):
    with Client(port, timeout=2.0) as client:
        reply = client.request("stats broker")
    match = re.search(r"\bmalformed=(\d+)\b", reply)
    assert match, reply
    return int(match.group(1))


def test_broker_and_pool_survive_a_closed_stderr_pipe(processes, tmp_path, zctx):
    frontend = "tcp://127.0.0.1:%d" % free_port()
    backend = "tcp://127.0.0.1:%d" % free_port()
    port = free_port()
    broker = start_with_stderr_pipe(processes, tmp_path, "sb-broker", [
        binary("sb-broker"), "--frontend", frontend, "--backend", backend])
    pool = start_with_stderr_pipe(processes, tmp_path, "sb-workers", [
        binary("sb-workers"), "--service", "default", "--workers", "1", "--broker", backend,
        "--graceful-timeout", "1"])
    processes.start("sb-gateway-tcp", [binary("sb-gateway-tcp"), "--listen",
                                       "127.0.0.1:%d" % port, "--broker", frontend])
    wait_until(lambda: try_request(port, "echo ready", "OK ready"), 15, "the hub to answer")

    # The reader goes away.
    broker.popen.stdout.close()
    pool.popen.stdout.close()

    # The broker logs a warning for the first malformed envelope.
    garbage = dealer(zctx, frontend, b"garbage")
    garbage.send(b"\x00not msgpack")
    wait_until(lambda: broker_malformed(port) >= 1, 10, "the broker to count the garbage")
    # The pool logs as it adds a worker (and the new worker logs as it starts).
    pool.popen.send_signal(signal.SIGTTIN)
    wait_until(lambda: len(children_of(pool.pid)) == 2, 10, "the pool to fork a second worker")
    # And again, to log more than one line into the dead pipe.
    garbage.send(b"\x00again")
    garbage.send(b"\x00and again")
    wait_until(lambda: broker_malformed(port) >= 3, 10, "the broker to count more garbage")

    assert broker.alive(), "the broker died writing to a closed pipe (%s)" % broker.popen.returncode
    assert pool.alive(), "the pool died writing to a closed pipe (%s)" % pool.popen.returncode
    for n in range(4):
        assert try_request(port, "echo after%d" % n, "OK after%d" % n), "the hub stopped serving"
    garbage.close()
