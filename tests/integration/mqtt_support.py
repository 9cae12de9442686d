"""Helpers of the MQTT tests: a paho client that waits for conditions
(Debian's python3-paho-mqtt 1.6.1, MQTT 3.1.1 and 5), and a raw socket
speaking just enough MQTT by hand for the packets libraries never send."""
import os
import queue
import socket
import ssl
import struct

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from conftest import READ_TIMEOUT, SocketOwner

V311, V5 = mqtt.MQTTv311, mqtt.MQTTv5


class Paho:
    """A connected paho client; messages land in a queue (next_message)."""

    def __init__(self, port, client_id="", version=V5, clean=True, keepalive=30,
                 username=None, password=None, will=None, properties=None, connect=True,
                 transport="tcp", tls_ca=None):
        self.version = version
        kwargs = {"protocol": version, "transport": transport}
        if version != V5:
            kwargs["clean_session"] = clean
        self.client = mqtt.Client(client_id=client_id, **kwargs)
        self.port = port
        self.clean = clean
        self.keepalive = keepalive
        self.properties = properties
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.acks = queue.Queue()
        self.subacks = queue.Queue()
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_ca:
            self.client.tls_set(ca_certs=str(tls_ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if will:
            self.client.will_set(*will)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = lambda c, u, mid: self.acks.put(mid)
        self.client.on_subscribe = self._on_subscribe
        if connect:
            self.connect()

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connacks.put((flags, rc, properties))

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self.disconnects.put(rc)

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        self.subacks.put((mid, granted))

    def connect(self, expect_ok=True):
        kwargs = {"keepalive": self.keepalive}
        if self.version == V5:
            kwargs["clean_start"] = self.clean
            if self.properties is not None:
                kwargs["properties"] = self.properties
        self.client.connect("127.0.0.1", self.port, **kwargs)
        self.client.loop_start()
        flags, rc, properties = self.connacks.get(timeout=READ_TIMEOUT)
        self.session_present = flags.get("session present", 0)
        self.connack_properties = properties
        self.rc = rc
        if expect_ok:
            assert rc == 0, "CONNACK %s" % rc
        return rc

    def subscribe(self, topic, qos=0, **options):
        if self.version == V5:
            opts = mqtt.SubscribeOptions(qos=qos, **options)
            result, mid = self.client.subscribe(topic, options=opts)
        else:
            result, mid = self.client.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS
        got_mid, granted = self.subacks.get(timeout=READ_TIMEOUT)
        assert got_mid == mid
        codes = [g.value if hasattr(g, "value") else g for g in granted]
        return codes[0]

    def publish(self, topic, payload, qos=0, properties=None, wait=True):
        info = self.client.publish(topic, payload, qos=qos, properties=properties)
        if wait and qos > 0:
            info.wait_for_publish(timeout=READ_TIMEOUT)
            assert info.is_published(), "no acknowledgement for %s" % topic
        return info

    def next_message(self, timeout=READ_TIMEOUT):
        return self.messages.get(timeout=timeout)

    def no_message(self, timeout=0.3):
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            return True
        raise AssertionError("unexpected message on %s: %r" % (message.topic, message.payload))

    def disconnect(self):
        """DISCONNECT, then waits until the gateway has closed the connection:
        it has handled the DISCONNECT by then (paho closes its own socket at
        once, so a duplicate of it watches for the gateway's end)."""
        sock = self.client.socket()
        watcher = socket.socket(fileno=os.dup(sock.fileno())) if sock else None
        self.client.disconnect()
        self.client.loop_stop()
        if watcher:
            with watcher:
                wait_closed(watcher)

    def drop(self):
        """Ends the connection without DISCONNECT (a crash, a cut cable)."""
        self.client.loop_stop()
        self.client.socket().shutdown(socket.SHUT_RDWR)
        self.client.socket().close()

    def close(self):
        try:
            self.disconnect()
        except Exception:  # noqa: BLE001 - best effort at teardown
            self.client.loop_stop()


def wait_closed(sock, timeout=READ_TIMEOUT):
    """Reads (and drops) what comes until the peer closes; AssertionError if it does not."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError("the gateway did not close the connection") from None


def v5_properties(packet_type, **values):
    properties = Properties(packet_type)
    for name, value in values.items():
        setattr(properties, name, value)
    return properties


PUBLISH_PROPERTIES = lambda **values: v5_properties(PacketTypes.PUBLISH, **values)  # noqa: E731
CONNECT_PROPERTIES = lambda **values: v5_properties(PacketTypes.CONNECT, **values)  # noqa: E731


# --------------------------------------------------------------------- raw MQTT

def varint(value):
    out = bytearray()
    while True:
        byte = value % 128
        value //= 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def mqtt_string(text):
    data = text if isinstance(text, bytes) else text.encode()
    return struct.pack(">H", len(data)) + data


def packet(first_byte, body):
    return bytes([first_byte]) + varint(len(body)) + body


def properties(*pairs):
    """v5 properties from (identifier, encoded value) pairs, with their length."""
    data = b"".join(bytes([identifier]) + value for identifier, value in pairs)
    return varint(len(data)) + data


def u16(value):
    return struct.pack(">H", value)


def u32(value):
    return struct.pack(">I", value)


def connect_packet(client_id="raw", version=5, keepalive=30, clean=True, will=None,
                   props=b"\x00", will_props=b"\x00"):
    """CONNECT; `will` is (topic, payload, qos); `props` are v5 properties (properties())."""
    flags = 0x02 if clean else 0
    payload = mqtt_string(client_id)
    if will:
        flags |= 0x04 | (will[2] << 3)
        if version == 5:
            payload += will_props
        payload += mqtt_string(will[0]) + mqtt_string(will[1])
    body = mqtt_string("MQTT") + bytes([version, flags]) + struct.pack(">H", keepalive)
    if version == 5:
        body += props
    return packet(0x10, body + payload)


def publish_packet(topic, payload=b"", qos=0, packet_id=1, version=5, first_byte=None,
                   props=b"\x00"):
    body = mqtt_string(topic)
    if qos:
        body += struct.pack(">H", packet_id)
    if version == 5:
        body += props
    return packet(first_byte if first_byte is not None else 0x30 | (qos << 1), body + payload)


class RawMqtt(SocketOwner):
    """A plain socket: send bytes, read whole packets, see the close."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("closed")
        self.buffer += chunk

    def read_packet(self):
        """(first byte, body); EOFError once the gateway has closed."""
        while True:
            if len(self.buffer) >= 2:
                length, shift, index = 0, 0, 1
                while index < len(self.buffer) and index <= 4:
                    byte = self.buffer[index]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    index += 1
                    if not byte & 0x80:
                        if len(self.buffer) >= index + length:
                            first, body = self.buffer[0], self.buffer[index:index + length]
                            self.buffer = self.buffer[index + length:]
                            return first, body
                        break
            self._fill()

    def connect(self, **kwargs):
        self.send(connect_packet(**kwargs))
        first, body = self.read_packet()
        assert first == 0x20, "expected CONNACK, got %02x" % first
        return body

    def expect_close(self):
        """The packets the gateway sent before it closed (DISCONNECT last, if any)."""
        packets = []
        while True:
            try:
                packets.append(self.read_packet())
            except (EOFError, ConnectionResetError):
                return packets

    def disconnect(self):
        """A v5/3.1.1 DISCONNECT (normal), then the gateway's close."""
        self.send(b"\xe0\x00")
        return self.expect_close()


def disconnect_reason(packets):
    """The reason code of the DISCONNECT among `packets`, or None."""
    for first, body in packets:
        if first == 0xE0:
            return body[0] if body else 0
    return None
