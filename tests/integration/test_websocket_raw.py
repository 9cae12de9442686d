"""The WebSocket gateway against hand-built input (RFC 6455, brief §3.2):
malformed frames, bad handshakes, truncated requests, keepalive without
pongs, and a client that stops reading.

Most cases share one hub (`shared_hub`, see ws_support.py): after each bad
input the offender must get the right close frame and then EOF, while a
long-lived WebSocket client, a long-lived TCP client and a fresh WebSocket
client still get answers and the gateway process is still the same one.
"""
import re
import struct

import pytest

from conftest import Client, wait_until
from ws_support import (CLIENT_ID, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                        RawConn, RawWs, accept_for, close_code_of, close_payload, frame,
                        tcp_client_list, upgrade_request)
from ws_support import shared_hub, shared_hub_module  # noqa: F401 - fixtures

# --------------------------------------------------------------------- malformed frames

BIG = 2 ** 40
DEFAULT_MAX_MESSAGE = 65536


def _huge_fragmented():
    """A text message of two 40000-byte fragments: 80000 > 65536."""
    first = b"echo " + b"a" * 39995
    return [frame(OP_TEXT, first, fin=False), frame(OP_CONT, b"b" * 40000)]


MALFORMED = {
    # name: (frames to send, expected close code)
    "unmasked-text": ([frame(OP_TEXT, b"ping", mask=False)], 1002),
    "unmasked-close": ([frame(OP_CLOSE, close_payload(1000), mask=False)], 1002),
    **{"reserved-opcode-%X" % op: ([frame(op, b"ping")], 1002)
       for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)},
    "rsv1": ([frame(OP_TEXT, b"ping", rsv=4)], 1002),
    "rsv2": ([frame(OP_TEXT, b"ping", rsv=2)], 1002),
    "rsv3": ([frame(OP_TEXT, b"ping", rsv=1)], 1002),
    "rsv-on-ping": ([frame(OP_PING, b"x", rsv=4)], 1002),
    "fragmented-ping": ([frame(OP_PING, b"x", fin=False)], 1002),
    "fragmented-pong": ([frame(OP_PONG, b"x", fin=False)], 1002),
    "fragmented-close": ([frame(OP_CLOSE, close_payload(1000), fin=False)], 1002),
    "ping-126-bytes": ([frame(OP_PING, b"p" * 126)], 1002),
    "pong-200-bytes": ([frame(OP_PONG, b"p" * 200)], 1002),
    "close-126-bytes": ([frame(OP_CLOSE, close_payload(1000, b"r" * 124))], 1002),
    "continuation-without-start": ([frame(OP_CONT, b"ping")], 1002),
    "continuation-not-final-without-start": ([frame(OP_CONT, b"pi", fin=False)], 1002),
    "text-inside-fragmented-message": ([frame(OP_TEXT, b"echo a", fin=False),
                                        frame(OP_TEXT, b"echo b")], 1002),
    "binary-inside-fragmented-message": ([frame(OP_TEXT, b"echo a", fin=False),
                                          frame(OP_BINARY, b"b")], 1002),
    "binary": ([frame(OP_BINARY, b"\x00\x01ping")], 1003),
    "binary-fragmented": ([frame(OP_BINARY, b"\x00", fin=False), frame(OP_CONT, b"\x01")], 1003),
    "utf8-invalid-byte": ([frame(OP_TEXT, b"echo \xff\xfe")], 1007),
    "utf8-overlong": ([frame(OP_TEXT, b"echo \xc0\xaf")], 1007),
    "utf8-surrogate": ([frame(OP_TEXT, b"echo \xed\xa0\x80")], 1007),
    "utf8-above-max": ([frame(OP_TEXT, b"echo \xf4\x90\x80\x80")], 1007),
    "utf8-truncated-at-end": ([frame(OP_TEXT, b"echo \xe2\x82")], 1007),
    "utf8-invalid-in-fragments": ([frame(OP_TEXT, b"echo \xce", fin=False),
                                   frame(OP_CONT, b"\x28 x")], 1007),
    "utf8-truncated-at-end-of-fragments": ([frame(OP_TEXT, b"echo ok ", fin=False),
                                            frame(OP_CONT, b"\xf0\x9f\x98")], 1007),
    "utf8-invalid-json": ([frame(OP_TEXT, b'{"id":1,"cmd":"echo","args":["\xff"]}')], 1007),
    **{"close-code-%d" % code: ([frame(OP_CLOSE, close_payload(code))], 1002)
       for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535)},
    "close-one-byte-payload": ([frame(OP_CLOSE, b"\x03")], 1002),
    # The header alone says it is too big: no payload byte needs to follow.
    "length-2^40-header-only": ([frame(OP_TEXT, b"", length=BIG)], 1009),
    "length-2^40-and-some-bytes": ([frame(OP_TEXT, b"echo ", length=BIG)], 1009),
    "length-max-message-plus-one-header-only": (
        [frame(OP_TEXT, b"", length=DEFAULT_MAX_MESSAGE + 1)], 1009),
    "length-max-message-plus-one-and-some-bytes": (
        [frame(OP_TEXT, b"echo ", length=DEFAULT_MAX_MESSAGE + 1)], 1009),
    "frame-over-max-message": ([frame(OP_TEXT, b"echo " + b"x" * (DEFAULT_MAX_MESSAGE + 100))],
                               1009),
    "fragments-over-max-message": (_huge_fragmented(), 1009),
    "many-small-fragments-over-max-message": (
        [frame(OP_TEXT, b"echo ", fin=False)]
        + [frame(OP_CONT, b"y" * 1000, fin=False) for _ in range(70)]
        + [frame(OP_CONT, b"end")], 1009),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_frame_gets_close_code_and_others_go_on(shared_hub, case):
    frames, code = MALFORMED[case]
    with RawWs(shared_hub.ws_port) as bad:
        for data in frames:
            if not bad.send(data, tolerate_close=True):
                break
        bad.expect_close(code)
    shared_hub.check_bystanders()


# --------------------------------------------------------------------- well-formed edge cases

def test_fragments_control_frames_and_lengths_that_are_valid(shared_hub):
    with RawWs(shared_hub.ws_port) as peer:
        # A fragmented message, with a ping between its fragments.
        peer.send(frame(OP_TEXT, b"ec", fin=False))
        peer.send(frame(OP_PING, b"mid"))
        peer.send(frame(OP_CONT, b"ho fr", fin=False))
        peer.send(frame(OP_CONT, b"agment"))
        f = peer.read_frame()
        assert (f.opcode, f.payload, f.fin) == (OP_PONG, b"mid", True), f
        assert peer.read_text() == "OK fragment"
        # A character split across fragments.
        snowman = "\u2603".encode()
        peer.send(frame(OP_TEXT, b"echo " + snowman[:1], fin=False))
        peer.send(frame(OP_CONT, snowman[1:2], fin=False))
        peer.send(frame(OP_CONT, snowman[2:] + " \u00e9".encode()))
        assert peer.read_text() == "OK \u2603 \u00e9"
        # Empty fragments are fine.
        peer.send(frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, b"ping", fin=False)
                  + frame(OP_CONT, b""))
        assert peer.read_text() == "OK pong"
        # A ping of exactly 125 bytes gets a pong with the same payload.
        peer.send_frame(OP_PING, b"q" * 125)
        f = peer.read_frame()
        assert (f.opcode, f.payload) == (OP_PONG, b"q" * 125), f
        # An empty ping too; an unsolicited pong is ignored.
        peer.send_frame(OP_PING, b"")
        f = peer.read_frame()
        assert (f.opcode, f.payload) == (OP_PONG, b""), f
        peer.send_frame(OP_PONG, b"unasked")
        # 16-bit length (and a reply long enough to use it).
        word = "w" * 1000
        assert peer.request_line("echo " + word) == "OK " + word
        # 64-bit length for a message under the limit.
        word = "v" * 20000
        peer.send(frame(OP_TEXT, ("echo " + word).encode()))
        assert peer.read_text() == "OK " + word
        # Several frames in one write, answered in order.
        peer.send(b"".join(frame(OP_TEXT, ("echo %d" % n).encode()) for n in range(10)))
        assert [peer.read_text() for _ in range(10)] == ["OK %d" % n for n in range(10)]
        # JSON with UTF-8 and escapes.
        reply = peer.request_json({"id": "u", "cmd": "echo", "args": ["gr\u00fc\u00df", "a\"b"]})
        assert reply == {"id": "u", "ok": True, "result": "gr\u00fc\u00df a\"b"}, reply
    shared_hub.check_bystanders()


@pytest.mark.parametrize("payload", [b"", close_payload(1000), close_payload(1001, b"bye"),
                                     close_payload(3000), close_payload(4999)],
                         ids=["empty", "1000", "1001-with-reason", "3000", "4999"])
def test_client_close_is_answered_with_a_close_frame(shared_hub, payload):
    with RawWs(shared_hub.ws_port) as peer:
        peer.send_frame(OP_CLOSE, payload)
        f = peer.read_frame()
        assert f.opcode == OP_CLOSE, "expected the server's close frame, got %r" % (f,)
        sent_code = struct.unpack("!H", payload[:2])[0] if payload else None
        assert close_code_of(f) in (None, 1000, sent_code), f
        assert peer.expect_eof() == b""
    shared_hub.check_bystanders()


def test_quit_sends_close_1000(shared_hub):
    with RawWs(shared_hub.ws_port) as peer:
        assert peer.request_line("quit") == "OK bye"
        peer.expect_close(1000)
    with RawWs(shared_hub.ws_port) as peer:
        assert peer.request_json({"id": 4, "cmd": "quit"}) == {"id": 4, "ok": True,
                                                               "result": "bye"}
        peer.expect_close(1000)
    shared_hub.check_bystanders()


# --------------------------------------------------------------------- handshakes

def test_handshake_accept_key_and_headers(shared_hub):
    """RFC 6455 4.2.2 with the RFC's own sample key, and a browser-like
    request (Connection: keep-alive, Upgrade; lower-case header names)."""
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    assert accept_for(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    with RawConn(shared_hub.ws_port) as conn:
        conn.send(upgrade_request(shared_hub.ws_port, key=key))
        status, _, headers, _ = conn.read_http_response()
        assert status == 101, (status, headers)
        assert headers.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", headers
        assert headers.get("upgrade", "").lower() == "websocket", headers
    request = ("GET / HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nuser-agent: test\r\n"
               "connection: keep-alive, Upgrade\r\nupgrade: WebSocket\r\n"
               "sec-websocket-version: 13\r\nsec-websocket-key: %s\r\n"
               "sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n"
               "\r\n" % (shared_hub.ws_port, key)).encode()
    with RawWs(shared_hub.ws_port, request=request, key=key) as peer:
        # No extension was agreed: frames stay plain (RSV1 would mean deflate).
        assert "permessage-deflate" not in peer.headers.get("sec-websocket-extensions", ""), \
            peer.headers
        assert CLIENT_ID.match(peer.id), peer.id
        assert peer.request_line("ping") == "OK pong"


BAD_HANDSHAKES = {
    # name: (request builder(port), expected status)
    "missing-key": (lambda p: upgrade_request(p, key=None), 400),
    "short-key": (lambda p: upgrade_request(p, key="abc"), 400),
    "key-15-bytes": (lambda p: upgrade_request(p, key="AAAAAAAAAAAAAAAAAAAA"), 400),
    "key-not-base64": (lambda p: upgrade_request(p, key="!!!!!!!!!!!!!!!!!!!!!!=="), 400),
    "version-8": (lambda p: upgrade_request(p, version="8"), 426),
    "version-14": (lambda p: upgrade_request(p, version="14"), 426),
    "origin-other-host": (lambda p: upgrade_request(p, origin="http://evil.test"), 403),
    "origin-other-port": (lambda p: upgrade_request(p, origin="http://127.0.0.1:%d" % (p + 1)),
                          403),
    "post": (lambda p: upgrade_request(p, method="POST"), 405),
    "put-plain": (lambda p: b"PUT / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", 405),
    "unknown-path": (lambda p: b"GET /no/such/page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404),
}


@pytest.mark.parametrize("case", sorted(BAD_HANDSHAKES))
def test_bad_handshake_gets_http_status(shared_hub, case):
    build, expected = BAD_HANDSHAKES[case]
    with RawConn(shared_hub.ws_port) as conn:
        conn.send(build(shared_hub.ws_port))
        status, reason, headers, body = conn.read_http_response()
        assert status == expected, "%s: got %d %s %r" % (case, status, reason, body[:200])
    shared_hub.check_bystanders()


def test_same_origin_upgrade_is_accepted(shared_hub):
    origin = "http://127.0.0.1:%d" % shared_hub.ws_port
    with RawWs(shared_hub.ws_port, origin=origin) as peer:
        assert peer.request_line("ping") == "OK pong"


def test_garbage_instead_of_http_is_not_upgraded(shared_hub):
    """Not HTTP at all (a TLS hello): no 101, and the others go on."""
    with RawConn(shared_hub.ws_port) as conn:
        conn.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n")
        try:
            data = conn.expect_eof(2)
        except AssertionError:
            data = conn.buffer
        assert not re.match(rb"^HTTP/1\.[01] 101", data), data[:80]
        shared_hub.check_bystanders()


def test_truncated_handshake_gets_408_and_is_closed(components, ws_gateway):
    c = components(pools={"default": 1})
    _, port = ws_gateway(c, "--handshake-timeout", "0.3")
    with RawWs(port) as established, RawConn(port) as half, RawConn(port) as silent:
        half.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websock")
        for conn in (half, silent):
            data = conn.expect_eof(5)
            assert re.match(rb"^HTTP/1\.[01] 408", data), data[:200]
        # The handshake timeout does not apply to an established client.
        assert established.request_line("echo fine") == "OK fine"


# --------------------------------------------------------------------- keepalive

def test_a_client_that_never_answers_pings_is_closed_1001(components, ws_gateway):
    c = components(pools={"default": 1})
    _, port = ws_gateway(c, "--ping-interval", "0.2", "--idle-timeout", "1")
    with RawWs(port, auto_pong=False) as mute:
        mute.expect_close(1001, timeout=5)
        assert len(mute.pings) >= 2, "pings before the close: %r" % mute.pings


def test_a_client_that_answers_pings_stays_connected(components, ws_gateway):
    """Answering 12 pings at 0.2 s takes 2.4 s, more than twice the idle timeout."""
    c = components(pools={"default": 1})
    _, port = ws_gateway(c, "--ping-interval", "0.2", "--idle-timeout", "1")
    with RawWs(port) as peer:
        while len(peer.pings) < 12:
            f = peer.read_frame(2)
            assert f.opcode == OP_PING, "expected a ping, got %r" % (f,)
            peer.pings.append(f.payload)
            peer.send_frame(OP_PONG, f.payload)
        assert peer.request_line("echo still here") == "OK still here"


# --------------------------------------------------------------------- a client that stops reading

def test_websocket_subscriber_that_does_not_read_is_disconnected(components, ws_gateway):
    c = components(pools={"default": 1})
    proc, port = ws_gateway(c, "--max-output", "4096")
    payload = "p" * 4000
    batch = 10
    with Client(c.port) as publisher, RawWs(port) as reader, \
            RawWs(port, rcvbuf=4096) as slow:
        assert slow.request_line("sub flood/#") == "OK"
        # From here on `slow` never reads.
        assert reader.request_line("sub flood/#") == "OK"
        assert reader.request_line("stats broker").startswith("OK ")
        sent = 0
        wait_until(lambda: slow.id in tcp_client_list(publisher), 5, "the slow client to join")
        while slow.id in tcp_client_list(publisher):
            assert sent < 4000, "the slow subscriber was still connected after %d events " \
                "of %d bytes" % (sent, len(payload))
            publisher.send(*["pub flood/%d %s" % (sent + n, payload) for n in range(batch)])
            assert publisher.read_lines(batch) == ["OK"] * batch
            for n in range(batch):
                assert reader.next_async() == {"event": "flood/%d" % (sent + n), "data": payload}
            sent += batch
        # The others go on, and nothing was lost for the reader.
        for n in range(20):
            assert publisher.request("pub flood/more/%d x" % n) == "OK"
        for n in range(20):
            assert reader.next_async() == {"event": "flood/more/%d" % n, "data": "x"}
        assert reader.request_line("echo after") == "OK after"
        assert publisher.request("echo after") == "OK after"

        # The slow client's connection ends after what had been sent.
        def ended():
            try:
                slow.expect_eof(0.2)
            except AssertionError:
                slow.buffer = b""
                return False
            return True

        wait_until(ended, 5, "the slow subscriber's connection to be closed")
        assert proc.alive()


# --------------------------------------------------------------------- --max-message

def test_max_message_flag_sets_the_limit(components, ws_gateway):
    """--max-message 1000: a 1000-byte message is served, 1001 bytes in one
    frame or in fragments is closed with 1009."""
    c = components(pools={"default": 1})
    _, port = ws_gateway(c, "--max-message", "1000")
    with RawWs(port) as peer:
        word = "m" * 995
        assert peer.request_line("echo " + word) == "OK " + word
        peer.send(frame(OP_TEXT, b"echo ", fin=False) + frame(OP_CONT, word.encode()))
        assert peer.read_text() == "OK " + word
    with RawWs(port) as peer:
        peer.send_frame(OP_TEXT, b"echo " + b"m" * 996, tolerate_close=True)
        peer.expect_close(1009)
    with RawWs(port) as peer:
        peer.send(frame(OP_TEXT, b"echo " + b"m" * 500, fin=False), tolerate_close=True)
        peer.send(frame(OP_CONT, b"m" * 496), tolerate_close=True)
        peer.expect_close(1009)
    with RawWs(port) as peer:
        peer.send_frame(OP_TEXT, b"", length=1001, tolerate_close=True)
        peer.expect_close(1009)
    with Client(c.port) as tcp, RawWs(port) as other:
        assert other.request_line("echo fine") == "OK fine"
        assert tcp.request("echo fine") == "OK fine"
