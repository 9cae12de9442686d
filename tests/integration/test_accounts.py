"""Shared state (issue 4, items 1 and 2): `account` on SQLite and the classic
bank protocol (`jack:dp`, `jack:wd`) of the TCP gateway.

Every test points `[store] path` at a file under its own tmp_path: the
default store (under the user's data dir) is never touched. The exactness
test runs 12 connections x 150 random deposits and withdrawals over 4
workers and checks the final balance against the replies."""
import os
import random
import re
import sqlite3
import threading

from conftest import (Client, binary, children_of, free_port, log_records, try_request,
                      wait_until)

USAGE = ("ERR bad-args usage: account NAME deposit|withdraw [AMOUNT] | account NAME balance"
         " (NAME: letters, digits, _ . -; AMOUNT: 1 to 1000000000)")


def store_config(path, extra=""):
    return "[store]\npath = %s\n%s" % (path, extra)


def open_files(pid):
    """The paths a process has open (empty if it is gone)."""
    found = set()
    try:
        entries = os.listdir("/proc/%d/fd" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return found
    for fd in entries:
        try:
            found.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return found


def workers_with_file(master, path):
    """Workers of the pool `master` that hold `path` open."""
    return [pid for pid in children_of(master) if str(path) in open_files(pid)]


# --------------------------------------------------------------------- account

def test_account_deposit_withdraw_balance(components, clients, tmp_path):
    store = tmp_path / "data" / "accounts.db"        # its folder does not exist yet
    c = components(store_config(store), pools={"default": 2})
    client = clients(c.port)
    assert client.request("account jack balance") == "OK jack 0"    # unknown: 0
    assert client.request("account jack deposit") == "OK jack 1"    # AMOUNT defaults to 1
    assert client.request("account jack deposit 41") == "OK jack 42"
    assert client.request("account jack withdraw") == "OK jack 41"
    assert client.request("account jack withdraw 40") == "OK jack 1"
    assert client.request("account jack balance") == "OK jack 1"
    # Accounts are independent; names may hold letters, digits, _ . -
    assert client.request("account Jill_2.x-y deposit 7") == "OK Jill_2.x-y 7"
    assert client.request("account jack balance") == "OK jack 1"
    # The largest amount is accepted.
    assert client.request("account big deposit 1000000000") == "OK big 1000000000"
    assert client.request("account big deposit 1000000000") == "OK big 2000000000"
    # The state is in the configured file, in WAL mode, readable by anyone.
    assert store.is_file(), "the store was not created at %s" % store
    with sqlite3.connect("file:%s?mode=ro" % store, uri=True) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = dict(db.execute("SELECT name, balance FROM accounts"))
    assert rows == {"jack": 1, "Jill_2.x-y": 7, "big": 2000000000}, rows


def test_store_runs_with_wal_and_synchronous_full(components, clients, tmp_path):
    """Durability (issue 11 §3.5): an acknowledged deposit must survive power
    loss, so every worker's connection runs synchronous=FULL (per connection:
    the worker reports what its own connection has, read back from SQLite)."""
    store = tmp_path / "accounts.db"
    c = components(store_config(store), pools={"default": 1})
    assert clients(c.port).request("account jill deposit 5") == "OK jill 5"
    pool = c.pools["default"]
    opened = wait_until(lambda: log_records(pool, "account store opened"), 5,
                        "the worker to log how it opened the store")
    assert opened[0].get("journal_mode") == "wal", opened
    assert opened[0].get("synchronous") == "full", opened
    with sqlite3.connect(str(store)) as db:   # the file itself is in WAL mode
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_account_never_goes_negative(components, clients, tmp_path):
    c = components(store_config(tmp_path / "accounts.db"), pools={"default": 2})
    client = clients(c.port)
    assert client.request("account ann withdraw") == "ERR insufficient-funds ann has no money"
    assert client.request("account ann balance") == "OK ann 0"
    assert client.request("account ann deposit 3") == "OK ann 3"
    assert client.request("account ann withdraw 5") == "ERR insufficient-funds ann has no money"
    assert client.request("account ann balance") == "OK ann 3", "a refused withdrawal changed it"
    assert client.request("account ann withdraw 3") == "OK ann 0"
    assert client.request("account ann withdraw") == "ERR insufficient-funds ann has no money"
    assert client.request("account ann balance") == "OK ann 0"


def test_account_bad_arguments(components, clients, tmp_path):
    c = components(store_config(tmp_path / "accounts.db"), pools={"default": 1})
    client = clients(c.port)
    bad = [
        "account",
        "account jack",
        "account jack steal",
        "account jack deposit 0",
        "account jack deposit -1",
        "account jack deposit 1000000001",
        "account jack deposit 99999999999",
        "account jack withdraw 1.5",
        "account jack deposit abc",
        "account jack deposit 0x10",
        "account jack deposit 1 2",
        "account jack balance 3",
        "account bad!name deposit",
        "account \"two words\" deposit",
        "account %s deposit" % ("n" * 65),
        "account \"\" deposit",
    ]
    client.send(*bad)
    replies = client.read_lines(len(bad))
    for line, reply in zip(bad, replies):
        assert reply == USAGE, "%r answered %r" % (line, reply)
    # None of them changed anything.
    assert client.request("account jack balance") == "OK jack 0"
    assert client.request("account %s deposit" % ("n" * 64)) == "OK %s 1" % ("n" * 64)


CONNECTIONS = 12
OPERATIONS = 150
WINDOW = 16


def _run_account_client(port, name, seed, results, errors):
    rng = random.Random(seed)
    operations = [(rng.choice(("deposit", "withdraw")), rng.randint(1, 5))
                  for _ in range(OPERATIONS)]
    try:
        with Client(port, timeout=30) as client:
            replies, sent = [], 0
            while len(replies) < OPERATIONS:
                # Pipelined, at most WINDOW outstanding: 12 x WINDOW stays far
                # below the broker's queue limit (1000), so no ERR busy.
                window = operations[sent:len(replies) + WINDOW]
                if window:
                    client.send(*("account %s %s %d" % (name, action, amount)
                                  for action, amount in window))
                    sent += len(window)
                replies.append(client.read_line())
            extra = client.read_available(0.05)
        results.append((operations, replies, extra))
    except Exception as error:  # noqa: BLE001 - reported by the main thread
        errors.append(repr(error))


def test_concurrent_operations_are_exact(components, tmp_path):
    """12 connections x 150 random deposits and withdrawals (1..5) on one
    account, pipelined, in parallel, over 4 workers: the final balance is
    exactly the sum of the successful ones and no reply is anything but
    OK or ERR insufficient-funds."""
    c = components(store_config(tmp_path / "accounts.db"), pools={"default": 4})
    seed = random.randrange(1 << 30)
    print("seed %d" % seed)
    results, errors = [], []
    threads = [threading.Thread(target=_run_account_client,
                                args=(c.port, "shared", seed + n, results, errors))
               for n in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a client is stuck"
    assert not errors, errors
    assert len(results) == CONNECTIONS

    expected = 0
    counts = {"deposit": 0, "withdraw": 0, "refused": 0}
    for operations, replies, extra in results:
        assert extra == [], "replies beyond the requests: %r" % extra
        for (action, amount), reply in zip(operations, replies):
            ok = re.match(r"^OK shared (\d+)$", reply)
            if ok:
                counts[action] += 1
                expected += amount if action == "deposit" else -amount
            else:
                assert action == "withdraw" \
                    and reply == "ERR insufficient-funds shared has no money", \
                    "%s %d answered %r" % (action, amount, reply)
                counts["refused"] += 1
    with Client(c.port) as client:
        final = client.request("account shared balance")
    print("successful: %(deposit)d deposits, %(withdraw)d withdrawals; %(refused)d refused"
          % counts)
    assert expected >= 0
    assert final == "OK shared %d" % expected, \
        "final %r, but the successful operations add up to %d" % (final, expected)
    # The load was spread: every worker opened the store.
    holders = workers_with_file(c.pools["default"].pid, tmp_path / "accounts.db")
    assert len(holders) == 4, "only %s of %s used the store" % (
        holders, children_of(c.pools["default"].pid))


def test_two_pools_share_the_store_and_it_survives_a_pool_restart(components, processes,
                                                                  clients, tmp_path):
    """Gateway A routes `account` to the `bank` pool, gateway B (another
    config, same store) to `default`: what one pool writes the other reads.
    The bank pool is then stopped and started again: the balance is still
    there, since it lives in the file."""
    store = tmp_path / "accounts.db"
    routed = store_config(store, "\n[service bank]\nworkers = 2\n\n"
                                 "[command account]\nservice = bank\n")
    c = components(routed, pools={"default": 1, "bank": 2})
    plain_config = tmp_path / "plain.conf"
    plain_config.write_text(store_config(store))
    port_b = free_port()
    processes.start("sb-gateway-tcp-b", [
        binary("sb-gateway-tcp"), "--listen", "127.0.0.1:%d" % port_b, "--broker", c.frontend,
        "--config", str(plain_config)])
    wait_until(lambda: try_request(port_b, "echo ready", "OK ready"), 15,
               "gateway B to answer")
    via_bank = clients(c.port)
    via_default = clients(port_b)
    wait_until(lambda: try_request(c.port, "account alice balance", "OK alice 0"), 15,
               "the bank pool to answer `account`")

    assert via_bank.request("account alice deposit 7") == "OK alice 7"
    assert via_default.request("account alice balance") == "OK alice 7"
    assert via_default.request("account alice withdraw 2") == "OK alice 5"
    assert via_bank.request("account alice balance") == "OK alice 5"
    assert via_bank.request("account alice withdraw 6") == \
        "ERR insufficient-funds alice has no money"
    # Each pool really ran some of them: a worker of each holds the file open.
    assert workers_with_file(c.pools["bank"].pid, store), "no bank worker opened the store"
    assert workers_with_file(c.pools["default"].pid, store), "no default worker opened it"

    bank = c.pools["bank"]
    assert processes.stop(bank), "the bank pool did not stop on SIGTERM"
    restarted = processes.start("sb-workers-bank-again", list(bank.argv))
    wait_until(lambda: restarted.alive()
               and try_request(c.port, "account alice balance", "OK alice 5"), 15,
               "the restarted bank pool to answer with the stored balance")
    assert via_bank.request("account alice deposit") == "OK alice 6"
    assert via_default.request("account alice balance") == "OK alice 6"
    assert workers_with_file(restarted.pid, store)


# --------------------------------------------------------------------- the bank protocol

def test_classic_bank_protocol(components, clients, tmp_path):
    c = components(store_config(tmp_path / "accounts.db"), pools={"default": 2})
    client = clients(c.port)
    assert client.request("jack:dp") == "jack's money: 1"
    assert client.request("jack:dp") == "jack's money: 2"
    assert client.request("jack:wd") == "jack's money: 1"
    assert client.request("jack:wd") == "jack has no money!!"     # down to 0
    assert client.request("jack:wd") == "jack has no money!!"     # stays 0
    assert client.request("account jack balance") == "OK jack 0"
    # The same state as `account`, both ways.
    assert client.request("account jack deposit 5") == "OK jack 5"
    assert client.request("jack:wd") == "jack's money: 4"
    assert client.request("account jack balance") == "OK jack 4"
    assert client.request("nobody:wd") == "nobody has no money!!"
    # Tagged lines keep their tag.
    assert client.request("@t jack:dp") == "@t jack's money: 5"
    assert client.request("@u nobody:wd") == "@u nobody has no money!!"
    # Only NAME:dp and NAME:wd alone on the line are aliases.
    assert client.request("jack:xx").startswith("ERR unknown-command ")
    assert client.request("jack:dp extra").startswith("ERR unknown-command ")
    assert client.request(":dp").startswith("ERR unknown-command ")
    assert client.request("bad!:dp") == USAGE
    assert client.request("account jack balance") == "OK jack 5"
