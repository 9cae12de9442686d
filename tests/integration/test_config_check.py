"""Config validation (issue 4, item 4): `switchboard --check-config FILE`
reports every problem as FILE:LINE: and exits non-zero; a valid file gives
`FILE: ok`; every program refuses to start on an invalid config (exit 2)
with the same problem lines on stderr.

No hub is started here: the programs are run directly, with explicit free
loopback ports, and stopped by pid (subprocess timeout) if one were to
start after all."""
import subprocess

import pytest

from conftest import REPO, SHIPPED_CONFIG, binary, clean_env, free_port

PROGRAMS = ("sb-broker", "sb-workers", "sb-gateway-tcp", "switchboard")


def run(argv, timeout=10):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=clean_env(), timeout=timeout)


def check_config(path):
    return run([binary("switchboard"), "--check-config", str(path)])


def problems(stderr, program):
    """The problem lines of `program`'s stderr, without its prefix."""
    prefix = "%s: error: " % program
    lines = stderr.splitlines()
    assert lines and all(line.startswith(prefix) for line in lines), stderr
    return [line[len(prefix):] for line in lines]


def start_with_config(program, config, tmp_path):
    """Runs `program --config FILE` with harmless free ports: it must refuse."""
    port = lambda: free_port()  # noqa: E731
    args = {
        "sb-broker": ["--frontend", "tcp://127.0.0.1:%d" % port(),
                      "--backend", "tcp://127.0.0.1:%d" % port()],
        "sb-workers": ["--broker", "tcp://127.0.0.1:%d" % port(), "--workers", "1"],
        "sb-gateway-tcp": ["--listen", "127.0.0.1:%d" % port(),
                           "--broker", "tcp://127.0.0.1:%d" % port()],
        "switchboard": ["--tcp", "127.0.0.1:%d" % port(),
                        "--runtime-dir", str(tmp_path / "rt")],
    }[program]
    return run([binary(program), "--config", str(config), *args])


@pytest.fixture
def not_executable(tmp_path):
    path = tmp_path / "not-executable.sh"
    path.write_text("#!/bin/sh\necho hi\n")
    path.chmod(0o644)
    return path


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


# A file with problems of both kinds: ones found while reading it (syntax,
# unknown sections, bad [service]/[command] values) and ones found checking
# what was read (program keys and values, exec programs, service pools).
def every_kind_of_problem(tmp_path, not_executable):
    path = write_lines(tmp_path / "bad.conf", [
        "# a config with every kind of problem",                      # 1
        "[broker]",                                                   # 2
        "frontend = tcp://127.0.0.1:7100",                            # 3
        "no_such_key = 1",                                            # 4
        "[workers]",                                                  # 5
        "heartbeat_liveness = many",                                  # 6
        "[nonsense]",                                                 # 7
        "foo = bar",                                                  # 8
        "[service default]",                                          # 9
        "workers = lots",                                             # 10
        "this line has no equals sign",                               # 11
        "[command lamp]",                                             # 12
        "exec = /nonexistent/lamp on",                                # 13
        "[command noexec]",                                           # 14
        "exec = %s" % not_executable,                                 # 15
        "[command orphan]",                                           # 16
        "service = ghost",                                            # 17
        "exec = /bin/echo",                                           # 18
    ])
    expected = [
        "%s:4: unknown key 'no_such_key' in [broker]",
        "%s:6: workers.heartbeat_liveness must be a whole number from 1 to 100, not 'many'",
        "%s:7: unknown section [nonsense]",
        "%s:10: workers must be a whole number from 0 to 256, not 'lots'",
        "%s:11: expected 'key = value'",
        "%s:13: exec: '/nonexistent/lamp' is missing or not executable",
        "%%s:15: exec: '%s' is missing or not executable" % not_executable,
        "%s:17: command 'orphan' is assigned to service 'ghost', which has no [service ghost] pool",
    ]
    return path, [line % path for line in expected]


def test_check_config_reports_every_problem_with_its_line(tmp_path, not_executable):
    path, expected = every_kind_of_problem(tmp_path, not_executable)
    result = check_config(path)
    assert result.returncode != 0
    assert "ok" not in result.stdout
    reported = problems(result.stderr, "switchboard")
    missing = [line for line in expected if line not in reported]
    assert not missing, "not reported:\n%s\nreported:\n%s" % ("\n".join(missing),
                                                              "\n".join(reported))
    assert sorted(reported) == sorted(expected)


def test_check_config_reports_every_reading_problem(tmp_path):
    """Problems found while reading the file: all of them, not just the first."""
    path = write_lines(tmp_path / "unreadable.conf", [
        "stray = outside any section",                                # 1
        "[service default]",                                          # 2
        "workers = 300",                                              # 3
        "size = 2",                                                   # 4
        "[mystery]",                                                  # 5
        "[command lamp",                                              # 6
        "just words",                                                 # 7
        "[command lamp]",                                             # 8
        "timeout = soon",                                             # 9
        "retry = maybe",                                              # 10
        "max_output = 0",                                             # 11
        "colour = blue",                                              # 12
        "service = two words",                                        # 13
        "exec =",                                                     # 14
    ])
    result = check_config(path)
    assert result.returncode != 0
    expected = [line % path for line in (
        "%s:1: 'stray' is outside any [section]",
        "%s:3: workers must be a whole number from 0 to 256, not '300'",
        "%s:4: unknown key 'size' in [service default] (known: workers, prefetch)",
        "%s:5: unknown section [mystery]",
        "%s:6: section header without ']'",
        "%s:7: expected 'key = value'",
        "%s:9: timeout must be seconds between 0 and 86400, not 'soon'",
        "%s:10: retry must be yes or no, not 'maybe'",
        "%s:11: max_output must be bytes from 1 to 65536, not '0'",
        "%s:12: unknown key 'colour' in [command lamp] (known: service, timeout, retry, exec, "
        "max_output, description)",
        "%s:13: service must be one word, not 'two words'",
        "%s:14: exec must name a program",
    )]
    assert problems(result.stderr, "switchboard") == expected


def semantic_problems(tmp_path, not_executable):
    """A file that reads fine but whose content is wrong."""
    path = write_lines(tmp_path / "wrong.conf", [
        "[broker]",                                                   # 1
        "no_such_key = 1",                                            # 2
        "queue_max = -5",                                             # 3
        "[workers]",                                                  # 4
        "heartbeat_liveness = many",                                  # 5
        "[gateway-tcp]",                                              # 6
        "max_line = 1",                                               # 7
        "[command lamp]",                                             # 8
        "exec = /nonexistent/lamp on",                                # 9
        "[command noexec]",                                           # 10
        "description = cannot run",                                   # 11
        "exec = %s" % not_executable,                                 # 12
        "[command relative]",                                         # 13
        "exec = lamp.sh on",                                          # 14
        "[command quoted]",                                           # 15
        "exec = /bin/echo \"unterminated",                            # 16
        "[command orphan]",                                           # 17
        "exec = /bin/echo",                                           # 18
        "service = ghost",                                            # 19
        "[command sleep]",                                            # 20
        "service = slow",                                             # 21
    ])
    expected = [line % path for line in (
        "%s:2: unknown key 'no_such_key' in [broker]",
        "%s:5: workers.heartbeat_liveness must be a whole number from 1 to 100, not 'many'",
        "%s:9: exec: '/nonexistent/lamp' is missing or not executable",
        "%%s:12: exec: '%s' is missing or not executable" % not_executable,
        "%s:14: exec: 'lamp.sh' must be an absolute path",
        "%s:16: exec: unterminated quote",
        "%s:19: command 'orphan' is assigned to service 'ghost', which has no [service ghost] pool",
        "%s:21: command 'sleep' is assigned to service 'slow', which has no [service slow] pool",
    )]
    return path, expected


def test_check_config_reports_every_content_problem(tmp_path, not_executable):
    path, expected = semantic_problems(tmp_path, not_executable)
    result = check_config(path)
    assert result.returncode != 0
    reported = problems(result.stderr, "switchboard")
    # Bad values of program keys name the key and the reason: the exact
    # wording is options.c's, so only its line and key are pinned here.
    for line, key in ((3, "broker.queue_max"), (7, "gateway-tcp.max_line")):
        found = [r for r in reported if r.startswith("%s:%d: %s " % (path, line, key))]
        assert len(found) == 1, "line %d (%s) not reported: %s" % (line, key, reported)
        reported.remove(found[0])
    assert sorted(reported) == sorted(expected)


def test_valid_config_is_ok(tmp_path):
    script = tmp_path / "lamp.sh"
    script.write_text("#!/bin/sh\necho on\n")
    script.chmod(0o755)
    path = write_lines(tmp_path / "good.conf", [
        "# comments; and blank lines",
        "",
        "; another comment",
        "[broker]",
        "queue_max = 50",
        "[workers]",
        "heartbeat_liveness = 5",
        "[store]",
        "path = %s" % (tmp_path / "accounts.db"),
        "[service default]",
        "workers = 3",
        "[service home]",
        "workers = 1",
        "[command lamp]",
        "exec = %s \"fixed arg\" two" % script,
        "service = home",
        "timeout = 2.5",
        "retry = no",
        "max_output = 200",
        "description = lamp on|off: the hall lamp",
        "[command sleep]",
        "service = home",
    ])
    result = check_config(path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "%s: ok\n" % path, "")


@pytest.mark.parametrize("path", [REPO / "deploy" / "switchboard.conf", SHIPPED_CONFIG],
                         ids=["deploy", "installed-copy"])
def test_shipped_config_is_valid(path):
    result = check_config(path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "%s: ok\n" % path, "")


def test_missing_file_is_an_error(tmp_path):
    result = check_config(tmp_path / "absent.conf")
    assert result.returncode != 0
    assert problems(result.stderr, "switchboard") == [
        "%s: cannot open: No such file or directory" % (tmp_path / "absent.conf")]


@pytest.mark.parametrize("kind", ["content", "reading"])
def test_every_program_refuses_an_invalid_config_with_the_same_lines(tmp_path, not_executable,
                                                                     kind):
    if kind == "content":
        path, _ = semantic_problems(tmp_path, not_executable)
    else:
        path = write_lines(tmp_path / "unreadable.conf", [
            "[service default]", "workers = lots", "[mystery]", "just words"])
    checked = check_config(path)
    assert checked.returncode != 0
    expected = problems(checked.stderr, "switchboard")
    assert len(expected) >= 3, expected
    for program in PROGRAMS:
        result = start_with_config(program, path, tmp_path)
        assert result.returncode == 2, "%s exited %d\n%s" % (program, result.returncode,
                                                             result.stderr)
        assert problems(result.stderr, program) == expected, program
        assert result.stdout == ""


def test_command_without_exec_that_is_not_built_in_is_reported(tmp_path):
    """`[command NAME]` without `exec` only makes sense for a built-in
    command (to route it, time it or describe it): a section for any other
    name (a typo of an external command) runs nothing, so it is a problem."""
    path = write_lines(tmp_path / "noexec.conf", [
        "[command echo]",                                             # 1: built-in, fine
        "service = default",                                          # 2
        "[command lmap]",                                             # 3: no exec
        "description = lamp on|off: a typo of lamp",                  # 4
    ])
    result = check_config(path)
    assert result.returncode != 0, "a command that runs nothing passed: %r" % result.stdout
    reported = problems(result.stderr, "switchboard")
    assert len(reported) == 1 and "lmap" in reported[0] \
        and reported[0].startswith(("%s:3: " % path, "%s:4: " % path)), reported
