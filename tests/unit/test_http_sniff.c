/* test_http_sniff.c — which lines the TCP gateway takes for a browser's
 * HTTP (gateways/http_sniff.c): request lines and Host/Origin headers, and
 * no line the line protocol itself might send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "http_sniff.h"

static bool sniff(const char *line)
{
    return sb_http_sniff_line(line, strlen(line));
}

static void test_http_lines_are_caught(void **state)
{
    (void) state;
    assert_true(sniff("POST / HTTP/1.1"));
    assert_true(sniff("GET /index.html?x=1 HTTP/1.0"));
    assert_true(sniff("OPTIONS * HTTP/1.1"));
    assert_true(sniff("Host: 127.0.0.1:7000"));
    assert_true(sniff("host:evil.example"));
    assert_true(sniff("ORIGIN: http://evil.example"));
    assert_true(sniff("Origin:"));
}

static void test_protocol_lines_pass(void **state)
{
    (void) state;
    static const char *const lines[] = {
        "echo POST / HTTP/1.1",    /* a command whose words look like it */
        "pub web/x HTTP/1.1",      /* lowercase: a command, not a method */
        "POST / HTTP/2",           /* not HTTP/1.x */
        "POST / HTTP/1.1 extra",
        "POST  HTTP/1.1",          /* no target */
        "POST / HTTP/1.12",
        "POST/ HTTP/1.1",
        "Hostname: x",
        "echo Host: x",
        "GET",
        "",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        assert_false(sniff(lines[i]));
}

/* The length is what counts, not a NUL: the line is not NUL-terminated. */
static void test_length_bounds_the_line(void **state)
{
    (void) state;
    assert_true(sb_http_sniff_line("POST / HTTP/1.1 and more", 15));
    assert_false(sb_http_sniff_line("POST / HTTP/1.1", 14));
    assert_false(sb_http_sniff_line("Host:", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_lines_are_caught),
        cmocka_unit_test(test_protocol_lines_pass),
        cmocka_unit_test(test_length_bounds_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
