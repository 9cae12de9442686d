/* fuzz_ws_input.c — libFuzzer target for everything a WebSocket gateway
 * client sends: the HTTP request head, the handshake, WebSocket frames
 * (wslay), the Host allow-list, UTF-8 and close-frame checks, and the JSON requests of text
 * messages — the same ws_stream and ws_json code the gateway runs, fed in
 * chunks whose sizes the input chooses.
 *
 * Input: byte 0 picks the chunk size and whether a valid upgrade request
 * comes first (so the fuzzer reaches the frame parser at once); the rest is
 * the client's bytes. Checks: every text message delivered is valid UTF-8
 * and within the limit, nothing is written after the stream is done. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "ws_json.h"
#include "ws_stream.h"

#define CHECK(cond) \
    do { \
        if (!(cond)) \
            abort(); \
    } while (0)

#define MAX_MESSAGE 4096

static const char s_upgrade[] =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Origin: http://127.0.0.1:8080\r\n\r\n";

typedef struct {
    sb_ws_stream_t *stream;
    bool done;
    size_t written;
} fuzz_client_t;

static void on_write(void *owner, const void *data, size_t length)
{
    fuzz_client_t *client = owner;
    CHECK(!client->done);
    CHECK(data != NULL || length == 0);
    client->written += length;
}

static void on_http_request(void *owner, const sb_http_request_t *request)
{
    fuzz_client_t *client = owner;
    CHECK(sb_http_request_method(request) != NULL);
    CHECK(sb_http_request_path(request) != NULL);
    /* What the HTTP API reads of a request: its body and query parameters. */
    size_t length;
    const char *body = sb_http_request_body(request, &length);
    CHECK(body != NULL && length <= 4096 && body[length] == '\0');
    static const char *const names[] = { "topic", "payload", "token", "filter", "" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        free(sb_http_request_query_param(request, names[i]));
    sb_ws_stream_respond(client->stream, 404, "text/plain", "not found\n", 10);
}

static int may_open(void *owner, const sb_http_request_t *request)
{
    (void) owner;
    (void) request;
    return 101;
}

static void on_open(void *owner)
{
    fuzz_client_t *client = owner;
    sb_ws_stream_send_text(client->stream, "{\"event\":\"$welcome\"}", 20);
}

/* As the gateway does: a JSON request gets a JSON reply, anything else is a line. */
static void on_text(void *owner, const char *text, size_t length)
{
    fuzz_client_t *client = owner;
    CHECK(length <= MAX_MESSAGE);
    CHECK(sb_utf8_is_valid(text, length));
    sb_ws_json_request_t request;
    sb_ws_json_kind_t kind = sb_ws_json_decode(text, length, &request);
    if (kind == SB_WS_JSON_REQUEST) {
        CHECK(request.argc >= 1 && request.argv[0] && request.argv[request.argc] == NULL);
        char *reply = sb_ws_json_reply(request.id, "OK", request.argv[0]);
        CHECK(reply != NULL);
        sb_ws_stream_send_text(client->stream, reply, strlen(reply));
        free(reply);
    }
    else if (kind == SB_WS_JSON_BAD_REQUEST) {
        char *reply = sb_ws_json_reply(request.id, "ERR bad-request", request.error);
        CHECK(reply != NULL);
        free(reply);
    }
    sb_ws_json_request_clear(&request);
}

static void on_done(void *owner)
{
    fuzz_client_t *client = owner;
    CHECK(!client->done);
    client->done = true;
}

static void on_misdirected(void *owner)
{
    (void) owner;
}

static const sb_ws_stream_events_t s_events = {
    on_write, on_http_request, may_open, on_open, on_text, on_done, on_misdirected, NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t) (data[0] & 0x7f) + 1;
    bool upgrade_first = data[0] & 0x80;
    data++;
    size--;
    fuzz_client_t client = { 0 };
    /* A body limit, so the API's bodies (ws_stream.c, http_request.c) are fuzzed too. */
    sb_ws_stream_limits_t limits = { 2048, MAX_MESSAGE, "self", "localhost,*.localhost,hub.local",
                                     NULL, 4096 };
    client.stream = sb_ws_stream_new(&limits, &s_events, &client);
    if (upgrade_first)
        sb_ws_stream_feed(client.stream, s_upgrade, sizeof s_upgrade - 1);
    /* A copy per chunk, exactly its size: reads past a chunk are caught. */
    for (size_t offset = 0; offset < size; offset += chunk) {
        size_t length = size - offset < chunk ? size - offset : chunk;
        char *piece = malloc(length);
        memcpy(piece, data + offset, length);
        sb_ws_stream_feed(client.stream, piece, length);
        free(piece);
    }
    sb_ws_stream_ping(client.stream);
    sb_ws_stream_close(client.stream, 1001, "bye");
    sb_ws_stream_destroy(&client.stream);
    return 0;
}
