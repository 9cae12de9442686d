/* http_api.c — the HTTP API on the WebSocket gateway's port (see http_api.h).
 *
 * A request is checked in this order: the Host (ws_stream.c, as for every
 * request), a bounded body read in time (ws_stream.c and ws_client.c: 413,
 * 408), the Origin (a page of another origin only with --api-cors), the
 * path and method (404, 405), the body's JSON (400, 415), the credentials
 * (401, 429), and then the router, whose rules and commands answer as they
 * answer any client (403 unauthorized, 503 busy, ...: api_json.c maps
 * the codes). The client joins the hub only once its credentials are
 * proved, and leaves when its connection closes. */
#include "http_api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_json.h"
#include "envelope.h"
#include "handshake.h"
#include "sse.h"
#include "topic.h"
#include "ws_json.h"

/* docs/openapi.json, built in by embed.cmake. */
extern const unsigned char sb_openapi_json[];
extern const size_t sb_openapi_json_size;

/* As `pub`: a payload up to 64 KiB. */
#define MAX_PAYLOAD (SB_ENVELOPE_MAX_SIZE / 4)
/* An Origin longer than this is never given CORS headers. */
#define MAX_ORIGIN 256

struct sb_http_api {
    sb_router_t *router;
    sb_http_api_settings_t settings;
    sb_http_api_counts_t counts;
};

/* One request's state, kept by its client (sb_ws_client_set_api). */
typedef struct {
    sb_http_api_t *api;
    sb_api_kind_t kind;
    json_t *id;              /* a command's request id, or NULL */
    bool joined;             /* the client is known to the hub */
    bool events;             /* an open event stream */
    char headers[MAX_ORIGIN + 64];   /* CORS header lines for every answer, or "" */
} api_request_t;

typedef void (*handler_t)(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                          const sb_http_request_t *request);

/* ---------------------------------------------------------------- answers */

/* Every answer of the API goes here, and is counted by its class. */
static void answer_http(sb_ws_client_t *client, api_request_t *state, int status,
                        const char *content_type, const char *headers, const char *body,
                        size_t length)
{
    state->api->counts.answers[status >= 500 ? 2 : status >= 400 ? 1 : 0]++;
    sb_ws_client_respond_with(client, status, content_type, headers, body, length);
}

static void respond(sb_ws_client_t *client, api_request_t *state, int status, const char *body)
{
    char headers[sizeof state->headers + 64];
    snprintf(headers, sizeof headers, "%s%s", state->headers,
             status == 401 ? "WWW-Authenticate: Bearer\r\n" : "");
    answer_http(client, state, status, "application/json", headers, body, strlen(body));
}

static void respond_error(sb_ws_client_t *client, api_request_t *state, int status,
                          const char *code, const char *message)
{
    char *body = sb_api_error_body(code, message);
    respond(client, state, status, body);
    free(body);
}

/* ---------------------------------------------------------------- credentials */

const sb_identity_t *sb_http_api_identity(sb_router_t *router, sb_ws_client_t *client,
                                          const char *authorization, const char *pair,
                                          int *status)
{
    const sb_access_t *access = sb_router_access(router);
    const char *credentials = pair ? pair
                              : !authorization ? NULL
                              : strncasecmp(authorization, "Bearer ", 7) == 0 ? authorization + 7
                                                                               : "";
    if (!credentials || !sb_access_enabled(access))
        return sb_access_anonymous(access);
    char address[80];
    sb_ws_client_peer(client, address, sizeof address);
    bool waiting = false;
    const sb_identity_t *identity =
        sb_router_authenticate_now(router, address, credentials, &waiting);
    *status = waiting ? 429 : 401;
    return identity;
}

/* The identity the request proves, or NULL after refusing it. */
static const sb_identity_t *authenticate(sb_http_api_t *self, sb_ws_client_t *client,
                                         api_request_t *state, const sb_http_request_t *request,
                                         const char *pair)
{
    int status = 401;
    const sb_identity_t *identity =
        sb_http_api_identity(self->router, client, sb_http_request_header(request, "Authorization"),
                             pair, &status);
    if (!identity && status == 429)
        respond_error(client, state, 429, "busy",
                      "too many failed credentials from this address, try again in a few seconds");
    else if (!identity)
        respond_error(client, state, 401, "unauthorized",
                      "unknown token or wrong secret (Authorization: Bearer NAME:SECRET)");
    return identity;
}

/* The client becomes a client of the hub, as `identity`. */
static void join(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                 const sb_identity_t *identity)
{
    char address[80];
    uint64_t serial = sb_ws_client_serial(client);
    sb_ws_client_peer(client, address, sizeof address);
    sb_router_client_joined(self->router, serial, address);
    sb_router_client_authenticated(self->router, serial, identity);
    state->joined = true;
}

/* Authenticates and joins; false after refusing the request. */
static bool admit(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                  const sb_http_request_t *request)
{
    const sb_identity_t *identity = authenticate(self, client, state, request, NULL);
    if (identity)
        join(self, client, state, identity);
    return identity != NULL;
}

/* ---------------------------------------------------------------- bodies */

/* A POST's JSON body (an object), or NULL after refusing it. */
static json_t *json_body(sb_ws_client_t *client, api_request_t *state,
                         const sb_http_request_t *request, const char *example)
{
    const char *type = sb_http_request_header(request, "Content-Type");
    if (!type || strncasecmp(type, "application/json", 16) != 0
        || (type[16] && type[16] != ';' && type[16] != ' ')) {
        respond_error(client, state, 415, "bad-request",
                      "the body must be JSON, sent with Content-Type: application/json");
        return NULL;
    }
    size_t length;
    const char *body = sb_http_request_body(request, &length);
    json_t *root = json_loadb(body, length, 0, NULL);
    if (!json_is_object(root)) {
        char message[160];
        snprintf(message, sizeof message, "the body must be a JSON object: %s", example);
        respond_error(client, state, 400, "bad-request", message);
        json_decref(root);
        return NULL;
    }
    return root;
}

/* A JSON string without NUL bytes, or NULL. */
static const char *plain_string(const json_t *value)
{
    return json_is_string(value) && strlen(json_string_value(value)) == json_string_length(value)
               ? json_string_value(value) : NULL;
}

/* ---------------------------------------------------------------- endpoints */

static void publish(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                    const char *topic, const char *payload, bool retain)
{
    if (strlen(payload) > MAX_PAYLOAD) {
        respond_error(client, state, 413, "too-long", "the payload is over 64 KiB");
        return;
    }
    state->kind = SB_API_PUBLISH;
    sb_router_publish(self->router, client, NULL, topic ? topic : "", payload, retain, 0, NULL, 0);
}

/* POST /api/v1/publish {"topic":"a/b","payload":"x","retain":false}; a
 * payload that is not a string is sent as its compact JSON text. */
static void publish_json(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                         const sb_http_request_t *request)
{
    json_t *root = json_body(client, state, request,
                             "{\"topic\":\"a/b\",\"payload\":\"x\",\"retain\":false}");
    if (!root)
        return;
    const char *topic = plain_string(json_object_get(root, "topic"));
    json_t *payload = json_object_get(root, "payload"), *retain = json_object_get(root, "retain");
    char *text = json_is_string(payload) ? NULL
                 : payload && !json_is_null(payload)
                     ? json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("");
    const char *payload_text = text ? text : plain_string(payload);
    if (!topic)
        respond_error(client, state, 400, "bad-args", "\"topic\" must be a string");
    else if (!payload_text)
        respond_error(client, state, 400, "bad-args", "\"payload\" may not hold a NUL byte");
    else if (retain && !json_is_boolean(retain))
        respond_error(client, state, 400, "bad-args", "\"retain\" must be true or false");
    else if (admit(self, client, state, request))
        publish(self, client, state, topic, payload_text, json_is_true(retain));
    free(text);
    json_decref(root);
}

/* GET /api/v1/publish?token=NAME:SECRET&topic=a/b&payload=x[&retain=1],
 * for devices that can only call a URL: only for a token with url_token. */
static void publish_url(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                        const sb_http_request_t *request)
{
    char *token = sb_http_request_query_param(request, "token");
    char *topic = sb_http_request_query_param(request, "topic");
    char *payload = sb_http_request_query_param(request, "payload");
    char *retain = sb_http_request_query_param(request, "retain");
    const sb_identity_t *identity = NULL;
    if (!sb_access_enabled(sb_router_access(self->router)))
        respond_error(client, state, 403, "unauthorized",
                      "GET /api/v1/publish needs a token with url_token = yes, "
                      "and none is configured");
    else if (!token)
        respond_error(client, state, 401, "unauthorized",
                      "GET /api/v1/publish needs token=NAME:SECRET of a token "
                      "with url_token = yes");
    else if ((identity = authenticate(self, client, state, request, token))
             && !sb_identity_allows_url_token(identity))
        respond_error(client, state, 403, "unauthorized",
                      "this token may not be given in a URL "
                      "(url_token = yes in its [token] section)");
    else if (identity) {
        join(self, client, state, identity);
        bool retained = retain && (strcmp(retain, "1") == 0 || strcmp(retain, "true") == 0
                                   || strcmp(retain, "yes") == 0);
        publish(self, client, state, topic, payload ? payload : "", retained);
    }
    free(token);
    free(topic);
    free(payload);
    free(retain);
}

/* POST /api/v1/command {"id":1,"cmd":"echo","args":["hi"]}: the WebSocket reply. */
static void run_command(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                        const sb_http_request_t *request)
{
    json_t *root = json_body(client, state, request, "{\"cmd\":\"echo\",\"args\":[\"hi\"]}");
    if (!root)
        return;
    json_decref(root);
    size_t length;
    const char *body = sb_http_request_body(request, &length);
    sb_ws_json_request_t command;
    sb_ws_json_kind_t kind = sb_ws_json_decode(body, length, &command);
    int status;
    if (kind != SB_WS_JSON_REQUEST) {
        char *reply = sb_api_result(SB_API_COMMAND, command.id, "ERR bad-request",
                                    command.error ? command.error : "not a request", &status);
        respond(client, state, status, reply);
        free(reply);
    }
    else if (admit(self, client, state, request)) {
        state->kind = SB_API_COMMAND;
        state->id = json_incref(command.id);
        sb_router_handle_command(self->router, client, NULL, command.argc, command.argv);
    }
    sb_ws_json_request_clear(&command);
}

/* A GET answered by one command of the hub. */
static void run_listing(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                        const sb_http_request_t *request, sb_api_kind_t kind, size_t argc,
                        char **argv)
{
    if (!admit(self, client, state, request))
        return;
    state->kind = kind;
    sb_router_handle_command(self->router, client, NULL, argc, argv);
}

/* The `filter` query parameter, "#" when absent (a heap string). */
static char *filter_of(const sb_http_request_t *request)
{
    char *filter = sb_http_request_query_param(request, "filter");
    return filter ? filter : strdup("#");
}

static void list_topics(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                        const sb_http_request_t *request)
{
    char *filter = filter_of(request);
    char *argv[] = { "topics", filter, NULL };
    run_listing(self, client, state, request, SB_API_TOPICS, 2, argv);
    free(filter);
}

static void list_clients(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                         const sb_http_request_t *request)
{
    char *argv[] = { "clients", NULL };
    run_listing(self, client, state, request, SB_API_CLIENTS, 1, argv);
}

static void list_devices(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                         const sb_http_request_t *request)
{
    char *argv[] = { "devices", NULL };
    run_listing(self, client, state, request, SB_API_DEVICES, 1, argv);
}

/* GET /api/v1/history?topic=T[&n=N]: as `history T [N]`. */
static void list_history(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                         const sb_http_request_t *request)
{
    char *topic = sb_http_request_query_param(request, "topic");
    char *count = sb_http_request_query_param(request, "n");
    if (!topic) {
        respond_error(client, state, 400, "bad-args", "topic is required (?topic=T[&n=N])");
    }
    else {
        char *argv[] = { "history", topic, count, NULL };
        run_listing(self, client, state, request, SB_API_HISTORY, count ? 3 : 2, argv);
    }
    free(topic);
    free(count);
}

/* GET /api/v1/events?filter=F: the stream opens once the filter and the
 * rules allow it (else an HTTP error), then subscribes as `sub F` would:
 * retained values first, then live events, until either side closes. */
static void open_events(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                        const sb_http_request_t *request)
{
    char *filter = filter_of(request);
    const sb_identity_t *identity = NULL;
    if (!sb_topic_filter_is_valid(filter))
        respond_error(client, state, 400, "bad-args",
                      "filter must be a topic filter (a/b, a/+/c, a/#)");
    else if (!(identity = authenticate(self, client, state, request, NULL)))
        ;
    else if (!sb_identity_may_run(identity, "sub") || !sb_identity_may_subscribe(identity, filter))
        respond_error(client, state, 403, "unauthorized",
                      "that filter is outside your subscribe rules");
    else if (self->counts.streams >= self->settings.max_streams)
        respond_error(client, state, 503, "busy", "too many event streams, try again later");
    else {
        join(self, client, state, identity);
        state->events = true;
        self->counts.answers[0]++;
        self->counts.streams++;
        char headers[sizeof state->headers + 32];
        snprintf(headers, sizeof headers, "%sX-Accel-Buffering: no\r\n", state->headers);
        sb_ws_client_stream_start(client, SB_SSE_CONTENT_TYPE, headers, SB_SSE_KEEPALIVE);
        char id[64];
        sb_router_client_id(self->router, sb_ws_client_serial(client), id, sizeof id);
        char *welcome = sb_ws_json_welcome(id), *event = sb_sse_event("welcome", welcome);
        sb_ws_client_stream_write(client, event, strlen(event));
        free(event);
        free(welcome);
        char *argv[] = { "sub", filter, NULL };
        sb_router_handle_command(self->router, client, NULL, 2, argv);
    }
    free(filter);
}

static void serve_openapi(sb_http_api_t *self, sb_ws_client_t *client, api_request_t *state,
                          const sb_http_request_t *request)
{
    (void) self;
    (void) request;
    answer_http(client, state, 200, "application/json", state->headers,
                (const char *) sb_openapi_json, sb_openapi_json_size);
}

/* ---------------------------------------------------------------- routes */

static const struct {
    const char *path, *method;
    handler_t run;
} s_routes[] = {
    { "/api/v1/publish", "POST", publish_json },
    { "/api/v1/publish", "GET", publish_url },
    { "/api/v1/command", "POST", run_command },
    { "/api/v1/topics", "GET", list_topics },
    { "/api/v1/clients", "GET", list_clients },
    { "/api/v1/devices", "GET", list_devices },
    { "/api/v1/history", "GET", list_history },
    { "/api/v1/events", "GET", open_events },
    { "/api/v1/openapi.json", "GET", serve_openapi },
    { "/api/v1/openapi.json", "HEAD", serve_openapi },
};

#define ROUTE_COUNT (sizeof s_routes / sizeof s_routes[0])

/* The CORS header lines for a page of `origin`, when --api-cors lets it in. */
static bool cors_allows(const sb_http_api_t *self, const char *origin, const char *host)
{
    const char *allowed = self->settings.cors_origins;
    return allowed && *allowed && strlen(origin) < MAX_ORIGIN
           && sb_handshake_origin_allowed(origin, host, allowed);
}

/* A preflight (OPTIONS) from an origin --api-cors allows. */
static void answer_preflight(sb_ws_client_t *client, api_request_t *state)
{
    char headers[sizeof state->headers + 160];
    snprintf(headers, sizeof headers,
             "%sAccess-Control-Allow-Methods: GET, POST\r\n"
             "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
             "Access-Control-Max-Age: 600\r\n", state->headers);
    answer_http(client, state, 204, "application/json", headers, "", 0);
}

/* 405 with the methods the path takes, or 404 when it takes none. */
static void refuse_route(sb_ws_client_t *client, api_request_t *state, const char *path)
{
    char allow[64] = "";
    for (size_t i = 0; i < ROUTE_COUNT; i++)
        if (strcmp(s_routes[i].path, path) == 0)
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                     *allow ? ", " : "", s_routes[i].method);
    if (!*allow) {
        respond_error(client, state, 404, "not-found",
                      "no such API endpoint (see /api/v1/openapi.json)");
        return;
    }
    char headers[sizeof state->headers + 96], message[96];
    snprintf(headers, sizeof headers, "%sAllow: %s\r\n", state->headers, allow);
    snprintf(message, sizeof message, "this endpoint takes %s", allow);
    char *body = sb_api_error_body("method-not-allowed", message);
    answer_http(client, state, 405, "application/json", headers, body, strlen(body));
    free(body);
}

bool sb_http_api_handle(sb_http_api_t *self, sb_ws_client_t *client,
                        const sb_http_request_t *request)
{
    const char *path = sb_http_request_path(request);
    if (strncmp(path, "/api/", 5) != 0)
        return false;
    api_request_t *state = calloc(1, sizeof *state);
    state->api = self;
    sb_ws_client_set_api(client, state);
    const char *origin = sb_http_request_header(request, "Origin");
    const char *host = sb_http_request_header(request, "Host");
    const char *method = sb_http_request_method(request);
    bool cors = origin && cors_allows(self, origin, host);
    if (cors)
        snprintf(state->headers, sizeof state->headers,
                 "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n", origin);
    /* A browser sends Origin with every cross-origin call: a page may only
     * call the API from this gateway's own origin, or with --api-cors. */
    if (origin && !cors && !sb_handshake_origin_allowed(origin, host, "self")) {
        respond_error(client, state, 403, "unauthorized",
                      "pages from that origin may not call the API (see --api-cors)");
        return true;
    }
    if (cors && strcmp(method, "OPTIONS") == 0) {
        answer_preflight(client, state);
        return true;
    }
    for (size_t i = 0; i < ROUTE_COUNT; i++)
        if (strcmp(s_routes[i].path, path) == 0 && strcmp(s_routes[i].method, method) == 0) {
            s_routes[i].run(self, client, state, request);
            return true;
        }
    refuse_route(client, state, path);
    return true;
}

/* ---------------------------------------------------------------- the router's answers */

bool sb_http_api_answer(sb_http_api_t *self, sb_ws_client_t *client, const char *status,
                        const char *text)
{
    (void) self;
    api_request_t *state = sb_ws_client_api(client);
    if (!state)
        return false;
    if (state->events) {
        /* The stream's `sub`: OK, or refused after all (an error event, then the end). */
        if (status && strncmp(status, "ERR ", 4) == 0) {
            char *error = sb_api_error_body(status + 4, text);
            char *event = sb_sse_event("error", error);
            sb_ws_client_stream_write(client, event, strlen(event));
            sb_ws_client_stream_end(client);
            free(event);
            free(error);
        }
        return true;
    }
    int http_status;
    char *body = sb_api_result(state->kind, state->id, status, text, &http_status);
    respond(client, state, http_status, body);
    free(body);
    return true;
}

bool sb_http_api_write_async(sb_http_api_t *self, sb_ws_client_t *client, const char *kind,
                             const char *word, const char *text)
{
    (void) self;
    api_request_t *state = sb_ws_client_api(client);
    if (!state)
        return false;
    if (!state->events)
        return true;   /* a one-shot request (`sub` as a command) has no stream for them */
    bool retained = strcmp(kind, "RETAINED") == 0;
    bool message = strcmp(kind, "MSG") == 0;
    char *data = message ? sb_ws_json_message(word, text) : sb_ws_json_event(word, text, retained);
    char *event = sb_sse_event(message ? "msg" : retained ? "retained" : "event", data);
    sb_ws_client_stream_write(client, event, strlen(event));
    free(event);
    free(data);
    return true;
}

void sb_http_api_closed(sb_http_api_t *self, sb_ws_client_t *client)
{
    api_request_t *state = sb_ws_client_api(client);
    if (!state)
        return;
    if (state->joined)
        sb_router_client_left(self->router, sb_ws_client_serial(client));
    self->counts.streams -= state->events;
    json_decref(state->id);
    free(state);
    sb_ws_client_set_api(client, NULL);
}

sb_http_api_counts_t sb_http_api_counts(const sb_http_api_t *self)
{
    return self->counts;
}

/* ---------------------------------------------------------------- lifecycle */

sb_http_api_t *sb_http_api_new(sb_router_t *router, const sb_http_api_settings_t *settings)
{
    sb_http_api_t *self = calloc(1, sizeof *self);
    self->router = router;
    self->settings = *settings;
    return self;
}

void sb_http_api_destroy(sb_http_api_t **self_p)
{
    free(*self_p);
    *self_p = NULL;
}
