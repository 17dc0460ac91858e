/* Unit tests for supmirror: each figure of GET /api/v1/support against a plain count over
 * the same observations (the reference's definitions), replaced states, deletions, filters,
 * the weighted median and the features' order. */
#include "supmirror.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define H INT64_C(3600000000)

static void add(struct supmirror *m, const char *key, const char *kind, const char *service,
                const char *feature, const char *customer, int64_t count, int64_t occurred,
                int64_t resolved, bool linked, bool deleted) {
        struct sup_obs o = { .source = "generic", .key = key, .kind = kind,
                             .service = service, .feature = feature, .customer = customer,
                             .count = count, .occurred_us = occurred, .resolved_us = resolved,
                             .linked = linked, .deleted = deleted };

        CHECK(supmirror_apply(m, &o) == 0);
}

static struct sup_figures figures(struct supmirror *m, const char *service,
                                  const char *feature, int64_t from, int64_t to) {
        struct sup_query q = { .service = service, .feature = feature, .from_us = from,
                               .to_us = to };
        struct sup_figures f;

        CHECK(supmirror_figures(m, &q, &f) == 0);
        return f;
}

/* A random history checked against a plain recount (the reference's definitions). */
static void random_history(void) {
        struct supmirror *m = supmirror_new();
        static const char *const svcs[] = { "a", "b" }, *const feats[] = { NULL, "f1", "f2" },
                          *const custs[] = { NULL, "", "c1", "c2", "c3" };
        struct { int s, f, c; int64_t n, occ, res; bool linked, deleted; } o[300];
        char key[16];

        srand(7);
        for (int round = 0; round < 3; round++)
                for (int i = 0; i < 300; i++) { /* later rounds replace earlier states */
                        o[i].s = rand() % 2, o[i].f = rand() % 3, o[i].c = rand() % 5;
                        o[i].n = rand() % 4, o[i].occ = (rand() % 200) * H;
                        o[i].res = rand() % 3 ? o[i].occ + (rand() % 50) * H : SUPMIRROR_OPEN;
                        o[i].linked = rand() % 4 == 0, o[i].deleted = rand() % 10 == 0;
                        snprintf(key, sizeof(key), "k%d", i);
                        add(m, key, "support", svcs[o[i].s], feats[o[i].f], custs[o[i].c],
                            o[i].n, o[i].occ, o[i].res, o[i].linked, o[i].deleted);
                }
        CHECK(supmirror_size(m) == 300);
        for (int w = 0; w < 300; w++) {
                /* some windows on midnights, some in one day, most across a few */
                int64_t from = w % 3 == 0 ? (rand() % 7) * 24 * H
                                          : (rand() % 150) * H + rand() % 1000;
                int64_t to = w % 3 == 0 ? from + (rand() % 3 + 1) * 24 * H
                                        : from + (rand() % 80 + 1) * H - rand() % 1000;
                int s = rand() % 3; /* 2: all */
                struct sup_figures f = figures(m, s < 2 ? svcs[s] : NULL, NULL, from, to);
                int64_t opened = 0, resolved = 0, open_now = 0, linked = 0, n_res = 0;
                int64_t vals[1200];
                bool seen[5] = { false };
                int64_t customers = 0;

                for (int i = 0; i < 300; i++) {
                        if (o[i].deleted || (s < 2 && o[i].s != s))
                                continue;
                        if (o[i].occ >= from && o[i].occ < to) {
                                opened += o[i].n;
                                linked += o[i].linked ? o[i].n : 0;
                                if (o[i].n > 0 && o[i].c >= 2 && !seen[o[i].c])
                                        seen[o[i].c] = true, customers++;
                        }
                        if (o[i].res != SUPMIRROR_OPEN && o[i].res >= from && o[i].res < to) {
                                resolved += o[i].n;
                                for (int k = 0; k < o[i].n; k++)
                                        vals[n_res++] = o[i].res - o[i].occ;
                        }
                        if (o[i].occ < to && (o[i].res == SUPMIRROR_OPEN || o[i].res >= to))
                                open_now += o[i].n;
                }
                CHECK(f.opened == opened && f.kinds[0] == opened);
                CHECK(f.resolved == resolved);
                CHECK(f.open_now == open_now);
                CHECK(f.linked == linked);
                CHECK(f.customers == customers);
                { /* the features: each with an opened request, its sum and customers */
                        size_t n_expected = 0;

                        for (int fe = 1; fe < 3; fe++) {
                                int64_t fo = 0, fc = 0;
                                bool present = false, fseen[5] = { false };

                                for (int i = 0; i < 300; i++)
                                        if (!o[i].deleted && (s == 2 || o[i].s == s) &&
                                            o[i].f == fe && o[i].occ >= from && o[i].occ < to) {
                                                present = true;
                                                fo += o[i].n;
                                                if (o[i].n > 0 && o[i].c >= 2 && !fseen[o[i].c])
                                                        fseen[o[i].c] = true, fc++;
                                        }
                                if (!present)
                                        continue;
                                n_expected++;
                                for (size_t k = 0; k < f.n_features; k++)
                                        if (strcmp(f.features[k].feature, feats[fe]) == 0)
                                                CHECK(f.features[k].opened == fo &&
                                                      f.features[k].customers == fc);
                        }
                        CHECK(f.n_features == n_expected);
                        for (size_t k = 1; k < f.n_features; k++)
                                CHECK(f.features[k - 1].opened >= f.features[k].opened);
                }
                if (n_res == 0)
                        CHECK(isnan(f.median_seconds));
                else { /* sort and take the middle, as percentile_cont(0.5) */
                        for (int i = 1; i < n_res; i++)
                                for (int j = i; j > 0 && vals[j - 1] > vals[j]; j--) {
                                        int64_t t = vals[j];

                                        vals[j] = vals[j - 1], vals[j - 1] = t;
                                }
                        CHECK(f.median_seconds == ((double) vals[(n_res - 1) / 2] / 1e6 +
                                                   (double) vals[n_res / 2] / 1e6) / 2);
                }
                { /* a change between two answers: kept whole-day figures must follow */
                        int i = rand() % 300;

                        o[i].s = rand() % 2, o[i].f = rand() % 3, o[i].c = rand() % 5;
                        o[i].n = rand() % 4, o[i].occ = (rand() % 200) * H + rand() % 7;
                        o[i].res = rand() % 3 ? o[i].occ + (rand() % 50) * H : SUPMIRROR_OPEN;
                        o[i].linked = rand() % 4 == 0, o[i].deleted = rand() % 10 == 0;
                        snprintf(key, sizeof(key), "k%d", i);
                        add(m, key, "support", svcs[o[i].s], feats[o[i].f], custs[o[i].c],
                            o[i].n, o[i].occ, o[i].res, o[i].linked, o[i].deleted);
                }
        }
        supmirror_free(m);
}

int main(void) {
        struct supmirror *m = supmirror_new();
        struct sup_figures f;
        struct sup_obs bad = { .source = "s", .key = "k", .kind = "nope", .service = "a" };

        CHECK(m != NULL);
        CHECK(supmirror_epoch(m) == 0);
        supmirror_reset(m, 3);
        CHECK(supmirror_epoch(m) == 3 && supmirror_xmin(m) == 0);
        supmirror_set_xmin(m, 42);
        CHECK(supmirror_xmin(m) == 42);
        CHECK(supmirror_apply(m, &bad) == -EINVAL);

        /* Nothing stored: zeros, no median, no features; an unknown service likewise. */
        f = figures(m, NULL, NULL, 0, 24 * H);
        CHECK(f.opened == 0 && f.open_now == 0 && isnan(f.median_seconds) && f.n_features == 0);

        add(m, "1", "support", "a", "cards", "c1", 1, 1 * H, 3 * H, true, false);
        add(m, "2", "support", "a", "cards", "c1", 2, 2 * H, SUPMIRROR_OPEN, false, false);
        add(m, "3", "support", "a", "login", "c2", 1, 2 * H, 12 * H, false, false);
        add(m, "4", "support", "b", NULL, "c3", 1, 5 * H, 6 * H, false, false);
        add(m, "5", "feedback", "a", "cards", "c9", 4, 5 * H, SUPMIRROR_OPEN, false, false);
        add(m, "6", "ux", "a", NULL, NULL, 1, 5 * H, SUPMIRROR_OPEN, false, false);
        add(m, "7", "support", "a", "login", "", 1, 30 * H, SUPMIRROR_OPEN, false, false);
        add(m, "8", "support", "a", "zz", "c5", 0, 2 * H, SUPMIRROR_OPEN, false, false);

        f = figures(m, "a", NULL, 0, 24 * H);
        CHECK(f.opened == 4 && f.kinds[0] == 4 && f.kinds[1] == 4 && f.kinds[2] == 0 &&
              f.kinds[3] == 1);
        CHECK(f.resolved == 2);
        CHECK(f.open_now == 2);        /* "2" (count 2); "8" counts 0; "7" not yet opened */
        CHECK(f.linked == 1);
        CHECK(f.customers == 2);       /* c1, c2: c5's only request counts 0 */
        CHECK(f.median_seconds == (2 * 3600.0 + 10 * 3600.0) / 2);
        /* features: cards 3, login 1, zz 0 (no customer: count 0) */
        CHECK(f.n_features == 3);
        CHECK(strcmp(f.features[0].feature, "cards") == 0 && f.features[0].opened == 3 &&
              f.features[0].customers == 1);
        CHECK(strcmp(f.features[1].feature, "login") == 0 && f.features[1].opened == 1 &&
              f.features[1].customers == 1);
        CHECK(strcmp(f.features[2].feature, "zz") == 0 && f.features[2].customers == 0);

        /* open_now at an end before a resolution: "1" still open at 2h30 */
        f = figures(m, "a", NULL, 2 * H, 2 * H + H / 2);
        CHECK(f.open_now == 1 + 2 + 1 && f.opened == 3 && isnan(f.median_seconds));

        /* A feature filter, an unknown one, every service. */
        f = figures(m, NULL, "login", 0, 48 * H);
        CHECK(f.opened == 2 && f.customers == 1 && f.n_features == 1);
        f = figures(m, NULL, "nope", 0, 48 * H);
        CHECK(f.opened == 0 && f.n_features == 0);
        f = figures(m, "nope", NULL, 0, 48 * H);
        CHECK(f.opened == 0);
        f = figures(m, NULL, NULL, 0, 24 * H);
        CHECK(f.opened == 5 && f.customers == 3 && f.resolved == 3);

        /* A newer state replaces the old; a deletion takes it out of every figure. */
        add(m, "1", "support", "a", "cards", "c1", 1, 1 * H, 2 * H, true, true);
        f = figures(m, "a", NULL, 0, 24 * H);
        CHECK(f.opened == 3 && f.resolved == 1 && f.linked == 0);
        CHECK(f.median_seconds == 10 * 3600.0);
        CHECK(supmirror_size(m) == 8);

        /* Ties in the median with weights: 1s x3, 5s x1 -> positions 1 and 2 are both 1s. */
        supmirror_reset(m, 4);
        CHECK(supmirror_size(m) == 0);
        add(m, "x", "support", "a", NULL, NULL, 3, 0, 1000000, false, false);
        add(m, "y", "support", "a", NULL, NULL, 1, 0, 5000000, false, false);
        f = figures(m, NULL, NULL, 0, 10000000);
        CHECK(f.median_seconds == 1.0);
        add(m, "z", "support", "a", NULL, NULL, 2, 0, 9000000, false, false);
        f = figures(m, NULL, NULL, 0, 10000000);
        CHECK(f.median_seconds == 3.0); /* 1 1 1 5 9 9: (1 + 5) / 2 */
        supmirror_free(m);

        random_history();
        return check_summary();
}
