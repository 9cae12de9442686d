/* http_request.c — one request head read with http-parser (see http_request.h).
 *
 * http-parser hands over the URL and each header in pieces, as they
 * arrive; the pieces are appended here. The parser is paused at the end of
 * the request, so what follows (WebSocket frames, a pipelined request) is
 * left to the caller. */
#include "http_request.h"

#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEADERS 48

typedef struct {
    char *name, *value;
} header_t;

struct sb_http_request {
    http_parser parser;
    size_t max_head, head_length;
    char *url;
    header_t headers[MAX_HEADERS];
    size_t header_count;
    bool in_value;            /* the last piece was a header value */
    bool complete;
    bool too_many_headers;
    char path[1024];
};

static void append(char **text, const char *piece, size_t length)
{
    size_t old = *text ? strlen(*text) : 0;
    *text = realloc(*text, old + length + 1);
    memcpy(*text + old, piece, length);
    (*text)[old + length] = '\0';
}

static int on_url(http_parser *parser, const char *at, size_t length)
{
    sb_http_request_t *self = parser->data;
    append(&self->url, at, length);
    return 0;
}

static int on_header_field(http_parser *parser, const char *at, size_t length)
{
    sb_http_request_t *self = parser->data;
    if (self->in_value || self->header_count == 0) {
        if (self->header_count == MAX_HEADERS) {
            self->too_many_headers = true;
            return 1;
        }
        self->header_count++;
        self->in_value = false;
    }
    append(&self->headers[self->header_count - 1].name, at, length);
    return 0;
}

static int on_header_value(http_parser *parser, const char *at, size_t length)
{
    sb_http_request_t *self = parser->data;
    self->in_value = true;
    append(&self->headers[self->header_count - 1].value, at, length);
    return 0;
}

/* Pausing here, not at the end of the headers, makes http-parser count the
 * head's last byte as used. */
static int on_message_complete(http_parser *parser)
{
    sb_http_request_t *self = parser->data;
    self->complete = true;
    http_parser_pause(parser, 1);
    return 0;
}

static const http_parser_settings s_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_message_complete = on_message_complete,
};

sb_http_request_t *sb_http_request_new(size_t max_head)
{
    sb_http_request_t *self = calloc(1, sizeof *self);
    http_parser_init(&self->parser, HTTP_REQUEST);
    self->parser.data = self;
    self->max_head = max_head;
    return self;
}

void sb_http_request_destroy(sb_http_request_t **self_p)
{
    sb_http_request_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->header_count; i++) {
        free(self->headers[i].name);
        free(self->headers[i].value);
    }
    free(self->url);
    free(self);
    *self_p = NULL;
}

/* The path part of the URL (an absolute-form URL is reduced to its path). */
static void extract_path(sb_http_request_t *self)
{
    struct http_parser_url parts;
    http_parser_url_init(&parts);
    const char *url = self->url ? self->url : "";
    if (http_parser_parse_url(url, strlen(url), 0, &parts) == 0
        && (parts.field_set & (1 << UF_PATH))) {
        size_t length = parts.field_data[UF_PATH].len;
        if (length >= sizeof self->path)
            length = sizeof self->path - 1;
        memcpy(self->path, url + parts.field_data[UF_PATH].off, length);
        self->path[length] = '\0';
    }
    else
        strcpy(self->path, url[0] == '/' ? "/" : "");
}

sb_http_status_t sb_http_request_feed(sb_http_request_t *self, const char *data, size_t length,
                                      size_t *used)
{
    *used = 0;
    if (self->complete)
        return SB_HTTP_COMPLETE;
    size_t room = self->max_head - self->head_length;
    size_t offered = length < room ? length : room;
    size_t parsed = http_parser_execute(&self->parser, &s_settings, data, offered);
    enum http_errno error = HTTP_PARSER_ERRNO(&self->parser);
    *used = parsed;
    self->head_length += parsed;
    if (self->complete) {
        extract_path(self);
        return SB_HTTP_COMPLETE;
    }
    if (self->too_many_headers)
        return SB_HTTP_TOO_LARGE;
    if (error != HPE_OK)
        return SB_HTTP_BAD;
    if (self->head_length >= self->max_head)
        return SB_HTTP_TOO_LARGE;
    return SB_HTTP_MORE;
}

const char *sb_http_request_method(const sb_http_request_t *self)
{
    return http_method_str((enum http_method) self->parser.method);
}

const char *sb_http_request_path(const sb_http_request_t *self)
{
    return self->path;
}

const char *sb_http_request_header(const sb_http_request_t *self, const char *name)
{
    for (size_t i = 0; i < self->header_count; i++)
        if (self->headers[i].name && strcasecmp(self->headers[i].name, name) == 0)
            return self->headers[i].value ? self->headers[i].value : "";
    return NULL;
}

bool sb_http_request_is_upgrade(const sb_http_request_t *self)
{
    return self->parser.upgrade;
}
