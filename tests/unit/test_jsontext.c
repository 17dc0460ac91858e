/* Unit tests for jsontext: each value's text against what jansson dumps or parses. */
#include "jsontext.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>

#include "buf.h"
#include "check.h"


static char *string_text(const char *s) {
        struct buf b;

        buf_init(&b, 1 << 20);
        CHECK(jsontext_string(&b, s) == 0);
        return buf_steal(&b);
}

static void test_strings(void) {
        static const char *const cases[] = {
                "", "plain", "a \"quoted\" word", "back\\slash", "tab\tnew\nline\rcr",
                "\b\f", "\x01\x1f\x7f", "slash / stays",
                "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "software bug",
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                json_t *j = json_string(cases[i]);
                char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
                char *got = string_text(cases[i]);

                CHECK_STR(got, want);   /* byte for byte jansson's escaping */
                free(want);
                free(got);
                json_decref(j);
        }
}

static char *int_text(int64_t v) {
        struct buf b;

        buf_init(&b, 64);
        CHECK(jsontext_int(&b, v) == 0);
        return buf_steal(&b);
}

static void test_ints(void) {
        static const int64_t cases[] = { 0, 1, -1, 9, 10, -10, 1234567890123, INT64_MAX,
                                         INT64_MIN };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char want[32], *got = int_text(cases[i]);

                snprintf(want, sizeof(want), "%" PRId64, cases[i]);
                CHECK_STR(got, want);
                free(got);
        }
}

static char *decimal_text(int64_t q, int places) {
        struct buf b;

        buf_init(&b, 64);
        CHECK(jsontext_decimal(&b, q, places) == 0);
        return buf_steal(&b);
}

/* The text parses to (double) q / 10^places, the value jansson would have dumped. */
static void check_decimal(int64_t q, int places) {
        double scale = 1, want;
        char *got = decimal_text(q, places);
        json_t *j = json_loads(got, JSON_DECODE_ANY, NULL);
        size_t len = strlen(got);

        for (int i = 0; i < places; i++)
                scale *= 10;
        want = (double) q / scale;
        CHECK(json_is_real(j) && json_real_value(j) == want);
        CHECK(strchr(got, '.') && (got[len - 1] != '0' || got[len - 2] == '.'));
        json_decref(j);
        free(got);
}

static void test_decimals(void) {
        static const struct {
                int64_t q;
                int places;
                const char *text;
        } cases[] = {
                { 12345, 3, "12.345" }, { 2000, 3, "2.0" }, { -5, 3, "-0.005" },
                { 0, 3, "0.0" }, { 1, 4, "0.0001" }, { 5000, 4, "0.5" }, { 10000, 4, "1.0" },
                { -123450, 4, "-12.345" }, { 86400000, 3, "86400.0" }, { 7, 1, "0.7" },
        };
        uint64_t x = 88172645463325252u;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *got = decimal_text(cases[i].q, cases[i].places);

                CHECK_STR(got, cases[i].text);
                free(got);
                check_decimal(cases[i].q, cases[i].places);
        }
        for (int i = 0; i < 20000; i++) {      /* xorshift: any q up to 2^50, any places */
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                check_decimal((int64_t) (x >> 14) * (x & 1 ? -1 : 1) >> (x % 40),
                              1 + (int) ((x >> 8) % 6));
        }
}

static void test_reals(void) {
        static const double cases[] = { 0.5, 2.0, 0.1, 1.0 / 3.0, 89.999988425925924, 1e22,
                                        -7.25 };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct buf b;
                json_t *j;

                buf_init(&b, 64);
                CHECK(jsontext_real(&b, cases[i]) == 0);
                j = json_loads(b.data, JSON_DECODE_ANY, NULL);
                CHECK(json_is_real(j) && json_real_value(j) == cases[i]);
                json_decref(j);
                buf_free(&b);
        }
}

/* A full buffer is -E2BIG, never a cut value. */
static void test_bound(void) {
        struct buf b;

        buf_init(&b, 4);
        CHECK(jsontext_string(&b, "long string") == -E2BIG);
        buf_free(&b);
        buf_init(&b, 4);
        CHECK(jsontext_decimal(&b, 123456789, 3) == -E2BIG);
        CHECK(b.len == 0);
        buf_free(&b);
}

int main(void) {
        test_strings();
        test_ints();
        test_decimals();
        test_reals();
        test_bound();
        return check_summary();
}
