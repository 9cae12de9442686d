"""Credit-based dispatch (issue 13): a worker may hold several requests at
once (`--prefetch K`, `[service NAME] prefetch`), runs one job (`sleep`, an
external program) at a time and its fast commands beside it, and every
reliability promise holds for what it holds: a worker killed holding
several has its retry-safe requests run again elsewhere and the rest
answered ERR worker-died at once.

A held request is made visible as in test_reliability.py: with broker
--queue-max 0 a request that no provider can take now is refused `busy`,
so a `busy` probe proves every earlier request was handed to a worker.
"""
import os
import re
import signal

from conftest import children_of, log_records, wait_for_providers, wait_until

HOLDING = ["--queue-max", "0"]

SLEEP_IN_DEFAULT = """
[command sleep]
service = default
"""


def prefetch(k):
    return ("--graceful-timeout", "1", "--prefetch", str(k))


def tagged_replies(client, count, timeout=10):
    """`count` reply lines as {tag: text}, and the tags in arrival order."""
    got, order = {}, []
    for _ in range(count):
        tag, text = client.read_line(timeout=timeout).split(" ", 1)
        got[tag] = text
        order.append(tag)
    return got, order


def test_a_worker_holds_up_to_its_credit(components, clients):
    """One stopped worker with a credit of 3 takes three requests; the
    fourth finds no provider with credit and is refused busy. Woken, the
    worker answers the three."""
    c = components(broker_args=HOLDING, pools={"default": 1}, worker_args=prefetch(3))
    [worker] = children_of(c.pools["default"].pid)
    wait_for_providers(c.port, "default", 1)
    client = clients(c.port)
    os.kill(worker, signal.SIGSTOP)
    try:
        client.send("@a echo a", "@b echo b", "@c echo c", "@d echo d")
        reply = client.read_line(timeout=5)
        assert reply.startswith("@d ERR busy"), reply
    finally:
        os.kill(worker, signal.SIGCONT)
    got, _ = tagged_replies(client, 3)
    assert got == {"@a": "OK a", "@b": "OK b", "@c": "OK c"}, got


def test_fast_commands_run_beside_a_job(components, clients):
    """A worker running `sleep` still answers the `echo` sent after it: the
    job does not hold back the fast command queued behind it."""
    c = components(SLEEP_IN_DEFAULT, pools={"default": 1}, worker_args=prefetch(4))
    wait_for_providers(c.port, "default", 1)
    client = clients(c.port)
    client.send("@s sleep 2", "@e echo beside")
    got, order = tagged_replies(client, 2)
    assert got == {"@s": "OK slept 2", "@e": "OK beside"}, got
    assert order == ["@e", "@s"], order


def test_a_job_goes_to_a_worker_without_one(components, clients):
    """Two workers with a credit of 4 each: two sleeps go to different
    workers (a third job has nowhere to go and is refused busy, though both
    have credit left), and an echo still runs beside them."""
    c = components(SLEEP_IN_DEFAULT, broker_args=HOLDING, pools={"default": 2},
                   worker_args=prefetch(4))
    wait_for_providers(c.port, "default", 2)
    client = clients(c.port)
    client.send("@a sleep 2", "@b sleep 2", "@p sleep 0")
    reply = client.read_line(timeout=5)
    assert reply.startswith("@p ERR busy"), reply
    client.send("@e echo free")
    got, order = tagged_replies(client, 3)
    assert got == {"@a": "OK slept 2", "@b": "OK slept 2", "@e": "OK free"}, got
    assert order[0] == "@e", order


def test_worker_killed_holding_several(components, clients):
    """A stopped worker holds two retry-safe echoes and a deposit (not
    retry-safe). Killed, the echoes run on its replacement and the deposit
    is answered ERR worker-died; each request gets exactly one reply."""
    c = components(broker_args=HOLDING, pools={"default": 1}, worker_args=prefetch(3))
    master = c.pools["default"].pid
    [worker] = children_of(master)
    wait_for_providers(c.port, "default", 1)
    client = clients(c.port)
    os.kill(worker, signal.SIGSTOP)
    client.send("@a echo first", "@d account credit-test deposit 5", "@b echo second",
                "@p echo probe")
    reply = client.read_line(timeout=5)
    assert reply.startswith("@p ERR busy"), reply
    os.kill(worker, signal.SIGKILL)
    got, _ = tagged_replies(client, 3, timeout=15)
    assert got["@a"] == "OK first" and got["@b"] == "OK second", got
    assert re.match(r"^ERR worker-died\b", got["@d"]), got
    queued = log_records(c.broker, "request queued again")
    assert sorted(r.get("command") for r in queued) == ["echo", "echo"], \
        [r["_line"] for r in queued]
    wait_until(lambda: len(children_of(master)) == 1, 5, "the pool to be back at 1 worker")
    client.send("@n account credit-test balance")
    assert client.read_line(timeout=10) == "@n OK credit-test 0", "the deposit ran after all"
    assert client.read_available(0.05) == [], "a duplicate reply"


def test_prefetch_from_the_config_file(components, clients):
    """`[service default] prefetch = 2`: the broker logs the credit each
    worker announced."""
    c = components("[service default]\nprefetch = 2\n", pools={"default": 1})
    wait_for_providers(c.port, "default", 1)
    ready = log_records(c.broker, "provider ready")
    assert [r.get("credit") for r in ready] == ["2"], [r["_line"] for r in ready]
