#!/bin/sh
# healthcheck.sh — is this container's program serving? (sb-healthcheck in
# the image; docker-compose.yml picks the check per service)
#   tcp [PORT]       the TCP gateway reaches the broker: `stats broker` answers OK (7000)
#   ws [PORT]        the WebSocket gateway's /healthz says 200 (8080)
#   listening PORT   something accepts connections on PORT (the broker)
#   pool             the worker pool (PID 1) has its workers: at least one child
# With tokens in the config an anonymous client may not run `stats`: the tcp
# check then says `auth NAME SECRET` first, with NAME from
# SWITCHBOARD_HEALTHCHECK_TOKEN and the secret from the first line of the file
# SWITCHBOARD_HEALTHCHECK_SECRET_FILE (a Docker secret) or from
# SWITCHBOARD_HEALTHCHECK_SECRET. The token needs `stats` in its commands.
set -eu
check=${1:-tcp}

# The secret as a quoted word of a request line: `\` and `"` escaped.
quoted_secret() {
    if [ -n "${SWITCHBOARD_HEALTHCHECK_SECRET_FILE:-}" ]; then
        secret=$(head -n 1 "$SWITCHBOARD_HEALTHCHECK_SECRET_FILE")
    else
        secret=${SWITCHBOARD_HEALTHCHECK_SECRET:-}
    fi
    printf '"%s"' "$(printf '%s' "$secret" | sed 's/[\\"]/\\&/g')"
}

tcp_requests() {
    if [ -n "${SWITCHBOARD_HEALTHCHECK_TOKEN:-}" ]; then
        printf 'auth %s %s\n' "$SWITCHBOARD_HEALTHCHECK_TOKEN" "$(quoted_secret)"
    fi
    printf 'stats broker\n'
}

tcp_check() {
    replies=$(tcp_requests | nc -w 2 -q 1 127.0.0.1 "${1:-7000}") || true
    if printf '%s\n' "$replies" | grep -q '^OK requests='; then
        return 0
    fi
    if printf '%s\n' "$replies" | grep -q '^ERR unauthorized'; then
        echo "sb-healthcheck: the gateway refused the check (tokens): set" \
             "SWITCHBOARD_HEALTHCHECK_TOKEN and SWITCHBOARD_HEALTHCHECK_SECRET_FILE to a token" \
             "that may run stats" >&2
    fi
    return 1
}

case "$check" in
    tcp) tcp_check "${2:-7000}" ;;
    ws) printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' | nc -w 2 -q 1 127.0.0.1 "${2:-8080}" \
            | head -n 1 | grep -q ' 200 ' ;;
    listening) nc -z -w 2 127.0.0.1 "${2:?listening needs a port}" ;;
    pool) grep -qs '^PPid:[[:space:]]*1$' /proc/[0-9]*/status ;;
    *) echo "usage: sb-healthcheck tcp|ws|listening|pool [PORT]" >&2; exit 2 ;;
esac
