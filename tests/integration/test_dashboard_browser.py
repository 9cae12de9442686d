"""The built-in dashboard (GET / of the WebSocket gateway) in a real browser:
headless Chromium driven by tests/browser/dashboard.test.mjs (playwright-core).
It needs node, `npm ci --prefix tests/browser` and Debian's chromium; a
missing piece fails the test (never skips) with how to install it.

The hub has retained values and a numeric topic with history (published by
the script before the page opens), a pool `slow` the script fills, a
connected fake device and one in backoff; screenshots at desktop and phone
widths go to the test's tmp_path (printed), never into the tree."""
import hashlib
import os
import shutil
import subprocess

import pytest

from conftest import (REPO, STARTUP_TIMEOUT, Client, clean_env, free_port, http_status,
                      wait_until)
from device_support import device_section, devices_reply, fake_devices  # noqa: F401 - fixture

BROWSER_DIR = REPO / "tests" / "browser"
SCRIPT = BROWSER_DIR / "dashboard.test.mjs"
CHROMIUM = "/usr/bin/chromium"
RUN_TIMEOUT = 300   # the whole script: every panel, three screenshots, a reconnect; ASan is slower


def require_browser_tools():
    problems = []
    node = shutil.which("node")
    if node is None:
        problems.append("node is not on PATH (apt-get install nodejs npm)")
    if not (BROWSER_DIR / "node_modules" / "playwright-core" / "package.json").is_file():
        problems.append("playwright-core is not installed in %s/node_modules: "
                        "run `npm ci --prefix tests/browser`" % BROWSER_DIR)
    if not os.access(CHROMIUM, os.X_OK):
        problems.append("%s is missing: run `apt-get install chromium`" % CHROMIUM)
    if problems:
        pytest.fail("the dashboard browser test cannot run:\n  " + "\n  ".join(problems),
                    pytrace=False)
    return node


def as_text(output):
    """TimeoutExpired carries bytes (or None) even in text mode."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def run_dashboard_script(hub, extra_env=None):
    node = require_browser_tools()
    env = clean_env({"SB_WS_PORT": str(hub.ws_port), "SB_TCP_PORT": str(hub.port),
                     **(extra_env or {})})
    try:
        run = subprocess.run([node, str(SCRIPT)], cwd=str(REPO), env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        pytest.fail("dashboard.test.mjs still running after %ds\n--- stdout\n%s\n--- stderr\n%s"
                    % (RUN_TIMEOUT, as_text(expired.stdout), as_text(expired.stderr)),
                    pytrace=False)
    print(run.stdout)
    if run.returncode != 0:
        pytest.fail("dashboard.test.mjs exited %d\n--- stdout\n%s\n--- stderr\n%s"
                    % (run.returncode, run.stdout, run.stderr), pytrace=False)


def emit_or_answer(line):
    """The kitchen's fake: `ask...` calls get `got ...`; `emit X` writes X
    back on its own, a line the gateway publishes on device/kitchen."""
    if line.startswith("ask"):
        return "got " + line
    if line.startswith("emit "):
        return line[5:]
    return None


def test_dashboard_in_headless_chromium(launch_hub, fake_devices, tmp_path):  # noqa: F811
    kitchen = fake_devices(answer=emit_or_answer)
    config = tmp_path / "dashboard.conf"
    config.write_text(
        "[service slow]\nworkers = 2\n\n[command sleep]\nservice = slow\n\n"
        + device_section("kitchen", connect="127.0.0.1:%d" % kitchen.port, backoff_initial="0.1",
                         backoff_max="0.3", connect_timeout="2", call_timeout="5")
        # Nothing listens there: refused at once, then a long, visible backoff.
        + device_section("porch", connect="127.0.0.1:%d" % free_port(), backoff_initial="60",
                         backoff_max="60", backoff_jitter="0", connect_timeout="2"))
    hub = launch_hub("--config", str(config))

    def devices_settled():
        reply = devices_reply(hub.port) or ""
        return "kitchen=connected" in reply and "porch=backoff:" in reply

    wait_until(devices_settled, STARTUP_TIMEOUT, "kitchen connected and porch in backoff")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    run_dashboard_script(hub, {"SB_DEVICES": "kitchen,porch", "SB_BUSY_POOL": "slow",
                               "SB_SCREENSHOT_DIR": str(shots)})
    print("screenshots:", " ".join(sorted(str(p) for p in shots.iterdir())))
    assert sorted(p.name for p in shots.iterdir()) == [
        "dashboard-desktop-dark.png", "dashboard-desktop.png", "dashboard-phone.png"]


def test_dashboard_asks_for_a_token(launch_hub, tmp_path):
    """On a hub with tokens the page shows its token form, signs in with
    `auth`, sends the refused requests again and keeps the token for the tab."""
    panel, admin = "panel-secret", "admin-secret"
    config = tmp_path / "tokens.conf"
    config.write_text("[token panel]\nsecret_sha256 = %s\nsubscribe = home/# $sys/#\n"
                      "commands = echo sub unsub pub ping help quit auth history devices device\n"
                      "[token admin]\nsecret_sha256 = %s\n"
                      % (hashlib.sha256(panel.encode()).hexdigest(),
                         hashlib.sha256(admin.encode()).hexdigest()))
    hub = launch_hub("--config", str(config), wait=False)

    def admin_echo():
        with Client(hub.port, timeout=2.0) as client:
            return (client.request("auth admin %s" % admin) == "OK"
                    and client.request("echo ready") == "OK ready")

    wait_until(lambda: hub.proc.alive() and admin_echo(), STARTUP_TIMEOUT,
               "the hub to answer the admin token's echo")
    wait_until(lambda: http_status(hub.ws_port, "/healthz") == 200, STARTUP_TIMEOUT,
               "the WebSocket gateway to be healthy")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    run_dashboard_script(hub, {"SB_PANEL_SECRET": panel, "SB_ADMIN_SECRET": admin,
                               "SB_SCREENSHOT_DIR": str(shots)})
