/* Unit tests for rcamirror: whole days from the daily rows, edge days from the incidents
 * (asked for with -ENOENT, refused when stale), exact downtime and its rounding, shares,
 * the dimensions' and categories' order, a service filter. */
#include "rcamirror.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "check.h"

#define DAY INT64_C(86400000000)
#define S INT64_C(1000000)

static json_t *dim(json_t *o, const char *name) {
        size_t i;
        json_t *d;

        json_array_foreach(json_object_get(o, "dimensions"), i, d)
                if (strcmp(json_string_value(json_object_get(d, "dimension")), name) == 0)
                        return d;
        return NULL;
}

static double real(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        return json_is_real(v) ? json_real_value(v) : NAN;
}

static json_int_t integer(json_t *o, const char *key) {
        return json_integer_value(json_object_get(o, key));
}

int main(void) {
        struct rcamirror *m = rcamirror_new();
        json_t *o = NULL;
        int32_t missing = -1;
        uint64_t token;
        /* day 10 of svc a: 3 incidents, 2 with factors; one open since 10d + 1h */
        const struct rca_row a10[] = {
                { "", "", 3, 0, 100 * S + 500, 1, 10 * DAY + 3600 * S },
                { "*", "", 2, 0, 100 * S + 500, 1, 10 * DAY + 3600 * S },
                { "technological", "", 2, 1, 100 * S + 500, 1, 10 * DAY + 3600 * S },
                { "technological", "deploy", 1, 0, 100 * S + 500, 0, 0 },
                { "process", "", 1, 1, 0, 1, 10 * DAY + 3600 * S },
                { "process", "review", 1, 0, 0, 1, 10 * DAY + 3600 * S },
                { "process", "approval", 1, 0, 0, 1, 10 * DAY + 3600 * S },
        };
        const struct rca_row b11[] = { { "", "", 1, 0, 7 * S, 0, 0 } };
        /* the incidents of day 12: one at 12d + 2h (partner, primary), one at 12d + 20h */
        const struct rca_fact f12[] = {
                { 5, "a", 12 * DAY + 7200 * S, 60 * S, "partner", "vendor", "primary" },
                { 5, "a", 12 * DAY + 7200 * S, 60 * S, "partner", "", "contributing" },
                { 6, "a", 12 * DAY + 72000 * S, RCAMIRROR_OPEN, NULL, NULL, NULL },
        };
        const struct rca_row bad[] = { { "nope", "", 1, 0, 0, 0, 0 } };

        CHECK(m && rcamirror_epoch(m) == 0);
        rcamirror_reset(m, 2);
        CHECK(rcamirror_epoch(m) == 2);
        rcamirror_set_xmin(m, 9);
        CHECK(rcamirror_xmin(m) == 9);
        CHECK(rcamirror_set_day(m, "a", 10, bad, 1) == -EINVAL);
        CHECK(rcamirror_set_day(m, "a", 10, a10, 7) == 0);
        CHECK(rcamirror_set_day(m, "b", 11, b11, 1) == 0);

        /* Whole days [10, 12): no edge needed. Downtime: 100.0005 + (12d - (10d + 1h)). */
        CHECK(rcamirror_json(m, NULL, 10 * DAY, 12 * DAY, &o, &missing) == 0);
        CHECK(integer(o, "incidents") == 4 && integer(o, "incidents_with_factors") == 2);
        CHECK(real(dim(o, "technological"), "downtime_seconds") == 169300.001); /* half up */
        CHECK(real(dim(o, "process"), "downtime_seconds") == 2 * 86400.0 - 3600.0);
        CHECK(real(dim(o, "technological"), "share") == 1.0);
        CHECK(real(dim(o, "partner"), "share") == 0.0);
        CHECK(integer(dim(o, "technological"), "primary") == 1);
        /* order: most incidents first, then by name; categories likewise */
        CHECK(strcmp(json_string_value(json_object_get(json_array_get(
                      json_object_get(o, "dimensions"), 0), "dimension")), "technological") == 0);
        CHECK(strcmp(json_string_value(json_object_get(json_array_get(
                      json_object_get(o, "dimensions"), 1), "dimension")), "process") == 0);
        CHECK(strcmp(json_string_value(json_object_get(json_array_get(
                      json_object_get(o, "dimensions"), 2), "dimension")), "organizational") == 0);
        CHECK(strcmp(json_string_value(json_object_get(json_array_get(json_object_get(
                      dim(o, "process"), "categories"), 0), "category")), "approval") == 0);
        CHECK(json_array_size(json_object_get(dim(o, "partner"), "categories")) == 0);
        json_decref(o);

        /* A service filter; an unknown service is all zeros with null shares. */
        CHECK(rcamirror_json(m, "b", 10 * DAY, 12 * DAY, &o, &missing) == 0);
        CHECK(integer(o, "incidents") == 1 && integer(o, "incidents_with_factors") == 0);
        CHECK(json_is_null(json_object_get(dim(o, "process"), "share")));
        json_decref(o);
        CHECK(rcamirror_json(m, "zz", 10 * DAY, 12 * DAY, &o, &missing) == 0);
        CHECK(integer(o, "incidents") == 0);
        json_decref(o);

        /* An edge at 12d + 10h: day 12 is asked for; a row of day 12 set after the token
         * makes the loaded incidents stale. */
        CHECK(rcamirror_json(m, NULL, 10 * DAY, 12 * DAY + 36000 * S, &o, &missing) == -ENOENT);
        CHECK(missing == 12 && o == NULL);
        token = rcamirror_detail_token(m, 12);
        CHECK(rcamirror_set_day(m, "a", 12, NULL, 0) == 0);
        CHECK(rcamirror_set_detail(m, 12, token, f12, 3) == 0);
        CHECK(rcamirror_json(m, NULL, 10 * DAY, 12 * DAY + 36000 * S, &o, &missing) == -ENOENT);
        token = rcamirror_detail_token(m, 12);
        CHECK(rcamirror_set_detail(m, 12, token, f12, 3) == 0);
        CHECK(rcamirror_json(m, NULL, 10 * DAY, 12 * DAY + 36000 * S, &o, &missing) == 0);
        /* incident 5 only (6 opens after the end) */
        CHECK(integer(o, "incidents") == 5 && integer(o, "incidents_with_factors") == 3);
        CHECK(integer(dim(o, "partner"), "incidents") == 1 &&
              integer(dim(o, "partner"), "primary") == 1);
        CHECK(real(dim(o, "partner"), "downtime_seconds") == 60.0);
        CHECK(real(dim(o, "partner"), "share") == 0.3333);
        CHECK(real(dim(o, "technological"), "share") == 0.6667);
        json_decref(o);

        /* Within one day: [12d + 1h, 12d + 21h) holds both; the open one's downtime runs to
         * the end: 1 h. */
        CHECK(rcamirror_json(m, "a", 12 * DAY + 3600 * S, 12 * DAY + 75600 * S, &o,
                             &missing) == 0);
        CHECK(integer(o, "incidents") == 2);
        CHECK(real(dim(o, "partner"), "downtime_seconds") == 60.0);
        json_decref(o);

        /* The kept whole days follow a later end (the open incident's downtime grows with
         * it) and a changed day. */
        CHECK(rcamirror_json(m, "a", 10 * DAY, 12 * DAY + 36000 * S, &o, &missing) == 0);
        CHECK(real(dim(o, "process"), "downtime_seconds") == 2 * 86400.0 - 3600.0 + 36000.0);
        json_decref(o);
        CHECK(rcamirror_json(m, "a", 10 * DAY, 12 * DAY + 36001 * S, &o, &missing) == 0);
        CHECK(real(dim(o, "process"), "downtime_seconds") == 2 * 86400.0 - 3600.0 + 36001.0);
        json_decref(o);
        CHECK(rcamirror_set_day(m, "a", 10, a10, 4) == 0);     /* process gone */
        CHECK(rcamirror_json(m, "a", 10 * DAY, 12 * DAY + 36001 * S, &o, &missing) == 0);
        CHECK(integer(dim(o, "process"), "incidents") == 0);
        CHECK(real(dim(o, "process"), "downtime_seconds") == 0.0);
        json_decref(o);

        /* A set day forgets its incidents. */
        CHECK(rcamirror_set_day(m, "a", 12, NULL, 0) == 0);
        CHECK(rcamirror_json(m, "a", 12 * DAY + 3600 * S, 12 * DAY + 75600 * S, &o,
                             &missing) == -ENOENT);
        CHECK(rcamirror_free(m) == NULL);
        return check_summary();
}
