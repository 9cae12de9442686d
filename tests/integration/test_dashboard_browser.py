"""The built-in dashboard (GET / of the WebSocket gateway) in a real browser:
headless Chromium driven by tests/browser/dashboard.test.mjs (playwright-core).
It needs node, `npm ci --prefix tests/browser` and Debian's chromium; a
missing piece fails the test (never skips) with how to install it."""
import os
import shutil
import subprocess

import pytest

from conftest import REPO, clean_env

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


def test_dashboard_in_headless_chromium(hub):
    node = require_browser_tools()
    env = clean_env({"SB_WS_PORT": str(hub.ws_port), "SB_TCP_PORT": str(hub.port)})
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
