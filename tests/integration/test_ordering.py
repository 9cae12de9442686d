"""Pipelining and reply order (§3.1) through the all-in-one launcher."""


def test_pipelined_untagged_requests_come_back_in_order(hub, clients):
    client = clients(hub.port)
    lines, expected = [], []
    for n in range(100):
        if n % 10 == 0:
            lines.append("sleep 0.2")          # service `slow` in the shipped config
            expected.append("OK slept 0.2")
        else:
            lines.append("echo %d" % n)
            expected.append("OK %d" % n)
    client.send(*lines)                        # one write
    replies = client.read_lines(100, timeout=10)
    assert replies == expected


def test_tagged_fast_request_overtakes_slow_one(hub, clients):
    client = clients(hub.port)
    client.send("@s sleep 1", "@f echo x")
    assert client.read_line() == "@f OK x"
    assert client.read_line(timeout=5) == "@s OK slept 1"


def test_untagged_reply_waits_for_earlier_untagged_but_not_tagged_ones(hub, clients):
    client = clients(hub.port)
    client.send("sleep 0.5", "echo after", "@quick ping", "@t echo tagged")
    # Tagged replies go out as soon as they are ready; `echo after` is ready
    # long before `sleep 0.5` but must wait for it.
    assert sorted(client.read_lines(2)) == ["@quick OK pong", "@t OK tagged"]
    assert client.read_lines(2, timeout=5) == ["OK slept 0.5", "OK after"]


def test_long_pipeline_beyond_the_inflight_limit(hub, clients):
    """1000 requests in one write: far more than the gateway's default
    in-flight limit (128), so its backpressure pauses and resumes reading."""
    client = clients(hub.port)
    client.send(*["echo %d" % n for n in range(1000)])
    assert client.read_lines(1000, timeout=10) == ["OK %d" % n for n in range(1000)]
