"""Tokens and access rules (issue 11, section 1): `[token NAME]` and
`[anonymous]` in the config, `auth NAME SECRET`, the rules for commands,
`pub`, `sub` and event delivery, what `clients`/`client`/`tell` show and
reach, the token in an external command's environment, the WebSocket
`Authorization: Bearer` header, `switchboard hash-secret`, and the growing
delay after failed `auth`s.

Every hub here runs with tokens, so the usual readiness probe (`echo ready`
as an anonymous client) would be refused: `start` waits with a token."""
import hashlib
import json
import os
import re
import select
import subprocess
import time

import pytest

from conftest import REPO, Client, binary, log_records, wait_until, STARTUP_TIMEOUT
from ws_support import RawConn, RawWs, WsPeers, run, upgrade_request

PANEL_SECRET = "panel-secret"
ADMIN_SECRET = "admin secret with spaces"   # a plain `secret`, spaces and all

UNAUTHORIZED = "ERR unauthorized unknown token or wrong secret"


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def make_script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def tokens_config(tmp_path, anonymous="", extra=""):
    """panel: home/# only, a few commands; admin: the defaults (everything)."""
    showenv = make_script(tmp_path, "showenv.sh",
                          'printf "client=%s|token=%s|" "$SWITCHBOARD_CLIENT" '
                          '"$SWITCHBOARD_TOKEN"\n')
    return """
[store]
path = %s

[command showenv]
exec = %s

[token panel]
secret_sha256 = %s
commands = ping help quit auth echo sub unsub pub clients client tell stats showenv
publish = home/#
subscribe = home/#

[token admin]
secret = %s
%s
%s
""" % (tmp_path / "accounts.db", showenv, sha256_hex(PANEL_SECRET), ADMIN_SECRET, anonymous,
       extra)


def authed(port, name, secret, **kwargs):
    client = Client(port, **kwargs)
    reply = client.request("auth %s %s" % (name, quote(secret)))
    assert reply == "OK", reply
    return client


def quote(secret):
    return '"%s"' % secret if " " in secret else secret


def admin_answers_echo(port):
    """Whether `echo` is answered: as the admin, or anonymously where the
    [anonymous] rules leave `auth` out."""
    try:
        with Client(port, timeout=2.0) as client:
            client.request('auth admin "%s"' % ADMIN_SECRET)
            return client.request("echo ready") == "OK ready"
    except (OSError, TimeoutError, EOFError):
        return False


@pytest.fixture
def start(components, tmp_path):
    """Starts broker, pool and TCP gateway with the tokens config; waits
    until the admin token gets `echo ready` answered."""

    def start_hub(anonymous="", extra=""):
        c = components(tokens_config(tmp_path, anonymous, extra), pools={"default": 1},
                       wait=False)
        wait_until(lambda: c.gateway.alive() and admin_answers_echo(c.port), STARTUP_TIMEOUT,
                   "the gateway to answer the admin token's echo")
        return c

    return start_hub


@pytest.fixture
def peer(peers):
    """A Peer that has said `auth NAME SECRET`."""

    def connect(port, name=None, secret=None):
        p = peers(port)
        if name:
            assert p.ask("auth %s %s" % (name, quote(secret))) == "OK"
        return p

    return connect


# --------------------------------------------------------------------- anonymous, auth

def test_anonymous_clients_get_only_the_default_commands(start, clients):
    c = start()
    client = clients(c.port)
    assert client.request("ping") == "OK pong"
    assert client.request("help").startswith("OK ")
    for line in ("echo hi", "time", "jack:dp", "stats", "clients", "sub #", "pub home/x 1",
                 "tell tcp-1 hi", "devices"):
        assert client.request(line).startswith("ERR unauthorized "), line
    assert client.request("quit") == "OK bye"
    client.expect_eof()


def test_anonymous_section_replaces_the_defaults(start, peer, clients):
    c = start(anonymous="[anonymous]\ncommands = ping echo sub\nsubscribe = public/#\n")
    anonymous = peer(c.port)
    assert anonymous.ask("echo hi") == "OK hi"
    assert anonymous.ask("help").startswith("ERR unauthorized ")
    assert anonymous.ask("sub public/#") == "OK"
    assert anonymous.ask("sub home/#").startswith("ERR unauthorized ")
    # `auth` is not in its list: an anonymous client of this hub cannot log in.
    assert anonymous.ask("auth panel %s" % PANEL_SECRET).startswith("ERR unauthorized ")


def test_auth_answers_alike_for_an_unknown_name_and_a_wrong_secret(start, clients):
    c = start()
    client = clients(c.port)
    assert client.request("auth panel wrong") == UNAUTHORIZED
    assert client.request("auth nobody %s" % PANEL_SECRET) == UNAUTHORIZED
    assert client.request("auth panel").startswith("ERR bad-args ")
    assert client.request("echo still-anonymous").startswith("ERR unauthorized ")
    assert client.request("auth panel %s" % PANEL_SECRET) == "OK"
    assert client.request("echo hi") == "OK hi"
    # A plain `secret` works the same (quoted: it has spaces).
    assert client.request('auth admin "%s"' % ADMIN_SECRET) == "OK"
    assert client.request("time").startswith("OK ")
    refused = log_records(c.gateway, "auth refused")
    assert [r.get("token") for r in refused] == ["panel", "nobody"], refused
    assert not any(PANEL_SECRET in r["_line"] or "wrong" in r["_line"] for r in refused)
    assert len(log_records(c.gateway, "client authenticated")) >= 2


def test_plain_secret_in_a_readable_file_is_warned_about(start):
    c = start()
    warnings = log_records(c.gateway, "a plain token secret is in a file others may read")
    assert [w.get("token") for w in warnings] == ["admin"], warnings


# --------------------------------------------------------------------- commands, pub, sub

def test_commands_outside_the_rules_are_unauthorized(start, clients):
    c = start()
    panel = authed(c.port, "panel", PANEL_SECRET)
    try:
        assert panel.request("echo x") == "OK x"
        for line in ("time", "hello bob", "jack:dp", "account jack balance", "devices",
                     "no-such-command"):
            assert panel.request(line).startswith("ERR unauthorized "), line
        assert panel.request("stats").startswith("OK ")
    finally:
        panel.close()


def test_pub_outside_the_publish_rules_is_unauthorized(start, peer):
    c = start()
    panel = peer(c.port, "panel", PANEL_SECRET)
    assert panel.ask("pub other/y 1").startswith("ERR unauthorized ")
    assert panel.ask("pub home/x 1") == "OK"


def test_sub_everything_by_a_limited_client_gets_only_its_topics(start, peer):
    c = start()
    panel = peer(c.port, "panel", PANEL_SECRET)
    admin = peer(c.port, "admin", ADMIN_SECRET)
    assert panel.ask("sub other/#").startswith("ERR unauthorized ")
    assert panel.ask("sub $sys/#").startswith("ERR unauthorized ")
    panel.subscribe("#")
    admin.subscribe("#")
    # Both topics from one publisher, in order: `home/x` arriving first
    # proves `other/y`, published before it, was not given to the panel.
    assert admin.ask("pub other/y 1") == "OK"
    assert admin.ask("pub home/x 2") == "OK"
    assert panel.await_event("EVENT home/x 2") == "EVENT home/x 2"
    assert admin.await_event("EVENT other/y 1") == "EVENT other/y 1"
    assert admin.await_event("EVENT home/x 2") == "EVENT home/x 2"
    # And again after: a marker event closes the window.
    assert admin.ask("pub other/z 3") == "OK"
    assert admin.ask("pub home/marker 4") == "OK"
    assert panel.await_event("EVENT home/marker 4") == "EVENT home/marker 4"
    assert not any("other/" in line for line in panel.seen_async), panel.seen_async


# --------------------------------------------------------------------- clients, client, tell

def test_clients_client_and_tell_follow_the_subscribe_rules(start, peer):
    c = start()
    panel = peer(c.port, "panel", PANEL_SECRET)
    admin = peer(c.port, "admin", ADMIN_SECRET)
    # The admin may subscribe to $sys/clients/ID: it sees and reaches everyone.
    listed = admin.ask("clients")
    assert listed.startswith("OK ") and panel.id in listed.split() and admin.id in listed.split()
    assert admin.ask("client %s" % panel.id).startswith("OK id=%s " % panel.id)
    assert admin.ask("tell %s hello panel" % panel.id) == "OK"
    assert panel.next_async() == "MSG %s hello panel" % admin.id
    # The panel (subscribe = home/#) sees nobody, itself included, and reaches nobody.
    assert panel.ask("clients") == "OK"
    assert panel.ask("client %s" % admin.id).startswith("ERR unauthorized ")
    assert panel.ask("client no-such-client").startswith("ERR unauthorized ")
    assert panel.ask("tell %s hi" % admin.id).startswith("ERR unauthorized ")
    assert admin.ask("ping") == "OK pong"
    admin.no_async_now()


# --------------------------------------------------------------------- identity in the envelope

def test_an_external_command_sees_the_client_and_its_token(start, peer):
    c = start(anonymous="[anonymous]\ncommands = showenv auth\n")
    anonymous = peer(c.port)
    assert anonymous.ask("showenv") == "OK client=%s|token=|" % anonymous.id
    assert anonymous.ask('auth admin "%s"' % ADMIN_SECRET) == "OK"
    assert anonymous.ask("showenv") == "OK client=%s|token=admin|" % anonymous.id
    panel = peer(c.port, "panel", PANEL_SECRET)
    assert panel.ask("showenv") == "OK client=%s|token=panel|" % panel.id


# --------------------------------------------------------------------- failures and their delay

def test_repeated_failures_are_answered_later_and_in_order(start, clients):
    c = start()
    client = clients(c.port, timeout=30)
    # Pipelined: six failures (the 4th to 6th wait), then requests that
    # must wait behind them, then a success, which does not start over.
    lines = ["auth panel wrong-%d" % i for i in range(6)]
    lines += ["ping", "auth panel %s" % PANEL_SECRET, "echo after", "auth panel wrong-again"]
    client.send(*lines)
    replies = client.read_lines(len(lines), timeout=30)
    assert replies == [UNAUTHORIZED] * 6 + ["OK pong", "OK", "OK after", UNAUTHORIZED]
    delays = [int(r["delay_ms"]) for r in log_records(c.gateway, "auth refused")]
    # 0 for three failures, then doubling from 250 ms; the success changes nothing.
    assert delays == [0, 0, 0, 250, 500, 1000, 2000], delays
    # Another client of the same address is answered meanwhile (the loop never blocks).
    other = clients(c.port)
    assert other.request("ping") == "OK pong"
    stats = authed(c.port, "admin", ADMIN_SECRET)
    try:
        assert "auth_failures=7" in stats.request("stats")
    finally:
        stats.close()


def replies_in_arrival_order(wanted, timeout=30):
    """Reads several Clients ({name: (client, count)}) in one select loop
    until each has given `count` lines. Returns [(round, name, line)]:
    `round` counts the select calls, so lines of one round came together
    and a smaller round came first."""
    arrivals = []
    rounds = 0

    def take(name, client):
        while b"\n" in client.buffer:
            line, client.buffer = client.buffer.split(b"\n", 1)
            arrivals.append((rounds, name, line.decode()))

    def missing():
        return [name for name, (_, count) in wanted.items()
                if sum(1 for a in arrivals if a[1] == name) < count]

    owners = {client.sock: name for name, (client, _) in wanted.items()}
    for name, (client, _) in wanted.items():
        take(name, client)
    deadline = time.monotonic() + timeout
    while missing():
        left = deadline - time.monotonic()
        assert left > 0, "no reply from %r within %ss: %r" % (missing(), timeout, arrivals)
        readable, _, _ = select.select(list(owners), [], [], left)
        rounds += 1
        for sock in readable:
            client = wanted[owners[sock]][0]
            chunk = sock.recv(65536)
            assert chunk, "%s closed: %r" % (owners[sock], arrivals)
            client.buffer += chunk
            take(owners[sock], client)
    return arrivals


def refused_delays(gateway):
    return [int(r["delay_ms"]) for r in log_records(gateway, "auth refused")]


def test_no_auth_is_tried_while_its_address_waits_and_a_success_keeps_the_count(start,
                                                                                 clients):
    c = start()
    guesser = clients(c.port, timeout=30)
    # Three free failures, the right secret (it must not start the count
    # over), then four more failures: the next one already waits.
    lines = ["auth panel wrong-%d" % i for i in range(3)] + ["auth panel %s" % PANEL_SECRET]
    lines += ["auth panel wrong-%d" % i for i in range(3, 7)]
    guesser.send(*lines)
    # The last failure waits 2 s. Meanwhile a second connection from the
    # same address says the right secret: it is not even tried before the
    # delay is over, so its OK cannot come before the guess's answer.
    wait_until(lambda: refused_delays(c.gateway)[-1:] == [2000], 15,
               "the 7th failure, with its 2 s delay")
    other = clients(c.port, timeout=30)
    other.send("auth panel %s" % PANEL_SECRET)
    arrivals = replies_in_arrival_order({"guesser": (guesser, len(lines)), "other": (other, 1)})
    assert [a[2] for a in arrivals if a[1] == "guesser"] == [UNAUTHORIZED] * 3 + ["OK"] \
        + [UNAUTHORIZED] * 4, arrivals
    ok_round = [a[0] for a in arrivals if a[1] == "other"]
    last_guess_round = [a[0] for a in arrivals if a[1] == "guesser"][-1]
    assert [a[2] for a in arrivals if a[1] == "other"] == ["OK"], arrivals
    assert last_guess_round <= ok_round[0], arrivals
    assert log_records(c.gateway, "auth waits, its address is in a delay"), c.gateway.log_tail()
    # The failure right after the success still waited: nothing started over.
    assert refused_delays(c.gateway) == [0, 0, 0, 250, 500, 1000, 2000], \
        refused_delays(c.gateway)


def watched_panel(c, peer, clients):
    """A panel client, and a watcher subscribed to what it may publish."""
    watcher = peer(c.port, "panel", PANEL_SECRET)
    watcher.subscribe("home/#")
    client = clients(c.port, timeout=30)
    assert client.request("auth panel %s" % PANEL_SECRET) == "OK"
    return watcher, client


def test_a_client_closed_during_a_delayed_auth_leaves_nothing_behind(start, peer, clients):
    c = start()
    watcher, leaver = watched_panel(c, peer, clients)
    # The 7th failure waits 2 s; the pub is held behind it.
    leaver.send(*["auth panel wrong-%d" % i for i in range(7)], "pub home/left-behind 1")
    wait_until(lambda: refused_delays(c.gateway)[-1:] == [2000], 15,
               "the 7th failure, with its 2 s delay")
    leaver.close()
    # Another client of the address waits for the same delay: once it is
    # answered, the closed client's delay is over too.
    prober = clients(c.port, timeout=30)
    assert prober.request("auth panel %s" % PANEL_SECRET) == "OK"
    assert log_records(c.gateway, "auth waits, its address is in a delay"), \
        "the client was not closed during its delay"
    assert prober.request("pub home/marker 2") == "OK"
    assert watcher.await_event("EVENT home/marker 2") == "EVENT home/marker 2"
    assert c.gateway.alive()


def test_quit_behind_a_delayed_auth_runs_nothing_after_it(start, peer, clients):
    c = start()
    watcher, quitter = watched_panel(c, peer, clients)
    # The 4th failure waits; everything after it is held behind it.
    quitter.send(*["auth panel wrong-%d" % i for i in range(4)], "pub home/before-quit 1",
                 "quit", "pub home/after-quit 2", "echo after-quit")
    assert quitter.read_lines(6) == [UNAUTHORIZED] * 4 + ["OK", "OK bye"]
    quitter.expect_eof()
    assert refused_delays(c.gateway)[-1] > 0
    assert watcher.await_event("EVENT home/before-quit 1") == "EVENT home/before-quit 1"
    # A marker published after the quit: nothing may come between.
    assert watcher.ask("pub home/marker 3") == "OK"
    assert watcher.await_event("EVENT home/marker 3") == "EVENT home/marker 3"


# --------------------------------------------------------------------- bank aliases, JSON

TELLER = "[token teller]\nsecret = teller-secret\ncommands = account ping\n"


def test_bank_aliases_and_json_requests_follow_the_rules(start, peer, ws_gateway):
    c = start(extra=TELLER)
    panel = peer(c.port, "panel", PANEL_SECRET)
    teller = peer(c.port, "teller", "teller-secret")
    admin = peer(c.port, "admin", ADMIN_SECRET)
    # `NAME:dp` is `account`: a token without it may not use the alias.
    for line in ("jack:dp", "jack:wd"):
        assert panel.ask(line).startswith("ERR unauthorized "), line
    assert teller.ask("jack:dp") == "jack's money: 1"
    assert teller.ask("echo x").startswith("ERR unauthorized ")
    proc, port = ws_gateway(c)

    async def scenario():
        async with WsPeers() as open_peer:
            ws_panel = await open_peer(port, extra_headers={
                "Authorization": "Bearer panel:%s" % PANEL_SECRET})
            for request in (("jack:dp",), ("account", "jack", "deposit"),
                            ("pub", "other/y", "1"), ("sub", "other/#"), ("time",),
                            ("tell", admin.id, "hi")):
                reply = await ws_panel.cmd(*request)
                assert reply["ok"] is False and reply["error"]["code"] == "unauthorized", \
                    (request, reply)
            assert (await ws_panel.ok("echo", "allowed")) == "allowed"
            ws_teller = await open_peer(port, extra_headers={
                "Authorization": "Bearer teller:teller-secret"})
            # The second deposit: none of the panel's went through.
            assert (await ws_teller.ok("jack:dp")) == "jack's money: 2"
            assert (await ws_teller.cmd("echo", "x"))["error"]["code"] == "unauthorized"

    run(scenario())
    admin.no_async_now()


# --------------------------------------------------------------------- the Docker health check

HEALTHCHECK = REPO / "deploy" / "healthcheck.sh"
# A secret with what a request line must escape.
PROBE_SECRET = 'a "quoted" back\\slash'


def healthcheck(port, **env):
    return subprocess.run(["sh", str(HEALTHCHECK), "tcp", str(port)], capture_output=True,
                          text=True, timeout=30, env=dict(PATH=os.environ["PATH"], **env))


def test_the_docker_health_check_logs_in_with_its_token(start, tmp_path):
    c = start(extra="[token probe]\nsecret_sha256 = %s\ncommands = stats\n"
                    % sha256_hex(PROBE_SECRET))
    anonymous = healthcheck(c.port)
    assert anonymous.returncode == 1, anonymous
    assert "SWITCHBOARD_HEALTHCHECK_TOKEN" in anonymous.stderr, anonymous
    secret_file = tmp_path / "probe-secret"
    secret_file.write_text(PROBE_SECRET + "\n")
    passed = healthcheck(c.port, SWITCHBOARD_HEALTHCHECK_TOKEN="probe",
                         SWITCHBOARD_HEALTHCHECK_SECRET_FILE=str(secret_file))
    assert passed.returncode == 0, passed
    passed = healthcheck(c.port, SWITCHBOARD_HEALTHCHECK_TOKEN="probe",
                         SWITCHBOARD_HEALTHCHECK_SECRET=PROBE_SECRET)
    assert passed.returncode == 0, passed
    wrong = healthcheck(c.port, SWITCHBOARD_HEALTHCHECK_TOKEN="probe",
                        SWITCHBOARD_HEALTHCHECK_SECRET="not it")
    assert wrong.returncode == 1, wrong
    assert [r.get("token") for r in log_records(c.gateway, "client authenticated")
            ].count("probe") == 2


# --------------------------------------------------------------------- WebSocket

def test_websocket_bearer_header_and_auth_message(start, ws_gateway):
    c = start()
    proc, port = ws_gateway(c)

    async def scenario():
        async with WsPeers() as open_peer:
            panel = await open_peer(port, extra_headers={
                "Authorization": "Bearer panel:%s" % PANEL_SECRET})
            assert (await panel.ok("echo", "x")) == "x"
            refused = await panel.cmd("time")
            assert refused["ok"] is False and refused["error"]["code"] == "unauthorized"
            anonymous = await open_peer(port)
            refused = await anonymous.cmd("echo", "x")
            assert refused["ok"] is False and refused["error"]["code"] == "unauthorized"
            assert (await anonymous.cmd("auth", "panel", "wrong"))["error"]["code"] \
                == "unauthorized"
            assert (await anonymous.cmd("auth", "panel", PANEL_SECRET))["ok"] is True
            assert (await anonymous.ok("echo", "y")) == "y"
            line_client = await open_peer(port)
            assert await line_client.line('auth admin "%s"' % ADMIN_SECRET) == "OK"
            assert (await line_client.line("time")).startswith("OK ")

    run(scenario())
    # One failure so far (the `auth` above); two more are answered at once.
    for header in ("Bearer nobody:%s" % PANEL_SECRET, "Basic abc"):
        assert upgrade_status(port, header) == (401, "Bearer"), header
    # From the 4th failure each opens a delay; an upgrade cannot wait, so
    # one that comes during it is refused 429 without being tried.
    statuses = []
    deadline = time.monotonic() + 30
    while 429 not in statuses and time.monotonic() < deadline:
        statuses.append(upgrade_status(port, "Bearer panel:wrong-%d" % len(statuses))[0])
    assert statuses[0] == 401 and statuses[-1] == 429 and set(statuses) <= {401, 429}, statuses
    counted = 3 + statuses.count(401)
    # /metrics: a token that may run stats (once the delay is over); failures were counted.
    assert http_get(port, "/metrics")[0] == 401
    metrics = wait_until(lambda: (lambda r: r if r[0] == 200 else None)(
        http_get(port, "/metrics", "Authorization: Bearer panel:%s" % PANEL_SECRET)),
        STARTUP_TIMEOUT, "/metrics with the panel's token")
    assert re.search(rb"^sb_gateway_auth_failures_total %d$" % counted, metrics[1], re.M), \
        metrics[1][-400:]


def upgrade_status(port, authorization):
    """(status, WWW-Authenticate) of an upgrade with this Authorization header."""
    with RawConn(port) as conn:
        conn.send(upgrade_request(port, extra=[("Authorization", authorization)]))
        status, _, headers, _ = conn.read_http_response()
        return status, headers.get("www-authenticate")


def http_get(port, path, *headers):
    """(status, body) of a plain GET."""
    with RawConn(port) as conn:
        head = "".join(h + "\r\n" for h in headers)
        conn.send(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, head)).encode())
        status, _, _, body = conn.read_http_response()
        return status, body


def test_websocket_without_tokens_ignores_the_authorization_header(components, ws_gateway):
    c = components()
    proc, port = ws_gateway(c)
    ws = RawWs(port, request=upgrade_request(port, key="dGhlIHNhbXBsZSBub25jZQ==",
                                             extra=[("Authorization", "Bearer x:y")]),
               key="dGhlIHNhbXBsZSBub25jZQ==")
    try:
        reply = ws.request_json({"id": 1, "cmd": "echo", "args": ["free"]})
        assert reply.get("ok") is True, reply
    finally:
        ws.close()


# --------------------------------------------------------------------- hash-secret

def test_hash_secret_prints_the_sha256_of_the_line_on_stdin():
    for secret in ("s3cret", "with spaces and ünïcode", "x" * 1000):
        done = subprocess.run([binary("switchboard"), "hash-secret"], input=secret + "\n",
                              capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, done.stderr
        assert done.stdout == sha256_hex(secret) + "\n"
    without_newline = subprocess.run([binary("switchboard"), "hash-secret"], input="abc",
                                     capture_output=True, text=True, timeout=10)
    assert without_newline.stdout == sha256_hex("abc") + "\n"
    empty = subprocess.run([binary("switchboard"), "hash-secret"], input="\n",
                           capture_output=True, text=True, timeout=10)
    assert empty.returncode == 1 and "empty" in empty.stderr
    usage = subprocess.run([binary("switchboard"), "hash-secret", "extra"], input="x\n",
                           capture_output=True, text=True, timeout=10)
    assert usage.returncode == 2 and "usage" in usage.stderr


# --------------------------------------------------------------------- config problems

def test_bad_token_sections_are_refused_at_start(tmp_path):
    config = tmp_path / "bad.conf"
    config.write_text("""
[token one]
secret_sha256 = not-hex
publish = home/#/x

[token two]
commands = echo

[token bad:name]
secret = x
bogus = 1

[anonymous]
secret = x
subscribe = a+b
""")
    done = subprocess.run([binary("switchboard"), "--check-config", str(config)],
                          capture_output=True, text=True, timeout=10)
    assert done.returncode != 0
    problems = done.stderr + done.stdout
    for expected in ("secret_sha256 must be 64 hex digits", "'home/#/x' is not a topic filter",
                     "[token two] needs secret_sha256", "token name 'bad:name'",
                     "unknown key 'bogus' in [token bad:name]",
                     "unknown key 'secret' in [anonymous]", "'a+b' is not a topic filter"):
        assert expected in problems, (expected, problems)


# --------------------------------------------------------------------- without tokens

def test_without_tokens_everything_is_as_before(components, peers):
    c = components()
    one, two = peers(c.port), peers(c.port)
    assert one.ask("echo hi") == "OK hi"
    assert one.ask("time").startswith("OK ")
    one.subscribe("#")
    assert two.ask("pub other/y 1") == "OK"
    assert one.await_event("EVENT other/y 1") == "EVENT other/y 1"
    assert two.id in one.ask("clients").split()
    assert one.ask("tell %s hi" % two.id) == "OK"
    assert two.next_async() == "MSG %s hi" % one.id
    assert one.ask("auth anyone anything") == UNAUTHORIZED
    assert "auth_failures=1" in one.ask("stats")
