/* http_request.h — one HTTP/1.1 request (request line, headers and a
 * bounded body), read with Debian's http-parser. The WebSocket gateway's
 * pages and upgrades need only the head; the HTTP API (http_api.c) reads
 * bodies up to a limit set with sb_http_request_set_max_body. */
#ifndef SB_HTTP_REQUEST_H
#define SB_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    SB_HTTP_MORE,          /* the head is not complete yet */
    SB_HTTP_COMPLETE,      /* read: see method, path and headers */
    SB_HTTP_BAD,           /* not HTTP: answer 400 */
    SB_HTTP_TOO_LARGE,     /* head over the limit: answer 431 */
    SB_HTTP_BODY_TOO_LARGE,   /* body over the limit (declared or sent): answer 413 */
} sb_http_status_t;

typedef struct sb_http_request sb_http_request_t;

/* `max_head`: the most bytes the request line and headers may take. */
sb_http_request_t *sb_http_request_new(size_t max_head);
void sb_http_request_destroy(sb_http_request_t **self_p);

/* Reads `data`; `*used` tells how much of it belongs to the head (the rest,
 * after an upgrade, is the first WebSocket input). */
sb_http_status_t sb_http_request_feed(sb_http_request_t *self, const char *data, size_t length,
                                      size_t *used);

/* The most bytes a body may have (default 0: a request with a body is refused). */
void sb_http_request_set_max_body(sb_http_request_t *self, size_t max_body);

/* The head has been read (the body may still be on its way). */
bool sb_http_request_head_done(const sb_http_request_t *self);

const char *sb_http_request_method(const sb_http_request_t *self);
/* The path without the query string. */
const char *sb_http_request_path(const sb_http_request_t *self);
/* The body (NUL-terminated; "" when there is none) and its length. */
const char *sb_http_request_body(const sb_http_request_t *self, size_t *length);
/* The value of query parameter `name`, percent-decoded ('+' is a space),
 * as a heap string; NULL when absent or when it decodes to a NUL byte. */
char *sb_http_request_query_param(const sb_http_request_t *self, const char *name);
/* A header's value (names compare without case), or NULL. */
const char *sb_http_request_header(const sb_http_request_t *self, const char *name);
/* The request asks to switch protocols (Connection: upgrade and an Upgrade header). */
bool sb_http_request_is_upgrade(const sb_http_request_t *self);

#endif
