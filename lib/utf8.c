/* utf8: well-formed UTF-8. */
#include "utf8.h"

static bool cont(unsigned char c) {
        return (c & 0xc0) == 0x80;
}

size_t utf8_char_len(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                return cont(p[1]) ? 2 : 0;
        if (p[0] >= 0xe0 && p[0] <= 0xef) {
                if (!cont(p[1]) || !cont(p[2]) || (p[0] == 0xe0 && p[1] < 0xa0) ||
                    (p[0] == 0xed && p[1] >= 0xa0))     /* overlong; a surrogate */
                        return 0;
                return 3;
        }
        if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                if (!cont(p[1]) || !cont(p[2]) || !cont(p[3]) ||
                    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
                        return 0;                       /* overlong; past U+10FFFF */
                return 4;
        }
        return 0;
}

bool utf8_valid(const char *s) {
        while (*s) {
                size_t n = utf8_char_len(s);

                if (!n)
                        return false;
                s += n;
        }
        return true;
}

size_t utf8_cut(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;
        size_t k = n, want;

        while (k > 0 && n - k < 3 && cont(p[k - 1]))
                k--;            /* back over the continuation bytes at the end */
        if (k == 0 || p[k - 1] < 0xc0)
                return n;       /* they follow no lead byte (or there are none) */
        k--;                    /* the lead byte of the last character */
        want = p[k] >= 0xf0 ? 4 : p[k] >= 0xe0 ? 3 : 2;
        return n - k < want ? k : n;
}
