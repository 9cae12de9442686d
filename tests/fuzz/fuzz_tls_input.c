/* fuzz_tls_input.c — libFuzzer target for what a client sends the TLS
 * listener before (and instead of) a real handshake: the gateways' server
 * session (gateways/tls.c) fed in chunks whose size the input chooses.
 *
 * Input: byte 0 is the chunk size; the rest is the client's bytes. Checks:
 * a failed or closed session stays so, no plaintext comes out before the
 * handshake, and writing is refused until it is done. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "test_cert.h"
#include "tls.h"

#define CHECK(cond) \
    do { \
        if (!(cond)) \
            abort(); \
    } while (0)

static sb_tls_context_t *s_context;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    char cert[64], key[64];
    snprintf(cert, sizeof cert, "/tmp/sb-fuzz-tls-%d.crt", (int) getpid());
    snprintf(key, sizeof key, "/tmp/sb-fuzz-tls-%d.key", (int) getpid());
    sb_log_init("fuzz_tls_input", SB_LOG_ERROR);
    CHECK(sb_test_cert_write(cert, key, "fuzz"));
    s_context = sb_tls_context_new(cert, key);
    unlink(cert);
    unlink(key);
    CHECK(s_context);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = data[0] ? data[0] : 1;
    sb_tls_session_t *session = sb_tls_session_new(s_context, "fuzz:1");
    sb_tls_state_t state = SB_TLS_HANDSHAKE;
    for (size_t at = 1; at < size; at += chunk) {
        size_t length = size - at < chunk ? size - at : chunk;
        sb_tls_state_t before = state;
        state = sb_tls_session_feed(session, data + at, length);
        CHECK(before != SB_TLS_FAILED || state == SB_TLS_FAILED);
        char plaintext[256];
        if (state != SB_TLS_READY)
            CHECK(sb_tls_session_read(session, plaintext, sizeof plaintext) == 0);
        if (state == SB_TLS_HANDSHAKE)
            CHECK(!sb_tls_session_write(session, "x", 1));
        size_t output;
        free(sb_tls_session_take_output(session, &output));
    }
    sb_tls_session_expire(session);
    CHECK(sb_tls_session_state(session) != SB_TLS_HANDSHAKE);
    sb_tls_session_destroy(&session);
    return 0;
}
