/* Unit tests for store_support, against a real PostgreSQL database (DORALOOP_TEST_DB, made
 * by tests/test_unit.py): observations saved through the store as generic deliveries, the
 * figures of a window (counts weighed by count, the weighted median, distinct customers,
 * the kinds), the features, the observation list with its filters and column kinds, the
 * per-service gauge, and a callback's error stopping each walk. */
#include "store_support.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "delivery.h"
#include "error.h"
#include "fixture.h"
#include "normalize.h"
#include "store.h"

#define US INT64_C(1000000)
#define DAY_US (86400 * US)
#define MAR1 (INT64_C(1709251200) * US)        /* 2024-03-01T00:00:00Z */


/* In [03-01, 03-03): A (acme, saved-cards, count 3, resolved after 1 h), B (globex,
 * resolved after 3 h), C (acme, open), a usage count of 50; D opened before the window.
 * Resolutions 3600 x3 and 10800: the middle two of four are 3600 and 3600. */
static const char *const bodies[] = {
        "{\"type\":\"observation\",\"id\":\"A\",\"kind\":\"support\",\"service\":\"api\","
        "\"feature\":\"saved-cards\",\"customer\":\"acme\",\"count\":3,"
        "\"occurred_at\":\"2024-03-01T10:00:00Z\",\"resolved_at\":\"2024-03-01T11:00:00Z\"}",
        "{\"type\":\"observation\",\"id\":\"B\",\"kind\":\"support\",\"service\":\"api\","
        "\"customer\":\"globex\",\"occurred_at\":\"2024-03-02T10:00:00Z\","
        "\"resolved_at\":\"2024-03-02T13:00:00Z\",\"incident\":\"INC-1\"}",
        "{\"type\":\"observation\",\"id\":\"C\",\"kind\":\"support\",\"service\":\"api\","
        "\"customer\":\"acme\",\"occurred_at\":\"2024-03-02T12:00:00Z\"}",
        "{\"type\":\"observation\",\"id\":\"U\",\"kind\":\"usage\",\"service\":\"api\","
        "\"feature\":\"saved-cards\",\"count\":50,\"occurred_at\":\"2024-03-01T12:00:00Z\"}",
        "{\"type\":\"observation\",\"id\":\"D\",\"kind\":\"support\",\"service\":\"web\","
        "\"occurred_at\":\"2024-02-20T12:00:00Z\"}",
};

struct rows {
        int n, fail_at;
        char first[64];
        const char *kinds;
};

static int keep_row(void *ctx, const struct store_row *r) {
        struct rows *l = ctx;

        if (++l->n == l->fail_at)
                return -EPIPE;
        if (l->n == 1)
                snprintf(l->first, sizeof(l->first), "%s", r->values[0] ? r->values[0] : "");
        l->kinds = r->kinds;
        return 0;
}

static void test_figures(struct store *s) {
        struct store_support_scope scope = { MAR1, MAR1 + 2 * DAY_US, "api", NULL };
        struct store_support_figures f;
        struct rows features = { 0 };
        struct error err = { 0 };

        CHECK(store_support_figures(s, &scope, &f, keep_row, &features, &err) == 0);
        CHECK(f.opened == 5);                   /* A 3 + B 1 + C 1 */
        CHECK(f.resolved == 4);                 /* A 3 + B 1 */
        CHECK(f.open_now == 1);                 /* C */
        CHECK(fabs(f.median_seconds - 3600.0) < 1e-6);
        CHECK(f.customers == 2);                /* acme, globex */
        CHECK(f.linked == 1);                   /* B */
        CHECK(f.kinds[0] == 5 && f.kinds[1] == 0 && f.kinds[2] == 50 && f.kinds[3] == 0);
        CHECK(features.n == 1);
        CHECK_STR(features.first, "saved-cards");

        /* all services: D is open at the end too; a window with nothing has no median */
        scope.service = NULL;
        features = (struct rows) { 0 };
        CHECK(store_support_figures(s, &scope, &f, keep_row, &features, &err) == 0);
        CHECK(f.opened == 5 && f.open_now == 2);
        scope.from_us = MAR1 - 60 * DAY_US, scope.to_us = MAR1 - 50 * DAY_US;
        CHECK(store_support_figures(s, &scope, &f, keep_row, &features, &err) == 0);
        CHECK(f.opened == 0 && isnan(f.median_seconds));

        /* a callback's error stops the walk */
        scope = (struct store_support_scope) { MAR1, MAR1 + 2 * DAY_US, NULL, NULL };
        features = (struct rows) { .fail_at = 1 };
        CHECK(store_support_figures(s, &scope, &f, keep_row, &features, &err) == -EPIPE);
}

static void test_list(struct store *s) {
        const char *all[6] = { NULL, NULL, NULL, NULL, NULL, "10" };
        const char *usage[6] = { "api", "saved-cards", "usage", NULL, NULL, "10" };
        struct rows l = { 0 };
        struct error err = { 0 };

        CHECK(store_support_observations(s, all, keep_row, &l, &err) == 5);
        CHECK_STR(l.kinds, "nssssssssnsssj");
        l = (struct rows) { 0 };
        CHECK(store_support_observations(s, usage, keep_row, &l, &err) == 1);
        l = (struct rows) { .fail_at = 2 };
        CHECK(store_support_observations(s, all, keep_row, &l, &err) == -EPIPE);
}

/* The gauge: every service with support requests, in name order, those of the window. */
static void test_opened(struct store *s) {
        struct rows l = { 0 };
        struct error err = { 0 };

        CHECK(store_support_opened(s, MAR1, MAR1 + 2 * DAY_US, keep_row, &l, &err) == 2);
        CHECK_STR(l.first, "api");
        CHECK_STR(l.kinds, "sn");
        l = (struct rows) { .fail_at = 1 };
        CHECK(store_support_opened(s, MAR1, MAR1 + 2 * DAY_US, keep_row, &l, &err) == -EPIPE);
}

int main(int argc, char **argv) {
        struct store *s = fixture_open(argc, argv, "test_store_support");

        CHECK(s != NULL);
        if (!s)
                return check_summary();
        CHECK(fixture_save_all(s, "o", bodies, sizeof(bodies) / sizeof(bodies[0]), MAR1) == 0);
        test_figures(s);
        test_list(s);
        test_opened(s);
        store_close(s);
        return check_summary();
}
