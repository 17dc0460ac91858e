/* Unit tests for doc: what the parser refuses, and path lookups. */
#include "doc.h"

#include <errno.h>
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

        CHECK(doc_parse("{\"build\":{\"scm\":{\"commit\":\"abc\"},\"n\":3}}", 40, &doc, &err) == 0);
        CHECK_STR(doc_string(doc, "build.scm.commit"), "abc");
        CHECK(doc_string(doc, "build.n") == NULL);                     /* not a string */
        CHECK(json_integer_value(doc_get(doc, "build.n")) == 3);
        CHECK(doc_get(doc, "build.scm.commit.x") == NULL);
        CHECK(doc_get(doc, "nope") == NULL);
        json_decref(doc);
        return check_summary();
}
