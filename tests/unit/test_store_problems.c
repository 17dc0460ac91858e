/* Unit tests for store_problems, against a real PostgreSQL database (DORALOOP_TEST_DB, made
 * by tests/test_unit.py): problems saved through the store as generic deliveries, then the
 * list (newest first, its filters and its cursor), one problem with its incidents, factors
 * and history, the open problems per service split by known error, a callback's error
 * stopping each walk and a database refusal as -EIO. */
#include "store_problems.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "delivery.h"
#include "error.h"
#include "fixture.h"
#include "store.h"

#define US INT64_C(1000000)
#define MAR1 (INT64_C(1709251200) * US)        /* 2024-03-01T00:00:00Z */


/* PRB-1 (api) opens linking INC-1 and INC-X (never reported), then becomes a known error;
 * PRB-2 (web) is resolved; PRB-3 (api) is open. Saved in this order, so ids rise. */
static const char *const bodies[] = {
        "{\"type\":\"incident\",\"id\":\"INC-1\",\"service\":\"api\",\"status\":\"resolved\","
        "\"opened_at\":\"2024-03-01T10:00:00Z\",\"resolved_at\":\"2024-03-01T11:00:00Z\"}",
        "{\"type\":\"problem\",\"id\":\"PRB-1\",\"service\":\"api\",\"status\":\"open\","
        "\"summary\":\"pool exhausted\",\"opened_at\":\"2024-03-01T12:00:00Z\","
        "\"incidents\":[\"INC-1\",\"INC-X\"],\"contributing_factors\":[{\"dimension\":"
        "\"technological\",\"category\":\"capacity\"}]}",
        "{\"type\":\"problem\",\"id\":\"PRB-1\",\"service\":\"api\",\"status\":\"known_error\","
        "\"summary\":\"pool exhausted\",\"workaround\":\"restart the pool\","
        "\"opened_at\":\"2024-03-01T12:00:00Z\",\"updated_at\":\"2024-03-02T09:00:00Z\","
        "\"incidents\":[\"INC-1\",\"INC-X\"],\"contributing_factors\":[{\"dimension\":"
        "\"technological\",\"category\":\"capacity\"}]}",
        "{\"type\":\"problem\",\"id\":\"PRB-2\",\"service\":\"web\",\"status\":\"resolved\","
        "\"opened_at\":\"2024-03-01T08:00:00Z\",\"resolved_at\":\"2024-03-03T08:00:00Z\"}",
        "{\"type\":\"problem\",\"id\":\"PRB-3\",\"service\":\"api\",\"status\":\"open\","
        "\"opened_at\":\"2024-03-04T08:00:00Z\"}",
};

/* The rows a walk gave: each as a JSON object of its columns (texts, or parsed JSON for
 * the 'j' ones), so that a check can name a column. */
struct rows {
        int fail_at;
        json_t *list;
        const char *kinds;
};

static int keep_row(void *ctx, const struct store_row *r) {
        struct rows *l = ctx;
        json_t *o = json_object();

        if ((int) json_array_size(l->list) + 1 == l->fail_at) {
                json_decref(o);
                return -EPIPE;
        }
        for (int i = 0; i < r->n; i++) {
                json_t *v = !r->values[i] ? json_null()
                            : r->kinds[i] == 'j' ? json_loads(r->values[i], 0, NULL)
                            : json_string(r->values[i]);

                json_object_set_new(o, r->names[i], v ? v : json_string("(bad JSON)"));
        }
        json_array_append_new(l->list, o);
        l->kinds = r->kinds;
        return 0;
}

static void rows_reset(struct rows *l, int fail_at) {
        json_decref(l->list);
        l->list = json_array();
        l->fail_at = fail_at;
        l->kinds = NULL;
}

static const char *col(const struct rows *l, size_t row, const char *name) {
        return json_string_value(json_object_get(json_array_get(l->list, row), name));
}

static void test_list(struct store *s) {
        const char *all[4] = { NULL, NULL, NULL, "10" };
        const char *api[4] = { "api", NULL, NULL, "10" };
        const char *known[4] = { NULL, "known_error", NULL, "10" };
        const char *one[4] = { NULL, NULL, NULL, "1" };
        const char *bad[4] = { NULL, NULL, "not-a-number", "10" };
        const char *after[4] = { NULL, NULL, NULL, "10" };
        struct rows l = { 0 };
        struct error err = { 0 };
        char cursor[32] = "";

        rows_reset(&l, 0);
        CHECK(store_problems(s, all, keep_row, &l, &err) == 3);
        CHECK_STR(l.kinds, "nsssssssssj");
        CHECK_STR(col(&l, 0, "key"), "PRB-3");          /* newest first */
        CHECK_STR(col(&l, 1, "key"), "PRB-2");
        CHECK_STR(col(&l, 2, "key"), "PRB-1");
        /* the newest state won: a known error with its workaround; source and times */
        CHECK_STR(col(&l, 2, "status"), "known_error");
        CHECK_STR(col(&l, 2, "workaround"), "restart the pool");
        CHECK_STR(col(&l, 2, "source"), "generic");
        CHECK_STR(col(&l, 2, "opened_at"), "2024-03-01T12:00:00Z");
        CHECK_STR(col(&l, 2, "updated_at"), "2024-03-02T09:00:00Z");
        CHECK(json_is_null(json_object_get(json_array_get(l.list, 2), "resolved_at")));
        CHECK_STR(col(&l, 1, "resolved_at"), "2024-03-03T08:00:00Z");
        CHECK(json_is_null(json_object_get(json_array_get(l.list, 0), "workaround")));
        {
                json_t *inc = json_object_get(json_array_get(l.list, 2), "incidents");

                CHECK(json_array_size(inc) == 2);
                CHECK_STR(json_string_value(json_array_get(inc, 0)), "INC-1");
                CHECK_STR(json_string_value(json_array_get(inc, 1)), "INC-X");
        }

        rows_reset(&l, 0);
        CHECK(store_problems(s, api, keep_row, &l, &err) == 2);
        CHECK_STR(col(&l, 0, "key"), "PRB-3");
        CHECK_STR(col(&l, 1, "key"), "PRB-1");
        rows_reset(&l, 0);
        CHECK(store_problems(s, known, keep_row, &l, &err) == 1);
        CHECK_STR(col(&l, 0, "key"), "PRB-1");

        /* a page of one, then the rest after its id */
        rows_reset(&l, 0);
        CHECK(store_problems(s, one, keep_row, &l, &err) == 1);
        snprintf(cursor, sizeof(cursor), "%s", col(&l, 0, "id") ? col(&l, 0, "id") : "0");
        after[2] = cursor;
        rows_reset(&l, 0);
        CHECK(store_problems(s, after, keep_row, &l, &err) == 2);
        CHECK_STR(col(&l, 0, "key"), "PRB-2");

        rows_reset(&l, 2);
        CHECK(store_problems(s, all, keep_row, &l, &err) == -EPIPE);
        rows_reset(&l, 0);
        CHECK(store_problems(s, bad, keep_row, &l, &err) == -EIO);
        CHECK(json_array_size(l.list) == 0);
        json_decref(l.list);
}

static void test_one(struct store *s) {
        const char *prb1[2] = { "PRB-1", NULL };
        const char *prb1_jira[2] = { "PRB-1", "jira" };
        const char *unknown[2] = { "PRB-404", NULL };
        struct rows l = { 0 };
        struct error err = { 0 };
        json_t *o, *inc, *factors, *history;

        rows_reset(&l, 0);
        CHECK(store_problem(s, prb1, keep_row, &l, &err) == 1);
        CHECK_STR(l.kinds, "nsssssssssjjj");
        o = json_array_get(l.list, 0);
        CHECK_STR(col(&l, 0, "summary"), "pool exhausted");
        inc = json_object_get(o, "incidents");
        CHECK(json_array_size(inc) == 2);
        /* INC-1 as the store holds it; INC-X is only a key */
        CHECK_STR(json_string_value(json_object_get(json_array_get(inc, 0), "key")), "INC-1");
        CHECK_STR(json_string_value(json_object_get(json_array_get(inc, 0), "status")),
                  "resolved");
        CHECK_STR(json_string_value(json_object_get(json_array_get(inc, 0), "resolved_at")),
                  "2024-03-01T11:00:00Z");
        CHECK_STR(json_string_value(json_object_get(json_array_get(inc, 1), "key")), "INC-X");
        CHECK(json_is_null(json_object_get(json_array_get(inc, 1), "source")));
        factors = json_object_get(o, "contributing_factors");
        CHECK(json_array_size(factors) == 1);
        CHECK_STR(json_string_value(json_object_get(json_array_get(factors, 0), "dimension")),
                  "technological");
        CHECK_STR(json_string_value(json_object_get(json_array_get(factors, 0), "category")),
                  "capacity");
        history = json_object_get(o, "history");
        CHECK(json_array_size(history) == 2);
        CHECK_STR(json_string_value(json_object_get(json_array_get(history, 0), "status")),
                  "open");
        CHECK_STR(json_string_value(json_object_get(json_array_get(history, 1), "status")),
                  "known_error");
        CHECK_STR(json_string_value(json_object_get(json_array_get(history, 1), "at")),
                  "2024-03-02T09:00:00Z");

        rows_reset(&l, 0);
        CHECK(store_problem(s, prb1_jira, keep_row, &l, &err) == 0);
        CHECK(store_problem(s, unknown, keep_row, &l, &err) == 0);
        CHECK(json_array_size(l.list) == 0);
        rows_reset(&l, 1);
        CHECK(store_problem(s, prb1, keep_row, &l, &err) == -EPIPE);
        json_decref(l.list);
}

/* The gauge: api has PRB-3 open and PRB-1 a known error; web's one is resolved. */
static void test_open(struct store *s) {
        struct rows l = { 0 };
        struct error err = { 0 };

        rows_reset(&l, 0);
        CHECK(store_problems_open(s, keep_row, &l, &err) == 1);
        CHECK_STR(l.kinds, "snn");
        CHECK_STR(col(&l, 0, "service"), "api");
        CHECK_STR(col(&l, 0, "others"), "1");
        CHECK_STR(col(&l, 0, "known_errors"), "1");
        rows_reset(&l, 1);
        CHECK(store_problems_open(s, keep_row, &l, &err) == -EPIPE);
        json_decref(l.list);
}

int main(int argc, char **argv) {
        struct store *s = fixture_open(argc, argv, "test_store_problems");

        CHECK(s != NULL);
        if (!s)
                return check_summary();
        CHECK(fixture_save_all(s, "p", bodies, sizeof(bodies) / sizeof(bodies[0]), MAR1) == 0);
        test_list(s);
        test_one(s);
        test_open(s);
        store_close(s);
        return check_summary();
}
