/* store_insights: the queries behind insights. */
#include "store_insights.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"

static int count_row(void *ctx, const struct store_row *r) {
        *(int *) ctx = r->values[0] ? (int) strtol(r->values[0], NULL, 10) : 0;
        return 0;
}

int store_insights_claim(struct store *s, int limit, store_row_fn *row, void *ctx,
                         struct error *err) {
        char n[16];
        const char *params[1] = { n };

        snprintf(n, sizeof(n), "%d", limit);
        return store_rows(s, "SELECT dl_insights_claim AS service FROM dl_insights_claim($1::int)",
                          1, params, "s", NULL, row, ctx, "Claiming the services to recompute",
                          err);
}

int store_insights_refresh(struct store *s, const char *service,
                           const struct store_insight_weights *w, struct error *err) {
        char days[24];
        const char *params[4] = { service, days, w->support_hours, w->failure_hours };
        int n = 0, r;

        snprintf(days, sizeof(days), "%ld days", w->window_days);
        r = store_rows(s, "SELECT dl_insights_refresh($1, $2::interval, $3::numeric, "
                       "$4::numeric)", 4, params, "n", NULL, count_row, &n,
                       "Recomputing insights", err);
        return r < 0 ? r : n;
}

static int ignore_row(void *ctx, const struct store_row *r) {
        (void) ctx, (void) r;
        return 0;
}

int store_insights_mark(struct store *s, const char *service, struct error *err) {
        const char *params[1] = { service };
        int r = store_rows(s, "SELECT dl_insights_mark($1)::text", 1, params, "s", NULL,
                           ignore_row, NULL, "Marking a service's insights", err);

        return r < 0 ? r : 0;
}

int store_insights_mark_all(struct store *s, long window_days, struct error *err) {
        char days[24];
        const char *params[1] = { days };
        int n = 0, r;

        snprintf(days, sizeof(days), "%ld days", window_days);
        r = store_rows(s, "SELECT dl_insights_mark_all($1::interval)", 1, params, "n", NULL,
                       count_row, &n, "Marking every service's insights", err);
        return r < 0 ? r : n;
}

int store_insights_list(struct store *s, const struct store_insight_query *q,
                        store_row_fn *row, void *ctx, struct error *err) {
        char limit[16], from[24], to[24];
        const char *params[9] = { q->service, q->status, q->rule, q->after, limit, from, to,
                                  NULL, NULL };

        snprintf(limit, sizeof(limit), "%d", q->limit);
        if (!q->live)
                return store_rows(s, "SELECT id, item::text FROM dl_insights_page($1, $2, $3, "
                                  "$4, $5::int)", 5, params, "sj", NULL, row, ctx,
                                  "Listing insights", err);
        snprintf(from, sizeof(from), "%" PRId64, q->from_us);
        snprintf(to, sizeof(to), "%" PRId64, q->to_us);
        params[7] = q->weights->support_hours;
        params[8] = q->weights->failure_hours;
        return store_rows(s, "SELECT id, item::text FROM dl_insights_live($1, $2, $3, $4, "
                          "$5::int, dl_time($6::bigint), dl_time($7::bigint), $8::numeric, "
                          "$9::numeric)", 9, params, "sj", NULL, row, ctx,
                          "Computing insights", err);
}

int store_insight_get(struct store *s, const char *id, store_row_fn *row, void *ctx,
                      struct error *err) {
        const char *params[1] = { id };

        return store_rows(s, "SELECT d::text AS item FROM dl_insight_detail($1) d "
                          "WHERE d IS NOT NULL", 1, params, "j", NULL, row, ctx,
                          "Reading an insight", err);
}

int store_insight_decide(struct store *s, const char *id, const char *decision,
                         const char *reason, const char *actor, store_row_fn *row, void *ctx,
                         struct error *err) {
        const char *params[4] = { id, decision, reason, actor };

        return store_rows(s, "SELECT outcome, item::text FROM dl_insight_decide($1, $2, $3, $4)",
                          4, params, "sj", NULL, row, ctx, "Recording a decision", err);
}

int store_insights_by_status(struct store *s, store_row_fn *row, void *ctx,
                             struct error *err) {
        return store_rows(s, "SELECT status, n FROM dl_insights_by_status()", 0, NULL, "sn",
                          NULL, row, ctx, "Counting insights", err);
}
