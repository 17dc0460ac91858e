/* Unit tests for error: error_set's return and fields, and a message cut at its size
 * never ends inside a UTF-8 character. */
#include "error.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "check.h"

static bool valid_utf8(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                size_t n = *p < 0x80 ? 1 : *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 0;

                if (!n)
                        return false;
                for (size_t i = 1; i < n; i++)
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                p += n;
        }
        return true;
}

int main(void) {
        struct error err;
        char long_text[600];

        CHECK(error_set(&err, EBADMSG, "invalid_payload", "service", "%s is %d", "x", 5) ==
              -EBADMSG);
        CHECK(error_set(&err, -EBADMSG, "invalid_payload", NULL, "x") == -EBADMSG);
        CHECK_STR(err.code, "invalid_payload");
        CHECK(err.field == NULL);
        CHECK(error_set(NULL, EACCES, "bad_token", NULL, "no err") == -EACCES);

        /* Cut inside a 2-, 3- and 4-byte character, at every offset: always whole ones. */
        for (const char *ch = "\xc3\xa9\0\xe2\x82\xac\0\xf0\x9f\x98\x80\0"; *ch;
             ch += strlen(ch) + 1) {
                for (size_t pad = 0; pad < 4; pad++) {
                        size_t o = 0;

                        memset(long_text, 'a', pad);
                        o = pad;
                        while (o + strlen(ch) < sizeof(long_text) - 1) {
                                memcpy(long_text + o, ch, strlen(ch));
                                o += strlen(ch);
                        }
                        long_text[o] = '\0';
                        (void) error_set(&err, EBADMSG, "invalid_payload", NULL, "%s",
                                         long_text);
                        CHECK(valid_utf8(err.msg));
                        CHECK(strlen(err.msg) >= sizeof(err.msg) - 4);
                }
        }
        /* A message that fits is left alone, the last character included. */
        (void) error_set(&err, EBADMSG, "invalid_payload", NULL, "caf\xc3\xa9");
        CHECK_STR(err.msg, "caf\xc3\xa9");
        return check_summary();
}
