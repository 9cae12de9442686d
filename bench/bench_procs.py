"""bench_procs.py — what the Python benchmarks in bench/ share: free loopback
ports, waiting for a condition, and finding the hub's processes and their
resident memory under /proc."""
import socket
import sys
import time
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    sys.exit("timed out waiting for " + what)


def rss_kib(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def children(pid):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError):
                pass
    return found


def child_named(hub_pid, program):
    """The launcher's child running `program` (b"sb-broker", ...), or None."""
    for pid in children(hub_pid):
        try:
            if Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")[0].endswith(program):
                return pid
        except OSError:
            pass
    return None
