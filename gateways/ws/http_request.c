/* http_request.c — one request read with http-parser (see http_request.h).
 *
 * http-parser hands over the URL, each header and the body in pieces, as
 * they arrive; the pieces are appended here. The parser is paused at the
 * end of the request, so what follows (WebSocket frames, a pipelined
 * request) is left to the caller. The head limit counts the head only; a
 * body is judged by its declared Content-Length as soon as the head ends,
 * and by what arrives (chunked), against its own limit. */
#include "http_request.h"

#include <http_parser.h>
#include <limits.h>
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
    bool head_done;
    bool body_too_large;
    size_t max_body, body_length;
    char *body;
    char *query;              /* the URL's query string, or NULL */
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

static void extract_path(sb_http_request_t *self);

static int on_headers_complete(http_parser *parser)
{
    sb_http_request_t *self = parser->data;
    self->head_done = true;
    extract_path(self);
    /* ULLONG_MAX: no Content-Length (none, or chunked: judged as it comes). */
    if (parser->content_length != ULLONG_MAX && parser->content_length > self->max_body) {
        self->body_too_large = true;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *parser, const char *at, size_t length)
{
    sb_http_request_t *self = parser->data;
    if (length > self->max_body - self->body_length) {
        self->body_too_large = true;
        return -1;
    }
    append(&self->body, at, length);
    self->body_length += length;
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
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
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
    free(self->body);
    free(self->query);
    free(self);
    *self_p = NULL;
}

/* The path part of the URL (an absolute-form URL is reduced to its path)
 * and its query string. */
static void extract_path(sb_http_request_t *self)
{
    struct http_parser_url parts;
    http_parser_url_init(&parts);
    const char *url = self->url ? self->url : "";
    bool parsed = http_parser_parse_url(url, strlen(url), 0, &parts) == 0;
    if (parsed && (parts.field_set & (1 << UF_QUERY)) && !self->query)
        self->query = strndup(url + parts.field_data[UF_QUERY].off,
                              parts.field_data[UF_QUERY].len);
    if (parsed && (parts.field_set & (1 << UF_PATH))) {
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
    size_t offered = self->head_done || length < room ? length : room;
    size_t parsed = http_parser_execute(&self->parser, &s_settings, data, offered);
    if (!self->head_done)
        self->head_length += parsed;
    /* The head ended within the bytes offered: the rest is body, not head. */
    if (self->head_done && !self->complete && parsed == offered && offered < length
        && HTTP_PARSER_ERRNO(&self->parser) == HPE_OK)
        parsed += http_parser_execute(&self->parser, &s_settings, data + parsed, length - parsed);
    enum http_errno error = HTTP_PARSER_ERRNO(&self->parser);
    *used = parsed;
    if (self->complete) {
        extract_path(self);
        return SB_HTTP_COMPLETE;
    }
    if (self->body_too_large)
        return SB_HTTP_BODY_TOO_LARGE;
    if (self->too_many_headers)
        return SB_HTTP_TOO_LARGE;
    if (error != HPE_OK)
        return SB_HTTP_BAD;
    if (self->head_length >= self->max_head)
        return SB_HTTP_TOO_LARGE;
    return SB_HTTP_MORE;
}

void sb_http_request_set_max_body(sb_http_request_t *self, size_t max_body)
{
    self->max_body = max_body;
}

bool sb_http_request_head_done(const sb_http_request_t *self)
{
    return self->head_done;
}

const char *sb_http_request_body(const sb_http_request_t *self, size_t *length)
{
    *length = self->body_length;
    return self->body ? self->body : "";
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* `length` bytes of a query component, percent-decoded; NULL for a NUL byte. */
static char *percent_decode(const char *text, size_t length)
{
    char *out = malloc(length + 1), *at = out;
    for (size_t i = 0; i < length; i++) {
        int high, low;
        if (text[i] == '%' && i + 2 < length
            && (high = hex_value(text[i + 1])) >= 0 && (low = hex_value(text[i + 2])) >= 0) {
            *at++ = (char) (high << 4 | low);
            i += 2;
        }
        else
            *at++ = text[i] == '+' ? ' ' : text[i];
        if (at[-1] == '\0') {
            free(out);
            return NULL;
        }
    }
    *at = '\0';
    return out;
}

char *sb_http_request_query_param(const sb_http_request_t *self, const char *name)
{
    size_t name_length = strlen(name);
    for (const char *at = self->query; at && *at;) {
        size_t pair = strcspn(at, "&");
        const char *equals = memchr(at, '=', pair);
        size_t key = equals ? (size_t) (equals - at) : pair;
        char *decoded = percent_decode(at, key);
        bool match = decoded && strlen(decoded) == name_length && strcmp(decoded, name) == 0;
        free(decoded);
        if (match)
            return equals ? percent_decode(equals + 1, pair - key - 1) : strdup("");
        at += pair + (at[pair] == '&');
    }
    return NULL;
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
