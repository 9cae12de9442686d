/* api_json.h — the HTTP API's JSON (docs/http-api.md), without sockets:
 * which HTTP status a hub error code gets, the error body
 * {"error":{"code","message"}}, and the body each endpoint makes of the
 * router's answer ("OK TEXT" or "ERR CODE MESSAGE"). */
#ifndef SB_API_JSON_H
#define SB_API_JSON_H

#include <jansson.h>

/* What an endpoint's answer looks like. */
typedef enum {
    SB_API_COMMAND,    /* POST /api/v1/command: the WebSocket reply {"id","ok","result"|"error"} */
    SB_API_PUBLISH,    /* {"ok":true} */
    SB_API_TOPICS,     /* {"count":N,"topics":[{"topic","payload"}],"truncated":false} */
    SB_API_CLIENTS,    /* {"clients":["tcp-1",...]} */
    SB_API_DEVICES,    /* {"devices":{"kitchen":"connected",...}} */
    SB_API_HISTORY,    /* {"count":N,"points":[{"t":MS,"v":VALUE},...]} */
} sb_api_kind_t;

/* The HTTP status of a hub error code (docs/http-api.md has the table):
 * bad-args 400, unauthorized 403, unknown-command 404, busy 503, ... */
int sb_api_status_of(const char *code);

/* The error code of a refusal the gateway makes itself, by its status
 * (405 method-not-allowed, 413 too-long, ...). */
const char *sb_api_code_of_status(int status);

/* {"error":{"code":CODE,"message":MESSAGE}} (a heap string). */
char *sb_api_error_body(const char *code, const char *message);

/* The body for the router's answer to an endpoint's request (`status`:
 * "OK", "ERR code", or NULL for a success whose text is the whole reply),
 * with its HTTP status in *http_status. `id`: a command's request id (may
 * be NULL). A heap string. */
char *sb_api_result(sb_api_kind_t kind, json_t *id, const char *status, const char *text,
                    int *http_status);

#endif
