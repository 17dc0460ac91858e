/* Unit tests for hmac: known-answer vectors and the comparison. */
#include "hmac.h"

#include "check.h"

int main(void) {
        char hex[HMAC_HEX_LEN + 1];

        /* GitHub's "Validating webhook deliveries" example: secret and payload below give
         * this signature. */
        CHECK(hmac_sha256_hex("It's a Secret to Everybody", 26, "Hello, World!", 13, hex) == 0);
        CHECK_STR(hex, "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
        /* RFC 4231 test case 2. */
        CHECK(hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex) == 0);
        CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        /* FIPS 180-2: SHA-256("abc"), and of the empty string. */
        CHECK(sha256_hex("abc", 3, hex) == 0);
        CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        CHECK(sha256_hex("", 0, hex) == 0);
        CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

        CHECK(secret_equal("abc", 3, "abc", 3));
        CHECK(!secret_equal("abc", 3, "abd", 3));
        CHECK(!secret_equal("abc", 3, "abcd", 4));
        CHECK(secret_equal("", 0, "", 0));
        return check_summary();
}
