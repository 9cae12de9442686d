#!/usr/bin/env bash
# run-hub.sh — sets up and runs the hub with defaults on a fresh Debian 12
# machine: installs missing packages, builds, then runs the switchboard
# launcher in the foreground (Ctrl-C stops it). Extra arguments go to the
# launcher, e.g. `deploy/run-hub.sh --workers 4 --tcp 0.0.0.0:7000`.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/setup-debian.sh
sb_install_packages run
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo "== switchboard starting: try 'nc 127.0.0.1 7000' and type 'help'" >&2
exec build/bin/switchboard "$@"
