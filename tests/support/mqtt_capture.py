#!/usr/bin/python3
"""mqtt_capture.py — records the MQTT packets real clients and a real broker
exchange, for the codec's seed corpus and unit tests.

Starts Debian's mosquitto on a free loopback port, puts a TCP proxy in front
of it, runs mosquitto_pub/mosquitto_sub (3.1.1 and 5) through the proxy and
writes every whole packet, one file each, to OUT/client-*.bin (client to
server) and OUT/server-*.bin (server to client).

    /usr/bin/python3 tests/support/mqtt_capture.py OUT
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def split_packets(data):
    """Whole packets of an MQTT byte stream (the rest is dropped)."""
    packets, i = [], 0
    while i + 2 <= len(data):
        remaining, shift, j = 0, 0, i + 1
        while j < len(data):
            remaining |= (data[j] & 0x7F) << shift
            shift += 7
            j += 1
            if not data[j - 1] & 0x80:
                break
        else:
            break
        end = j + remaining
        if end > len(data):
            break
        packets.append(data[i:end])
        i = end
    return packets


class Proxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.streams = []          # (client bytes, server bytes) per connection
        self.lock = threading.Lock()
        self.open = 0              # pumps still running
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(("127.0.0.1", self.upstream))
            record = [bytearray(), bytearray()]
            with self.lock:
                self.streams.append(record)
                self.open += 2
            threading.Thread(target=self.pump, args=(client, server, record[0]), daemon=True).start()
            threading.Thread(target=self.pump, args=(server, client, record[1]), daemon=True).start()

    def pump(self, source, sink, record):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                record.extend(data)
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.lock:
            self.open -= 1


def wait_for(condition, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.02)


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not listen")


def main(out):
    os.makedirs(out, exist_ok=True)
    port = free_port()
    conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    conf.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    conf.close()
    broker = subprocess.Popen(["mosquitto", "-c", conf.name], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        proxy = Proxy(port)
        p = ["-h", "127.0.0.1", "-p", str(proxy.port)]
        subs = []
        for version in ("mqttv311", "mqttv5"):
            extra = ["-D", "subscribe", "subscription-identifier", "7"] if version == "mqttv5" else []
            subs.append(subprocess.Popen(["mosquitto_sub", *p, "-V", version, "-q", "2", "-t", "home/#",
                                          "-t", "$share/g/dev/+", "-C", "4", "-W", "10", *extra],
                                         stdout=subprocess.DEVNULL))
        def subscribed():      # both subscribers have their SUBACK
            with proxy.lock:
                return sum(1 for _, server in proxy.streams if 0x90 in server[:64]) >= 2
        wait_for(subscribed, "the subscribers")
        runs = [
            ["-V", "mqttv311", "-q", "0", "-t", "home/a", "-m", "hello"],
            ["-V", "mqttv311", "-q", "1", "-r", "-t", "home/b", "-m", "x" * 200, "-u", "user", "-P", "secret"],
            ["-V", "mqttv311", "-q", "2", "-t", "home/c", "-m", "two", "-i", "fixed-id", "-c",
             "--will-topic", "will/t", "--will-payload", "gone", "--will-qos", "1", "--will-retain"],
            ["-V", "mqttv5", "-q", "0", "-t", "home/d", "-m", "{\"v\":1}",
             "-D", "publish", "content-type", "application/json",
             "-D", "publish", "payload-format-indicator", "1",
             "-D", "publish", "user-property", "k", "v",
             "-D", "publish", "message-expiry-interval", "60"],
            ["-V", "mqttv5", "-q", "1", "-t", "home/e", "-m", "req",
             "-D", "publish", "response-topic", "reply/here",
             "-D", "publish", "correlation-data", "abc",
             "-D", "connect", "session-expiry-interval", "30",
             "-D", "connect", "receive-maximum", "10",
             "-D", "connect", "maximum-packet-size", "10000",
             "-D", "connect", "topic-alias-maximum", "5",
             "-D", "connect", "request-problem-information", "1",
             "-D", "connect", "request-response-information", "1",
             "-D", "connect", "user-property", "who", "me"],
            ["-V", "mqttv5", "-q", "2", "-t", "home/f", "-m", "two", "-u", "u5", "-P", "p5",
             "--will-topic", "will/v5", "--will-payload", "bye", "--will-qos", "2",
             "-D", "will", "will-delay-interval", "5", "-D", "will", "content-type", "text/plain",
             "-D", "disconnect", "session-expiry-interval", "0"],
            ["-V", "mqttv5", "-q", "1", "-t", "home/g", "-m", "aliased", "-D", "publish", "topic-alias", "1"],
        ]
        for args in runs:
            subprocess.run(["mosquitto_pub", *p, *args], check=True, timeout=10)
        for s in subs:
            s.wait(timeout=15)
        subprocess.run(["mosquitto_sub", *p, "-V", "mqttv5", "-t", "home/#", "-W", "1", "-U", "home/#"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)

        wait_for(lambda: proxy.open == 0, "the connections to close")
    finally:
        broker.terminate()
        broker.wait()
        os.unlink(conf.name)
    n = 0
    with proxy.lock:
        for client, server in proxy.streams:
            for direction, data in (("client", client), ("server", server)):
                for packet in split_packets(bytes(data)):
                    with open(os.path.join(out, f"{direction}-{n:03d}.bin"), "wb") as f:
                        f.write(packet)
                    n += 1
    print(f"{n} packets in {out}")


if __name__ == "__main__":
    main(sys.argv[1])
