/* list: comma-separated setting values. */
#include "list.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

size_t list_visit(const char *list, bool (*fn)(const char *item, size_t len, const void *ctx),
                  const void *ctx) {
        const char *p = list;
        size_t matched = 0;

        while (p && *p) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t) (end - p) : strlen(p);
                const char *s = p;

                while (len && isspace((unsigned char) *s))
                        s++, len--;
                while (len && isspace((unsigned char) s[len - 1]))
                        len--;
                if (len && fn(s, len, ctx))
                        matched++;
                p = end ? end + 1 : NULL;
        }
        return matched;
}

int list_split(const char *s, char *buf, size_t buf_len, const char **items, size_t max) {
        size_t n = 0;

        if (snprintf(buf, buf_len, "%s", s ? s : "") >= (int) buf_len)
                return -E2BIG;
        for (char *tok = buf, *next; tok; tok = next) {
                next = strchr(tok, ',');
                if (next)
                        *next++ = '\0';
                while (*tok == ' ')
                        tok++;
                for (size_t len = strlen(tok); len && tok[len - 1] == ' '; len--)
                        tok[len - 1] = '\0';
                if (!*tok)
                        continue;
                if (n == max)
                        return -E2BIG;
                items[n++] = tok;
        }
        return (int) n;
}
