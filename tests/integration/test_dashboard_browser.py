"""The built-in dashboard (GET / of the WebSocket gateway) in a real browser:
headless Chromium driven by tests/browser/dashboard.test.mjs (playwright-core).
It needs node, `npm ci --prefix tests/browser` and Debian's chromium; a
missing piece fails the test (never skips) with how to install it."""
import hashlib
import os
import shutil
import subprocess

import pytest

from conftest import REPO, STARTUP_TIMEOUT, Client, clean_env, http_status, wait_until

BROWSER_DIR = REPO / "tests" / "browser"
SCRIPT = BROWSER_DIR / "dashboard.test.mjs"
CHROMIUM = "/usr/bin/chromium"
RUN_TIMEOUT = 120


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


def test_dashboard_in_headless_chromium(hub):
    run_dashboard_script(hub)


def test_dashboard_asks_for_a_token(launch_hub, tmp_path):
    """On a hub with tokens the page shows its token form, signs in with
    `auth`, sends the refused requests again and keeps the token for the tab."""
    panel, admin = "panel-secret", "admin-secret"
    config = tmp_path / "tokens.conf"
    config.write_text("[token panel]\nsecret_sha256 = %s\nsubscribe = home/# $sys/#\n"
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
    run_dashboard_script(hub, {"SB_PANEL_SECRET": panel, "SB_ADMIN_SECRET": admin})
