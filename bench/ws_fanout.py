#!/usr/bin/python3
"""ws_fanout.py — WebSocket fan-out: the hub against Mosquitto's websockets listener.

In one run on loopback: `switchboard` (with --ws-processes N for each N
asked) and `mosquitto` (a `listener PORT` + `protocol websockets` config of
its own in a temporary directory), each driven by bench/sb-ws-fanout with S
subscribers of one topic and one publisher's burst of E events of B bytes
(the hub in its JSON dialect, Mosquitto in MQTT over WebSocket, QoS 0).
Prints one line per server: deliveries per second, first delivery, p50/p99
publish → delivery, lost, and the WebSocket gateways' resident memory
before the subscribers, with them, at the end of the burst, and after it.

usage: bench/ws_fanout.py [BUILD_DIR] [--subscribers S] [--events E] [--size B]
                          [--rate R] [--ws-processes N,...] [--only hub,mosquitto]
Raises RLIMIT_NOFILE as needed (run as root for 10,000 subscribers).
Every process started here is stopped by its pid.

Debian's Mosquitto 2.0.11 starts a websockets listener only beside a plain
one, and binds it to every interface whatever address it is given
(eclipse-mosquitto/mosquitto#2284, #3045). So Mosquitto and its load
generator run in a network namespace of their own that holds only a
loopback interface (unshare -n, as root): nothing listens beyond loopback.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_procs import children, free_port, rss_kib, wait_for  # noqa: E402


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        wanted = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(wanted, soft), max(hard, wanted)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def port_open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ws_gateways(hub_pid):
    return [pid for pid in children(hub_pid)
            if Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")[0].endswith(b"sb-gateway-ws")]


def total_rss_mib(pids):
    return sum(rss_kib(pid) or 0 for pid in pids) / 1024.0


class Sampler:
    """The peak resident memory of some processes while a child runs."""

    def __init__(self, pids):
        self.pids = pids
        self.peak = 0.0

    def watch(self, proc):
        while proc.poll() is None:
            self.peak = max(self.peak, total_rss_mib(self.pids))
            time.sleep(0.05)


def run_load(fanout, port, mode, args, pids, prefix=()):
    """Runs sb-ws-fanout (after `prefix`, e.g. an nsenter); returns (its
    key=value dict, peak RSS MiB of `pids`)."""
    proc = subprocess.Popen([*prefix, str(fanout), "--port", str(port), "--mode", mode,
                             "--subscribers", str(args.subscribers), "--events", str(args.events),
                             "--size", str(args.size), "--rate", str(args.rate)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(pids)
    sampler.watch(proc)
    out, err = proc.communicate()
    if proc.returncode not in (0, 2) or not out.strip():
        sys.exit("sb-ws-fanout (%s) failed: %s" % (mode, err.strip()))
    return dict(kv.split("=", 1) for kv in out.split()), sampler.peak


def report(name, result, rss):
    print("%-22s %9.0f/s  first %7.1f ms  p50 %7.1f ms  p99 %7.1f ms  lost %7s  oks %5s  "
          "rss MiB %s" % (name, float(result["rate"]), float(result["first_ms"]),
                          float(result["p50_ms"]), float(result["p99_ms"]), result["lost"],
                          result["oks"] if result["mode"] == "hub" else "-",
                          " -> ".join("%.0f" % value for value in rss)), flush=True)


def bench_hub(build, args, processes):
    tcp, ws = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="sbf-", dir="/tmp") as parent:
        config = Path(parent) / "fanout.conf"
        config.write_text("[gateway-ws]\nmax_connections = %d\n" % (args.subscribers + 100))
        hub = subprocess.Popen([str(build / "bin" / "switchboard"), "--tcp", "127.0.0.1:%d" % tcp,
                                "--ws", "127.0.0.1:%d" % ws, "--mqtt", "off",
                                *(["--ws-processes", str(processes)] if processes > 1 else []),
                                "--config", str(config),
                                "--runtime-dir", parent + "/rt"],
                               stdout=open(Path(parent) / "hub.log", "w"), stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: port_open(ws) and len(ws_gateways(hub.pid)) == processes, 15,
                     "the hub's WebSocket gateways")
            gateways = ws_gateways(hub.pid)
            before = total_rss_mib(gateways)
            result, peak = run_load(build / "bin" / "sb-ws-fanout", ws, "hub", args, gateways)
            time.sleep(1)   # then what the burst took should be back
            after = total_rss_mib(gateways)
            forgotten = "gateways silent" in (Path(parent) / "hub.log").read_text()
        finally:
            stop(hub)
    report("hub, %d ws process%s" % (processes, "" if processes == 1 else "es"), result,
           (before, peak, after))
    if forgotten:
        print("   !! the broker forgot a gateway (\"gateways silent\" in the hub's log)")


def bench_mosquitto(build, args):
    if not shutil.which("mosquitto"):
        print("mosquitto: not installed (deploy/setup-debian.sh test)")
        return
    if os.geteuid() != 0:
        print("mosquitto (websockets)  skipped: its listener needs a network namespace (run as root)")
        return
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sbf-", dir="/tmp") as parent:
        config = Path(parent) / "mosquitto.conf"
        log = Path(parent) / "mosquitto.log"
        config.write_text("allow_anonymous true\nmax_queued_messages 100000\n"
                          "listener %d 127.0.0.1\n"
                          "listener %d\nprotocol websockets\n" % (free_port(), port))
        broker = subprocess.Popen(["unshare", "--net", "--", "sh", "-c",
                                   'ip link set lo up && exec mosquitto -v -c "$0"', str(config)],
                                  stdout=open(log, "w"), stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "running" in log.read_text() or broker.poll() is not None, 15,
                     "mosquitto to start in its namespace")
            if broker.poll() is not None:
                print("mosquitto (websockets)  did not start: %s"
                      % log.read_text().strip().splitlines()[-1])
                return
            inside = ("nsenter", "--net=/proc/%d/ns/net" % broker.pid, "--")
            before = total_rss_mib([broker.pid])
            result, peak = run_load(build / "bin" / "sb-ws-fanout", port, "mqtt", args,
                                    [broker.pid], inside)
            time.sleep(1)
            after = total_rss_mib([broker.pid])
        finally:
            stop(broker)
    report("mosquitto (websockets)", result, (before, peak, after))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--subscribers", type=int, default=10000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rate", type=int, default=0, help="events per second (0: one burst)")
    parser.add_argument("--ws-processes", default="1,2")
    parser.add_argument("--only", default="hub,mosquitto")
    args = parser.parse_args()
    build = Path(args.build).resolve()
    raise_nofile(2 * args.subscribers + 1024)
    print("fan-out: %d subscribers, %d events of %d bytes, %s"
          % (args.subscribers, args.events, args.size,
             "%d a second" % args.rate if args.rate else "one publisher's burst"))
    only = args.only.split(",")
    if "hub" in only:
        for processes in (int(n) for n in args.ws_processes.split(",")):
            bench_hub(build, args, processes)
    if "mosquitto" in only:
        bench_mosquitto(build, args)


if __name__ == "__main__":
    main()
