/* store_changes: reading change-control records; PostgreSQL builds the JSON. */
#include "store_changes.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "store.h"
#include "timefmt.h"

static int fail(struct error *err, PGconn *conn, const char *what) {
        char flat[200];
        size_t n = 0;

        for (const char *m = PQerrorMessage(conn); *m && n + 1 < sizeof(flat); m++)
                flat[n++] = *m == '\n' || *m == '\t' ? ' ' : *m;
        while (n && flat[n - 1] == ' ') /* libpq ends its message with a newline */
                n--;
        flat[n] = '\0';
        return error_set(err, EIO, "unavailable", NULL, "%s: %s", what, flat);
}

/* Runs a one-row, one-column query; *ret gets the value (malloc'd) or NULL for no row/NULL. */
static int one_text(struct store *s, const char *sql, int n, const char *const *params,
                    char **ret, const char *what, struct error *err) {
        PGresult *res = PQexecParams(store_pgconn(s), sql, n, NULL, params, NULL, NULL, 0);
        int r = 0;

        *ret = NULL;
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
                r = fail(err, store_pgconn(s), what);
        else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
                *ret = strdup(PQgetvalue(res, 0, 0));
                if (!*ret)
                        r = error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        }
        PQclear(res);
        return r;
}

int store_change_brief(struct store *s, const char *key, struct store_change_brief *ret,
                       struct error *err) {
        static const char sql[] =
                "SELECT status, coalesce(dl_us(planned_start)::text, ''), "
                "coalesce(dl_us(planned_end)::text, ''), services FROM change_requests "
                "WHERE key = $1";
        const char *params[1] = { key };
        PGresult *res = PQexecParams(store_pgconn(s), sql, 1, NULL, params, NULL, NULL, 0);
        int r = 0;

        memset(ret, 0, sizeof(*ret));
        ret->planned_start = ret->planned_end = TIME_UNSET;
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = fail(err, store_pgconn(s), "Reading a change request");
                PQclear(res);
                return r;
        }
        if (PQntuples(res) == 0) {
                PQclear(res);
                return 0;
        }
        ret->found = 1;
        ret->status = strdup(PQgetvalue(res, 0, 0));
        if (*PQgetvalue(res, 0, 1))
                ret->planned_start = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        if (*PQgetvalue(res, 0, 2))
                ret->planned_end = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        PQclear(res);
        /* The services, one per row, so no array literal needs parsing. */
        res = PQexecParams(store_pgconn(s),
                           "SELECT unnest(services) FROM change_requests WHERE key = $1",
                           1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = fail(err, store_pgconn(s), "Reading a change request");
        } else {
                int n = PQntuples(res);

                ret->services = calloc((size_t) n + 1, sizeof(char *));
                for (int i = 0; ret->services && i < n; i++)
                        if ((ret->services[ret->n_services] = strdup(PQgetvalue(res, i, 0))))
                                ret->n_services++;
                if (!ret->services || !ret->status)
                        r = error_set(err, ENOMEM, "unavailable", NULL, "Out of memory");
        }
        PQclear(res);
        if (r < 0)
                store_change_brief_free(ret);
        return r;
}

void store_change_brief_free(struct store_change_brief *b) {
        for (size_t i = 0; i < b->n_services; i++)
                free(b->services[i]);
        free(b->services);
        free(b->status);
        memset(b, 0, sizeof(*b));
}

/* The JSON of one change_requests row r. */
#define CHANGE_ITEM                                                                        \
        "json_build_object('key', r.key, 'title', r.title, 'status', r.status, "           \
        "'change_type', r.change_type, 'risk', r.risk, 'services', to_json(r.services), "  \
        "'planned_start', dl_rfc3339(r.planned_start), 'planned_end', "                     \
        "dl_rfc3339(r.planned_end), 'created_at', dl_rfc3339(r.created_at), "               \
        "'approved_at', dl_rfc3339(r.approved_at), 'updated_at', dl_rfc3339(r.updated_at), " \
        "'auto_created', r.auto_created, 'source', r.source)"

int store_change_json(struct store *s, const char *key, char **ret_json, struct error *err) {
        static const char sql[] =
                "SELECT (" CHANGE_ITEM "::jsonb || jsonb_build_object("
                "'history', (SELECT coalesce(jsonb_agg(jsonb_build_object("
                "    'at', dl_rfc3339(h.at), 'status', h.status, 'source', h.source, "
                "    'delivery_id', h.delivery_id, 'actor', h.actor, "
                "    'recorded_at', dl_rfc3339(h.recorded_at)) "
                "    ORDER BY h.at, dl_status_rank(h.status)), '[]') "
                "  FROM change_request_history h WHERE h.key = r.key), "
                "'deployments', (SELECT coalesce(jsonb_agg(jsonb_build_object("
                "    'id', d.id, 'source', d.source, 'key', d.key, 'service', d.service, "
                "    'environment', d.environment, 'status', d.status, 'sha', d.sha, "
                "    'started_at', dl_rfc3339(d.started_at), "
                "    'finished_at', dl_rfc3339(d.finished_at), 'link', d.change_link, "
                "    'control', d.control, 'control_reason', d.control_reason) "
                "    ORDER BY d.started_at, d.id), '[]') "
                "  FROM deployments d WHERE d.change_key = r.key), "
                "'incidents', (SELECT coalesce(jsonb_agg(jsonb_build_object("
                "    'source', i.source, 'key', i.key, 'service', i.service, "
                "    'status', i.status, 'opened_at', dl_rfc3339(i.opened_at), "
                "    'resolved_at', dl_rfc3339(i.resolved_at), 'link', i.link_reason) "
                "    ORDER BY i.opened_at, i.id), '[]') "
                "  FROM incidents i LEFT JOIN deployments d ON d.id = i.deployment_id "
                "  WHERE i.change_request = r.key OR d.change_key = r.key)))::text "
                "FROM change_requests r WHERE r.key = $1";
        const char *params[1] = { key };

        return one_text(s, sql, 1, params, ret_json, "Reading a change request", err);
}

int store_changes_json(struct store *s, const struct change_filter *f, char **ret_json,
                       struct error *err) {
        static const char sql[] =
                "WITH page AS ("
                "  SELECT r.key, " CHANGE_ITEM " AS item, "
                "         row_number() OVER (ORDER BY r.key) AS rn "
                "  FROM change_requests r "
                "  WHERE ($1::text IS NULL OR $1 = ANY (r.services)) "
                "    AND ($2::text IS NULL OR r.status = $2) "
                "    AND ($3::bigint IS NULL OR r.updated_at >= dl_time($3)) "
                "    AND ($4::text IS NULL OR r.key > $4) "
                "  ORDER BY r.key LIMIT $5::int + 1) "
                "SELECT json_build_object("
                "  'items', coalesce(json_agg(item ORDER BY rn) FILTER (WHERE rn <= $5::int), '[]'), "
                "  'next_cursor', CASE WHEN count(*) > $5::int THEN "
                "      (array_agg(key ORDER BY rn) FILTER (WHERE rn = $5::int))[1] END)::text "
                "FROM page";
        char since[24], limit[16];
        const char *params[5] = { f->service, f->status, NULL, f->after, limit };

        if (f->since_us != INT64_MIN) {
                snprintf(since, sizeof(since), "%" PRId64, f->since_us);
                params[2] = since;
        }
        snprintf(limit, sizeof(limit), "%d", f->limit);
        return one_text(s, sql, 5, params, ret_json, "Listing change requests", err);
}
