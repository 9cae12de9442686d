/* secret.h — the one hash of a token's secret (OpenSSL 3 EVP SHA-256),
 * used by the gateways' access rules and by `switchboard hash-secret`, so
 * both always agree on what a `secret_sha256` value is. */
#ifndef SB_SECRET_H
#define SB_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_SECRET_DIGEST_SIZE 32
#define SB_SECRET_HEX_SIZE    (2 * SB_SECRET_DIGEST_SIZE + 1)   /* with its NUL */

/* SHA-256 of `length` bytes of `secret`; false only if OpenSSL fails. */
bool sb_secret_digest(const char *secret, size_t length, uint8_t digest[SB_SECRET_DIGEST_SIZE]);

/* The same, as 64 lowercase hex digits. */
bool sb_secret_hash_hex(const char *secret, size_t length, char hex[SB_SECRET_HEX_SIZE]);

/* 64 hex digits (either case) into a digest; false when `hex` is anything else. */
bool sb_secret_parse_hex(const char *hex, uint8_t digest[SB_SECRET_DIGEST_SIZE]);

/* Whether two digests are equal, in time that does not depend on where they differ. */
bool sb_secret_digests_equal(const uint8_t a[SB_SECRET_DIGEST_SIZE],
                             const uint8_t b[SB_SECRET_DIGEST_SIZE]);

#endif
