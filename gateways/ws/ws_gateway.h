/* ws_gateway.h — sb-gateway-ws: WebSocket clients (JSON or command lines,
 * §3.2) and plain HTTP (the API of http_api.h, dashboard, /metrics,
 * /healthz) on one port, in
 * one libuv loop, with its requests sent to the broker over ZeroMQ. */
#ifndef SB_WS_GATEWAY_H
#define SB_WS_GATEWAY_H

#include <stddef.h>

#include "gateway_base.h"
#include "http_api.h"
#include "ws_client.h"

typedef struct {
    sb_gateway_base_settings_t base;   /* listen, broker, name (ws gives ws-1, ...), drain */
    size_t max_connections;            /* WebSocket clients */
    sb_ws_client_limits_t limits;
    sb_http_api_settings_t api;
} sb_ws_gateway_settings_t;

typedef struct sb_ws_gateway sb_ws_gateway_t;

/* Listens and connects to the broker; NULL (after logging why) on failure. */
sb_ws_gateway_t *sb_ws_gateway_new(const sb_ws_gateway_settings_t *settings);
void sb_ws_gateway_destroy(sb_ws_gateway_t **self_p);

/* Runs until SIGTERM or SIGINT, then drains its clients and returns. */
void sb_ws_gateway_run(sb_ws_gateway_t *self);

#endif
