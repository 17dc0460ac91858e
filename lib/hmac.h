/* hmac: HMAC-SHA256 and SHA-256 in hex, and secret comparison, on OpenSSL's libcrypto. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define HMAC_HEX_LEN 64  /* hex digits of a SHA-256 digest */

/* Writes the lower-case hex HMAC-SHA256 of data under key into ret_hex (65 bytes with NUL).
 * Returns 0 or -EIO. Thread-safe. */
int hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                    char ret_hex[HMAC_HEX_LEN + 1]) __attribute__((warn_unused_result));

/* Writes the lower-case hex SHA-256 of data into ret_hex. Returns 0 or -EIO. Thread-safe. */
int sha256_hex(const void *data, size_t len, char ret_hex[HMAC_HEX_LEN + 1])
        __attribute__((warn_unused_result));

/* Compares a and b in time that depends only on their lengths. */
bool secret_equal(const char *a, size_t a_len, const char *b, size_t b_len);
