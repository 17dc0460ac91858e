/* Unit tests for cube: rows by revision, whole-day window sums at the exact day edges,
 * partial edge days from their events (and the -ENOENT that asks for them), the detail
 * token that keeps events older than the rollups from being used twice, series selection
 * (service, environments, unlinked incidents), the 32-day pages on both sides of a page
 * boundary and before 1970, the sum cache following every change, and many series. */
#include "cube.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "metrics.h"

#define D CUBE_DAY_US
#define H (D / 24)
#define DAY0 19849              /* 2024-05-06: 1715000000 s / 86400 = 19849.5 */

static const char *const PROD[] = { "production" };
static const char *const BOTH[] = { "production", "staging" };

/* A rollup row of `deployments` deployments (and 1 failed when there are any). */
static struct cube_row row(const char *service, const char *env, int32_t day,
                           int32_t deployments, int64_t rev) {
        return (struct cube_row) { .service = service, .environment = env, .day = day,
                                   .deployments = deployments, .failed = deployments > 0,
                                   .rev = rev };
}

static struct cube_event_in deploy_at(const char *service, const char *env, int64_t at_us) {
        return (struct cube_event_in) { .service = service, .environment = env, .kind = 'd',
                                        .control = METRICS_NO_CONTROL, .seconds = NAN,
                                        .at_us = at_us };
}

static struct cube_query window(const char *service, int64_t from, int64_t to) {
        return (struct cube_query) { .service = service, .envs = PROD, .n_envs = 1,
                                     .from_us = from, .to_us = to };
}

static struct metrics_acc *acc;        /* ~25 KB: one, on the heap */

/* The deployments q sums to, or -1 with the error (missing shows which day it wants). */
static int64_t deployments(struct cube *c, const struct cube_query *q, int32_t *missing) {
        int32_t day = INT32_MIN;
        int r = cube_sum(c, q, acc, &day);

        if (missing)
                *missing = day;
        return r == 0 ? acc->deployments : -1;
}

static void test_state(void) {
        struct cube *c = cube_new();

        CHECK(cube_epoch(c) == 0 && cube_xmin(c) == 0);
        cube_set_xmin(c, 100);
        cube_set_xmin(c, 90);                   /* never goes back */
        CHECK(cube_xmin(c) == 100);
        cube_reset(c, 7);
        CHECK(cube_epoch(c) == 7 && cube_xmin(c) == 0);
        CHECK(cube_free(c) == NULL);
        CHECK(cube_free(NULL) == NULL);
}

static void test_revisions_and_whole_days(void) {
        struct cube *c = cube_new();
        struct cube_row r = row("api", "production", DAY0, 3, 5);
        struct cube_query q = window("api", (int64_t) DAY0 * D, (int64_t) (DAY0 + 1) * D);

        CHECK(cube_apply(c, &r) == 0);
        CHECK(deployments(c, &q, NULL) == 3);
        r = row("api", "production", DAY0, 9, 4);       /* older: kept out */
        CHECK(cube_apply(c, &r) == 0);
        r = row("api", "production", DAY0, 8, 5);       /* the same revision: kept out */
        CHECK(cube_apply(c, &r) == 0);
        CHECK(deployments(c, &q, NULL) == 3);
        r = row("api", "production", DAY0, 4, 6);       /* newer: replaces, never adds */
        CHECK(cube_apply(c, &r) == 0);
        CHECK(deployments(c, &q, NULL) == 4);
        CHECK(acc->failed == 1);

        /* The exact edges: [DAY0, DAY0+1) holds DAY0's row, [DAY0+1, DAY0+2) does not, and
         * [DAY0-1, DAY0) ends where it starts. Both midnights: no edge day is needed. */
        r = row("api", "production", DAY0 + 1, 10, 1);
        CHECK(cube_apply(c, &r) == 0);
        q.from_us = (int64_t) (DAY0 + 1) * D, q.to_us = (int64_t) (DAY0 + 2) * D;
        CHECK(deployments(c, &q, NULL) == 10);
        q.from_us = (int64_t) (DAY0 - 1) * D, q.to_us = (int64_t) DAY0 * D;
        CHECK(deployments(c, &q, NULL) == 0);
        q.to_us = (int64_t) (DAY0 + 2) * D;             /* both days: 4 + 10 */
        CHECK(deployments(c, &q, NULL) == 14);
        cube_free(c);
}

/* A window that starts or ends inside a day needs that day's events; it says which. */
static void test_edge_days(void) {
        struct cube *c = cube_new();
        const int64_t day0 = (int64_t) DAY0 * D;
        struct cube_row r = row("api", "production", DAY0, 3, 1);
        struct cube_event_in ev[5] = {
                deploy_at("api", "production", day0 + 10 * H),  /* given out of order */
                deploy_at("api", "production", day0 + 2 * H),
                deploy_at("api", "production", day0 + 20 * H),
                deploy_at("web", "production", day0 + 12 * H),  /* another series: never */
                deploy_at("api", "staging", day0 + 12 * H),
        };
        struct cube_query q = window("api", day0 + 2 * H, day0 + D);
        int32_t missing;

        CHECK(cube_apply(c, &r) == 0);
        /* Both edges missing: the left one is asked for first. */
        q.to_us = day0 + D + H;
        CHECK(deployments(c, &q, &missing) == -1 && missing == DAY0);
        q.to_us = day0 + D;
        /* From 02:00: the whole day is not in the window, so its events are asked for. */
        CHECK(deployments(c, &q, &missing) == -1);
        CHECK(missing == DAY0);
        CHECK(cube_set_detail(c, DAY0, cube_detail_token(c, DAY0), ev, 5) == 0);
        /* [02:00, 24:00): the events at 02:00 (from is included), 10:00 and 20:00. */
        CHECK(deployments(c, &q, NULL) == 3);
        q.from_us = day0 + 2 * H + 1;                   /* one microsecond later: 2 */
        CHECK(deployments(c, &q, NULL) == 2);
        /* Inside one day, [10:00, 20:00): 10:00 only (to is excluded). */
        q.from_us = day0 + 10 * H, q.to_us = day0 + 20 * H;
        CHECK(deployments(c, &q, NULL) == 1);
        /* [00:00 DAY0, 12:00 DAY0+1): DAY0 whole from its row (3) plus the right edge, DAY0+1,
         * which is asked for; with no events that day it adds 0. */
        q.from_us = day0, q.to_us = day0 + D + 12 * H;
        CHECK(deployments(c, &q, &missing) == -1);
        CHECK(missing == DAY0 + 1);
        CHECK(cube_set_detail(c, DAY0 + 1, cube_detail_token(c, DAY0 + 1), NULL, 0) == 0);
        CHECK(deployments(c, &q, NULL) == 3);
        /* A row of a day drops that day's events: they may be older than the row. */
        r.rev = 2;
        CHECK(cube_apply(c, &r) == 0);
        q.from_us = day0 + 2 * H, q.to_us = day0 + D;
        CHECK(deployments(c, &q, &missing) == -1 && missing == DAY0);
        cube_free(c);
}

/* Events read while a row of their day was applied are used once, then asked for again. */
static void test_detail_token(void) {
        struct cube *c = cube_new();
        const int64_t day0 = (int64_t) DAY0 * D;
        struct cube_row r = row("api", "production", DAY0, 1, 1);
        struct cube_event_in ev = deploy_at("api", "production", day0 + 12 * H);
        struct cube_query q = window("api", day0 + H, day0 + D);
        uint64_t token = cube_detail_token(c, DAY0), other = cube_detail_token(c, DAY0 + 1);
        int32_t missing;

        CHECK(cube_apply(c, &r) == 0);                  /* between the token and the read */
        CHECK(cube_detail_token(c, DAY0) != token);
        CHECK(cube_detail_token(c, DAY0 + 1) == other); /* another day's stays */
        CHECK(cube_set_detail(c, DAY0, token, &ev, 1) == 0);
        CHECK(deployments(c, &q, NULL) == 1);           /* used once... */
        CHECK(deployments(c, &q, &missing) == -1 && missing == DAY0); /* ...then dropped */
        CHECK(cube_set_detail(c, DAY0, cube_detail_token(c, DAY0), &ev, 1) == 0);
        CHECK(deployments(c, &q, NULL) == 1);
        CHECK(deployments(c, &q, NULL) == 1);           /* a fresh token: kept */
        /* A reset forgets the events too, and moves every token on. */
        token = cube_detail_token(c, DAY0);
        cube_reset(c, 2);
        CHECK(cube_detail_token(c, DAY0) != token);
        CHECK(deployments(c, &q, &missing) == -1 && missing == DAY0);
        cube_free(c);
}

/* At most 8 days of events are kept: the least recently used goes first. */
static void test_detail_slots(void) {
        struct cube *c = cube_new();
        struct cube_query q = window("api", 0, 0);
        int32_t missing;

        for (int32_t day = 0; day < 9; day++) {
                struct cube_event_in ev = deploy_at("api", "production",
                                                    (int64_t) day * D + 12 * H);

                CHECK(cube_set_detail(c, day, cube_detail_token(c, day), &ev, 1) == 0);
        }
        q.from_us = 12 * H - 1, q.to_us = D;            /* day 0: evicted by day 8 */
        CHECK(deployments(c, &q, &missing) == -1 && missing == 0);
        q.from_us = 8 * D + H, q.to_us = 9 * D;         /* day 8: there */
        CHECK(deployments(c, &q, NULL) == 1);
        cube_free(c);
}

/* Which series a query takes: one service or all, the listed environments, and the
 * incidents linked to no deployment (environment "") only when asked. */
static void test_selection(void) {
        struct cube *c = cube_new();
        struct cube_row rows[] = {
                row("api", "production", DAY0, 1, 1), row("api", "staging", DAY0, 2, 1),
                row("web", "production", DAY0, 4, 1), row("api", "", DAY0, 0, 1),
        };
        struct cube_query q = window("api", (int64_t) DAY0 * D, (int64_t) (DAY0 + 1) * D);

        rows[3].incidents = 8;
        for (size_t i = 0; i < 4; i++)
                CHECK(cube_apply(c, &rows[i]) == 0);
        CHECK(deployments(c, &q, NULL) == 1);           /* api, production */
        CHECK(acc->incidents == 0);
        q.unlinked = true;                              /* + api's unlinked incidents */
        CHECK(deployments(c, &q, NULL) == 1 && acc->incidents == 8);
        q.envs = BOTH, q.n_envs = 2, q.unlinked = false;
        CHECK(deployments(c, &q, NULL) == 3);           /* 1 + 2 */
        q.service = NULL;                               /* every service: 1 + 2 + 4 */
        CHECK(deployments(c, &q, NULL) == 7);
        q.service = "nobody";
        CHECK(deployments(c, &q, NULL) == 0);
        q.service = "api", q.n_envs = 0;                /* no environment: nothing */
        CHECK(deployments(c, &q, NULL) == 0);
        cube_free(c);
}

struct seen {
        int n, unlinked;
};

static void count_series(void *ctx, const char *service, const char *environment) {
        struct seen *s = ctx;

        (void) service;
        s->n++;
        s->unlinked += !*environment;
}

static void test_series(void) {
        struct cube *c = cube_new();
        struct cube_row r = row("api", "production", DAY0, 1, 1);
        struct cube_event_in ev = deploy_at("web", "", (int64_t) DAY0 * D);
        struct seen s = { 0 };

        CHECK(cube_apply(c, &r) == 0);
        CHECK(cube_apply(c, &r) == 0);                  /* the same series again */
        /* A series known only from an edge day's events is listed too. */
        CHECK(cube_set_detail(c, DAY0, cube_detail_token(c, DAY0), &ev, 1) == 0);
        cube_series(c, count_series, &s);
        CHECK(s.n == 2 && s.unlinked == 1);
        cube_free(c);
}

/* Days are kept in pages of 32 (page p holds days [32p, 32p + 32), floored, so day -1 is
 * in the page of days [-32, 0)). Rows on both sides of a boundary, and before 1970. */
static void test_pages(void) {
        struct cube *c = cube_new();
        static const int32_t days[] = { 31, 32, 63, 64, -1, -32, -33, 19872, 19871 };
        struct cube_query q = window("api", 0, 0);

        /* Day i of the list gets 1 << i deployments, so a sum says which days it took. */
        for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
                struct cube_row r = row("api", "production", days[i], 1 << i, 1);

                CHECK(cube_apply(c, &r) == 0);
        }
        q.from_us = 32 * D, q.to_us = 64 * D;           /* 32 and 63: 2 + 4 */
        CHECK(deployments(c, &q, NULL) == 6);
        q.from_us = 31 * D, q.to_us = 65 * D;           /* 31..64: 1 + 2 + 4 + 8 */
        CHECK(deployments(c, &q, NULL) == 15);
        q.from_us = -33 * D, q.to_us = 0;               /* -33, -32, -1: 64 + 32 + 16 */
        CHECK(deployments(c, &q, NULL) == 112);
        q.from_us = -32 * D, q.to_us = 32 * D;          /* -32, -1, 31: 32 + 16 + 1 */
        CHECK(deployments(c, &q, NULL) == 49);
        /* 19871 (page 620: 19840..19871) and 19872 (page 621), added in reverse: 256 + 128 */
        q.from_us = (int64_t) 19871 * D, q.to_us = (int64_t) 19873 * D;
        CHECK(deployments(c, &q, NULL) == 384);
        q.from_us = -33 * D, q.to_us = (int64_t) 19873 * D; /* all: 2^9 - 1 */
        CHECK(deployments(c, &q, NULL) == 511);
        cube_free(c);
}

/* The cached whole-day sum follows every apply and reset (never a stale answer). */
static void test_cache(void) {
        struct cube *c = cube_new();
        struct cube_row r = row("api", "production", DAY0, 2, 1);
        struct cube_query q = window("api", (int64_t) DAY0 * D, (int64_t) (DAY0 + 7) * D);

        q.cache = true;
        CHECK(cube_apply(c, &r) == 0);
        CHECK(deployments(c, &q, NULL) == 2);
        CHECK(deployments(c, &q, NULL) == 2);           /* from the cache */
        r = row("api", "production", DAY0 + 3, 5, 1);
        CHECK(cube_apply(c, &r) == 0);
        CHECK(deployments(c, &q, NULL) == 7);
        q.envs = BOTH, q.n_envs = 2;                    /* another selection, another entry */
        r = row("api", "staging", DAY0 + 1, 1, 1);
        CHECK(cube_apply(c, &r) == 0);
        CHECK(deployments(c, &q, NULL) == 8);
        q.envs = PROD, q.n_envs = 1;
        CHECK(deployments(c, &q, NULL) == 7);
        /* More distinct queries than the cache holds (16): each still exact. */
        for (int32_t k = 1; k <= 20; k++) {
                q.to_us = (int64_t) (DAY0 + k) * D;     /* days DAY0..DAY0+k-1 */
                CHECK(deployments(c, &q, NULL) == (k <= 3 ? 2 : 7));
        }
        cube_reset(c, 3);
        CHECK(deployments(c, &q, NULL) == 0);
        cube_free(c);
}

/* Two selections are two cache entries, whatever bytes their names hold: an environment
 * "production\x1fstaging" (one name, no series: 0) is not the list {production, staging}
 * (2 + 1), nor is service "api\x1fproduction" with no environment service "api" with one. */
static void test_cache_keys(void) {
        static const char *const glued[] = { "production\x1fstaging" };
        struct cube *c = cube_new();
        struct cube_row rows[] = { row("api", "production", DAY0, 2, 1),
                                   row("api", "staging", DAY0, 1, 1) };
        struct cube_query q = window("api", (int64_t) DAY0 * D, (int64_t) (DAY0 + 1) * D);

        q.cache = true;
        for (size_t i = 0; i < 2; i++)
                CHECK(cube_apply(c, &rows[i]) == 0);
        q.envs = glued, q.n_envs = 1;
        CHECK(deployments(c, &q, NULL) == 0);
        q.envs = BOTH, q.n_envs = 2;
        CHECK(deployments(c, &q, NULL) == 3);
        q.service = "api\x1fproduction", q.n_envs = 0;
        CHECK(deployments(c, &q, NULL) == 0);
        q.service = "api", q.envs = PROD, q.n_envs = 1;
        CHECK(deployments(c, &q, NULL) == 2);
        cube_free(c);
}

/* The histograms and counters a row and an edge event add. */
static void test_figures(void) {
        struct cube *c = cube_new();
        const int32_t lead[] = { 100, 2, 200, 3, 300 };         /* odd trailing int ignored */
        const int32_t restore[] = { 50, 1 };
        struct cube_row r = row("api", "production", DAY0, 1, 1);
        struct cube_event_in ev[4] = {
                { "api", "production", 'c', .seconds = 60, .at_us = 1,
                  .control = METRICS_NO_CONTROL },
                { "api", "production", 'i', .seconds = NAN, .at_us = 2,
                  .control = METRICS_NO_CONTROL },
                { "api", "production", 'd', .failed = true, .emergency = true, .seconds = 30,
                  .control = METRICS_APPROVED, .at_us = 3 },
                { "api", "production", 'a', .seconds = 600, .at_us = 4,
                  .control = METRICS_NO_CONTROL },
        };
        struct cube_query q = window("api", (int64_t) (DAY0 - 1) * D + 12 * H,
                                     (int64_t) (DAY0 + 1) * D);

        for (int i = 0; i < 4; i++)
                ev[i].at_us += (int64_t) (DAY0 - 1) * D + 13 * H;
        r.hist[CUBE_LEAD] = lead, r.n_hist[CUBE_LEAD] = 5;
        r.hist[CUBE_RESTORE] = restore, r.n_hist[CUBE_RESTORE] = 2;
        r.changes = 5, r.incidents = 1, r.control[METRICS_UNAUTHORIZED] = 1;
        CHECK(cube_apply(c, &r) == 0);
        CHECK(cube_set_detail(c, DAY0 - 1, cube_detail_token(c, DAY0 - 1), ev, 4) == 0);
        CHECK(deployments(c, &q, NULL) == 2);           /* the row's 1 + the edge's 1 */
        CHECK(acc->changes == 6 && acc->incidents == 2 && acc->failed == 2);
        /* lead: the row's 2 + 3, and the edge change's 60 s; restore: the row's 1 only (the
         * edge incident has no duration); recovery: the failed deployment's 30 s. */
        CHECK(acc->lead.total == 6 && acc->restore.total == 1);
        CHECK(acc->recovered == 1 && acc->recovery.total == 1);
        CHECK(acc->recovery.counts[metrics_bucket(30) - METRICS_MIN_BUCKET] == 1);
        CHECK(acc->approval.total == 1);
        CHECK(acc->control[METRICS_APPROVED] == 1 && acc->control[METRICS_UNAUTHORIZED] == 1);
        CHECK(acc->emergency == 1);
        cube_free(c);
}

/* Many series (the indexes grow from 64 slots many times): each found again, and a
 * one-service sum takes only that service's series. */
static void test_many_series(void) {
        struct cube *c = cube_new();
        char names[3000][16];
        struct cube_query q = window(NULL, (int64_t) DAY0 * D, (int64_t) (DAY0 + 1) * D);

        for (int i = 0; i < 3000; i++) {
                struct cube_row r;

                snprintf(names[i], sizeof(names[i]), "svc-%d", i / 2);
                r = row(names[i], i % 2 ? "staging" : "production", DAY0, i % 2 ? 1 : 2, 1);
                CHECK(cube_apply(c, &r) == 0);
        }
        CHECK(deployments(c, &q, NULL) == 1500 * 2);    /* production only: 1,500 x 2 */
        q.envs = BOTH, q.n_envs = 2;
        CHECK(deployments(c, &q, NULL) == 1500 * 3);
        q.service = "svc-1499";
        CHECK(deployments(c, &q, NULL) == 3);
        q.service = "svc-0";
        CHECK(deployments(c, &q, NULL) == 3);
        cube_free(c);
}

int main(void) {
        acc = malloc(sizeof(*acc));
        test_state();
        test_revisions_and_whole_days();
        test_edge_days();
        test_detail_token();
        test_detail_slots();
        test_selection();
        test_series();
        test_pages();
        test_cache();
        test_cache_keys();
        test_figures();
        test_many_series();
        free(acc);
        return check_summary();
}
