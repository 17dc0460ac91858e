/* Unit tests for store_dora, against a real PostgreSQL database (DORALOOP_TEST_DB, made by
 * tests/test_unit.py): the rollup rows as the cube receives them (counts and sparse
 * histograms, by hand below), following them by xmin (only what changed, nothing twice),
 * a rebuild's new epoch, the events of an edge day, the four list queries with their column
 * kinds, and a callback's error stopping each walk. */
#include "store_dora.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cube.h"
#include "delivery.h"
#include "error.h"
#include "fixture.h"
#include "metrics.h"
#include "normalize.h"
#include "store.h"

#define SHA "9f1c2e4b7a0d3e5f61728394a5b6c7d8e9f0a1b2"
#define US INT64_C(1000000)
#define DAY 19850                       /* 2024-05-07: 1715040000 s / 86400 */
#define DAY_US ((int64_t) DAY * 86400 * US)
#define T0 (DAY_US + 8 * 3600 * US)     /* received, 08:00 that day */

static const struct store_model model = { "production", 24 };

/* The change (committed 2024-05-06T09:12:00Z) shipped by deploy-42 (finished
 * 2024-05-07T14:06:30Z), and an incident it caused, open 15:10 to 16:10. */
static const char *const bodies[] = {
        "{\"type\":\"change\",\"service\":\"api\",\"sha\":\"" SHA "\","
        "\"timestamp\":\"2024-05-06T09:12:00Z\"}",
        "{\"type\":\"deployment\",\"id\":\"deploy-42\",\"service\":\"api\","
        "\"environment\":\"production\",\"status\":\"success\",\"sha\":\"" SHA "\","
        "\"started_at\":\"2024-05-07T14:00:00Z\",\"finished_at\":\"2024-05-07T14:06:30Z\","
        "\"commits\":[{\"sha\":\"" SHA "\",\"timestamp\":\"2024-05-06T09:12:00Z\"}]}",
        "{\"type\":\"incident\",\"id\":\"INC-7\",\"service\":\"api\",\"status\":\"resolved\","
        "\"opened_at\":\"2024-05-07T15:10:00Z\",\"resolved_at\":\"2024-05-07T16:10:00Z\","
        "\"caused_by\":{\"deployment\":\"deploy-42\"}}",
};

/* Lead time: 2024-05-06T09:12:00Z to 2024-05-07T14:06:30Z = 24 h + 4 h 54 min 30 s
 * = 86,400 + 17,670 = 104,070 s. Time to restore: 3,600 s. */
#define LEAD_S 104070.0
#define RESTORE_S 3600.0

static int save(struct store *s, const char *id, const char *body) {
        return fixture_save(s, id, body, T0);
}

/* ---------------------------------------------------------------- rollups */

struct sink_log {
        int resets, rows, fail_at;      /* fail_at: the row() call that returns -EPIPE */
        int zero_rows;                  /* rows of a key that holds nothing (any more) */
        int64_t epoch;
        struct cube_row last;           /* the (api, production) row, its ints copied */
        int32_t lead[8], restore[8], recovery[8];
        size_t n_lead, n_restore, n_recovery;
};

static void sink_reset(void *ctx, int64_t epoch) {
        struct sink_log *l = ctx;

        l->resets++;
        l->epoch = epoch;
}

static int sink_row(void *ctx, const struct cube_row *r) {
        struct sink_log *l = ctx;

        if (++l->rows == l->fail_at)
                return -EPIPE;
        l->zero_rows += !r->deployments && !r->changes && !r->incidents;
        if (strcmp(r->service, "api") == 0 && strcmp(r->environment, "production") == 0) {
                l->last = *r;
                l->n_lead = r->n_hist[CUBE_LEAD] < 8 ? r->n_hist[CUBE_LEAD] : 8;
                l->n_restore = r->n_hist[CUBE_RESTORE] < 8 ? r->n_hist[CUBE_RESTORE] : 8;
                memcpy(l->lead, r->hist[CUBE_LEAD], l->n_lead * sizeof(int32_t));
                memcpy(l->restore, r->hist[CUBE_RESTORE], l->n_restore * sizeof(int32_t));
                l->n_recovery = r->n_hist[CUBE_RECOVERY] < 8 ? r->n_hist[CUBE_RECOVERY] : 8;
                memcpy(l->recovery, r->hist[CUBE_RECOVERY], l->n_recovery * sizeof(int32_t));
        }
        return 0;
}

static int read_rollups(struct store *s, struct sink_log *l, int64_t epoch, uint64_t xmin,
                        uint64_t *ret_xmin) {
        const struct store_rollup_sink sink = { l, sink_reset, sink_row };
        struct error err = { 0 };

        return store_dora_rollups(s, epoch, xmin, &sink, ret_xmin, &err);
}

static void test_rollups(struct store *s) {
        struct sink_log l = { 0 }, again = { 0 }, stop = { .fail_at = 1 };
        uint64_t xmin = 0, xmin2 = 0;
        int64_t rev, epoch;

        /* Never read (epoch 0): reset to the database's epoch, and every row: (api,
         * production, DAY), and a zero row of (api, "", DAY), the unlinked-incident key INC-7
         * marked before it was linked: a key once marked keeps a row, so that a reader
         * following by xid sees it go to zero (a deleted row could not be followed). */
        CHECK(read_rollups(s, &l, 0, 0, &xmin) == 0);
        CHECK(l.resets == 1 && l.epoch >= 1);
        epoch = l.epoch;
        CHECK(xmin > 0);
        CHECK(l.rows == 2 && l.zero_rows == 1);
        CHECK(l.last.day == DAY);
        CHECK(l.last.deployments == 1 && l.last.changes == 1 && l.last.incidents == 1);
        CHECK(l.last.failed == 1);                      /* INC-7 names deploy-42 */
        /* Sparse histograms {bucket, count}: one value each. Recovery: INC-7 resolved at
         * 16:10, 2 h 3 min 30 s = 7,410 s after deploy-42 finished. */
        CHECK(l.n_lead == 2 && l.lead[0] == metrics_bucket(LEAD_S) && l.lead[1] == 1);
        CHECK(l.n_restore == 2 && l.restore[0] == metrics_bucket(RESTORE_S) &&
              l.restore[1] == 1);
        CHECK(l.last.recovered == 1);
        CHECK(l.n_recovery == 2 && l.recovery[0] == metrics_bucket(7410) && l.recovery[1] == 1);
        rev = l.last.rev;

        /* Followed from xmin with nothing written since: no reset and no rows (on this
         * private cluster; a transaction left open elsewhere would hold xmin back, and
         * the rows read again would carry the revisions already read). */
        CHECK(read_rollups(s, &again, epoch, xmin, &xmin2) == 0);
        CHECK(again.resets == 0 && (again.rows == 0 || again.last.rev == rev));
        CHECK(xmin2 >= xmin);
        /* A second deployment that day: that row again, at a later revision. */
        CHECK(save(s, "dep-2", "{\"type\":\"deployment\",\"id\":\"deploy-43\",\"service\":"
                              "\"api\",\"environment\":\"production\",\"status\":\"success\","
                              "\"started_at\":\"2024-05-07T18:00:00Z\","
                              "\"finished_at\":\"2024-05-07T18:05:00Z\"}") == 0);
        again = (struct sink_log) { 0 };
        CHECK(read_rollups(s, &again, epoch, xmin2, &xmin) == 0);
        CHECK(again.resets == 0 && again.rows >= 1);
        CHECK(again.last.deployments == 2 && again.last.rev > rev);
        /* deploy-43 is no rollback or hotfix: deploy-42 stays recovered by INC-7 alone. */
        CHECK(again.last.recovered == 1 && again.last.failed == 1);

        /* The sink's error stops the walk and is the answer. */
        CHECK(read_rollups(s, &stop, 0, 0, &xmin2) == -EPIPE);
        CHECK(stop.rows == 1);
}

static int replay_normalize(struct delivery *d, void *ctx) {
        struct normalize_options o = normalize_defaults();

        (void) ctx;
        return delivery_normalize(d, NULL, &o);
}

/* A replay truncates the rollups: the epoch moves on, and a reader following the old one
 * is told to reset and gets every row again, whatever xmin it holds. */
static void test_rebuild(struct store *s) {
        struct store_replay_hooks h = { .chunk_deliveries = 100, .chunk_bytes = 1 << 20,
                                        .normalize = replay_normalize };
        struct sink_log l = { 0 };
        struct error err = { 0 };
        uint64_t xmin = 0;
        int64_t epoch;

        CHECK(read_rollups(s, &l, 0, 0, &xmin) == 0);   /* where it stands */
        epoch = l.epoch;
        CHECK(store_replay(s, &model, &h, &err) == 4);
        l = (struct sink_log) { 0 };
        CHECK(read_rollups(s, &l, epoch, xmin, &xmin) == 0);
        CHECK(l.resets == 1 && l.epoch > epoch);
        CHECK(l.rows >= 1 && l.last.deployments == 2 && l.last.changes == 1);
}

/* ---------------------------------------------------------------- events */

struct ev_log {
        int n, deployments, changes, incidents, fail_at;
        int64_t first_deploy_at;
        double lead_seconds, restore_seconds;
};

static int collect_event(void *ctx, const struct cube_event_in *e) {
        struct ev_log *l = ctx;

        if (++l->n == l->fail_at)
                return -EPIPE;
        switch (e->kind) {
        case 'd':
                if (!l->deployments++ || e->at_us < l->first_deploy_at)
                        l->first_deploy_at = e->at_us;
                break;
        case 'c':
                l->changes++;
                l->lead_seconds = e->seconds;
                break;
        case 'i':
                l->incidents++;
                l->restore_seconds = e->seconds;
                break;
        }
        return 0;
}

static void test_events(struct store *s) {
        struct ev_log l = { 0 }, none = { 0 }, stop = { .fail_at = 1 };
        struct error err = { 0 };
        const int64_t finished = DAY_US + (14 * 3600 + 6 * 60 + 30) * US;   /* 14:06:30 */

        /* The whole day: two deployments (14:06:30 and 18:05), the change and INC-7. */
        CHECK(store_dora_events(s, DAY_US, DAY_US + 86400 * US, collect_event, &l, &err) ==
              l.n);
        CHECK(l.deployments == 2 && l.changes == 1 && l.incidents == 1);
        CHECK(l.first_deploy_at == finished);
        CHECK(fabs(l.lead_seconds - LEAD_S) < 1e-6);
        CHECK(fabs(l.restore_seconds - RESTORE_S) < 1e-6);
        /* [from, to): ending at 14:06:30 leaves deploy-42 out, starting there keeps it. */
        l = (struct ev_log) { 0 };
        CHECK(store_dora_events(s, DAY_US, finished, collect_event, &l, &err) >= 0);
        CHECK(l.deployments == 0);
        l = (struct ev_log) { 0 };
        CHECK(store_dora_events(s, finished, finished + 1, collect_event, &l, &err) >= 0);
        CHECK(l.deployments == 1);
        /* The day before holds nothing (the change counts where it shipped). */
        CHECK(store_dora_events(s, DAY_US - 86400 * US, DAY_US, collect_event, &none, &err) == 0);
        CHECK(store_dora_events(s, DAY_US, DAY_US + 86400 * US, collect_event, &stop, &err) ==
              -EPIPE);
}

/* ---------------------------------------------------------------- lists */

struct rows {
        int n, fail_at;
        char names[4][16][32], values[4][16][512], kinds[4][20];
        int cols[4];
};

static int collect_row(void *ctx, const struct store_row *r) {
        struct rows *l = ctx;

        if (++l->n == l->fail_at)
                return -EPIPE;
        if (l->n > 4)
                return 0;
        l->cols[l->n - 1] = r->n;
        snprintf(l->kinds[l->n - 1], sizeof(l->kinds[0]), "%s", r->kinds);
        for (int c = 0; c < r->n && c < 16; c++) {
                snprintf(l->names[l->n - 1][c], sizeof(l->names[0][0]), "%s", r->names[c]);
                snprintf(l->values[l->n - 1][c], sizeof(l->values[0][0]), "%s",
                         r->values[c] ? r->values[c] : "(null)");
        }
        return 0;
}

/* The value of column name in row i, or NULL. */
static const char *col(const struct rows *l, int i, const char *name) {
        for (int c = 0; c < l->cols[i] && c < 16; c++)
                if (strcmp(l->names[i][c], name) == 0)
                        return l->values[i][c];
        return NULL;
}

static struct rows run(struct store *s, enum store_dora_list which, const char *const *params) {
        struct rows l = { 0 };
        struct error err = { 0 };

        CHECK(store_dora_list(s, which, params, collect_row, &l, &err) == l.n);
        for (int i = 0; i < l.n && i < 4; i++)
                CHECK((size_t) l.cols[i] == strlen(l.kinds[i]));
        return l;
}

static void test_lists(struct store *s) {
        const char *services[1] = { "{production}" };
        const char *staging[1] = { "{staging}" };
        const char *deps[5] = { "api", "{production}", NULL, NULL, "10" };
        const char *one[5] = { "api", "{production}", NULL, NULL, "1" };
        const char *incidents[4] = { NULL, NULL, NULL, "10" };
        const char *dep_id[1];
        struct rows l, page;
        struct error err = { 0 };
        struct rows stop = { .fail_at = 1 };

        l = run(s, STORE_DORA_SERVICES, services);
        CHECK(l.n == 1);
        CHECK_STR(col(&l, 0, "name"), "api");
        CHECK_STR(col(&l, 0, "environments"), "[\"production\"]");
        CHECK_STR(col(&l, 0, "last_deployment_at"), "2024-05-07T18:05:00Z");
        CHECK_STR(l.kinds[0], "sjs");
        /* Not a production environment by this parameter: no last deployment. */
        l = run(s, STORE_DORA_SERVICES, staging);
        CHECK_STR(col(&l, 0, "last_deployment_at"), "(null)");

        /* Newest first; a limit of 1 and then the page before its id. */
        l = run(s, STORE_DORA_DEPLOYMENTS, deps);
        CHECK(l.n == 2);
        CHECK_STR(col(&l, 0, "key"), "deploy-43");
        CHECK_STR(col(&l, 1, "key"), "deploy-42");
        CHECK_STR(col(&l, 1, "finished_at"), "2024-05-07T14:06:30Z");
        CHECK_STR(col(&l, 1, "rollback"), "f");
        CHECK_STR(col(&l, 1, "change_request"), "(null)");
        page = run(s, STORE_DORA_DEPLOYMENTS, one);
        CHECK(page.n == 1);
        one[3] = col(&page, 0, "id");
        page = run(s, STORE_DORA_DEPLOYMENTS, one);
        CHECK(page.n == 1 && strcmp(col(&page, 0, "key"), "deploy-42") == 0);
        /* Since 14:06:31 (its finished_at is what counts): deploy-43 only. */
        deps[2] = "1715090791000000";                   /* 2024-05-07T14:06:31Z */
        CHECK(run(s, STORE_DORA_DEPLOYMENTS, deps).n == 1);

        /* One deployment: its commits' lead time and its incident, as JSON text. */
        dep_id[0] = col(&l, 1, "id");
        page = run(s, STORE_DORA_DEPLOYMENT, dep_id);
        CHECK(page.n == 1);
        CHECK(strstr(col(&page, 0, "commits"), "\"lead_time_seconds\" : 104070") ||
              strstr(col(&page, 0, "commits"), "\"lead_time_seconds\":104070"));
        CHECK(strstr(col(&page, 0, "incidents"), "INC-7") != NULL);
        CHECK_STR(col(&page, 0, "failed"), "t");
        CHECK_STR(col(&page, 0, "change_request"), "(null)");
        dep_id[0] = "999999";
        CHECK(run(s, STORE_DORA_DEPLOYMENT, dep_id).n == 0);

        l = run(s, STORE_DORA_INCIDENTS, incidents);
        CHECK(l.n == 1);
        CHECK_STR(col(&l, 0, "key"), "INC-7");
        CHECK(strtod(col(&l, 0, "restore_seconds"), NULL) == RESTORE_S);
        CHECK_STR(col(&l, 0, "resolved_at"), "2024-05-07T16:10:00Z");
        CHECK(strcmp(col(&l, 0, "deployment_id"), "(null)") != 0);

        CHECK(store_dora_list(s, STORE_DORA_DEPLOYMENTS, deps, collect_row, &stop, &err) ==
              -EPIPE);
        /* A parameter PostgreSQL cannot read as its type: -EIO with its reason. */
        deps[4] = "ten";
        CHECK(store_dora_list(s, STORE_DORA_DEPLOYMENTS, deps, collect_row, &l, &err) == -EIO);
        CHECK(strstr(err.msg, "Listing: ") == err.msg && !strchr(err.msg, '\n'));
}

int main(int argc, char **argv) {
        struct store *s = fixture_open(argc, argv, "test_store_dora");

        CHECK(s != NULL);
        if (!s)
                return check_summary();
        CHECK(save(s, "c-1", bodies[0]) == 0);
        CHECK(save(s, "d-1", bodies[1]) == 0);
        CHECK(save(s, "i-1", bodies[2]) == 0);
        test_rollups(s);
        test_events(s);
        test_lists(s);
        test_rebuild(s);
        store_close(s);
        return check_summary();
}
