#!/usr/bin/python3
"""broker_kill.py — requests that fail when the broker is killed under load.

Starts the hub (`switchboard`, on free loopback ports), runs sb-bench with
8 connections x 4 pipelined `echo` requests, and SIGKILLs the broker K
times, 1.5 s apart, starting after 1 s of load; the launcher starts a new
broker each time. Prints sb-bench's line: errors= counts the requests that
were answered ERR (none is expected: echo is retry-safe and what arrives
while the broker is away is held, see docs/operations.md 2.8).
--broker-wait 0 shows what the gateways did before they held requests.

usage: bench/broker_kill.py [BUILD_DIR] [--requests N] [--kills K] [--broker-wait S]
"""
import argparse
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ws_idle_memory import child_named, free_port, wait_for


def broker_of(hub_pid):
    return child_named(hub_pid, b"sb-broker")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--requests", type=int, default=40000)
    parser.add_argument("--kills", type=int, default=1)
    parser.add_argument("--broker-wait", default=None, help="the gateways' --broker-wait")
    args = parser.parse_args()
    bin_dir = Path(args.build).resolve() / "bin"
    port = free_port()
    env = dict(os.environ)
    if args.broker_wait is not None:
        env["SWITCHBOARD_BROKER_WAIT"] = args.broker_wait   # read by the gateways only
    with tempfile.TemporaryDirectory(prefix="sbk-", dir="/tmp") as parent:
        hub = subprocess.Popen([str(bin_dir / "switchboard"), "--tcp", "127.0.0.1:%d" % port,
                                "--ws", "off", "--runtime-dir", parent + "/rt"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            wait_for(lambda: broker_of(hub.pid) is not None, 15, "the broker to start")
            probe = subprocess.run([str(bin_dir / "sb-bench"), "--port", str(port),
                                    "--requests", "1", "--skip-lines", "1"],
                                   capture_output=True, text=True, timeout=30)
            if probe.returncode != 0:
                raise SystemExit("the hub does not answer: " + probe.stderr)
            bench = subprocess.Popen([str(bin_dir / "sb-bench"), "--port", str(port),
                                      "--connections", "8", "--pipeline", "4",
                                      "--requests", str(args.requests), "--skip-lines", "1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.0)   # a measurement, not a test: the load runs first
            for kill in range(args.kills):
                broker = broker_of(hub.pid)
                os.kill(broker, signal.SIGKILL)
                wait_for(lambda: broker_of(hub.pid) not in (None, broker), 15,
                         "the launcher to start a new broker")
                if kill + 1 < args.kills:
                    time.sleep(1.5)
            out, err = bench.communicate(timeout=120)
            print("kill -9 of the broker x%d under 8x4 echo: %s" % (args.kills, out.strip()))
            if bench.returncode != 0:
                print(err.strip())
        finally:
            hub.send_signal(signal.SIGTERM)
            hub.wait(timeout=60)


if __name__ == "__main__":
    main()
