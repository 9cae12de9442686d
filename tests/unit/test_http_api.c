/* test_http_api.c — unit tests for what the HTTP API reads and writes
 * without a socket: request bodies (their limit, declared or chunked, in
 * any chunking) and query parameters (http_request.c), the status of each
 * hub error code and the JSON bodies (api_json.c), the SSE framing
 * (sse.c), and ws_stream's answers to API paths (methods, 413, 100
 * Continue, JSON errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "api_json.h"
#include "http_request.h"
#include "sse.h"
#include "ws_stream.h"

#define POST_HEAD \
    "POST /api/v1/publish?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"

/* Feeds `text` in pieces of `step` bytes to a request with `max_body`. */
static sb_http_status_t feed(sb_http_request_t *request, const char *text, size_t step)
{
    size_t length = strlen(text), used;
    sb_http_status_t status = SB_HTTP_MORE;
    for (size_t at = 0; at < length && status == SB_HTTP_MORE; at += step) {
        size_t piece = length - at < step ? length - at : step;
        status = sb_http_request_feed(request, text + at, piece, &used);
    }
    return status;
}

static void test_body_in_any_chunking(void **state)
{
    (void) state;
    static const char input[] = POST_HEAD "Content-Length: 11\r\n\r\n{\"a\":\"bc\"}\n";
    static const size_t steps[] = { 1, 2, 7, 64, 4096 };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        sb_http_request_t *request = sb_http_request_new(256);
        sb_http_request_set_max_body(request, 64);
        assert_int_equal(feed(request, input, steps[i]), SB_HTTP_COMPLETE);
        size_t length;
        const char *body = sb_http_request_body(request, &length);
        assert_int_equal(length, 11);
        assert_string_equal(body, "{\"a\":\"bc\"}\n");
        assert_string_equal(sb_http_request_method(request), "POST");
        assert_string_equal(sb_http_request_path(request), "/api/v1/publish");
        sb_http_request_destroy(&request);
    }
}

/* The head limit counts the head only: a body larger than the rest of it
 * is fine, arriving in the same read as the head. */
static void test_head_limit_does_not_count_the_body(void **state)
{
    (void) state;
    char input[1024];
    snprintf(input, sizeof input, POST_HEAD "Content-Length: 600\r\n\r\n%600d", 7);
    sb_http_request_t *request = sb_http_request_new(200);
    sb_http_request_set_max_body(request, 600);
    size_t used;
    assert_int_equal(sb_http_request_feed(request, input, strlen(input), &used), SB_HTTP_COMPLETE);
    assert_int_equal(used, strlen(input));
    sb_http_request_destroy(&request);
}

static void test_body_over_the_limit(void **state)
{
    (void) state;
    /* Declared: refused as soon as the head ends, before any body byte. */
    sb_http_request_t *request = sb_http_request_new(256);
    sb_http_request_set_max_body(request, 10);
    assert_int_equal(feed(request, POST_HEAD "Content-Length: 11\r\n\r\n", 4096),
                     SB_HTTP_BODY_TOO_LARGE);
    assert_true(sb_http_request_head_done(request));
    sb_http_request_destroy(&request);
    /* Chunked: refused by what arrives. */
    static const char chunked[] = POST_HEAD "Transfer-Encoding: chunked\r\n\r\n"
                                  "6\r\n123456\r\n6\r\n789012\r\n0\r\n\r\n";
    for (size_t step = 1; step <= 4096; step *= 8) {
        request = sb_http_request_new(256);
        sb_http_request_set_max_body(request, 10);
        assert_int_equal(feed(request, chunked, step), SB_HTTP_BODY_TOO_LARGE);
        sb_http_request_destroy(&request);
        request = sb_http_request_new(256);
        sb_http_request_set_max_body(request, 12);
        assert_int_equal(feed(request, chunked, step), SB_HTTP_COMPLETE);
        size_t length;
        assert_string_equal(sb_http_request_body(request, &length), "123456789012");
        sb_http_request_destroy(&request);
    }
    /* The default: no body at all. */
    request = sb_http_request_new(256);
    assert_int_equal(feed(request, POST_HEAD "Content-Length: 1\r\n\r\nx", 4096),
                     SB_HTTP_BODY_TOO_LARGE);
    sb_http_request_destroy(&request);
}

static void test_query_parameters(void **state)
{
    (void) state;
    sb_http_request_t *request = sb_http_request_new(512);
    static const char input[] = "GET /api/v1/publish?token=a%3Ab&topic=home%2F%23&payload=21.5+C"
                                "&empty=&flag&bad=%zz%4&nul=a%00b&t%6fpic=second HTTP/1.1\r\n\r\n";
    assert_int_equal(feed(request, input, 4096), SB_HTTP_COMPLETE);
    assert_string_equal(sb_http_request_path(request), "/api/v1/publish");
    static const struct {
        const char *name, *value;
    } cases[] = {
        { "token", "a:b" }, { "topic", "home/#" }, { "payload", "21.5 C" }, { "empty", "" },
        { "flag", "" }, { "bad", "%zz%4" }, { "nul", NULL }, { "missing", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *value = sb_http_request_query_param(request, cases[i].name);
        if (cases[i].value)
            assert_string_equal(value, cases[i].value);
        else
            assert_null(value);
        free(value);
    }
    sb_http_request_destroy(&request);
    /* No query at all. */
    request = sb_http_request_new(512);
    assert_int_equal(feed(request, "GET /api/v1/topics HTTP/1.1\r\n\r\n", 4096), SB_HTTP_COMPLETE);
    assert_null(sb_http_request_query_param(request, "filter"));
    sb_http_request_destroy(&request);
}

static void test_status_of_codes(void **state)
{
    (void) state;
    static const struct {
        const char *code;
        int status;
    } cases[] = {
        { "bad-args", 400 },     { "bad-request", 400 },  { "unauthorized", 403 },
        { "unknown-command", 404 }, { "no-such-client", 404 }, { "no-such-device", 404 },
        { "insufficient-funds", 409 }, { "too-long", 413 }, { "busy", 503 },
        { "unavailable", 503 },  { "no-service", 503 },   { "not-connected", 503 },
        { "timeout", 504 },      { "worker-died", 502 },  { "exit-status", 502 },
        { "internal", 500 },     { "something-new", 500 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (sb_api_status_of(cases[i].code) != cases[i].status)
            fail_msg("%s: %d", cases[i].code, sb_api_status_of(cases[i].code));
    assert_string_equal(sb_api_code_of_status(405), "method-not-allowed");
    assert_string_equal(sb_api_code_of_status(413), "too-long");
    assert_string_equal(sb_api_code_of_status(408), "timeout");
}

/* `body` as JSON equals `expected` (JSON text). */
static void assert_json(const char *body, const char *expected)
{
    json_t *got = json_loads(body, 0, NULL), *want = json_loads(expected, 0, NULL);
    assert_non_null(got);
    assert_non_null(want);
    if (!json_equal(got, want))
        fail_msg("got %s, expected %s", body, expected);
    json_decref(got);
    json_decref(want);
}

static void test_results(void **state)
{
    (void) state;
    int status;
    char *body = sb_api_result(SB_API_TOPICS, NULL, "OK", "2 a/b x \"a/c d\" \"two words\" ...",
                               &status);
    assert_int_equal(status, 200);
    assert_json(body, "{\"count\":2,\"topics\":[{\"topic\":\"a/b\",\"payload\":\"x\"},"
                      "{\"topic\":\"a/c d\",\"payload\":\"two words\"}],\"truncated\":true}");
    free(body);
    body = sb_api_result(SB_API_TOPICS, NULL, "OK", "0", &status);
    assert_json(body, "{\"count\":0,\"topics\":[],\"truncated\":false}");
    free(body);
    body = sb_api_result(SB_API_CLIENTS, NULL, "OK", "", &status);
    assert_json(body, "{\"clients\":[]}");
    free(body);
    body = sb_api_result(SB_API_CLIENTS, NULL, "OK", "tcp-1 ws-3", &status);
    assert_json(body, "{\"clients\":[\"tcp-1\",\"ws-3\"]}");
    free(body);
    body = sb_api_result(SB_API_DEVICES, NULL, "OK", "door=waiting lamp=backoff:3.2s", &status);
    assert_json(body, "{\"devices\":{\"door\":\"waiting\",\"lamp\":\"backoff:3.2s\"}}");
    free(body);
    body = sb_api_result(SB_API_PUBLISH, NULL, "ERR unauthorized", "no", &status);
    assert_int_equal(status, 403);
    assert_json(body, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"no\"}}");
    free(body);
    json_t *id = json_integer(5);
    body = sb_api_result(SB_API_COMMAND, id, "ERR timeout", "late", &status);
    assert_int_equal(status, 504);
    assert_json(body,
                "{\"id\":5,\"ok\":false,\"error\":{\"code\":\"timeout\",\"message\":\"late\"}}");
    free(body);
    body = sb_api_result(SB_API_COMMAND, id, NULL, "jack's money: 3", &status);
    assert_int_equal(status, 200);
    free(body);
    json_decref(id);
    /* A list that does not parse (an unterminated quote) is the gateway's fault. */
    body = sb_api_result(SB_API_TOPICS, NULL, "OK", "1 \"a", &status);
    assert_int_equal(status, 500);
    free(body);
}

static void test_sse_framing(void **state)
{
    (void) state;
    static const struct {
        const char *data, *framed;
    } cases[] = {
        { "{\"a\":1}", "event: e\ndata: {\"a\":1}\n\n" },
        { "", "event: e\ndata: \n\n" },
        { "one\ntwo", "event: e\ndata: one\ndata: two\n\n" },
        { "one\r\ntwo\rthree\n", "event: e\ndata: one\ndata: two\ndata: three\ndata: \n\n" },
        { "\n\n", "event: e\ndata: \ndata: \ndata: \n\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *framed = sb_sse_event("e", cases[i].data);
        assert_string_equal(framed, cases[i].framed);
        free(framed);
    }
}

/* ---------------------------------------------------------------- ws_stream on API paths */

typedef struct {
    char out[8192];
    size_t length;
    int requests;
    bool done;
} peer_t;

static void peer_write(void *owner, const void *data, size_t length)
{
    peer_t *peer = owner;
    assert_true(peer->length + length < sizeof peer->out);
    memcpy(peer->out + peer->length, data, length);
    peer->length += length;
    peer->out[peer->length] = '\0';
}

static void peer_request(void *owner, const sb_http_request_t *request)
{
    (void) request;
    ((peer_t *) owner)->requests++;
}

static int peer_may_open(void *owner, const sb_http_request_t *request)
{
    (void) owner;
    (void) request;
    return 101;
}

static void peer_nothing(void *owner)
{
    (void) owner;
}

static void peer_text(void *owner, const char *text, size_t length)
{
    (void) owner;
    (void) text;
    (void) length;
}

static void peer_done(void *owner)
{
    ((peer_t *) owner)->done = true;
}

static const sb_ws_stream_events_t s_events = {
    peer_write, peer_request, peer_may_open, peer_nothing, peer_text, peer_done, peer_nothing, NULL,
};

static const sb_ws_stream_limits_t s_limits = { 1024, 4096, "self", "h", NULL, 16 };

static void test_stream_api_paths(void **state)
{
    (void) state;
    peer_t peer = { 0 };
    sb_ws_stream_t *stream = sb_ws_stream_new(&s_limits, &s_events, &peer);
    /* POST under /api/ reaches the owner, with its body; 100 Continue first. */
    static const char head[] = POST_HEAD "Expect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    sb_ws_stream_feed(stream, head, strlen(head));
    assert_string_equal(peer.out, "HTTP/1.1 100 Continue\r\n\r\n");
    sb_ws_stream_feed(stream, "{}  ", 4);
    assert_int_equal(peer.requests, 1);
    sb_ws_stream_respond_with(stream, 200, "application/json", "X-A: b\r\n", "{}", 2);
    assert_non_null(strstr(peer.out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(peer.out, "Connection: close\r\nX-A: b\r\n\r\n{}"));
    assert_true(peer.done);
    sb_ws_stream_destroy(&stream);

    /* Over the body limit: 413 in JSON, the owner never hears of it. */
    peer = (peer_t) { 0 };
    stream = sb_ws_stream_new(&s_limits, &s_events, &peer);
    static const char large[] = POST_HEAD "Expect: 100-continue\r\nContent-Length: 17\r\n\r\n";
    sb_ws_stream_feed(stream, large, strlen(large));
    assert_non_null(strstr(peer.out, "HTTP/1.1 413 "));
    assert_null(strstr(peer.out, "100 Continue"));
    assert_non_null(strstr(peer.out, "{\"error\":{\"code\":\"too-long\""));
    assert_int_equal(peer.requests, 0);
    sb_ws_stream_destroy(&stream);

    /* Outside /api/, POST is still 405 in text. */
    peer = (peer_t) { 0 };
    stream = sb_ws_stream_new(&s_limits, &s_events, &peer);
    static const char page[] = "POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    sb_ws_stream_feed(stream, page, strlen(page));
    assert_non_null(strstr(peer.out, "HTTP/1.1 405 "));
    assert_non_null(strstr(peer.out, "text/plain"));
    sb_ws_stream_destroy(&stream);

    /* A refusal (the 408 of a slow body) on an API path is JSON. */
    peer = (peer_t) { 0 };
    stream = sb_ws_stream_new(&s_limits, &s_events, &peer);
    static const char slow[] = POST_HEAD "Content-Length: 10\r\n\r\n{";
    sb_ws_stream_feed(stream, slow, strlen(slow));
    sb_ws_stream_refuse(stream, 408, "request not received in time");
    assert_non_null(strstr(peer.out, "HTTP/1.1 408 "));
    assert_non_null(strstr(peer.out, "{\"error\":{\"code\":\"timeout\""));
    sb_ws_stream_destroy(&stream);

    /* A streamed answer: the head without Content-Length, then the owner's bytes. */
    peer = (peer_t) { 0 };
    stream = sb_ws_stream_new(&s_limits, &s_events, &peer);
    static const char events[] = "GET /api/v1/events HTTP/1.1\r\nHost: h\r\n\r\n";
    sb_ws_stream_feed(stream, events, strlen(events));
    sb_ws_stream_respond_with(stream, 200, SB_SSE_CONTENT_TYPE, "", NULL, 0);
    assert_null(strstr(peer.out, "Content-Length"));
    assert_false(peer.done);
    sb_ws_stream_close(stream, SB_WS_CLOSE_NORMAL, NULL);
    assert_true(peer.done);
    sb_ws_stream_destroy(&stream);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_in_any_chunking),
        cmocka_unit_test(test_head_limit_does_not_count_the_body),
        cmocka_unit_test(test_body_over_the_limit),
        cmocka_unit_test(test_query_parameters),
        cmocka_unit_test(test_status_of_codes),
        cmocka_unit_test(test_results),
        cmocka_unit_test(test_sse_framing),
        cmocka_unit_test(test_stream_api_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
