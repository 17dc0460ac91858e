/* store_changes: reading change-control records as the store's rows. */
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
                r = store_error(s, "Reading a change request", err);
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
                r = store_error(s, "Reading a change request", err);
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

/* The columns of one change_requests row r, and how they read (store.h's kinds). */
#define CHANGE_COLUMNS                                                                     \
        "r.key, r.title, r.status, r.change_type, r.risk, "                                 \
        "to_json(r.services)::text AS services, "                                           \
        "dl_rfc3339(r.planned_start) AS planned_start, "                                    \
        "dl_rfc3339(r.planned_end) AS planned_end, dl_rfc3339(r.created_at) AS created_at, " \
        "dl_rfc3339(r.approved_at) AS approved_at, dl_rfc3339(r.updated_at) AS updated_at, " \
        "r.auto_created, r.source"
#define CHANGE_KINDS "sssssjsssssbs"

int store_change(struct store *s, const char *key, store_row_fn *row, void *ctx,
                 struct error *err) {
        static const char sql[] =
                "SELECT " CHANGE_COLUMNS ", "
                "(SELECT coalesce(jsonb_agg(jsonb_build_object("
                "    'at', dl_rfc3339(h.at), 'status', h.status, 'source', h.source, "
                "    'delivery_id', h.delivery_id, 'actor', h.actor, "
                "    'recorded_at', dl_rfc3339(h.recorded_at)) "
                "    ORDER BY h.at, dl_status_rank(h.status)), '[]') "
                "  FROM change_request_history h WHERE h.key = r.key)::text AS history, "
                "(SELECT coalesce(jsonb_agg(jsonb_build_object("
                "    'id', d.id, 'source', d.source, 'key', d.key, 'service', d.service, "
                "    'environment', d.environment, 'status', d.status, 'sha', d.sha, "
                "    'started_at', dl_rfc3339(d.started_at), "
                "    'finished_at', dl_rfc3339(d.finished_at), 'link', d.change_link, "
                "    'control', d.control, 'control_reason', d.control_reason) "
                "    ORDER BY d.started_at, d.id), '[]') "
                "  FROM deployments d WHERE d.change_key = r.key)::text AS deployments, "
                "(SELECT coalesce(jsonb_agg(jsonb_build_object("
                "    'source', i.source, 'key', i.key, 'service', i.service, "
                "    'status', i.status, 'opened_at', dl_rfc3339(i.opened_at), "
                "    'resolved_at', dl_rfc3339(i.resolved_at), 'link', i.link_reason) "
                "    ORDER BY i.opened_at, i.id), '[]') "
                "  FROM incidents i LEFT JOIN deployments d ON d.id = i.deployment_id "
                "  WHERE i.change_request = r.key OR d.change_key = r.key)::text AS incidents "
                "FROM change_requests r WHERE r.key = $1";
        const char *params[1] = { key };

        return store_rows(s, sql, 1, params, CHANGE_KINDS "jjj", NULL, row, ctx,
                          "Reading a change request", err);
}

/* Passes on the first limit rows of a page and counts them all. */
struct page {
        store_row_fn *row;
        void *ctx;
        int limit, seen;
};

static int page_row(void *ctx, const struct store_row *r) {
        struct page *p = ctx;

        return ++p->seen > p->limit ? 0 : p->row(p->ctx, r);
}

int store_changes(struct store *s, const struct change_filter *f, store_row_fn *row, void *ctx,
                  struct error *err) {
        static const char sql[] =
                "SELECT " CHANGE_COLUMNS " FROM change_requests r "
                "WHERE ($1::text IS NULL OR $1 = ANY (r.services)) "
                "  AND ($2::text IS NULL OR r.status = $2) "
                "  AND ($3::bigint IS NULL OR r.updated_at >= dl_time($3)) "
                "  AND ($4::text IS NULL OR r.key > $4) "
                "ORDER BY r.key LIMIT $5::int + 1";
        struct page p = { .row = row, .ctx = ctx, .limit = f->limit };
        char since[24], limit[16];
        const char *params[5] = { f->service, f->status, NULL, f->after, limit };

        if (f->since_us != INT64_MIN) {
                snprintf(since, sizeof(since), "%" PRId64, f->since_us);
                params[2] = since;
        }
        snprintf(limit, sizeof(limit), "%d", f->limit);
        return store_rows(s, sql, 5, params, CHANGE_KINDS, NULL, page_row, &p,
                          "Listing change requests", err);
}
