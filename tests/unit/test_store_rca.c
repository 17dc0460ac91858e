/* Unit tests for store_rca, against a real PostgreSQL database (DORALOOP_TEST_DB, made by
 * tests/test_unit.py): the figures of a window and the one before it as JSON, equal to the
 * plain-SQL reference (store_rca_reference); the incidents by dimension per service with zeros; a database
 * refusal as -EIO. */
#include "store_rca.h"

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
/* 2024-05-07T00:00:00Z = 19850 days x 86,400 s. */
#define DAY_US (INT64_C(1715040000) * US)


static int save(struct store *s, const char *id, const char *body) {
        return fixture_save(s, id, body, DAY_US);
}

/* INC-1 (api, 05-07 10:00-11:00) technological/capacity; INC-2 (web, 05-07 12:00, open)
 * none; INC-0 (api, 05-06 10:00-10:30, the window before) process. */
static void load(struct store *s) {
        CHECK(save(s, "i1", "{\"type\":\"incident\",\"id\":\"INC-1\",\"service\":\"api\","
                            "\"status\":\"resolved\",\"opened_at\":\"2024-05-07T10:00:00Z\","
                            "\"resolved_at\":\"2024-05-07T11:00:00Z\",\"contributing_factors\":"
                            "[{\"dimension\":\"technological\",\"category\":\"capacity\"}]}")
              == 0);
        CHECK(save(s, "i2", "{\"type\":\"incident\",\"id\":\"INC-2\",\"service\":\"web\","
                            "\"status\":\"open\",\"opened_at\":\"2024-05-07T12:00:00Z\"}") == 0);
        CHECK(save(s, "i0", "{\"type\":\"incident\",\"id\":\"INC-0\",\"service\":\"api\","
                            "\"status\":\"resolved\",\"opened_at\":\"2024-05-06T10:00:00Z\","
                            "\"resolved_at\":\"2024-05-06T10:30:00Z\","
                            "\"root_cause_category\":\"process\"}") == 0);
}

static json_t *dimension(json_t *doc, const char *name) {
        json_t *dims = json_object_get(doc, "dimensions");

        for (size_t i = 0; i < json_array_size(dims); i++)
                if (strcmp(json_string_value(json_object_get(json_array_get(dims, i),
                                                             "dimension")), name) == 0)
                        return json_array_get(dims, i);
        return NULL;
}

static void test_figures(struct store *s) {
        struct error err = { 0 };
        char *window = NULL, *previous = NULL;
        json_t *w, *p;

        /* [05-07 00:00, 05-08 00:00) and before it [05-06, 05-07) */
        CHECK(store_rca(s, NULL, DAY_US, DAY_US + 86400 * US, &window, &previous, &err) == 0);
        w = window ? json_loads(window, 0, NULL) : NULL;
        p = previous ? json_loads(previous, 0, NULL) : NULL;
        CHECK(w && p);
        CHECK(json_integer_value(json_object_get(w, "incidents")) == 2);
        CHECK(json_integer_value(json_object_get(w, "incidents_with_factors")) == 1);
        CHECK(json_array_size(json_object_get(w, "dimensions")) == 4);
        CHECK(json_number_value(json_object_get(dimension(w, "technological"),
                                                "downtime_seconds")) == 3600);
        CHECK(json_number_value(json_object_get(dimension(w, "technological"), "share")) == 1);
        CHECK(json_integer_value(json_object_get(dimension(p, "process"), "incidents")) == 1);
        CHECK(json_number_value(json_object_get(dimension(p, "process"),
                                                "downtime_seconds")) == 1800);
        json_decref(w), json_decref(p);
        free(window), free(previous);
        /* only web: INC-2, open, without factors: share has no data */
        CHECK(store_rca(s, "web", DAY_US, DAY_US + 86400 * US, &window, &previous, &err) == 0);
        w = window ? json_loads(window, 0, NULL) : NULL;
        CHECK(w && json_integer_value(json_object_get(w, "incidents")) == 1);
        CHECK(w && json_is_null(json_object_get(dimension(w, "partner"), "share")));
        json_decref(w);
        free(window), free(previous);
}

/* The window from the rollups (dl_rca_fast) equals the reference from the rows (dl_rca),
 * for whole days, a part of one and across a midnight. */
static void test_reference(struct store *s) {
        static const int64_t windows[][2] = {
                { DAY_US - 86400 * US, DAY_US + 86400 * US },
                { DAY_US + 9 * 3600 * US, DAY_US + 13 * 3600 * US },
                { DAY_US - 3600 * US, DAY_US + 11 * 3600 * US },
        };

        for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
                char *fast = NULL, *previous = NULL, *ref = NULL;
                struct error err = { 0 };

                CHECK(store_rca(s, NULL, windows[i][0], windows[i][1], &fast, &previous,
                                &err) == 0);
                CHECK(store_rca_reference(s, NULL, windows[i][0], windows[i][1], &ref,
                                          &err) == 0);
                CHECK(fast && ref && strcmp(fast, ref) == 0);
                free(fast), free(previous), free(ref);
        }
}

struct seen {
        char lines[16][80];
        int n;
};

static int count(void *ctx, const char *service, const char *dim, int64_t incidents) {
        struct seen *seen = ctx;

        if (seen->n < 16)
                snprintf(seen->lines[seen->n++], 80, "%s %s %lld", service, dim,
                         (long long) incidents);
        return 0;
}

static int stop(void *ctx, const char *service, const char *dim, int64_t incidents) {
        (void) ctx, (void) service, (void) dim, (void) incidents;
        return -ECANCELED;
}

static void test_by_dimension(struct store *s) {
        struct seen seen = { .n = 0 };
        struct error err = { 0 };

        CHECK(store_rca_by_dimension(s, DAY_US, DAY_US + 86400 * US, count, &seen, &err) == 0);
        CHECK(seen.n == 8);
        CHECK_STR(seen.lines[0], "api organizational 0");
        CHECK_STR(seen.lines[3], "api technological 1");
        CHECK_STR(seen.lines[7], "web technological 0");
        CHECK(store_rca_by_dimension(s, DAY_US, DAY_US + 86400 * US, stop, NULL, &err) ==
              -ECANCELED);
}

static void test_refusal(struct store *s) {
        struct error err = { 0 };
        char *window = NULL, *previous = NULL;

        /* a service name with a NUL-free invalid encoding byte: PostgreSQL refuses it */
        CHECK(store_rca(s, "\xff", DAY_US, DAY_US + US, &window, &previous, &err) == -EIO);
        CHECK(window == NULL && previous == NULL);
        CHECK(strchr(err.msg, '\n') == NULL && strstr(err.msg, "root-cause") != NULL);
}

int main(int argc, char **argv) {
        struct store *s = fixture_open(argc, argv, "test_store_rca");

        CHECK(s != NULL);
        if (!s)
                return check_summary();
        load(s);
        test_figures(s);
        test_reference(s);
        test_by_dimension(s);
        test_refusal(s);
        store_close(s);
        return check_summary();
}
