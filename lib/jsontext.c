/* jsontext: JSON values as text into a buf (jsontext.h). */
#include "jsontext.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

int jsontext_string(struct buf *b, const char *s) {
        int r = buf_append(b, "\"", 1);

        while (r == 0 && *s) {
                size_t plain = 0;
                unsigned char c;
                char esc[8];

                while (s[plain] && s[plain] != '"' && s[plain] != '\\' &&
                       (unsigned char) s[plain] >= 0x20)
                        plain++;
                if (plain) {
                        r = buf_append(b, s, plain);
                        s += plain;
                        continue;
                }
                c = (unsigned char) *s++;
                switch (c) {
                case '"': r = buf_puts(b, "\\\""); break;
                case '\\': r = buf_puts(b, "\\\\"); break;
                case '\b': r = buf_puts(b, "\\b"); break;
                case '\f': r = buf_puts(b, "\\f"); break;
                case '\n': r = buf_puts(b, "\\n"); break;
                case '\r': r = buf_puts(b, "\\r"); break;
                case '\t': r = buf_puts(b, "\\t"); break;
                default:
                        snprintf(esc, sizeof(esc), "\\u%04X", c);
                        r = buf_puts(b, esc);
                }
        }
        return r ? r : buf_append(b, "\"", 1);
}

/* The digits of v (>= 0) at the end of out[0, 24); returns where they start. */
static char *digits(uint64_t v, char *end) {
        do {
                *--end = (char) ('0' + v % 10);
                v /= 10;
        } while (v);
        return end;
}

int jsontext_int(struct buf *b, int64_t v) {
        char out[24], *end = out + sizeof(out), *p;

        p = digits(v < 0 ? -(uint64_t) v : (uint64_t) v, end);
        if (v < 0)
                *--p = '-';
        return buf_append(b, p, (size_t) (end - p));
}

int jsontext_decimal(struct buf *b, int64_t q, int places) {
        char out[48], *end = out + sizeof(out), *p;
        uint64_t mag = q < 0 ? -(uint64_t) q : (uint64_t) q, scale = 1;
        bool neg = q < 0;

        for (int i = 0; i < places; i++)
                scale *= 10;
        p = digits(mag % scale + scale, end);   /* a leading 1 keeps the fraction's zeros */
        p++;
        while (end - p > 1 && end[-1] == '0')
                end--;
        *--p = '.';
        p = digits(mag / scale, p);
        if (neg)
                *--p = '-';
        return buf_append(b, p, (size_t) (end - p));
}

int jsontext_real(struct buf *b, double v) {
        char out[40];
        int n = snprintf(out, sizeof(out), "%.17g", v);

        if (n > 0 && (size_t) n < sizeof(out) - 2 && !strpbrk(out, ".eE"))
                memcpy(out + n, ".0", 3);
        return buf_puts(b, out);
}
