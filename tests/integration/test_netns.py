"""Several hosts without Docker (issue 7): the broker, a worker pool and the
TCP gateway each in a network namespace of their own, linked by veth pairs
that this test creates (and removes), talking tcp:// with CURVE, as three
hosts would. A client inside the gateway's namespace runs a part of the
suite through them. Needs root (ip netns)."""
import json
import os
import subprocess
import textwrap
import uuid

import pytest

from conftest import (STARTUP_TIMEOUT, binary, log_records, wait_until)

# One /30 per link: the broker's side is .1, the other host's .2.
LINKS = {"workers": "10.213.1", "gateway": "10.213.2"}


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=check)


@pytest.fixture
def hosts():
    """Namespaces broker, workers, gateway; veths broker<->workers and broker<->gateway."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root to create network namespaces (ip netns)", pytrace=False)
    tag = uuid.uuid4().hex[:6]
    names = {role: "sb%s-%s" % (tag, role) for role in ("broker", "workers", "gateway")}
    try:
        for name in names.values():
            ip("netns", "add", name)
            ip("-n", name, "link", "set", "lo", "up")
        for role, prefix in LINKS.items():
            here, there = "sb%s%s0" % (tag, role[0]), "sb%s%s1" % (tag, role[0])
            ip("link", "add", here, "type", "veth", "peer", "name", there)
            ip("link", "set", here, "netns", names["broker"])
            ip("link", "set", there, "netns", names[role])
            ip("-n", names["broker"], "addr", "add", prefix + ".1/30", "dev", here)
            ip("-n", names[role], "addr", "add", prefix + ".2/30", "dev", there)
            ip("-n", names["broker"], "link", "set", here, "up")
            ip("-n", names[role], "link", "set", there, "up")
        yield names
    finally:
        for name in names.values():   # removing a namespace removes its veth ends
            ip("netns", "del", name, check=False)


def keygen(path):
    subprocess.run([binary("switchboard"), "keygen", str(path)], check=True,
                   capture_output=True, timeout=10)


CLIENT = textwrap.dedent("""
    import json, socket, sys
    port, lines = int(sys.argv[1]), json.loads(sys.argv[2])
    def connect():
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        f = s.makefile("rw")
        f.readline()
        return s, f
    (a, fa), (b, fb) = connect(), connect()
    replies = []
    for who, line in lines:
        f = fa if who == "a" else fb
        if line is None:
            replies.append(f.readline().rstrip("\\n"))
            continue
        f.write(line + "\\n"); f.flush()
        replies.append(f.readline().rstrip("\\n"))
    print(json.dumps(replies))
""")


def run_client(namespace, port, lines):
    result = subprocess.run(["ip", "netns", "exec", namespace, "/usr/bin/python3", "-c", CLIENT,
                             str(port), json.dumps(lines)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_broker_workers_and_gateway_on_three_hosts_with_curve(hosts, processes, tmp_path):
    for name in ("broker", "workers", "gateway"):
        keygen(tmp_path / name)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    for name in ("workers", "gateway"):
        (allowed / name).write_text((tmp_path / name).read_text())
    broker_key = ["--curve-secret", str(tmp_path / "broker_secret")]
    client_key = lambda name: ["--curve-secret", str(tmp_path / (name + "_secret")),  # noqa: E731
                               "--curve-server", str(tmp_path / "broker")]
    frontend = "tcp://%s.1:7100" % LINKS["gateway"]
    backend = "tcp://%s.1:7101" % LINKS["workers"]
    in_ns = lambda role: ["ip", "netns", "exec", hosts[role]]  # noqa: E731
    broker = processes.start("sb-broker", [
        *in_ns("broker"), binary("sb-broker"), "--frontend", frontend, "--backend", backend,
        *broker_key, "--curve-allow", str(allowed)])
    workers = processes.start("sb-workers", [
        *in_ns("workers"), binary("sb-workers"), "--service", "default", "--workers", "2",
        "--broker", backend, "--store", str(tmp_path / "store.db"), "--graceful-timeout", "1",
        *client_key("workers")])
    gateway = processes.start("sb-gateway-tcp", [
        *in_ns("gateway"), binary("sb-gateway-tcp"), "--listen", "127.0.0.1:7000",
        "--broker", frontend, *client_key("gateway")])
    everyone = (broker, workers, gateway)
    wait_until(lambda: all(p.alive() for p in everyone)
               and len(log_records(broker, "provider ready")) >= 2,
               STARTUP_TIMEOUT, "both workers to register across the namespaces")
    wait_until(lambda: log_records(gateway, "connected to broker"), STARTUP_TIMEOUT,
               "the gateway to reach the broker across the namespaces")
    replies = run_client(hosts["gateway"], 7000, [
        ["a", "echo across hosts"],
        ["a", "hello netns"],
        ["a", "account ns-%s deposit 5" % uuid.uuid4().hex[:6]],
        ["b", "sub room/#"],
        ["b", "stats broker"],          # the subscription has reached the broker
        ["a", "pub room/x lit"],
        ["b", None],                    # the event
        ["a", "clients"],
    ])
    assert replies[0] == "OK across hosts"
    assert replies[1] == "OK Hello NETNS"
    assert replies[2].startswith("OK ns-") and replies[2].endswith(" 5")
    assert replies[3] == "OK"
    assert "providers=2" in replies[4]
    assert replies[5] == "OK"
    assert replies[6] == "EVENT room/x lit"
    assert len(replies[7].split()) == 3   # OK and the two clients
    assert not log_records(broker, "peer refused")
