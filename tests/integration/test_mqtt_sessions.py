"""sb-gateway-mqtt sessions at their edges (issue 12 review): a shared
member whose session expires (ends its groups during the sweep: run this
on the ASan build too), a take-over by another token refused, the client id
rules, the subscription limit (--max-subscriptions) and the eviction of the
session away the longest when --max-sessions is reached."""
import queue

import pytest

from conftest import Client, log_records, wait_until, READ_TIMEOUT
from mqtt_support import (V311, V5, CONNECT_PROPERTIES, Paho, RawMqtt, connect_packet,
                          properties, u32)


@pytest.fixture
def hub(components, mqtt_gateway):
    """Factory: a `components()` hub and an MQTT gateway with extra flags."""

    def start(*gateway_args, config=None):
        c = components(config_text=config)
        c.mqtt_proc, c.mqtt_port = mqtt_gateway(c, *gateway_args)
        return c

    return start


@pytest.fixture
def clients():
    made = []

    def connect(*args, **kwargs):
        made.append(Paho(*args, **kwargs))
        return made[-1]

    yield connect
    for client in made:
        client.close()


@pytest.fixture
def raw_clients():
    made = []

    def connect(port):
        made.append(RawMqtt(port))
        return made[-1]

    yield connect
    for raw in made:
        raw.close()


def shared_groups(c):
    """The `client ID` lines of the hub clients that are shared groups."""
    with Client(c.port) as tcp:
        return [line for hub_id in tcp.request("clients").split()[1:] if hub_id.startswith("mqtt-")
                for line in [tcp.request("client %s" % hub_id)] if "mqtt_id=$share/" in line]


def connack_reason(raw, **connect):
    """The CONNACK's reason (v5) or return code (3.1.1) for a CONNECT."""
    body = raw.connect(**connect)
    return body[1]


def away_session(raw_clients, port, client_id):
    """A v5 session kept 300 s, whose client has said DISCONNECT and gone."""
    raw = raw_clients(port)
    assert connack_reason(raw, client_id=client_id, clean=False,
                          props=properties((0x11, u32(300)))) == 0
    raw.send(b"\xe0\x00")
    raw.expect_close()


# --------------------------------------------------------------------- the sweep

def test_an_expiring_shared_member_ends_its_groups(hub, clients):
    c = hub()
    member = clients(c.mqtt_port, client_id="short-member", version=V5, clean=False,
                     properties=CONNECT_PROPERTIES(SessionExpiryInterval=1))
    # Several groups, so some come after the member in the sweep's list:
    # ending the member ends each of them while the sweep goes on.
    for n in range(8):
        assert member.subscribe("$share/g%d/jobs/#" % n, qos=1) == 1
    wait_until(lambda: len(shared_groups(c)) == 8, READ_TIMEOUT, "eight shared groups")
    member.disconnect()
    wait_until(lambda: log_records(c.mqtt_proc, "mqtt session expired"), 4 * READ_TIMEOUT,
               "the member's session to expire")
    wait_until(lambda: shared_groups(c) == [], READ_TIMEOUT, "the groups to end with it")
    assert c.mqtt_proc.alive()
    again = clients(c.mqtt_port, client_id="after-sweep", version=V5)
    assert again.rc == 0


# --------------------------------------------------------------------- take-over and tokens

TOKENS = """
[anonymous]
commands = echo stats
subscribe = home/#

[token plug]
secret = plug-secret
publish = home/#
subscribe = home/#

[token other]
secret = other-secret
subscribe = home/#
"""


@pytest.mark.parametrize("version,refused", [(V311, 5), (V5, 0x87)])
@pytest.mark.parametrize("intruder", [None, ("other", "other-secret")])
def test_take_over_by_another_token_is_refused(hub, clients, version, refused, intruder):
    c = hub(config=TOKENS)
    plug = clients(c.mqtt_port, client_id="plug-1", version=version, username="plug",
                   password="plug-secret")
    credentials = {"username": intruder[0], "password": intruder[1]} if intruder else {}
    thief = clients(c.mqtt_port, client_id="plug-1", version=version, connect=False,
                    **credentials)
    rc = thief.connect(expect_ok=False)
    assert (rc.value if hasattr(rc, "value") else rc) == refused
    # The rightful client was not kicked: it still subscribes and publishes.
    assert plug.disconnects.empty()
    assert plug.subscribe("home/#", qos=1) == 1
    plug.publish("home/plug", b"on", qos=1)
    assert plug.next_message().payload == b"on"


def test_take_over_by_the_same_token_goes_on(hub, clients):
    c = hub(config=TOKENS)
    first = clients(c.mqtt_port, client_id="plug-2", version=V5, username="plug",
                    password="plug-secret")
    second = clients(c.mqtt_port, client_id="plug-2", version=V5, username="plug",
                     password="plug-secret")
    assert second.rc == 0
    wait_until(lambda: not first.disconnects.empty(), READ_TIMEOUT, "the old connection to close")


@pytest.mark.parametrize("version,delayed", [(V311, 3), (V5, 0x9F)])
def test_the_right_password_in_the_auth_delay_gets_try_later(hub, clients, version, delayed):
    """While the address waits out its delay after failures, even the right
    pair is not tried: CONNACK says "later", not "bad password"."""
    c = hub(config=TOKENS)

    def attempt(secret):
        client = clients(c.mqtt_port, client_id="guesser", version=version, username="plug",
                         password=secret, connect=False)
        rc = client.connect(expect_ok=False)
        client.close()
        return rc.value if hasattr(rc, "value") else rc

    wrong = 4 if version == V311 else 0x86
    # The delay doubles with each failure after it is over, so a slow run
    # that reaches the right pair after the delay just fails again, longer.
    for _ in range(6):
        while attempt("guess") == wrong:
            pass
        if attempt("plug-secret") == delayed:
            return
    raise AssertionError("the right password was never answered %#x during the delay" % delayed)


# --------------------------------------------------------------------- client ids

@pytest.mark.parametrize("version,refused", [(4, 2), (5, 0x85)])
@pytest.mark.parametrize("client_id", ["x" * 257, "plug+1", "plug#", "a/b", "$sys"])
def test_a_client_id_the_hub_cannot_use_is_refused(hub, raw_clients, version, refused, client_id):
    c = hub()
    raw = raw_clients(c.mqtt_port)
    assert connack_reason(raw, client_id=client_id, version=version) == refused
    raw.expect_close()


def test_a_client_id_of_256_bytes_is_accepted(hub, raw_clients):
    c = hub()
    raw = raw_clients(c.mqtt_port)
    assert connack_reason(raw, client_id="x" * 256) == 0


# --------------------------------------------------------------------- subscriptions

SHARE_TOKENS = """
[anonymous]
commands = echo stats pub
publish = jobs/#

[token plug]
secret = plug-secret
subscribe = jobs/#
"""


def test_a_refused_member_leaves_the_shared_group_its_rules(hub, clients):
    c = hub(config=SHARE_TOKENS)
    plug = clients(c.mqtt_port, client_id="worker", version=V5, username="plug",
                   password="plug-secret")
    assert plug.subscribe("$share/g/jobs/#", qos=1) == 1
    anonymous = clients(c.mqtt_port, client_id="stranger", version=V5)
    assert anonymous.subscribe("$share/g/jobs/#", qos=1) == 0x87
    with Client(c.port) as tcp:
        wait_until(lambda: tcp.request("pub jobs/1 go") == "OK"
                   and plug.next_message(timeout=0.2).topic == "jobs/1",
                   READ_TIMEOUT, "the member to get the group's events", ignore=(OSError, queue.Empty))

def test_more_than_64_subscriptions_are_accepted(hub, clients):
    c = hub()
    client = clients(c.mqtt_port, client_id="home-assistant", version=V5)
    for n in range(80):
        assert client.subscribe("entity/%d/state" % n, qos=1) == 1
    with Client(c.port) as tcp:
        wait_until(lambda: tcp.request("pub entity/79/state on") == "OK"
                   and client.next_message(timeout=0.2).topic == "entity/79/state",
                   READ_TIMEOUT, "the 80th filter at the hub", ignore=(OSError, queue.Empty))


def test_max_subscriptions_counts_own_filters_and_shares(hub, clients):
    c = hub("--max-subscriptions", "3")
    client = clients(c.mqtt_port, client_id="counted", version=V5)
    assert client.subscribe("$switchboard/reply/counted/#", qos=1) == 1
    assert client.subscribe("$share/g/jobs/#", qos=1) == 1
    assert client.subscribe("home/#", qos=1) == 1
    assert client.subscribe("work/#", qos=1) == 0x97              # quota exceeded
    assert client.subscribe("$switchboard/msg/counted/#", qos=1) == 0x97
    assert client.subscribe("home/#", qos=0) == 0                 # a replaced one still is fine


# --------------------------------------------------------------------- eviction

def test_a_full_gateway_evicts_the_session_away_the_longest(hub, raw_clients):
    c = hub("--max-sessions", "2")
    away_session(raw_clients, c.mqtt_port, "oldest")
    away_session(raw_clients, c.mqtt_port, "younger")
    newcomer = raw_clients(c.mqtt_port)
    assert connack_reason(newcomer, client_id="newcomer") == 0
    evicted = wait_until(lambda: log_records(c.mqtt_proc, "mqtt session evicted"), READ_TIMEOUT,
                         "the eviction in the log")
    assert [record["client"] for record in evicted] == ["oldest"]
    # The younger one is still kept: it comes back to its session.
    back = raw_clients(c.mqtt_port)
    body = back.connect(client_id="younger", clean=False, props=properties((0x11, u32(300))))
    assert body[0] == 1 and body[1] == 0                          # session present
    # None away any more: a new client is refused, nobody is evicted.
    late = raw_clients(c.mqtt_port)
    assert connack_reason(late, client_id="late") == 0x97
    assert len(log_records(c.mqtt_proc, "mqtt session evicted")) == 1
