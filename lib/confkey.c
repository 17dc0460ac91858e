/* confkey: parsing a key's text into its value, for the config and for the defaults. */
#include "confkey.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <strings.h>

static const char *parse_size(const char *v, const struct confkey *k, size_t *ret) {
        char *end;
        unsigned long long n;
        unsigned shift = 0;

        if (!isdigit((unsigned char) *v))
                return "is not a size in bytes";
        errno = 0;
        n = strtoull(v, &end, 10);
        if (*end && !end[1]) {
                switch (tolower((unsigned char) *end)) {
                case 'k': shift = 10; end++; break;
                case 'm': shift = 20; end++; break;
                case 'g': shift = 30; end++; break;
                }
        }
        if (errno || *end)
                return "is not a size in bytes (digits, optionally followed by k, M or G)";
        if (n > (ULLONG_MAX >> 30) || (n << shift) < (unsigned long long) k->min ||
            (n << shift) > (unsigned long long) k->max)
                return "is out of range";
        *ret = (size_t) (n << shift);
        return NULL;
}

static const char *parse_long(const char *v, const struct confkey *k, long *ret) {
        char *end;
        long n;

        errno = 0;
        n = strtol(v, &end, 10);
        if (errno || end == v || *end)
                return "is not a whole number";
        if (n < k->min || n > k->max)
                return "is out of range";
        *ret = n;
        return NULL;
}

static const char *parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = { "1", "true", "yes", "on" };
        static const char *const no[] = { "0", "false", "no", "off" };

        for (size_t i = 0; i < 4; i++) {
                if (strcasecmp(v, yes[i]) == 0)
                        return *ret = true, NULL;
                if (strcasecmp(v, no[i]) == 0)
                        return *ret = false, NULL;
        }
        return "is not a boolean (true or false)";
}

const char *confkey_parse(const struct confkey *k, const char *v, void *field) {
        const char *problem = NULL;

        switch (k->type) {
        case KEY_STRING:
        case KEY_SECRET:
                break;
        case KEY_SIZE:
                problem = parse_size(v, k, field);
                break;
        case KEY_LONG:
                problem = parse_long(v, k, field);
                break;
        case KEY_BOOL:
                problem = parse_bool(v, field);
                break;
        }
        if (!problem && k->check)
                problem = k->check(v);
        return problem;
}

const char *confkey_defaults(const struct confkey *keys, size_t n, void *storage) {
        for (size_t i = 0; i < n; i++) {
                void *field = (char *) storage + keys[i].offset;
                const char *problem;

                if (keys[i].type == KEY_STRING || keys[i].type == KEY_SECRET) {
                        *(const char **) field = keys[i].def;
                        continue;
                }
                if (!keys[i].def)
                        continue;
                problem = confkey_parse(&keys[i], keys[i].def, field);
                if (problem)
                        return problem;
        }
        return NULL;
}
