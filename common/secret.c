/* secret.c — SHA-256 of token secrets (see secret.h). */
#include "secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "hex.h"

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
    sb_hex_encode(digest, SB_SECRET_DIGEST_SIZE, hex);
    return true;
}

bool sb_secret_parse_hex(const char *hex, uint8_t digest[SB_SECRET_DIGEST_SIZE])
{
    return strlen(hex) == 2 * SB_SECRET_DIGEST_SIZE
           && sb_hex_decode(hex, SB_SECRET_DIGEST_SIZE, digest);
}

bool sb_secret_digests_equal(const uint8_t a[SB_SECRET_DIGEST_SIZE],
                             const uint8_t b[SB_SECRET_DIGEST_SIZE])
{
    return CRYPTO_memcmp(a, b, SB_SECRET_DIGEST_SIZE) == 0;
}
