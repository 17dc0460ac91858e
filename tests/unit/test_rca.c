/* Unit tests for rca: dimensions by name in any case, a factor's category lower-cased and
 * trimmed, a repeated factor folded (primary wins), the limits (category length, count,
 * role), labels with and without the scoped "rca::" form, text "<dimension>:<category>",
 * wrong types in a generic array, and emitting a set as an event. */
#include "rca.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "error.h"

static void test_dimension(void) {
        CHECK_STR(rca_dimension("Technological"), "technological");
        CHECK_STR(rca_dimension("PARTNER"), "partner");
        CHECK(rca_dimension("weather") == NULL);
        CHECK(rca_dimension("") == NULL);
        CHECK(rca_dimension(NULL) == NULL);
}

static void test_add(void) {
        struct event_factors set = { 0 };
        struct error err = { 0 };
        char cat[80];

        CHECK(rca_add(&set, "process", "  Change Review ", "contributing", "f", &err) == 0);
        CHECK(set.n == 1);
        CHECK_STR(set.items[0].category, "change review");
        CHECK_STR(set.items[0].role, "contributing");
        /* the same factor again as primary: one factor, primary */
        CHECK(rca_add(&set, "Process", "change review", NULL, "f", &err) == 0);
        CHECK(set.n == 1);
        CHECK_STR(set.items[0].role, "primary");
        /* an empty category is none */
        CHECK(rca_add(&set, "process", "", NULL, "f", &err) == 0);
        CHECK(set.n == 2 && set.items[1].category == NULL);
        CHECK(rca_add(&set, "weather", NULL, NULL, "f", &err) == -EBADMSG);
        CHECK(strstr(err.msg, "f: dimension 'weather'") != NULL);
        CHECK(rca_add(&set, "process", NULL, "main", "f", &err) == -EBADMSG);
        CHECK(strstr(err.msg, "role 'main'") != NULL);
        memset(cat, 'x', 65);
        cat[65] = '\0';
        CHECK(rca_add(&set, "process", cat, NULL, "f", &err) == -EBADMSG);
        cat[64] = '\0';
        CHECK(rca_add(&set, "process", cat, NULL, "f", &err) == 0);     /* 64 is fine */
        for (int i = 0; set.n < RCA_FACTORS_MAX; i++) {
                char c[16];

                snprintf(c, sizeof(c), "c%d", i);
                CHECK(rca_add(&set, "partner", c, NULL, "f", &err) == 0);
        }
        CHECK(rca_add(&set, "partner", "one more", NULL, "f", &err) == -EBADMSG);
        CHECK(strstr(err.msg, "more than 32") != NULL);
        rca_clear(&set);
        CHECK(set.n == 0 && set.items == NULL);
}

static void test_labels_and_text(void) {
        struct event_factors set = { 0 };
        struct error err = { 0 };
        json_t *names = json_pack("[s,s,s,i,s]", "bug", "RCA:technological:Capacity",
                                  "rca::process::change review", 7, "rca:partner");
        json_t *objects = json_pack("[{s:s},{s:i},{}]", "name", "rca:organizational", "name", 3);
        json_t *bad = json_pack("[s]", "rca:weather");

        CHECK(rca_from_labels(names, NULL, "labels", &set, &err) == 0);
        CHECK(set.n == 3);
        CHECK_STR(set.items[0].dimension, "technological");
        CHECK_STR(set.items[0].category, "capacity");
        CHECK_STR(set.items[1].dimension, "process");
        CHECK_STR(set.items[1].category, "change review");
        CHECK(set.items[2].category == NULL);
        CHECK(rca_from_labels(objects, "name", "labels", &set, &err) == 0);
        CHECK(set.n == 4);
        CHECK(rca_from_labels(bad, NULL, "issue.fields.labels", &set, &err) == -EBADMSG);
        CHECK(strstr(err.msg, "issue.fields.labels") != NULL);
        CHECK(rca_from_text("technological:", "x", &set, &err) == 0);  /* no category */
        CHECK(rca_from_text(NULL, "x", &set, &err) == 0);
        CHECK(rca_from_text("averyveryverylongdimensionnamethatisnotone", "x", &set, &err) ==
              -EBADMSG);
        rca_clear(&set);
        json_decref(names), json_decref(objects), json_decref(bad);
}

static void test_array(void) {
        struct event_factors set = { 0 };
        struct error err = { 0 };
        json_t *good = json_pack("[{s:s,s:s,s:s},{s:s}]", "dimension", "partner", "category",
                                 "CDN", "role", "contributing", "dimension", "process");
        json_t *not_object = json_pack("[s]", "process");
        json_t *typed = json_pack("[{s:i}]", "dimension", 3);
        json_t *missing = json_pack("[{s:s}]", "category", "capacity");

        CHECK(rca_from_array(good, "contributing_factors", &set, &err) == 0);
        CHECK(set.n == 2);
        CHECK_STR(set.items[0].category, "cdn");
        CHECK(rca_from_array(not_object, "contributing_factors", &set, &err) == -EBADMSG);
        CHECK(strstr(err.msg, "contributing_factors[0] must be an object") != NULL);
        CHECK(rca_from_array(typed, "contributing_factors", &set, &err) == -EBADMSG);
        CHECK(rca_from_array(missing, "contributing_factors", &set, &err) == -EBADMSG);
        CHECK(rca_from_array(NULL, "contributing_factors", &set, &err) == 0);
        rca_clear(&set);
        json_decref(good), json_decref(not_object), json_decref(typed), json_decref(missing);
}

static void test_emit(void) {
        struct event_list l = { 0 };
        struct event_factors set = { 0 };
        struct error err = { 0 };

        CHECK(rca_add(&set, "process", NULL, NULL, "f", &err) == 0);
        CHECK(rca_emit(&l, "incident", "INC-1", "checkout", 42, &set) == 0);
        CHECK(set.n == 0 && set.items == NULL);         /* moved */
        CHECK(l.n == 1 && l.items[0].kind == EVENT_FACTORS);
        CHECK_STR(l.items[0].factors.subject, "incident");
        CHECK_STR(l.items[0].factors.key, "INC-1");
        CHECK(l.items[0].factors.n == 1 && l.items[0].factors.updated_at == 42);
        CHECK(event_list_check(&l, &err) == 0);
        event_list_clear(&l);
}

int main(void) {
        test_dimension();
        test_add();
        test_labels_and_text();
        test_array();
        test_emit();
        return check_summary();
}
