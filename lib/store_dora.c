/* store_dora: the read queries behind the DORA API. */
#include "store_dora.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cube.h"
#include "error.h"
#include "store.h"

/* "{1,2,3}" -> ints; returns how many, or -ENOMEM. *ret is malloc'ed (NULL when empty). */
static int parse_int_array(const char *s, int32_t **ret) {
        size_t cap = 1;
        int32_t *out;
        int n = 0;

        *ret = NULL;
        for (const char *p = s; *p; p++)
                cap += *p == ',';
        if (strcmp(s, "{}") == 0)
                return 0;
        out = malloc(cap * sizeof(*out));
        if (!out)
                return -ENOMEM;
        for (const char *p = s; *p;) {
                char *end;
                long v;

                if (*p == '{' || *p == ',' || *p == '}') {
                        p++;
                        continue;
                }
                v = strtol(p, &end, 10);
                if (end == p)
                        break;
                if ((size_t) n < cap)
                        out[n++] = (int32_t) v;
                p = end;
        }
        *ret = out;
        return n;
}

static const char rollups_sql[] =
        "SELECT e.epoch, pg_snapshot_xmin(pg_current_snapshot())::text, r.service, "
        "r.environment, r.day - date '1970-01-01', r.deployments, r.failed, r.rework, "
        "r.changes, r.incidents, r.recovered, r.lead_hist, r.restore_hist, r.recovery_hist, "
        "r.approval_hist, r.rev, r.approved, r.unauthorized, r.auto_created, r.unrecorded, "
        "r.emergency FROM dl_rollup_epoch e LEFT JOIN dl_rollups r ON r.xid >= $1::text::xid8";

/* Columns of rollups_sql after the histograms (which start at column 11, in CUBE_* order). */
enum { COL_HISTS = 11, COL_REV = COL_HISTS + CUBE_HISTS, COL_CONTROL, COL_EMERGENCY =
       COL_CONTROL + _METRICS_CONTROL_MAX };

static int read_rollups(struct store *s, uint64_t xmin, PGresult **ret, struct error *err) {
        char from[24];
        const char *params[1] = { from };
        PGresult *res;

        snprintf(from, sizeof(from), "%" PRIu64, xmin);
        res = PQexecParams(store_pgconn(s), rollups_sql, 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
                int r = store_error(s, "Reading rollups", err);

                PQclear(res);
                return r;
        }
        *ret = res;
        return 0;
}

int store_dora_rollups(struct store *s, int64_t epoch, uint64_t xmin,
                       const struct store_rollup_sink *sink, uint64_t *ret_xmin,
                       struct error *err) {
        PGresult *res = NULL;
        int64_t got;
        int r;

        r = read_rollups(s, epoch ? xmin : 0, &res, err);
        if (r < 0)
                return r;
        got = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (got != epoch) {
                if (epoch && xmin) { /* a rebuild: read everything */
                        PQclear(res);
                        res = NULL;
                        r = read_rollups(s, 0, &res, err);
                        if (r < 0)
                                return r;
                        got = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                }
                sink->reset(sink->ctx, got);
        }
        *ret_xmin = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        for (int i = 0; i < PQntuples(res) && r == 0; i++) {
                struct cube_row row;
                int32_t *hist[CUBE_HISTS] = { NULL };

                if (PQgetisnull(res, i, 2))
                        continue; /* the LEFT JOIN's row when nothing changed */
                row = (struct cube_row) {
                        .service = PQgetvalue(res, i, 2),
                        .environment = PQgetvalue(res, i, 3),
                        .day = (int32_t) strtol(PQgetvalue(res, i, 4), NULL, 10),
                        .deployments = (int32_t) strtol(PQgetvalue(res, i, 5), NULL, 10),
                        .failed = (int32_t) strtol(PQgetvalue(res, i, 6), NULL, 10),
                        .rework = (int32_t) strtol(PQgetvalue(res, i, 7), NULL, 10),
                        .changes = (int32_t) strtol(PQgetvalue(res, i, 8), NULL, 10),
                        .incidents = (int32_t) strtol(PQgetvalue(res, i, 9), NULL, 10),
                        .recovered = (int32_t) strtol(PQgetvalue(res, i, 10), NULL, 10),
                        .emergency = (int32_t) strtol(PQgetvalue(res, i, COL_EMERGENCY), NULL, 10),
                        .rev = strtoll(PQgetvalue(res, i, COL_REV), NULL, 10),
                };
                for (int c = 0; c < _METRICS_CONTROL_MAX; c++)
                        row.control[c] = (int32_t) strtol(PQgetvalue(res, i, COL_CONTROL + c),
                                                          NULL, 10);
                for (int h = 0; h < CUBE_HISTS && r == 0; h++) {
                        int n = parse_int_array(PQgetvalue(res, i, COL_HISTS + h), &hist[h]);

                        if (n < 0)
                                r = error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
                        else {
                                row.hist[h] = hist[h];
                                row.n_hist[h] = (size_t) n;
                        }
                }
                if (r == 0)
                        r = sink->row(sink->ctx, &row);
                for (int h = 0; h < CUBE_HISTS; h++)
                        free(hist[h]);
        }
        PQclear(res);
        return r;
}

int store_dora_events(struct store *s, int64_t from_us, int64_t to_us,
                      int (*ev)(void *ctx, const struct cube_event_in *e), void *ctx,
                      struct error *err) {
        static const char sql[] =
                "SELECT service, environment, kind, dl_us(at), failed, rework, seconds, "
                "control, emergency "
                "FROM dl_events(dl_time($1::bigint), dl_time($2::bigint), NULL)";
        char from[24], to[24];
        const char *params[2] = { from, to };
        PGresult *res;
        int r = 0, n;

        snprintf(from, sizeof(from), "%" PRId64, from_us);
        snprintf(to, sizeof(to), "%" PRId64, to_us);
        res = PQexecParams(store_pgconn(s), sql, 2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = store_error(s, "Reading events", err);
                PQclear(res);
                return r;
        }
        n = PQntuples(res);
        for (int i = 0; i < n && r == 0; i++) {
                struct cube_event_in e = {
                        .service = PQgetvalue(res, i, 0),
                        .environment = PQgetvalue(res, i, 1),
                        .kind = PQgetvalue(res, i, 2)[0],
                        .at_us = strtoll(PQgetvalue(res, i, 3), NULL, 10),
                        .failed = PQgetvalue(res, i, 4)[0] == 't',
                        .rework = PQgetvalue(res, i, 5)[0] == 't',
                        .control = PQgetisnull(res, i, 7) ? METRICS_NO_CONTROL
                                   : metrics_control_parse(PQgetvalue(res, i, 7)),
                        .emergency = PQgetvalue(res, i, 8)[0] == 't',
                        .seconds = PQgetisnull(res, i, 6) ? NAN
                                                          : strtod(PQgetvalue(res, i, 6), NULL),
                };

                r = ev(ctx, &e);
        }
        PQclear(res);
        return r < 0 ? r : n;
}

#define RFC3339(col) "dl_rfc3339(" col ")"

static const struct list_query {
        const char *sql;
        int n_params;
        const char *kinds;
} lists[_STORE_DORA_LIST_MAX] = {
        [STORE_DORA_SERVICES] = {
                "WITH RECURSIVE cs AS ("
                "  SELECT min(service) AS service FROM changes"
                "  UNION ALL SELECT (SELECT min(service) FROM changes c WHERE c.service > cs.service)"
                "  FROM cs WHERE cs.service IS NOT NULL), "
                "names AS (SELECT service FROM cs WHERE service IS NOT NULL"
                "  UNION SELECT service FROM service_environments"
                "  UNION SELECT DISTINCT service FROM incidents) "
                "SELECT n.service AS name, "
                "  (SELECT coalesce(json_agg(e.environment ORDER BY e.environment), '[]')::text"
                "   FROM service_environments e WHERE e.service = n.service) AS environments, "
                "  (SELECT " RFC3339("max(d.finished_at)") " FROM service_environments e"
                "   CROSS JOIN LATERAL (SELECT finished_at FROM deployments d"
                "     WHERE d.service = e.service AND d.environment = e.environment"
                "       AND d.status = 'success' AND d.finished_at IS NOT NULL"
                "     ORDER BY finished_at DESC LIMIT 1) d"
                "   WHERE e.service = n.service AND e.environment = ANY ($1::text[]))"
                "  AS last_deployment_at "
                "FROM names n ORDER BY n.service",
                1, "sjs" },
        [STORE_DORA_DEPLOYMENTS] = {
                "SELECT d.id, d.source, d.key, d.service, d.environment, d.status, d.sha, "
                RFC3339("d.started_at") " AS started_at, "
                RFC3339("d.finished_at") " AS finished_at, d.rollback, d.hotfix, "
                "d.change_request FROM deployments d "
                "WHERE ($1::text IS NULL OR d.service = $1) AND d.environment = ANY ($2::text[]) "
                "AND ($3::bigint IS NULL OR coalesce(d.finished_at, d.started_at, d.updated_at)"
                "     >= dl_time($3::bigint)) "
                "AND ($4::bigint IS NULL OR d.id < $4) ORDER BY d.id DESC LIMIT $5",
                5, "nssssssssbbs" },
        [STORE_DORA_DEPLOYMENT] = {
                "WITH d AS (SELECT * FROM deployments WHERE id = $1::bigint), "
                "next AS (SELECT n.* FROM d, LATERAL (SELECT n.* FROM deployments n"
                "  WHERE n.service = d.service AND n.environment = d.environment"
                "    AND n.status = 'success' AND n.finished_at IS NOT NULL"
                "    AND d.status = 'success' AND (n.finished_at, n.id) > (d.finished_at, d.id)"
                "  ORDER BY n.finished_at, n.id LIMIT 1) n) "
                "SELECT d.id, d.source, d.key, d.service, d.environment, d.status, d.sha, "
                RFC3339("d.started_at") " AS started_at, "
                RFC3339("d.finished_at") " AS finished_at, d.rollback, d.hotfix, "
                "(SELECT coalesce(json_agg(json_build_object('sha', c.sha, 'committed_at', "
                RFC3339("c.committed_at") ", 'lead_time_seconds', "
                "  greatest(0, extract(epoch FROM d.finished_at - c.committed_at)), 'reason', "
                "  dc.reason) ORDER BY c.committed_at, c.sha), '[]')::text"
                " FROM deployment_changes dc JOIN changes c ON c.service = dc.service"
                "  AND c.sha = dc.sha WHERE dc.deployment_id = d.id) AS commits, "
                "(SELECT coalesce(json_agg(json_build_object('id', i.id, 'key', i.key, "
                "  'source', i.source, 'status', i.status, 'opened_at', " RFC3339("i.opened_at")
                ", 'resolved_at', " RFC3339("i.resolved_at") ", 'link_reason', i.link_reason, "
                "  'severity', i.severity, 'counted', dl_incident_counts(i.severity))"
                "  ORDER BY i.opened_at, i.id), '[]')::text FROM incidents i"
                " WHERE i.deployment_id = d.id AND i.status <> 'deleted') AS incidents, "
                "(SELECT json_build_object('key', d.change_request, 'status', r.status, "
                "  'change_type', r.change_type, 'risk', r.risk, 'title', r.title)::text"
                " FROM (SELECT 1) one LEFT JOIN change_requests r ON r.key = d.change_request"
                " WHERE d.change_request IS NOT NULL) AS change_request, "
                "(SELECT (SELECT n.rollback OR n.hotfix FROM next n) IS TRUE OR EXISTS ("
                "  SELECT 1 FROM incidents i WHERE i.deployment_id = d.id"
                "  AND i.status <> 'deleted' AND dl_incident_counts(i.severity)))"
                " AND d.status = 'success' AS failed "
                "FROM d",
                1, "nssssssssbbjjjb" },
        [STORE_DORA_INCIDENTS] = {
                "SELECT i.id, i.source, i.key, i.service, i.title, i.status, i.severity, "
                "i.root_cause, " RFC3339("i.opened_at") " AS opened_at, "
                RFC3339("i.resolved_at") " AS resolved_at, i.deployment_id, i.link_reason, "
                "CASE WHEN i.status = 'resolved' THEN greatest(0, extract(epoch FROM "
                "  i.resolved_at - i.opened_at)) END AS restore_seconds, "
                "dl_incident_counts(i.severity) AS counted, "
                "to_json(i.customers)::text AS customers "
                "FROM incidents i WHERE ($1::text IS NULL OR i.service = $1) "
                "AND ($2::bigint IS NULL OR i.opened_at >= dl_time($2::bigint)) "
                "AND ($3::bigint IS NULL OR i.id < $3) AND i.status <> 'deleted' "
                "ORDER BY i.id DESC LIMIT $4",
                4, "nsssssssssnsnbj" },
};

int store_dora_list(struct store *s, enum store_dora_list which, const char *const *params,
                    store_row_fn *row, void *ctx, struct error *err) {
        const struct list_query *q = &lists[which];

        return store_rows(s, q->sql, q->n_params, params, q->kinds, NULL, row, ctx, "Listing",
                          err);
}
