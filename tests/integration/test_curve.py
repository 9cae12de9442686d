"""CURVE between components (issue 7): keys made by `switchboard keygen`,
the broker admits only peers whose public certificate is in its allowed
directory, and says so in its log when it refuses one. Every process runs
on 127.0.0.1 over tcp://, as on separate hosts."""
import shutil
import subprocess

import pytest

from conftest import (Client, READ_TIMEOUT, STARTUP_TIMEOUT, binary, free_port, log_records,
                      wait_until)


@pytest.fixture
def keys(tmp_path):
    """Key pairs for the broker, a gateway, a worker pool and a stranger,
    and the broker's allowed directory (gateway and workers only)."""
    made = {}
    for name in ("broker", "gateway", "workers", "stranger"):
        path = tmp_path / name
        result = subprocess.run([binary("switchboard"), "keygen", str(path)],
                                capture_output=True, text=True, timeout=READ_TIMEOUT)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [str(path), str(path) + "_secret"]
        made[name] = path
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    for name in ("gateway", "workers"):
        shutil.copy(made[name], allowed / name)
    made["allowed"] = allowed
    return made


def client_args(keys, name):
    return ["--curve-secret", "%s_secret" % keys[name], "--curve-server", str(keys["broker"])]


@pytest.fixture
def secured(components, keys):
    """Broker, one pool and the TCP gateway, all with allowed keys."""
    return components(
        broker_args=["--curve-secret", "%s_secret" % keys["broker"],
                     "--curve-allow", str(keys["allowed"])],
        gateway_args=client_args(keys, "gateway"),
        worker_args=["--graceful-timeout", "1", *client_args(keys, "workers")])


def test_with_the_right_keys_everything_works(secured, clients):
    client = clients(secured.port)
    assert client.request("echo over curve") == "OK over curve"
    assert client.request("hello curve") == "OK Hello CURVE"
    assert client.request("stats broker").startswith("OK ")


def start_gateway(processes, c, *extra):
    port = free_port()
    proc = processes.start("sb-gateway-tcp-extra", [
        binary("sb-gateway-tcp"), "--listen", "127.0.0.1:%d" % port, "--broker", c.frontend,
        *extra])
    wait_until(lambda: proc.alive() and _greets(port), STARTUP_TIMEOUT,
               "the extra gateway on port %d to greet" % port)
    return proc, port


def _greets(port):
    try:
        with Client(port, timeout=1.0):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("who", ["stranger", "plain"])
def test_a_component_without_an_allowed_key_is_refused_and_logged(secured, processes, keys,
                                                                   who):
    # A short --broker-wait: its held request is refused soon, whatever the
    # link's state looks like while ZeroMQ retries the handshake.
    extra = client_args(keys, "stranger") if who == "stranger" else []
    proc, port = start_gateway(processes, secured, "--broker-wait", "1", *extra)
    refusals = lambda: log_records(secured.broker, "peer refused")  # noqa: E731
    wait_until(refusals, STARTUP_TIMEOUT, "the broker to log the refused %s gateway" % who)
    record = refusals()[0]
    assert record["socket"] == "frontend"
    expected = "allowed directory" if who == "stranger" else "does not speak CURVE"
    assert expected in record["reason"], record["_line"]
    # Its clients are told the broker cannot be reached; the others carry on.
    with Client(port, timeout=STARTUP_TIMEOUT) as client:
        assert client.request("echo hi").startswith("ERR unavailable")
    with Client(secured.port) as client:
        assert client.request("echo still here") == "OK still here"
    if who == "stranger":
        wait_until(lambda: log_records(proc, "the broker refused this link (CURVE keys)"),
                   STARTUP_TIMEOUT, "the refused gateway to log why")


def test_curve_settings_that_cannot_work_are_refused_at_start(processes, keys, tmp_path):
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    cases = [
        ([binary("sb-broker"), "--frontend", endpoint, "--backend",
          "tcp://127.0.0.1:%d" % free_port(), "--curve-secret", "%s_secret" % keys["broker"]],
         "needs --curve-allow"),
        ([binary("sb-gateway-tcp"), "--listen", "127.0.0.1:%d" % free_port(), "--broker", endpoint,
          "--curve-secret", "%s_secret" % keys["gateway"]], "--curve-server FILE"),
        ([binary("sb-gateway-tcp"), "--listen", "127.0.0.1:%d" % free_port(), "--broker", endpoint,
          "--curve-secret", str(tmp_path / "missing")], "cannot read CURVE certificate"),
    ]
    for argv, message in cases:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=STARTUP_TIMEOUT)
        assert result.returncode == 2, (argv, result.stderr)
        assert message in result.stderr, result.stderr
