"""External commands from the config file (issue 4, items 3 and 5):
`[command NAME]` with exec, timeout, max_output, service, retry and
description, run by the workers without a shell.

Every program the tests run is a small /bin/sh script written into the
test's tmp_path; pids a script wants the test to check are written to files
there. Every config also sets `[store] path` under tmp_path."""
import os
import re
import signal
import subprocess
import time

from conftest import (Proc, binary, children_of, clean_env, pid_alive, try_request,
                      wait_until)
from conftest import log_records




def make_script(tmp_path, name, body):
    """An executable /bin/sh script `name` in tmp_path."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def config_with(tmp_path, text):
    return "[store]\npath = %s\n\n%s" % (tmp_path / "accounts.db", text)


def read_pid(path):
    """The pid a script wrote to `path`, once it is there in full."""
    text = path.read_text() if path.exists() else ""
    return int(text) if text.endswith("\n") and text.strip().isdigit() else None


def process_group(pgid):
    """Live (non-zombie) pids whose process group is `pgid`."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                text = stat.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def kill_if_alive(*pids):
    for pid in pids:
        if pid and pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# --------------------------------------------------------------------- argv, stdin, env

def test_arguments_arrive_literally_as_separate_argv_entries(components, clients, tmp_path):
    args = make_script(tmp_path, "args.sh", "printf '[%s]' \"$@\"\n")
    canary = tmp_path / "canary"
    canary.write_text("still here")
    c = components(config_with(tmp_path, """
[command args]
exec = %s fixed "two words"
""" % args), pools={"default": 1})
    client = clients(c.port)
    assert client.request("args") == "OK [fixed][two words]"
    line = ('args "with spaces" $(id) "$(touch %s/pwned)" ";rm -rf %s" `id` "`id`" * '
            "'quotes' \"dq\\\"inside\" $HOME a|b&&c>out \"back\\\\slash\" ~ %%s"
            % (tmp_path, canary))
    reply = client.request(line)
    expected = ("OK [fixed][two words][with spaces][$(id)][$(touch %s/pwned)][;rm -rf %s]"
                "[`id`][`id`][*]['quotes'][dq\"inside][$HOME][a|b&&c>out][back\\slash][~][%%s]"
                % (tmp_path, canary))
    assert reply == expected
    assert canary.read_text() == "still here", "an argument was run by a shell"
    assert not (tmp_path / "pwned").exists(), "an argument was run by a shell"
    assert not (tmp_path / "out").exists(), "an argument was run by a shell"


def test_stdin_is_dev_null_even_when_the_pool_has_a_stdin(components, processes, clients,
                                                          tmp_path):
    """The pool is started with a pipe on stdin that holds data and stays
    open: a command reading it would get the data or hang until its
    timeout. It reads /dev/null: nothing, at once."""
    stdin = make_script(tmp_path, "stdin.sh",
                        "printf '%s ' \"$(readlink /proc/self/fd/0)\"\n"
                        "cat | wc -c | tr -d ' '\n")
    config = config_with(tmp_path, """
[command stdin]
exec = %s
timeout = 3
""" % stdin)
    c = components(config, pools={})
    log_path = tmp_path / "99-sb-workers-piped.log"
    argv = [binary("sb-workers"), "--service", "default", "--workers", "1",
            "--broker", c.backend, "--config", str(c.config_path), "--graceful-timeout", "1"]
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log,
                                 stderr=subprocess.STDOUT, env=clean_env(), cwd=str(tmp_path))
    processes.procs.append(Proc("sb-workers-piped", argv, log_path, popen))
    try:
        popen.stdin.write(b"data the command must not see\n")
        popen.stdin.flush()
        wait_until(lambda: try_request(c.port, "echo ready", "OK ready"), 15,
                   "the piped pool to answer")
        client = clients(c.port)
        started = time.monotonic()
        assert client.request("stdin") == "OK /dev/null 0"
        assert time.monotonic() - started < 2
    finally:
        popen.stdin.close()


def test_environment_is_minimal(components, clients, tmp_path, monkeypatch):
    # The pool itself has these (and HOME): the command must not.
    monkeypatch.setenv("SB_TEST_SECRET", "leaked")
    monkeypatch.setenv("HOME", str(tmp_path))
    env = make_script(tmp_path, "env.sh", "env | sort | tr '\\n' '|'\n")
    c = components(config_with(tmp_path, """
[command showenv]
exec = %s
""" % env), pools={"default": 1})
    client = clients(c.port)
    client_id = re.match(r"^OK switchboard \S+ client=(\S+)$", client.greeting).group(1)
    reply = client.request("showenv")
    assert reply.startswith("OK "), reply
    variables = dict(item.split("=", 1) for item in reply[3:].split("|") if item)
    assert variables.get("PATH") == "/usr/local/bin:/usr/bin:/bin", variables
    assert variables.get("LANG") == "C.UTF-8", variables
    assert variables.get("SWITCHBOARD_COMMAND") == "showenv", variables
    assert variables.get("SWITCHBOARD_CLIENT") == client_id, variables
    assert re.match(r"^tcp-\d+$", client_id)
    for leaked in ("HOME", "SB_TEST_SECRET", "USER", "SWITCHBOARD_CONFIG", "LD_PRELOAD"):
        assert leaked not in variables, "%s leaked into the command: %s" % (leaked, variables)
    # Nothing else but what the shell itself may add.
    assert set(variables) <= {"PATH", "LANG", "SWITCHBOARD_COMMAND", "SWITCHBOARD_CLIENT",
                              "SWITCHBOARD_TOKEN",
                              "PWD", "OLDPWD", "SHLVL", "_"}, sorted(variables)
    # Another connection is another client.
    other = clients(c.port)
    other_id = re.match(r"^OK switchboard \S+ client=(\S+)$", other.greeting).group(1)
    assert "SWITCHBOARD_CLIENT=%s|" % other_id in other.request("showenv")


# --------------------------------------------------------------------- output

def test_output_is_folded_and_stderr_goes_to_the_log(components, clients, tmp_path):
    multi = make_script(tmp_path, "multi.sh",
                        "printf 'line one\\nline two\\r\\n\\tindented\\n\\n\\n'\n")
    noisy = make_script(tmp_path, "noisy.sh",
                        "echo \"warning: disk $1\" >&2\n"
                        "echo result\n"
                        "echo 'second problem' >&2\n")
    silent = make_script(tmp_path, "silent.sh", "exit 0\n")
    c = components(config_with(tmp_path, """
[command multi]
exec = %s

[command noisy]
exec = %s

[command silent]
exec = %s
""" % (multi, noisy, silent)), pools={"default": 1})
    client = clients(c.port)
    # Newlines, carriage returns and tabs become spaces; trailing ones go.
    assert client.request("multi") == "OK line one line two   indented"
    assert client.request("silent") == "OK"
    assert client.request("noisy full") == "OK result"
    pool = c.pools["default"]
    records = wait_until(
        lambda: (lambda found: len(found) >= 2 and found)(log_records(pool, "command stderr")),
        5, "the pool to log the command's stderr")
    lines = [(r.get("command"), r.get("line")) for r in records]
    assert lines == [("noisy", "warning: disk full"), ("noisy", "second problem")], \
        [r["_line"] for r in records]
    assert "warning" not in client.request("noisy again")


def test_last_stderr_line_without_newline_is_logged(components, clients, tmp_path):
    """A program's last stderr line need not end in a newline: it is logged
    all the same when the program's stderr closes."""
    unterminated = make_script(tmp_path, "unterminated.sh",
                               "echo 'first line' >&2\nprintf 'no newline at the end' >&2\n")
    c = components(config_with(tmp_path, """
[command unterminated]
exec = %s
""" % unterminated), pools={"default": 1})
    client = clients(c.port)
    assert client.request("unterminated") == "OK"
    assert client.request("echo after") == "OK after"
    pool = c.pools["default"]
    wait_until(lambda: [r for r in log_records(pool, "command stderr")
                        if r.get("line") == "first line"], 5, "the first stderr line in the log")
    wait_until(lambda: [r for r in log_records(pool, "command stderr")
                        if r.get("line") == "no newline at the end"], 2,
               "the unterminated last stderr line in the log")


def test_failing_command_answers_exit_status(components, clients, tmp_path):
    fail = make_script(tmp_path, "fail.sh",
                       "echo partial output\necho 'why it failed' >&2\nexit 3\n")
    quiet = make_script(tmp_path, "quiet.sh", "exit 7\n")
    killed = make_script(tmp_path, "killed.sh", "kill -TERM $$\nsleep 5\n")
    gone = make_script(tmp_path, "gone.sh", "echo never\n")
    c = components(config_with(tmp_path, """
[command fail]
exec = %s
[command quiet]
exec = %s
[command killed]
exec = %s
[command gone]
exec = %s
""" % (fail, quiet, killed, gone)), pools={"default": 1})
    client = clients(c.port)
    assert client.request("fail") == "ERR exit-status 3 partial output"
    assert client.request("quiet") == "ERR exit-status 7"
    assert client.request("killed") == "ERR exit-status killed by signal 15"
    # Removed after the config was checked: an error reply, not a crash.
    gone.unlink()
    reply = client.request("gone")
    assert reply.startswith("ERR "), reply
    assert "never" not in reply
    assert client.request("echo still serving") == "OK still serving"


def test_output_over_max_output_is_cut_with_a_marker(components, clients, tmp_path):
    big = make_script(tmp_path, "big.sh", "head -c 10000 /dev/zero | tr '\\0' x\n")
    exact = make_script(tmp_path, "exact.sh", "head -c 100 /dev/zero | tr '\\0' z\n")
    plenty = make_script(tmp_path, "plenty.sh", "head -c 20000 /dev/zero | tr '\\0' p\n")
    huge = make_script(tmp_path, "huge.sh",
                       "head -c 3000000 /dev/zero | tr '\\0' y\necho done >&2\n")
    c = components(config_with(tmp_path, """
[command big]
exec = %s
max_output = 100

[command huge]
exec = %s
max_output = 100
timeout = 10

[command exact]
exec = %s
max_output = 100

[command plenty]
exec = %s
""" % (big, huge, exact, plenty)), pools={"default": 1})
    client = clients(c.port)
    assert client.request("big") == "OK " + "x" * 100 + " [output cut at 100 bytes]"
    # Output past the limit is still read (and dropped): the program is not
    # blocked on a full pipe, it runs to its end.
    started = time.monotonic()
    assert client.request("huge", timeout=10) == "OK " + "y" * 100 + " [output cut at 100 bytes]"
    assert time.monotonic() - started < 5
    # Exactly the limit is not cut.
    assert client.request("exact") == "OK " + "z" * 100
    # Without max_output, 16384 bytes are kept.
    assert client.request("plenty") == "OK " + "p" * 16384 + " [output cut at 16384 bytes]"


def test_timed_out_command_and_its_children_are_killed(components, clients, tmp_path):
    slow = make_script(tmp_path, "slow.sh",
                       "echo $$ > %(d)s/main.tmp && mv %(d)s/main.tmp %(d)s/main.pid\n"
                       "sleep 30 &\n"
                       "echo $! > %(d)s/child.tmp && mv %(d)s/child.tmp %(d)s/child.pid\n"
                       "echo started\n"
                       "sleep 30\n" % {"d": tmp_path})
    c = components(config_with(tmp_path, """
[command slow]
exec = %s
timeout = 1
""" % slow), pools={"default": 1})
    client = clients(c.port)
    main = child = None
    try:
        started = time.monotonic()
        reply = client.request("slow", timeout=5)
        elapsed = time.monotonic() - started
        main = read_pid(tmp_path / "main.pid")
        child = read_pid(tmp_path / "child.pid")
        assert re.match(r"^ERR timeout\b", reply), reply
        assert 0.9 <= elapsed < 2.5, "ERR timeout after %.2fs (timeout 1 s)" % elapsed
        assert main and child, "the script did not record its pids"
        wait_until(lambda: not pid_alive(main) and not pid_alive(child)
                   and not process_group(main), 3,
                   "the script %d, its child %d and its process group to be gone"
                   % (main, child))
        # The worker is fine and serves the next request.
        assert client.request("echo after") == "OK after"
        assert client.read_available(0.05) == [], "a second reply to the timed-out request"
    finally:
        kill_if_alive(main, child)


def test_timeout_kills_children_left_behind_by_an_exited_command(components, clients, tmp_path):
    """The script exits at once, but the child it started in the background
    keeps its stdout open, so the command is not over: past the timeout the
    whole process group must be killed, the leader being gone or not."""
    leaves = make_script(tmp_path, "leaves.sh",
                         "sleep 30 &\n"
                         "echo $! > %(d)s/bg.tmp && mv %(d)s/bg.tmp %(d)s/bg.pid\n"
                         "echo $$ > %(d)s/leader.tmp && mv %(d)s/leader.tmp %(d)s/leader.pid\n"
                         "echo leader done\n"
                         "exit 0\n" % {"d": tmp_path})
    c = components(config_with(tmp_path, """
[command leaves]
exec = %s
timeout = 1
""" % leaves), pools={"default": 1})
    client = clients(c.port)
    background = None
    try:
        reply = client.request("leaves", timeout=5)
        background = read_pid(tmp_path / "bg.pid")
        leader = read_pid(tmp_path / "leader.pid")
        assert background and leader, "the script did not record its pids"
        assert re.match(r"^(ERR timeout\b|OK leader done$)", reply), reply
        wait_until(lambda: not pid_alive(background) and not process_group(leader), 3,
                   "the background child %d of the timed-out command to be killed"
                   % background)
    finally:
        kill_if_alive(background)


# --------------------------------------------------------------------- routing, retry, help

def test_service_and_retry_are_honoured(components, clients, tmp_path):
    where = make_script(tmp_path, "where.sh", "echo $PPID\n")
    # First run: records its worker and its own pid, then hangs; a second
    # run (after the worker was killed) answers at once.
    flaky = make_script(tmp_path, "flaky.sh",
                        'd=%s; name=$1\n'
                        'if [ -e "$d/$name.ran" ]; then echo "second run $name"; exit 0; fi\n'
                        ': > "$d/$name.ran"\n'
                        'echo $$ > "$d/$name.s.tmp" && mv "$d/$name.s.tmp" "$d/$name.script.pid"\n'
                        'echo $PPID > "$d/$name.w.tmp"\n'
                        'mv "$d/$name.w.tmp" "$d/$name.worker.pid"\n'
                        'exec sleep 30\n' % tmp_path)
    c = components(config_with(tmp_path, """
[service ext]
workers = 2

[command where]
service = ext
exec = %(where)s

[command here]
exec = %(where)s

[command flaky]
service = ext
retry = yes
timeout = 20
exec = %(flaky)s yes

[command fragile]
service = ext
retry = no
timeout = 20
exec = %(flaky)s no
""" % {"where": where, "flaky": flaky}), pools={"default": 1, "ext": 2})
    ext = c.pools["ext"].pid
    default = c.pools["default"].pid
    wait_until(lambda: try_request(c.port, "here", "OK %d" % children_of(default)[0]), 15,
               "the default pool to run `here`")
    client = clients(c.port)
    reply = wait_until(lambda: (lambda r: r.startswith("OK ") and r)(client.request("where")),
                       15, "the ext pool to run `where`")
    assert int(reply[3:]) in children_of(ext), "`where` ran in %s, not the ext pool" % reply

    scripts = []
    try:
        # retry = yes: the worker dies under it, it runs again elsewhere.
        client.send("@f flaky")
        worker = wait_until(lambda: read_pid(tmp_path / "yes.worker.pid"), 5, "flaky to start")
        scripts.append(read_pid(tmp_path / "yes.script.pid"))
        assert worker in children_of(ext), "flaky ran in %d, not an ext worker" % worker
        os.kill(worker, signal.SIGKILL)
        assert client.read_line(timeout=8) == "@f OK second run yes"

        # retry = no: the client is told the worker died.
        client.send("@g fragile")
        worker = wait_until(lambda: read_pid(tmp_path / "no.worker.pid"), 5, "fragile to start")
        scripts.append(read_pid(tmp_path / "no.script.pid"))
        assert worker in children_of(ext), "fragile ran in %d, not an ext worker" % worker
        os.kill(worker, signal.SIGKILL)
        reply = client.read_line(timeout=8)
        assert re.match(r"^@g ERR worker-died\b", reply), reply
        assert client.read_available(0.05) == []
    finally:
        kill_if_alive(*scripts)


def test_help_lists_external_commands_with_descriptions(components, clients, tmp_path):
    lamp = make_script(tmp_path, "lamp.sh", "echo \"lamp is $1\"\n")
    c = components(config_with(tmp_path, """
[command lamp]
exec = %s
description = lamp on|off: switches the hall lamp

[command bare]
exec = %s

[command hello]
exec = %s
""" % (lamp, lamp, lamp)), pools={"default": 1})
    client = clients(c.port)
    reply = client.request("help")
    assert reply.startswith("OK "), reply
    names = reply[3:].split()
    for name in ("echo", "hello", "sleep", "time", "account", "ping", "help", "quit", "stats",
                 "lamp", "bare"):
        assert name in names, "%s missing from %r" % (name, reply)
    assert len(names) == len(set(names)), "a name listed twice: %r" % reply
    assert client.request("help lamp") == "OK lamp on|off: switches the hall lamp"
    assert client.request("help bare") == "OK an external command (no description in the config)"
    assert client.request("help account").startswith("OK account NAME deposit|withdraw")
    assert client.request("help nosuch") == "ERR unknown-command no such command"
    assert client.request("lamp on") == "OK lamp is on"
    assert client.request("@x bare off") == "@x OK lamp is off"
    # An external command replaces the built-in of the same name.
    assert client.request("hello bob") == "OK lamp is bob"
    assert client.request("help hello") == \
        "OK an external command (no description in the config)"
