#!/usr/bin/python3
"""latency_under_load.py — two of the brief's §9 promises, measured:

1. Fast commands stay fast while the `slow` pool is busy. Starts the hub
   (`switchboard`, a temp config with pools `default` and `slow`, `sleep` in
   `slow`, on a free loopback port) and measures at moderate load: `ping`
   with sb-bench (C connections x 1 in flight), then `echo hi` the same way
   while, beside it, fresh connections are opened one after another and each
   is timed from connect() to the gateway's greeting line. Once with the slow
   pool idle, then again after occupying every slow worker with a
   `sleep SECONDS` from connections of its own (waits until `stats broker`
   shows idle_slow=0, and checks at the end that it still does).
2. CPU-bound commands scale with the worker count. An external command,
   `burn` (bench/sb-burn: ~MS ms of CPU, no shell), in the default pool with
   1, 2, 4 workers; sb-bench with C connections x 1 in flight; req/s and
   server CPU per call.

Prints one table per part. Every process it starts is stopped by its pid.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_procs import free_port, wait_for

HOST = "127.0.0.1"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", nargs="?", default="build", help="CMake build directory (default build)")
    ap.add_argument("--connections", type=int, default=4, help="load connections, 1 in flight each (4)")
    ap.add_argument("--requests", type=int, default=20000, help="measured ping / echo requests (20000)")
    ap.add_argument("--warmup", type=int, default=2000, help="warm-up requests (2000)")
    ap.add_argument("--greetings", type=int, default=1000, help="fresh connections timed (1000)")
    ap.add_argument("--slow-workers", type=int, default=2, help="workers of the slow pool (2)")
    ap.add_argument("--sleep", type=int, default=30, help="seconds each slow worker sleeps (30)")
    ap.add_argument("--burn-ms", type=float, default=5, help="CPU ms per burn call (5)")
    ap.add_argument("--burn-workers", default="1,2,4", help="worker counts for burn (1,2,4)")
    ap.add_argument("--burn-connections", type=int, default=8, help="burn connections (8)")
    ap.add_argument("--burn-requests", type=int, default=600, help="measured burn calls per count (600)")
    ap.add_argument("--part", choices=["slow", "burn", "both"], default="both")
    return ap.parse_args()


class Hub:
    """switchboard on a free loopback port with a config of its own; stopped by pid."""

    def __init__(self, bin_dir, tmp, config, workers):
        self.port = free_port()
        conf = Path(tmp) / ("hub-%d.conf" % self.port)
        conf.write_text(config)
        self.log = open(Path(tmp) / ("hub-%d.log" % self.port), "wb")
        self.proc = subprocess.Popen(
            [str(bin_dir / "switchboard"), "--config", str(conf), "--tcp", "%s:%d" % (HOST, self.port),
             "--ws", "off", "--mqtt", "off", "--workers", str(workers),
             "--runtime-dir", str(Path(tmp) / ("rt-%d" % self.port))],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.proc.poll() is not None or self.greets(), 15, "the hub to greet")
            if self.proc.poll() is not None:
                sys.exit("the hub exited at start; its log says:\n"
                         + Path(self.log.name).read_text(errors="replace")[-2000:])
        except BaseException:
            self.stop()
            raise

    def greets(self):
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as s:
                return s.makefile("rb").readline().startswith(b"OK switchboard")
        except OSError:
            return False

    def connect(self):
        s = socket.create_connection((HOST, self.port), timeout=10)
        f = s.makefile("rb")
        if not f.readline().startswith(b"OK switchboard"):
            sys.exit("no greeting from the hub")
        return s, f

    def broker_stat(self, name):
        s, f = self.connect()
        with s:
            s.sendall(b"stats broker\n")
            m = re.search(rb"\b%s=(\d+)" % name.encode(), f.readline())
        return int(m.group(1)) if m else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def sb_bench(bin_dir, port, payload, connections, requests, warmup, cpu_pid=None):
    """Starts sb-bench (closed loop, 1 in flight per connection); returns the Popen."""
    cmd = [str(bin_dir / "sb-bench"), "--host", HOST, "--port", str(port), "--payload", payload,
           "--skip-lines", "1", "--connections", str(connections), "--pipeline", "1",
           "--requests", str(requests), "--warmup", str(warmup)]
    if cpu_pid:
        cmd += ["--cpu-pids", str(cpu_pid)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def bench_result(proc):
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        sys.exit("sb-bench failed: " + err.strip())
    return dict(kv.split("=", 1) for kv in out.split())


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(q * len(values) + 0.999999) - 1))]


def time_greetings(port, count, keep_going):
    """Seconds from connect() to the greeting line of up to `count` fresh connections, while keep_going()."""
    times = []
    while len(times) < count and keep_going():
        t0 = time.perf_counter()
        with socket.create_connection((HOST, port), timeout=10) as s:
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(256)
                if not chunk:
                    sys.exit("the hub closed a fresh connection before greeting")
                buf += chunk
            times.append(time.perf_counter() - t0)
    return times


def measure_fast(args, bin_dir, hub):
    """ping, then echo beside fresh connections' greetings: (ping, echo, greeting seconds, how many beside echo)."""
    ping = bench_result(sb_bench(bin_dir, hub.port, "ping\\n", args.connections, args.requests, args.warmup))
    echo_proc = sb_bench(bin_dir, hub.port, "echo hi\\n", args.connections, args.requests, args.warmup)
    greetings = time_greetings(hub.port, args.greetings, lambda: echo_proc.poll() is None)
    beside = len(greetings)
    greetings += time_greetings(hub.port, args.greetings - len(greetings), lambda: True)
    return ping, bench_result(echo_proc), greetings, beside


def part_slow(args, bin_dir, tmp):
    config = ("[service default]\nworkers = 2\n[service slow]\nworkers = %d\n"
              "[command sleep]\nservice = slow\ntimeout = %d\n" % (args.slow_workers, args.sleep + 30))
    hub = Hub(bin_dir, tmp, config, workers=2)
    sleepers = []
    try:
        idle = measure_fast(args, bin_dir, hub)
        for _ in range(args.slow_workers):
            s, f = hub.connect()
            s.sendall(b"sleep %d\n" % args.sleep)
            sleepers.append((s, f))
        wait_for(lambda: hub.broker_stat("idle_slow") == 0, 15, "every slow worker to be busy")
        started = time.monotonic()
        busy = measure_fast(args, bin_dir, hub)
        idle_after = hub.broker_stat("idle_slow")
        elapsed = time.monotonic() - started
        if idle_after != 0 or elapsed >= args.sleep:
            sys.exit("the slow workers were not busy throughout (idle_slow=%s after %.1f s of %d s sleeps);"
                     " use a longer --sleep or fewer --requests" % (idle_after, elapsed, args.sleep))
    finally:
        for s, _ in sleepers:
            s.close()
        hub.stop()

    print("%d connections x 1 in flight; %d fresh connections timed connect -> greeting, beside the echo load"
          % (args.connections, args.greetings))
    print("%-10s %-30s %10s %9s %9s" % ("slow pool", "measure", "req/s", "p50_ms", "p99_ms"))
    for label, (ping, echo, greetings, beside) in (("idle", idle), ("%d x sleep" % args.slow_workers, busy)):
        for name, r in (("ping", ping), ("echo hi", echo)):
            print("%-10s %-30s %10s %9.3f %9.3f" % (label, name, r["rps"], float(r["p50_us"]) / 1e3,
                                                  float(r["p99_us"]) / 1e3))
        print("%-10s %-30s %10s %9.3f %9.3f" % (label, "greeting (%d of %d beside echo)" % (beside, len(greetings)),
                                              "-", quantile(greetings, 0.5) * 1e3, quantile(greetings, 0.99) * 1e3))


def part_burn(args, bin_dir, tmp):
    burn = (bin_dir / "sb-burn").resolve()
    config = ("[service default]\nworkers = 1\n[command burn]\nexec = %s %g\n" % (burn, args.burn_ms))
    print("burn: external command, %g ms of CPU per call; %d connections x 1 in flight; %d cores"
          % (args.burn_ms, args.burn_connections, os.cpu_count()))
    print("%-8s %10s %9s %9s %12s %8s" % ("workers", "req/s", "p50_ms", "p99_ms", "cpu_ms/call", "vs 1"))
    base = None
    for workers in [int(w) for w in args.burn_workers.split(",")]:
        hub = Hub(bin_dir, tmp, config, workers)
        try:
            r = bench_result(sb_bench(bin_dir, hub.port, "burn\\n", args.burn_connections,
                                      args.burn_requests, max(1, args.burn_requests // 10), hub.proc.pid))
        finally:
            hub.stop()
        if int(r["errors"]):
            sys.exit("burn answered %s errors" % r["errors"])
        rps = float(r["rps"])
        base = base or rps
        print("%-8d %10.0f %9.3f %9.3f %12.2f %8.2f" % (workers, rps, float(r["p50_us"]) / 1e3,
                                                    float(r["p99_us"]) / 1e3, float(r["cpu_us"]) / 1e3,
                                                    rps / base))


def main():
    args = parse_args()
    bin_dir = Path(args.build) / "bin"
    for prog in ("switchboard", "sb-bench", "sb-burn"):
        if not os.access(bin_dir / prog, os.X_OK):
            sys.exit("%s not found (build first)" % (bin_dir / prog))
    with tempfile.TemporaryDirectory(prefix="sbl-", dir="/tmp") as tmp:
        if args.part in ("slow", "both"):
            part_slow(args, bin_dir, tmp)
        if args.part == "both":
            print()
        if args.part in ("burn", "both"):
            part_burn(args, bin_dir, tmp)


if __name__ == "__main__":
    main()
