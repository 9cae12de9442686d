/* test_tls.c — the gateways' TLS session (gateways/tls.c) in memory: an
 * OpenSSL client in the test talks to the module's server session, bytes
 * passed by hand. The certificate is made at test time (tests/support). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "test_cert.h"
#include "tls.h"

typedef struct {
    char cert_path[64], key_path[64];
    sb_tls_context_t *context;
    SSL_CTX *client_ctx;
} fixture_t;

static void write_cert(const char *cert_path, const char *key_path, const char *name)
{
    assert_true(sb_test_cert_write(cert_path, key_path, name));
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    strcpy(f->cert_path, "/tmp/sb-test-tls-XXXXXX");
    int fd = mkstemp(f->cert_path);
    close(fd);
    snprintf(f->key_path, sizeof f->key_path, "%s.key", f->cert_path);
    write_cert(f->cert_path, f->key_path, "first");
    f->context = sb_tls_context_new(f->cert_path, f->key_path);
    assert_non_null(f->context);
    f->client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(f->client_ctx, SSL_VERIFY_NONE, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    sb_tls_context_destroy(&f->context);
    SSL_CTX_free(f->client_ctx);
    unlink(f->cert_path);
    unlink(f->key_path);
    free(f);
    return 0;
}

/* A client SSL on memory BIOs. */
static SSL *new_client(SSL_CTX *ctx)
{
    SSL *client = SSL_new(ctx);
    SSL_set_bio(client, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    BIO_set_mem_eof_return(SSL_get_rbio(client), -1);
    SSL_set_connect_state(client);
    return client;
}

/* Moves what each side has for the other, once each way. */
static void pump(SSL *client, sb_tls_session_t *server)
{
    char buffer[16384];
    int length;
    while ((length = BIO_read(SSL_get_wbio(client), buffer, sizeof buffer)) > 0)
        sb_tls_session_feed(server, buffer, (size_t) length);
    size_t size;
    char *output = sb_tls_session_take_output(server, &size);
    if (output)
        BIO_write(SSL_get_rbio(client), output, (int) size);
    free(output);
}

/* Runs the handshake; true when both sides are done. */
static bool handshake(SSL *client, sb_tls_session_t *server)
{
    for (int round = 0; round < 10; round++) {
        int done = SSL_do_handshake(client);
        pump(client, server);
        if (done == 1 && sb_tls_session_state(server) == SB_TLS_READY)
            return true;
        if (sb_tls_session_state(server) == SB_TLS_FAILED)
            return false;
    }
    return false;
}

static void test_handshake_then_plaintext_both_ways(void **state)
{
    fixture_t *f = *state;
    sb_tls_session_t *server = sb_tls_session_new(f->context, "test:1");
    SSL *client = new_client(f->client_ctx);
    assert_false(sb_tls_session_write(server, "early", 5));   /* not before the handshake */
    assert_true(handshake(client, server));
    assert_string_equal(sb_tls_session_version(server), "TLSv1.3");
    assert_int_equal(sb_tls_context_counters(f->context)->handshakes, 1);

    /* Half a record gives nothing yet; the rest gives its plaintext. */
    char text[64] = { 0 }, record[256];
    assert_int_equal(SSL_write(client, "half", 4), 4);
    int length = BIO_read(SSL_get_wbio(client), record, sizeof record);
    assert_true(length > 4);
    assert_int_equal(sb_tls_session_feed(server, record, 3), SB_TLS_READY);
    assert_int_equal(sb_tls_session_read(server, text, sizeof text), 0);
    assert_int_equal(sb_tls_session_feed(server, record + 3, (size_t) length - 3), SB_TLS_READY);
    assert_int_equal(sb_tls_session_read(server, text, sizeof text), 4);
    assert_memory_equal(text, "half", 4);

    assert_int_equal(SSL_write(client, "ping\nstats\n", 11), 11);
    pump(client, server);
    memset(text, 0, sizeof text);
    assert_int_equal(sb_tls_session_read(server, text, 5), 5);   /* a small buffer: the rest waits */
    assert_string_equal(text, "ping\n");
    assert_int_equal(sb_tls_session_read(server, text, sizeof text), 6);
    assert_memory_equal(text, "stats\n", 6);
    assert_int_equal(sb_tls_session_read(server, text, sizeof text), 0);

    assert_true(sb_tls_session_write(server, "OK pong\n", 8));
    assert_true(sb_tls_session_has_output(server));
    pump(client, server);
    memset(text, 0, sizeof text);
    assert_int_equal(SSL_read(client, text, sizeof text), 8);
    assert_string_equal(text, "OK pong\n");

    SSL_shutdown(client);   /* the client's close_notify: CLOSED, like EOF */
    pump(client, server);
    assert_int_equal(sb_tls_session_read(server, text, sizeof text), 0);
    assert_int_equal(sb_tls_session_state(server), SB_TLS_CLOSED);
    assert_true(sb_tls_session_write(server, "OK bye\n", 7));   /* our side still answers */
    sb_tls_session_close(server);
    pump(client, server);
    assert_int_equal(SSL_read(client, text, sizeof text), 7);
    assert_int_equal(SSL_read(client, text, sizeof text), 0);
    assert_int_equal(SSL_get_error(client, 0), SSL_ERROR_ZERO_RETURN);
    assert_int_equal(sb_tls_context_counters(f->context)->failed, 0);
    SSL_free(client);
    sb_tls_session_destroy(&server);
    assert_null(server);
}

static void test_plain_text_and_garbage_fail_once(void **state)
{
    fixture_t *f = *state;
    /* A plain request line, HTTP, and a ClientHello of one byte in a well-formed record. */
    static const struct { const char *bytes; size_t length; } inputs[] = {
        { "ping\n", 5 }, { "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27 },
        { "\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff", 10 },
    };
    for (size_t i = 0; i < 3; i++) {
        sb_tls_session_t *server = sb_tls_session_new(f->context, "test:2");
        assert_int_equal(sb_tls_session_feed(server, inputs[i].bytes, inputs[i].length),
                         SB_TLS_FAILED);
        size_t length;
        free(sb_tls_session_take_output(server, &length));   /* an alert, maybe */
        /* Failed stays failed: more bytes are not looked at, nothing reads or writes. */
        assert_int_equal(sb_tls_session_feed(server, "more", 4), SB_TLS_FAILED);
        char text[8];
        assert_int_equal(sb_tls_session_read(server, text, sizeof text), 0);
        assert_false(sb_tls_session_write(server, "x", 1));
        sb_tls_session_destroy(&server);
    }
    assert_int_equal(sb_tls_context_counters(f->context)->failed, 3);
    assert_int_equal(sb_tls_context_counters(f->context)->handshakes, 0);
}

static void test_tls_1_1_is_refused(void **state)
{
    fixture_t *f = *state;
    SSL_CTX_set_security_level(f->client_ctx, 0);
    SSL_CTX_set_min_proto_version(f->client_ctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(f->client_ctx, TLS1_1_VERSION);
    SSL_CTX_set_cipher_list(f->client_ctx, "DEFAULT:@SECLEVEL=0");
    sb_tls_session_t *server = sb_tls_session_new(f->context, "test:3");
    SSL *client = new_client(f->client_ctx);
    assert_false(handshake(client, server));
    assert_int_equal(sb_tls_session_state(server), SB_TLS_FAILED);
    assert_int_equal(sb_tls_context_counters(f->context)->failed, 1);
    SSL_free(client);
    sb_tls_session_destroy(&server);
}

static void test_a_late_handshake_expires(void **state)
{
    fixture_t *f = *state;
    sb_tls_session_t *late = sb_tls_session_new(f->context, "test:4");
    sb_tls_session_expire(late);
    assert_int_equal(sb_tls_session_state(late), SB_TLS_FAILED);
    sb_tls_session_expire(late);   /* counted once */
    sb_tls_session_t *done = sb_tls_session_new(f->context, "test:5");
    SSL *client = new_client(f->client_ctx);
    assert_true(handshake(client, done));
    sb_tls_session_expire(done);   /* a finished handshake does not expire */
    assert_int_equal(sb_tls_session_state(done), SB_TLS_READY);
    const sb_tls_counters_t *counters = sb_tls_context_counters(f->context);
    assert_int_equal(counters->timeouts, 1);
    assert_int_equal(counters->failed, 0);
    SSL_free(client);
    sb_tls_session_destroy(&late);
    sb_tls_session_destroy(&done);
}

/* The common name of the certificate a new session is served. */
static void served_name(fixture_t *f, char *name, size_t size)
{
    sb_tls_session_t *server = sb_tls_session_new(f->context, "test:6");
    SSL *client = new_client(f->client_ctx);
    assert_true(handshake(client, server));
    X509 *cert = SSL_get1_peer_certificate(client);
    assert_non_null(cert);
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, (int) size);
    X509_free(cert);
    SSL_free(client);
    sb_tls_session_destroy(&server);
}

static void test_reload_takes_new_files_and_keeps_the_old_on_error(void **state)
{
    fixture_t *f = *state;
    char name[64];
    sb_tls_session_t *open = sb_tls_session_new(f->context, "test:7");   /* begun before */
    write_cert(f->cert_path, f->key_path, "second");
    assert_true(sb_tls_context_reload(f->context));
    served_name(f, name, sizeof name);
    assert_string_equal(name, "second");
    SSL *client = new_client(f->client_ctx);
    assert_true(handshake(client, open));   /* the older session still works */
    SSL_free(client);
    sb_tls_session_destroy(&open);

    FILE *out = fopen(f->cert_path, "w");
    fputs("not a certificate\n", out);
    fclose(out);
    assert_false(sb_tls_context_reload(f->context));
    served_name(f, name, sizeof name);
    assert_string_equal(name, "second");

    write_cert(f->cert_path, f->key_path, "third");
    char other_key[80];
    snprintf(other_key, sizeof other_key, "%s.other", f->key_path);
    write_cert(f->cert_path, other_key, "fourth");   /* its key is not f->key_path */
    assert_false(sb_tls_context_reload(f->context));
    unlink(other_key);
    served_name(f, name, sizeof name);
    assert_string_equal(name, "second");
}

static void test_missing_files_give_no_context(void **state)
{
    fixture_t *f = *state;
    assert_null(sb_tls_context_new("/nonexistent/cert.pem", f->key_path));
    assert_null(sb_tls_context_new(f->cert_path, "/nonexistent/key.pem"));
}

int main(void)
{
    sb_log_init("test_tls", SB_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_then_plaintext_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_text_and_garbage_fail_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_1_1_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_late_handshake_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_takes_new_files_and_keeps_the_old_on_error,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_files_give_no_context, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
