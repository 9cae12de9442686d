/* ws_gateway.c — sb-gateway-ws's core (see ws_gateway.h): the listener,
 * the clients and the loop. What a request does is the router's business
 * (gateways/router.c); this file tells it how to answer a WebSocket
 * client, and serves the HTTP pages (pages.c). */
#include "ws_gateway.h"

#include <czmq.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event_frame.h"
#include "gateway_base.h"
#include "http_api.h"
#include "log.h"
#include "pages.h"
#include "router.h"
#include "ws_json.h"

/* Connections let in past --max-connections (every connection counts,
 * still in its TLS or HTTP handshake or not), so that an upgrade can be
 * told 503 and a health check answered; one more is closed without a word,
 * so a flood of handshakes cannot hold a TLS session each. */
#define MAX_OVER_LIMIT 16

struct sb_ws_gateway {
    sb_ws_gateway_settings_t settings;
    sb_gateway_base_t base;       /* listener, clients (HTTP and WebSocket) by serial, router, stop */
    sb_gateway_counts_t counts;
    sb_ws_event_frame_t *event_frame;   /* the event being delivered, framed once */
    sb_http_api_t *api;           /* /api/v1/... (http_api.c) */
};

/* ---------------------------------------------------------------- credentials */

/* What `Authorization: Bearer NAME:SECRET` proves: its token; without the
 * header (or without access rules) the anonymous identity; NULL when the
 * header is refused, with *status the HTTP answer: 401 (wrong, counted like
 * a failed `auth`) or 429 (not tried: the address is in a delay). */
static const sb_identity_t *identity_of(sb_ws_gateway_t *self, sb_ws_client_t *client,
                                        const sb_http_request_t *request, int *status)
{
    return sb_http_api_identity(self->base.router, client,
                                sb_http_request_header(request, "Authorization"), NULL, status);
}

/* ---------------------------------------------------------------- HTTP pages */

static void serve_metrics(sb_ws_gateway_t *self, sb_ws_client_t *client, const char *broker_stats)
{
    self->counts.http_clients = sb_gateway_base_count(&self->base) - self->counts.websocket_clients;
    self->counts.tls = sb_gateway_base_tls_counters(&self->base);
    sb_http_api_counts_t api = sb_http_api_counts(self->api);
    memcpy(self->counts.api_answers, api.answers, sizeof api.answers);
    self->counts.api_streams = api.streams;
    sb_router_stats_t router = sb_router_stats(self->base.router);
    char *text = sb_pages_metrics(&self->counts, &router, broker_stats);
    sb_ws_client_respond(client, 200, "text/plain; version=0.0.4; charset=utf-8", text,
                         strlen(text));
    free(text);
}

/* With access rules, /metrics is for a Bearer token that may run `stats`:
 * 0 when it may be served, else the HTTP status that refuses it. */
static int metrics_refusal(sb_ws_gateway_t *self, sb_ws_client_t *client,
                           const sb_http_request_t *request)
{
    int status = 401;
    if (!sb_access_enabled(sb_router_access(self->base.router)))
        return 0;
    const sb_identity_t *identity = identity_of(self, client, request, &status);
    return identity && sb_identity_may_run(identity, "stats") ? 0 : status;
}

static const char s_metrics_refused[] =
    "/metrics needs Authorization: Bearer NAME:SECRET of a token that may run stats\n";

static void on_http_request(void *owner, sb_ws_client_t *client, const sb_http_request_t *request)
{
    sb_ws_gateway_t *self = owner;
    const char *path = sb_http_request_path(request);
    int refusal;
    if (sb_http_api_handle(self->api, client, request))
        return;
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        size_t length;
        const char *page = sb_pages_dashboard(&length);
        sb_ws_client_respond(client, 200, "text/html; charset=utf-8", page, length);
    }
    else if (strcmp(path, "/healthz") == 0) {
        bool up = sb_router_stats(self->base.router).broker_up;
        const char *text = up ? "ok\n" : "broker unreachable\n";
        sb_ws_client_respond(client, up ? 200 : 503, "text/plain; charset=utf-8", text,
                             strlen(text));
    }
    else if (strcmp(path, "/metrics") == 0 && (refusal = metrics_refusal(self, client, request)))
        sb_ws_client_respond(client, refusal, "text/plain; charset=utf-8", s_metrics_refused,
                             strlen(s_metrics_refused));
    else if (strcmp(path, "/metrics") == 0 && !sb_router_stats(self->base.router).broker_up)
        serve_metrics(self, client, NULL);   /* at once: sb_broker_up 0, not a wait for the link */
    else if (strcmp(path, "/metrics") == 0) {
        /* The broker's figures come first: the page is served with its reply, or
         * without them (sb_broker_up 0) when the request's deadline ends first (see answer). */
        char *argv[] = { "stats", "broker", NULL };
        sb_router_handle_command(self->base.router, client, sb_ws_client_open_line_slot(client, NULL),
                                 2, argv);
    }
    else
        sb_ws_client_respond(client, 404, "text/plain; charset=utf-8", "not found\n", 10);
}

/* ---------------------------------------------------------------- the router's view of a client */

static void *find_client(void *owner, uint64_t serial)
{
    sb_ws_gateway_t *self = owner;
    return sb_gateway_base_find(&self->base, serial);
}

static uint64_t client_serial(void *client)
{
    return sb_ws_client_serial(client);
}

static sb_reply_slot_t *open_slot(void *client, const char *tag)
{
    return sb_ws_client_open_line_slot(client, tag);
}

static void answer(void *client, sb_reply_slot_t *slot, const char *status, const char *text,
                   bool close_after)
{
    sb_ws_gateway_t *self = sb_ws_client_owner(client);
    if (sb_ws_client_is_websocket(client)) {
        sb_ws_client_answer(client, slot, status, text, close_after);
        return;
    }
    if (sb_http_api_answer(self->api, client, status, text))
        return;
    /* Else only /metrics asks the broker before a WebSocket upgrade. */
    bool ok = status && strcmp(status, "OK") == 0;
    serve_metrics(self, client, ok ? text : NULL);
}

static void write_async(void *client, const char *kind, const char *word, const char *text)
{
    sb_ws_gateway_t *self = sb_ws_client_owner(client);
    if (sb_http_api_write_async(self->api, client, kind, word, text))
        return;
    bool retained = strcmp(kind, "RETAINED") == 0;
    char *message = retained || strcmp(kind, "EVENT") == 0 ? sb_ws_json_event(word, text, retained)
                                                           : sb_ws_json_message(word, text);
    sb_ws_client_send_text(client, message);
    free(message);
}

static void write_event(void *client, const sb_envelope_t *event)
{
    sb_ws_gateway_t *self = sb_ws_client_owner(client);
    if (!sb_ws_client_is_websocket(client)) {   /* an HTTP API event stream */
        write_async(client, event->retain ? "RETAINED" : "EVENT", event->topic,
                    event->data ? event->data : "");
        return;
    }
    size_t length;
    const uint8_t *frame = sb_ws_event_frame_of(self->event_frame, event->topic,
                                                event->data ? event->data : "", event->retain,
                                                &length);
    sb_ws_client_send_frame(client, frame, length);
}

static int describe(void *owner, char *buffer, size_t size)
{
    sb_ws_gateway_t *self = owner;
    sb_gateway_client_counts_t counts = { self->counts.websocket_clients, self->counts.accepted,
                                          self->counts.refused, self->counts.misdirected };
    return sb_gateway_base_describe(&self->base, &counts, buffer, size);
}

static const sb_router_client_ops_t s_client_ops = {
    find_client, client_serial, open_slot, answer, write_async, describe, write_event,
};

/* ---------------------------------------------------------------- clients */

static int may_open(void *owner, sb_ws_client_t *client, const sb_http_request_t *request)
{
    sb_ws_gateway_t *self = owner;
    if (self->counts.websocket_clients >= self->settings.max_connections) {
        self->counts.refused++;
        return 503;
    }
    int status;
    const sb_identity_t *identity = identity_of(self, client, request, &status);
    if (!identity)
        return status;
    sb_ws_client_set_identity(client, identity);
    return 101;
}

static void on_open(void *owner, sb_ws_client_t *client)
{
    sb_ws_gateway_t *self = owner;
    uint64_t serial = sb_ws_client_serial(client);
    self->counts.websocket_clients++;
    self->counts.accepted++;
    char address[80], id[64];
    sb_ws_client_peer(client, address, sizeof address);
    sb_router_client_joined(self->base.router, serial, address);
    sb_router_client_authenticated(self->base.router, serial, sb_ws_client_identity(client));
    sb_router_client_id(self->base.router, serial, id, sizeof id);
    char *welcome = sb_ws_json_welcome(id);
    sb_ws_client_send_text(client, welcome);
    free(welcome);
}

/* A text message: a JSON request, or else one command line. */
static void on_text(void *owner, sb_ws_client_t *client, const char *text, size_t length)
{
    sb_ws_gateway_t *self = owner;
    sb_ws_json_request_t request;
    switch (sb_ws_json_decode(text, length, &request)) {
    case SB_WS_JSON_REQUEST:
        sb_router_handle_command(self->base.router, client,
                                 sb_ws_client_open_json_slot(client, request.id),
                                 request.argc, request.argv);
        break;
    case SB_WS_JSON_BAD_REQUEST:
        sb_ws_client_answer(client, sb_ws_client_open_json_slot(client, request.id),
                            "ERR bad-request", request.error, false);
        break;
    case SB_WS_JSON_NOT_JSON:
        while (length > 0 && (text[length - 1] == '\n' || text[length - 1] == '\r'))
            length--;
        sb_router_handle_line(self->base.router, client, text, length);
        break;
    }
    sb_ws_json_request_clear(&request);
}

static void on_output(void *owner, sb_ws_client_t *client)
{
    sb_ws_gateway_t *self = owner;
    sb_gateway_base_has_output(&self->base, client);
}

static void on_closed(void *owner, sb_ws_client_t *client)
{
    sb_ws_gateway_t *self = owner;
    uint64_t serial = sb_ws_client_serial(client);
    if (sb_ws_client_is_websocket(client)) {
        self->counts.websocket_clients--;
        sb_router_client_left(self->base.router, serial);
        uint16_t code = sb_ws_client_close_code(client);
        for (size_t i = 0; i < 4; i++)
            self->counts.bad_input[i] += code == sb_pages_bad_input_codes[i];
    }
    sb_http_api_closed(self->api, client);
    sb_gateway_base_remove(&self->base, serial, client);
}

/* Counted as it is refused, not when it closes: the 421 lingers. */
static void on_misdirected(void *owner, sb_ws_client_t *client)
{
    sb_ws_gateway_t *self = owner;
    (void) client;
    self->counts.misdirected++;
}

static const sb_ws_client_events_t s_client_events = {
    may_open, on_open, on_text, on_http_request, on_closed, on_output, on_misdirected,
};

static void on_connection(uv_stream_t *listener, int status)
{
    sb_ws_gateway_t *self = listener->data;
    if (status < 0)
        return;
    uint64_t serial = sb_gateway_base_next_serial(&self->base);
    sb_ws_client_t *client = sb_ws_client_accept(listener, serial, &self->settings.limits,
                                                 &s_client_events, self,
                                                 sb_gateway_base_tls_of(&self->base, listener));
    if (!client)
        return;
    if (sb_gateway_base_count(&self->base) >= self->settings.max_connections + MAX_OVER_LIMIT) {
        self->counts.refused++;
        sb_ws_client_close(client);   /* never added: on_closed finds nothing to remove */
        return;
    }
    sb_gateway_base_add(&self->base, serial, client);
}

/* ---------------------------------------------------------------- lifecycle */

static void flush_client(void *client)
{
    sb_ws_client_flush(client);
}

static void finish_client(void *client)
{
    sb_ws_client_finish(client);
}

static void close_client(void *client)
{
    sb_ws_client_close(client);
}

static const sb_gateway_client_actions_t s_client_actions = {
    flush_client, finish_client, close_client,
};

sb_ws_gateway_t *sb_ws_gateway_new(const sb_ws_gateway_settings_t *settings)
{
    sb_ws_gateway_t *self = calloc(1, sizeof *self);
    self->settings = *settings;
    self->event_frame = sb_ws_event_frame_new();
    if (!sb_gateway_base_init(&self->base, &settings->base, &s_client_ops, &s_client_actions, self,
                              on_connection)) {
        sb_ws_gateway_destroy(&self);
        return NULL;
    }
    self->api = sb_http_api_new(self->base.router, &settings->api);
    return self;
}

void sb_ws_gateway_destroy(sb_ws_gateway_t **self_p)
{
    sb_ws_gateway_t *self = *self_p;
    if (!self)
        return;
    sb_gateway_base_destroy(&self->base);
    sb_ws_event_frame_destroy(&self->event_frame);
    sb_http_api_destroy(&self->api);
    free(self);
    *self_p = NULL;
}

void sb_ws_gateway_run(sb_ws_gateway_t *self)
{
    sb_gateway_base_run(&self->base);
}
