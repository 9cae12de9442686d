#!/usr/bin/env bash
# run-all.sh — sets up and runs every test on a fresh Debian 12 machine:
# installs missing packages (and playwright-core from npm), then for a
# normal build and an ASan+UBSan build runs the cmocka unit tests (ctest)
# and the pytest integration tests that spawn the real processes; runs the
# docker-compose stack on a Docker engine of its own (root); then runs each
# libFuzzer target for a short time.
# FUZZ_SECONDS (default 30) bounds each fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/setup-debian.sh
sb_install_packages test

PYTHON=/usr/bin/python3          # Debian's interpreter: it sees python3-pytest

# playwright-core for the dashboard's headless-Chromium test, at the version
# package-lock.json records (it drives Debian's /usr/bin/chromium).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    echo "== installing playwright-core (npm ci)"
    npm ci --prefix tests/browser --no-audit --no-fund >/dev/null
fi
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
JOBS=$(nproc)

build() {   # build DIR [cmake args...]
    local dir=$1; shift
    cmake -S . -B "$dir" -DSB_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$JOBS"
}

run_suites() {   # run_suites DIR LABEL
    echo "== unit tests ($2)"
    (cd "$1" && ctest --output-on-failure)
    echo "== integration tests ($2)"
    SB_BUILD_DIR="$PWD/$1" "$PYTHON" -m pytest tests/integration -q -p no:cacheprovider
}

build build
run_suites build normal

# The docker-compose deployment, on a dockerd of its own (tests/compose/docker_engine.py);
# its base image and build cache stay in /var/tmp/switchboard-ci-docker between runs.
echo "== compose test (docker)"
"$PYTHON" -m pytest tests/compose -q -s -p no:cacheprovider

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
build build-asan -DCMAKE_BUILD_TYPE=Debug -DSB_SANITIZE=ON -DCMAKE_C_COMPILER=clang
run_suites build-asan "asan+ubsan"

echo "== fuzz targets (${FUZZ_SECONDS}s each)"
build build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSB_FUZZ=ON -DSB_TESTS=ON -DCMAKE_C_COMPILER=clang
for target in build-fuzz/bin/fuzz_*; do
    name=$(basename "$target")
    corpus=$(mktemp -d)
    cp tests/fuzz/corpus/"${name#fuzz_}"/* "$corpus"/
    "$target" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 "$corpus" 2>&1 | tail -2
    rm -rf "$corpus"
done
echo "== all tests passed"
