/* store_rca: reading the root-cause figures. */
#include "store_rca.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rcamirror.h"
#include "store.h"

int store_rca(struct store *s, const char *service, int64_t from_us, int64_t to_us,
              char **ret_window, char **ret_previous, struct error *err) {
        static const char sql[] =
                "SELECT dl_rca_fast($1, $2::bigint, $3::bigint), "
                "dl_rca_fast($1, $4::bigint, $2::bigint)";
        char from[24], to[24], before[24];
        const char *params[4] = { service, from, to, before };
        PGresult *res;
        int r = 0;

        snprintf(from, sizeof(from), "%" PRId64, from_us);
        snprintf(to, sizeof(to), "%" PRId64, to_us);
        snprintf(before, sizeof(before), "%" PRId64, from_us - (to_us - from_us));
        *ret_window = *ret_previous = NULL;
        res = PQexecParams(store_pgconn(s), sql, 4, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                r = store_error(s, "Reading the root-cause figures", err);
                PQclear(res);
                return r;
        }
        *ret_window = strdup(PQgetvalue(res, 0, 0));
        *ret_previous = strdup(PQgetvalue(res, 0, 1));
        PQclear(res);
        if (!*ret_window || !*ret_previous) {
                free(*ret_window), free(*ret_previous);
                *ret_window = *ret_previous = NULL;
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        }
        return 0;
}

int store_rca_by_dimension(struct store *s, int64_t from_us, int64_t to_us,
                           store_rca_count_fn *fn, void *ctx, struct error *err) {
        char from[24], to[24];
        const char *params[2] = { from, to };
        PGresult *res;
        int r = 0;

        snprintf(from, sizeof(from), "%" PRId64, from_us);
        snprintf(to, sizeof(to), "%" PRId64, to_us);
        res = PQexecParams(store_pgconn(s), "SELECT * FROM dl_rca_by_dimension($1, $2)", 2,
                           NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = store_error(s, "Reading the incidents by dimension", err);
                PQclear(res);
                return r;
        }
        for (int i = 0; i < PQntuples(res) && r == 0; i++)
                r = fn(ctx, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                       strtoll(PQgetvalue(res, i, 2), NULL, 10));
        PQclear(res);
        return r;
}

int store_rca_reference(struct store *s, const char *service, int64_t from_us, int64_t to_us,
                        char **ret_json, struct error *err) {
        char from[24], to[24];
        const char *params[3] = { service, from, to };
        PGresult *res;

        snprintf(from, sizeof(from), "%" PRId64, from_us);
        snprintf(to, sizeof(to), "%" PRId64, to_us);
        *ret_json = NULL;
        res = PQexecParams(store_pgconn(s), "SELECT dl_rca($1, $2::bigint, $3::bigint)", 3,
                           NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                int r = store_error(s, "Reading the root-cause reference", err);

                PQclear(res);
                return r;
        }
        *ret_json = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        return *ret_json ? 0 : error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
}

static const char since_what[] = "Reading the root-cause rollups";
static const char since_sql[] =
        "SELECT e.epoch, pg_snapshot_xmin(pg_current_snapshot())::text, d.service, "
        "d.day - date '1970-01-01', r.dimension, r.category, r.incidents, r.primaries, "
        "(r.resolved_seconds * 1000000)::bigint, r.open_incidents, "
        "(r.open_opened * 1000000)::bigint "
        "FROM dl_rca_epoch e LEFT JOIN rca_daily_days d ON d.xid >= $1::text::xid8 "
        "LEFT JOIN rca_daily r ON r.service = d.service AND r.day = d.day "
        "ORDER BY d.service, d.day";

static int64_t integer(const PGresult *res, int i, int c) {
        return strtoll(PQgetvalue(res, i, c), NULL, 10);
}

/* Hands the rows of res[from, to) (one service and day) to the sink. */
static int hand_day(const struct store_rca_sink *sink, PGresult *res, int from, int to,
                    struct rca_row *rows) {
        size_t n = 0;

        for (int i = from; i < to; i++) {
                if (PQgetisnull(res, i, 4))
                        continue; /* an emptied day */
                rows[n++] = (struct rca_row) {
                        .dimension = PQgetvalue(res, i, 4), .category = PQgetvalue(res, i, 5),
                        .incidents = integer(res, i, 6), .primaries = integer(res, i, 7),
                        .resolved_us = integer(res, i, 8), .open_incidents = integer(res, i, 9),
                        .open_opened_us = integer(res, i, 10) };
        }
        return sink->day(sink->ctx, PQgetvalue(res, from, 2),
                         (int32_t) integer(res, from, 3), rows, n);
}

int store_rca_since(struct store *s, int64_t epoch, uint64_t xmin,
                    const struct store_rca_sink *sink, uint64_t *ret_xmin, struct error *err) {
        PGresult *res = NULL;
        struct rca_row *rows;
        int n, r = store_read_since(s, since_sql, epoch, xmin, sink->reset, sink->ctx,
                                    since_what, &res, ret_xmin, err);

        if (r < 0)
                return r;
        n = PQntuples(res);
        rows = malloc(((size_t) n + 1) * sizeof(*rows));
        if (!rows) {
                PQclear(res);
                return error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        }
        for (int i = 0, start = 0; i <= n && r == 0; i++) {
                if (i < n && PQgetisnull(res, i, 2)) {
                        start = i + 1; /* the LEFT JOIN's row when nothing changed */
                        continue;
                }
                if (i > start && (i == n || strcmp(PQgetvalue(res, i, 2),
                                                   PQgetvalue(res, start, 2)) != 0 ||
                                  strcmp(PQgetvalue(res, i, 3), PQgetvalue(res, start, 3)) != 0)) {
                        r = hand_day(sink, res, start, i, rows);
                        start = i;
                }
        }
        free(rows);
        PQclear(res);
        return r;
}

int store_rca_day_facts(struct store *s, int32_t day,
                        int (*fn)(void *ctx, const struct rca_fact *f), void *ctx,
                        struct error *err) {
        static const char sql[] =
                "SELECT f.incident_id, f.service, dl_us(f.opened_at), "
                "(f.resolved_seconds * 1000000)::bigint, f.dimension, f.category, f.role "
                "FROM dl_rca_incident_factors((date '1970-01-01' + $1::int)::timestamp AT "
                "TIME ZONE 'UTC', (date '1970-01-01' + $1::int + 1)::timestamp AT TIME ZONE "
                "'UTC', NULL) f";
        char d[16];
        const char *params[1] = { d };
        PGresult *res;
        int r = 0;

        snprintf(d, sizeof(d), "%" PRId32, day);
        res = PQexecParams(store_pgconn(s), sql, 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = store_error(s, "Reading an edge day's root causes", err);
                PQclear(res);
                return r;
        }
        for (int i = 0; i < PQntuples(res) && r == 0; i++) {
                const struct rca_fact f = {
                        .incident_id = integer(res, i, 0), .service = PQgetvalue(res, i, 1),
                        .opened_us = integer(res, i, 2),
                        .resolved_us = PQgetisnull(res, i, 3) ? RCAMIRROR_OPEN
                                                              : integer(res, i, 3),
                        .dimension = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4),
                        .category = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5),
                        .role = PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6),
                };

                r = fn(ctx, &f);
        }
        PQclear(res);
        return r;
}
