#!/bin/sh
# healthcheck.sh — is this container's program serving? (sb-healthcheck in
# the image; docker-compose.yml picks the check per service)
#   tcp [PORT]       the TCP gateway reaches the broker: `stats broker` answers OK (7000)
#   ws [PORT]        the WebSocket gateway's /healthz says 200 (8080)
#   listening PORT   something accepts connections on PORT (the broker)
#   pool             the worker pool (PID 1) has its workers: at least one child
set -eu
check=${1:-tcp}
case "$check" in
    tcp) printf 'stats broker\n' | nc -w 2 -q 1 127.0.0.1 "${2:-7000}" | grep -q '^OK requests=' ;;
    ws) printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' | nc -w 2 -q 1 127.0.0.1 "${2:-8080}" \
            | head -n 1 | grep -q ' 200 ' ;;
    listening) nc -z -w 2 127.0.0.1 "${2:?listening needs a port}" ;;
    pool) grep -qs '^PPid:[[:space:]]*1$' /proc/[0-9]*/status ;;
    *) echo "usage: sb-healthcheck tcp|ws|listening|pool [PORT]" >&2; exit 2 ;;
esac
