"""docker_engine.py — a Docker engine of the tests' own, started by hand
(no system service), offline: dockerd on a socket in a work directory that
persists between runs, so the base image and the build cache are warm the
second time. No registry is reachable, so `debian:bookworm` is made with
debootstrap from the apt mirror and imported; its tarball is cached too."""
import os
import signal
import subprocess
import time
from pathlib import Path

WORK = Path(os.environ.get("SB_DOCKER_DIR", "/var/tmp/switchboard-ci-docker"))
SOCKET = WORK / "docker.sock"
BASE_TAR = WORK / "debian-bookworm-minbase.tar"
MIRROR = "http://deb.debian.org/debian"


class Engine:
    def __init__(self):
        self.pid = None
        self.env = dict(os.environ, DOCKER_HOST="unix://%s" % SOCKET)

    def docker(self, *args, check=True, timeout=600, **kwargs):
        return subprocess.run(["docker", *args], env=self.env, check=check, timeout=timeout,
                              capture_output=True, text=True, **kwargs)

    def responds(self):
        try:
            return self.docker("info", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def start(self, deadline_s=60):
        WORK.mkdir(parents=True, exist_ok=True)
        log = open(WORK / "dockerd.log", "ab")
        proc = subprocess.Popen(
            ["dockerd", "--data-root", str(WORK / "data"), "--exec-root", str(WORK / "exec"),
             "-H", "unix://%s" % SOCKET, "--pidfile", str(WORK / "dockerd.pid")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.pid = proc.pid
        self.proc = proc
        deadline = time.monotonic() + deadline_s
        while not self.responds():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dockerd did not come up; see %s" % (WORK / "dockerd.log"))
            time.sleep(0.2)

    def stop(self):
        """Stops dockerd by its pid and removes what it leaves in its exec root."""
        if self.pid is None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        subprocess.run(["rm", "-rf", str(WORK / "exec"), str(SOCKET)], check=False)
        self.pid = None

    def ensure_base_image(self):
        """debian:bookworm from the cache, or made with debootstrap and cached."""
        if self.docker("image", "inspect", "debian:bookworm", check=False).returncode == 0:
            return "present"
        made = "cached tarball"
        if not BASE_TAR.is_file():
            rootfs = WORK / "rootfs"
            subprocess.run(["rm", "-rf", str(rootfs)], check=True)
            subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR],
                           check=True, capture_output=True, timeout=1200)
            partial = BASE_TAR.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
            partial.rename(BASE_TAR)
            subprocess.run(["rm", "-rf", str(rootfs)], check=True)
            made = "debootstrap"
        with open(BASE_TAR, "rb") as tarball:
            subprocess.run(["docker", "import", "-", "debian:bookworm"], stdin=tarball,
                           env=self.env, check=True, capture_output=True, timeout=600)
        return made
