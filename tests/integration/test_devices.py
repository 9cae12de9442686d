"""The device gateway, sb-gateway-device (issue 6; brief §3.3, §4), with
the real programs and fake devices written here (device_support.py):

- dial-out: call/answer, send, unsolicited lines as events to TCP and
  WebSocket subscribers, calls through the WebSocket gateway too;
- calls: first-in first-out matching of pipelined calls from several
  clients, call_timeout and the late answer (published, never given to the
  next call), ERR busy past max_pending, pending calls answered
  ERR not-connected when the link breaks;
- nothing stale: while a device is away `call` and `send` answer
  ERR not-connected at once, and after it returns it receives none of them;
- link health: on_connect first on every connection; keepalive declares a
  silent device dead, keeps an answering one;
- backoff: delays grow, are capped and jittered (from the logfmt records),
  are not reset by short connections and are reset after healthy_after;
- dial-in with HELLO (token, unknown name, bad token, no HELLO);
- `devices` and `device NAME` formats, argument errors;
- a serial device on a socat PTY pair, unplugged and plugged back in.

No blind sleeps: every wait has a deadline; the only waits for a duration
are where the contract itself is about time having passed (healthy_after),
and they also check that nothing changed meanwhile.
"""
import re
import time

from conftest import free_port, wait_until
from device_support import (ISO, SerialPair, device_info, device_section, device_states,
                            echo_asks, fast, start_device_gateway, wait_state)
from device_support import blackhole, fake_devices  # noqa: F401 - fixtures
from ws_support import WsPeers, run

# While waiting for one event, any other state event may come first; that
# each payload is one the contract names is checked apart (check_state_payloads),
# after the behaviour, so that both are reported.
STATE_EVENT_SKIP = r"^EVENT \$sys/devices/\S+ \S+$"
STATE_PAYLOAD = re.compile(r"^(connected|connecting|disconnected|backoff:\d+\.\ds)$")


def check_state_payloads(peer):
    """Every $sys/devices event `peer` saw has a payload the contract names:
    connected, connecting, disconnected or backoff:N.Ns."""
    odd = [line for line in peer.seen_async if line.startswith("EVENT $sys/devices/")
           and not STATE_PAYLOAD.match(line.split(" ", 2)[2])]
    assert not odd, "state events with payloads outside connected|connecting|disconnected|" \
        "backoff:N.Ns: %r" % odd


def sys_event(name, state):
    return "EVENT $sys/devices/%s %s" % (name, state)


def away_event(name):
    """A $sys/devices event that tells the device is no longer connected."""
    return re.compile(r"^EVENT \$sys/devices/%s (disconnected|backoff:\d+\.\ds)$" % re.escape(name))


def dial_out(name, device, **settings):
    return device_section(name, connect="127.0.0.1:%d" % device.port, **fast(**settings))


# --------------------------------------------------------------------- dial-out basics

def test_dial_out_call_send_and_events_to_tcp_and_ws(components, processes, peers, fake_devices,
                                                     ws_gateway):
    device = fake_devices()
    c = components(dial_out("kitchen", device))
    subscriber = peers(c.port)
    subscriber.subscribe("device/#", "$sys/devices/#")
    start_device_gateway(processes, c)
    client = peers(c.port)
    subscriber.await_event(sys_event("kitchen", "connected"), STATE_EVENT_SKIP)
    assert device_states(client)["kitchen"] == "connected"

    # call: the line is written, the device's next line is the answer.
    assert client.ask("device kitchen call ask-status") == "OK got ask-status"
    assert client.ask("device kitchen call ask set level 5") == "OK got ask set level 5"
    # send: written, OK sent; the device does not answer it.
    assert client.ask("device kitchen send lamp on") == "OK sent"
    device.wait_line("lamp on")
    assert device.lines() == ["ask-status", "ask set level 5", "lamp on"]

    # An unsolicited line reaches the TCP subscriber on device/kitchen.
    device.send("temp 21.5")
    subscriber.await_event("EVENT device/kitchen temp 21.5", STATE_EVENT_SKIP)

    _, ws_port = ws_gateway(c)

    async def main():
        async with WsPeers() as open_peer:
            watcher = await open_peer(ws_port)
            await watcher.ok("sub", "device/#")
            await watcher.sync_with_broker()
            device.send("door open")
            device.send('{"t": 21.5, "unit": "C"}')
            assert await watcher.next_async() == {"event": "device/kitchen", "data": "door open"}
            assert await watcher.next_async() == {"event": "device/kitchen",
                                                  "data": {"t": 21.5, "unit": "C"}}
            # Calls work through the WebSocket gateway as well.
            assert await watcher.line("device kitchen call ask-ws") == "OK got ask-ws"

    run(main(), timeout=30)
    subscriber.await_event("EVENT device/kitchen door open", STATE_EVENT_SKIP)
    subscriber.await_event('EVENT device/kitchen {"t": 21.5, "unit": "C"}', STATE_EVENT_SKIP)
    assert device.lines()[-1] == "ask-ws"
    check_state_payloads(subscriber)


# --------------------------------------------------------------------- calls

def test_pipelined_calls_from_several_clients_are_matched_fifo(components, processes, peers,
                                                               fake_devices):
    device = fake_devices(answer=None)         # the test answers, in the order received
    c = components(dial_out("kitchen", device, call_timeout="20", max_pending="16"))
    start_device_gateway(processes, c)
    control = peers(c.port)
    wait_state(control, "kitchen", "connected")

    callers = [peers(c.port) for _ in range(3)]
    asked = {}
    for n, caller in enumerate(callers):
        asked[n] = ["ask-c%d-%d" % (n, i) for i in range(4)]
        caller.send(*["device kitchen call %s" % line for line in asked[n]])
    total = sum(len(lines) for lines in asked.values())

    # At least one call of each client is pending before anything is
    # answered; then every batch received is answered in one write.
    device.wait_lines(len(callers))
    answered, batches = 0, []
    while answered < total:
        lines = device.wait_lines(answered + 1, what="call %d of %d at the device (has %r)"
                                  % (answered + 1, total, device.lines()))
        batch = lines[answered:]
        device.send(*["re " + line for line in batch])
        batches.append(len(batch))
        answered += len(batch)
    assert batches[0] >= len(callers), "calls were not pending together: batches %r" % batches
    assert sorted(device.lines()) == sorted(line for lines in asked.values() for line in lines)

    for n, caller in enumerate(callers):
        replies = [caller.reply() for _ in asked[n]]
        assert replies == ["OK re " + line for line in asked[n]], (
            "client %d: sent %r, device got %r" % (n, asked[n], device.lines()))


def test_call_timeout_and_late_answer_is_published_not_given_to_the_next_call(
        components, processes, peers, fake_devices):
    device = fake_devices(answer=None)
    c = components(dial_out("kitchen", device, call_timeout="1"))
    subscriber = peers(c.port)
    subscriber.subscribe("device/#")
    start_device_gateway(processes, c)
    client = peers(c.port)
    wait_state(client, "kitchen", "connected")

    reply = client.ask("device kitchen call ask-first", timeout=10)
    assert reply.startswith("ERR timeout"), "sent call ask-first (silent device): %r" % reply
    assert device.lines() == ["ask-first"]

    # The next call is pending when the device sends the late answer and
    # then the answer to the next call.
    client.send("device kitchen call ask-second")
    device.wait_line("ask-second")
    device.send("late-first", "answer-second")
    assert client.reply() == "OK answer-second", "the late answer went to the next call"
    assert subscriber.await_event("EVENT device/kitchen late-first")
    # answer-second was not published as well: the next event is the marker.
    device.send("marker")
    assert subscriber.next_async() == "EVENT device/kitchen marker"


def test_busy_when_max_pending_calls_wait(components, processes, peers, fake_devices):
    device = fake_devices(answer=None)
    c = components(dial_out("kitchen", device, call_timeout="20", max_pending="2"))
    start_device_gateway(processes, c)
    first, second, third = peers(c.port), peers(c.port), peers(c.port)
    wait_state(third, "kitchen", "connected")

    first.send("device kitchen call ask-1")
    device.wait_line("ask-1")
    second.send("device kitchen call ask-2")
    device.wait_line("ask-2")
    assert device_info(third, "kitchen")["pending"] == "2"
    reply = third.ask("device kitchen call ask-3", timeout=3)
    assert reply.startswith("ERR busy"), "third call with max_pending=2: %r" % reply

    device.send("a1", "a2")
    assert first.reply() == "OK a1"
    assert second.reply() == "OK a2"
    # The refused call was never written: the next line is the next call.
    third.send("device kitchen call ask-4")
    device.wait_line("ask-4")
    assert device.lines() == ["ask-1", "ask-2", "ask-4"]
    device.send("a4")
    assert third.reply() == "OK a4"


def test_pending_calls_get_not_connected_when_the_link_breaks(components, processes, peers,
                                                              fake_devices):
    device = fake_devices(answer=None)
    c = components(dial_out("kitchen", device, call_timeout="60", backoff_initial="0.2"))
    start_device_gateway(processes, c)
    callers = [peers(c.port) for _ in range(3)]
    wait_state(callers[0], "kitchen", "connected")
    for n, caller in enumerate(callers):
        caller.send("device kitchen call ask-%d" % n)
    device.wait_lines(3)
    device.drop()
    for n, caller in enumerate(callers):
        # call_timeout is 60 s: these come from the broken link, not a timeout.
        reply = caller.reply(timeout=10)
        assert reply.startswith("ERR not-connected"), "pending call %d after drop: %r" % (n, reply)


# --------------------------------------------------------------------- nothing stale

def test_while_away_not_connected_at_once_and_nothing_stale_after_return(
        components, processes, peers, fake_devices):
    device = fake_devices()
    c = components(dial_out("kitchen", device, call_timeout="60", backoff_initial="0.1",
                            backoff_max="0.2"))
    watcher = peers(c.port)
    watcher.subscribe("$sys/devices/#")
    start_device_gateway(processes, c)
    client = peers(c.port)
    watcher.await_event(sys_event("kitchen", "connected"), STATE_EVENT_SKIP)
    assert client.ask("device kitchen call ask-before") == "OK got ask-before"

    device.stop_listening()
    watcher.await_event(away_event("kitchen"), STATE_EVENT_SKIP)
    for line in ("device kitchen call ask-away", "device kitchen send away-send"):
        reply = client.ask(line, timeout=3)     # call_timeout is 60 s
        assert reply.startswith("ERR not-connected"), "sent %r while away: %r" % (line, reply)
    state = device_states(client)["kitchen"]
    assert state != "connected", state

    device.listen_again()
    watcher.await_event(sys_event("kitchen", "connected"), STATE_EVENT_SKIP, timeout=10)
    device.wait_connections(2)
    assert client.ask("device kitchen send fresh-send") == "OK sent"
    assert client.ask("device kitchen call ask-fresh") == "OK got ask-fresh"
    assert device.lines_of(1) == ["fresh-send", "ask-fresh"], (
        "after returning the device got %r (asked while away: ask-away, away-send)"
        % device.lines_of(1))
    assert device.lines_of(0) == ["ask-before"]
    check_state_payloads(watcher)


# --------------------------------------------------------------------- link health

def test_on_connect_line_comes_first_on_every_connection(components, processes, peers,
                                                         fake_devices):
    device = fake_devices()
    c = components(dial_out("kitchen", device, on_connect="LOGIN s3cret"))
    start_device_gateway(processes, c)
    client = peers(c.port)
    wait_state(client, "kitchen", "connected")
    assert client.ask("device kitchen call ask-1") == "OK got ask-1"
    assert device.lines_of(0) == ["LOGIN s3cret", "ask-1"]

    device.drop()
    device.wait_connections(2)
    wait_until(lambda: device.lines_of(1), 5, "the first line on the second connection")
    wait_state(client, "kitchen", "connected")
    assert client.ask("device kitchen call ask-2") == "OK got ask-2"
    assert device.lines_of(1) == ["LOGIN s3cret", "ask-2"]


def test_keepalive_drops_a_silent_device_and_keeps_an_answering_one(components, processes,
                                                                    peers, fake_devices):
    silent = fake_devices(answer=None)
    chatty = fake_devices(answer=lambda line: "PONG" if line == "PING" else None)
    settings = dict(keepalive="PING", keepalive_interval="0.2", backoff_initial="0.3",
                    backoff_max="0.5")
    c = components(dial_out("silent", silent, **settings) + dial_out("chatty", chatty, **settings))
    watcher = peers(c.port)
    watcher.subscribe("$sys/devices/silent")
    start_device_gateway(processes, c)
    watcher.await_event(sys_event("silent", "connected"), STATE_EVENT_SKIP)
    watcher.await_event(away_event("silent"), STATE_EVENT_SKIP, timeout=5)
    # The gateway closed the link after its keepalive went unanswered,
    # within about two intervals (one or two PINGs written, three at most).
    wait_until(lambda: silent.closed_by_peer >= 1, 5, "the gateway to close the silent link")
    pings = silent.lines_of(0)
    print("keepalives written to the silent device before it was dropped:", len(pings))
    assert pings and set(pings) == {"PING"}, pings
    assert len(pings) <= 3, "%d keepalives before the silent link was declared dead" % len(pings)

    # The answering device keeps its one connection over many intervals.
    wait_until(lambda: chatty.lines_of(0).count("PING") >= 8, 10,
               "8 keepalives to the answering device")
    assert chatty.connection_count() == 1 and chatty.closed_by_peer == 0, (
        "the answering device was dropped: %d connections" % chatty.connection_count())
    client = peers(c.port)
    assert device_states(client)["chatty"] == "connected"
    # and calls still work beside the keepalives.
    chatty.answer = lambda line: "PONG" if line == "PING" else echo_asks(line)
    assert client.ask("device chatty call ask-1") == "OK got ask-1"
    check_state_payloads(watcher)


# --------------------------------------------------------------------- backoff

def delays_of(records):
    return [int(r["delay_ms"]) for r in records]


def check_backoff_sequence(records, initial_ms, factor, max_ms, jitter):
    """Each delay within [base*(1-jitter), base] of its base, the bases
    growing by `factor` from `initial_ms` and capped at `max_ms`."""
    attempts = [int(r["attempt"]) for r in records]
    assert attempts == list(range(attempts[0], attempts[0] + len(attempts))), attempts
    base = initial_ms
    for record, delay in zip(records, delays_of(records)):
        low, high = base * (1 - jitter), base
        assert low - 1 <= delay <= high + 1, (
            "delay %d ms outside [%d, %d] (base %d) in %r"
            % (delay, low, high, base, delays_of(records)))
        base = min(base * factor, max_ms)


def test_backoff_delays_grow_are_capped_and_jittered(components, processes):
    port = free_port()                              # nothing listens there
    c = components(device_section("lamp", connect="127.0.0.1:%d" % port, backoff_initial="0.1",
                                  backoff_factor="2", backoff_max="0.4", backoff_jitter="0.5",
                                  connect_timeout="1"))
    gateway = start_device_gateway(processes, c)
    records = wait_until(lambda: len(gateway.backoffs("lamp")) >= 6 and gateway.backoffs("lamp"),
                         15, "6 `device backoff` records for lamp")[:6]
    print("observed backoff delays (ms):", delays_of(records))
    check_backoff_sequence(records, 100, 2, 400, 0.5)
    delays = delays_of(records)
    assert max(delays) <= 400 and delays[-1] >= 200, delays
    assert delays != [100, 200, 400, 400, 400, 400], "no jitter: %r" % delays
    assert len(set(delays[2:])) > 1, "capped delays all equal, no jitter: %r" % delays


def test_backoff_resets_only_after_a_healthy_connection(components, processes, peers,
                                                       fake_devices):
    device = fake_devices(listen=False)
    c = components(dial_out("lamp", device, backoff_initial="0.1", backoff_factor="2",
                            backoff_max="0.4", backoff_jitter="0.5", healthy_after="0.3"))
    gateway = start_device_gateway(processes, c)
    client = peers(c.port)
    wait_until(lambda: len(gateway.backoffs("lamp")) >= 4, 15, "4 backoff records for lamp")

    # Connections that drop at once are not healthy: the delay stays capped.
    device.drop_on_accept = True
    device.listen_again()
    device.wait_connections(2)
    seen = len(gateway.backoffs("lamp"))
    records = wait_until(lambda: len(gateway.backoffs("lamp")) >= seen + 2
                         and gateway.backoffs("lamp"), 10, "2 more backoff records")
    short_lived = delays_of(records[seen - 1:])
    assert min(short_lived) >= 200, (
        "backoff reset by connections that dropped at once: %r (all: %r)"
        % (short_lived, delays_of(records)))

    # A connection that stays up past healthy_after resets the backoff.
    device.drop_on_accept = False
    wait_state(client, "lamp", "connected")
    wait_until(lambda: device.connected, 5, "the fake device to hold the connection")
    held = device.connection_count()
    since = device.accepted_at[-1]

    def healthy_and_still_connected():
        assert device.connection_count() == held and device.connected, "the link dropped"
        return time.monotonic() - since >= 0.3 + 0.5
    wait_until(healthy_and_still_connected, 5, "healthy_after (0.3 s) plus margin to pass")
    assert device_states(client)["lamp"] == "connected"
    seen = len(gateway.backoffs("lamp"))
    device.stop_listening()
    records = wait_until(lambda: len(gateway.backoffs("lamp")) > seen and gateway.backoffs("lamp"),
                         10, "a backoff record after the healthy link dropped")
    first = int(records[seen]["delay_ms"])
    print("delays before reset: %r, after the healthy link: %d"
          % (short_lived, first))
    assert 49 <= first <= 101, (
        "after a healthy connection the delay should be back near backoff_initial "
        "(100 ms, jitter 0.5): got %d ms (%s)" % (first, records[seen]["_line"]))


# --------------------------------------------------------------------- dial-in

def test_dial_in_hello_token_unknown_and_bad_token(components, processes, peers, clients):
    c = components(device_section("door", token="s3cret", **fast())
                   + device_section("hall", **fast()))
    watcher = peers(c.port)
    watcher.subscribe("$sys/devices/#", "device/#")
    gateway = start_device_gateway(processes, c, listen=True)
    client = peers(c.port)
    assert device_states(client) == {"door": "waiting", "hall": "waiting"}
    assert client.ask("device door call ask-x", timeout=3).startswith("ERR not-connected")

    def dial(hello):
        conn = clients(gateway.listen_port, greet=False)
        conn.send(hello)
        return conn

    conn = dial("HELLO nosuch")
    reply = conn.read_line()
    assert reply.startswith("ERR unknown-device"), "HELLO nosuch: %r" % reply
    conn.expect_eof()
    for hello in ("HELLO door wrong", "HELLO door"):
        conn = dial(hello)
        reply = conn.read_line()
        assert reply.startswith("ERR bad-token"), "%s: %r" % (hello, reply)
        conn.expect_eof()
    assert device_states(client) == {"door": "waiting", "hall": "waiting"}

    door = dial("HELLO door s3cret")
    assert door.read_line() == "OK hello door"
    watcher.await_event(sys_event("door", "connected"), STATE_EVENT_SKIP)
    hall = dial("HELLO hall")
    assert hall.read_line() == "OK hello hall"
    watcher.await_event(sys_event("hall", "connected"), STATE_EVENT_SKIP)
    assert device_states(client) == {"door": "connected", "hall": "connected"}

    client.send("device door call ask-open")
    assert door.read_line() == "ask-open"
    door.send("opened")
    assert client.reply() == "OK opened"
    door.send("bell rang")
    watcher.await_event("EVENT device/door bell rang", STATE_EVENT_SKIP)
    info = device_info(client, "door")
    assert info["kind"] == "dial-in" and info["state"] == "connected", info

    door.close()
    watcher.await_event(sys_event("door", "disconnected"), STATE_EVENT_SKIP)
    wait_state(client, "door", "waiting")
    reply = client.ask("device door call ask-gone", timeout=3)
    assert reply.startswith("ERR not-connected"), reply
    # Whatever else came on $sys/devices by now (a marker ends the read).
    assert client.ask("pub marker x") == "OK"
    watcher.subscribe("marker")
    assert client.ask("pub marker y") == "OK"
    watcher.await_event("EVENT marker y", STATE_EVENT_SKIP)
    check_state_payloads(watcher)


def test_dial_in_without_hello_is_closed(components, processes, clients):
    c = components(device_section("door", **fast()))
    gateway = start_device_gateway(processes, c, "--hello-timeout", "0.5", listen=True)
    conn = clients(gateway.listen_port, greet=False)
    # Nothing sent: closed after the hello timeout (maybe with an ERR line).
    deadline = time.monotonic() + 5
    lines = []
    while True:
        try:
            lines.append(conn.read_line(max(0.0, deadline - time.monotonic())))
        except EOFError:
            break
        except ConnectionResetError:
            break
        except TimeoutError:
            raise AssertionError("a silent dial-in connection is still open after 5 s "
                                 "(--hello-timeout 0.5); got %r" % lines) from None
    assert all(line.startswith("ERR") for line in lines), lines


# --------------------------------------------------------------------- formats and errors

def test_devices_and_device_formats_and_errors(components, processes, peers, fake_devices,
                                               blackhole):
    kitchen = fake_devices(answer=None)
    dead_port = free_port()
    c = components(
        dial_out("kitchen", kitchen)
        + device_section("lamp", connect="127.0.0.1:%d" % dead_port,
                         **fast(backoff_initial="5", backoff_max="5", backoff_jitter="0.2"))
        + device_section("door", token="t")
        + device_section("hall", connect="127.0.0.1:%d" % blackhole.port,
                         **fast(connect_timeout="30")))
    start_device_gateway(processes, c)
    client = peers(c.port)
    pattern = re.compile(r"^OK door=waiting hall=connecting kitchen=connected "
                         r"lamp=backoff:(\d+\.\d)s$")
    match = wait_until(lambda: pattern.match(client.ask("devices")), 10,
                       "`devices` to read door=waiting hall=connecting kitchen=connected "
                       "lamp=backoff:N.Ns")
    first = float(match.group(1))
    assert 0 < first <= 5.0, match.group(0)
    # The backoff shows the time left: it counts down.
    wait_until(lambda: float(pattern.match(client.ask("devices")).group(1)) < first, 3,
               "lamp's backoff:N.Ns to count down from %.1f" % first)

    reply = client.ask("device kitchen")
    assert re.match(r"^OK name=kitchen state=connected kind=tcp address=127\.0\.0\.1:%d "
                    r"since=%s last_seen=(%s|never) attempts=\d+ pending=0$"
                    % (kitchen.port, ISO, ISO), reply), reply
    kitchen.send("hello")
    wait_until(lambda: re.match(ISO + "$", device_info(client, "kitchen")["last_seen"]), 5,
               "kitchen's last_seen to be a time after it sent a line")
    caller = peers(c.port)
    caller.send("device kitchen call ask-hold")
    kitchen.wait_line("ask-hold")
    assert device_info(client, "kitchen")["pending"] == "1"
    kitchen.send("held")
    assert caller.reply() == "OK held"
    assert device_info(client, "kitchen")["pending"] == "0"

    for line, error in (("device nosuch", "ERR no-such-device"),
                        ("device nosuch call ask", "ERR no-such-device"),
                        ("device nosuch send x", "ERR no-such-device"),
                        ("device kitchen call", "ERR bad-args"),
                        ("device kitchen send", "ERR bad-args")):
        reply = client.ask(line)
        assert reply.startswith(error + " ") or reply == error, "sent %r: %r" % (line, reply)
    assert kitchen.lines() == ["ask-hold"], "a refused request reached the device: %r" % (
        kitchen.lines())

    # Devices never connected: since= is still a time (of the current state).
    reply = client.ask("device lamp")
    match = re.match(r"^OK name=lamp state=backoff:\d+\.\ds kind=tcp address=127\.0\.0\.1:%d "
                     r"since=%s last_seen=never attempts=(\d+) pending=0$"
                     % (dead_port, ISO), reply)
    assert match and int(match.group(1)) >= 1, reply
    reply = client.ask("device door")
    assert re.match(r"^OK name=door state=waiting kind=dial-in address=\S+ since=%s "
                    r"last_seen=never attempts=\d+ pending=0$" % ISO, reply), reply
    reply = client.ask("device hall")
    assert re.match(r"^OK name=hall state=connecting kind=tcp address=127\.0\.0\.1:%d "
                    r"since=%s last_seen=never attempts=\d+ pending=0$"
                    % (blackhole.port, ISO), reply), reply


# --------------------------------------------------------------------- serial

def test_serial_device_on_socat_pty_unplugged_and_plugged_back(components, processes, peers,
                                                               tmp_path):
    pair = SerialPair(processes, tmp_path)
    pair.plug()
    try:
        c = components(device_section("plug", serial=str(pair.a_path), baud="115200",
                                      **fast(backoff_initial="0.1", backoff_max="0.3",
                                             call_timeout="10")))
        watcher = peers(c.port)
        watcher.subscribe("device/#", "$sys/devices/#")
        start_device_gateway(processes, c)
        client = peers(c.port)
        wait_state(client, "plug", "connected")
        info = device_info(client, "plug")
        assert info["kind"] == "serial" and info["address"] == str(pair.a_path), info

        client.send("device plug call ask-1")
        assert pair.read_line() == "ask-1"
        pair.write_line("got ask-1")
        assert client.reply() == "OK got ask-1"
        pair.write_line("button 1")
        watcher.await_event("EVENT device/plug button 1", STATE_EVENT_SKIP)

        pair.unplug()
        watcher.await_event(away_event("plug"), STATE_EVENT_SKIP)
        wait_state(client, "plug", ("backoff:", "connecting", "disconnected"))
        for line in ("device plug call ask-away", "device plug send away-send"):
            reply = client.ask(line, timeout=3)
            assert reply.startswith("ERR not-connected"), "sent %r unplugged: %r" % (line, reply)

        pair.plug()
        watcher.await_event(sys_event("plug", "connected"), STATE_EVENT_SKIP, timeout=10)
        wait_state(client, "plug", "connected")
        assert client.ask("device plug send fresh") == "OK sent"
        client.send("device plug call ask-2")
        assert pair.read_line() == "fresh", "first line after replug (stale ones: ask-away, away-send)"
        assert pair.read_line() == "ask-2"
        pair.write_line("got ask-2")
        assert client.reply() == "OK got ask-2"
        check_state_payloads(watcher)
    finally:
        pair.close()
