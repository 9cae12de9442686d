"""The broker's history of numeric topics (issue 15) with the real programs:
every `pub` whose payload is a number is a point, with the broker's wall
clock; `history TOPIC [N]` gives the last N oldest first; --history-points
bounds each topic and --history-topics the topics; a token gets the history
of what it may subscribe to only; bad arguments are refused."""
import time

from conftest import Client, stats_of
from test_tokens import ADMIN_SECRET, authed, start  # noqa: F401 (fixture)


def points(reply):
    """`OK COUNT MS:VALUE ...` as [(ms, value text)], checking COUNT."""
    words = reply.split(" ")
    assert words[0] == "OK", reply
    pairs = [tuple(word.split(":", 1)) for word in words[2:]]
    assert int(words[1]) == len(pairs), reply
    return [(int(ms), value) for ms, value in pairs]


def test_numbers_are_kept_oldest_first_within_the_bound(components):
    c = components(pools={"default": 1}, broker_args=["--history-points", "3"])
    with Client(c.port) as client:
        before = int(time.time() * 1000)
        for line in ["pub home/t 20", "pub home/t warm", "pub -r home/t 21.5", "pub home/t 1e3",
                     "pub home/t -4", "pub home/t 21.5 C", "pub home/text hello"]:
            assert client.request(line) == "OK", line
        got = points(client.request("history home/t"))
        after = int(time.time() * 1000)
        # 20 fell out of the ring; `warm` and `21.5 C` were never points.
        assert [value for _, value in got] == ["21.5", "1000", "-4"], got
        assert all(before <= ms <= after for ms, _ in got), (before, got, after)
        assert [ms for ms, _ in got] == sorted(ms for ms, _ in got)
        assert [v for _, v in points(client.request("history home/t 2"))] == ["1000", "-4"]
        assert client.request("history home/t 99").startswith("OK 3 ")
        assert client.request("history home/text") == "OK 0"
        assert client.request("history nothing/here") == "OK 0"
        for bad in ["history", "history home/+", "history home/# 2", "history home/t 0",
                    "history home/t x", "history home/t 2 3"]:
            assert client.request(bad) == "ERR bad-args usage: history TOPIC [N]", bad
        stats = stats_of(client, "stats broker")
        assert (stats["history_topics"], stats["history_points"], stats["history_refused"]) \
            == ("1", "4", "0"), stats


def test_a_new_topic_beyond_history_topics_gets_none(components):
    c = components(pools={"default": 1}, broker_args=["--history-topics", "1"])
    with Client(c.port) as client:
        for line in ["pub a/x 1", "pub b/x 2", "pub a/x 3"]:
            assert client.request(line) == "OK", line
        assert [v for _, v in points(client.request("history a/x"))] == ["1", "3"]
        assert client.request("history b/x") == "OK 0"
        stats = stats_of(client, "stats broker")
        assert (stats["history_topics"], stats["history_refused"]) == ("1", "1"), stats


def test_no_history_with_zero_points(components):
    c = components(pools={"default": 1}, broker_args=["--history-points", "0"])
    with Client(c.port) as client:
        assert client.request("pub a/x 1") == "OK"
        assert client.request("history a/x") == "OK 0"


def test_a_token_gets_the_history_of_what_it_may_subscribe_to(start):
    c = start(anonymous="[anonymous]\ncommands = ping history auth\nsubscribe = home/#\n")
    with authed(c.port, "admin", ADMIN_SECRET) as admin, Client(c.port) as anonymous:
        for line in ["pub home/t 21", "pub work/t 5"]:
            assert admin.request(line) == "OK", line
        assert [v for _, v in points(anonymous.request("history home/t"))] == ["21"]
        assert anonymous.request("history work/t").startswith("ERR unauthorized ")
        assert [v for _, v in points(admin.request("history work/t"))] == ["5"]
