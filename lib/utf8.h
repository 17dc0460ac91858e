/* utf8: well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF), defined once for every place that checks, cuts or escapes text. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The length (1 to 4) of the well-formed character that starts at p, or 0 when the bytes
 * there are not one (a stray continuation byte, an overlong form, a cut character). p is
 * NUL-terminated: a NUL inside a character makes it ill-formed, never read past. */
size_t utf8_char_len(const char *p);

/* Whether all of the NUL-terminated s is well-formed UTF-8. */
bool utf8_valid(const char *s);

/* The largest m <= n at which s (at least n bytes) can be cut without splitting the last
 * character: n itself unless s[0..n) ends inside an incomplete character. */
size_t utf8_cut(const char *s, size_t n);
