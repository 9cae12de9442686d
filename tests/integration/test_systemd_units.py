"""The systemd units in deploy/systemd/ (issue 7): `systemd-analyze verify`
accepts each of them with no warning, and each service runs hardened as the
dedicated user. The units name the installed paths (/usr/local); the test
points copies of them at this build, since verify checks that the programs
exist."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD_DIR, REPO, STARTUP_TIMEOUT

UNITS = REPO / "deploy" / "systemd"
SERVICES = sorted(p.name for p in UNITS.glob("*.service"))
HARDENING = ("User=switchboard", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
             "PrivateTmp=yes", "CapabilityBoundingSet=", "RestrictAddressFamilies=")


@pytest.fixture
def built_units(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing: apt-get install systemd", pytrace=False)
    for unit in list(UNITS.glob("*.service")) + list(UNITS.glob("*.target")):
        text = unit.read_text().replace("/usr/local/bin", str(BUILD_DIR / "bin"))
        text = text.replace("/usr/local/etc", str(BUILD_DIR / "etc"))
        (tmp_path / unit.name).write_text(text)
    # A template is verified through an instance of it.
    shutil.copy(tmp_path / "switchboard-workers@.service",
                tmp_path / "switchboard-workers@default.service")
    return tmp_path


def verify(directory, *names):
    return subprocess.run(["systemd-analyze", "verify", "--man=no",
                           *["./" + name for name in names]],
                          cwd=directory, capture_output=True, text=True, timeout=STARTUP_TIMEOUT)


def test_every_unit_verifies_without_a_warning(built_units):
    names = [n for n in SERVICES if not n.endswith("@.service")]
    names += ["switchboard-workers@default.service", "switchboard.target"]
    assert len(names) == 8, names
    result = verify(built_units, *names)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == "", result.stdout + result.stderr


def test_verify_would_catch_a_broken_unit(built_units):
    broken = built_units / "broken.service"
    broken.write_text(re.sub(r"ExecStart=\S+", "ExecStart=/nonexistent/sb-broker",
                             (built_units / "switchboard-broker.service").read_text()))
    result = verify(built_units, "broken.service")
    assert result.returncode != 0
    assert "/nonexistent/sb-broker" in result.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_hardened_and_runs_an_installed_program(name):
    text = (UNITS / name).read_text()
    for setting in HARDENING:
        assert re.search(r"^%s" % re.escape(setting), text, re.M), "%s lacks %s" % (name, setting)
    program = re.search(r"^ExecStart=/usr/local/bin/(\S+)", text, re.M).group(1)
    assert (BUILD_DIR / "bin" / program).is_file(), program
    assert "--config /usr/local/etc/switchboard/switchboard.conf" in text


def test_the_workers_template_serves_its_instance_and_keeps_the_store():
    text = (UNITS / "switchboard-workers@.service").read_text()
    assert "--service %i" in text
    assert "StateDirectory=switchboard" in text
    assert "--store /var/lib/switchboard/switchboard.db" in text
    sysusers = (UNITS / "switchboard.sysusers.conf").read_text()
    assert re.search(r"^u switchboard ", sysusers, re.M)
    assert Path("/var/lib/switchboard").as_posix() in sysusers
