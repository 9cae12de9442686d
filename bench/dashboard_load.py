#!/usr/bin/python3
"""dashboard_load.py — the built-in dashboard under load: T topics updated R
times a second while D devices sit in backoff, and what the page's frames and
event loop do meanwhile (a benchmark figure, not a test).

Starts the hub (`switchboard`, free loopback ports, a config with D devices
that dial a port where nothing listens, so each counts down a backoff), a
publisher that sends `pub bench/room-N/temp VALUE` for every topic R times a
second over TCP (pipelined; its replies read on a thread), waits until the
load runs, then runs bench/dashboard_load.mjs (headless Chromium) for S
seconds and prints its figures and the rate the publisher held. Stops the
hub by its pid.

usage: bench/dashboard_load.py [BUILD_DIR] [--topics T] [--rate R] [--devices D] [--seconds S]
       (defaults: build, 500, 5, 50, 20)
"""
import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_procs import free_port, wait_for  # noqa: E402

HERE = Path(__file__).resolve().parent


def config_text(devices, closed_port):
    sections = []
    for i in range(devices):
        sections.append("[device dev%02d]\nconnect = 127.0.0.1:%d\nbackoff_initial = %d\n"
                        "backoff_max = 10\nconnect_timeout = 2\n" % (i, closed_port, 1 + i % 5))
    return "\n".join(sections)


class Publisher:
    """Every topic R times a second on one TCP connection; counts what it sent."""

    def __init__(self, port, topics, rate):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        self.topics, self.rate = topics, rate
        self.sent = 0
        self.replies = 0
        self.stop = threading.Event()
        threading.Thread(target=self.read, daemon=True).start()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def read(self):
        while not self.stop.is_set():
            data = self.sock.recv(65536)
            if not data:
                return
            self.replies += data.count(b"\n")

    def run(self):
        tick, period = 0, 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            lines = "".join("pub bench/room-%03d/temp %.1f\n" % (i, 20 + (tick + i) % 50 / 10)
                            for i in range(self.topics))
            self.sock.sendall(lines.encode())
            self.sent += self.topics
            tick += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)   # the load's own pace, not a wait for a condition

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--topics", type=int, default=500)
    parser.add_argument("--rate", type=float, default=5)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    launcher = Path(args.build).resolve() / "bin" / "switchboard"
    tcp_port, ws_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="sbd-", dir="/tmp") as parent:
        config = Path(parent) / "bench.conf"
        config.write_text(config_text(args.devices, free_port()))
        argv = [str(launcher), "--tcp", "127.0.0.1:%d" % tcp_port, "--ws", "127.0.0.1:%d" % ws_port,
                "--mqtt", "off", "--runtime-dir", parent + "/rt", "--config", str(config)]
        hub = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        publisher = None
        try:
            def answers():
                try:
                    with socket.create_connection(("127.0.0.1", tcp_port), timeout=2) as s:
                        s.sendall(b"echo ready\n")
                        return b"OK ready" in s.recv(4096) + s.recv(4096)
                except OSError:
                    return False
            wait_for(answers, 30, "the hub to answer echo")
            publisher = Publisher(tcp_port, args.topics, args.rate)
            wait_for(lambda: publisher.replies >= args.topics * 2, 30, "the load to run")
            sent_before, at = publisher.sent, time.monotonic()
            run = subprocess.run(["node", str(HERE / "dashboard_load.mjs"), str(ws_port),
                                  str(args.topics), str(args.seconds)],
                                 capture_output=True, text=True, timeout=args.seconds + 120)
            held = (publisher.sent - sent_before) / (time.monotonic() - at)
            if run.returncode != 0:
                sys.exit("dashboard_load.mjs failed:\n" + run.stdout + run.stderr)
            figures = json.loads(run.stdout.strip().splitlines()[-1])
            figures["published_per_s"] = round(held)
            figures["devices"] = args.devices
            print(json.dumps(figures, indent=1))
        finally:
            if publisher:
                publisher.close()
            hub.terminate()
            hub.wait(timeout=60)


if __name__ == "__main__":
    main()
