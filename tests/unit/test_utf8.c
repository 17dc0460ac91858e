/* Unit tests for utf8: what is well-formed (RFC 3629's table of ranges), and cutting at a
 * character boundary. */
#include "utf8.h"

#include <string.h>

#include "check.h"

int main(void) {
        /* Well-formed: ASCII, and the first and last of every length. */
        CHECK(utf8_valid(""));
        CHECK(utf8_valid("plain ascii"));
        CHECK(utf8_valid("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf"));
        CHECK(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
        CHECK(utf8_char_len("\xe2\x82\xac") == 3);
        CHECK(utf8_char_len("a") == 1);
        /* Ill-formed: overlong forms, surrogates, past U+10FFFF, stray and missing bytes. */
        CHECK(!utf8_valid("\xc0\xaf"));                 /* overlong '/' */
        CHECK(!utf8_valid("\xc1\xbf"));
        CHECK(!utf8_valid("\xe0\x9f\xbf"));             /* overlong, 3 bytes */
        CHECK(!utf8_valid("\xf0\x8f\xbf\xbf"));         /* overlong, 4 bytes */
        CHECK(!utf8_valid("\xed\xa0\x80"));             /* U+D800 */
        CHECK(!utf8_valid("\xed\xbf\xbf"));             /* U+DFFF */
        CHECK(!utf8_valid("\xf4\x90\x80\x80"));         /* U+110000 */
        CHECK(!utf8_valid("\xf5\x80\x80\x80"));
        CHECK(!utf8_valid("\xff"));
        CHECK(!utf8_valid("\x80"));                     /* a continuation alone */
        CHECK(!utf8_valid("\xc3"));                     /* cut: the NUL is not read past */
        CHECK(!utf8_valid("\xe2\x82"));
        CHECK(!utf8_valid("\xe2\x82x"));
        CHECK(utf8_char_len("\xf0\x9f\x98") == 0);

        /* Cutting: never inside a character, wherever n falls. */
        {
                const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";   /* a é € 😀 z */
                const size_t want[] = { 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11 };

                for (size_t n = 0; n <= strlen(s); n++)
                        CHECK(utf8_cut(s, n) == want[n]);
        }
        CHECK(utf8_cut("abc", 2) == 2);
        CHECK(utf8_cut("\x80\x80\x80\x80", 4) == 4);   /* no lead: nothing to protect */
        return check_summary();
}
