/* secret.c — SHA-256 of token secrets (see secret.h). */
#include "secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

bool sb_secret_digest(const char *secret, size_t length, uint8_t digest[SB_SECRET_DIGEST_SIZE])
{
    unsigned int size = 0;
    return EVP_Digest(secret, length, digest, &size, EVP_sha256(), NULL) == 1
           && size == SB_SECRET_DIGEST_SIZE;
}

bool sb_secret_hash_hex(const char *secret, size_t length, char hex[SB_SECRET_HEX_SIZE])
{
    uint8_t digest[SB_SECRET_DIGEST_SIZE];
    if (!sb_secret_digest(secret, length, digest))
        return false;
    for (size_t i = 0; i < SB_SECRET_DIGEST_SIZE; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool sb_secret_parse_hex(const char *hex, uint8_t digest[SB_SECRET_DIGEST_SIZE])
{
    if (strlen(hex) != 2 * SB_SECRET_DIGEST_SIZE)
        return false;
    for (size_t i = 0; i < SB_SECRET_DIGEST_SIZE; i++) {
        int high = hex_value(hex[2 * i]), low = hex_value(hex[2 * i + 1]);
        if (high < 0 || low < 0)
            return false;
        digest[i] = (uint8_t) (high << 4 | low);
    }
    return true;
}

bool sb_secret_digests_equal(const uint8_t a[SB_SECRET_DIGEST_SIZE],
                             const uint8_t b[SB_SECRET_DIGEST_SIZE])
{
    return CRYPTO_memcmp(a, b, SB_SECRET_DIGEST_SIZE) == 0;
}
