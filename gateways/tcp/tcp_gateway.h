/* tcp_gateway.h — sb-gateway-tcp: the line protocol (§3.1) over TCP.
 * Owns the listening socket and its clients in a libuv loop; answers
 * ping, help, quit and stats itself and sends every other command to the
 * broker, for the service the config file assigns it. */
#ifndef SB_TCP_GATEWAY_H
#define SB_TCP_GATEWAY_H

#include <stddef.h>

#include "gateway_base.h"

typedef struct {
    sb_gateway_base_settings_t base;   /* listen, broker, name (tcp gives tcp-1, ...), drain */
    size_t max_connections;
    size_t max_line;
    size_t max_inflight;
    size_t max_output;
} sb_tcp_gateway_settings_t;

typedef struct sb_tcp_gateway sb_tcp_gateway_t;

/* Listens and connects; NULL (after logging why) on failure. */
sb_tcp_gateway_t *sb_tcp_gateway_new(const sb_tcp_gateway_settings_t *settings);
void sb_tcp_gateway_destroy(sb_tcp_gateway_t **self_p);

/* Serves until SIGTERM or SIGINT; then accepts and reads no more, lets
 * every client have the replies to what it already asked (bounded by the
 * drain timeout) and returns. */
void sb_tcp_gateway_run(sb_tcp_gateway_t *self);

#endif
