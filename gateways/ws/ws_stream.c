/* ws_stream.c — one connection's HTTP and WebSocket protocol (see ws_stream.h).
 *
 * wslay checks framing (masking, opcodes, RSV bits, continuations) and
 * echoes a peer's close. Two things are checked here before wslay sees the
 * bytes, by following the frame headers (frame_guard): lengths, because
 * wslay judges a frame's declared length only once payload arrives (a
 * header claiming 2^40 bytes would sit unanswered); and control frames
 * that are fragmented or too long, which wslay fails with a close frame
 * that has no status code instead of 1002. UTF-8 in text messages and the
 * close frame's payload are checked in wslay's callbacks, the latter as the
 * frame ends, before wslay would echo it.
 *
 * wslay's session holds two 4 KiB buffers, most of what an idle
 * connection would cost. So it exists only while it has work: it is made
 * when bytes arrive or a close starts, and freed when a feed ends between
 * frames with nothing queued (frame_guard knows where the frames end).
 * Messages out do not need it: a server's frames are unmasked, so a data
 * frame or a ping is written here as bytes (sb_ws_frame_header), and an
 * event's frame is encoded once for every client (sb_ws_stream_send_frame).
 * Nothing is ever left in wslay's queue between calls (pump sends it all),
 * so these writes keep their order with wslay's pongs and close. */
#include "ws_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "api_json.h"
#include "handshake.h"
#include "host_check.h"
#include "utf8.h"

typedef enum {
    PHASE_HTTP,          /* reading the request head */
    PHASE_RESPONDING,    /* a plain HTTP request waits for the owner's answer */
    PHASE_WEBSOCKET,
    PHASE_DONE,
} phase_t;

/* Follows frame boundaries in the client's bytes to judge each header as
 * soon as it is complete. */
typedef struct {
    uint8_t header[14];
    size_t header_length;          /* bytes of the current header so far */
    uint64_t payload_left;         /* of the current frame, to skip */
    uint64_t message_length;       /* declared so far by the current data message's frames */
} frame_guard_t;

struct sb_ws_stream {
    sb_ws_stream_limits_t limits;
    const sb_ws_stream_events_t *events;
    void *owner;
    phase_t phase;
    sb_http_request_t *request;
    wslay_event_context_ptr session; /* only while it has work (see above) */
    const char *input;               /* what wslay may read during a feed */
    size_t input_left;
    frame_guard_t guard;
    bool closing;                    /* our close frame is queued */
    bool continued;                  /* `100 Continue` has been sent */
    /* The frame being read, when it is a close frame: its payload. */
    bool reading_close;
    uint8_t close_payload[125];
    size_t close_length;
};

static void finish(sb_ws_stream_t *self)
{
    if (self->phase == PHASE_DONE)
        return;
    self->phase = PHASE_DONE;
    self->events->on_done(self->owner);
}

/* ---------------------------------------------------------------- HTTP */

static const char *status_text(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 421: return "Misdirected Request";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

void sb_ws_stream_respond_with(sb_ws_stream_t *self, int status, const char *content_type,
                               const char *headers, const char *body, size_t length)
{
    if (self->phase != PHASE_HTTP && self->phase != PHASE_RESPONDING)
        return;
    char head[1536], content_length[48] = "";
    if (body)
        snprintf(content_length, sizeof content_length, "Content-Length: %zu\r\n", length);
    const char *extra = headers ? headers
                        : status == 426 ? "Sec-WebSocket-Version: 13\r\n"
                        : status == 405 ? "Allow: GET\r\n"
                        : status == 401 ? "WWW-Authenticate: Bearer\r\n" : "";
    int used = snprintf(head, sizeof head,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s"
                        "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                        status, status_text(status), content_type, content_length, extra);
    if (used < 0 || (size_t) used >= sizeof head)
        return;   /* the callers' headers are short; a cut head would be worse than none */
    self->events->write(self->owner, head, (size_t) used);
    if (!body) {
        self->phase = PHASE_RESPONDING;   /* the owner streams the body */
        return;
    }
    bool head_only = self->request && strcmp(sb_http_request_method(self->request), "HEAD") == 0;
    if (!head_only)
        self->events->write(self->owner, body, length);
    finish(self);
}

void sb_ws_stream_respond(sb_ws_stream_t *self, int status, const char *content_type,
                          const char *body, size_t length)
{
    sb_ws_stream_respond_with(self, status, content_type, NULL, body ? body : "", length);
}

static bool is_api_path(const char *path)
{
    return strncmp(path, "/api/", 5) == 0;
}

void sb_ws_stream_refuse(sb_ws_stream_t *self, int status, const char *message)
{
    if (self->request && sb_http_request_head_done(self->request)
        && is_api_path(sb_http_request_path(self->request))) {
        char *body = sb_api_error_body(sb_api_code_of_status(status), message);
        sb_ws_stream_respond(self, status, "application/json", body, strlen(body));
        free(body);
        return;
    }
    char body[256];
    int length = snprintf(body, sizeof body, "%s\n", message);
    sb_ws_stream_respond(self, status, "text/plain; charset=utf-8", body, (size_t) length);
}

/* ---------------------------------------------------------------- wslay callbacks */

static ssize_t recv_callback(wslay_event_context_ptr session, uint8_t *buffer, size_t length,
                             int flags, void *user_data)
{
    (void) flags;
    sb_ws_stream_t *self = user_data;
    if (self->input_left == 0) {
        wslay_event_set_error(session, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t count = length < self->input_left ? length : self->input_left;
    memcpy(buffer, self->input, count);
    self->input += count;
    self->input_left -= count;
    return (ssize_t) count;
}

static ssize_t send_callback(wslay_event_context_ptr session, const uint8_t *data, size_t length,
                             int flags, void *user_data)
{
    (void) session;
    (void) flags;
    sb_ws_stream_t *self = user_data;
    self->events->write(self->owner, data, length);
    return (ssize_t) length;
}

static bool close_code_is_valid(uint16_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011)
           || (code >= 3000 && code <= 4999);
}

static void on_frame_start(wslay_event_context_ptr session,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user_data)
{
    (void) session;
    sb_ws_stream_t *self = user_data;
    self->reading_close = arg->opcode == WSLAY_CONNECTION_CLOSE;
    self->close_length = 0;
}

static void on_frame_chunk(wslay_event_context_ptr session,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user_data)
{
    (void) session;
    sb_ws_stream_t *self = user_data;
    size_t room = sizeof self->close_payload - self->close_length;
    if (!self->reading_close || arg->data_length > room)
        return;   /* a close frame over 125 bytes is wslay's protocol error */
    memcpy(self->close_payload + self->close_length, arg->data, arg->data_length);
    self->close_length += arg->data_length;
}

/* A close frame's payload: empty, or a valid code and a UTF-8 reason (RFC 6455 §5.5.1, §7.4). */
static void on_frame_end(wslay_event_context_ptr session, void *user_data)
{
    sb_ws_stream_t *self = user_data;
    if (!self->reading_close)
        return;
    self->reading_close = false;
    if (self->close_length == 0)
        return;
    uint16_t code = (uint16_t) (self->close_payload[0] << 8 | self->close_payload[1]);
    (void) session;
    if (self->close_length == 1 || !close_code_is_valid(code))
        sb_ws_stream_close(self, SB_WS_CLOSE_PROTOCOL_ERROR, "invalid close frame");
    else if (!sb_utf8_is_valid((const char *) self->close_payload + 2, self->close_length - 2))
        sb_ws_stream_close(self, SB_WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
}

static void on_message(wslay_event_context_ptr session,
                       const struct wslay_event_on_msg_recv_arg *arg, void *user_data)
{
    sb_ws_stream_t *self = user_data;
    (void) session;
    if (self->closing)
        return;
    bool binary = self->limits.subprotocol != NULL;
    if (arg->opcode == WSLAY_BINARY_FRAME && binary)
        self->events->on_binary(self->owner, arg->msg, arg->msg_length);
    else if (arg->opcode == (binary ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME))
        sb_ws_stream_close(self, SB_WS_CLOSE_UNSUPPORTED_DATA,
                           binary ? "text messages are not supported" : "binary messages are not supported");
    else if (arg->opcode != WSLAY_TEXT_FRAME)
        return;   /* ping (wslay answers it), pong, close (checked in on_frame_end) */
    else if (!sb_utf8_is_valid((const char *) arg->msg, arg->msg_length))
        sb_ws_stream_close(self, SB_WS_CLOSE_INVALID_DATA, "text is not UTF-8");
    else   /* an empty message has no buffer */
        self->events->on_text(self->owner, arg->msg ? (const char *) arg->msg : "", arg->msg_length);
}

static const struct wslay_event_callbacks s_callbacks = {
    .recv_callback = recv_callback,
    .send_callback = send_callback,
    .on_frame_recv_start_callback = on_frame_start,
    .on_frame_recv_chunk_callback = on_frame_chunk,
    .on_frame_recv_end_callback = on_frame_end,
    .on_msg_recv_callback = on_message,
};

/* ---------------------------------------------------------------- WebSocket */

/* Sends what wslay has queued, at once: wslay sends control frames before
 * data, so a reply queued before our close must be out before the close is
 * queued. Once a close is sent, the stream is done. */
static void pump(sb_ws_stream_t *self)
{
    if (self->phase != PHASE_WEBSOCKET || !self->session)
        return;
    wslay_event_send(self->session);
    if (wslay_event_get_close_sent(self->session))
        finish(self);
}

static void ensure_session(sb_ws_stream_t *self)
{
    if (self->session)
        return;
    wslay_event_context_server_init(&self->session, &s_callbacks, self);
    wslay_event_config_set_max_recv_msg_length(self->session, self->limits.max_message);
}

/* Frees the session when nothing of it is needed until the next frame:
 * the input ended on a frame boundary outside any message, nothing is
 * queued, and no close has started. */
static void release_idle_session(sb_ws_stream_t *self)
{
    const frame_guard_t *guard = &self->guard;
    if (!self->session || self->phase != PHASE_WEBSOCKET || self->closing || self->reading_close
        || guard->header_length || guard->payload_left || guard->message_length
        || wslay_event_get_close_received(self->session) || wslay_event_get_close_sent(self->session)
        || wslay_event_get_queued_msg_count(self->session))
        return;
    wslay_event_context_free(self->session);
    self->session = NULL;
}

size_t sb_ws_frame_header(uint8_t header[SB_WS_FRAME_HEADER_MAX], uint8_t opcode, size_t length)
{
    header[0] = (uint8_t) (0x80 | opcode);
    if (length < 126) {
        header[1] = (uint8_t) length;
        return 2;
    }
    if (length < 65536) {
        header[1] = 126;
        header[2] = (uint8_t) (length >> 8);
        header[3] = (uint8_t) length;
        return 4;
    }
    header[1] = 127;
    for (int i = 0; i < 8; i++)
        header[2 + i] = (uint8_t) ((uint64_t) length >> (56 - 8 * i));
    return 10;
}

/* Bytes of the extended payload length a header's second byte announces. */
static size_t length_bytes(uint8_t second)
{
    return (second & 0x7f) == 126 ? 2 : (second & 0x7f) == 127 ? 8 : 0;
}

/* A header up to its length (the mask may still be missing): 0 when
 * acceptable, else the close code it deserves. Judged before the mask
 * arrives, because that is when wslay would judge it too. */
static uint16_t judge_header(frame_guard_t *guard, size_t max_message)
{
    const uint8_t *h = guard->header;
    bool fin = h[0] & 0x80;
    uint8_t opcode = h[0] & 0x0f, length7 = h[1] & 0x7f;
    uint64_t length = length7;
    if (length7 >= 126) {
        length = 0;
        for (size_t i = 0; i < length_bytes(h[1]); i++)
            length = length << 8 | h[2 + i];
        /* The shortest form is required; a 64-bit length's top bit must be 0. */
        if (length >> 63 || length < (length7 == 126 ? 126u : 65536u))
            return SB_WS_CLOSE_PROTOCOL_ERROR;
    }
    guard->payload_left = length;
    if (opcode >= 8)   /* control frames: one frame, at most 125 bytes */
        return !fin || length > 125 ? SB_WS_CLOSE_PROTOCOL_ERROR : 0;
    guard->message_length = opcode == 0 ? guard->message_length + length : length;
    if (guard->message_length > max_message)
        return SB_WS_CLOSE_TOO_BIG;
    if (fin)
        guard->message_length = 0;
    return 0;
}

/* How many of `length` bytes wslay may read: all, or those before the
 * header that breaks a rule (its close code in *code). */
static size_t guard_scan(frame_guard_t *guard, size_t max_message, const uint8_t *data,
                         size_t length, uint16_t *code)
{
    size_t offset = 0;
    *code = 0;
    while (offset < length) {
        if (guard->payload_left > 0 && guard->header_length == 0) {
            uint64_t skip = length - offset < guard->payload_left ? length - offset
                                                                  : guard->payload_left;
            offset += (size_t) skip;
            guard->payload_left -= skip;
            continue;
        }
        /* Where this header starts; 0 when it began in an earlier feed. */
        size_t header_start = guard->header_length <= offset ? offset - guard->header_length : 0;
        guard->header[guard->header_length++] = data[offset++];
        const uint8_t *h = guard->header;
        if (guard->header_length < 2)
            continue;
        size_t judged_at = 2 + length_bytes(h[1]);
        size_t complete_at = judged_at + (h[1] & 0x80 ? 4 : 0);
        /* A control frame is judged by its first two bytes, as wslay does. */
        bool control = (h[0] & 0x0f) >= 8;
        if ((guard->header_length == judged_at || (control && guard->header_length == 2))
            && (*code = judge_header(guard, max_message)) != 0)
            return header_start;
        if (guard->header_length == complete_at)
            guard->header_length = 0;   /* the payload (payload_left bytes) follows */
    }
    return length;
}

static void read_frames(sb_ws_stream_t *self, const char *data, size_t length)
{
    uint16_t broken;
    size_t readable = guard_scan(&self->guard, self->limits.max_message, (const uint8_t *) data,
                                 length, &broken);
    self->input = data;
    self->input_left = readable;
    ensure_session(self);
    int result = wslay_event_recv(self->session);
    self->input_left = 0;
    if (broken)
        sb_ws_stream_close(self, broken, broken == SB_WS_CLOSE_TOO_BIG ? "message too big"
                                                                         : "invalid frame");
    else if (result != 0)
        sb_ws_stream_close(self, SB_WS_CLOSE_PROTOCOL_ERROR, "protocol error");
    pump(self);
    release_idle_session(self);
}

static void open_session(sb_ws_stream_t *self, const char *accept)
{
    char response[320], protocol[96] = "";
    if (self->limits.subprotocol)
        snprintf(protocol, sizeof protocol, "Sec-WebSocket-Protocol: %s\r\n",
                 self->limits.subprotocol);
    int length = snprintf(response, sizeof response,
                          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n", accept,
                          protocol);
    self->events->write(self->owner, response, (size_t) length);
    sb_http_request_destroy(&self->request);   /* an idle connection keeps only what it needs */
    self->phase = PHASE_WEBSOCKET;
    self->events->on_open(self->owner);
}

/* Why the owner refused an upgrade (see may_open). */
static const char *refusal_text(int status)
{
    switch (status) {
    case 401: return "unknown token or wrong secret (Authorization: Bearer NAME:SECRET)";
    case 429: return "too many failed credentials from this address, try again in a few seconds";
    default: return "too many WebSocket clients, try again later";
    }
}

/* Whether the upgrade offers our subprotocol (a comma-separated list); true without one. */
static bool offers_subprotocol(const sb_ws_stream_t *self)
{
    const char *wanted = self->limits.subprotocol;
    const char *offered = sb_http_request_header(self->request, "Sec-WebSocket-Protocol");
    if (!wanted)
        return true;
    size_t length = strlen(wanted);
    for (const char *at = offered; at && *at;) {
        at += strspn(at, " \t,");
        size_t token = strcspn(at, " \t,");
        if (token == length && strncmp(at, wanted, length) == 0)
            return true;
        at += token;
    }
    return false;
}

/* The request head is complete: upgrade, refuse, or hand it to the owner. */
static void handle_request(sb_ws_stream_t *self)
{
    const char *method = sb_http_request_method(self->request);
    if (!sb_host_allowed(sb_http_request_header(self->request, "Host"),
                         self->limits.allowed_hosts)) {
        self->events->on_misdirected(self->owner);
        sb_ws_stream_refuse(self, 421,
                            "this gateway does not answer to that Host (see --allow-host)");
        return;
    }
    bool api = is_api_path(sb_http_request_path(self->request));
    if (!api && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        sb_ws_stream_refuse(self, 405, "only GET is served here");
        return;
    }
    if (!sb_http_request_header(self->request, "Upgrade")) {
        self->phase = PHASE_RESPONDING;
        self->events->on_http_request(self->owner, self->request);
        return;
    }
    sb_handshake_t handshake = sb_handshake_check(self->request, self->limits.allowed_origins);
    if (handshake.status == 101 && !offers_subprotocol(self))
        sb_ws_stream_refuse(self, 400,
                            "the WebSocket subprotocol (Sec-WebSocket-Protocol) must be offered");
    else if (handshake.status != 101)
        sb_ws_stream_refuse(self, handshake.status, handshake.reason);
    else if ((handshake.status = self->events->may_open(self->owner, self->request)) != 101)
        sb_ws_stream_refuse(self, handshake.status, refusal_text(handshake.status));
    else
        open_session(self, handshake.accept);
}

/* A client that waits for `100 Continue` before its body gets it once the
 * head is read and accepted so far (the body's declared length included). */
static void send_continue(sb_ws_stream_t *self)
{
    const char *expect = sb_http_request_header(self->request, "Expect");
    if (self->continued || !sb_http_request_head_done(self->request) || !expect
        || strcasecmp(expect, "100-continue") != 0
        || !sb_host_allowed(sb_http_request_header(self->request, "Host"),
                            self->limits.allowed_hosts))
        return;
    static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    self->continued = true;
    self->events->write(self->owner, continue_line, sizeof continue_line - 1);
}

void sb_ws_stream_feed(sb_ws_stream_t *self, const char *data, size_t length)
{
    if (self->phase == PHASE_WEBSOCKET) {
        read_frames(self, data, length);
        return;
    }
    if (self->phase != PHASE_HTTP)
        return;   /* answering or done: anything more is ignored */
    size_t used;
    switch (sb_http_request_feed(self->request, data, length, &used)) {
    case SB_HTTP_MORE:
        send_continue(self);
        return;
    case SB_HTTP_BAD:
        sb_ws_stream_refuse(self, 400, "malformed HTTP request");
        return;
    case SB_HTTP_TOO_LARGE:
        sb_ws_stream_refuse(self, 431, "request head too large");
        return;
    case SB_HTTP_BODY_TOO_LARGE:
        sb_ws_stream_refuse(self, 413, "request body too large");
        return;
    case SB_HTTP_COMPLETE:
        handle_request(self);
        if (self->phase == PHASE_WEBSOCKET && used < length)
            read_frames(self, data + used, length - used);
        return;
    }
}

/* A whole message as one frame, written past wslay (see the top). */
static void send_message(sb_ws_stream_t *self, uint8_t opcode, const void *data, size_t length)
{
    if (!sb_ws_stream_is_open(self))
        return;
    uint8_t header[SB_WS_FRAME_HEADER_MAX];
    self->events->write(self->owner, header, sb_ws_frame_header(header, opcode, length));
    if (length)
        self->events->write(self->owner, data, length);
}

void sb_ws_stream_send_text(sb_ws_stream_t *self, const char *text, size_t length)
{
    send_message(self, WSLAY_TEXT_FRAME, text, length);
}

void sb_ws_stream_send_binary(sb_ws_stream_t *self, const void *data, size_t length)
{
    send_message(self, WSLAY_BINARY_FRAME, data, length);
}

void sb_ws_stream_send_frame(sb_ws_stream_t *self, const void *frame, size_t length)
{
    if (sb_ws_stream_is_open(self))
        self->events->write(self->owner, frame, length);
}

void sb_ws_stream_ping(sb_ws_stream_t *self)
{
    send_message(self, WSLAY_PING, NULL, 0);
}

void sb_ws_stream_close(sb_ws_stream_t *self, uint16_t code, const char *reason)
{
    if (self->phase != PHASE_WEBSOCKET) {
        finish(self);
        return;
    }
    if (!self->closing) {
        self->closing = true;
        ensure_session(self);
        pump(self);   /* replies first: see pump */
        /* Fails harmlessly when wslay has queued a close already (its echo, its own error). */
        wslay_event_queue_close(self->session, code, (const uint8_t *) reason,
                                reason ? strlen(reason) : 0);
    }
    pump(self);
}

bool sb_ws_stream_is_open(const sb_ws_stream_t *self)
{
    return self->phase == PHASE_WEBSOCKET && !self->closing
           && !(self->session && wslay_event_get_close_received(self->session));
}

uint16_t sb_ws_stream_close_code(const sb_ws_stream_t *self)
{
    return self->session && wslay_event_get_close_sent(self->session)
               ? wslay_event_get_status_code_sent(self->session) : 0;
}

/* ---------------------------------------------------------------- lifecycle */

sb_ws_stream_t *sb_ws_stream_new(const sb_ws_stream_limits_t *limits,
                                 const sb_ws_stream_events_t *events, void *owner)
{
    sb_ws_stream_t *self = calloc(1, sizeof *self);
    self->limits = *limits;
    self->events = events;
    self->owner = owner;
    self->request = sb_http_request_new(limits->max_head);
    sb_http_request_set_max_body(self->request, limits->max_body);
    return self;
}

void sb_ws_stream_destroy(sb_ws_stream_t **self_p)
{
    sb_ws_stream_t *self = *self_p;
    if (!self)
        return;
    if (self->session)
        wslay_event_context_free(self->session);
    sb_http_request_destroy(&self->request);
    free(self);
    *self_p = NULL;
}
