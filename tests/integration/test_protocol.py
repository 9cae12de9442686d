"""The TCP line protocol (§3.1, §4) through the all-in-one launcher."""
import datetime
import re
import socket
import subprocess

from conftest import GREETING_RE, binary, stats_of

ISO_UTC_RE = re.compile(r"^OK (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)$")


def test_greeting_names_version_and_client_id(hub, clients):
    first = clients(hub.port)
    second = clients(hub.port)
    match_1 = GREETING_RE.match(first.greeting)
    match_2 = GREETING_RE.match(second.greeting)
    assert match_1, "bad greeting %r" % first.greeting
    assert match_2, "bad greeting %r" % second.greeting
    version = subprocess.run([binary("sb-gateway-tcp"), "--version"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.split()[-1]
    assert match_1.group(1) == version
    assert match_1.group(2) != match_2.group(2), "two clients got the same id"


def test_echo_hello_ping(hub, clients):
    client = clients(hub.port)
    assert client.request("ping") == "OK pong"
    assert client.request("echo hi there") == "OK hi there"
    assert client.request("echo") == "OK"
    assert client.request("hello bob") == "OK Hello BOB"
    assert client.request("@t1 echo tagged") == "@t1 OK tagged"
    assert client.request("@t2 ping") == "@t2 OK pong"


def test_time_is_iso8601_utc_and_now(hub, clients):
    client = clients(hub.port)
    reply = client.request("time")
    match = ISO_UTC_RE.match(reply)
    assert match, "time answered %r" % reply
    stamp = datetime.datetime.strptime(match.group(1)[:19], "%Y-%m-%dT%H:%M:%S")
    stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - stamp).total_seconds()) < 300, "time %s is far from now %s" % (stamp, now)


def test_help_lists_the_commands(hub, clients):
    reply = clients(hub.port).request("help")
    assert reply.startswith("OK "), reply
    names = set(reply[3:].split())
    expected = {"ping", "echo", "hello", "sleep", "time", "help", "stats", "quit"}
    assert expected <= names, "help lacks %s: %r" % (sorted(expected - names), reply)


def test_stats_is_key_value(hub, clients):
    client = clients(hub.port)
    client.request("echo count me")
    stats = stats_of(client)
    for key in ("connections", "requests", "replies", "in_flight"):
        assert key in stats and stats[key].isdigit(), "stats lacks %s: %r" % (key, stats)
    assert int(stats["requests"]) >= 1 and int(stats["connections"]) >= 1


def test_quit_says_bye_then_closes(hub, clients):
    client = clients(hub.port)
    assert client.request("quit") == "OK bye"
    client.expect_eof()


def test_quit_waits_for_earlier_replies(hub, clients):
    client = clients(hub.port)
    client.send("sleep 0.3", "echo before", "quit")
    assert client.read_lines(3) == ["OK slept 0.3", "OK before", "OK bye"]
    client.expect_eof()


def test_nothing_after_quit_is_answered(hub, clients):
    client = clients(hub.port)
    client.send("ping", "quit", "ping", "echo late")
    assert client.read_lines(2) == ["OK pong", "OK bye"]
    client.expect_eof()


def test_half_closed_client_gets_every_reply_then_eof(hub, clients):
    """What `printf 'echo hi\\nsleep 0.2\\n' | nc` does: send, shut down the
    sending side, read until the server closes."""
    client = clients(hub.port)
    client.send("echo hi", "sleep 0.2", "@t ping")
    client.sock.shutdown(socket.SHUT_WR)
    replies = client.read_lines(3, timeout=5)
    assert [line for line in replies if not line.startswith("@")] == ["OK hi", "OK slept 0.2"]
    assert "@t OK pong" in replies, replies
    client.expect_eof()


def test_quoting(hub, clients):
    client = clients(hub.port)
    # Quoted arguments keep their spaces; `\"` and `\\` are escapes inside quotes.
    assert client.request(r'echo "a b" "c\"d" x\\y') == r'OK a b c"d x\\y'
    assert client.request(r'echo "x\\y"') == r"OK x\y"
    assert client.request('echo "two  spaces"   kept') == "OK two  spaces kept"
    assert client.request('echo unquoted   spaces') == "OK unquoted spaces"
    assert client.request('echo ab"c d"e') == "OK abc de"
    assert client.request('hello "bob smith"') == "OK Hello BOB SMITH"
    assert client.request("echo\ttabs\tsplit") == "OK tabs split"


def test_bad_quoting_is_bad_args(hub, clients):
    client = clients(hub.port)
    for line in ('echo "unterminated', r'echo "bad \q escape"', '@q echo "open', "@q",
                 "echo nul\0byte", "@ echo no tag"):
        reply = client.request(line)
        prefix = "@q " if line.startswith("@q") else ""
        assert re.match(r"^%sERR bad-args \S" % prefix, reply), "%r -> %r" % (line, reply)
    assert client.request("ping") == "OK pong", "connection unusable after bad-args"


def test_line_split_across_writes(hub, clients):
    client = clients(hub.port)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.send_raw(b"ec")
    assert client.read_available(0.05) == [], "a partial line was answered"
    client.send_raw(b"ho sp")
    assert client.read_available(0.05) == [], "a partial line was answered"
    client.send_raw(b"lit\npi")
    assert client.read_line() == "OK split"
    client.send_raw(b"ng")
    assert client.read_available(0.05) == [], "a partial line was answered"
    client.send_raw(b"\n")
    assert client.read_line() == "OK pong"


def test_crlf_line_endings_are_accepted(hub, clients):
    client = clients(hub.port)
    client.send_raw(b"ping\r\necho crlf\r\nhello ann\r\n")
    assert client.read_lines(3) == ["OK pong", "OK crlf", "OK Hello ANN"]
    client.send_raw(b"@c echo tagged\r\n")
    assert client.read_line() == "@c OK tagged"


def test_empty_lines_are_ignored(hub, clients):
    client = clients(hub.port)
    client.send_raw(b"\n\r\n   \nping\n")
    assert client.read_line() == "OK pong"
    assert client.read_available(0.2) == [], "empty lines were answered"


def test_unknown_command(hub, clients):
    client = clients(hub.port)
    reply = client.request("frobnicate 1 2")
    assert re.match(r"^ERR unknown-command \S", reply), reply
    reply = client.request("@u frobnicate")
    assert re.match(r"^@u ERR unknown-command \S", reply), reply
    assert client.request("ping") == "OK pong"


def test_too_long_line_then_connection_still_usable(hub, clients):
    client = clients(hub.port)
    line = "echo " + "x" * (65537 - 5)
    assert len(line) == 65537
    client.send(line, "ping")
    reply = client.read_line()
    assert re.match(r"^ERR too-long\b", reply), reply[:200]
    assert client.read_line() == "OK pong"
    assert client.request("echo still here") == "OK still here"


def test_very_long_line_gets_one_too_long(hub, clients):
    client = clients(hub.port)
    client.send_raw(b"echo " + b"y" * 300000 + b"\nping\n")
    reply = client.read_line()
    assert re.match(r"^ERR too-long\b", reply), reply[:200]
    assert client.read_line() == "OK pong", "expected exactly one ERR too-long, then pong"


def test_line_of_exactly_the_limit_is_accepted(hub, clients):
    client = clients(hub.port)
    line = "ping" + " " * (65536 - 4)
    assert len(line) == 65536
    client.send(line)
    assert client.read_line() == "OK pong"
