#!/usr/bin/python3
"""ws_idle_memory.py — memory per idle WebSocket connection of sb-gateway-ws.

Starts the hub (`switchboard`, on free loopback ports), opens N WebSocket
connections that complete the handshake and read their welcome, then stay
idle, and reports the gateway's resident memory (VmRSS) before and after,
per connection. Stops the hub by its pid.

usage: bench/ws_idle_memory.py [BUILD_DIR] [--connections N]   (default: build, 1000)
"""
import argparse
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_procs import child_named, free_port, rss_kib, wait_for  # noqa: E402


def gateway_pid(hub_pid):
    return child_named(hub_pid, b"sb-gateway-ws")


def open_websocket(port):
    """A WebSocket after its handshake and welcome frame (read whole)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n" % (port, key)).encode())
    data = b""
    while b"$welcome" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit("connection closed during the handshake: %r" % data)
        data += chunk
    return sock


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", nargs="?", default="build")
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    launcher = Path(args.build).resolve() / "bin" / "switchboard"
    ws_port = free_port()
    with tempfile.TemporaryDirectory(prefix="sbm-", dir="/tmp") as parent:
        hub = subprocess.Popen([str(launcher), "--tcp", "127.0.0.1:%d" % free_port(),
                                "--ws", "127.0.0.1:%d" % ws_port,
                                "--runtime-dir", parent + "/rt"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sockets = []
        try:
            wait_for(lambda: gateway_pid(hub.pid) is not None, 15, "sb-gateway-ws to start")
            gateway = gateway_pid(hub.pid)
            sockets.append(open_websocket_when_ready(ws_port))
            before = rss_kib(gateway)
            for _ in range(args.connections - 1):
                sockets.append(open_websocket(ws_port))
            time.sleep(0.5)   # a measurement, not a test: let the last writes settle
            after = rss_kib(gateway)
            per = (after - before) * 1024 / (args.connections - 1)
            print("sb-gateway-ws VmRSS: %d KiB with 1 connection, %d KiB with %d "
                  "-> %.0f bytes per idle connection" % (before, after, args.connections, per))
        finally:
            for sock in sockets:
                sock.close()
            hub.terminate()
            hub.wait(timeout=60)


def open_websocket_when_ready(port):
    deadline = time.monotonic() + 15
    while True:
        try:
            return open_websocket(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


if __name__ == "__main__":
    main()
