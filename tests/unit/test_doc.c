/* Unit tests for doc: what the parser refuses, and path lookups. */
#include "doc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#include "check.h"

static int parse(const char *s, size_t len, struct error *err) {
        json_t *doc = NULL;
        int r = doc_parse(s, len, &doc, err);

        json_decref(doc);
        return r;
}

int main(void) {
        struct error err = { 0 };
        json_t *doc = NULL;
        char *deep;

        CHECK(parse("{\"a\":1}", 7, &err) == 0);
        CHECK(parse("{\"a\":1", 6, &err) == -EBADMSG);                 /* truncated */
        CHECK_STR(err.code, "invalid_json");
        CHECK(parse("", 0, &err) == -EBADMSG);                         /* empty */
        CHECK(parse("[1,2]", 5, &err) == -EBADMSG);                    /* not an object */
        CHECK_STR(err.code, "invalid_payload");
        CHECK(parse("{\"a\":1,\"a\":2}", 13, &err) == -EBADMSG);       /* duplicate keys */
        CHECK(parse("{\"a\":\"\xff\"}", 9, &err) == -EBADMSG);         /* invalid UTF-8 */
        CHECK(parse("{\"a\":1}\0", 8, &err) == -EBADMSG);              /* NUL byte */
        CHECK(parse("{\"a\":1e999999}", 14, &err) == -EBADMSG);        /* huge number */

        /* 100000-deep nesting is refused, not a stack overflow. */
        deep = malloc(200002);
        deep[0] = '{';
        memcpy(deep + 1, "\"a\":", 4);
        for (int i = 0; i < 100000; i++)
                deep[5 + i] = '[';
        CHECK(parse(deep, 100005, &err) == -EBADMSG);
        free(deep);

        /* The element limit: values at any depth, keys not counted, strings opaque. */
        CHECK(doc_count_elements("{}", 2, 100) == 1);
        CHECK(doc_count_elements(" { \"a\" : [ ] , \"b\":[1,{},\"x,[{\\\"\"]}", 32, 100) == 6);
        CHECK(doc_parse_bounded("{\"a\":[1,2,3]}", 13, 5, &doc, &err) == 0);
        json_decref(doc);
        doc = NULL;
        CHECK(doc_parse_bounded("{\"a\":[1,2,3,4]}", 15, 5, &doc, &err) == -EBADMSG);
        CHECK(doc == NULL);
        CHECK_STR(err.code, "invalid_json");
        CHECK_STR(err.field, "max_json_elements");
        CHECK(strstr(err.msg, "more than 5 JSON values (max_json_elements)") != NULL);
        {
                /* 1 MiB of empty objects: refused by the count, far below the default. */
                size_t n = 1 << 20;
                char *many = malloc(n);

                memcpy(many, "{\"a\":[", 6);
                for (size_t i = 6; i + 3 < n; i += 3)
                        memcpy(many + i, "{},", 3);
                memcpy(many + n - 4, "{}]}", 4);
                CHECK(doc_count_elements(many, n, SIZE_MAX) > DOC_MAX_ELEMENTS_DEFAULT);
                CHECK(doc_count_elements(many, n, 10) == 11);   /* stops once past */
                CHECK(doc_parse(many, n, &doc, &err) == -EBADMSG);
                CHECK_STR(err.field, "max_json_elements");
                free(many);
        }

        CHECK(doc_parse("{\"build\":{\"scm\":{\"commit\":\"abc\"},\"n\":3}}", 40, &doc, &err) == 0);
        CHECK_STR(doc_string(doc, "build.scm.commit"), "abc");
        CHECK(doc_string(doc, "build.n") == NULL);                     /* not a string */
        CHECK(json_integer_value(doc_get(doc, "build.n")) == 3);
        CHECK(doc_get(doc, "build.scm.commit.x") == NULL);
        CHECK(doc_get(doc, "nope") == NULL);
        json_decref(doc);
        return check_summary();
}
