/* hmac: HMAC-SHA256 and SHA-256 in hex, and secret comparison, on OpenSSL's libcrypto. */
#include "hmac.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static void to_hex(const unsigned char *md, unsigned n, char *hex) {
        static const char digits[] = "0123456789abcdef";

        for (unsigned i = 0; i < n; i++) {
                hex[2 * i] = digits[md[i] >> 4];
                hex[2 * i + 1] = digits[md[i] & 15];
        }
        hex[2 * n] = '\0';
}

int hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                    char ret_hex[HMAC_HEX_LEN + 1]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (key_len > INT32_MAX)
                return -EINVAL;
        if (!HMAC(EVP_sha256(), key, (int) key_len, data, len, md, &n) || n != 32)
                return -EIO;
        to_hex(md, n, ret_hex);
        return 0;
}

int sha256_hex(const void *data, size_t len, char ret_hex[HMAC_HEX_LEN + 1]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
                return -EIO;
        to_hex(md, n, ret_hex);
        return 0;
}

bool secret_equal(const char *a, size_t a_len, const char *b, size_t b_len) {
        /* The lengths of our digests and tokens are not secret; their bytes are. */
        if (a_len != b_len)
                return false;
        return CRYPTO_memcmp(a, b, a_len) == 0;
}
