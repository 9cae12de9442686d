#!/usr/bin/env bash
# setup-debian.sh — installs the Debian 12 packages switchboard needs to
# build, run and test. Sourced by deploy/run-hub.sh and tests/run-all.sh;
# run it alone as `bash deploy/setup-debian.sh [run|test]`.
# As root it installs what is missing; otherwise it prints the apt-get line.
set -euo pipefail

SB_RUN_PACKAGES=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev
                 libuv1-dev libinih-dev libsqlite3-dev libcmocka-dev libwslay-dev
                 libhttp-parser-dev libjansson-dev libssl-dev libmosquitto-dev netcat-openbsd)
SB_TEST_PACKAGES=(python3 python3-pytest python3-zmq python3-msgpack python3-websockets clang
                  libclang-rt-14-dev redis-server nats-server mosquitto mosquitto-clients python3-paho-mqtt chromium
                  socat systemd iproute2
                  docker.io docker-compose debootstrap openssl curl)
# nats-server is bench/run.sh's peer. Debian enables a nats-server service on 127.0.0.1:4222
# (/etc/nats-server.conf); the bench never uses it: it starts its own on a free port.
# The browser test needs node and npm; a machine may have them from elsewhere than Debian.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    SB_TEST_PACKAGES+=(nodejs npm)
fi

sb_missing_packages() {
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || printf '%s\n' "$package"
    done
}

# sb_install_packages run|test
sb_install_packages() {
    local wanted=("${SB_RUN_PACKAGES[@]}")
    [ "${1:-run}" = test ] && wanted+=("${SB_TEST_PACKAGES[@]}")
    local missing
    mapfile -t missing < <(sb_missing_packages "${wanted[@]}")
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "switchboard needs these Debian packages; please run:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    echo "== installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    sb_install_packages "${1:-run}"
fi
