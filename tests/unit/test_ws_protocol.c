/* test_ws_protocol.c — unit tests for the WebSocket gateway's protocol
 * modules, which need no socket (gateways/ws): UTF-8 validation and repair,
 * the HTTP request head, the opening handshake and its Origin rules, the
 * JSON messages, and ws_stream, driven with hand-built client frames while
 * the bytes it writes are captured and parsed back as server frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "handshake.h"
#include "host_check.h"
#include "http_request.h"
#include "utf8.h"
#include "ws_json.h"
#include "ws_stream.h"

/* A string literal and its length, NULs included. */
#define BYTES(s) (s), (sizeof(s) - 1)

#define FFFD "\xEF\xBF\xBD"   /* U+FFFD REPLACEMENT CHARACTER */

/* The RFC 6455 §1.3 example key and its answer. */
#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Pieces of upgrade requests to hub.local:8080. */
#define REQUEST_LINE "GET /ws?client=1 HTTP/1.1\r\nHost: hub.local:8080\r\n"
#define UPGRADE_HEADERS "Upgrade: websocket\r\nConnection: Upgrade\r\n"
#define KEY_HEADER "Sec-WebSocket-Key: " RFC_KEY "\r\n"
#define VERSION_HEADER "Sec-WebSocket-Version: 13\r\n"
#define SAME_ORIGIN "Origin: http://hub.local:8080\r\n"

static const char s_upgrade[] =
    REQUEST_LINE UPGRADE_HEADERS KEY_HEADER VERSION_HEADER SAME_ORIGIN "\r\n";

/* ================================================================ utf8 */

static void test_utf8_validation(void **state)
{
    (void) state;
    static const struct { const char *name, *bytes; size_t length; bool valid; } cases[] = {
        { "empty", BYTES(""), true },
        { "ASCII", BYTES("hello"), true },
        { "a NUL inside", BYTES("a\0b"), true },
        { "2 bytes", BYTES("caf\xC3\xA9"), true },
        { "3 bytes", BYTES("\xE2\x82\xAC"), true },
        { "4 bytes", BYTES("\xF0\x9F\x98\x80"), true },
        { "U+D7FF, below the surrogates", BYTES("\xED\x9F\xBF"), true },
        { "U+E000, above the surrogates", BYTES("\xEE\x80\x80"), true },
        { "U+FFFF", BYTES("\xEF\xBF\xBF"), true },
        { "U+10FFFF, the last code point", BYTES("\xF4\x8F\xBF\xBF"), true },
        { "lone continuation byte", BYTES("a\x80"), false },
        { "byte 0xFE", BYTES("\xFE"), false },
        { "byte 0xFF", BYTES("\xFF"), false },
        { "overlong 2 bytes (C0)", BYTES("\xC0\xAF"), false },
        { "overlong 2 bytes (C1)", BYTES("\xC1\xBF"), false },
        { "overlong 3 bytes", BYTES("\xE0\x80\xAF"), false },
        { "overlong 3 bytes, the largest", BYTES("\xE0\x9F\xBF"), false },
        { "overlong 4 bytes", BYTES("\xF0\x8F\xBF\xBF"), false },
        { "surrogate U+D800", BYTES("\xED\xA0\x80"), false },
        { "surrogate U+DFFF", BYTES("\xED\xBF\xBF"), false },
        { "above U+10FFFF", BYTES("\xF4\x90\x80\x80"), false },
        { "lead byte F5", BYTES("\xF5\x80\x80\x80"), false },
        { "bad second byte", BYTES("\xC3\x28"), false },
        { "bad third byte", BYTES("\xE2\x82\x28"), false },
        { "bad fourth byte", BYTES("\xF0\x9F\x98\x28"), false },
        { "cut 2-byte character", BYTES("ab\xC3"), false },
        { "cut 3-byte character", BYTES("\xE2\x82"), false },
        { "cut 4-byte character", BYTES("\xF0\x9F\x98"), false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (sb_utf8_is_valid(cases[i].bytes, cases[i].length) != cases[i].valid)
            fail_msg("%s: expected %s", cases[i].name, cases[i].valid ? "valid" : "invalid");
    /* Only `length` bytes count. */
    assert_false(sb_utf8_is_valid("\xC3\xA9", 1));
    assert_true(sb_utf8_is_valid("ab\xFF", 2));
}

static void test_utf8_repair(void **state)
{
    (void) state;
    static const struct { const char *text, *repaired; } cases[] = {
        { "", "" },
        { "plain text", "plain text" },
        { "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80" },
        { "a\xFF" "b", "a" FFFD "b" },
        { "\x80", FFFD },
        { "x\xFE\xFF" "y", "x" FFFD FFFD "y" },
        { "\xC3(", FFFD "(" },
        { "\xC0\xAF", FFFD FFFD },
        { "ok \xE2\x82\xAC\xFF", "ok \xE2\x82\xAC" FFFD },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *repaired = sb_utf8_repair(cases[i].text);
        assert_string_equal(repaired, cases[i].repaired);
        free(repaired);
    }
    /* However a malformed sequence is cut into replacements, the result is
     * valid and keeps the good text around it. */
    static const char *const malformed[] = {
        "ab\xE2\x82", "ab\xF0\x9F\x98", "ab\xED\xA0\x80" "cd", "ab\xF4\x90\x80\x80" "cd",
        "ab\xE0\x80\xAF" "cd", "ab\xF0\x9F\x98\x28",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        char *repaired = sb_utf8_repair(malformed[i]);
        assert_true(sb_utf8_is_valid(repaired, strlen(repaired)));
        assert_memory_equal(repaired, "ab" FFFD, 5);
        free(repaired);
    }
}

/* ================================================================ http_request */

/* A request head read in one piece: it must be complete and use all of `text`. */
static sb_http_request_t *parse_request(const char *text)
{
    sb_http_request_t *request = sb_http_request_new(4096);
    size_t used;
    assert_int_equal(sb_http_request_feed(request, text, strlen(text), &used), SB_HTTP_COMPLETE);
    assert_int_equal(used, strlen(text));
    return request;
}

/* What s_upgrade must read as. */
static void expect_upgrade_fields(const sb_http_request_t *request)
{
    assert_string_equal(sb_http_request_method(request), "GET");
    assert_string_equal(sb_http_request_path(request), "/ws");
    assert_string_equal(sb_http_request_header(request, "Host"), "hub.local:8080");
    assert_string_equal(sb_http_request_header(request, "sec-websocket-key"), RFC_KEY);
    assert_string_equal(sb_http_request_header(request, "SEC-WEBSOCKET-VERSION"), "13");
    assert_string_equal(sb_http_request_header(request, "origin"), "http://hub.local:8080");
    assert_null(sb_http_request_header(request, "Cookie"));
    assert_true(sb_http_request_is_upgrade(request));
}

static void test_http_fields(void **state)
{
    (void) state;
    sb_http_request_t *request = parse_request(s_upgrade);
    expect_upgrade_fields(request);
    sb_http_request_destroy(&request);
    assert_null(request);
    sb_http_request_destroy(&request);   /* NULL is fine */

    request = parse_request("HEAD /healthz HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n"
                            "Accept: */*\r\nX-Twice: 1\r\nX-Twice: 2\r\n\r\n");
    assert_string_equal(sb_http_request_method(request), "HEAD");
    assert_string_equal(sb_http_request_path(request), "/healthz");
    assert_string_equal(sb_http_request_header(request, "x-empty"), "");
    assert_string_equal(sb_http_request_header(request, "accept"), "*/*");
    assert_string_equal(sb_http_request_header(request, "x-twice"), "1");
    assert_false(sb_http_request_is_upgrade(request));
    sb_http_request_destroy(&request);
}

static void test_http_path_without_query(void **state)
{
    (void) state;
    static const struct { const char *url, *path; } cases[] = {
        { "/", "/" },
        { "/metrics", "/metrics" },
        { "/metrics?x=1&y=2", "/metrics" },
        { "/?q", "/" },
        { "/a/b/c?x=/d", "/a/b/c" },
        { "http://hub.local:8080/healthz?full=1", "/healthz" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].url);
        sb_http_request_t *request = parse_request(text);
        if (strcmp(sb_http_request_path(request), cases[i].path) != 0)
            fail_msg("URL '%s': path '%s', expected '%s'", cases[i].url,
                     sb_http_request_path(request), cases[i].path);
        sb_http_request_destroy(&request);
    }
}

/* The head in two pieces, split at every byte, followed by two bytes of the
 * next protocol: the head's bytes are used, the others left to the caller. */
static void test_http_fed_in_pieces(void **state)
{
    (void) state;
    char input[sizeof s_upgrade + 2];
    size_t head = strlen(s_upgrade), total = head + 2;
    memcpy(input, s_upgrade, head);
    memcpy(input + head, "\x81\x80", 2);
    for (size_t split = 1; split < total; split++) {
        sb_http_request_t *request = sb_http_request_new(4096);
        size_t used;
        sb_http_status_t status = sb_http_request_feed(request, input, split, &used);
        if (split < head) {
            assert_int_equal(status, SB_HTTP_MORE);
            assert_int_equal(used, split);
            status = sb_http_request_feed(request, input + split, total - split, &used);
            assert_int_equal(status, SB_HTTP_COMPLETE);
            assert_int_equal(used, head - split);
        }
        else {
            assert_int_equal(status, SB_HTTP_COMPLETE);
            assert_int_equal(used, head);
            /* once complete, nothing more is taken */
            status = sb_http_request_feed(request, input + split, total - split, &used);
            assert_int_equal(status, SB_HTTP_COMPLETE);
            assert_int_equal(used, 0);
        }
        expect_upgrade_fields(request);
        sb_http_request_destroy(&request);
    }
}

static void test_http_fed_byte_by_byte(void **state)
{
    (void) state;
    /* A pipelined second request is not part of the first head. */
    static const char input[] = "GET /a?b HTTP/1.1\r\nHost: h\r\nX-Long-Header-Name: some value\r\n\r\n"
                                "GET /next HTTP/1.1\r\n\r\n";
    size_t head = strstr(input, "\r\n\r\n") + 4 - input;
    sb_http_request_t *request = sb_http_request_new(4096);
    size_t used;
    for (size_t i = 0; i + 1 < head; i++) {
        assert_int_equal(sb_http_request_feed(request, input + i, 1, &used), SB_HTTP_MORE);
        assert_int_equal(used, 1);
    }
    assert_int_equal(sb_http_request_feed(request, input + head - 1, 1, &used), SB_HTTP_COMPLETE);
    assert_int_equal(used, 1);
    assert_string_equal(sb_http_request_path(request), "/a");
    assert_string_equal(sb_http_request_header(request, "x-long-header-name"), "some value");
    sb_http_request_destroy(&request);

    request = sb_http_request_new(4096);
    assert_int_equal(sb_http_request_feed(request, BYTES(input), &used), SB_HTTP_COMPLETE);
    assert_int_equal(used, head);
    assert_string_equal(sb_http_request_path(request), "/a");
    sb_http_request_destroy(&request);
}

static void test_http_bad(void **state)
{
    (void) state;
    static const char *const cases[] = {
        "garbage\r\n\r\n",
        "\x16\x03\x01\x02\x03",                          /* a TLS client hello */
        "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET / FTP/1.0\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_http_request_t *request = sb_http_request_new(4096);
        size_t used;
        if (sb_http_request_feed(request, cases[i], strlen(cases[i]), &used) != SB_HTTP_BAD)
            fail_msg("case %zu: not SB_HTTP_BAD", i);
        sb_http_request_destroy(&request);
    }
}

/* Feeds `text` whole, or a byte at a time, to a request of `max_head`. */
static sb_http_status_t feed_with_limit(const char *text, size_t max_head, bool bytewise)
{
    sb_http_request_t *request = sb_http_request_new(max_head);
    size_t used, length = strlen(text);
    sb_http_status_t status = SB_HTTP_MORE;
    if (!bytewise)
        status = sb_http_request_feed(request, text, length, &used);
    for (size_t i = 0; bytewise && i < length && status == SB_HTTP_MORE; i++)
        status = sb_http_request_feed(request, text + i, 1, &used);
    sb_http_request_destroy(&request);
    return status;
}

static void test_http_too_large(void **state)
{
    (void) state;
    size_t head = strlen(s_upgrade);
    for (int bytewise = 0; bytewise <= 1; bytewise++) {
        assert_int_equal(feed_with_limit(s_upgrade, head, bytewise), SB_HTTP_COMPLETE);
        assert_int_equal(feed_with_limit(s_upgrade, head - 1, bytewise), SB_HTTP_TOO_LARGE);
        assert_int_equal(feed_with_limit(s_upgrade, 16, bytewise), SB_HTTP_TOO_LARGE);
    }
    /* Too many headers is too large too, whatever the byte count. */
    char text[4096];
    for (int count = 48; count <= 49; count++) {
        size_t length = (size_t) snprintf(text, sizeof text, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < count; i++)
            length += (size_t) snprintf(text + length, sizeof text - length, "X-%d: v\r\n", i);
        snprintf(text + length, sizeof text - length, "\r\n");
        assert_int_equal(feed_with_limit(text, sizeof text, false),
                         count == 48 ? SB_HTTP_COMPLETE : SB_HTTP_TOO_LARGE);
    }
}

/* ================================================================ handshake */

static void test_accept_key(void **state)
{
    (void) state;
    char accept[SB_HANDSHAKE_ACCEPT_SIZE];
    sb_handshake_accept_key(RFC_KEY, accept);
    assert_string_equal(accept, RFC_ACCEPT);
    sb_handshake_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", accept);
    assert_string_equal(accept, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void test_handshake_check(void **state)
{
    (void) state;
    static const struct { const char *name, *request, *allowed; int status; } cases[] = {
        { "valid", s_upgrade, "self", 101 },
        { "no Origin: not a browser", REQUEST_LINE UPGRADE_HEADERS KEY_HEADER VERSION_HEADER "\r\n",
          "self", 101 },
        { "Upgrade compared without case",
          REQUEST_LINE "Upgrade: WebSocket\r\nConnection: Upgrade\r\n" KEY_HEADER VERSION_HEADER
          "\r\n", "self", 101 },
        { "another valid key",
          REQUEST_LINE UPGRADE_HEADERS "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
          VERSION_HEADER "\r\n", "self", 101 },
        { "POST", "POST /ws HTTP/1.1\r\nHost: hub.local:8080\r\n" UPGRADE_HEADERS KEY_HEADER
          VERSION_HEADER "\r\n", "self", 400 },
        { "Upgrade: h2c", REQUEST_LINE "Upgrade: h2c\r\nConnection: Upgrade\r\n" KEY_HEADER
          VERSION_HEADER "\r\n", "self", 400 },
        { "no Upgrade", REQUEST_LINE KEY_HEADER VERSION_HEADER "\r\n", "self", 400 },
        { "no Connection: Upgrade", REQUEST_LINE "Upgrade: websocket\r\n" KEY_HEADER VERSION_HEADER
          "\r\n", "self", 400 },
        { "no version", REQUEST_LINE UPGRADE_HEADERS KEY_HEADER "\r\n", "self", 426 },
        { "version 8", REQUEST_LINE UPGRADE_HEADERS KEY_HEADER "Sec-WebSocket-Version: 8\r\n\r\n",
          "self", 426 },
        { "no key", REQUEST_LINE UPGRADE_HEADERS VERSION_HEADER "\r\n", "self", 400 },
        { "key of 15 bytes",
          REQUEST_LINE UPGRADE_HEADERS "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n"
          VERSION_HEADER "\r\n", "self", 400 },
        { "key of 17 bytes",
          REQUEST_LINE UPGRADE_HEADERS "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n"
          VERSION_HEADER "\r\n", "self", 400 },
        { "key not base64",
          REQUEST_LINE UPGRADE_HEADERS "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j!Q==\r\n"
          VERSION_HEADER "\r\n", "self", 400 },
        { "foreign Origin", REQUEST_LINE UPGRADE_HEADERS KEY_HEADER VERSION_HEADER
          "Origin: http://evil.example\r\n\r\n", "self", 403 },
        { "foreign Origin in the list", REQUEST_LINE UPGRADE_HEADERS KEY_HEADER VERSION_HEADER
          "Origin: http://app.example\r\n\r\n", "self, http://app.example", 101 },
        { "any Origin", REQUEST_LINE UPGRADE_HEADERS KEY_HEADER VERSION_HEADER
          "Origin: http://evil.example\r\n\r\n", "*", 101 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_http_request_t *request = parse_request(cases[i].request);
        sb_handshake_t handshake = sb_handshake_check(request, cases[i].allowed);
        if (handshake.status != cases[i].status)
            fail_msg("%s: status %d, expected %d", cases[i].name, handshake.status,
                     cases[i].status);
        if (handshake.status == 101) {
            char accept[SB_HANDSHAKE_ACCEPT_SIZE];
            sb_handshake_accept_key(sb_http_request_header(request, "Sec-WebSocket-Key"), accept);
            assert_string_equal(handshake.accept, accept);
        }
        else {
            assert_non_null(handshake.reason);
        }
        sb_http_request_destroy(&request);
    }
}

static void test_origin_rules(void **state)
{
    (void) state;
    static const struct { const char *origin, *host, *allowed; bool expected; } cases[] = {
        /* no Origin: not a browser, always allowed */
        { NULL, "hub:8080", "self", true },
        { NULL, NULL, "http://app.example", true },
        /* self (or empty, or no list): the origin's host:port is the Host */
        { "http://hub:8080", "hub:8080", "self", true },
        { "http://hub:8080", "hub:8080", "", true },
        { "http://hub:8080", "hub:8080", NULL, true },
        { "https://hub:8080", "hub:8080", "self", true },
        { "http://hub:8081", "hub:8080", "self", false },
        { "http://hub", "hub:8080", "self", false },
        { "http://hub:8080", "hub", "self", false },
        { "http://hub:8080", NULL, "self", false },
        { "http://evil.example", "hub:8080", "self", false },
        { "http://evil.example", "hub:8080", "", false },
        { "null", "hub:8080", "self", false },
        /* the keyword "self" is not itself an origin */
        { "self", "hub:8080", "self", false },
        /* any */
        { "http://evil.example", "hub:8080", "*", true },
        { "null", "hub:8080", "*", true },
        /* lists: exact matches */
        { "http://a.example", "hub:8080", "http://a.example", true },
        { "http://a.example", "hub:8080", "http://a.example,http://b.example", true },
        { "http://b.example", "hub:8080", "http://a.example, http://b.example", true },
        { "http://c.example", "hub:8080", "http://a.example,http://b.example", false },
        { "http://a.exampl", "hub:8080", "http://a.example", false },
        { "http://a.example.evil", "hub:8080", "http://a.example", false },
        { "http://a.example:8080", "hub:8080", "http://a.example", false },
        { "http://a.example", "hub:8080", "http://a.example:8080", false },
        /* lists with self */
        { "http://hub:8080", "hub:8080", "http://a.example,self", true },
        { "http://a.example", "hub:8080", "self,http://a.example", true },
        { "http://evil.example", "hub:8080", "http://a.example, self", false },
        { "http://hub:8080", "hub:8080", "http://a.example", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (sb_handshake_origin_allowed(cases[i].origin, cases[i].host, cases[i].allowed)
            != cases[i].expected)
            fail_msg("Origin '%s', Host '%s', allowed '%s': expected %s",
                     cases[i].origin ? cases[i].origin : "(none)",
                     cases[i].host ? cases[i].host : "(none)",
                     cases[i].allowed ? cases[i].allowed : "(none)",
                     cases[i].expected ? "allowed" : "refused");
}

static void test_host_rules(void **state)
{
    (void) state;
    static const char list[] = "localhost,*.localhost,pi,pi.local, hub.example.com,*.home.arpa";
    static const struct { const char *host; bool expected; } cases[] = {
        { "localhost", true }, { "localhost:8080", true }, { "LOCALHOST:8080", true },
        { "localhost.:8080", true }, { "app.localhost:8080", true }, { "a.b.localhost", true },
        { "pi:8080", true }, { "pi.local:8080", true }, { "hub.example.com", true },
        { "nas.home.arpa:80", true }, { " hub.example.com:8080", true },
        /* IP addresses, always: no DNS name is involved */
        { "127.0.0.1:8080", true }, { "127.8.9.10", true }, { "192.168.1.5:8080", true },
        { "[::1]:8080", true }, { "[::1]", true }, { "[fe80::1]:80", true },
        /* names that are not ours */
        { "evil.example:8080", false }, { "evil.example", false }, { "localhost.evil", false },
        { "evillocalhost", false }, { "home.arpa", false }, { "pi.evil", false },
        { "hub.example.com.evil:8080", false }, { "xhub.example.com", false },
        /* malformed */
        { NULL, false }, { "", false }, { ":8080", false }, { "::1", false }, { "[::1", false },
        { "[::1]x", false }, { "localhost:80x", false }, { "localhost:123456", false },
        { "local host", false }, { "localhost,evil", false }, { "localhost/x", false },
        { "[evil.example]:80", false }, { "localhost\x7f", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (sb_host_allowed(cases[i].host, list) != cases[i].expected)
            fail_msg("Host '%s': expected %s", cases[i].host ? cases[i].host : "(none)",
                     cases[i].expected ? "allowed" : "refused");
    /* "*" allows any name; NULL allows only IP addresses. */
    assert_true(sb_host_allowed("evil.example:8080", "localhost, *"));
    assert_false(sb_host_allowed("evil.example:8080", NULL));
    assert_true(sb_host_allowed("10.0.0.1", NULL));
    assert_false(sb_host_allowed("localhost", NULL));
}

static void test_host_allow_list(void **state)
{
    (void) state;
    const char *listen[] = { "hub.lan:8080", "[::1]:8443", "bad", NULL };
    char *list = sb_host_allow_list_new("extra.example, *.corp", listen);
    char name[256] = "";
    assert_int_equal(gethostname(name, sizeof name - 1), 0);
    assert_true(sb_host_allowed("localhost:1", list));
    assert_true(sb_host_allowed("x.localhost", list));
    assert_true(sb_host_allowed(name, list));
    assert_true(sb_host_allowed("hub.lan:9999", list));   /* the port does not matter */
    assert_true(sb_host_allowed("bad", list));            /* a listen host without a port */
    assert_true(sb_host_allowed("extra.example", list));
    assert_true(sb_host_allowed("a.corp:8080", list));
    assert_false(sb_host_allowed("evil.example", list));
    free(list);
    list = sb_host_allow_list_new(NULL, NULL);
    assert_true(sb_host_allowed("localhost", list));
    assert_false(sb_host_allowed("hub.lan", list));
    free(list);
    char host[256];
    assert_true(sb_host_split("[::1]:80", host, sizeof host));
    assert_string_equal(host, "::1");
    assert_true(sb_host_split("hub:", host, sizeof host));
    assert_string_equal(host, "hub");
    assert_false(sb_host_split("a-much-longer-name", host, 8));
}

/* ================================================================ ws_json */

/* A JSON value as compact text (a static buffer). */
static const char *json_text(const json_t *value)
{
    static char text[256];
    char *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    assert_non_null(dumped);
    snprintf(text, sizeof text, "%s", dumped);
    free(dumped);
    return text;
}

static void test_json_decode(void **state)
{
    (void) state;
    /* `expected`: argv joined with '|' for a request, the id for a bad request. */
    static const struct { const char *text; sb_ws_json_kind_t kind; const char *expected; } cases[] = {
        { "{\"id\":1,\"cmd\":\"echo\",\"args\":[\"hi\",\"there\"]}", SB_WS_JSON_REQUEST, "echo|hi|there" },
        { "{\"cmd\":\"time\"}", SB_WS_JSON_REQUEST, "time" },
        { "{\"cmd\":\"time\",\"args\":[]}", SB_WS_JSON_REQUEST, "time" },
        { "{\"id\":2,\"cmd\":\"add\",\"args\":[1,2.5,-3,true,false]}", SB_WS_JSON_REQUEST,
          "add|1|2.5|-3|true|false" },
        { "{\"cmd\":\"say\",\"args\":[\"caf\\u00e9\",\"\"]}", SB_WS_JSON_REQUEST, "say|caf\xC3\xA9|" },
        { " {\"cmd\" : \"pub\", \"args\" : [\"t\", \"{\\\"a\\\":1}\"]} ", SB_WS_JSON_REQUEST,
          "pub|t|{\"a\":1}" },
        /* not JSON: a command line */
        { "echo hi", SB_WS_JSON_NOT_JSON, NULL },
        { "", SB_WS_JSON_NOT_JSON, NULL },
        { "{\"cmd\":\"x\"", SB_WS_JSON_NOT_JSON, NULL },
        { "{\"cmd\":\"x\"} trailing", SB_WS_JSON_NOT_JSON, NULL },
        /* JSON, but not a request: the id, when there is one, is echoed */
        { "[1,2]", SB_WS_JSON_BAD_REQUEST, "null" },
        { "\"echo\"", SB_WS_JSON_BAD_REQUEST, "null" },
        { "42", SB_WS_JSON_BAD_REQUEST, "null" },
        { "{\"id\":3}", SB_WS_JSON_BAD_REQUEST, "3" },
        { "{\"id\":4,\"cmd\":\"\"}", SB_WS_JSON_BAD_REQUEST, "4" },
        { "{\"id\":\"five\",\"cmd\":42}", SB_WS_JSON_BAD_REQUEST, "\"five\"" },
        { "{\"id\":6,\"cmd\":\"x\",\"args\":\"hi\"}", SB_WS_JSON_BAD_REQUEST, "6" },
        { "{\"id\":7,\"cmd\":\"x\",\"args\":null}", SB_WS_JSON_BAD_REQUEST, "7" },
        { "{\"id\":8,\"cmd\":\"x\",\"args\":[{\"a\":1}]}", SB_WS_JSON_BAD_REQUEST, "8" },
        { "{\"id\":9,\"cmd\":\"x\",\"args\":[null]}", SB_WS_JSON_BAD_REQUEST, "9" },
        { "{\"id\":10,\"cmd\":\"x\",\"args\":[[1]]}", SB_WS_JSON_BAD_REQUEST, "10" },
        { "{\"id\":11,\"cmd\":\"x\",\"args\":[\"ok\",null]}", SB_WS_JSON_BAD_REQUEST, "11" },
        { "{\"id\":12,\"cmd\":\"x\",\"args\":[\"a\\u0000b\"]}", SB_WS_JSON_BAD_REQUEST, "12" },
        { "{\"id\":13,\"cmd\":\"ec\\u0000ho\"}", SB_WS_JSON_BAD_REQUEST, "13" },
        { "{\"id\":{\"k\":[1]},\"cmd\":\"\"}", SB_WS_JSON_BAD_REQUEST, "{\"k\":[1]}" },
        { "{\"id\":null,\"cmd\":\"\"}", SB_WS_JSON_BAD_REQUEST, "null" },
    };
    static const char *const kinds[] = { "a request", "not JSON", "a bad request" };
    size_t wrong = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_ws_json_request_t request;
        sb_ws_json_kind_t kind = sb_ws_json_decode(cases[i].text, strlen(cases[i].text), &request);
        if (kind != cases[i].kind) {
            /* Every wrong kind is listed before the test fails. */
            print_error("'%s': read as %s, expected %s\n", cases[i].text, kinds[kind],
                        kinds[cases[i].kind]);
            wrong++;
        }
        else if (kind == SB_WS_JSON_REQUEST) {
            char joined[256] = "";
            for (size_t arg = 0; arg < request.argc; arg++)
                snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s",
                         arg ? "|" : "", request.argv[arg]);
            assert_null(request.argv[request.argc]);
            assert_string_equal(joined, cases[i].expected);
            assert_non_null(request.id);
        }
        else if (kind == SB_WS_JSON_BAD_REQUEST) {
            assert_non_null(request.error);
            assert_int_equal(request.argc, 0);
            assert_null(request.argv);
            assert_string_equal(json_text(request.id), cases[i].expected);
        }
        sb_ws_json_request_clear(&request);
        assert_null(request.id);
        assert_null(request.argv);
    }
    if (wrong > 0)
        fail_msg("%zu texts read as the wrong kind", wrong);
}

static void test_json_decode_edges(void **state)
{
    (void) state;
    sb_ws_json_request_t request;
    /* Only `length` bytes are read. */
    static const char text[] = "{\"id\":1,\"cmd\":\"x\"}GARBAGE";
    assert_int_equal(sb_ws_json_decode(text, strlen(text) - 7, &request), SB_WS_JSON_REQUEST);
    assert_string_equal(json_text(request.id), "1");
    sb_ws_json_request_clear(&request);

    /* The most arguments, and one too many. */
    for (size_t count = 255; count <= 256; count++) {
        char buffer[2048];
        size_t length = (size_t) snprintf(buffer, sizeof buffer, "{\"cmd\":\"many\",\"args\":[");
        for (size_t i = 0; i < count; i++)
            length += (size_t) snprintf(buffer + length, sizeof buffer - length, "%s%zu",
                                        i ? "," : "", i);
        length += (size_t) snprintf(buffer + length, sizeof buffer - length, "]}");
        sb_ws_json_kind_t kind = sb_ws_json_decode(buffer, length, &request);
        if (count == 255) {
            assert_int_equal(kind, SB_WS_JSON_REQUEST);
            assert_int_equal(request.argc, 256);
            assert_string_equal(request.argv[255], "254");
            assert_null(request.argv[256]);
        }
        else
            assert_int_equal(kind, SB_WS_JSON_BAD_REQUEST);
        sb_ws_json_request_clear(&request);
    }
}

/* An encoder's output: valid UTF-8, one line, a JSON object. Frees `text`. */
static json_t *parse_output(char *text)
{
    assert_non_null(text);
    assert_true(sb_utf8_is_valid(text, strlen(text)));
    assert_null(strchr(text, '\n'));
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);
    if (!value)
        fail_msg("not JSON (%s): %s", error.text, text);
    assert_true(json_is_object(value));
    free(text);
    return value;
}

/* The string at `key` of `object`. */
static const char *string_at(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    if (!json_is_string(value))
        fail_msg("'%s' is not a string", key);
    return json_string_value(value);
}

static void test_json_reply(void **state)
{
    (void) state;
    json_t *id = json_integer(7);
    json_t *reply = parse_output(sb_ws_json_reply(id, "OK", "fine"));
    assert_int_equal(json_object_size(reply), 3);
    assert_string_equal(json_text(json_object_get(reply, "id")), "7");
    assert_true(json_is_true(json_object_get(reply, "ok")));
    assert_string_equal(string_at(reply, "result"), "fine");
    json_decref(reply);
    assert_int_equal(id->refcount, 1);   /* the id is not taken */
    json_decref(id);

    /* A bank-style answer (no status), no id, no text. */
    reply = parse_output(sb_ws_json_reply(NULL, NULL, NULL));
    assert_true(json_is_null(json_object_get(reply, "id")));
    assert_true(json_is_true(json_object_get(reply, "ok")));
    assert_string_equal(string_at(reply, "result"), "");
    json_decref(reply);

    id = json_string("req-1");
    reply = parse_output(sb_ws_json_reply(id, "ERR not-found", "no such topic"));
    assert_string_equal(string_at(reply, "id"), "req-1");
    assert_true(json_is_false(json_object_get(reply, "ok")));
    assert_null(json_object_get(reply, "result"));
    json_t *error = json_object_get(reply, "error");
    assert_true(json_is_object(error));
    assert_string_equal(string_at(error, "code"), "not-found");
    assert_string_equal(string_at(error, "message"), "no such topic");
    json_decref(reply);

    reply = parse_output(sb_ws_json_reply(id, "ERR", "failed"));
    assert_string_equal(string_at(json_object_get(reply, "error"), "code"), "error");
    json_decref(reply);
    json_decref(id);

    /* A command's output may hold any bytes: they go out as U+FFFD. */
    reply = parse_output(sb_ws_json_reply(NULL, "OK", "bad \xFF\xC3 bytes, \"quoted\"\n"));
    assert_string_equal(string_at(reply, "result"), "bad " FFFD FFFD " bytes, \"quoted\"\n");
    json_decref(reply);
    reply = parse_output(sb_ws_json_reply(NULL, "ERR bad\xFF", "x\xFE"));
    error = json_object_get(reply, "error");
    assert_string_equal(string_at(error, "code"), "bad" FFFD);
    assert_string_equal(string_at(error, "message"), "x" FFFD);
    json_decref(reply);
}

static void test_json_event(void **state)
{
    (void) state;
    /* `data`: what the event's data must be, as compact JSON with sorted keys. */
    static const struct { const char *payload, *data; } cases[] = {
        { "{\"t\":21.5,\"unit\":\"C\"}", "{\"t\":21.5,\"unit\":\"C\"}" },
        { "[1,2,3]", "[1,2,3]" },
        { "42", "42" },
        { "true", "true" },
        { "null", "null" },
        { "\"quoted\"", "\"quoted\"" },
        { "hello", "\"hello\"" },
        { "", "\"\"" },
        { "21.5 C", "\"21.5 C\"" },
        { "{\"t\":", "\"{\\\"t\\\":\"" },
        { "not \xFF json", "\"not " FFFD " json\"" },
        { "{\"a\":\"\xFF\"}", "\"{\\\"a\\\":\\\"" FFFD "\\\"}\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *event = parse_output(sb_ws_json_event("home/kitchen/temp", cases[i].payload, false));
        assert_int_equal(json_object_size(event), 2);
        assert_string_equal(string_at(event, "event"), "home/kitchen/temp");
        const char *data = json_text(json_object_get(event, "data"));
        if (strcmp(data, cases[i].data) != 0)
            fail_msg("payload '%s': data %s, expected %s", cases[i].payload, data, cases[i].data);
        json_decref(event);
    }
    json_t *event = parse_output(sb_ws_json_event("bad/\xFF", "x", false));
    assert_string_equal(string_at(event, "event"), "bad/" FFFD);
    json_decref(event);
}

static void test_json_message_and_welcome(void **state)
{
    (void) state;
    json_t *message = parse_output(sb_ws_json_message("ws-1", "hi \"there\""));
    assert_int_equal(json_object_size(message), 1);
    json_t *body = json_object_get(message, "msg");
    assert_true(json_is_object(body));
    assert_string_equal(string_at(body, "from"), "ws-1");
    assert_string_equal(string_at(body, "text"), "hi \"there\"");
    json_decref(message);

    message = parse_output(sb_ws_json_message("tcp-\xFF", "caf\xC3\xA9 \xC3"));
    body = json_object_get(message, "msg");
    assert_string_equal(string_at(body, "from"), "tcp-" FFFD);
    assert_string_equal(string_at(body, "text"), "caf\xC3\xA9 " FFFD);
    json_decref(message);

    json_t *welcome = parse_output(sb_ws_json_welcome("ws-7"));
    assert_string_equal(string_at(welcome, "event"), "$welcome");
    json_t *data = json_object_get(welcome, "data");
    assert_true(json_is_object(data));
    assert_int_equal(json_object_size(data), 1);
    assert_string_equal(string_at(data, "client"), "ws-7");
    json_decref(welcome);

    welcome = parse_output(sb_ws_json_welcome("ws-\xFF"));
    assert_string_equal(string_at(json_object_get(welcome, "data"), "client"), "ws-" FFFD);
    json_decref(welcome);
}

/* ================================================================ ws_stream: the peer */

#define MAX_MESSAGE 200   /* over 125: the largest ping is not too big */
#define MAX_TEXTS 8

/* The stream's owner: records every event. */
typedef struct {
    sb_ws_stream_t *stream;
    bool refuse_open;          /* may_open answers no */
    bool defer_response;       /* on_http_request does not answer at once */
    uint8_t output[1 << 16];   /* everything written */
    size_t output_length;
    bool wrote_after_done;
    int open_calls, done_calls, http_requests, misdirected_calls;
    char method[16], path[64];
    size_t text_count;
    char texts[MAX_TEXTS][MAX_MESSAGE + 1];
    size_t text_lengths[MAX_TEXTS];
} peer_t;

static void peer_write(void *owner, const void *data, size_t length)
{
    peer_t *peer = owner;
    if (peer->done_calls > 0)
        peer->wrote_after_done = true;
    assert_true(peer->output_length + length <= sizeof peer->output);
    if (length > 0)
        memcpy(peer->output + peer->output_length, data, length);
    peer->output_length += length;
}

static void peer_on_http_request(void *owner, const sb_http_request_t *request)
{
    peer_t *peer = owner;
    peer->http_requests++;
    snprintf(peer->method, sizeof peer->method, "%s", sb_http_request_method(request));
    snprintf(peer->path, sizeof peer->path, "%s", sb_http_request_path(request));
    if (!peer->defer_response)
        sb_ws_stream_respond(peer->stream, 200, "text/plain", "hello\n", 6);
}

static int peer_may_open(void *owner, const sb_http_request_t *request)
{
    (void) request;
    peer_t *peer = owner;
    return peer->refuse_open ? 503 : 101;
}

static void peer_on_open(void *owner)
{
    peer_t *peer = owner;
    peer->open_calls++;
}

static void peer_on_text(void *owner, const char *text, size_t length)
{
    peer_t *peer = owner;
    assert_true(peer->text_count < MAX_TEXTS);
    assert_true(length <= MAX_MESSAGE);
    if (length > 0)   /* an empty message may come as NULL */
        memcpy(peer->texts[peer->text_count], text, length);
    peer->texts[peer->text_count][length] = '\0';
    peer->text_lengths[peer->text_count++] = length;
}

static void peer_on_done(void *owner)
{
    peer_t *peer = owner;
    peer->done_calls++;
}

static void peer_on_misdirected(void *owner)
{
    peer_t *peer = owner;
    peer->misdirected_calls++;
}

/* Binary messages (with a subprotocol) are kept like texts. */
static void peer_on_binary(void *owner, const uint8_t *data, size_t length)
{
    peer_on_text(owner, (const char *) data, length);
}

static const sb_ws_stream_events_t s_peer_events = {
    peer_write, peer_on_http_request, peer_may_open, peer_on_open, peer_on_text, peer_on_done,
    peer_on_misdirected, peer_on_binary,
};

static const sb_ws_stream_limits_t s_limits = { 1024, MAX_MESSAGE, "self", "hub.local, h", NULL, 0 };

/* `limits`: NULL for s_limits. */
static peer_t *peer_new(const sb_ws_stream_limits_t *limits)
{
    peer_t *peer = calloc(1, sizeof *peer);
    peer->stream = sb_ws_stream_new(limits ? limits : &s_limits, &s_peer_events, peer);
    return peer;
}

static void peer_free(peer_t *peer)
{
    assert_false(peer->wrote_after_done);
    assert_true(peer->done_calls <= 1);
    sb_ws_stream_destroy(&peer->stream);
    assert_null(peer->stream);
    free(peer);
}

static void peer_feed(peer_t *peer, const void *data, size_t length, bool bytewise)
{
    if (!bytewise)
        sb_ws_stream_feed(peer->stream, data, length);
    for (size_t i = 0; bytewise && i < length; i++)
        sb_ws_stream_feed(peer->stream, (const char *) data + i, 1);
}

/* The output holds `text`. */
static bool output_has(const peer_t *peer, const char *text)
{
    return memmem(peer->output, peer->output_length, text, strlen(text)) != NULL;
}

/* A peer after a successful upgrade: one 101 response with the RFC's
 * accept key, and nothing else. */
static peer_t *peer_open(void)
{
    peer_t *peer = peer_new(NULL);
    peer_feed(peer, BYTES(s_upgrade), false);
    assert_int_equal(peer->open_calls, 1);
    assert_int_equal(peer->done_calls, 0);
    assert_true(sb_ws_stream_is_open(peer->stream));
    assert_int_equal(sb_ws_stream_close_code(peer->stream), 0);
    static const char start[] = "HTTP/1.1 101 Switching Protocols\r\n";
    assert_true(peer->output_length > sizeof start);
    assert_memory_equal(peer->output, start, sizeof start - 1);
    assert_true(output_has(peer, "\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n"));
    assert_true(output_has(peer, "\r\nUpgrade: websocket\r\n"));
    /* the head ends the output */
    const uint8_t *end = memmem(peer->output, peer->output_length, "\r\n\r\n", 4);
    assert_non_null(end);
    assert_ptr_equal(end + 4, peer->output + peer->output_length);
    return peer;
}

/* ---------------------------------------------------------------- client frames */

#define FIN 0x80
#define RSV1 0x40
#define RSV3 0x10
#define OP_CONTINUATION 0x0
#define OP_TEXT 0x1
#define OP_BINARY 0x2
#define OP_CLOSE 0x8
#define OP_PING 0x9
#define OP_PONG 0xA

static const uint8_t s_mask[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* A client frame. */
typedef struct {
    bool used;               /* (ends a list of frames when false) */
    uint8_t head;            /* the first byte: FIN, RSV bits, opcode */
    const char *payload;     /* NULL: `length` bytes of 'x' */
    size_t length;
    uint64_t declared;       /* not 0: the length the header claims instead */
    size_t length_bytes;     /* not 0: the extended length takes 2 or 8 bytes, needed or not */
    bool unmasked;
} frame_spec_t;

#define FRAME(h, s) { .used = true, .head = (h), .payload = (s), .length = sizeof(s) - 1 }
#define FILLED(h, n) { .used = true, .head = (h), .length = (n) }

/* Writes the frame to `out`, returns its size. */
static size_t client_frame(uint8_t *out, const frame_spec_t *spec)
{
    static char filler[256];
    memset(filler, 'x', sizeof filler);
    assert_true(spec->payload || spec->length <= sizeof filler);
    const uint8_t *payload = (const uint8_t *) (spec->payload ? spec->payload : filler);
    uint64_t claimed = spec->declared ? spec->declared : spec->length;
    size_t length_bytes = spec->length_bytes ? spec->length_bytes
                          : claimed < 126 ? 0 : claimed <= 0xFFFF ? 2 : 8;
    uint8_t mask_bit = spec->unmasked ? 0 : 0x80;
    size_t n = 0;
    out[n++] = spec->head;
    out[n++] = mask_bit | (length_bytes == 0 ? (uint8_t) claimed : length_bytes == 2 ? 126 : 127);
    for (size_t i = length_bytes; i > 0; i--)
        out[n++] = (uint8_t) (claimed >> (8 * (i - 1)));
    if (!spec->unmasked) {
        memcpy(out + n, s_mask, 4);
        n += 4;
    }
    for (size_t i = 0; i < spec->length; i++)
        out[n++] = payload[i] ^ (spec->unmasked ? 0 : s_mask[i % 4]);
    return n;
}

/* The frames of `specs` (up to `max_specs`), one after another, in `out`. */
static size_t build_frames(const frame_spec_t *specs, size_t max_specs, uint8_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < max_specs && specs[i].used; i++)
        n += client_frame(out + n, &specs[i]);
    return n;
}

/* Sends one masked frame, whole. */
static void peer_send(peer_t *peer, uint8_t head, const void *payload, size_t length)
{
    uint8_t frame[256];
    assert_true(length <= sizeof frame - 8);
    frame_spec_t spec = { .used = true, .head = head, .payload = payload, .length = length };
    peer_feed(peer, frame, client_frame(frame, &spec), false);
}

/* A close frame's payload: the code, then the reason. */
static size_t close_payload(uint8_t *out, uint16_t code, const char *reason)
{
    out[0] = (uint8_t) (code >> 8);
    out[1] = (uint8_t) code;
    memcpy(out + 2, reason, strlen(reason));
    return 2 + strlen(reason);
}

/* ---------------------------------------------------------------- server frames */

typedef struct {
    uint8_t opcode;
    bool fin;
    const uint8_t *payload;
    size_t length;
} frame_t;

#define MAX_FRAMES 16

/* The frames written after the 101 response, each checked: unmasked, no
 * RSV bits, complete. */
static size_t server_frames(const peer_t *peer, frame_t frames[MAX_FRAMES])
{
    const uint8_t *end = peer->output + peer->output_length;
    const uint8_t *at = memmem(peer->output, peer->output_length, "\r\n\r\n", 4);
    assert_non_null(at);
    at += 4;
    size_t count = 0;
    while (at < end) {
        assert_true(count < MAX_FRAMES);
        assert_true(end - at >= 2);
        frame_t *frame = &frames[count++];
        frame->fin = at[0] & 0x80;
        assert_int_equal(at[0] & 0x70, 0);
        frame->opcode = at[0] & 0x0F;
        assert_int_equal(at[1] & 0x80, 0);   /* a server does not mask */
        uint64_t length = at[1] & 0x7F;
        at += 2;
        size_t extra = length == 126 ? 2 : length == 127 ? 8 : 0;
        assert_true((size_t) (end - at) >= extra);
        if (extra)
            length = 0;
        for (size_t i = 0; i < extra; i++)
            length = length << 8 | *at++;
        assert_true(length <= (uint64_t) (end - at));
        frame->payload = at;
        frame->length = (size_t) length;
        at += length;
    }
    return count;
}

/* The close code the server sent: 0 when it sent no close frame, 1005 for
 * one without a code. The close frame must be the last frame, and the only one. */
static uint16_t close_code_sent(const peer_t *peer)
{
    frame_t frames[MAX_FRAMES];
    size_t count = server_frames(peer, frames);
    uint16_t code = 0;
    for (size_t i = 0; i < count; i++) {
        if (frames[i].opcode != OP_CLOSE)
            continue;
        assert_int_equal(i, count - 1);
        code = frames[i].length >= 2 ? (uint16_t) (frames[i].payload[0] << 8 | frames[i].payload[1])
                                     : 1005;
    }
    return code;
}

/* The frames sent are exactly `count` frames of `opcode` with these payloads. */
static void expect_frames(const peer_t *peer, uint8_t opcode, const char *const payloads[],
                          size_t count)
{
    frame_t frames[MAX_FRAMES];
    assert_int_equal(server_frames(peer, frames), count);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(frames[i].opcode, opcode);
        assert_true(frames[i].fin);
        assert_int_equal(frames[i].length, strlen(payloads[i]));
        assert_memory_equal(frames[i].payload, payloads[i], frames[i].length);
    }
}

/* The stream has closed with `code`: closed once, nothing more read or written. */
static void expect_closed(peer_t *peer, const char *name, uint16_t code)
{
    uint16_t sent = close_code_sent(peer);
    if (sent != code)
        fail_msg("%s: close code %u sent, expected %u", name, sent, code);
    if (peer->done_calls != 1)
        fail_msg("%s: on_done called %d times", name, peer->done_calls);
    assert_int_equal(sb_ws_stream_close_code(peer->stream), code);
    assert_false(sb_ws_stream_is_open(peer->stream));
    size_t written = peer->output_length, texts = peer->text_count;
    peer_send(peer, FIN | OP_TEXT, BYTES("late"));
    peer_send(peer, FIN | OP_PING, BYTES("late"));
    sb_ws_stream_send_text(peer->stream, BYTES("late"));
    sb_ws_stream_ping(peer->stream);
    sb_ws_stream_close(peer->stream, SB_WS_CLOSE_GOING_AWAY, "late");
    assert_int_equal(peer->output_length, written);
    assert_int_equal(peer->text_count, texts);
    assert_int_equal(peer->done_calls, 1);
}

/* ================================================================ ws_stream tests */

static void test_stream_upgrade(void **state)
{
    (void) state;
    peer_t *peer = peer_open();
    assert_int_equal(peer->http_requests, 0);
    peer_free(peer);
}

static void test_stream_text(void **state)
{
    (void) state;
    /* The RFC 6455 §5.7 example: a masked "Hello". */
    static const char hello[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    for (int bytewise = 0; bytewise <= 1; bytewise++) {
        /* The upgrade and two frames in one piece (or a byte at a time). */
        char input[sizeof s_upgrade + 2 * sizeof hello];
        size_t length = strlen(s_upgrade);
        memcpy(input, s_upgrade, length);
        memcpy(input + length, hello, sizeof hello - 1);
        length += sizeof hello - 1;
        memcpy(input + length, hello, sizeof hello - 1);
        length += sizeof hello - 1;
        peer_t *peer = peer_new(NULL);
        peer_feed(peer, input, length, bytewise);
        assert_int_equal(peer->open_calls, 1);
        assert_int_equal(peer->text_count, 2);
        assert_string_equal(peer->texts[0], "Hello");
        assert_string_equal(peer->texts[1], "Hello");
        assert_int_equal(server_frames(peer, (frame_t[MAX_FRAMES]) { 0 }), 0);
        assert_int_equal(peer->done_calls, 0);
        peer_free(peer);
    }
}

/* MQTT over WebSocket: the subprotocol must be offered and is named in
 * the 101; binary messages are taken, text is refused with 1003. */
static void test_stream_subprotocol(void **state)
{
    (void) state;
    sb_ws_stream_limits_t limits = s_limits;
    limits.subprotocol = "mqtt";
    peer_t *refused = peer_new(&limits);
    peer_feed(refused, BYTES(s_upgrade), false);
    assert_true(output_has(refused, "HTTP/1.1 400 "));
    assert_int_equal(refused->open_calls, 0);
    peer_free(refused);

    static const char offered[] = REQUEST_LINE UPGRADE_HEADERS KEY_HEADER VERSION_HEADER
        SAME_ORIGIN "Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n\r\n";
    peer_t *peer = peer_new(&limits);
    peer_feed(peer, BYTES(offered), false);
    assert_int_equal(peer->open_calls, 1);
    assert_true(output_has(peer, "Sec-WebSocket-Protocol: mqtt\r\n"));
    peer_send(peer, FIN | OP_BINARY, BYTES("\xc0\x00"));
    assert_int_equal(peer->text_count, 1);
    assert_int_equal(peer->text_lengths[0], 2);
    assert_memory_equal(peer->texts[0], "\xc0\x00", 2);
    size_t before = peer->output_length;
    sb_ws_stream_send_binary(peer->stream, "\xd0\x00", 2);
    assert_int_equal(peer->output_length, before + 4);
    assert_memory_equal(peer->output + before, "\x82\x02\xd0\x00", 4);
    peer_send(peer, FIN | OP_TEXT, BYTES("text"));
    assert_int_equal(close_code_sent(peer), SB_WS_CLOSE_UNSUPPORTED_DATA);
    peer_free(peer);
}

static void test_stream_messages(void **state)
{
    (void) state;
    peer_t *peer = peer_open();
    /* Fragmented, with a ping between the fragments. */
    peer_send(peer, OP_TEXT, BYTES("Hel"));
    peer_send(peer, FIN | OP_PING, BYTES("p1"));
    peer_send(peer, OP_CONTINUATION, BYTES(""));
    peer_send(peer, FIN | OP_CONTINUATION, BYTES("lo"));
    /* A character cut between two fragments. */
    peer_send(peer, OP_TEXT, BYTES("caf\xC3"));
    peer_send(peer, FIN | OP_CONTINUATION, BYTES("\xA9"));
    /* Empty, exactly the limit, a NUL inside. */
    peer_send(peer, FIN | OP_TEXT, BYTES(""));
    char longest[MAX_MESSAGE];
    memset(longest, 'm', sizeof longest);
    peer_send(peer, FIN | OP_TEXT, longest, sizeof longest);
    peer_send(peer, FIN | OP_TEXT, BYTES("a\0b"));
    /* A pong the server never asked for is ignored. */
    peer_send(peer, FIN | OP_PONG, BYTES("unasked"));

    assert_int_equal(peer->text_count, 5);
    assert_string_equal(peer->texts[0], "Hello");
    assert_string_equal(peer->texts[1], "caf\xC3\xA9");
    assert_int_equal(peer->text_lengths[2], 0);
    assert_int_equal(peer->text_lengths[3], MAX_MESSAGE);
    assert_memory_equal(peer->texts[3], longest, MAX_MESSAGE);
    assert_int_equal(peer->text_lengths[4], 3);
    assert_memory_equal(peer->texts[4], "a\0b", 3);
    expect_frames(peer, OP_PONG, (const char *const[]) { "p1" }, 1);
    assert_true(sb_ws_stream_is_open(peer->stream));
    assert_int_equal(peer->done_calls, 0);
    peer_free(peer);
}

static void test_stream_ping_pong(void **state)
{
    (void) state;
    char longest[126];
    memset(longest, 'p', 125);
    longest[125] = '\0';
    const char *const pings[] = { "", "hello", "\x01\x02", longest };
    peer_t *peer = peer_open();
    for (size_t i = 0; i < 4; i++)
        peer_send(peer, FIN | OP_PING, pings[i], strlen(pings[i]));
    expect_frames(peer, OP_PONG, pings, 4);
    assert_true(sb_ws_stream_is_open(peer->stream));
    peer_free(peer);
}

/* Input that breaks RFC 6455 gets the close code it prescribes, sent once;
 * nothing after it is read. Each case is fed whole, then a byte at a time. */
static void test_stream_bad_input(void **state)
{
    (void) state;
    static const struct { const char *name; frame_spec_t frames[3]; uint16_t code; } cases[] = {
        { "unmasked client frame",
          { { .used = true, .head = FIN | OP_TEXT, .payload = "hi", .length = 2, .unmasked = true } },
          1002 },
        { "RSV1 bit", { FRAME(FIN | RSV1 | OP_TEXT, "hi") }, 1002 },
        { "RSV3 bit", { FRAME(FIN | RSV3 | OP_TEXT, "hi") }, 1002 },
        { "reserved data opcode 3", { FRAME(FIN | 0x3, "") }, 1002 },
        { "reserved control opcode 0xB", { FRAME(FIN | 0xB, "") }, 1002 },
        { "fragmented ping", { FRAME(OP_PING, "hi") }, 1002 },
        { "126-byte ping", { FILLED(FIN | OP_PING, 126) }, 1002 },
        { "126-byte close", { FILLED(FIN | OP_CLOSE, 126) }, 1002 },
        { "continuation without a start", { FRAME(FIN | OP_CONTINUATION, "hi") }, 1002 },
        { "text inside a fragmented message",
          { FRAME(OP_TEXT, "a"), FRAME(FIN | OP_TEXT, "b") }, 1002 },
        { "invalid UTF-8 text", { FRAME(FIN | OP_TEXT, "ok \xC3\x28") }, 1007 },
        { "text ending inside a character", { FRAME(FIN | OP_TEXT, "ok \xE2\x82") }, 1007 },
        { "invalid UTF-8 across fragments",
          { FRAME(OP_TEXT, "ok \xC3"), FRAME(FIN | OP_CONTINUATION, "(") }, 1007 },
        { "surrogate in text", { FRAME(FIN | OP_TEXT, "\xED\xA0\x80") }, 1007 },
        { "invalid UTF-8 close reason", { FRAME(FIN | OP_CLOSE, "\x03\xE8" "bad \xFF") }, 1007 },
        { "close code 1005", { FRAME(FIN | OP_CLOSE, "\x03\xED") }, 1002 },
        { "close code 1006", { FRAME(FIN | OP_CLOSE, "\x03\xEE") }, 1002 },
        { "close code 999", { FRAME(FIN | OP_CLOSE, "\x03\xE7") }, 1002 },
        { "close code 0", { FRAME(FIN | OP_CLOSE, "\x00\x00") }, 1002 },
        { "close code 5000", { FRAME(FIN | OP_CLOSE, "\x13\x88") }, 1002 },
        { "1-byte close payload", { FRAME(FIN | OP_CLOSE, "\x03") }, 1002 },
        { "binary frame", { FRAME(FIN | OP_BINARY, "hi") }, 1003 },
        { "fragmented binary message",
          { FRAME(OP_BINARY, "h"), FRAME(FIN | OP_CONTINUATION, "i") }, 1003 },
        { "message over max_message", { FILLED(FIN | OP_TEXT, MAX_MESSAGE + 1) }, 1009 },
        { "fragmented message over max_message",
          { FILLED(OP_TEXT, 120), FILLED(FIN | OP_CONTINUATION, 81) }, 1009 },
        { "frame declaring 2^40 bytes",
          { { .used = true, .head = FIN | OP_TEXT, .length = 16, .declared = UINT64_C(1) << 40 } },
          1009 },
        { "length with the top bit set",
          { { .used = true, .head = FIN | OP_TEXT, .length = 16, .declared = UINT64_C(1) << 63 } },
          1002 },
        { "length 5 in the 16-bit form",
          { { .used = true, .head = FIN | OP_TEXT, .payload = "hello", .length = 5,
              .length_bytes = 2 } }, 1002 },
        { "length 200 in the 64-bit form",
          { { .used = true, .head = FIN | OP_TEXT, .length = 200, .length_bytes = 8 } }, 1002 },
    };
    size_t wrong = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int bytewise = 0; bytewise <= 1; bytewise++) {
            char name[128];
            snprintf(name, sizeof name, "%s%s", cases[i].name, bytewise ? ", a byte at a time" : "");
            uint8_t bytes[1024];
            size_t length = build_frames(cases[i].frames, 3, bytes);
            peer_t *peer = peer_open();
            peer_feed(peer, bytes, length, bytewise);
            /* Every wrong code is listed before the test fails. */
            uint16_t sent = close_code_sent(peer);
            if (sent != cases[i].code) {
                print_error("%s: %s %u sent, expected %u\n", name,
                            sent == 1005 ? "a close frame without a code:" : "close code", sent,
                            cases[i].code);
                wrong++;
            }
            else
                expect_closed(peer, name, cases[i].code);
            if (peer->text_count != 0)
                fail_msg("%s: %zu text messages delivered", name, peer->text_count);
            peer_free(peer);
        }
    if (wrong > 0)
        fail_msg("%zu cases got the wrong close code", wrong);
}

/* A valid close is echoed with its code. */
static void test_stream_client_closes(void **state)
{
    (void) state;
    static const struct { uint16_t code; const char *reason; } cases[] = {
        { 1000, "" }, { 1000, "bye" }, { 1001, "going away" }, { 1011, "" }, { 3000, "app" },
        { 4999, "caf\xC3\xA9" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        peer_t *peer = peer_open();
        uint8_t payload[125];
        peer_send(peer, FIN | OP_CLOSE, payload, close_payload(payload, cases[i].code,
                                                               cases[i].reason));
        char name[32];
        snprintf(name, sizeof name, "close %u", cases[i].code);
        expect_closed(peer, name, cases[i].code);
        peer_free(peer);
    }

    /* A close without a code is answered with one without a code. */
    peer_t *peer = peer_open();
    peer_send(peer, FIN | OP_CLOSE, BYTES(""));
    frame_t frames[MAX_FRAMES];
    assert_int_equal(server_frames(peer, frames), 1);
    assert_int_equal(frames[0].opcode, OP_CLOSE);
    assert_int_equal(frames[0].length, 0);
    assert_int_equal(peer->done_calls, 1);
    peer_free(peer);

    /* A message before the close, in the same piece, is delivered first. */
    peer = peer_open();
    uint8_t bytes[64];
    static const frame_spec_t text_then_close[] = {
        FRAME(FIN | OP_TEXT, "last"), FRAME(FIN | OP_CLOSE, "\x03\xE8"),
    };
    size_t length = build_frames(text_then_close, 2, bytes);
    peer_feed(peer, bytes, length, false);
    assert_int_equal(peer->text_count, 1);
    assert_string_equal(peer->texts[0], "last");
    expect_closed(peer, "text then close", 1000);
    peer_free(peer);
}

static void test_stream_server_sends(void **state)
{
    (void) state;
    peer_t *peer = peer_open();
    char longer[300];
    memset(longer, 'l', sizeof longer);
    sb_ws_stream_send_text(peer->stream, BYTES("{\"event\":\"$welcome\"}"));
    sb_ws_stream_send_text(peer->stream, longer, sizeof longer);
    sb_ws_stream_ping(peer->stream);
    sb_ws_stream_close(peer->stream, SB_WS_CLOSE_GOING_AWAY, "shutting down");

    frame_t frames[MAX_FRAMES];
    assert_int_equal(server_frames(peer, frames), 4);
    assert_int_equal(frames[0].opcode, OP_TEXT);
    assert_true(frames[0].fin);
    assert_int_equal(frames[0].length, 20);
    assert_memory_equal(frames[0].payload, "{\"event\":\"$welcome\"}", 20);
    assert_int_equal(frames[1].opcode, OP_TEXT);
    assert_int_equal(frames[1].length, sizeof longer);
    assert_memory_equal(frames[1].payload, longer, sizeof longer);
    assert_int_equal(frames[2].opcode, OP_PING);
    assert_int_equal(frames[3].opcode, OP_CLOSE);
    assert_int_equal(frames[3].length, 2 + strlen("shutting down"));
    assert_memory_equal(frames[3].payload + 2, "shutting down", strlen("shutting down"));
    expect_closed(peer, "server close", SB_WS_CLOSE_GOING_AWAY);

    /* The client's answer to the close is not read any more. */
    uint8_t payload[2];
    peer_send(peer, FIN | OP_CLOSE, payload, close_payload(payload, 1001, ""));
    assert_int_equal(peer->done_calls, 1);
    peer_free(peer);
}

/* Frames encoded once for many clients (an event's) go out as they are,
 * in order with what wslay answers (a pong), between frames the client sends. */
static void test_stream_encoded_frames(void **state)
{
    (void) state;
    uint8_t header[SB_WS_FRAME_HEADER_MAX];
    assert_int_equal(sb_ws_frame_header(header, OP_TEXT, 125), 2);
    assert_int_equal(header[1], 125);
    assert_int_equal(sb_ws_frame_header(header, OP_TEXT, 126), 4);
    assert_int_equal(header[1], 126);
    assert_int_equal(header[2] << 8 | header[3], 126);
    assert_int_equal(sb_ws_frame_header(header, OP_TEXT, 65536), 10);
    assert_int_equal(header[1], 127);
    assert_int_equal(header[7], 1);   /* 65536 = 0x0000000000010000 */
    assert_int_equal(header[0], 0x80 | OP_TEXT);

    peer_t *peer = peer_open();
    uint8_t frame[64];
    size_t used = sb_ws_frame_header(frame, OP_TEXT, 5);
    memcpy(frame + used, "event", 5);
    sb_ws_stream_send_frame(peer->stream, frame, used + 5);
    peer_send(peer, FIN | OP_PING, BYTES("p"));
    sb_ws_stream_send_frame(peer->stream, frame, used + 5);
    peer_send(peer, OP_TEXT, BYTES("ha"));   /* a message in two feeds */
    sb_ws_stream_send_frame(peer->stream, frame, used + 5);
    peer_send(peer, FIN | OP_CONTINUATION, BYTES("lf"));

    frame_t frames[MAX_FRAMES];
    assert_int_equal(server_frames(peer, frames), 4);
    assert_int_equal(frames[0].opcode, OP_TEXT);
    assert_memory_equal(frames[0].payload, "event", 5);
    assert_int_equal(frames[1].opcode, OP_PONG);
    assert_int_equal(frames[2].opcode, OP_TEXT);
    assert_int_equal(frames[3].opcode, OP_TEXT);
    assert_int_equal(peer->text_count, 1);
    assert_string_equal(peer->texts[0], "half");
    peer_free(peer);
}

/* A plain GET or HEAD goes to the owner, who answers it; then the stream is done. */
static void test_stream_plain_http(void **state)
{
    (void) state;
    static const char *const requests[] = {
        "GET /metrics?format=text HTTP/1.1\r\nHost: hub.local:8080\r\n\r\n",
        "HEAD /metrics HTTP/1.1\r\nHost: hub.local:8080\r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++)
        for (int bytewise = 0; bytewise <= 1; bytewise++) {
            peer_t *peer = peer_new(NULL);
            peer_feed(peer, requests[i], strlen(requests[i]), bytewise);
            assert_int_equal(peer->http_requests, 1);
            assert_string_equal(peer->method, i == 0 ? "GET" : "HEAD");
            assert_string_equal(peer->path, "/metrics");
            assert_int_equal(peer->open_calls, 0);
            assert_int_equal(peer->done_calls, 1);
            static const char start[] = "HTTP/1.1 200 OK\r\n";
            assert_memory_equal(peer->output, start, sizeof start - 1);
            assert_true(output_has(peer, "\r\nContent-Length: 6\r\n"));
            assert_true(output_has(peer, "\r\nConnection: close\r\n"));
            /* HEAD: the same head, no body. */
            const char *end = i == 0 ? "\r\n\r\nhello\n" : "no-store\r\nConnection: close\r\n\r\n";
            assert_memory_equal(peer->output + peer->output_length - strlen(end), end, strlen(end));
            size_t written = peer->output_length;
            peer_feed(peer, BYTES(s_upgrade), false);
            assert_int_equal(peer->output_length, written);
            assert_int_equal(peer->http_requests, 1);
            peer_free(peer);
        }

    /* Answered later: input in between is ignored. */
    peer_t *peer = peer_new(NULL);
    peer->defer_response = true;
    peer_feed(peer, BYTES("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /again HTTP/1.1\r\n\r\n"), false);
    peer_feed(peer, BYTES(s_upgrade), false);
    assert_int_equal(peer->http_requests, 1);
    assert_string_equal(peer->path, "/");
    assert_int_equal(peer->output_length, 0);
    assert_int_equal(peer->done_calls, 0);
    sb_ws_stream_respond(peer->stream, 404, "text/plain", "no\n", 3);
    assert_int_equal(peer->done_calls, 1);
    static const char start[] = "HTTP/1.1 404 Not Found\r\n";
    assert_memory_equal(peer->output, start, sizeof start - 1);
    size_t written = peer->output_length;
    sb_ws_stream_respond(peer->stream, 200, "text/plain", "twice\n", 6);
    assert_int_equal(peer->output_length, written);
    peer_free(peer);

    /* Closed before the upgrade: it just ends. */
    peer = peer_new(NULL);
    peer_feed(peer, BYTES("GET / HT"), false);
    sb_ws_stream_close(peer->stream, SB_WS_CLOSE_GOING_AWAY, "timeout");
    assert_int_equal(peer->done_calls, 1);
    assert_int_equal(peer->output_length, 0);
    sb_ws_stream_close(peer->stream, SB_WS_CLOSE_GOING_AWAY, "timeout");
    assert_int_equal(peer->done_calls, 1);
    peer_free(peer);
}

/* Requests the stream refuses itself, with an HTTP status. */
static void test_stream_refusals(void **state)
{
    (void) state;
    static const struct {
        const char *name, *request;
        const char *allowed_origins;   /* NULL: "self" */
        size_t max_head;               /* 0: 1024 */
        bool refuse_open;
        int status;
        const char *header;            /* one the response must have, or NULL */
    } cases[] = {
        { "POST without Upgrade",
          "POST /api HTTP/1.1\r\nHost: hub.local:8080\r\nContent-Length: 0\r\n\r\n", NULL, 0,
          false, 405, "Allow: GET" },
        { "garbage", "hello there\r\n\r\n", NULL, 0, false, 400, NULL },
        { "a TLS client hello", "\x16\x03\x01\x02\x03", NULL, 0, false, 400, NULL },
        { "head over max_head", s_upgrade, NULL, 64, false, 431, NULL },
        { "no room for another client", s_upgrade, NULL, 0, true, 503, NULL },
        { "Origin not allowed",
          REQUEST_LINE UPGRADE_HEADERS KEY_HEADER VERSION_HEADER "Origin: http://evil.example\r\n\r\n",
          NULL, 0, false, 403, NULL },
        { "Origin not in the list", s_upgrade, "http://app.example", 0, false, 403, NULL },
        { "version 8",
          REQUEST_LINE UPGRADE_HEADERS KEY_HEADER "Sec-WebSocket-Version: 8\r\n" SAME_ORIGIN "\r\n",
          NULL, 0, false, 426, "Sec-WebSocket-Version: 13" },
        { "bad key",
          REQUEST_LINE UPGRADE_HEADERS "Sec-WebSocket-Key: short\r\n" VERSION_HEADER "\r\n",
          NULL, 0, false, 400, NULL },
        /* DNS rebinding: Host and Origin agree, but the Host is not one of ours. */
        { "upgrade for another Host",
          "GET / HTTP/1.1\r\nHost: evil.example:8080\r\n" UPGRADE_HEADERS KEY_HEADER VERSION_HEADER
          "Origin: http://evil.example:8080\r\n\r\n", NULL, 0, false, 421, NULL },
        { "page for another Host", "GET / HTTP/1.1\r\nHost: evil.example:8080\r\n\r\n", NULL, 0,
          false, 421, NULL },
        { "metrics for another Host", "GET /metrics HTTP/1.1\r\nHost: evil.example\r\n\r\n",
          NULL, 0, false, 421, NULL },
        { "no Host", "GET / HTTP/1.1\r\n\r\n", NULL, 0, false, 421, NULL },
        { "HTTP/1.0 without Host", "GET /metrics HTTP/1.0\r\n\r\n", NULL, 0, false, 421, NULL },
        { "POST for another Host", "POST / HTTP/1.1\r\nHost: evil.example\r\n\r\n", NULL, 0,
          false, 421, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_ws_stream_limits_t limits = s_limits;
        if (cases[i].allowed_origins)
            limits.allowed_origins = cases[i].allowed_origins;
        if (cases[i].max_head)
            limits.max_head = cases[i].max_head;
        peer_t *peer = peer_new(&limits);
        peer->refuse_open = cases[i].refuse_open;
        peer_feed(peer, cases[i].request, strlen(cases[i].request), false);

        char start[32];
        snprintf(start, sizeof start, "HTTP/1.1 %d ", cases[i].status);
        if (peer->output_length < strlen(start)
            || memcmp(peer->output, start, strlen(start)) != 0)
            fail_msg("%s: the response is not '%s...': '%.*s'", cases[i].name, start,
                     (int) (peer->output_length < 40 ? peer->output_length : 40), peer->output);
        if (peer->done_calls != 1)
            fail_msg("%s: on_done called %d times", cases[i].name, peer->done_calls);
        assert_int_equal(peer->open_calls, 0);
        assert_int_equal(peer->http_requests, 0);
        assert_false(sb_ws_stream_is_open(peer->stream));
        assert_int_equal(peer->misdirected_calls, cases[i].status == 421);
        assert_true(output_has(peer, "\r\nConnection: close\r\n"));
        if (cases[i].header)
            assert_true(output_has(peer, cases[i].header));
        /* Content-Length is the body's length. */
        const uint8_t *body = memmem(peer->output, peer->output_length, "\r\n\r\n", 4);
        const uint8_t *field = memmem(peer->output, peer->output_length, "Content-Length: ", 16);
        assert_non_null(body);
        assert_non_null(field);
        body += 4;
        assert_int_equal(strtoul((const char *) field + 16, NULL, 10),
                         peer->output + peer->output_length - body);

        size_t written = peer->output_length;
        peer_feed(peer, BYTES(s_upgrade), false);
        assert_int_equal(peer->output_length, written);
        peer_free(peer);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_validation),
        cmocka_unit_test(test_utf8_repair),
        cmocka_unit_test(test_http_fields),
        cmocka_unit_test(test_http_path_without_query),
        cmocka_unit_test(test_http_fed_in_pieces),
        cmocka_unit_test(test_http_fed_byte_by_byte),
        cmocka_unit_test(test_http_bad),
        cmocka_unit_test(test_http_too_large),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_handshake_check),
        cmocka_unit_test(test_origin_rules),
        cmocka_unit_test(test_host_rules),
        cmocka_unit_test(test_host_allow_list),
        cmocka_unit_test(test_json_decode),
        cmocka_unit_test(test_json_decode_edges),
        cmocka_unit_test(test_json_reply),
        cmocka_unit_test(test_json_event),
        cmocka_unit_test(test_json_message_and_welcome),
        cmocka_unit_test(test_stream_upgrade),
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_subprotocol),
        cmocka_unit_test(test_stream_messages),
        cmocka_unit_test(test_stream_ping_pong),
        cmocka_unit_test(test_stream_bad_input),
        cmocka_unit_test(test_stream_client_closes),
        cmocka_unit_test(test_stream_server_sends),
        cmocka_unit_test(test_stream_encoded_frames),
        cmocka_unit_test(test_stream_plain_http),
        cmocka_unit_test(test_stream_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
