/* pages.h — what the WebSocket gateway serves over plain HTTP: the
 * dashboard (GET /), Prometheus metrics (GET /metrics) and a health check
 * (GET /healthz). */
#ifndef SB_PAGES_H
#define SB_PAGES_H

#include <stddef.h>
#include <stdint.h>

#include "router.h"
#include "tls.h"

/* The dashboard page (gateways/ws/dashboard.html, built in). */
const char *sb_pages_dashboard(size_t *length);

/* The gateway's own gauges and counters. */
typedef struct {
    size_t websocket_clients;
    size_t http_clients;
    uint64_t accepted, refused;   /* WebSocket clients; refused: over --max-connections */
    /* Clients closed for bad input, by the close code sent: 1002, 1003, 1007, 1009. */
    uint64_t bad_input[4];
    uint64_t misdirected;         /* requests refused (421) for their Host header */
    uint64_t api_answers[3];      /* HTTP API answers: 2xx, 4xx, 5xx (http_api.h) */
    size_t api_streams;           /* HTTP API event streams open */
    sb_tls_counters_t tls;        /* of the TLS listener */
} sb_gateway_counts_t;

/* The close codes of sb_gateway_counts_t.bad_input, in order. */
extern const uint16_t sb_pages_bad_input_codes[4];

/* The Prometheus text exposition (version 0.0.4) of the gateway, its
 * router, and the broker's `stats` text (NULL when the broker did not
 * answer). A heap string. */
char *sb_pages_metrics(const sb_gateway_counts_t *gateway, const sb_router_stats_t *router,
                       const char *broker_stats);

#endif
