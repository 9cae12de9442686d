#!/usr/bin/env bash
# bench/run.sh — compare switchboard's TCP gateway against redis-server on
# loopback with sb-bench (closed loop, C connections x D pipelined requests).
#
# usage: bench/run.sh [BUILD_DIR] [--only redis|hub] [--workers W]
#   BUILD_DIR        CMake build directory (default: build); must already hold
#                    bin/sb-bench and bin/switchboard.
#   --only redis|hub run only one side (default: both, plus the ratio)
#   --workers W      hub worker count (default 2)
# env: BENCH_REQUESTS (default 200000), BENCH_WARMUP (default 0),
#      BENCH_SCENARIOS (default "16x1 16x16", CxD pairs)
# Builds nothing; all traffic stays on 127.0.0.1.
set -euo pipefail

BUILD=build
ONLY=both
WORKERS=2
while (($#)); do
    case "$1" in
        --only) ONLY=${2:?--only needs redis or hub}; shift 2 ;;
        --workers) WORKERS=${2:?--workers needs a number}; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 1 ;;
        *) BUILD=$1; shift ;;
    esac
done
case "$ONLY" in redis|hub|both) ;; *) echo "run.sh: --only must be redis or hub" >&2; exit 1 ;; esac

REQUESTS=${BENCH_REQUESTS:-200000}
WARMUP=${BENCH_WARMUP:-0}
SCENARIOS=${BENCH_SCENARIOS:-"16x1 16x16"}
HOST=127.0.0.1
BENCH=$BUILD/bin/sb-bench
HUB=$BUILD/bin/switchboard
STARTUP_DEADLINE=15   # seconds for a server to come up
STOP_DEADLINE=5       # seconds between SIGTERM and SIGKILL

die() { echo "run.sh: $*" >&2; exit 1; }

[[ -x $BENCH ]] || die "$BENCH not found (build first: cmake --build $BUILD)"
want_redis() { [[ $ONLY != hub ]]; }
want_hub() { [[ $ONLY != redis ]]; }
if want_redis; then
    command -v redis-server >/dev/null || die "redis-server not installed"
    command -v redis-cli >/dev/null || die "redis-cli not installed"
fi
if want_hub; then
    [[ -x $HUB ]] || die "$HUB not found (build first)"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sb-bench.XXXXXX")
REDIS_PID=
HUB_PID=
BENCH_PID=

stop_pid() { # pid name
    local pid=$1 name=$2 i
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_DEADLINE * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: $name (pid $pid) ignored SIGTERM for ${STOP_DEADLINE}s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$BENCH_PID" sb-bench
    stop_pid "$HUB_PID" switchboard
    stop_pid "$REDIS_PID" redis-server
    rm -rf -- "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A currently free loopback port (the kernel picks; tiny race is acceptable).
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# First line a TCP server at 127.0.0.1:$1 sends, or nothing (1 s budget).
first_line() {
    local line=
    if exec 3<>"/dev/tcp/$HOST/$1"; then
        IFS= read -r -t 1 line <&3 || true
        exec 3<&- 3>&-
    fi 2>/dev/null
    printf '%s' "$line"
}

start_redis() {
    local port=$1 deadline=$((SECONDS + STARTUP_DEADLINE))
    redis-server --port "$port" --bind "$HOST" --save '' --appendonly no \
        --daemonize no --dir "$TMP" --logfile "$TMP/redis.log" &
    REDIS_PID=$!
    until [[ $(redis-cli -h "$HOST" -p "$port" ping 2>/dev/null) == PONG ]]; do
        kill -0 "$REDIS_PID" 2>/dev/null || { cat "$TMP/redis.log" >&2 || true; die "redis-server exited during startup"; }
        ((SECONDS < deadline)) || die "redis-server not answering PING on port $port after ${STARTUP_DEADLINE}s"
        sleep 0.1
    done
}

start_hub() {
    local port=$1 deadline=$((SECONDS + STARTUP_DEADLINE))
    mkdir -p "$TMP/hub"
    "$HUB" --tcp "$HOST:$port" --workers "$WORKERS" --runtime-dir "$TMP/hub" \
        >"$TMP/hub.log" 2>&1 &
    HUB_PID=$!
    until [[ $(first_line "$port") == "OK switchboard"* ]]; do
        kill -0 "$HUB_PID" 2>/dev/null || { tail -n 20 "$TMP/hub.log" >&2 || true; die "switchboard exited during startup"; }
        ((SECONDS < deadline)) || { tail -n 20 "$TMP/hub.log" >&2 || true; die "switchboard not greeting on port $port after ${STARTUP_DEADLINE}s"; }
        sleep 0.1
    done
}

# run_bench port conns pipeline payload skip -> sets global RESULT ("rps p50 p99 errors")
run_bench() {
    local out
    # In the background + wait, so a SIGTERM/SIGINT to this script runs the
    # cleanup trap at once instead of after sb-bench finishes.
    "$BENCH" --host "$HOST" --port "$1" --connections "$2" --pipeline "$3" \
        --requests "$REQUESTS" --warmup "$WARMUP" --payload "$4" --skip-lines "$5" \
        >"$TMP/bench.out" 2>"$TMP/bench.err" &
    BENCH_PID=$!
    if ! wait "$BENCH_PID"; then
        BENCH_PID=
        cat "$TMP/bench.err" >&2
        die "sb-bench failed (port $1, ${2}x$3)"
    fi
    BENCH_PID=
    out=$(<"$TMP/bench.out")
    local rps='' p50='' p99='' errs='' kv
    for kv in $out; do
        case "$kv" in
            rps=*) rps=${kv#rps=} ;;
            p50_us=*) p50=${kv#p50_us=} ;;
            p99_us=*) p99=${kv#p99_us=} ;;
            errors=*) errs=${kv#errors=} ;;
        esac
    done
    [[ -n $rps && -n $p50 && -n $p99 && -n $errs ]] || die "cannot parse sb-bench output: $out"
    RESULT="$rps $p50 $p99 $errs"
}

if want_redis; then
    REDIS_PORT=$(free_port)
    start_redis "$REDIS_PORT"
    echo "redis-server pid $REDIS_PID on $HOST:$REDIS_PORT ($(redis-server --version | awk '{print $3}' | sed 's/^v=//'))" >&2
fi
if want_hub; then
    HUB_PORT=$(free_port)
    start_hub "$HUB_PORT"
    echo "switchboard pid $HUB_PID on $HOST:$HUB_PORT (workers $WORKERS)" >&2
fi
echo "requests per run: $REQUESTS (warmup $WARMUP)" >&2
echo

printf '%-9s %-7s %10s %10s %10s %7s %10s\n' scenario server rps p50_us p99_us errors hub/redis
for sc in $SCENARIOS; do
    [[ $sc =~ ^([0-9]+)x([0-9]+)$ ]] || die "bad scenario '$sc' (want CxD, e.g. 16x16)"
    c=${BASH_REMATCH[1]} d=${BASH_REMATCH[2]}
    redis_rps=
    if want_redis; then
        run_bench "$REDIS_PORT" "$c" "$d" 'PING\r\n' 0
        read -r rps p50 p99 errs <<<"$RESULT"
        redis_rps=$rps
        printf '%-9s %-7s %10s %10s %10s %7s %10s\n' "$sc" redis "$rps" "$p50" "$p99" "$errs" -
    fi
    if want_hub; then
        run_bench "$HUB_PORT" "$c" "$d" 'echo hi\n' 1
        read -r rps p50 p99 errs <<<"$RESULT"
        ratio=-
        if [[ -n $redis_rps ]]; then
            ratio=$(awk -v h="$rps" -v r="$redis_rps" 'BEGIN { if (r > 0) printf "%.2f", h / r; else print "-" }')
        fi
        printf '%-9s %-7s %10s %10s %10s %7s %10s\n' "$sc" hub "$rps" "$p50" "$p99" "$errs" "$ratio"
    fi
done
