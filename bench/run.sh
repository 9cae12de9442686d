#!/usr/bin/env bash
# bench/run.sh — request/reply through switchboard's TCP gateway against
# nats-server and redis-server, in one run on loopback, with the same load
# shape (closed loop, C connections x D requests in flight):
#   hub    sb-bench, `echo hi` (TCP gateway -> broker -> worker -> back)
#   nats   sb-nats-bench, request/reply on sb.echo ("hi") answered by W
#          sb-nats-responder processes in one queue group
#   redis  sb-bench, inline PING
# and prints one table: req/s, p50, p99, server CPU per request, and the
# hub's ratios to the others.
# `--only fanout` (or fanout in the list) runs bench/ws_fanout.py instead:
# WebSocket fan-out, S subscribers and one publisher's burst, the hub (1 and
# 2 WebSocket gateway processes) beside Mosquitto's websockets listener
# (env FANOUT_SUBSCRIBERS, default 10000; FANOUT_EVENTS, default 200).
#
# usage: bench/run.sh [BUILD_DIR] [--only LIST] [--workers W]
#   BUILD_DIR        CMake build directory (default: build); must already hold
#                    bin/switchboard, bin/sb-bench, bin/sb-nats-bench and
#                    bin/sb-nats-responder.
#   --only LIST      comma-separated subset of hub,nats,redis,fanout
#                    (default hub,nats,redis)
#   --workers W      the hub's worker count and NATS's responder count (default 2)
# env: BENCH_REQUESTS (default 200000), BENCH_WARMUP (default 0),
#      BENCH_SCENARIOS (default "16x1 16x16", CxD pairs)
# Server CPU (cpu_us) is user + system time over the measured requests, from
# /proc/PID/stat: the hub's launcher and every process under it; nats-server
# and the responders; redis-server. Builds nothing; all traffic stays on
# 127.0.0.1; every process started here is stopped by its pid, on error too.
set -euo pipefail

BUILD=build
ONLY=hub,nats,redis
WORKERS=2
while (($#)); do
    case "$1" in
        --only) ONLY=${2:?--only needs a list of hub,nats,redis}; shift 2 ;;
        --workers) WORKERS=${2:?--workers needs a number}; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) echo "run.sh: unknown option $1 (try --help)" >&2; exit 1 ;;
        *) BUILD=$1; shift ;;
    esac
done

# Fan-out has a driver of its own; what else the list asks for runs here after it.
if [[ ,$ONLY, == *,fanout,* ]]; then
    [[ -x $BUILD/bin/sb-ws-fanout ]] || { echo "run.sh: $BUILD/bin/sb-ws-fanout not found (build first)" >&2; exit 1; }
    python3 "$(dirname "$0")/ws_fanout.py" "$BUILD" --subscribers "${FANOUT_SUBSCRIBERS:-10000}" \
        --events "${FANOUT_EVENTS:-200}"
    ONLY=$(echo ",$ONLY," | sed 's/,fanout,/,/; s/^,//; s/,$//')
    [[ -n $ONLY ]] || exit 0
fi

REQUESTS=${BENCH_REQUESTS:-200000}
WARMUP=${BENCH_WARMUP:-0}
SCENARIOS=${BENCH_SCENARIOS:-"16x1 16x16"}
HOST=127.0.0.1
BIN=$BUILD/bin
STARTUP_DEADLINE=15   # seconds for a server to come up
STOP_DEADLINE=5       # seconds between SIGTERM and SIGKILL

die() { echo "run.sh: $*" >&2; exit 1; }

[[ $WORKERS =~ ^[0-9]+$ ]] && ((WORKERS >= 1 && WORKERS <= 64)) || die "--workers must be 1..64"
SERVERS=()
for s in ${ONLY//,/ }; do
    case "$s" in hub|nats|redis) SERVERS+=("$s") ;; *) die "--only: unknown server '$s' (hub, nats, redis)" ;; esac
done
((${#SERVERS[@]})) || die "--only: no server given"
want() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }

for prog in sb-bench sb-nats-bench sb-nats-responder switchboard; do
    [[ -x $BIN/$prog ]] || die "$BIN/$prog not found (build first: cmake --build $BUILD)"
done
if want redis; then
    command -v redis-server >/dev/null || die "redis-server not installed (deploy/setup-debian.sh test)"
    command -v redis-cli >/dev/null || die "redis-cli not installed"
fi
if want nats; then
    command -v nats-server >/dev/null || die "nats-server not installed (deploy/setup-debian.sh test)"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sb-bench.XXXXXX")
REDIS_PID=
NATS_PID=
HUB_PID=
BENCH_PID=
RESPONDER_PIDS=()

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
    local rc=$? pid
    trap - EXIT INT TERM
    stop_pid "$BENCH_PID" "load generator"
    stop_pid "$HUB_PID" switchboard
    for pid in "${RESPONDER_PIDS[@]}"; do stop_pid "$pid" sb-nats-responder; done
    stop_pid "$NATS_PID" nats-server
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

# wait_until NAME PID LOG COMMAND...: until COMMAND succeeds, while PID lives.
wait_until() {
    local name=$1 pid=$2 log=$3 deadline=$((SECONDS + STARTUP_DEADLINE))
    shift 3
    until "$@"; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2 || true; die "$name exited during startup"; }
        ((SECONDS < deadline)) || { tail -n 20 "$log" >&2 || true; die "$name not ready after ${STARTUP_DEADLINE}s"; }
        sleep 0.1
    done
}

redis_up() { [[ $(redis-cli -h "$HOST" -p "$1" ping 2>/dev/null) == PONG ]]; }
nats_up() { [[ $(first_line "$1") == INFO* ]]; }
hub_up() { [[ $(first_line "$1") == "OK switchboard"* ]]; }
responder_up() { grep -qx ready "$1" 2>/dev/null; }

start_redis() {
    redis-server --port "$1" --bind "$HOST" --save '' --appendonly no \
        --daemonize no --dir "$TMP" --logfile "$TMP/redis.log" &
    REDIS_PID=$!
    wait_until redis-server "$REDIS_PID" "$TMP/redis.log" redis_up "$1"
}

# nats-server with flags only (no -c): Debian's /etc/nats-server.conf and its
# service on port 4222 play no part.
start_nats() {
    local port=$1 i
    nats-server -a "$HOST" -p "$port" >"$TMP/nats.log" 2>&1 &
    NATS_PID=$!
    wait_until nats-server "$NATS_PID" "$TMP/nats.log" nats_up "$port"
    for ((i = 0; i < WORKERS; i++)); do
        "$BIN/sb-nats-responder" --host "$HOST" --port "$port" >"$TMP/responder.$i" 2>&1 &
        RESPONDER_PIDS+=($!)
    done
    for ((i = 0; i < WORKERS; i++)); do
        wait_until sb-nats-responder "${RESPONDER_PIDS[i]}" "$TMP/responder.$i" responder_up "$TMP/responder.$i"
    done
}

# Only the TCP gateway: the WebSocket and MQTT ones would want fixed ports
# (8080, 1883) that something else on the machine may hold.
start_hub() {
    mkdir -p "$TMP/hub"
    "$BIN/switchboard" --tcp "$HOST:$1" --ws off --mqtt off --workers "$WORKERS" --runtime-dir "$TMP/hub" \
        >"$TMP/hub.log" 2>&1 &
    HUB_PID=$!
    wait_until switchboard "$HUB_PID" "$TMP/hub.log" hub_up "$1"
}

# run_load SERVER CONNS DEPTH -> sets global RESULT ("rps p50 p99 cpu errors")
run_load() {
    local server=$1 args out
    args=(--host "$HOST" --connections "$2" --pipeline "$3" --requests "$REQUESTS" --warmup "$WARMUP")
    case "$server" in
        redis) args=("$BIN/sb-bench" "${args[@]}" --port "$REDIS_PORT" --payload 'PING\r\n' --cpu-pids "$REDIS_PID") ;;
        nats) args=("$BIN/sb-nats-bench" "${args[@]}" --port "$NATS_PORT" --payload hi
                    --cpu-pids "$(IFS=,; echo "$NATS_PID,${RESPONDER_PIDS[*]}")") ;;
        hub) args=("$BIN/sb-bench" "${args[@]}" --port "$HUB_PORT" --payload 'echo hi\n' --skip-lines 1 --cpu-pids "$HUB_PID") ;;
    esac
    # In the background + wait, so a SIGTERM/SIGINT to this script runs the
    # cleanup trap at once instead of after the load generator finishes.
    "${args[@]}" >"$TMP/bench.out" 2>"$TMP/bench.err" &
    BENCH_PID=$!
    if ! wait "$BENCH_PID"; then
        BENCH_PID=
        cat "$TMP/bench.err" >&2
        die "${args[0]##*/} failed ($server, ${2}x$3)"
    fi
    BENCH_PID=
    out=$(<"$TMP/bench.out")
    local rps='' p50='' p99='' cpu='' errs='' kv
    for kv in $out; do
        case "$kv" in
            rps=*) rps=${kv#rps=} ;;
            p50_us=*) p50=${kv#p50_us=} ;;
            p99_us=*) p99=${kv#p99_us=} ;;
            cpu_us=*) cpu=${kv#cpu_us=} ;;
            errors=*) errs=${kv#errors=} ;;
        esac
    done
    [[ -n $rps && -n $p50 && -n $p99 && -n $cpu && -n $errs ]] || die "cannot parse the output of ${args[0]##*/}: $out"
    RESULT="$rps $p50 $p99 $cpu $errs"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

if want redis; then
    REDIS_PORT=$(free_port)
    start_redis "$REDIS_PORT"
    echo "redis-server pid $REDIS_PID on $HOST:$REDIS_PORT ($(redis-server --version | awk '{print $3}' | sed 's/^v=//'))" >&2
fi
if want nats; then
    NATS_PORT=$(free_port)
    start_nats "$NATS_PORT"
    echo "nats-server pid $NATS_PID on $HOST:$NATS_PORT ($(nats-server --version | awk '{print $2}')), responders ${RESPONDER_PIDS[*]}" >&2
fi
if want hub; then
    HUB_PORT=$(free_port)
    start_hub "$HUB_PORT"
    echo "switchboard pid $HUB_PID on $HOST:$HUB_PORT (workers $WORKERS)" >&2
fi
echo "requests per run: $REQUESTS (warmup $WARMUP); workers/responders: $WORKERS" >&2
echo

# hub/X columns: the hub's req/s, p50 and CPU per request divided by X's.
FMT='%-9s %-6s %10s %9s %9s %8s %7s %10s %8s %8s\n'
printf "$FMT" scenario server rps p50_us p99_us cpu_us errors hub/x_rps hub/x_p50 hub/x_cpu
for sc in $SCENARIOS; do
    [[ $sc =~ ^([0-9]+)x([0-9]+)$ ]] || die "bad scenario '$sc' (want CxD, e.g. 16x16)"
    c=${BASH_REMATCH[1]} d=${BASH_REMATCH[2]}
    declare -A R=()
    for server in redis nats hub; do
        want "$server" || continue
        run_load "$server" "$c" "$d"
        R[$server]=$RESULT
    done
    for server in redis nats hub; do
        [[ -n ${R[$server]:-} ]] || continue
        read -r rps p50 p99 cpu errs <<<"${R[$server]}"
        rr=- rp=- rc=-
        if [[ $server != hub && -n ${R[hub]:-} ]]; then
            read -r hrps hp50 _ hcpu _ <<<"${R[hub]}"
            rr=$(ratio "$hrps" "$rps") rp=$(ratio "$hp50" "$p50") rc=$(ratio "$hcpu" "$cpu")
        fi
        printf "$FMT" "$sc" "$server" "$rps" "$p50" "$p99" "$cpu" "$errs" "$rr" "$rp" "$rc"
    done
    unset R
done
