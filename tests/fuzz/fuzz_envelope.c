/* fuzz_envelope.c — libFuzzer target for the envelope decoder.
 *
 * Whatever the bytes, decoding must fail cleanly or succeed; a success must
 * re-encode (the encoder never emits more than the decoder accepted) and
 * decode again to the same envelope. Any difference aborts, so the fuzzer
 * checks the codec's consistency as well as its memory safety. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

static void check(int condition)
{
    if (!condition)
        abort();
}

static void check_same_str(const char *a, const char *b)
{
    check((a == NULL) == (b == NULL));
    check(a == NULL || strcmp(a, b) == 0);
}

static void check_same(const sb_envelope_t *a, const sb_envelope_t *b)
{
    check(a->type == b->type);
    check(a->id == b->id);
    check_same_str(a->service, b->service);
    check_same_str(a->command, b->command);
    check(a->argc == b->argc);
    for (size_t i = 0; i < a->argc; i++)
        check_same_str(a->argv[i], b->argv[i]);
    check_same_str(a->client, b->client);
    check(a->timeout_ms == b->timeout_ms);
    /* "ok" is only encoded for replies. */
    check(a->type != SB_ENVELOPE_REPLY || a->ok == b->ok);
    check_same_str(a->code, b->code);
    check_same_str(a->text, b->text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *err = NULL;
    sb_envelope_t *env = sb_envelope_decode(data, size, &err);
    if (!env) {
        check(err != NULL);
        return 0;
    }
    check(err == NULL);
    check(sb_envelope_type_name(env->type) != NULL);

    size_t encoded_size = 0;
    uint8_t *encoded = sb_envelope_encode(env, &encoded_size);
    check(encoded != NULL);

    sb_envelope_t *again = sb_envelope_decode(encoded, encoded_size, &err);
    check(again != NULL);
    check_same(env, again);

    free(encoded);
    sb_envelope_destroy(&again);
    sb_envelope_destroy(&env);
    check(env == NULL);
    return 0;
}
