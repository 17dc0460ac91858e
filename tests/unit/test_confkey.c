/* Unit tests for confkey: each type's text becomes its value or a problem in words, ranges
 * and validators are held, and defaults fill a group's struct (strings borrowed). */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "confkey.h"

#include "check.h"

struct group {
        const char *name;
        const char *secret;
        size_t size;
        long count;
        bool flag;
};

static const char *check_no_x(const char *v) {
        return strchr(v, 'x') ? "must not hold an x" : NULL;
}

#define OFF(f) offsetof(struct group, f)
static const struct confkey rows[] = {
        { "name", KEY_STRING, "fred", OFF(name), 0, 0, check_no_x, "a name", CONFKEY_LIVE },
        { "secret", KEY_SECRET, NULL, OFF(secret), 0, 0, NULL, "a secret", CONFKEY_LIVE },
        { "size", KEY_SIZE, "4k", OFF(size), 1, 1 << 20, NULL, "a size", CONFKEY_RESTART },
        { "count", KEY_LONG, "7", OFF(count), -5, 100, NULL, "a count", CONFKEY_LIVE },
        { "flag", KEY_BOOL, "yes", OFF(flag), 0, 0, NULL, "a flag", CONFKEY_LIVE },
};
#undef OFF

static void test_parse(void) {
        struct group g = { 0 };

        CHECK(confkey_parse(&rows[2], "1M", &g.size) == NULL && g.size == 1 << 20);
        CHECK(confkey_parse(&rows[2], "512", &g.size) == NULL && g.size == 512);
        CHECK_STR(confkey_parse(&rows[2], "2M", &g.size), "is out of range");
        CHECK_STR(confkey_parse(&rows[2], "0", &g.size), "is out of range");
        CHECK(confkey_parse(&rows[2], "12q", &g.size) != NULL);
        CHECK(confkey_parse(&rows[2], "-1", &g.size) != NULL);
        CHECK(confkey_parse(&rows[2], "99999999999999999999g", &g.size) != NULL);
        CHECK(g.size == 512);                                   /* refusals change nothing */

        CHECK(confkey_parse(&rows[3], "-5", &g.count) == NULL && g.count == -5);
        CHECK_STR(confkey_parse(&rows[3], "101", &g.count), "is out of range");
        CHECK_STR(confkey_parse(&rows[3], "7 ", &g.count), "is not a whole number");
        CHECK_STR(confkey_parse(&rows[3], "", &g.count), "is not a whole number");
        CHECK(confkey_parse(&rows[3], "99999999999999999999", &g.count) != NULL);

        CHECK(confkey_parse(&rows[4], "OFF", &g.flag) == NULL && !g.flag);
        CHECK(confkey_parse(&rows[4], "true", &g.flag) == NULL && g.flag);
        CHECK(confkey_parse(&rows[4], "maybe", &g.flag) != NULL && g.flag);

        /* Strings are the caller's to store; only the validator runs. */
        CHECK(confkey_parse(&rows[0], "wilma", &g.name) == NULL && g.name == NULL);
        CHECK_STR(confkey_parse(&rows[0], "xena", &g.name), "must not hold an x");
}

static void test_defaults(void) {
        struct group g = { .secret = "stale" };
        static const struct confkey bad[] = {
                { "count", KEY_LONG, "1000", offsetof(struct group, count), 0, 10, NULL, "",
                  CONFKEY_LIVE },
        };

        CHECK(confkey_defaults(rows, sizeof(rows) / sizeof(rows[0]), &g) == NULL);
        CHECK(g.name == rows[0].def);                           /* borrowed, not copied */
        CHECK(g.secret == NULL);                                /* an unset default */
        CHECK(g.size == 4096 && g.count == 7 && g.flag);
        CHECK_STR(confkey_defaults(bad, 1, &g), "is out of range");
}

int main(void) {
        test_parse();
        test_defaults();
        return check_summary();
}
