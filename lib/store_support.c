/* store_support: the read queries behind support load. */
#include "store_support.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <libpq-fe.h>

#include "error.h"
#include "supmirror.h"

const char *const store_support_kinds[4] = { "support", "feedback", "usage", "ux" };

static const char figures_sql[] =
        "SELECT opened, resolved, open_now, median_seconds, customers, linked, feedback, "
        "usage, ux FROM dl_support_figures(dl_time($1::bigint), dl_time($2::bigint), $3, $4)";

static const char features_sql[] =
        "SELECT feature, opened, customers "
        "FROM dl_support_features(dl_time($1::bigint), dl_time($2::bigint), $3, $4)";

static int64_t integer(const char *v) {
        return v ? strtoll(v, NULL, 10) : 0;
}

static int read_figures(void *ctx, const struct store_row *r) {
        struct store_support_figures *f = ctx;

        f->opened = integer(r->values[0]);
        f->resolved = integer(r->values[1]);
        f->open_now = integer(r->values[2]);
        f->median_seconds = r->values[3] ? strtod(r->values[3], NULL) : NAN;
        f->customers = integer(r->values[4]);
        f->linked = integer(r->values[5]);
        f->kinds[0] = f->opened;
        f->kinds[1] = integer(r->values[6]);
        f->kinds[2] = integer(r->values[7]);
        f->kinds[3] = integer(r->values[8]);
        return 0;
}

int store_support_figures(struct store *s, const struct store_support_scope *scope,
                          struct store_support_figures *ret, store_row_fn *feature, void *ctx,
                          struct error *err) {
        char from[24], to[24];
        const char *params[4] = { from, to, scope->service, scope->feature };
        int r;

        snprintf(from, sizeof(from), "%" PRId64, scope->from_us);
        snprintf(to, sizeof(to), "%" PRId64, scope->to_us);
        *ret = (struct store_support_figures) { .median_seconds = NAN };
        r = store_rows(s, figures_sql, 4, params, "nnnnnnnnn", NULL, read_figures, ret,
                       "Reading the support figures", err);
        if (r >= 0)
                r = store_rows(s, features_sql, 4, params, "snn", NULL, feature, ctx,
                               "Reading the support features", err);
        return r < 0 ? r : 0;
}

/* A list item: the stored id and source, then what the observation body holds. */
static const char observations_sql[] =
        "SELECT o.id, o.source, o.key, o.kind, o.service, o.feature, o.customer, o.summary, "
        "o.url, o.count, dl_rfc3339(o.occurred_at) AS occurred_at, "
        "dl_rfc3339(o.resolved_at) AS resolved_at, dl_rfc3339(o.updated_at) AS updated_at, "
        "to_json(o.incidents)::text AS incidents "
        "FROM observations o "
        "WHERE NOT o.deleted AND ($1::text IS NULL OR o.service = $1) "
        "AND ($2::text IS NULL OR o.feature = $2) "
        "AND ($3::text IS NULL OR o.kind = $3) "
        "AND ($4::bigint IS NULL OR o.occurred_at >= dl_time($4::bigint)) "
        "AND ($5::bigint IS NULL OR o.id < $5::bigint) "
        "ORDER BY o.id DESC LIMIT $6::int";

int store_support_observations(struct store *s, const char *const *params, store_row_fn *row,
                               void *ctx, struct error *err) {
        return store_rows(s, observations_sql, 6, params, "nssssssssnsssj", NULL, row, ctx,
                          "Listing observations", err);
}

int store_support_opened(struct store *s, int64_t from_us, int64_t to_us, store_row_fn *row,
                         void *ctx, struct error *err) {
        char from[24], to[24];
        const char *params[2] = { from, to };

        snprintf(from, sizeof(from), "%" PRId64, from_us);
        snprintf(to, sizeof(to), "%" PRId64, to_us);
        return store_rows(s, "SELECT service, opened FROM dl_support_opened_by_service("
                          "dl_time($1::bigint), dl_time($2::bigint))", 2, params, "sn", NULL,
                          row, ctx, "Reading the support gauge", err);
}

static const char since_what[] = "Reading the observations";
static const char since_sql[] =
        "SELECT e.epoch, pg_snapshot_xmin(pg_current_snapshot())::text, o.source, o.key, "
        "o.kind, o.service, o.feature, o.customer, o.count, dl_us(o.occurred_at), "
        "dl_us(o.resolved_at), cardinality(o.incidents) > 0, o.deleted "
        "FROM dl_support_epoch e LEFT JOIN observations o ON o.xid >= $1::text::xid8";

static const char *or_null(const PGresult *res, int i, int c) {
        return PQgetisnull(res, i, c) ? NULL : PQgetvalue(res, i, c);
}

int store_support_since(struct store *s, int64_t epoch, uint64_t xmin,
                        const struct store_obs_sink *sink, uint64_t *ret_xmin,
                        struct error *err) {
        PGresult *res = NULL;
        int r = store_read_since(s, since_sql, epoch, xmin, sink->reset, sink->ctx, since_what,
                                 &res, ret_xmin, err);

        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res) && r == 0; i++) {
                struct sup_obs o;

                if (PQgetisnull(res, i, 2))
                        continue; /* the LEFT JOIN's row when nothing changed */
                o = (struct sup_obs) {
                        .source = PQgetvalue(res, i, 2), .key = PQgetvalue(res, i, 3),
                        .kind = PQgetvalue(res, i, 4), .service = PQgetvalue(res, i, 5),
                        .feature = or_null(res, i, 6), .customer = or_null(res, i, 7),
                        .count = strtoll(PQgetvalue(res, i, 8), NULL, 10),
                        .occurred_us = strtoll(PQgetvalue(res, i, 9), NULL, 10),
                        .resolved_us = PQgetisnull(res, i, 10) ? SUPMIRROR_OPEN
                                       : strtoll(PQgetvalue(res, i, 10), NULL, 10),
                        .linked = PQgetvalue(res, i, 11)[0] == 't',
                        .deleted = PQgetvalue(res, i, 12)[0] == 't',
                };
                r = sink->row(sink->ctx, &o);
        }
        PQclear(res);
        return r;
}
