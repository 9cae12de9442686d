/* http_api.h — the HTTP API of sb-gateway-ws (§3.5, docs/http-api.md):
 * /api/v1/publish, /command, /topics, /clients, /devices, the event stream
 * /events (Server-Sent Events) and /api/v1/openapi.json, on the gateway's
 * port. Each request is a client of the gateway for as long as it lasts
 * (it joins the hub as `ws-N` with the identity its Bearer token proves,
 * so the access rules and `clients` see it like any client) and runs what
 * it asks through the router, as the client's command would run. */
#ifndef SB_HTTP_API_H
#define SB_HTTP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_request.h"
#include "router.h"
#include "ws_client.h"

typedef struct {
    const char *cors_origins;   /* --api-cors: origins given CORS headers (NULL: none) */
    size_t max_streams;         /* event streams open at once; more get 503 */
} sb_http_api_settings_t;

typedef struct sb_http_api sb_http_api_t;

/* For /metrics. */
typedef struct {
    uint64_t answers[3];   /* API requests answered 2xx (a stream when it opens), 4xx, 5xx */
    size_t streams;        /* event streams open */
} sb_http_api_counts_t;

sb_http_api_t *sb_http_api_new(sb_router_t *router, const sb_http_api_settings_t *settings);
void sb_http_api_destroy(sb_http_api_t **self_p);

/* Takes the request when its path is under /api/ (true), answering it now
 * or once the router has. */
bool sb_http_api_handle(sb_http_api_t *self, sb_ws_client_t *client,
                        const sb_http_request_t *request);

/* The router's answer and asynchronous lines (see router.h), for a client
 * the API has taken; false for any other client. */
bool sb_http_api_answer(sb_http_api_t *self, sb_ws_client_t *client, const char *status,
                        const char *text);
bool sb_http_api_write_async(sb_http_api_t *self, sb_ws_client_t *client, const char *kind,
                             const char *word, const char *text);

/* The client has closed: it leaves the hub, its state is freed. */
void sb_http_api_closed(sb_http_api_t *self, sb_ws_client_t *client);

sb_http_api_counts_t sb_http_api_counts(const sb_http_api_t *self);

/* What `Authorization: Bearer NAME:SECRET` (or a URL's NAME:SECRET, given
 * as `pair`) proves: see the WebSocket upgrade in ws_gateway.c. Without
 * credentials, or without access rules, the anonymous identity; NULL when
 * they are refused, *status then 401 (wrong, counted like a failed `auth`)
 * or 429 (not tried: the address is in a delay). */
const sb_identity_t *sb_http_api_identity(sb_router_t *router, sb_ws_client_t *client,
                                          const char *authorization, const char *pair,
                                          int *status);

#endif
