"""The docker-compose deployment, for real (issue 7): builds the image,
brings the stack up on a Docker engine of the test's own, and checks it
through the published ports (127.0.0.1 only): greeting and echo, a slow
command that blocks no one, TCP -> WebSocket pub/sub, accounts; then
changes the worker count, kills a worker container and the broker
container (as crashes: SIGKILL to their process, by pid) and waits for the
service to come back. Tears everything down and stops dockerd by its pid.

Run: /usr/bin/python3 -m pytest tests/compose -q   (as root; see tests/run-all.sh)"""
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from conftest import Client, free_port, wait_until  # noqa: E402

from docker_engine import WORK, Engine  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "deploy" / "docker-compose.yml"
UP_TIMEOUT = 180


class Stack:
    def __init__(self, engine):
        self.engine = engine
        self.project = "sbci%s" % uuid.uuid4().hex[:6]
        self.tcp_port, self.ws_port, self.mqtt_port = free_port(), free_port(), free_port()
        self.env = dict(engine.env, SB_TCP_PORT=str(self.tcp_port), SB_WS_PORT=str(self.ws_port),
                        SB_MQTT_PORT=str(self.mqtt_port),
                        WORKERS="2", SLOW_WORKERS="1")

    def compose(self, *args, env=None, timeout=900):
        return subprocess.run(["docker-compose", "-p", self.project, "-f", str(COMPOSE_FILE),
                               *args], env=dict(self.env, **(env or {})), check=True,
                              capture_output=True, text=True, timeout=timeout)

    def container(self, service, index=1):
        return "%s_%s_%d" % (self.project, service, index)

    def inspect(self, name, template):
        return self.engine.docker("inspect", "-f", template, name).stdout.strip()

    def crash(self, name):
        """SIGKILL to the container's main process, by its pid: a crash, so the restart policy applies."""
        pid = int(self.inspect(name, "{{.State.Pid}}"))
        os.kill(pid, signal.SIGKILL)

    def answers(self, line, expected, timeout=2.0):
        try:
            with Client(self.tcp_port, timeout=timeout) as client:
                return client.request(line) == expected
        except (OSError, AssertionError):
            return False

    def broker_stats(self):
        with Client(self.tcp_port) as client:
            reply = client.request("stats broker")
        return dict(re.findall(r"(\w+)=(\S+)", reply))


@pytest.fixture(scope="module")
def stack():
    if os.geteuid() != 0:
        pytest.fail("the compose test runs its own dockerd: it needs root", pytrace=False)
    engine = Engine()
    if engine.responds():
        pytest.fail("a dockerd already answers on %s; stop it first" % engine.env["DOCKER_HOST"],
                    pytrace=False)
    started = time.monotonic()
    engine.start()
    s = Stack(engine)
    try:
        base = engine.ensure_base_image()
        s.compose("build")
        s.compose("up", "-d")
        wait_until(lambda: s.answers("echo ready", "OK ready"), UP_TIMEOUT,
                   "the stack to answer through port %d" % s.tcp_port)
        took = time.monotonic() - started
        with open(WORK / "timings.log", "a") as log:
            log.write("%s base=%s up_in_s=%.1f\n" % (time.strftime("%FT%T"), base, took))
        print("\ncompose stack up in %.1f s (base image: %s)" % (took, base))
        yield s
    finally:
        try:
            s.compose("down", "-v", "--remove-orphans", timeout=300)
        finally:
            engine.stop()


def test_greeting_and_echo(stack):
    with Client(stack.tcp_port) as client:
        assert client.greeting.startswith("OK switchboard ")
        assert client.request("echo hello compose") == "OK hello compose"


def test_every_container_turns_healthy(stack):
    names = stack.engine.docker("ps", "-q", "--filter", "label=com.docker.compose.project=%s"
                                % stack.project).stdout.split()
    assert len(names) == 8, names      # broker, two pools, four gateways, the bridge
    unhealthy = lambda: [n for n in names  # noqa: E731
                         if stack.inspect(n, "{{.State.Health.Status}}") != "healthy"]
    wait_until(lambda: not unhealthy(), UP_TIMEOUT, "every container to be healthy")


def test_a_slow_command_blocks_no_one(stack):
    with Client(stack.tcp_port) as slow, Client(stack.tcp_port) as quick:
        slow.send("sleep 2")
        assert quick.request("echo quick") == "OK quick"
        assert slow.read_available(timeout=0.05) == []     # still sleeping
        assert slow.read_line(timeout=10) == "OK slept 2"


def test_tcp_publish_reaches_a_websocket_subscriber(stack):
    import websockets

    async def main():
        async with websockets.connect("ws://127.0.0.1:%d/" % stack.ws_port) as ws:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert welcome["event"] == "$welcome"
            await ws.send(json.dumps({"id": 1, "cmd": "sub", "args": ["compose/#"]}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["ok"] is True
            await ws.send(json.dumps({"id": 2, "cmd": "stats", "args": ["broker"]}))
            await asyncio.wait_for(ws.recv(), 10)   # the subscription has reached the broker
            with Client(stack.tcp_port) as publisher:
                assert publisher.request("pub compose/lamp on") == "OK"
            event = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert event == {"event": "compose/lamp", "data": "on"}

    asyncio.run(main())


def test_accounts_are_shared_by_the_worker_containers(stack):
    name = "compose-%s" % uuid.uuid4().hex[:6]
    with Client(stack.tcp_port) as client:
        assert client.request("account %s deposit 7" % name) == "OK %s 7" % name
        assert client.request("account %s withdraw 2" % name) == "OK %s 5" % name
        assert client.request("%s:dp" % name) == "%s's money: 6" % name


def test_the_worker_count_follows_the_flag_and_the_scale(stack):
    stack.compose("up", "-d", "--no-deps", "workers", env={"WORKERS": "3"})
    wait_until(lambda: stack.broker_stats().get("idle_default") == "3", UP_TIMEOUT,
               "3 workers in the default pool (WORKERS=3)")
    stack.compose("up", "-d", "--no-deps", "--scale", "workers=2", "workers",
                  env={"WORKERS": "3"})
    wait_until(lambda: stack.broker_stats().get("idle_default") == "6", UP_TIMEOUT,
               "6 workers in the default pool (2 containers x 3)")
    assert stack.answers("echo scaled", "OK scaled")


def test_a_crashed_worker_container_comes_back_and_service_goes_on(stack):
    victim = stack.container("workers", 1)
    before = int(stack.inspect(victim, "{{.RestartCount}}"))
    stack.crash(victim)
    assert stack.answers("echo still served", "OK still served", timeout=10)  # the other container
    wait_until(lambda: int(stack.inspect(victim, "{{.RestartCount}}")) > before
               and stack.inspect(victim, "{{.State.Running}}") == "true",
               UP_TIMEOUT, "the worker container to be restarted")
    wait_until(lambda: stack.broker_stats().get("idle_default") == "6", UP_TIMEOUT,
               "the default pool back to 6 workers")


def test_a_crashed_broker_container_comes_back_and_service_with_it(stack):
    broker = stack.container("broker")
    before = int(stack.inspect(broker, "{{.RestartCount}}"))
    stack.crash(broker)
    wait_until(lambda: int(stack.inspect(broker, "{{.RestartCount}}")) > before,
               UP_TIMEOUT, "the broker container to be restarted")
    wait_until(lambda: stack.answers("echo after the broker", "OK after the broker"), UP_TIMEOUT,
               "echo to work again after the broker came back")
    wait_until(lambda: stack.answers("sleep 0", "OK slept 0"), UP_TIMEOUT,
               "the slow pool to be back too")
