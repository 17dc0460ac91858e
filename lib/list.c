/* list: comma-separated setting values. */
#include "list.h"

#include <ctype.h>
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
