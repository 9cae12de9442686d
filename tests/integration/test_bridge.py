"""Bridges to remote MQTT brokers (issue 14 §1): sb-bridge against Debian's
Mosquitto, started here on free loopback ports and stopped by pid.

Two hubs bridged through one Mosquitto (one over MQTT 5, one over 3.1.1)
exchange events both ways exactly once; a Mosquitto killed and restarted on
the same port gets the bridge back and the QoS 1 messages kept for it (the
oldest dropped past max_queued); a
rule's prefixes and direction hold; TLS to a Mosquitto with a test CA (made
with the openssl CLI), and a bridge that does not trust the certificate
never connects; user name and password from a file; a remote that never
answers holds up none of the hub's traffic; a remote restarted without its
retained values gets the hub's again; the launcher runs sb-bridge only
with bridges and restarts it. paho on the Mosquitto side is the independent
client."""
import os
import shlex
import signal
import socket
import subprocess
import urllib.request

import pytest

from conftest import (STARTUP_TIMEOUT, Client, children_of, cmdline_of, free_port, log_records,
                      pid_alive, stats_of, wait_until)
from mqtt_support import V5, V311, Paho

MOSQUITTO = "/usr/sbin/mosquitto"
QUIET = 1.0   # how long a client must stay without a duplicate


@pytest.fixture
def mosquitto(processes, tmp_path):
    """Factory: runs Debian's mosquitto on `port` (a free one by default),
    optionally with a TLS listener; returns (proc, port)."""

    def start(port=None, tls=None, passwords=None):
        port = port or free_port()
        # As root, mosquitto would become the user mosquitto, who cannot read
        # the test's folder; `user` is ignored when the tests run unprivileged.
        lines = ["user root", "listener %d 127.0.0.1" % port, "allow_anonymous true",
                 "persistence false", "log_type all"]
        if tls:
            lines += ["cafile %s" % tls["ca"], "certfile %s" % tls["cert"],
                      "keyfile %s" % tls["key"]]
        if passwords:   # {user: password}, hashed with mosquitto_passwd
            table = tmp_path / ("passwords-%d" % port)
            table.write_text("".join("%s:%s\n" % item for item in passwords.items()))
            subprocess.run(["mosquitto_passwd", "-U", str(table)], check=True,
                           capture_output=True, timeout=STARTUP_TIMEOUT)
            lines[2] = "allow_anonymous false"
            lines.append("password_file %s" % table)
        conf = tmp_path / ("mosquitto-%d.conf" % port)
        conf.write_text("\n".join(lines) + "\n")
        before = len(processes.procs)
        proc = processes.start("mosquitto", [MOSQUITTO, "-c", str(conf)])
        assert len(processes.procs) == before + 1
        wait_until(lambda: proc.alive() and " running" in proc.log_text(), STARTUP_TIMEOUT,
                   "mosquitto on port %d to run" % port)
        return proc, port

    return start


@pytest.fixture
def bridged_hub(launch_hub, tmp_path):
    """Factory: a hub whose config has the given [bridge ...] text."""
    count = []

    def launch(bridge_text):
        count.append(1)
        conf = tmp_path / ("hub-%d.conf" % len(count))
        conf.write_text("[service default]\nworkers = 1\n\n[bridges]\nstats_interval = 0.1\n\n"
                        + bridge_text)
        return launch_hub("--config", str(conf))

    return launch


@pytest.fixture
def mqtt_clients():
    made = []

    def connect(*args, **kwargs):
        client = Paho(*args, **kwargs)
        made.append(client)
        return client

    yield connect
    for client in made:
        client.close()


def retained(clients, hub, topic_filter):
    """The hub's retained values under `topic_filter`, by topic."""
    client = Client(hub.port)
    try:
        reply = client.request("topics " + topic_filter)
    finally:
        client.close()
    words = shlex.split(reply)
    assert words[0] == "OK", reply
    return dict(zip(words[2::2], words[3::2]))


def bridge_state(clients, hub, name):
    return retained(clients, hub, "$sys/bridges/" + name).get("$sys/bridges/" + name)


def bridge_stats(clients, hub, name):
    topic = "$sys/bridges/%s/stats" % name
    text = retained(clients, hub, topic).get(topic, "")
    return {key: int(value) for key, value in (word.split("=") for word in text.split())}


def wait_connected(clients, hub, name="cloud"):
    wait_until(lambda: bridge_state(clients, hub, name) == "connected", STARTUP_TIMEOUT,
               "bridge %s of the hub on port %d to be connected" % (name, hub.port))


def next_payload(client):
    message = client.next_message()
    return message.topic, message.payload.decode()


def test_two_hubs_exchange_events_both_ways_exactly_once(mosquitto, bridged_hub, clients,
                                                         mqtt_clients):
    _, port = mosquitto()
    rule = "topic = shared/# both 1\n"
    hub1 = bridged_hub("[bridge cloud]\naddress = 127.0.0.1:%d\nversion = 5\n"
                       "client_id = hub-one\n%s" % (port, rule))
    hub2 = bridged_hub("[bridge cloud]\naddress = 127.0.0.1:%d\nversion = 3.1.1\n"
                       "client_id = hub-two\n%s" % (port, rule))
    wait_connected(clients, hub1)
    wait_connected(clients, hub2)
    on_hub1 = mqtt_clients(hub1.mqtt_port, client_id="one")
    on_hub2 = mqtt_clients(hub2.mqtt_port, client_id="two")
    remote = mqtt_clients(port, client_id="watcher")
    everyone = (on_hub1, on_hub2, remote)
    for client in everyone:
        client.subscribe("shared/#", qos=1)

    on_hub1.publish("shared/one", "from hub one", qos=1)
    for client in everyone:
        assert next_payload(client) == ("shared/one", "from hub one")
    on_hub2.publish("shared/two", "from hub two", qos=1)
    for client in everyone:
        assert next_payload(client) == ("shared/two", "from hub two")
    remote.publish("shared/three", "from the broker", qos=1)
    for client in everyone:
        assert next_payload(client) == ("shared/three", "from the broker")
    for client in everyone:
        client.no_message(timeout=QUIET)

    # Hub one (MQTT 5) never gets its own back (No Local); hub two (3.1.1)
    # does, and recognises it.
    wait_until(lambda: bridge_stats(clients, hub2, "cloud").get("echoes") == 1, STARTUP_TIMEOUT,
               "hub two's bridge to count its echo")
    one, two = bridge_stats(clients, hub1, "cloud"), bridge_stats(clients, hub2, "cloud")
    assert (one["in"], one["out"], one["echoes"]) == (2, 1, 0), one
    assert (two["in"], two["out"]) == (2, 1), two

    # The same counters in `stats broker` and in /metrics.
    broker = stats_of(clients(hub1.port), "stats broker")
    assert (broker["bridge_in_cloud"], broker["bridge_out_cloud"]) == ("2", "1"), broker
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % hub2.ws_port,
                                timeout=STARTUP_TIMEOUT) as response:
        metrics = response.read().decode()
    assert "\nsb_broker_bridge_echoes_cloud 1\n" in metrics, metrics


def test_a_restarted_mosquitto_gets_the_bridge_back_and_the_queued_messages(
        mosquitto, bridged_hub, clients, mqtt_clients, processes):
    proc, port = mosquitto()
    hub = bridged_hub("[bridge cloud]\naddress = 127.0.0.1:%d\nclient_id = hub-q\n"
                      "backoff_initial = 0.2\nbackoff_max = 0.5\nmax_queued = 3\n"
                      # both ways: the hub's retained values are not sent again on connecting
                      "topic = queue/# both 1\n" % port)
    wait_connected(clients, hub)
    proc.popen.send_signal(signal.SIGKILL)
    proc.popen.wait(timeout=STARTUP_TIMEOUT)
    wait_until(lambda: (bridge_state(clients, hub, "cloud") or "").startswith("backoff:"),
               STARTUP_TIMEOUT, "the bridge to back off")

    publisher = clients(hub.port)
    for n in range(5):   # retained, so a subscriber that comes after the bridge still sees them
        assert publisher.request("pub -r queue/%d kept %d" % (n, n)) == "OK"
    wait_until(lambda: (lambda stats: (stats.get("queued"), stats.get("dropped")))(
        bridge_stats(clients, hub, "cloud")) == (3, 2), STARTUP_TIMEOUT,
        "three messages kept for the remote, the two oldest dropped")

    mosquitto(port=port)
    wait_connected(clients, hub)
    wait_until(lambda: bridge_stats(clients, hub, "cloud").get("queued") == 0, STARTUP_TIMEOUT,
               "the kept messages to be acknowledged")
    remote = mqtt_clients(port, client_id="late", version=V311)
    remote.subscribe("queue/#", qos=1)
    got = sorted(next_payload(remote) for _ in range(3))
    assert got == [("queue/%d" % n, "kept %d" % n) for n in (2, 3, 4)]
    remote.no_message(timeout=QUIET)
    stats = bridge_stats(clients, hub, "cloud")
    assert stats["connects"] >= 2 and (stats["out"], stats["dropped"]) == (3, 2), stats


def test_a_rule_rewrites_prefixes_and_keeps_its_direction(mosquitto, bridged_hub, clients,
                                                          peers, mqtt_clients):
    _, port = mosquitto()
    hub = bridged_hub("[bridge cloud]\naddress = 127.0.0.1:%d\nclient_id = hub-p\n"
                      "topic = sensors/# out 1 house/ sites/house/\n"
                      "topic = cmd/# in 1 house/ sites/house/\n" % port)
    wait_connected(clients, hub)
    remote = mqtt_clients(port, client_id="everything")
    remote.subscribe("#", qos=1)
    local = peers(hub.port)
    local.subscribe("house/#")

    # Out: only what the out rule takes, under the remote prefix (the bridge
    # sends in order, so a message it should not have sent would come first).
    for line in ("pub house/cmd/local-only x", "pub elsewhere/t 5", "pub house/sensors/t 21"):
        assert local.ask(line) == "OK"
    assert next_payload(remote) == ("sites/house/sensors/t", "21")

    # In: only what the in rule takes, under the local prefix.
    remote.publish("sites/house/sensors/t", "99", qos=1)   # out only: stays remote
    remote.publish("sites/house/cmd/lamp", "on", qos=1)
    events = [local.next_async() for _ in range(3)]
    assert events == ["EVENT house/cmd/local-only x", "EVENT house/sensors/t 21",
                      "EVENT house/cmd/lamp on"]
    assert [next_payload(remote) for _ in range(2)] == [("sites/house/sensors/t", "99"),
                                                        ("sites/house/cmd/lamp", "on")]
    remote.no_message(timeout=QUIET)   # nothing came back out (no echo of cmd/lamp)


def make_ca(directory, name):
    """A CA and a server certificate for 127.0.0.1, with the openssl CLI."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=str(directory))

    ca, key = directory / ("%s-ca.crt" % name), directory / ("%s-ca.key" % name)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(ca), "-days", "2", "-subj", "/CN=%s test CA" % name,
        "-addext", "basicConstraints=critical,CA:TRUE")
    server_key, csr = directory / ("%s-server.key" % name), directory / ("%s-server.csr" % name)
    server = directory / ("%s-server.crt" % name)
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(server_key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    extensions = directory / ("%s-ext.cnf" % name)
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(key), "-CAcreateserial",
        "-out", str(server), "-days", "2", "-extfile", str(extensions))
    return {"ca": ca, "cert": server, "key": server_key}


def test_tls_to_a_mosquitto_with_a_test_ca(mosquitto, bridged_hub, clients, mqtt_clients,
                                           tmp_path):
    tls = make_ca(tmp_path, "good")
    stranger = make_ca(tmp_path, "other")
    _, port = mosquitto(tls=tls)
    hub = bridged_hub("[bridge cloud]\naddress = 127.0.0.1:%d\nclient_id = hub-tls\n"
                      "tls_ca_file = %s\ntopic = secure/# out 1\n\n"
                      "[bridge wary]\naddress = 127.0.0.1:%d\nclient_id = hub-wary\n"
                      "tls_ca_file = %s\nbackoff_initial = 0.2\nbackoff_max = 0.5\n"
                      "topic = secure/# out 1\n" % (port, tls["ca"], port, stranger["ca"]))
    wait_connected(clients, hub, "cloud")
    remote = mqtt_clients(port, client_id="tls-watcher", tls_ca=tls["ca"])
    remote.subscribe("secure/#", qos=1)
    assert clients(hub.port).request("pub secure/door locked") == "OK"
    assert next_payload(remote) == ("secure/door", "locked")
    remote.no_message(timeout=QUIET)   # once: the untrusting bridge sent nothing

    wait_until(lambda: (bridge_state(clients, hub, "wary") or "").startswith("backoff:"),
               STARTUP_TIMEOUT, "the bridge that does not trust the certificate to back off")
    assert bridge_stats(clients, hub, "wary").get("connects", 0) == 0
    assert any(record.get("bridge") == "wary"
               for record in log_records(hub.proc, "bridge cannot connect"))
    assert hub.proc.alive()


def test_config_check_reports_bad_bridge_sections(tmp_path):
    from conftest import binary
    conf = tmp_path / "bad.conf"
    conf.write_text("[bridge cloud]\n"
                    "topic = a/# sideways\n"
                    "password = hunter2\n"
                    "tls_cert = /nonexistent/cert.pem\n"
                    "\n[bridge empty]\n")
    result = subprocess.run([binary("switchboard"), "--check-config", str(conf)],
                            capture_output=True, text=True, timeout=STARTUP_TIMEOUT)
    assert result.returncode != 0
    text = result.stderr
    assert ":2: a topic rule's direction must be in, out or both" in text, text
    assert ":3: the password goes in a file" in text, text
    assert "bridge 'cloud' has no address" in text, text
    assert "tls_cert and tls_key go together" in text, text
    assert "bridge 'empty' has no topic rule" in text, text


def test_user_name_and_password_from_a_file(mosquitto, bridged_hub, clients, tmp_path):
    _, port = mosquitto(passwords={"house": "s3cret word"})
    good, bad = tmp_path / "good.password", tmp_path / "bad.password"
    good.write_text("s3cret word\n")
    bad.write_text("guess\n")
    hub = bridged_hub("[bridge cloud]\naddress = 127.0.0.1:%d\nclient_id = hub-auth\n"
                      "username = house\npassword_file = %s\ntopic = a/# out 1\n\n"
                      "[bridge wrong]\naddress = 127.0.0.1:%d\nclient_id = hub-wrong\n"
                      "version = 3.1.1\nusername = house\npassword_file = %s\n"
                      "backoff_initial = 0.2\nbackoff_max = 0.5\ntopic = a/# out 1\n"
                      % (port, good, port, bad))
    wait_connected(clients, hub, "cloud")
    wait_until(lambda: any(record.get("bridge") == "wrong"
                           for record in log_records(hub.proc, "bridge refused by its remote")),
               STARTUP_TIMEOUT, "the bridge with the wrong password to be refused")
    assert bridge_stats(clients, hub, "wrong").get("connects", 0) == 0
    assert "s3cret" not in hub.proc.log_text()


def test_a_remote_that_never_answers_holds_up_nothing(bridged_hub, clients, peers):
    """A remote that accepts the connection and never sends CONNACK: the
    hub's own traffic goes on, QoS 1 messages for the remote are kept, and
    the bridge gives up on the connection after 10 s and backs off."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    silent.settimeout(STARTUP_TIMEOUT)
    accepted = None
    try:
        hub = bridged_hub("[bridge mute]\naddress = 127.0.0.1:%d\nclient_id = hub-mute\n"
                          "topic = t/# out 1\n" % silent.getsockname()[1])
        accepted, _ = silent.accept()
        wait_until(lambda: bridge_state(clients, hub, "mute") == "connecting", STARTUP_TIMEOUT,
                   "the bridge to say it is connecting")
        local = peers(hub.port)
        local.subscribe("t/#")
        for n in range(50):
            assert local.ask("pub t/%d x" % n) == "OK"
        assert [local.next_async() for _ in range(50)] == ["EVENT t/%d x" % n for n in range(50)]
        wait_until(lambda: bridge_stats(clients, hub, "mute").get("queued") == 50,
                   STARTUP_TIMEOUT, "the 50 messages kept for the remote")
        wait_until(lambda: any(record.get("reason") == "no CONNACK in time"
                               for record in log_records(hub.proc, "bridge cannot connect")),
                   2 * STARTUP_TIMEOUT, "the bridge to give up waiting for CONNACK")
        wait_until(lambda: (bridge_state(clients, hub, "mute") or "").startswith("backoff:"),
                   STARTUP_TIMEOUT, "the bridge to back off")
    finally:
        if accepted:
            accepted.close()
        silent.close()


def bridge_child(hub):
    found = [pid for pid in children_of(hub.pid)
             if [os.path.basename(arg) for arg in cmdline_of(pid)[:1]] == ["sb-bridge"]]
    return found[0] if found else None


def test_the_launcher_runs_sb_bridge_only_with_bridges_and_restarts_it(
        launch_hub, mosquitto, bridged_hub, clients):
    plain = launch_hub()
    assert bridge_child(plain) is None
    _, port = mosquitto()
    hub = bridged_hub("[bridge cloud]\naddress = 127.0.0.1:%d\nclient_id = hub-sup\n"
                      "topic = a/# out 1\n" % port)
    wait_connected(clients, hub)
    first = bridge_child(hub)
    assert first
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not pid_alive(first), STARTUP_TIMEOUT, "the killed sb-bridge to be gone")
    second = wait_until(lambda: (lambda pid: pid != first and pid)(bridge_child(hub)),
                        STARTUP_TIMEOUT, "the launcher to start sb-bridge again")
    wait_until(lambda: any(record.get("bridge") == "cloud"
                           for record in log_records(hub.proc, "bridge connected")[1:]),
               STARTUP_TIMEOUT, "the restarted bridge to connect")
    assert pid_alive(second)


def test_a_remote_that_lost_its_retained_values_gets_the_hubs_again(
        mosquitto, bridged_hub, clients, mqtt_clients):
    proc, port = mosquitto()
    hub = bridged_hub("[bridge cloud]\naddress = 127.0.0.1:%d\nclient_id = hub-r\n"
                      "backoff_initial = 0.2\nbackoff_max = 0.5\n"
                      "topic = state/# out 1 \"\" sites/house/\n" % port)
    wait_connected(clients, hub)
    assert clients(hub.port).request("pub -r state/lamp on") == "OK"
    wait_until(lambda: bridge_stats(clients, hub, "cloud").get("out") == 1, STARTUP_TIMEOUT,
               "the retained value to reach the remote")
    proc.popen.send_signal(signal.SIGKILL)   # without persistence: the remote forgets it
    proc.popen.wait(timeout=STARTUP_TIMEOUT)
    mosquitto(port=port)
    wait_until(lambda: (lambda stats: (stats.get("connects"), stats.get("out")))(
        bridge_stats(clients, hub, "cloud")) == (2, 2), STARTUP_TIMEOUT,
        "the bridge to connect again and send the retained value once more")
    remote = mqtt_clients(port, client_id="after-restart", version=V311)
    remote.subscribe("sites/house/#", qos=1)
    message = remote.next_message()
    assert (message.topic, message.payload.decode(), message.retain) == (
        "sites/house/state/lamp", "on", True)
    remote.no_message(timeout=QUIET)
