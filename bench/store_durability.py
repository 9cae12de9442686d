#!/usr/bin/env python3
"""bench/store_durability.py — what synchronous=FULL costs the account store.

The workers' store (workers/store.c) runs SQLite in WAL mode with
synchronous=FULL, so a deposit answered OK is on disk (NORMAL syncs the WAL
only at checkpoints: an acknowledged deposit could vanish on power loss).
This measures deposits per second with NORMAL and with FULL in the same run,
on the same disk, with the store's schema and its deposit statement (one
autocommitted UPSERT per deposit, as a worker runs it), and prints the ratio.

usage: bench/store_durability.py [--dir DIR] [--seconds S] [--rounds N]
  --dir DIR     where the database files go (default: a new folder under the
                current directory; not /tmp, which may be a tmpfs where fsync
                costs nothing); put it on the disk the store will live on.
  --seconds S   length of each measurement (default 3)
  --rounds N    NORMAL/FULL pairs, alternated; the median is reported (default 3)
"""
import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import time

# As in workers/store.c (s_schema and the deposit statement).
SCHEMA = ("CREATE TABLE IF NOT EXISTS accounts ("
          "  name TEXT PRIMARY KEY,"
          "  balance INTEGER NOT NULL CHECK (balance >= 0))")
DEPOSIT = ("INSERT INTO accounts (name, balance) VALUES (?1, ?2)"
           " ON CONFLICT (name) DO UPDATE SET balance = balance + ?2"
           " RETURNING balance")
ACCOUNTS = 100


def deposits_per_second(path, synchronous, seconds):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)   # autocommit: one commit per deposit
    try:
        assert db.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        db.execute("PRAGMA synchronous = %s" % synchronous)
        db.execute(SCHEMA)
        count = 0
        deadline = time.monotonic() + seconds
        started = time.monotonic()
        while time.monotonic() < deadline:
            db.execute(DEPOSIT, ("acct%d" % (count % ACCOUNTS), 1)).fetchone()
            count += 1
        return count / (time.monotonic() - started)
    finally:
        db.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = args.dir or tempfile.mkdtemp(prefix="store-durability-", dir=os.getcwd())
    made = args.dir is None
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "bench.db")
    results = {"NORMAL": [], "FULL": []}
    try:
        for round_ in range(args.rounds):
            for mode in ("NORMAL", "FULL"):
                rate = deposits_per_second(path, mode, args.seconds)
                results[mode].append(rate)
                print("round %d  synchronous=%-6s %9.0f deposits/s" % (round_ + 1, mode, rate),
                      flush=True)
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        if made:
            shutil.rmtree(folder, ignore_errors=True)
    normal = statistics.median(results["NORMAL"])
    full = statistics.median(results["FULL"])
    print("median   synchronous=NORMAL %9.0f deposits/s" % normal)
    print("median   synchronous=FULL   %9.0f deposits/s" % full)
    print("ratio    NORMAL/FULL        %9.1fx  (FULL costs %.2f ms more per deposit)"
          % (normal / full, 1000.0 / full - 1000.0 / normal))


if __name__ == "__main__":
    main()
