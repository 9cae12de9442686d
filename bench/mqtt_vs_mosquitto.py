#!/usr/bin/python3
"""mqtt_vs_mosquitto.py — switchboard's MQTT gateway against Debian's mosquitto.

In one run, starts mosquitto (a minimal config in a temp dir) and the hub
(`switchboard`, MQTT on its own free loopback port), then drives both with
the same client, bench/sb-mqtt-bench:

  - memory per idle MQTT connection: VmRSS of the server (for the hub:
    sb-gateway-mqtt, and sb-broker beside it) before and after N idle clients
    connect;
  - 1 publisher -> 1 subscriber, QoS 0 and QoS 1 (W messages in flight):
    messages per second delivered, latency p50/p99;
  - 1 publisher -> S subscribers (default 1,000), QoS 0: deliveries per second.

Each flow point runs --rounds times, alternating the servers; the table shows
the median round and the ratio hub / mosquitto. Every process it starts is
stopped by its pid. Loopback only.

usage: bench/mqtt_vs_mosquitto.py [BUILD_DIR] [--seconds T] [--warmup T] [--rounds R]
         [--window W] [--payload BYTES] [--fanout S] [--idle N]
"""
import argparse
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_procs import child_named, free_port, rss_kib, wait_for  # noqa: E402

STARTUP_TIMEOUT = 20     # seconds for a server to accept MQTT clients
STOP_TIMEOUT = 10        # seconds between SIGTERM and SIGKILL
SETTLE = 0.5             # seconds after the idle clients connect, before reading VmRSS

# A CONNECT of MQTT 3.1.1: clean session, keep alive 300 s, client id "probe".
PROBE_CONNECT = bytes([0x10, 17, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0x01, 0x2C, 0, 5]) + b"probe"


def mqtt_probe(port):
    """A connection that got CONNACK 0 (success), or None."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return None
    try:
        sock.sendall(PROBE_CONNECT)
        data = b""
        while len(data) < 4:
            chunk = sock.recv(4 - len(data))
            if not chunk:
                break
            data += chunk
        if data[:2] == b"\x20\x02" and data[3] == 0:
            return sock
    except OSError:
        pass
    sock.close()
    return None


class Server:
    """One MQTT server under test: its process, port and the pids whose memory counts."""

    def __init__(self, name, proc, port, log):
        self.name = name
        self.proc = proc
        self.port = port
        self.log = log
        self.probe = None

    def memory_pids(self):
        return {self.name: self.proc.pid}

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                sys.exit("%s exited during startup:\n%s" % (self.name, tail(self.log)))
            self.probe = mqtt_probe(self.port)
            return self.probe is not None
        wait_for(ready, STARTUP_TIMEOUT, "%s to accept MQTT clients on port %d" % (self.name, self.port))

    def stop(self):
        if self.probe:
            self.probe.close()
        stop_process(self.proc)


class Hub(Server):
    def memory_pids(self):
        pids = {}
        for program in ("sb-gateway-mqtt", "sb-broker"):
            pid = child_named(self.proc.pid, program.encode())
            if pid is None:
                sys.exit("no %s under the launcher (pid %d)" % (program, self.proc.pid))
            pids[program] = pid
        return pids


def tail(path, lines=20):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_process(proc):
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print("%d ignored SIGTERM for %ds, sending SIGKILL" % (proc.pid, STOP_TIMEOUT), file=sys.stderr)
        proc.kill()
        proc.wait()


def start_mosquitto(tmp, max_queued):
    port = free_port()
    conf = tmp / "mosquitto.conf"
    # A home's mosquitto, except what the test needs: no persistence, a queue
    # that does not drop the fan-out's QoS 0 messages.
    conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages %d\nlog_dest stderr\n" % (port, max_queued))
    log = tmp / "mosquitto.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return Server("mosquitto", proc, port, log)


def start_hub(build, tmp):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SWITCHBOARD_")}
    # Stores in the temp dir; no session store, as mosquitto runs without persistence.
    env.update(SWITCHBOARD_STORE=str(tmp / "store.db"),
               SWITCHBOARD_RETAINED_STORE=str(tmp / "retained.db"),
               SWITCHBOARD_SESSION_STORE="off")
    log = tmp / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(build / "bin" / "switchboard"), "--tcp", "127.0.0.1:%d" % free_port(),
                                 "--ws", "off", "--mqtt", "127.0.0.1:%d" % port,
                                 "--runtime-dir", str(tmp / "rt")],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=str(tmp))
    return Hub("hub", proc, port, log)


def run_client(bench, server, args, timeout):
    """sb-mqtt-bench's key=value line as a dict."""
    argv = [str(bench), "--port", str(server.port), *map(str, args)]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        sys.exit("sb-mqtt-bench against %s took over %ds: %s" % (server.name, timeout, " ".join(argv)))
    if done.returncode != 0:
        sys.exit("sb-mqtt-bench against %s failed (%d): %s\n%s\n%s" % (
            server.name, done.returncode, " ".join(argv), done.stderr.strip(), tail(server.log)))
    return dict(field.split("=", 1) for field in done.stdout.split())


def idle_memory(bench, server, count):
    """{pid name: (KiB before, KiB after)} around `count` idle clients."""
    pids = server.memory_pids()
    before = {name: rss_kib(pid) for name, pid in pids.items()}
    client = subprocess.Popen([str(bench), "--port", str(server.port), "--idle", str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = client.stdout.readline().strip()
        if line != "connected=%d" % count:
            client.stdin.close()
            client.wait(timeout=STOP_TIMEOUT)
            sys.exit("sb-mqtt-bench --idle against %s: %r\n%s" % (server.name, line, client.stderr.read()))
        time.sleep(SETTLE)   # a measurement, not a test: let the last writes settle
        after = {name: rss_kib(pid) for name, pid in pids.items()}
    finally:
        if client.stdin and not client.stdin.closed:
            client.stdin.close()
        try:
            client.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
    return {name: (before[name], after[name]) for name in pids}


def flow_points(args):
    common = ["--seconds", args.seconds, "--warmup", args.warmup, "--payload", args.payload,
              "--window", args.window]
    return [  # (label, topic, client arguments)
        ("1 -> 1, QoS 0", "one-q0", ["--qos", 0, "--subscribers", 1, *common]),
        ("1 -> 1, QoS 1", "one-q1", ["--qos", 1, "--subscribers", 1, *common]),
        ("1 -> %d, QoS 0" % args.fanout, "fan-q0", ["--qos", 0, "--subscribers", args.fanout, *common]),
    ]


def median_round(results):
    """The round with the median rate."""
    ordered = sorted(results, key=lambda r: float(r["rate"]))
    return ordered[(len(ordered) - 1) // 2]


def ratio(hub, other):
    return "%.2f" % (hub / other) if other else "-"


def print_tables(args, memory, flows):
    print()
    print("memory per idle MQTT connection (%d clients)" % args.idle)
    print("%-10s %-16s %12s %12s %17s" % ("server", "process", "VmRSS KiB", "with clients", "bytes/connection"))
    per = {}
    for server_name, rows in memory.items():
        for name, (before, after) in rows.items():
            per[name] = (after - before) * 1024 / args.idle
            print("%-10s %-16s %12d %12d %17.0f" % (server_name, name, before, after, per[name]))
    if "mosquitto" in per and "sb-gateway-mqtt" in per:
        print("hub / mosquitto: %s (the MQTT gateway alone), %s (gateway + broker)" % (
            ratio(per["sb-gateway-mqtt"], per["mosquitto"]),
            ratio(per["sb-gateway-mqtt"] + per["sb-broker"], per["mosquitto"])))
    print()
    print("flows (window %d, payload %d bytes, %d s measured after %d s warmup, median of %d rounds)"
          % (args.window, args.payload, args.seconds, args.warmup, args.rounds))
    print("%-18s %-10s %12s %10s %10s %6s %10s" % ("point", "server", "msgs/s", "p50_us", "p99_us",
                                                  "lost", "hub/mosq"))
    for point, by_server in flows.items():
        mosq = median_round(by_server["mosquitto"]) if by_server.get("mosquitto") else None
        for name, results in by_server.items():
            r = median_round(results)
            rel = ratio(float(r["rate"]), float(mosq["rate"])) if name == "hub" and mosq else "-"
            rates = ", ".join(x["rate"] for x in results)
            print("%-18s %-10s %12s %10s %10s %6s %10s   (rounds: %s)" % (
                point, name, r["rate"], r["p50_us"], r["p99_us"], r["lost"], rel, rates))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--seconds", type=int, default=3, help="measured seconds per point (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds before measuring (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the flow points (default 3)")
    parser.add_argument("--window", type=int, default=32, help="messages in flight (default 32)")
    parser.add_argument("--payload", type=int, default=64, help="payload bytes (default 64)")
    parser.add_argument("--fanout", type=int, default=1000, help="subscribers of the fan-out point")
    parser.add_argument("--idle", type=int, default=1000, help="idle clients for the memory point")
    parser.add_argument("--only", choices=("hub", "mosquitto"), help="run one server only")
    args = parser.parse_args()
    if min(args.seconds, args.rounds, args.window, args.fanout, args.idle) < 1 or args.warmup < 0:
        parser.error("--seconds, --rounds, --window, --fanout and --idle must be at least 1")

    build = Path(args.build).resolve()
    bench = build / "bin" / "sb-mqtt-bench"
    for binary in (bench, build / "bin" / "switchboard"):
        if not os.access(binary, os.X_OK):
            sys.exit("%s not found (build first: cmake --build %s)" % (binary, args.build))
    if args.only != "hub" and not shutil.which("mosquitto") and not os.access("/usr/sbin/mosquitto", os.X_OK):
        sys.exit("mosquitto not installed (apt-get install mosquitto)")

    # Descriptors for the fan-out's clients, in this process's children too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max(args.fanout, args.idle) + 64
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else min(need, hard), hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    servers = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sbq-", dir="/tmp") as parent:
        tmp = Path(parent)
        try:
            if args.only != "hub":
                servers.append(start_mosquitto(tmp, max(100000, args.window * args.fanout * 4)))
            if args.only != "mosquitto":
                servers.append(start_hub(build, tmp))
            for server in servers:
                server.wait_ready()
                print("%s pid %d on 127.0.0.1:%d" % (server.name, server.proc.pid, server.port),
                      file=sys.stderr)

            memory = {s.name: idle_memory(bench, s, args.idle) for s in servers}
            flows = {}
            timeout = args.warmup + args.seconds + 60
            for round_index in range(args.rounds):
                order = servers if round_index % 2 == 0 else servers[::-1]
                for point, topic, point_args in flow_points(args):
                    for server in order:
                        result = run_client(bench, server, [*point_args, "--topic",
                                                            "bench/r%d/%s" % (round_index, topic)], timeout)
                        flows.setdefault(point, {}).setdefault(server.name, []).append(result)
                        print("round %d %-18s %-10s %s msgs/s" % (round_index + 1, point, server.name,
                                                                   result["rate"]), file=sys.stderr)
            print_tables(args, memory, {p: dict(sorted(v.items(), key=lambda kv: kv[0] != "mosquitto"))
                                        for p, v in flows.items()})
            print("\n(whole run: %.0f s)" % (time.monotonic() - started))
        finally:
            for server in reversed(servers):
                server.stop()


if __name__ == "__main__":
    main()
